#!/usr/bin/python3
"""Benchmark of the retention commands on a real heap of >= 1M objects
(taken by the hook), side by side with objgraph.find_backref_chain on the
same heap. Prints figures; not pass/fail.

  bench_retention_cli.py --cli build/heapsnap --pythonpath build/python [--objects 1000000]

The target program (written to a temp dir) builds sessions held in a
module-level dict (each a SessionState with a __dict__, a history list and
a few strings: ~8 objects per session) plus filler, dumps three snapshots
while the dict grows by 5% each time, then times objgraph's
find_backref_chain for one session in the same process.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGET = r'''
import gc, json, sys, time, types
import heapsnap
N = int(sys.argv[2]); out = sys.argv[1]
app = types.ModuleType("app"); sys.modules["app"] = app
exec("class SessionState:\n    def __init__(self, i):\n        self.history = ['req-%d-%d' % (i, k) for k in range(3)]\n        self.user = 'user-%d' % i\n", app.__dict__)
app._sessions = {}
app.filler = [(i, str(i)) for i in range(N // 4)]       # tuples + str: ~N/2 objects
per = 8
base = max(1000, (N // 2) // per)
def grow(n, start):
    for i in range(start, start + n):
        app._sessions['s%d' % i] = app.SessionState(i)
grow(base, 0)
step = base // 20
times = []
for k in range(3):
    if k:
        grow(step, base + (k - 1) * step)
    t = time.perf_counter(); heapsnap.dump('%s/s%d.hsnap' % (out, k)); times.append(time.perf_counter() - t)
result = {"dump_seconds": times, "sessions": len(app._sessions), "objects": len(gc.get_objects())}
try:
    import objgraph, inspect
    target = app._sessions['s%d' % (base // 2)]
    result["target"] = "0x%x" % id(target)
    t = time.perf_counter()
    chain = objgraph.find_backref_chain(target, inspect.ismodule, max_depth=20)
    result["objgraph_seconds"] = time.perf_counter() - t
    result["objgraph_chain_len"] = len(chain)
    deep = target.history[0]      # a str inside the session's history list
    result["deep"] = "0x%x" % id(deep)
    t = time.perf_counter()
    chain = objgraph.find_backref_chain(deep, inspect.ismodule, max_depth=20)
    result["objgraph_deep_seconds"] = time.perf_counter() - t
    result["objgraph_deep_chain_len"] = len(chain)
except ImportError:
    result["objgraph_seconds"] = None
json.dump(result, open(out + "/target.json", "w"))
'''


def timed(argv, env=None):
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode not in (0, 1):
        sys.exit("failed: %s\n%s" % (" ".join(argv), p.stderr))
    return dt, p.stdout


def peak_rss_of(argv):
    """Peak RSS (MiB) of one run, through /usr/bin/time if present."""
    if not os.path.exists("/usr/bin/time"):
        return None
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, capture_output=True, text=True)
    try:
        return int(p.stderr.strip().splitlines()[-1]) / 1024
    except (ValueError, IndexError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--pythonpath", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--objects", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hs-bench-ret-")
    with open(os.path.join(work, "target.py"), "w") as f:
        f.write(TARGET)
    env = dict(os.environ, PYTHONPATH=args.pythonpath)
    t = time.perf_counter()
    subprocess.run([args.python, os.path.join(work, "target.py"), work, str(args.objects)],
                   check=True, env=env)
    build = time.perf_counter() - t
    tgt = json.load(open(os.path.join(work, "target.json")))
    snaps = [os.path.join(work, "s%d.hsnap" % k) for k in range(3)]
    _, info = timed([args.cli, "info", snaps[2], "--json"])
    info = json.loads(info)
    objs, refs = info["counts"]["objects"], info["counts"]["references"]
    print("heap: %d objects, %d references (last snapshot; %d sessions); target ran %.1f s"
          % (objs, refs, tgt["sessions"], build))
    runs = {
        "paths --type app.SessionState": [args.cli, "paths", snaps[2], "--type", "app.SessionState"],
        "retained --top 25": [args.cli, "retained", snaps[2]],
        "retained --by type": [args.cli, "retained", snaps[2], "--by", "type"],
        "garbage": [args.cli, "garbage", snaps[2]],
        "leaks (3 snapshots)": [args.cli, "leaks"] + snaps,
        "graph --leak -o leak.svg": [args.cli, "graph", "--leak"] + snaps + ["-o", os.path.join(work, "leak.svg")],
        "graph --type app.SessionState -o g.svg": [args.cli, "graph", snaps[2], "--type",
                                                   "app.SessionState", "-o", os.path.join(work, "g.svg")],
        "info (load only)": [args.cli, "info", snaps[2]],
    }
    if tgt.get("target"):
        runs["paths --address (one session)"] = [args.cli, "paths", snaps[2], "--address", tgt["target"]]
        runs["paths --address (one history str)"] = [args.cli, "paths", snaps[2], "--address", tgt["deep"]]
        runs["dominators --address (one session)"] = [args.cli, "dominators", snaps[2], "--address", tgt["target"]]
    res = {}
    for name, argv in runs.items():
        best = min(timed(argv)[0] for _ in range(args.repeat))
        res[name] = (best, peak_rss_of(argv))
    print()
    print("%-42s %9s %12s" % ("command", "seconds", "peak RSS MiB"))
    for name, (sec, rss) in res.items():
        print("%-42s %9.3f %12s" % (name, sec, "%.0f" % rss if rss else "-"))
    og = tgt.get("objgraph_seconds")
    print()
    if og is not None:
        print("objgraph.find_backref_chain (one session, in the target): %.3f s (chain of %d)"
              % (og, tgt["objgraph_chain_len"]))
        print("objgraph.find_backref_chain (one history str, deeper): %.3f s (chain of %d)"
              % (tgt["objgraph_deep_seconds"], tgt["objgraph_deep_chain_len"]))
        p = res["paths --type app.SessionState"][0]
        print("ratio objgraph (1 session) / heapsnap paths --type (all %d sessions, load included): %.2fx"
              % (tgt["sessions"], og / p))
        print("ratio objgraph (1 session) / heapsnap paths --address (same session): %.2fx"
              % (og / res["paths --address (one session)"][0]))
        print("ratio objgraph (1 str) / heapsnap paths --address (same str): %.2fx"
              % (tgt["objgraph_deep_seconds"] / res["paths --address (one history str)"][0]))
    else:
        print("objgraph not installed: no comparison")
    print("dump seconds (hook): %s" % ", ".join("%.2f" % x for x in tgt["dump_seconds"]))
    print("snapshot size: %.1f MiB" % (os.path.getsize(snaps[2]) / 2**20))
    print("work dir: %s" % work)


if __name__ == "__main__":
    main()
