"""Time-to-index of `heapsnap dump PID --children` on a multiprocessing pool:
sequential (--jobs 1) against concurrent dumps, in-process and fork mode.
Prints figures; not a pass/fail test.

usage: bench_children.py --cli HEAPSNAP [--python PY] [--workers 4] [--objects N] [--repeat 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

POOL = r'''
import multiprocessing as mp, os, sys
class BenchXyz:
    __slots__ = ("a", "b")
    def __init__(self, i): self.a = i; self.b = [i]
KEEP = []
def init(n):
    KEEP.extend(BenchXyz(i) for i in range(n))
def ping(_):
    return os.getpid()
if __name__ == "__main__":
    n = int(sys.argv[2])
    pool = mp.get_context("fork").Pool(int(sys.argv[1]), initializer=init, initargs=(n,))
    pool.map(ping, range(100))
    KEEP.extend(BenchXyz(i) for i in range(n))
    print("ready", os.getpid(), flush=True)
    sys.stdin.read()
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--objects", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="hs-bench-children-") as tmp:
        script = os.path.join(tmp, "pool.py")
        open(script, "w").write(POOL)
        p = subprocess.Popen([a.python, script, str(a.workers), str(a.objects)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().split()
            root = int(line[1])
            print("pool of %d workers (fork), %d objects of BenchXyz (+ a list each) per process, %s"
                  % (a.workers, a.objects, a.python))
            print("%-22s %10s %10s %12s %12s" % ("mode", "median s", "min s", "max pause ms",
                                              "sum pause ms"))
            for fork in (False, True):
                for jobs in (1, 2, 4):
                    times, pauses = [], []
                    for r in range(a.repeat):
                        out = os.path.join(tmp, "b%d.hsidx" % r)
                        args = [a.cli, "dump", str(root), "--children", "--jobs", str(jobs), "-o", out]
                        if fork:
                            args.append("--fork")
                        t0 = time.monotonic()
                        rc = subprocess.run(args, capture_output=True, text=True)
                        times.append(time.monotonic() - t0)
                        if rc.returncode != 0:
                            print("dump failed:", rc.stderr.strip())
                            return 1
                        idx = json.load(open(out))
                        pauses.append([x["pause_seconds"] for x in idx["processes"] if x["status"] == "ok"])
                        for x in idx["processes"]:
                            if x.get("file"):
                                os.unlink(os.path.join(tmp, x["file"]))
                        os.unlink(out)
                    mp = max(max(x) for x in pauses) * 1e3
                    sp = statistics.median(sum(x) for x in pauses) * 1e3
                    print("%-22s %10.3f %10.3f %12.1f %12.1f" % (
                        "%s, --jobs %d" % ("fork" if fork else "in-process", jobs),
                        statistics.median(times), min(times), mp, sp), flush=True)
        finally:
            p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
