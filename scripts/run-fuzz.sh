#!/bin/sh
# Run the reader fuzzer for N seconds from a corpus seeded with the shipped
# snapshots and damaged files. Usage: run-fuzz.sh FUZZER SECONDS
set -eu
fuzzer=$1
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "$(dirname "$fuzzer")" && pwd)
corpus=$out/fuzz-corpus
mkdir -p "$corpus" "$out/fuzz-artifacts"
for f in "$root"/fixtures/snapshots/*.hsnap "$root"/fixtures/corrupt/*; do
	[ -f "$f" ] && cp -f "$f" "$corpus/"
done
echo "heapsnap: fuzzing the snapshot reader for ${seconds}s"
rc=0
"$fuzzer" "$corpus" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$out/fuzz-artifacts/" >"$out/fuzz.log" 2>&1 || rc=$?
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|ERROR|SUMMARY" "$out/fuzz.log" || true
if [ "$rc" != 0 ]; then
	echo "heapsnap: the fuzzer found a failing input (exit $rc); see $out/fuzz.log and $out/fuzz-artifacts/" >&2
	exit 1
fi
