"""`heapsnap dump PID` against real targets that import nothing of ours.

usage: run_attach.py --cli HEAPSNAP --python PY [--case NAME]

Cases (all by default): server, sleep, accept, threads, timeout, faults,
killed, concurrent, users. Each target is started by this script with an
environment that does not have our package on PYTHONPATH, and must be left
running, untraced, and still working after every dump. Run by the driver
interpreter (any python3); the target interpreter is --python.
"""
import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


def target_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Target:
    def __init__(self, py, code, prefix=()):
        self.p = subprocess.Popen(list(prefix) + [py, "-c", code], env=target_env(),
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith("ready"):
            self.p.wait()
            raise RuntimeError("target did not start: %r" % line)
        self.info = line.split()[1:]
        self.pid = self.p.pid
        self.pid = int(self.info[0]) if prefix else self.p.pid

    def status(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split()[1]
        return None

    def healthy(self, what):
        alive = self.p.poll() is None
        check(alive, "%s: target still alive" % what)
        if alive:
            check(self.status("TracerPid") == "0", "%s: target not traced after the dump" % what)
            check(self.status("State") in ("R", "S"), "%s: target running (state %s)"
                  % (what, self.status("State")))

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def dump(cli, pid, out, *extra, timeout=60):
    r = subprocess.run([cli, "dump", str(pid), "-o", out] + list(extra), capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def count(cli, snap, name):
    r = subprocess.run([cli, "summary", snap, "--json", "--top", "0"], capture_output=True,
                       text=True, check=True)
    d = json.loads(r.stdout)
    return sum(t["count"] for t in d["rows"] if t["name"] == name)


def dump_and_count(cli, t, tmp, name, what, expect, *extra):
    out = os.path.join(tmp, "%s.hsnap" % what)
    rc, msg = dump(cli, t.pid, out, *extra)
    if not check(rc == 0, "%s: dump succeeds (%s)" % (what, msg.strip())):
        return None
    n = count(cli, out, name)
    check(n == expect, "%s: %d %s in the snapshot, expected %d" % (what, n, name, expect))
    os.unlink(out)
    return msg


SERVER = r'''
import http.server, socketserver, os
class LeakedRequestRecordXyz:
    def __init__(self, path): self.path = path
LEAK = []
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        LEAK.append(LeakedRequestRecordXyz(self.path))
        body = b"%d" % len(LEAK)
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = socketserver.TCPServer(("127.0.0.1", 0), H)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever(poll_interval=0.5)
'''


def case_server(cli, py, tmp):
    t = Target(py, SERVER)
    port = int(t.info[0])
    def get():
        with urllib.request.urlopen("http://127.0.0.1:%d/x" % port, timeout=10) as r:
            return int(r.read())
    try:
        for _ in range(30):
            get()
        dump_and_count(cli, t, tmp, "__main__.LeakedRequestRecordXyz", "server", 30)
        check(get() == 31, "server: serves after the dump")
        # 20 dumps in a row, requests in between and during
        stop = threading.Event()
        served = [0]
        def load():
            while not stop.is_set():
                get()
                served[0] += 1
        th = threading.Thread(target=load)
        th.start()
        ok = 0
        for i in range(20):
            rc, msg = dump(cli, t.pid, os.path.join(tmp, "s%d.hsnap" % i))
            ok += rc == 0
            if rc:
                print(msg)
        stop.set()
        th.join()
        check(ok == 20, "server: 20 dumps in a row succeed (%d did)" % ok)
        check(served[0] > 0, "server: requests served while being dumped")
        n = get()
        last = count(cli, os.path.join(tmp, "s19.hsnap"), "__main__.LeakedRequestRecordXyz")
        check(31 <= last < n, "server: the last snapshot has the leaked records (%d, %d)" % (last, n))
        t.healthy("server")
    finally:
        t.stop()


SLEEP = r'''
import time
class SleeperXyz: pass
keep = [SleeperXyz() for _ in range(77)]
print("ready", flush=True)
t0 = time.monotonic()
time.sleep(3)
print("slept %.2f" % (time.monotonic() - t0), flush=True)
time.sleep(1000)
'''


def case_sleep(cli, py, tmp):
    t = Target(py, SLEEP)
    try:
        time.sleep(0.3)  # into time.sleep()
        msg = dump_and_count(cli, t, tmp, "__main__.SleeperXyz", "sleep", 77)
        check(msg is None or "blocked in a system call" in msg, "sleep: dumped while blocked")
        t.healthy("sleep")
        # the interrupted sleep goes on for its full length, no shorter
        line = t.p.stdout.readline().split()
        check(line and line[0] == "slept" and 2.9 < float(line[1]) < 4.5,
              "sleep: time.sleep(3) lasted %s" % line)
    finally:
        t.stop()


ACCEPT = r'''
import socket
class AcceptorXyz: pass
keep = [AcceptorXyz() for _ in range(44)]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("ready", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"hi"); c.close()
'''


def case_accept(cli, py, tmp):
    t = Target(py, ACCEPT)
    port = int(t.info[0])
    def talk():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            return c.recv(2)
    try:
        check(talk() == b"hi", "accept: answers before")
        for i in range(3):
            dump_and_count(cli, t, tmp, "__main__.AcceptorXyz", "accept%d" % i, 44)
            check(talk() == b"hi", "accept: answers after dump %d" % i)
        t.healthy("accept")
    finally:
        t.stop()


THREADS = r'''
import threading, time
class WorkerStateXyz: pass
keep = [WorkerStateXyz() for _ in range(55)]
ticks = [0] * 4
def work(i):
    local = [WorkerStateXyz()]
    while True:
        sum(j for j in range(500)); ticks[i] += 1
ts = [threading.Thread(target=work, args=(i,), daemon=True, name="worker-%d" % i) for i in range(4)]
for x in ts: x.start()
print("ready", flush=True)
ts[0].join()
'''


def case_threads(cli, py, tmp):
    t = Target(py, THREADS)
    try:
        for i in range(3):
            dump_and_count(cli, t, tmp, "__main__.WorkerStateXyz", "threads%d" % i, 59)
        t.healthy("threads")
    finally:
        t.stop()


BUSY_C = r'''
print("ready", flush=True)
while True:
    sum(range(10**13))  # one C call holding the GIL: no bytecode boundary
'''


def case_timeout(cli, py, tmp):
    t = Target(py, BUSY_C)
    try:
        time.sleep(0.3)  # into sum()
        out = os.path.join(tmp, "timeout.hsnap")
        t0 = time.monotonic()
        rc, msg = dump(cli, t.pid, out, "--timeout", "1")
        took = time.monotonic() - t0
        check(rc == 2 and "safe point" in msg, "timeout: clear error (%d, %s)" % (rc, msg.strip()))
        check(took < 5, "timeout: gives up in time (%.1f s)" % took)
        check(not os.path.exists(out), "timeout: no file")
        t.healthy("timeout")
        check(t.status("State") == "R", "timeout: target still computing")
    finally:
        t.stop()


def case_faults(cli, py, tmp):
    rc, msg = dump(cli, 999999999, os.path.join(tmp, "f.hsnap"))
    check(rc == 129 or (rc == 2 and "no such process" in msg), "faults: bad pid (%s)" % msg.strip())
    p = subprocess.Popen(["sleep", "100"])
    try:
        rc, msg = dump(cli, 4000000 + 1, os.path.join(tmp, "f.hsnap"))
        check(rc == 2 and "no such process" in msg, "faults: no such process (%s)" % msg.strip())
        rc, msg = dump(cli, p.pid, os.path.join(tmp, "f.hsnap"))
        check(rc == 2 and "not a Python process" in msg, "faults: non-Python (%s)" % msg.strip())
        check(p.poll() is None, "faults: non-Python target alive")
    finally:
        p.kill()
        p.wait()
    t = Target(py, SLEEP)
    try:
        rc, msg = dump(cli, t.pid, os.path.join(tmp, "missing-dir", "f.hsnap"))
        check(rc == 2 and "does not exist" in msg, "faults: missing directory (%s)" % msg.strip())
        t.healthy("faults")
    finally:
        t.stop()


BIG = r'''
import time
class BulkXyz:
    __slots__ = ("a", "b")
    def __init__(self, i): self.a = i; self.b = str(i)
keep = [BulkXyz(i) for i in range(%d)]
print("ready", flush=True)
while True:
    time.sleep(0.05)
'''


def case_killed(cli, py, tmp):
    t = Target(py, BIG % 1500000)
    out = os.path.join(tmp, "killed.hsnap")
    try:
        p = subprocess.Popen([cli, "dump", str(t.pid), "-o", out], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        # kill the target once the dump is under way
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not glob.glob(out + ".tmp.*") and p.poll() is None:
            time.sleep(0.002)
        t.p.kill()
        msg = p.communicate(timeout=30)[0]
        check(p.returncode == 2 and "died" in msg, "killed: clear error (%d, %s)"
              % (p.returncode, msg.strip()))
        check(not os.path.exists(out) and not glob.glob(out + ".tmp.*"),
              "killed: no file or partial file left (%s)" % os.listdir(tmp))
    finally:
        t.stop()


def case_concurrent(cli, py, tmp):
    t = Target(py, BIG % 500000)
    try:
        a = subprocess.Popen([cli, "dump", str(t.pid), "-o", os.path.join(tmp, "c1.hsnap")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.05)
        b = subprocess.Popen([cli, "dump", str(t.pid), "-o", os.path.join(tmp, "c2.hsnap")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ma, mb = a.communicate(timeout=60)[0], b.communicate(timeout=60)[0]
        rcs = sorted([a.returncode, b.returncode])
        check(rcs in ([0, 0], [0, 2]), "concurrent: one succeeds, the other succeeds or fails "
              "cleanly (%s / %s)" % (ma.strip(), mb.strip()))
        if rcs == [0, 2]:
            check("already traced" in ma + mb, "concurrent: says why")
        check(os.path.exists(os.path.join(tmp, "c1.hsnap")), "concurrent: the first wrote its file")
        t.healthy("concurrent")
    finally:
        t.stop()


def case_users(cli, py, tmp):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("users: skipped (needs root and setpriv)")
        return
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    t = Target(py, SLEEP)  # root's
    try:
        r = subprocess.run(nobody + [cli, "dump", str(t.pid), "-o", "/tmp/u.hsnap"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "another user" in r.stderr,
              "users: another user's process (%s)" % r.stderr.strip())
        t.healthy("users")
    finally:
        t.stop()
    # a target that cannot write where asked: the error comes back, it lives on
    code = SLEEP.replace('print("ready"', 'import os; print("ready", os.getpid()')
    try:
        t = Target(py, code, prefix=nobody)
    except RuntimeError as e:
        print("users: unwritable-directory part skipped: %s cannot run as nobody (%s)" % (py, e))
        return
    locked = tempfile.mkdtemp(dir=tmp)
    os.chmod(locked, 0o700)
    os.chmod(tmp, 0o755)
    try:
        out = os.path.join(locked, "u.hsnap")
        rc, msg = dump(cli, t.pid, out)
        check(rc == 2 and "could not write" in msg and ("ermission" in msg or "EACCES" in msg),
              "users: unwritable output directory (%s)" % msg.strip())
        check(not os.listdir(locked), "users: nothing left in the directory")
        alive = t.p.poll() is None
        check(alive and t.status("TracerPid") == "0", "users: target alive and untraced")
        out = os.path.join(tmp, "ok-%d.hsnap" % t.pid)
        os.chmod(tmp, 0o777)
        rc, msg = dump(cli, t.pid, out)
        check(rc == 0, "users: a dump as root of another user's process (%s)" % msg.strip())
    finally:
        t.p.kill()
        t.p.wait()


CASES = ["server", "sleep", "accept", "threads", "timeout", "faults", "killed", "concurrent", "users"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hs-attach-")
    try:
        for name in a.case or CASES:
            t0 = time.monotonic()
            globals()["case_" + name](a.cli, a.python, tmp)
            print("%s: %.1f s" % (name, time.monotonic() - t0), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
