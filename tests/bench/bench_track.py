"""Allocation tracking overhead: heapsnap.track against plain and tracemalloc.

usage: PYTHONPATH=build/python python3 tests/bench/bench_track.py [--repeat 5] [--scale 1.0]
       [--native LIB]    (also runs heapsnap sampled with LD_PRELOAD=LIB)
       [--scalene PY]    (a python with scalene installed, same version; default: this one)
       [--slow-repeat 1] [--no-micro]

Prints, for one interpreter:
  - ns added per hooked allocator call when the call is not sampled (a loop
    of small allocations, sampled tracking vs none, divided by the number of
    allocator calls counted in exact mode);
  - ns per recorded sample (_track_bench: capture + intern + record at the
    benchmark's stack depth), and the cost per allocation in exact mode;
  - for an allocation-heavy script (parse/aggregate job, JSON round trip,
    object graph build), each mode in its own process: wall time, slowdown
    against plain, peak RSS (ru_maxrss), and whether the known line (the
    retained table) comes first by live bytes; peers in the same run:
    tracemalloc (1 and 10 frames), memory_profiler's line profiler (what
    @profile runs) and Scalene's memory mode when installed (else a printed
    reason). A Markdown table.
Figures, not pass/fail.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


# ------------------------------------------------------------ the workload

def parse_aggregate(scale):
    lines = ["%d,user%d,%d.%02d,%s" % (i, i % 997, i % 1000, i % 100, "abcdefgh"[i % 8])
             for i in range(int(200000 * scale))]
    rows = []
    for ln in lines:
        f = ln.split(",")
        rows.append({"id": int(f[0]), "user": f[1], "amount": float(f[2]), "cat": f[3]})
    agg = {}
    for r in rows:
        a = agg.setdefault(r["user"], [0, 0.0])
        a[0] += 1
        a[1] += r["amount"]
    return rows  # KNOWN: the retained table is built on the `rows.append` line


def json_round_trip(scale):
    doc = [{"k%d" % j: [j, str(j), {"x": j * 1.5}] for j in range(20)} for _ in range(int(3000 * scale))]
    for _ in range(3):
        doc = json.loads(json.dumps(doc))
    return len(doc)


class Node(object):
    __slots__ = ("value", "children")

    def __init__(self, value):
        self.value = value
        self.children = []


def object_graph(scale):
    root = Node(0)
    level = [root]
    count = 1
    while count < int(300000 * scale):
        nxt = []
        for n in level:
            for k in range(3):
                c = Node((n.value, k))
                n.children.append(c)
                nxt.append(c)
                count += 1
        level = nxt
    return count


def workload(scale):
    keep = parse_aggregate(scale)
    json_round_trip(scale)
    object_graph(scale)
    return keep


def known_line():
    with open(HERE) as f:
        for i, text in enumerate(f, 1):
            if "rows.append({" in text:
                return i
    return -1


# ------------------------------------------------------------ one mode in a child

def worker(mode, scale):
    """Times the workload with tracking on (imports, start and the report
    afterwards are timed apart: report_seconds)."""
    attributed = None
    top_line = None
    report = 0.0
    if mode == "plain":
        t0 = time.perf_counter()
        workload(scale)
        dt = time.perf_counter() - t0
    elif mode.startswith("tracemalloc"):
        import tracemalloc
        tracemalloc.start(int(mode.split("-")[1]))
        t0 = time.perf_counter()
        keep = workload(scale)
        dt = time.perf_counter() - t0
        snap = tracemalloc.take_snapshot()
        top = snap.statistics("lineno")[0]
        top_line = top.traceback[0].lineno
        attributed = top_line == known_line()
        tracemalloc.stop()
        report = time.perf_counter() - t0 - dt
        del keep
    elif mode == "memory_profiler":
        # @profile's machinery (memory_profiler.profile wraps the function in a
        # LineProfiler and prints show_results): the three workload functions,
        # RSS read after every line (psutil backend, its default)
        import memory_profiler
        prof = memory_profiler.LineProfiler(backend="psutil")
        g = globals()
        saved = {}
        for name in ("parse_aggregate", "json_round_trip", "object_graph"):
            saved[name] = g[name]
            g[name] = prof(g[name])
        t0 = time.perf_counter()
        keep = workload(scale)
        dt = time.perf_counter() - t0
        g.update(saved)
        inc = {}
        for code, lines in prof.code_map.items():
            for ln, m in lines:
                if m and m[0] > 0:
                    inc[ln] = inc.get(ln, 0) + m[0]
        top_line = max(inc, key=inc.get) if inc else None
        attributed = top_line == known_line()
        with open(os.devnull, "w") as null:
            memory_profiler.show_results(prof, stream=null)
        report = time.perf_counter() - t0 - dt
        del keep
    elif mode == "scalene":
        # run under `scalene run --memory` (see run_scalene); the profile is
        # read by the parent once scalene has written it
        t0 = time.perf_counter()
        keep = workload(scale)
        dt = time.perf_counter() - t0
        del keep
    else:
        import importlib
        hst = importlib.import_module("heapsnap._track")
        exact = mode == "heapsnap-exact"
        t = hst.track(exact=exact, seed=1).start()
        t0 = time.perf_counter()
        keep = workload(scale)
        dt = time.perf_counter() - t0
        t.stop()
        top = t.lines(by="live", top=1)
        top_line = top[0].line if top else None
        attributed = top_line == known_line()
        report = time.perf_counter() - t0 - dt
        del keep
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = json.dumps({"mode": mode, "seconds": dt, "maxrss_kb": rss, "attributed": attributed,
                       "top_line": top_line, "report_seconds": report})
    if os.environ.get("HS_BENCH_OUT"):  # under scalene, whose own output shares stdout
        with open(os.environ["HS_BENCH_OUT"], "w") as f:
            f.write(line + "\n")
    else:
        print(line)


def micro():
    import importlib
    hst = importlib.import_module("heapsnap._track")
    from heapsnap import _heapsnap

    def loop(n):
        for i in range(n):
            x = (i, i + 1, i + 2)  # a tuple and two ints per iteration
            y = [x]
        return y

    n = 2000000
    loop(1000)
    best = {}
    for mode in ("plain", "sampled", "plain", "sampled"):
        t0 = time.perf_counter()
        if mode == "plain":
            loop(n)
        else:
            with hst.track(seed=1):
                loop(n)
        best[mode] = min(best.get(mode, 1e9), time.perf_counter() - t0)
    with hst.track(exact=True) as t:
        loop(n // 10)
    calls = 2 * t.totals["allocations"] * 10  # each allocation has a free
    t0 = time.perf_counter()
    with hst.track(exact=True):
        loop(n // 10)
    exact_s = (time.perf_counter() - t0) * 10
    per_call = (best["sampled"] - best["plain"]) / calls * 1e9
    per_alloc_exact = (exact_s - best["plain"]) / (calls / 2) * 1e9

    def nest(d):
        if d == 0:
            with hst.track(exact=True):
                return _heapsnap._track_bench(20000)
        return nest(d - 1)
    # numpy's reported buffers (PyTraceMalloc_Track/Untrack through the
    # patched slots): time added per array made and dropped
    np_ns = None
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        def nploop(m):
            for i in range(m):
                a = np.empty(16)  # one Track and one Untrack per iteration
            return a
        m = 500000
        nploop(1000)
        nb = {}
        for mode in ("plain", "sampled", "plain", "sampled"):
            t0 = time.perf_counter()
            if mode == "plain":
                nploop(m)
            else:
                with hst.track(seed=1, native=False):
                    nploop(m)
            nb[mode] = min(nb.get(mode, 1e9), time.perf_counter() - t0)
        np_ns = (nb["sampled"] - nb["plain"]) / m * 1e9
    return {
        "numpy_ns_per_buffer": np_ns,
        "allocator_calls": calls,
        "plain_s": best["plain"], "sampled_s": best["sampled"],
        "ns_per_unsampled_call": per_call,
        "ns_per_sample_depth_3": nest(0), "ns_per_sample_depth_30": nest(27),
        "ns_per_sample_depth_64": nest(70),
        "exact_ns_per_allocation": per_alloc_exact,
    }


def scalene_python(path):
    """The interpreter to run `scalene run` with: PATH (a python with scalene
    installed, e.g. a venv's), or this interpreter if it imports scalene.
    Returns (python, None) or (None, why not)."""
    py = path or sys.executable
    r = subprocess.run([py, "-c", "import sys, scalene; print('%d.%d.%d' % sys.version_info[:3])"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        return None, "scalene is not importable by %s (pip install scalene into a venv, then --scalene VENV/bin/python)" % py
    if r.stdout.strip() != sys.version.split()[0]:
        return None, "%s is Python %s, not this interpreter's %s" % (py, r.stdout.strip(), sys.version.split()[0])
    return py, None


def run_scalene(py, scale, tmp):
    """One run under `scalene run --memory`: the worker's figures, and
    whether Scalene's line with the most net growth is the known line."""
    out = os.path.join(tmp, "worker.json")
    prof = os.path.join(tmp, "profile.json")
    env = dict(os.environ, HS_BENCH_OUT=out)
    subprocess.run([py, "-m", "scalene", "run", "--memory", "-o", prof, HERE, "---",
                    "--worker", "scalene", "--scale", str(scale)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    with open(out) as f:
        r = json.loads(f.read())
    with open(prof) as f:
        d = json.load(f)
    lines = d.get("files", {}).get(HERE, {}).get("lines", [])
    grown = [l for l in lines if l.get("n_growth_mb", 0) > 0]
    r["top_line"] = max(grown, key=lambda l: l["n_growth_mb"])["lineno"] if grown else None
    r["attributed"] = r["top_line"] == known_line()
    r["file_bytes"] = os.path.getsize(prof)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--native", help="path of libheapsnap_preload.so")
    ap.add_argument("--scalene", help="a python that imports scalene (same version as this one)")
    ap.add_argument("--slow-repeat", type=int, default=1,
                    help="runs of memory_profiler and Scalene (default 1: they are slow)")
    ap.add_argument("--no-micro", action="store_true")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.scale)
    if a.micro:
        print(json.dumps(micro()))
        return
    print("python %s; scale %.2f; %d CPUs; load %.2f" % (sys.version.split()[0], a.scale,
                                                      os.cpu_count(), os.getloadavg()[0]))
    if not a.no_micro:
        m = json.loads(subprocess.run([sys.executable, HERE, "--micro"], check=True,
                                      stdout=subprocess.PIPE, text=True).stdout)
        print("micro: %d allocator calls; not sampled: %.1f ns added per call; per sample: %.0f ns "
              "(depth 3), %.0f ns (depth 30), %.0f ns (depth 64); exact: %.0f ns per allocation" % (
                  m["allocator_calls"], m["ns_per_unsampled_call"], m["ns_per_sample_depth_3"],
                  m["ns_per_sample_depth_30"], m["ns_per_sample_depth_64"], m["exact_ns_per_allocation"]))
        if m.get("numpy_ns_per_buffer") is not None:
            print("micro: numpy's reported buffers (np.empty(16) made and dropped, sampled, no "
                  "interposer): %.0f ns added per array" % m["numpy_ns_per_buffer"])
    modes = ["plain", "heapsnap-sampled", "heapsnap-exact", "tracemalloc-1", "tracemalloc-10"]
    if a.native:
        modes.insert(2, "heapsnap-sampled-native")
    skipped = []
    slow = []
    r = subprocess.run([sys.executable, "-c", "import memory_profiler, psutil"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        slow.append("memory_profiler")
    else:
        skipped.append(("memory_profiler", "memory_profiler (with psutil) is not importable by %s "
                        "(Debian: apt-get install python3-memory-profiler; else pip install "
                        "memory_profiler)" % sys.executable))
    sc_py, why = scalene_python(a.scalene)
    if sc_py:
        slow.append("scalene")
    else:
        skipped.append(("scalene", why))
    res = {}
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench_track.") as tmp:
        for rep in range(max(a.repeat, a.slow_repeat)):
            run_modes = (modes if rep < a.repeat else []) + (slow if rep < a.slow_repeat else [])
            for mode in run_modes:
                if mode == "scalene":
                    res.setdefault(mode, []).append(run_scalene(sc_py, a.scale, tmp))
                    continue
                env = dict(os.environ)
                wmode = mode
                if mode == "heapsnap-sampled-native":
                    env["LD_PRELOAD"] = a.native
                    wmode = "heapsnap-sampled"
                out = subprocess.run([sys.executable, HERE, "--worker", wmode, "--scale", str(a.scale)],
                                     check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
                res.setdefault(mode, []).append(json.loads(out.strip().splitlines()[-1]))
    # the fastest run of each mode: on a shared machine, noise only adds time
    base = min(r["seconds"] for r in res["plain"])
    base_rss = statistics.median(r["maxrss_kb"] for r in res["plain"])
    print()
    print("known line: %s:%d (the retained table). Seconds: best of %d (%d for memory_profiler "
          "and Scalene), workload only." % (os.path.basename(HERE), known_line(), a.repeat,
                                           a.slow_repeat))
    print()
    print("| mode | runs | seconds | slowdown | peak RSS | RSS x | report s | known line first (its first line) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for mode in modes + slow:
        rs = res[mode]
        s = min(r["seconds"] for r in rs)
        rss = statistics.median(r["maxrss_kb"] for r in rs)
        att = rs[0]["attributed"]
        rep = min(r["report_seconds"] for r in rs)
        print("| %s | %d | %.3f | %.2fx | %.1f MiB | %.2fx | %.3f | %s |" % (
            mode, len(rs), s, s / base, rss / 1024.0, rss / base_rss, rep,
            "-" if att is None else "%s (%s)" % ("yes" if att else "no", rs[0].get("top_line"))))
    for mode, why in skipped:
        print("| %s | 0 | skipped: %s | | | | | |" % (mode, why))
    print()
    print("memory_profiler: LineProfiler (what @profile uses) on the three workload functions, "
          "psutil backend; known line first = largest summed Increment. Scalene: `scalene run "
          "--memory`, known line first = largest n_growth_mb; its RSS includes its own runtime.")


if __name__ == "__main__":
    main()
