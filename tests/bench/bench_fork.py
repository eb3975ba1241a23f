"""Fork-mode snapshots against in-process ones: the target's pause.

usage: PYTHONPATH=build/python python3 tests/bench/bench_fork.py [--sizes 1000000,5000000]
       [--repeat 3]

For each size, a heap of N instances of a small class (each with an int
attribute: about 2N objects) is built; then, best of --repeat:
  - in-process dump: pause_seconds (GIL held for the whole walk);
  - fork dump (wait=True): the parent's pause (metadata + fork()), the
    child's walk and write, its private dirty memory (smaps_rollup) against
    the parent's RSS.
Prints one line per size and a Markdown table for docs/benchmarks.md.
"""
import argparse
import os
import sys
import tempfile
import time

import heapsnap


class Item:
    def __init__(self, i):
        self.i = i


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hs-bench-fork-")
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        heap = [Item(i) for i in range(n)]
        path = os.path.join(d, "b.hsnap")
        inproc = min(heapsnap.dump(path)["pause_seconds"] for _ in range(a.repeat))
        best = None
        for _ in range(a.repeat):
            r = heapsnap.dump(path, fork=True, wait=True)
            if best is None or r["pause_seconds"] < best["pause_seconds"]:
                best = r
        gib = rss() / 2**30
        row = (n, best["objects"], rss(), inproc, best["pause_seconds"], best["fork_seconds"],
               best["meta_seconds"], best["child_seconds"], best["child_private_dirty_bytes"])
        rows.append(row)
        print("%d items (%d objects), RSS %.0f MiB: in-process pause %.1f ms, fork pause %.2f ms "
              "(fork %.2f, meta %.2f) = %.1f ms/GiB, ratio %.0fx; child %.2f s, private dirty "
              "%.1f MiB (%.1f%% of RSS)"
              % (n, row[1], row[2] / 2**20, inproc * 1e3, row[4] * 1e3, row[5] * 1e3,
                 row[6] * 1e3, row[4] * 1e3 / gib, inproc / row[4], row[7], row[8] / 2**20,
                 100.0 * row[8] / row[2]), flush=True)
        del heap
    print()
    print("| heap | objects | RSS | in-process pause | fork-mode pause (fork + metadata) | "
          "per GiB of RSS | ratio | child walk + write | child private dirty |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, objs, rs, inp, pause, fk, meta, child, dirty in rows:
        print("| %dM items | %.1fM | %.0f MiB | %.0f ms | %.1f ms (%.1f + %.1f) | %.1f ms | %.0fx "
              "| %.2f s | %.0f MiB (%.0f%%) |"
              % (n // 1000000, objs / 1e6, rs / 2**20, inp * 1e3, pause * 1e3, fk * 1e3,
                 meta * 1e3, pause * 1e3 / (rs / 2**30), inp / pause, child, dirty / 2**20,
                 100.0 * dirty / rs))
    import shutil
    shutil.rmtree(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
