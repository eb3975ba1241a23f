#!/bin/sh
# make demo: run a leaking program, snapshot it twice, show what grew.
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$build/demo
mkdir -p "$out"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
echo "== running fixtures/programs/demo_leak.py (2,000 requests, snapshot, 2,000 more, snapshot)"
PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$py" "$root/fixtures/programs/demo_leak.py" "$out"
echo
echo "== $build/heapsnap summary $out/demo-2.hsnap --top 12"
"$build/heapsnap" summary "$out/demo-2.hsnap" --top 12
echo
echo "== $build/heapsnap diff $out/demo-1.hsnap $out/demo-2.hsnap --top 10"
"$build/heapsnap" diff "$out/demo-1.hsnap" "$out/demo-2.hsnap" --top 10
echo
echo "== $build/heapsnap paths $out/demo-2.hsnap --type __main__.SessionState"
"$build/heapsnap" paths "$out/demo-2.hsnap" --type __main__.SessionState
