#!/usr/bin/python3
"""heapsnap benchmark: prints figures, not a pass/fail test.

usage: /usr/bin/python3 tests/bench/bench_snapshot.py --build BUILD [--units N] [--seed S]
                                                       [--repeat R] [--json FILE] [--keep DIR]

On one reproducible heap (seeded; at least 1 million reachable objects: a mix
of instances, dicts, lists, tuples, strings and ints) and in this one
interpreter, it measures:

  dump            heapsnap.dump (walk + write, wall time; best of R)
  objgraph        objgraph.typestats()  (counts GC-tracked objects by type)
  getsizeof loop  gc.get_objects() + sys.getsizeof on each
  pure walk       the same closure heapsnap walks, in pure Python: from
                  gc.get_objects() over gc.get_referents, visited set by id,
                  sys.getsizeof on each object
  file            snapshot bytes per object
  summary         `heapsnap summary` wall time and peak RSS (/usr/bin/time) per object
  diff            `heapsnap diff` of this snapshot and a second one taken
                  after the heap grew by 10%

and prints the ratios against the goals: dump/objgraph <= 5x, pure
walk/dump >= 15x, file <= 12 bytes/object, summary < 0.5 s per 1M objects
and < 64 bytes of peak RSS per object.
"""
import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Item:
    """A plain instance (managed dict / inline values on 3.11+)."""

    def __init__(self, name, tags, values, pair):
        self.name = name
        self.tags = tags
        self.values = values
        self.pair = pair


def build_heap(units, seed):
    """units x 9 objects: an Item, its tags dict, a list of 3 distinct ints,
    a 2-tuple, two new strs (name and a tag value). Held from one list."""
    rng = random.Random(seed)
    heap = []
    base = 10 ** 9
    for i in range(units):
        name = "item-%d-%x" % (i, rng.getrandbits(24))
        tags = {"kind": "k%d" % rng.randrange(1000000), "i": i}
        values = [base + 3 * i, base + 3 * i + 1, base + 3 * i + 2]
        heap.append(Item(name, tags, values, (i, name)))
    return heap


def best_of(n, fn):
    times = []
    result = None
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def getsizeof_loop():
    total = 0
    objs = gc.get_objects()
    for o in objs:
        total += sys.getsizeof(o)
    return len(objs), total


def pure_walk():
    """The closure over tp_traverse from every GC-tracked object, in Python."""
    stack = gc.get_objects()
    seen = set()  # made after get_objects(), so the walk does not count its own ids
    total = 0
    getref = gc.get_referents
    size = sys.getsizeof
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen or o is seen or o is stack:
            continue
        seen.add(i)
        try:
            total += size(o)
        except Exception:
            pass
        stack.extend(getref(o))
    return len(seen), total


def run_measured(cmd):
    """Run a command; wall seconds, peak RSS bytes, exit status, stderr.

    The peak RSS comes from /usr/bin/time (GNU time, which forks the command
    from its own small process): measuring it with wait4 from here would be
    wrong, because Linux carries the RSS high-water mark of the forked copy of
    this (large) process into the child across exec."""
    timefile = tempfile.NamedTemporaryFile(prefix="heapsnap-bench-time-", delete=False)
    timefile.close()
    use_time = os.path.exists(TIME)
    full = [TIME, "-f", "%e %M", "-o", timefile.name] + cmd if use_time else cmd
    t0 = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    rss = None
    if use_time:
        try:
            fields = open(timefile.name).read().split()
            rss = int(fields[-1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    os.unlink(timefile.name)
    return wall, rss, p.returncode, p.stderr.decode("utf-8", "replace")


def min_rss(runs):
    vals = [r[1] for r in runs if r[1]]
    return min(vals) if vals else None


def fmt_rss(rss, objects):
    if not rss:
        return "n/a (no /usr/bin/time)"
    return "%.1f MiB, %.1f bytes/object" % (rss / 2 ** 20, rss / objects)


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "python": "%s (%s)" % (sys.version.split()[0], sys.executable)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (BUILD/heapsnap, BUILD/python)")
    ap.add_argument("--units", type=int, default=120000, help="9 objects each (default 120000: 1.08M)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--repeat", type=int, default=3, help="best of R for the fast measurements")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--keep", help="keep the snapshots in this directory")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import heapsnap
    cli = os.path.join(build, "heapsnap")
    try:
        import objgraph
    except ImportError:
        objgraph = None

    work = args.keep or tempfile.mkdtemp(prefix="heapsnap-bench-")
    os.makedirs(work, exist_ok=True)
    snap_a = os.path.join(work, "bench-a.hsnap")
    snap_b = os.path.join(work, "bench-b.hsnap")

    m = machine()
    print("machine: %s, %d cores, %s, Linux %s" % (m["cpu"], m["cores"], m["memory"], m["kernel"]))
    print("python:  %s" % m["python"])
    t0 = time.perf_counter()
    heap = build_heap(args.units, args.seed)
    gc.collect()
    print("heap:    %d units x 9 objects built in %.2f s (seed %d)" % (args.units, time.perf_counter() - t0, args.seed))

    f = {"machine": m, "units": args.units, "seed": args.seed}
    f["dump_s"], info = best_of(args.repeat, lambda: heapsnap.dump(snap_a))
    f["objects"] = info["objects"]
    f["edges"] = info.get("edges")
    f["dump_pause_s"] = info.get("pause_seconds")
    f["dump_walk_s"] = info.get("walk_seconds")
    f["file_bytes"] = os.path.getsize(snap_a)
    f["file_bytes_per_object"] = f["file_bytes"] / f["objects"]
    f["gc_tracked"] = len(gc.get_objects())
    f["dump_info"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
    print("dump:    %.3f s for %d objects, %s edges (pause %s s, walk %s s), file %d bytes"
          % (f["dump_s"], f["objects"], f["edges"], f["dump_pause_s"], f["dump_walk_s"], f["file_bytes"]))
    print("         dump() returned %s" % f["dump_info"])

    if objgraph is not None:
        f["objgraph_s"], _ = best_of(args.repeat, objgraph.typestats)
        print("objgraph.typestats(): %.3f s (%d GC-tracked objects)" % (f["objgraph_s"], f["gc_tracked"]))
    else:
        f["objgraph_s"] = None
        print("objgraph: not importable (Debian: python3-objgraph), skipped")
    f["getsizeof_s"], (n, _) = best_of(args.repeat, getsizeof_loop)
    print("gc.get_objects() + sys.getsizeof: %.3f s (%d objects)" % (f["getsizeof_s"], n))
    f["pure_walk_s"], (f["pure_walk_objects"], _) = best_of(1, pure_walk)
    print("pure-Python walk (gc.get_referents, visited set): %.3f s (%d objects)"
          % (f["pure_walk_s"], f["pure_walk_objects"]))

    # The analyzer, on the snapshot of this heap.
    runs = [run_measured([cli, "summary", snap_a]) for _ in range(args.repeat)]
    if any(r[2] != 0 for r in runs):
        print("heapsnap summary failed: %s" % runs[0][3])
    f["summary_s"] = min(r[0] for r in runs)
    f["summary_rss"] = min_rss(runs)
    f["summary_rss_per_object"] = f["summary_rss"] / f["objects"] if f["summary_rss"] else None
    print("heapsnap summary: %.3f s, peak RSS %s" % (f["summary_s"], fmt_rss(f["summary_rss"], f["objects"])))

    # Grow the heap by 10% and diff.
    heap.extend(build_heap(args.units // 10, args.seed + 1))
    gc.collect()
    info_b = heapsnap.dump(snap_b)
    f["objects_b"] = info_b["objects"]
    runs = [run_measured([cli, "diff", snap_a, snap_b]) for _ in range(args.repeat)]
    if any(r[2] not in (0, 1) for r in runs):
        print("heapsnap diff failed: %s" % runs[0][3])
    f["diff_s"] = min(r[0] for r in runs)
    f["diff_rss"] = min_rss(runs)
    both = f["objects"] + f["objects_b"]
    f["diff_rss_per_object"] = f["diff_rss"] / both if f["diff_rss"] else None
    print("heapsnap diff (%d vs %d objects): %.3f s, peak RSS %s of both"
          % (f["objects"], f["objects_b"], f["diff_s"], fmt_rss(f["diff_rss"], both)))

    per_m = 1e6 / f["objects"]
    ratios = [
        ("dump / objgraph.typestats", f["dump_s"] / f["objgraph_s"] if f["objgraph_s"] else None, "<= 5x"),
        ("dump / getsizeof loop", f["dump_s"] / f["getsizeof_s"], "(info)"),
        ("pure-Python walk / dump", f["pure_walk_s"] / f["dump_s"], ">= 15x"),
    ]
    print()
    print("| figure | value | goal |")
    print("|---|---|---|")
    rows = [
        ("objects in the snapshot", "%d" % f["objects"], ">= 1,000,000"),
        ("heapsnap.dump", "%.3f s" % f["dump_s"], ""),
        ("objgraph.typestats()", "%.3f s" % f["objgraph_s"] if f["objgraph_s"] else "n/a", ""),
        ("gc.get_objects() + sys.getsizeof", "%.3f s" % f["getsizeof_s"], ""),
        ("pure-Python walk", "%.3f s (%d objects)" % (f["pure_walk_s"], f["pure_walk_objects"]), ""),
        ("file size", "%d bytes, %.2f bytes/object" % (f["file_bytes"], f["file_bytes_per_object"]), "<= 12 bytes/object"),
        ("heapsnap summary time", "%.3f s (%.3f s per 1M objects)" % (f["summary_s"], f["summary_s"] * per_m), "< 0.5 s per 1M"),
        ("heapsnap summary peak RSS", fmt_rss(f["summary_rss"], f["objects"]), "< 64 bytes/object"),
        ("heapsnap diff time", "%.3f s" % f["diff_s"], ""),
        ("heapsnap diff peak RSS", fmt_rss(f["diff_rss"], both) + " of both", ""),
    ]
    for name, val, goal in rows:
        print("| %s | %s | %s |" % (name, val, goal))
    for name, r, goal in ratios:
        print("| %s | %s | %s |" % (name, "%.2fx" % r if r is not None else "n/a", goal))
    f["ratios"] = {name: r for name, r, _ in ratios}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(f, fh, indent=1)
    if not args.keep:
        for p in (snap_a, snap_b):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
