# Thin driver over CMake. `make demo` and `make test` do all set-up on a
# fresh Debian 12 machine (missing packages are installed first).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake
# Debian's cmake is always there after deps; prefer it over shims on PATH.
ifneq ($(wildcard /usr/bin/cmake),)
CMAKE := /usr/bin/cmake
endif

.PHONY: all deps build demo test test-asan fuzz bench install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# C unit tests and the corrupt-input tests under ASan+UBSan.
test-asan: deps
	@$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHEAPSNAP_SANITIZE=ON -DHEAPSNAP_BUILD_PYTHON=OFF >/dev/null
	@$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest -j $(JOBS) -L 'unit|corrupt|cli' --output-on-failure

# libFuzzer on the snapshot, recording and index readers, seeded with fixtures/ (clang).
FUZZ_SECONDS ?= 60
fuzz: deps
	@CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD) -DHEAPSNAP_FUZZ=ON -DHEAPSNAP_BUILD_TESTS=OFF -DHEAPSNAP_BUILD_PYTHON=OFF >/dev/null
	@$(CMAKE) --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_reader fuzz_recording fuzz_index
	@./scripts/run-fuzz.sh $(FUZZ_BUILD)/fuzz_reader $(FUZZ_SECONDS) snapshot
	@./scripts/run-fuzz.sh $(FUZZ_BUILD)/fuzz_recording $(FUZZ_SECONDS) recording
	@./scripts/run-fuzz.sh $(FUZZ_BUILD)/fuzz_index $(FUZZ_SECONDS) index

bench: build
	@/usr/bin/python3 tests/bench/bench_snapshot.py --build $(BUILD)

install: build
	@$(CMAKE) --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
