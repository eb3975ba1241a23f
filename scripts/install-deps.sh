#!/bin/sh
# Install the Debian packages heapsnap needs to build and test, only those
# missing. Runs as root (CI, fresh machines) or through sudo when available.
set -eu

# Installed with --no-install-recommends, so every package a step needs is
# named here, even one another package only recommends:
#   build          build-essential cmake pkg-config libzstd-dev libcjson-dev
#                  libgraphviz-dev libcairo2-dev python3-dev
#   make test      libcriterion-dev (unit tests); python3-jsonschema (JSON
#                  schemas), python3-numpy (numpy tests) for the test drivers,
#                  which run on /usr/bin/python3; python3-venv (the pinned
#                  venvs the real-program tests make with /usr/bin/python3;
#                  pyenv interpreters have venv built in); clang and
#                  libclang-rt-14-dev (libFuzzer and clang's sanitizer
#                  runtimes: clang only recommends it)
#   make bench     python3-objgraph (the comparison)
# Also used, and part of every Debian 12 system (essential or required):
# util-linux (setpriv, to run targets as user nobody), mount, coreutils.
PACKAGES="build-essential cmake pkg-config libzstd-dev libcjson-dev libgraphviz-dev
libcriterion-dev libcairo2-dev python3-dev python3-numpy python3-jsonschema python3-objgraph
python3-venv clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "heapsnap: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "heapsnap: need root to install:$missing" >&2
		exit 1
	fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
