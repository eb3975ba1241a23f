#!/usr/bin/python3
"""The retention commands over a very deep object graph: a linked chain of
N objects (default 1,000,000) plus 100,000-deep nested lists, as the test
python.hook.chain builds it. The test checks the answers; this measures the
time (a speed claim: it belongs here, not in a test that a loaded machine
would fail). Prints figures; not pass/fail.

  PYTHONPATH=build/python python3 tests/bench/bench_deep_chain.py --cli build/heapsnap [--links N] [--repeat 3]

Figures for docs/benchmarks.md: wall clock of the whole command (load
included), best of --repeat, on a quiet machine.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import heapsnap


class Link:
    __slots__ = ("next",)

    def __init__(self, nxt):
        self.next = nxt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--links", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    head = None
    for _ in range(a.links):
        head = Link(head)
    nested = []
    for _ in range(100000):
        nested = [nested]
    keep = (head, nested)  # noqa: F841 -- held for the snapshot
    with tempfile.TemporaryDirectory(prefix="hs-bench-chain-") as d:
        snap = os.path.join(d, "chain.hsnap")
        t = time.perf_counter()
        heapsnap.dump(snap)
        print("dump of a %d-deep chain: %.2f s, %.1f MiB" % (a.links, time.perf_counter() - t,
                                                             os.path.getsize(snap) / 2**20))
        name = "%s.Link" % __name__
        rows = []
        for label, extra in (("paths --type Link --limit 2 --max-depth 20", ["paths", "--type", name, "--limit", "2",
                                                                              "--max-depth", "20"]),
                             ("paths --type Link --limit 2", ["paths", "--type", name, "--limit", "2"]),
                             ("retained --by type", ["retained", "--by", "type", "--top", "0"]),
                             ("garbage", ["garbage"])):
            best = None
            for _ in range(a.repeat):
                t = time.perf_counter()
                p = subprocess.run([a.cli, extra[0], snap] + extra[1:], capture_output=True, text=True)
                s = time.perf_counter() - t
                if p.returncode != 0:
                    print("%s: exit %d: %s" % (label, p.returncode, p.stderr.strip()[-300:]))
                    break
                best = s if best is None else min(best, s)
            rows.append((label, best))
            print("%-45s %s" % (label, "%.2f s" % best if best is not None else "failed"), flush=True)
        print("\n| command (%d-deep chain) | seconds |\n|---|---:|" % a.links)
        for label, best in rows:
            print("| `%s` | %s |" % (label, "%.2f" % best if best is not None else "failed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
