#!/usr/bin/python3
"""`heapsnap record` against `mprof run` (memory_profiler), side by side.

usage: /usr/bin/python3 tests/bench/bench_record.py [--heapsnap build/heapsnap]
       [--mprof /usr/bin/python3-mprof] [--python /usr/bin/python3] [--repeat 5]
       [--hold 10] [--json OUT] [--only grow,pool,cpu]

Three workloads, each run bare and under every tool in one go:
  grow  one process allocating 20 x 10 MiB (written bytes) every 0.25 s,
        holding, freeing half: samples per second achieved, the sampler's
        own CPU, bytes per sample, the peak each tool saw;
  pool  a parent holding 100 MiB (written before the fork, shared
        copy-on-write) and a multiprocessing pool of 10 fork workers each
        allocating 50 MiB for --hold seconds: whether the tree is counted
        right (mprof -M -C sums RSS; heapsnap's total PSS at one instant)
        against what the fixture allocated and a reference read of the
        tree's smaps_rollup at mid-hold with no tool running; and the
        sampler's CPU at 10 ms for 10 processes (goal: < 1 % of a core);
  cpu   a CPU-bound script, its own wall and CPU time bare and under each
        tool, --repeat times interleaved: the slowdown (goal: <= 1.02x).

Tools: heapsnap record at --interval 100ms and 10ms (with the agent, the
default, and --no-agent), mprof run at -T 0.1 (its default) and 0.01.
The sampler's CPU is read from /proc/PID/stat of the sampler process
(utime + stime, its children excluded) while it runs; "steady" leaves out
the first second (interpreter start-up, imports). heapsnap's own account
(recording.sampler_cpu_seconds) is printed beside it.

Figures, not pass/fail. Needs Debian's python3-memory-profiler (mprof) or
`pip install memory_profiler` (then --mprof PATH).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1 << 20
CLK = os.sysconf("SC_CLK_TCK")

GROW = r'''
import sys, time
blocks = []
for i in range(20):
    blocks.append(b"\x01" * (10 << 20))
    time.sleep(0.25)
time.sleep(2)
del blocks[10:]
time.sleep(2)
'''

POOL = r'''
import multiprocessing, sys, time
HOLD = float(sys.argv[1])

def work(mib):
    data = [b"\x02" * (1 << 20) for _ in range(mib)]
    end = time.monotonic() + HOLD
    n = 0
    while time.monotonic() < end:
        n += sum(range(200))
        time.sleep(0.01)
    return len(data)

if __name__ == "__main__":
    shared = [b"\x03" * (1 << 20) for _ in range(100)]   # written before the fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(10) as pool:
        print(sum(pool.map(work, [50] * 10)), len(shared), flush=True)
'''

CPU = r'''
import json, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
c0 = time.process_time()
s = 0
for i in range(n):
    s += i * i % 7
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "s": s}))
'''


def proc_cpu(pid):
    """utime + stime of pid itself, in seconds (None once gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def tree_of(root):
    """pid and its descendants (from /proc/*/stat)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def rollup(pid):
    """(Rss, Pss) of a process from smaps_rollup, bytes."""
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


class Run(object):
    """Run a command, polling the CPU of the sampler process (the command itself)."""

    def __init__(self, cmd, cwd, probe_at=None, probe_root=None):
        self.cmd = cmd
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
        self.cpu = []       # (t, cpu seconds)
        self.probe = None   # (rss sum, pss sum, processes) of the tree at probe_at
        self.probe_at, self.probe_root = probe_at, probe_root
        th = threading.Thread(target=self._poll)
        th.start()
        self.out, self.err = self.p.communicate()
        th.join()
        self.wall = time.monotonic() - self.t0
        self.rc = self.p.returncode

    def _poll(self):
        while self.p.poll() is None:
            t = time.monotonic() - self.t0
            c = proc_cpu(self.p.pid)
            if c is not None:
                self.cpu.append((t, c))
            if self.probe_at is not None and self.probe is None and t >= self.probe_at:
                pids = tree_of(self.p.pid)
                vals = [rollup(p) for p in pids]
                self.probe = (sum(v[0] for v in vals), sum(v[1] for v in vals), len(pids))
            time.sleep(0.05)

    def sampler_cpu(self):
        if not self.cpu:
            return 0.0, 0.0
        total = self.cpu[-1][1]
        later = [x for x in self.cpu if x[0] >= 1.0]
        if len(later) >= 2 and later[-1][0] > later[0][0]:
            steady = (later[-1][1] - later[0][1]) / (later[-1][0] - later[0][0])
        else:
            steady = float("nan")
        return total, steady


def mprof_read(path, at=None):
    """MEM and CHLD lines of an mprof .dat: samples, duration, peak MEM bytes, and MEM
    at `at` seconds after the first sample."""
    mem, chld, times = [], 0, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "MEM":
                mem.append(float(parts[1]) * MIB)
                times.append(float(parts[2]))
            elif parts[0] == "CHLD":
                chld += 1
    dur = times[-1] - times[0] if len(times) > 1 else 0.0
    at_value = None
    if at is not None and times:
        i = min(range(len(times)), key=lambda k: abs(times[k] - times[0] - at))
        at_value = mem[i]
    return {"mem_samples": len(mem), "child_samples": chld, "duration": dur,
            "peak": max(mem) if mem else 0.0, "bytes": os.path.getsize(path), "at": at_value}


def total_at(tl, at, key):
    """The tree's total `key` (rss, pss) from `heapsnap timeline --json` nearest to `at` s."""
    samples = tl["total"].get("samples") or []
    if not samples:
        return None
    best = min(samples, key=lambda x: abs(x["t"] - at))
    return best.get(key)


def timeline(heapsnap, rec):
    r = subprocess.run([heapsnap, "timeline", rec, "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError("timeline %s: %s" % (rec, r.stderr.strip()))
    return json.loads(r.stdout)


def fmt_mib(b):
    return "%.1f MiB" % (b / MIB)


def row(cells, widths):
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths)))


def tools(a, work, name, heapsnap_extra=()):
    """The tool command lines: (label, kind, argv prefix builder)."""
    hs = a.heapsnap
    out = []
    for iv in ("100ms", "10ms"):
        for agent in (True, False):
            label = "heapsnap %s%s" % (iv, "" if agent else " no-agent")
            rec = os.path.join(work, "%s-%s-%s.hsrec" % (name, iv, "agent" if agent else "noagent"))
            argv = [hs, "record", "-q", "-o", rec, "--interval", iv] + list(heapsnap_extra)
            if not agent:
                argv.append("--no-agent")
            out.append((label, "heapsnap", argv + ["--"], rec))
    for iv in ("0.1", "0.01"):
        dat = os.path.join(work, "%s-%s.dat" % (name, iv))
        out.append(("mprof %s s" % iv, "mprof", [a.mprof, "run", "-T", iv, "-o", dat], dat))
    return out


def bench_grow(a, work, results):
    prog = os.path.join(work, "grow.py")
    open(prog, "w").write(GROW)
    print("\n== grow: one process, 20 x 10 MiB then half freed (~9 s)")
    base = Run([a.python, "-c", "import time; time.sleep(1)"], work, probe_at=0.5)
    print("   (an idle %s: RSS %s, PSS %s)" % (a.python, fmt_mib(base.probe[0]),
                                             fmt_mib(base.probe[1])))
    widths = [22, 10, 10, 12, 12, 11, 11, 13]
    print(row(["tool", "samples/s", "(other)", "CPU total", "CPU steady", "bytes", "B/sample",
               "peak seen"], widths))
    for label, kind, argv, out in tools(a, work, "grow"):
        for f in (out,):
            if os.path.exists(f):
                os.unlink(f)
        cmd = argv + [a.python, prog] if kind == "heapsnap" else argv + [prog]
        r = Run(cmd, work)
        total, steady = r.sampler_cpu()
        if r.rc != 0 or not os.path.exists(out):
            print(row([label, "failed rc=%d" % r.rc, "", "", "", "", "", ""], widths))
            print("     ", (r.err or r.out).strip().splitlines()[-1:] if (r.err or r.out) else "")
            results.append({"workload": "grow", "tool": label, "failed": r.rc, "stderr": r.err[-500:]})
            continue
        if kind == "heapsnap":
            tl = timeline(a.heapsnap, out)
            rec = tl["recording"]
            root = [p for p in tl["processes"] if p["root"]][0]
            rate = root["rates"]["rss"]
            other = "pss %.1f" % (root["rates"].get("pss") or 0)
            nbytes, bps = rec["file_bytes"], rec["bytes_per_sample"]
            peak = tl["total"]["peak"]["rss"]["bytes"]
            extra = {"sampler_cpu_self": rec["sampler_cpu_seconds"], "samples": rec["samples"],
                     "rates": root["rates"], "peak_pss": (tl["total"]["peak"].get("pss") or {}).get("bytes")}
        else:
            m = mprof_read(out)
            rate = (m["mem_samples"] - 1) / m["duration"] if m["duration"] else 0
            other = ""
            nbytes = m["bytes"]
            bps = m["bytes"] / max(1, m["mem_samples"] + m["child_samples"])
            peak = m["peak"]
            extra = {"samples": m["mem_samples"]}
        print(row([label, "%.1f" % rate, other, "%.2f s" % total,
                   "%.2f %%" % (100 * steady), nbytes, "%.2f" % bps, fmt_mib(peak)], widths))
        results.append(dict({"workload": "grow", "tool": label, "samples_per_s": rate,
                             "sampler_cpu_s": total, "sampler_cpu_steady": steady,
                             "file_bytes": nbytes, "bytes_per_sample": bps, "peak_rss": peak,
                             "wall": r.wall}, **extra))
    print("   allocated: 200 MiB of bytes objects at the peak, on top of the interpreter")


def bench_pool(a, work, results):
    prog = os.path.join(work, "pool.py")
    open(prog, "w").write(POOL)
    hold = a.hold
    print("\n== pool: parent 100 MiB shared copy-on-write + 10 fork workers x 50 MiB, held %g s"
          % hold)
    ref = Run([a.python, prog, str(hold)], work, probe_at=2.0 + hold / 2)
    if ref.probe:
        print("   reference (no tool, smaps_rollup of the tree at mid-hold): %d processes, "
              "sum of RSS %s, sum of PSS %s" % (ref.probe[2], fmt_mib(ref.probe[0]),
                                                fmt_mib(ref.probe[1])))
    print("   allocated by the fixture: 100 + 10 x 50 = 600 MiB (+ 11 interpreters)")
    mid = 2.0 + hold / 2
    widths = [22, 6, 10, 11, 11, 9, 9, 12, 12, 12]
    print(row(["tool", "procs", "samples/s", "CPU total", "CPU steady", "bytes", "B/sample",
               "tree peak", "(RSS sum)", "mid-hold"], widths))
    variants = tools(a, work, "pool")
    # mprof needs -M -C for a tree (-C alone runs the script under memory_profiler's own
    # __main__, where the pool cannot pickle the worker function: tried once, below)
    runs = []
    for label, kind, argv, out in variants:
        if kind == "mprof":
            argv = argv[:2] + ["-M", "-C"] + argv[2:]
            label += " -M -C"
        runs.append((label, kind, argv, out))
    dat = os.path.join(work, "pool-C.dat")
    runs.append(("mprof 0.1 s -C", "mprof", [a.mprof, "run", "-C", "-o", dat], dat))
    for label, kind, argv, out in runs:
        if os.path.exists(out):
            os.unlink(out)
        cmd = argv + [a.python, prog, str(hold)] if kind == "heapsnap" else argv + [prog, str(hold)]
        r = Run(cmd, work)
        total, steady = r.sampler_cpu()
        ok = r.rc == 0 and os.path.exists(out) and "500 100" in r.out
        if kind == "heapsnap" and os.path.exists(out):
            tl = timeline(a.heapsnap, out)
            rec = tl["recording"]
            procs = len(tl["processes"])
            rate = rec["samples"] / rec["duration"] if rec["duration"] else 0
            pk = tl["total"]["peak"]
            peak = (pk.get("pss") or {}).get("bytes") or 0
            rss_sum = pk["rss"]["bytes"]
            nbytes, bps = rec["file_bytes"], rec["bytes_per_sample"]
            at = total_at(tl, mid, "pss") or total_at(tl, mid, "rss") or 0
            extra = {"sampler_cpu_self": rec["sampler_cpu_seconds"], "processes": procs,
                     "rss_rate_per_process": statistics.median(
                         [p["rates"]["rss"] for p in tl["processes"] if p["rates"].get("rss")]),
                     "sum_of_process_peaks_rss": tl["total"].get("sum_of_process_peaks_rss")}
        elif os.path.exists(out):
            m = mprof_read(out, mid)
            procs = ""
            at = m["at"] or 0
            rate = (m["mem_samples"] + m["child_samples"]) / m["duration"] if m["duration"] else 0
            peak, rss_sum = m["peak"], m["peak"]
            nbytes = m["bytes"]
            bps = m["bytes"] / max(1, m["mem_samples"] + m["child_samples"])
            extra = {"mem_samples": m["mem_samples"], "child_samples": m["child_samples"]}
        else:
            procs = rate = peak = rss_sum = nbytes = bps = at = 0
            extra = {}
        status = "" if ok else " (program failed: exit %d)" % r.rc
        print(row([label, procs, "%.1f" % rate, "%.2f s" % total, "%.2f %%" % (100 * steady),
                   nbytes, "%.2f" % bps, fmt_mib(peak), fmt_mib(rss_sum), fmt_mib(at)], widths)
              + status)
        if not ok:
            last = [ln for ln in (r.err or "").splitlines() if ln.strip()]
            if last:
                print("      stderr: %s" % last[-1][:160])
        results.append(dict({"workload": "pool", "tool": label, "ok": ok, "rc": r.rc,
                             "samples_per_s": rate, "sampler_cpu_s": total,
                             "sampler_cpu_steady": steady, "file_bytes": nbytes,
                             "bytes_per_sample": bps, "tree_peak": peak, "rss_sum_peak": rss_sum,
                             "mid_hold": at, "wall": r.wall}, **extra))
    if ref.probe:
        results.append({"workload": "pool", "tool": "reference", "rss_sum": ref.probe[0],
                        "pss_sum": ref.probe[1], "processes": ref.probe[2]})
    print("   heapsnap: tree peak = sum of PSS at one instant, mid-hold = that sum at %.0f s "
          "(PSS estimated between smaps_rollup samples); mprof: MEM with -C = parent + children "
          "RSS" % mid)


def bench_cpu(a, work, results):
    prog = os.path.join(work, "cpu.py")
    open(prog, "w").write(CPU)
    n = str(a.iterations)
    configs = [("bare", [a.python, prog, n])]
    for label, kind, argv, out in tools(a, work, "cpu"):
        configs.append((label, argv + [a.python, prog, n] if kind == "heapsnap" else
                        argv + ["--nopython", a.python, prog, n]))
    print("\n== cpu: a CPU-bound loop of %s iterations, its own wall and CPU time over %d "
          "interleaved rounds (median and best)" % (n, a.repeat))
    times = {c[0]: [] for c in configs}
    for rep in range(a.repeat):
        # each round starts one configuration later: none always runs after the same one
        k = rep % len(configs)
        for label, cmd in configs[k:] + configs[:k]:
            r = Run(cmd, work)
            line = [ln for ln in r.out.splitlines() if ln.startswith("{")]
            if r.rc != 0 or not line:
                times[label].append(None)
                continue
            times[label].append(json.loads(line[-1]))
    base = [t for t in times["bare"] if t]
    base_w = statistics.median(t["wall"] for t in base)
    base_c = statistics.median(t["cpu"] for t in base)
    min_w = min(t["wall"] for t in base)
    min_c = min(t["cpu"] for t in base)
    widths = [22, 10, 8, 10, 8, 10, 8, 10, 8]
    print(row(["run", "wall med", "x bare", "CPU med", "x bare", "wall min", "x bare", "CPU min",
               "x bare"], widths))
    for label, _ in configs:
        ok = [t for t in times[label] if t]
        if not ok:
            print(row([label, "failed", "", "", "", "", "", "", ""], widths))
            continue
        w = statistics.median(t["wall"] for t in ok)
        c = statistics.median(t["cpu"] for t in ok)
        mw = min(t["wall"] for t in ok)
        mc = min(t["cpu"] for t in ok)
        print(row([label, "%.3f s" % w, "%.3f" % (w / base_w), "%.3f s" % c, "%.3f" % (c / base_c),
                   "%.3f s" % mw, "%.3f" % (mw / min_w), "%.3f s" % mc, "%.3f" % (mc / min_c)],
                  widths))
        results.append({"workload": "cpu", "tool": label, "wall": w, "cpu": c,
                        "slowdown_wall": w / base_w, "slowdown_cpu": c / base_c,
                        "slowdown_wall_min": mw / min_w, "slowdown_cpu_min": mc / min_c,
                        "runs": [t and t["wall"] for t in times[label]]})
    print("   mprof runs the script with --nopython here (a plain child, as heapsnap does);"
          " each figure is the target's own clock")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heapsnap", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "build", "heapsnap"))
    ap.add_argument("--mprof", default=shutil.which("mprof") or "/usr/bin/python3-mprof")
    ap.add_argument("--python", default="/usr/bin/python3", help="the targets' interpreter")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--iterations", type=int, default=20000000)
    ap.add_argument("--only", default="grow,pool,cpu")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--keep", help="keep the recordings and .dat files in this directory")
    a = ap.parse_args()
    a.heapsnap = os.path.abspath(a.heapsnap)
    for tool in (a.heapsnap, a.mprof, a.python):
        if not os.access(tool, os.X_OK):
            sys.exit("bench_record: cannot run '%s'" % tool)
    work = a.keep or tempfile.mkdtemp(prefix="bench-record-")
    os.makedirs(work, exist_ok=True)
    print("heapsnap record vs mprof run: %s, %s, targets run by %s; %d CPUs; load %.2f"
          % (a.heapsnap, a.mprof, a.python, os.cpu_count(), os.getloadavg()[0]))
    print("command: %s" % " ".join([sys.executable] + sys.argv))
    results = []
    only = a.only.split(",")
    try:
        if "grow" in only:
            bench_grow(a, work, results)
        if "pool" in only:
            bench_pool(a, work, results)
        if "cpu" in only:
            bench_cpu(a, work, results)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
