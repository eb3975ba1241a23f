"""`heapsnap dump PID` against running targets: in-process vs --fork, and peers.

usage: python3 tests/bench/bench_live.py --cli build/heapsnap [--python PY]
       [--sizes 1000000,5000000] [--repeat 3] [--load-items 1000000]
       [--load-seconds 20] [--rate 200] [--every 2] [--peer-venv DIR] [--peer-timeout 30]
       [--only heap,latency,peers] [--json FILE]

Every target is a separate process started with an environment that does
not have our package on PYTHONPATH: it imports nothing of ours.

(a) heap: N instances of a small class with an int attribute each (about
    2N objects) and a "ticker" thread that sleeps 1 ms in a loop and records
    the longest gap between two ticks: the stall the target's own Python
    threads saw, measured inside the target. The main thread waits on stdin
    (so dumps are taken "blocked in a system call"). For each size, best of
    --repeat, `heapsnap dump PID` in-process and with --fork: the pause the
    CLI prints, the pause in the snapshot's metadata (`heapsnap info
    --json`), the ticker's stall, time-to-file (the CLI's wall time, start to
    exit: the file is then in place), and for --fork the child's walk and
    private dirty memory. Pause per GiB of the target's RSS.
(b) latency: a threaded http.server (HTTP/1.1 keep-alive) holding
    --load-items instances, hit by a client process at --rate requests/s over
    4 connections on a fixed schedule (a request's latency counts from the
    time it was due, so requests held back by a pause are counted fully):
    p50/p99/max for --load-seconds without dumps, then with a dump every
    --every seconds in-process, then with --fork.
(c) peers on the (a) target of the first size: `memray attach` (allocations
    from then on, through gdb; the target must be able to import memray, so
    it runs with the venv's site-packages on PYTHONPATH) and `py-spy dump`
    (stacks only), time-to-result and the target's stall, beside
    `heapsnap dump` + `heapsnap summary`. --peer-venv names a venv with
    memray and py-spy installed (python3 -m venv DIR && DIR/bin/pip install
    memray py-spy); a peer that cannot run is reported with the reason.

Prints figures as it goes, then Markdown tables (for docs/benchmarks.md).
This is not a pass/fail test; times on a shared 2-core machine move by
tens of percent between runs.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HEAP_TARGET = r'''
import sys, threading, time
class Item:
    def __init__(self, i):
        self.i = i
keep = [Item(i) for i in range(%d)]
gap = [0.0]
def tick():
    last = time.monotonic()
    while True:
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > gap[0]:
            gap[0] = now - last
        last = now
def control():
    for line in sys.stdin:
        print("%%.6f" %% gap[0], flush=True)
        gap[0] = 0.0
threading.Thread(target=tick, daemon=True, name="ticker").start()
%s
'''
# the main thread runs Python every 50 ms, as a worker polling for jobs
MAIN_POLLS = '''threading.Thread(target=control, daemon=True, name="control").start()
print("ready", flush=True)
while True:
    time.sleep(0.05)'''
# the main thread blocked for good in a system call, as a server in accept()
MAIN_BLOCKED = '''print("ready", flush=True)
control()'''

SERVER_TARGET = r'''
import http.server, socketserver
class Item:
    def __init__(self, i):
        self.i = i
keep = [Item(i) for i in range(%d)]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes
    def do_GET(self):
        body = b"%%d" %% sum(x.i for x in keep[:200])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
srv = S(("127.0.0.1", 0), H)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever(poll_interval=0.5)
'''

# Open-loop client: each connection sends on a fixed schedule; latency is
# measured from the time a request was due, so a stall of the server is
# charged to every request it held back (no coordinated omission).
CLIENT = r'''
import http.client, json, sys, threading, time
port, conns, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
interval = conns / rate
lat, errors = [], [0]
lock = threading.Lock()
t0 = time.monotonic() + 0.2
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    mine = []
    n = 0
    while True:
        due = t0 + k * interval / conns + n * interval
        if due > t0 + seconds:
            break
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            mine.append(time.monotonic() - due)
        except Exception:
            errors[0] += 1
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n += 1
    with lock:
        lat.extend(mine)
ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
for t in ts: t.start()
for t in ts: t.join()
json.dump({"latencies": lat, "errors": errors[0]}, sys.stdout)
'''


def target_env(extra_path=None):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return env


class Target:
    def __init__(self, py, code, extra_path=None):
        self.p = subprocess.Popen([py, "-c", code], env=target_env(extra_path),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "ready":
            self.stop()
            raise RuntimeError("target did not start")
        self.info = line[1:]
        self.pid = self.p.pid

    def stall(self):
        """The longest gap between the ticker's ticks since the last call,
        less its 1 ms sleep."""
        self.p.stdin.write("gap\n")
        self.p.stdin.flush()
        return max(0.0, float(self.p.stdout.readline()) - 0.001)

    def rss(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def run_dump(cli, pid, out, fork):
    cmd = [cli, "dump", str(pid), "-o", out] + (["--fork"] if fork else ["--no-fork"])
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (r.stdout + r.stderr).strip()))
    m = re.search(r"pause ([0-9.]+) ms", r.stdout)
    return wall, float(m.group(1)) / 1e3 if m else None, r.stdout


def info(cli, snap):
    r = subprocess.run([cli, "info", snap, "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def items(n):
    return "%gM" % (n / 1e6) if n >= 1e6 else "%gk" % (n / 1e3)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# --- (a) pause and time-to-file ---------------------------------------------

def bench_heap(a, tmp):
    rows = []
    for n in a.sizes:
        t = Target(a.python, HEAP_TARGET % (n, MAIN_POLLS))
        try:
            t.stall()  # reset after the build
            time.sleep(0.5)
            row = {"items": n, "idle_stall": t.stall()}
            print("%s items: the ticker's longest gap over 0.5 s without a dump: %.1f ms"
                  % (items(n), row["idle_stall"] * 1e3), flush=True)
            for fork in (False, True):
                key = "fork" if fork else "inproc"
                best = {}
                for _ in range(a.repeat):
                    t.stall()
                    rss = t.rss()
                    snap = os.path.join(tmp, "heap.hsnap")
                    wall, cli_pause, _ = run_dump(a.cli, t.pid, snap, fork)
                    stall = t.stall()
                    d = info(a.cli, snap)
                    dm = d["meta"]["dump"]
                    fig = {"wall": wall, "cli_pause": cli_pause, "meta_pause": dm["pause_seconds"],
                           "stall": stall, "rss": rss, "objects": d["counts"]["objects"],
                           "file_bytes": os.path.getsize(snap)}
                    if fork:
                        fig["child_dirty"] = dm["fork"]["child_private_dirty_bytes"]
                        fig["child_walk"] = dm["walk_seconds"]
                    os.unlink(snap)
                    for k, v in fig.items():
                        if k not in best or (v is not None and v < best[k]):
                            best[k] = v
                    time.sleep(0.3)
                row[key] = best
                gib = best["rss"] / 2**30
                print("%d items (%d objects), RSS %.0f MiB, %s: pause %.1f ms (metadata %.1f, "
                      "ticker stall %.1f) = %.1f ms/GiB; time-to-file %.3f s%s"
                      % (n, best["objects"], best["rss"] / 2**20, key, best["cli_pause"] * 1e3,
                         best["meta_pause"] * 1e3, best["stall"] * 1e3,
                         best["cli_pause"] * 1e3 / gib, best["wall"],
                         "; child walk %.2f s, private dirty %.1f MiB"
                         % (best["child_walk"], best["child_dirty"] / 2**20) if fork else ""),
                      flush=True)
            rows.append(row)
        finally:
            t.stop()
    return rows


# --- (b) request latency under periodic dumps --------------------------------

def bench_latency(a, tmp):
    t = Target(a.python, SERVER_TARGET % a.load_items)
    port = t.info[0]
    out = []
    try:
        for mode in ("none", "inproc", "fork"):
            c = subprocess.Popen([a.python, "-c", CLIENT, port, "4", str(a.rate),
                                  str(a.load_seconds)], stdout=subprocess.PIPE, text=True,
                                 env=target_env())
            dumps, pauses = 0, []
            start = time.monotonic()
            if mode != "none":
                nxt = start + 1.0
                while c.poll() is None and time.monotonic() < start + a.load_seconds - 0.5:
                    d = nxt - time.monotonic()
                    if d > 0:
                        time.sleep(d)
                    snap = os.path.join(tmp, "lat.hsnap")
                    _, pause, _ = run_dump(a.cli, t.pid, snap, mode == "fork")
                    os.unlink(snap)
                    dumps += 1
                    pauses.append(pause)
                    nxt += a.every
            res = json.loads(c.communicate()[0])
            lat = res["latencies"]
            r = {"mode": mode, "requests": len(lat), "errors": res["errors"], "dumps": dumps,
                 "p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
                 "max": max(lat) if lat else float("nan"),
                 "max_pause": max(pauses) if pauses else 0.0, "rss": t.rss()}
            out.append(r)
            print("latency, dumps: %s: %d requests (%d errors), %d dumps (longest pause %.1f ms): "
                  "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms"
                  % (mode, r["requests"], r["errors"], dumps, r["max_pause"] * 1e3,
                     r["p50"] * 1e3, r["p99"] * 1e3, r["p999"] * 1e3, r["max"] * 1e3), flush=True)
    finally:
        t.stop()
    return out


# --- (c) peers -----------------------------------------------------------------

def timed(cmd, timeout=None):
    """Run cmd in its own process group (memray runs gdb under it): (seconds,
    CompletedProcess), or (seconds, None) when it timed out; the group is
    then killed."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        return time.monotonic() - t0, None
    return time.monotonic() - t0, subprocess.CompletedProcess(cmd, p.returncode, out, err)


def memray_site(venv):
    if not venv:
        return None
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                        "import memray, os; print(os.path.dirname(os.path.dirname("
                        "memray.__file__)))"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def run_memray(memray, t, tmp, n, timeout):
    """memray attach for 1 s, then memray stats: a peer row."""
    mb = os.path.join(tmp, "memray.bin")
    js = os.path.join(tmp, "memray.json")
    dur = 1
    t.stall()
    t0 = time.monotonic()
    w, r = timed([memray, "attach", "--duration", str(dur), "-o", mb, "-f", str(t.pid)],
                 timeout=timeout)
    if r is None:
        return {"error": "`memray attach` had not attached after %.0f s: its pending call and "
                "breakpoints (malloc, PyErr_CheckSignals...) wait for the target to run, and "
                "this one's main thread is blocked in read()" % timeout}
    if r.returncode != 0:
        return {"error": (r.stdout + r.stderr).strip().splitlines()[-1]}
    stall = t.stall()
    # the file is complete once tracking stopped (after --duration)
    while True:
        _, st = timed([memray, "stats", "--json", "-o", js, "-f", mb], timeout=60)
        if (st is not None and st.returncode == 0 and time.monotonic() - t0 > dur) or \
                time.monotonic() - t0 > 60:
            break
        time.sleep(0.1)
    total = time.monotonic() - t0
    try:
        with open(js) as f:
            mj = json.load(f)
        sees = ("allocations made after the attach: %d, %.1f KiB; none of the %d objects "
                "already there" % (mj["metadata"]["total_allocations"],
                                   mj["total_bytes_allocated"] / 1024, n))
    except (OSError, ValueError, KeyError) as e:
        sees = "stats failed: %s" % e
    return {"result_seconds": total, "attach_seconds": w, "stall": stall, "sees": sees}


def bench_peers(a, tmp):
    n = a.sizes[0]
    res = {"items": n, "peers": []}
    venv = a.peer_venv
    # memray's injected code imports memray inside the target: give the
    # target the venv's site-packages (it still imports nothing at start)
    site = memray_site(venv)
    t = Target(a.python, HEAP_TARGET % (n, MAIN_POLLS), extra_path=site)
    try:
        t.stall()
        time.sleep(0.5)
        t.stall()
        res["rss"] = t.rss()
        # heapsnap, for reference: the file, then a picture of the heap
        for fork in (False, True):
            snap = os.path.join(tmp, "peer.hsnap")
            wall, pause, _ = run_dump(a.cli, t.pid, snap, fork)
            stall = t.stall()
            s_wall, r = timed([a.cli, "summary", snap, "--top", "3"])
            top = [ln.split() for ln in r.stdout.splitlines() if "Item" in ln]
            res["peers"].append({
                "tool": "`heapsnap dump%s` + `summary`" % (" --fork" if fork else ""),
                "result_seconds": wall + s_wall, "attach_seconds": wall, "stall": stall,
                "sees": "every object with its references (%s: %s)"
                        % (top[0][0], top[0][1]) if top else "?"})
            os.unlink(snap)
            time.sleep(0.3)

        memray = os.path.join(venv, "bin", "memray") if venv else shutil.which("memray")
        tool = "`memray attach --duration 1` + `stats`"
        if not memray or not os.path.exists(memray) or not site:
            res["peers"].append({"tool": tool, "error": "memray is not installed for %s (give "
                                 "--peer-venv)" % a.python})
        elif not shutil.which("gdb") and not shutil.which("lldb"):
            res["peers"].append({"tool": tool, "error": "needs gdb or lldb, neither is installed"})
        else:
            row = run_memray(memray, t, tmp, n, a.peer_timeout)
            row["tool"] = tool
            res["peers"].append(row)

        pyspy = os.path.join(venv, "bin", "py-spy") if venv else shutil.which("py-spy")
        if not pyspy or not os.path.exists(pyspy):
            res["peers"].append({"tool": "`py-spy dump`", "error": "py-spy is not installed "
                                 "(give --peer-venv)"})
        else:
            t.stall()
            w, r = timed([pyspy, "dump", "--pid", str(t.pid)], timeout=60)
            stall = t.stall()
            if r is None or r.returncode != 0:
                res["peers"].append({"tool": "`py-spy dump`", "error": "timed out" if r is None
                                     else (r.stdout + r.stderr).strip().splitlines()[-1]})
            else:
                res["peers"].append({"tool": "`py-spy dump`", "result_seconds": w,
                                     "attach_seconds": w, "stall": stall,
                                     "sees": "the threads' stacks; no objects"})
    finally:
        t.stop()

    # a target whose main thread stays blocked in a system call (a server in
    # accept(), here read())
    t = Target(a.python, HEAP_TARGET % (n, MAIN_BLOCKED), extra_path=site)
    try:
        t.stall()
        snap = os.path.join(tmp, "peer.hsnap")
        wall, pause, _ = run_dump(a.cli, t.pid, snap, False)
        stall = t.stall()
        os.unlink(snap)
        res["peers"].append({"tool": "`heapsnap dump`, main thread blocked in read()",
                             "result_seconds": wall, "attach_seconds": wall, "stall": stall,
                             "sees": "every object (the GIL taken from the blocked thread)"})
        if memray and os.path.exists(memray) and site and shutil.which("gdb"):
            row = run_memray(memray, t, tmp, n, a.peer_timeout)
            row["tool"] = "`memray attach`, main thread blocked in read()"
            res["peers"].append(row)
    finally:
        t.stop()
    for p in res["peers"]:
        if "error" in p:
            print("peer %s: cannot run: %s" % (p["tool"], p["error"]), flush=True)
        else:
            print("peer %s: result in %.3f s (attach %.3f s), target stalled %.1f ms; sees %s"
                  % (p["tool"], p["result_seconds"], p["attach_seconds"], p["stall"] * 1e3,
                     p["sees"]), flush=True)
    return res


# --- report ----------------------------------------------------------------------

def tables(res):
    lines = []
    if res.get("heap"):
        lines += ["| heap | objects | RSS | mode | pause (CLI / metadata) | ticker stall | "
                  "per GiB of RSS | time-to-file | child walk | child private dirty |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["heap"]:
            for key in ("inproc", "fork"):
                b = r[key]
                gib = b["rss"] / 2**30
                lines.append("| %s items | %.2fM | %.0f MiB | %s | %.1f / %.1f ms | %.1f ms | "
                             "%.1f ms | %.3f s | %s | %s |"
                             % (items(r["items"]), b["objects"] / 1e6, b["rss"] / 2**20,
                                "in-process" if key == "inproc" else "`--fork`",
                                b["cli_pause"] * 1e3, b["meta_pause"] * 1e3, b["stall"] * 1e3,
                                b["cli_pause"] * 1e3 / gib, b["wall"],
                                "%.2f s" % b["child_walk"] if key == "fork" else "",
                                "%.1f MiB" % (b["child_dirty"] / 2**20) if key == "fork" else ""))
        lines += ["", "| heap | pause, in-process / fork | time-to-file, fork / in-process |",
                  "|---|---|---|"]
        for r in res["heap"]:
            lines.append("| %s items | %.0fx | %.2fx |"
                         % (items(r["items"]), r["inproc"]["cli_pause"] / r["fork"]["cli_pause"],
                            r["fork"]["wall"] / r["inproc"]["wall"]))
        lines.append("")
    if res.get("latency"):
        base = res["latency"][0]
        lines += ["| dumps every %g s | requests | dumps | longest pause | p50 | p99 | p99.9 | "
                  "max | p99 / baseline |" % res["args"]["every"],
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in res["latency"]:
            lines.append("| %s | %d | %d | %s | %.2f ms | %.2f ms | %.2f ms | %.1f ms | %.2fx |"
                         % ({"none": "none (baseline)", "inproc": "in-process",
                             "fork": "`--fork`"}[r["mode"]], r["requests"], r["dumps"],
                            "%.1f ms" % (r["max_pause"] * 1e3) if r["dumps"] else "",
                            r["p50"] * 1e3, r["p99"] * 1e3, r["p999"] * 1e3, r["max"] * 1e3,
                            r["p99"] / base["p99"]))
        lines.append("")
    if res.get("peers"):
        lines += ["| tool (target: %s items) | time to result | attach | target stalled | "
                  "what it shows |" % items(res["peers"]["items"]), "|---|---|---|---|---|"]
        for p in res["peers"]["peers"]:
            if "error" in p:
                lines.append("| %s | did not run: %s | | | |" % (p["tool"], p["error"]))
            else:
                lines.append("| %s | %.3f s | %.3f s | %.1f ms | %s |"
                             % (p["tool"], p["result_seconds"], p["attach_seconds"],
                                p["stall"] * 1e3, p["sees"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--load-items", type=int, default=1000000)
    ap.add_argument("--load-seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--every", type=float, default=2)
    ap.add_argument("--peer-venv")
    ap.add_argument("--peer-timeout", type=float, default=30)
    ap.add_argument("--only", default="heap,latency,peers")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.cli = os.path.abspath(a.cli)
    a.sizes = [int(x) for x in a.sizes.split(",")]
    only = set(a.only.split(","))
    tmp = tempfile.mkdtemp(prefix="hs-bench-live-")
    res = {"args": vars(a), "machine": {"cpus": os.cpu_count(),
                                        "load": os.getloadavg(), "python": a.python}}
    try:
        if "heap" in only:
            res["heap"] = bench_heap(a, tmp)
        if "latency" in only:
            res["latency"] = bench_latency(a, tmp)
        if "peers" in only:
            res["peers"] = bench_peers(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine"]["load_after"] = os.getloadavg()
    print()
    print(tables(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
