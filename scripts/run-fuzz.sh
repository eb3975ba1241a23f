#!/bin/sh
# Run a reader fuzzer for N seconds from a corpus seeded with the shipped
# files and damaged ones. Usage: run-fuzz.sh FUZZER SECONDS [snapshot|recording|index]
set -eu
fuzzer=$1
seconds=${2:-60}
kind=${3:-snapshot}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "$(dirname "$fuzzer")" && pwd)
corpus=$out/fuzz-corpus-$kind
mkdir -p "$corpus" "$out/fuzz-artifacts"
case $kind in
snapshot) seeds="$root/fixtures/snapshots/*.hsnap $root/fixtures/corrupt/*" ;;
recording) seeds="$root/fixtures/recordings/*.hsrec" ;;
index) seeds="$root/fixtures/indexes/*.hsidx" ;;
*) echo "run-fuzz.sh: unknown kind '$kind' (snapshot, recording or index)" >&2; exit 2 ;;
esac
for f in $seeds; do
	[ -f "$f" ] && cp -f "$f" "$corpus/"
done
echo "heapsnap: fuzzing the $kind reader for ${seconds}s"
rc=0
log=$out/fuzz-$kind.log
"$fuzzer" "$corpus" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$out/fuzz-artifacts/" >"$log" 2>&1 || rc=$?
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|ERROR|SUMMARY" "$log" || true
if [ "$rc" != 0 ]; then
	echo "heapsnap: the fuzzer found a failing input (exit $rc); see $log and $out/fuzz-artifacts/" >&2
	exit 1
fi
