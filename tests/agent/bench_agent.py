"""Figures for the production agent (printed; not a pass/fail test).

usage: /usr/bin/python3 tests/agent/bench_agent.py --build BUILD [--python PY]
                                                   [--units N] [--repeat R] [--idle S]

Builds the heap of tests/bench/bench_snapshot.py (N units of 9 objects:
default 120,000, about 1.1M objects with the interpreter's own) in two
target processes, one running the agent and one not, then measures:

- STATS fast, STATS, TYPES 20 and TYPES 20 gc: the time the command took in
  the target ("seconds" of the reply: the GIL is held for the C part) and
  the round trip from the client; best and median of R;
- the agent's CPU time while the target idles for S seconds (utime+stime
  from /proc/PID/stat), against the target without an agent;
- `heapsnap dump PID` end to end (time to file), through the agent and by
  injection, in-process and --fork;
- heapsnap.mark() and the GC callback's cost per collection.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HEAP = r'''
import sys, os, time, gc, random
sys.path.insert(0, %(pkg)r) if %(agent)r else None
class Item:
    def __init__(self, i, rnd):
        self.name = "item-%%d-%%d" %% (i, rnd.randrange(10**9))
        self.tags = {"a": i, "b": "t%%d" %% i}
        self.vals = [10**9 + i, 2 * 10**9 + i, 3 * 10**9 + i]
        self.pair = (i, self.name)
rnd = random.Random(20240601)
held = [Item(i, rnd) for i in range(%(units)d)]
if %(agent)r:
    import heapsnap.agent
    heapsnap.agent.start()
print("ready", flush=True)
sys.stdin.readline()
'''


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime


def start(py, pkg, units, agent):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.Popen([py, "-c", HEAP % {"pkg": pkg, "agent": agent, "units": units}],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().startswith("ready")
    return p


class Client:
    def __init__(self, pid):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect("/tmp/heapsnap-%d/agent-%d.sock" % (os.geteuid(), pid))
        self.f = self.s.makefile("rwb")

    def req(self, cmd):
        t0 = time.perf_counter()
        self.f.write(cmd.encode() + b"\n")
        self.f.flush()
        r = json.loads(self.f.readline())
        return r, time.perf_counter() - t0


def fmt_ms(v):
    return "%.2f ms" % (v * 1e3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--units", type=int, default=120000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args()
    cli = os.path.join(a.build, "heapsnap")
    pkg = os.path.join(a.build, "python")
    out = {}
    with_agent = start(a.python, pkg, a.units, True)
    without = start(a.python, pkg, a.units, False)
    try:
        c = Client(with_agent.pid)
        n = c.req("TYPES 1")[0]["objects"]
        tracked = c.req("STATS fast")[0]["gc"]["tracked_objects"]
        print("target: %s, %s objects (%s tracked by the GC), RSS %.0f MiB"
              % (a.python, format(n, ","), format(tracked, ","),
                 c.req("STATS fast")[0]["rss"] / 1048576.0))
        out["objects"], out["tracked"] = n, tracked
        for cmd in ("STATS fast", "STATS", "TYPES 20", "TYPES 20 gc"):
            inproc, rt = [], []
            for _ in range(a.repeat):
                r, t = c.req(cmd)
                assert r["ok"], r
                inproc.append(r["seconds"])
                rt.append(t)
            per = min(inproc) / n * 1e9
            print("%-12s in the target: best %s, median %s (%.1f ns/object); round trip best %s"
                  % (cmd, fmt_ms(min(inproc)), fmt_ms(statistics.median(inproc)), per, fmt_ms(min(rt))))
            out[cmd] = {"best": min(inproc), "median": statistics.median(inproc),
                        "round_trip": min(rt), "ns_per_object": per}

        # idle CPU
        c.s.close()
        time.sleep(0.5)
        a0, b0 = cpu_seconds(with_agent.pid), cpu_seconds(without.pid)
        time.sleep(a.idle)
        a1, b1 = cpu_seconds(with_agent.pid), cpu_seconds(without.pid)
        print("idle %.0f s: CPU %.3f s with the agent, %.3f s without (clock ticks of 10 ms)"
              % (a.idle, a1 - a0, b1 - b0))
        out["idle_cpu"] = {"agent": a1 - a0, "none": b1 - b0, "seconds": a.idle}

        # time to file
        tmp = tempfile.mkdtemp(prefix="bench-agent-")
        for label, pid, extra in (("agent", with_agent.pid, []), ("injection", without.pid, []),
                                  ("agent --fork", with_agent.pid, ["--fork"]),
                                  ("injection --fork", without.pid, ["--fork"])):
            times = []
            for i in range(a.repeat):
                path = os.path.join(tmp, "d.hsnap")
                t0 = time.perf_counter()
                r = subprocess.run([cli, "dump", str(pid), "-o", path] + extra, capture_output=True,
                                   text=True)
                times.append(time.perf_counter() - t0)
                assert r.returncode == 0, r.stderr
                os.unlink(path)
            print("dump PID %-17s time to file: best %s, median %s"
                  % (label, fmt_ms(min(times)), fmt_ms(statistics.median(times))))
            out["dump " + label] = {"best": min(times), "median": statistics.median(times)}
        os.rmdir(tmp)
    finally:
        for p in (with_agent, without):
            p.stdin.close()
            p.wait()

    # mark() and the GC callback, in this process's interpreter
    code = r'''
import sys, time, gc, timeit
sys.path.insert(0, %r)
n = 200000
import heapsnap
t = timeit.timeit("mark('x')", globals={"mark": heapsnap.mark}, number=n) / n
cb = heapsnap._events._gc_callback
def run():
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(2000):
            gc.collect(0)
        best = min(best, time.perf_counter() - t0)
    return best / 2000
with_cb = run()
gc.callbacks.remove(cb)
without = run()
print("%%.0f %%.0f %%.0f" %% (t * 1e9, with_cb * 1e9, without * 1e9))
''' % pkg
    r = subprocess.run([a.python, "-c", code], capture_output=True, text=True, check=True)
    mark_ns, with_cb, without_cb = (float(x) for x in r.stdout.split())
    print("heapsnap.mark(): %.0f ns; gc.collect(0): %.0f ns with heapsnap's GC callback, %.0f ns "
          "without (+%.0f ns per collection)" % (mark_ns, with_cb, without_cb, with_cb - without_cb))
    out["mark_ns"] = mark_ns
    out["gc_callback_ns"] = with_cb - without_cb
    json.dump(out, sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()
