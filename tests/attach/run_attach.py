"""`heapsnap dump PID` against real targets that import nothing of ours.

usage: run_attach.py --cli HEAPSNAP --python PY [--case NAME]

Cases (all by default): server, sleep, accept, threads, timeout, faults,
killed, concurrent, users, fifty, diskfull, unwritable. Each target is
started by this script with an environment that does not have our package
on PYTHONPATH, and must be left running, untraced, and still working after
every dump. Run by the driver interpreter (any python3); the target
interpreter is --python. diskfull mounts a 2 MiB tmpfs (root), users and
unwritable run targets as user nobody (root and setpriv): each is skipped
with a message where that cannot be done.
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



# Every wait and time-out below is a hang detector, never a time limit: a
# loaded machine makes each dump slower, which is not a failure.
HANG = 600

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
    def __init__(self, py, code, prefix=(), env=None):
        e = target_env()
        e.update(env or {})
        self.p = subprocess.Popen(list(prefix) + [py, "-c", code], env=e,
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith("ready"):
            self.p.wait()
            raise RuntimeError("target did not start: %r" % line)
        self.info = line.split()[1:]
        self.pid = self.p.pid  # a prefix (setpriv) execs the interpreter: same pid

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


def inproc(extra):
    """`dump PID` forks by default: the cases name the mode they test."""
    extra = list(extra)
    return extra if "--fork" in extra or "--no-fork" in extra else extra + ["--no-fork"]


def dump(cli, pid, out, *extra, timeout=HANG):
    r = subprocess.run([cli, "dump", str(pid), "-o", out] + inproc(extra), capture_output=True,
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


# --- what a target holds, from /proc (for the leak checks) ---------------

def proc_fds(pid):
    return sorted(os.listdir("/proc/%d/fd" % pid), key=int)


def proc_threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def proc_rss(pid, key="VmRSS"):
    """Resident bytes (key RssAnon: anonymous memory only, no library
    pages touched on first use)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def proc_maps(pid):
    """[(start, end, perms, path or '')] of /proc/PID/maps."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = parts[0].split("-")
            out.append((int(lo, 16), int(hi, 16), parts[1],
                        parts[5].strip() if len(parts) > 5 else ""))
    return out


def hook_maps(pid):
    return [m for m in proc_maps(pid) if "/_heapsnap." in m[3]]


def anon_exec_maps(pid):
    """Anonymous executable mappings: the injector's stub page is one (its
    first page is made r-x); a CPython target has none of its own."""
    return [m for m in proc_maps(pid) if not m[3] and "x" in m[2]]


def proc_children(pid):
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def leftovers(d):
    """Temporary and status files a dump may leave in directory d."""
    return sorted(glob.glob(os.path.join(d, "*.tmp*")) +
                  glob.glob(os.path.join(d, "*.hsfork-status*")))


def wait_until(cond, seconds=HANG):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def summary_json(cli, snap):
    r = subprocess.run([cli, "summary", snap, "--json", "--top", "0"], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def type_count(d, name):
    return sum(t["count"] for t in d["rows"] if t["name"] == name)


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
        with urllib.request.urlopen("http://127.0.0.1:%d/x" % port, timeout=HANG) as r:
            return int(r.read())
    try:
        for _ in range(30):
            get()
        dump_and_count(cli, t, tmp, "__main__.LeakedRequestRecordXyz", "server", 30)
        check(get() == 31, "server: serves after the dump")
        # no mode flag: fork mode is the default of `dump PID`
        r = subprocess.run([cli, "dump", str(t.pid), "-o", os.path.join(tmp, "default.hsnap")],
                           capture_output=True, text=True, timeout=HANG)
        check(r.returncode == 0 and "fork mode" in r.stdout,
              "server: dump PID forks by default (%s)" % (r.stdout + r.stderr).strip())
        check(count(cli, os.path.join(tmp, "default.hsnap"), "__main__.LeakedRequestRecordXyz") == 31,
              "server: the default (fork) dump has the leaked records")
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
        # no shorter (the behaviour); longer only means a loaded machine
        check(line and line[0] == "slept" and 2.9 < float(line[1]),
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
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as c:
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
        # gave up (exit 2, the message above) rather than waiting for the
        # sum to end (hours): the time is printed, not judged
        print("timeout: gave up after %.1f s" % took, flush=True)
        check(not os.path.exists(out), "timeout: no file")
        # the cancelled stub's pages stay mapped (documented): the detector
        # that `fifty` relies on finds exactly them
        stub = anon_exec_maps(t.pid)
        check(len(stub) == 1 and stub[0][1] - stub[0][0] == 4096,
              "timeout: the cancelled stub page is the one anonymous executable mapping (%s)"
              % stub)
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


def start_dump(cli, pid, out, *extra):
    return subprocess.Popen([cli, "dump", str(pid), "-o", out] + inproc(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_temp(p, out, seconds=HANG):
    """Wait until the dump `p` has its temporary file: it is writing (the
    hook in the target, or the forked child). True if seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and p.poll() is None:
        if glob.glob(out + ".tmp.*"):
            return True
        time.sleep(0.002)
    return bool(glob.glob(out + ".tmp.*"))


def case_killed(cli, py, tmp):
    # 1. the target killed while its hook writes: no file, clear error
    d = tempfile.mkdtemp(dir=tmp, prefix="killed-")
    t = Target(py, BIG % 1500000)
    out = os.path.join(d, "killed.hsnap")
    try:
        p = start_dump(cli, t.pid, out)
        check(wait_for_temp(p, out), "killed: the dump was writing when the target was killed")
        t.p.kill()
        msg = p.communicate(timeout=HANG)[0]
        check(p.returncode == 2 and "died during the dump" in msg and "no snapshot" in msg,
              "killed: clear error (%d, %s)" % (p.returncode, msg.strip()))
        check(not os.listdir(d), "killed: no file or partial file left (%s)" % os.listdir(d))
    finally:
        t.stop()

    # 2. fork mode, the forked child killed while it writes: the target
    # reaps it and lives on; no file
    t = Target(py, BIG % 1500000)
    try:
        threads0 = proc_threads(t.pid)
        out = os.path.join(d, "child.hsnap")
        p = start_dump(cli, t.pid, out, "--fork")
        seen = wait_for_temp(p, out)
        kids = proc_children(t.pid)
        check(seen and len(kids) == 1, "killed --fork: one child writing (%s, %s)" % (seen, kids))
        for k in kids:
            os.kill(k, 9)
        msg = p.communicate(timeout=HANG)[0]
        check(p.returncode == 2 and "ended without writing the snapshot" in msg,
              "killed --fork: clear error (%d, %s)" % (p.returncode, msg.strip()))
        check(wait_until(lambda: not os.listdir(d)), "killed --fork: no file or partial file "
              "left (%s)" % os.listdir(d))
        check(wait_until(lambda: not proc_children(t.pid)), "killed --fork: the child was "
              "reaped (%s)" % proc_children(t.pid))
        check(wait_until(lambda: proc_threads(t.pid) == threads0), "killed --fork: no reaper "
              "thread left")
        t.healthy("killed --fork")
        dump_and_count(cli, t, d, "__main__.BulkXyz", "killed-after", 1500000, "--fork")

        # 3. fork mode, the target killed while its child writes: the child
        # holds a consistent copy and finishes, or nothing is written
        out = os.path.join(d, "parent.hsnap")
        p = start_dump(cli, t.pid, out, "--fork")
        check(wait_for_temp(p, out), "killed --fork: the child was writing when the target "
              "was killed")
        t.p.kill()
        msg = p.communicate(timeout=HANG)[0]
        if p.returncode == 0:
            check(count(cli, out, "__main__.BulkXyz") == 1500000, "killed --fork: the file "
                  "written after the target died is complete")
            os.unlink(out)
        else:
            check(p.returncode == 2 and not os.listdir(d), "killed --fork: target killed: "
                  "clean failure (%d, %s, %s)" % (p.returncode, msg.strip(), os.listdir(d)))
        check(wait_until(lambda: not os.listdir(d)), "killed --fork: nothing else left (%s)"
              % os.listdir(d))
    finally:
        t.stop()


def case_concurrent(cli, py, tmp):
    d = tempfile.mkdtemp(dir=tmp, prefix="concurrent-")
    t = Target(py, BIG % 500000)
    try:
        # a second dump while the first one's hook runs in the target
        c1, c2 = os.path.join(d, "c1.hsnap"), os.path.join(d, "c2.hsnap")
        a = start_dump(cli, t.pid, c1)
        check(wait_for_temp(a, c1), "concurrent: the first dump is writing")
        b = start_dump(cli, t.pid, c2)
        mb = b.communicate(timeout=HANG)[0]
        ma = a.communicate(timeout=HANG)[0]
        check(a.returncode == 0, "concurrent: the first succeeds (%s)" % ma.strip())
        if b.returncode == 0:  # serialized
            check(count(cli, c2, "__main__.BulkXyz") == 500000, "concurrent: the second's file "
                  "is complete")
        else:
            check(b.returncode == 2 and "already traced" in mb and "try again" in mb,
                  "concurrent: the second is refused clearly (%d, %s)" % (b.returncode,
                                                                          mb.strip()))
            check(not os.path.exists(c2) and not glob.glob(c2 + ".*"),
                  "concurrent: the refused one left nothing (%s)" % os.listdir(d))
        check(os.path.exists(c1) and count(cli, c1, "__main__.BulkXyz") == 500000,
              "concurrent: the first wrote its complete file")
        t.healthy("concurrent")
        dump_and_count(cli, t, d, "__main__.BulkXyz", "concurrent-after", 500000)

        # fork mode: the target is free again once it has forked, so a second
        # --fork dump runs while the first child writes; both complete
        f1, f2 = os.path.join(d, "f1.hsnap"), os.path.join(d, "f2.hsnap")
        a = start_dump(cli, t.pid, f1, "--fork")
        check(wait_for_temp(a, f1), "concurrent --fork: the first child is writing")
        wait_until(lambda: t.status("TracerPid") == "0")  # the injector has let go
        b = start_dump(cli, t.pid, f2, "--fork")
        mb = b.communicate(timeout=HANG)[0]
        ma = a.communicate(timeout=HANG)[0]
        check(a.returncode == 0 and b.returncode == 0, "concurrent --fork: both succeed (%s / %s)"
              % (ma.strip(), mb.strip()))
        for f in (f1, f2):
            if os.path.exists(f):
                check(count(cli, f, "__main__.BulkXyz") == 500000, "concurrent --fork: %s "
                      "complete" % os.path.basename(f))
        check(not leftovers(d), "concurrent: no stray files (%s)" % leftovers(d))
        check(wait_until(lambda: not proc_children(t.pid)), "concurrent --fork: children reaped")
        t.healthy("concurrent --fork")
    finally:
        t.stop()


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(py):
    """The command prefix that runs `py` as user nobody, or None. An
    interpreter under /root (mode 0700) cannot be reached by nobody: it then
    keeps CAP_DAC_READ_SEARCH (read and search anything), which grants no
    write access, so what these cases test is unchanged."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    for prefix in (NOBODY, NOBODY + ["--inh-caps=+dac_read_search",
                                     "--ambient-caps=+dac_read_search"]):
        r = subprocess.run(prefix + [py, "-c", "pass"], capture_output=True, env=target_env())
        if r.returncode == 0:
            return prefix
    return None


def case_users(cli, py, tmp):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("users: skipped (needs root and setpriv)")
        return
    t = Target(py, SLEEP)  # root's
    try:
        r = subprocess.run(NOBODY + [cli, "dump", str(t.pid), "-o", "/tmp/u.hsnap", "--no-fork"],
                           capture_output=True, text=True, timeout=HANG)
        check(r.returncode == 2 and "another user" in r.stderr,
              "users: another user's process (%s)" % r.stderr.strip())
        check(not os.path.exists("/tmp/u.hsnap"), "users: nothing written")
        # the remedy must be one that works: not --no-agent (ptrace is refused too)
        check("--no-agent" not in r.stderr and len(r.stderr.strip().splitlines()) == 1,
              "users: one line, no useless --no-agent hint (%s)" % r.stderr.strip())
        t.healthy("users")
    finally:
        t.stop()
    # root dumps another user's process; the file is that user's
    prefix = as_nobody(py)
    if not prefix:
        print("users: root-dumps-nobody part skipped: %s cannot run as nobody" % py)
        return
    t = Target(py, SLEEP, prefix=prefix)
    ok = tempfile.mkdtemp(dir=tmp)
    os.chmod(ok, 0o777)
    os.chmod(tmp, 0o711)
    try:
        out = os.path.join(ok, "ok.hsnap")
        msg = dump_and_count(cli, t, ok, "__main__.SleeperXyz", "users-root", 77)
        check(msg is not None, "users: a dump as root of another user's process")
        rc, msg = dump(cli, t.pid, out)
        if check(rc == 0, "users: a dump as root into the user's directory (%s)" % msg.strip()):
            check(os.stat(out).st_uid == 65534, "users: the file belongs to the process's user")
        t.healthy("users")
    finally:
        t.stop()


# --- unwritable: the target cannot write where asked -----------------------

def case_unwritable(cli, py, tmp):
    prefix = as_nobody(py)
    if not prefix:
        print("unwritable: skipped: needs root and setpriv to run %s as another user" % py)
        return
    t = Target(py, ACCEPT, prefix=prefix)
    port = int(t.info[0])

    def talk():
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as c:
            return c.recv(2)
    locked = tempfile.mkdtemp(dir=tmp)  # root's, 0700
    ok = tempfile.mkdtemp(dir=tmp)
    os.chmod(ok, 0o777)
    os.chmod(tmp, 0o711)
    try:
        # before any connection: the target closes each one after answering
        fds0, threads0 = proc_fds(t.pid), proc_threads(t.pid)
        check(talk() == b"hi", "unwritable: answers before")
        out = os.path.join(locked, "u.hsnap")
        # heapsnap run by the same user finds out before touching the target
        r = subprocess.run(NOBODY + [cli, "dump", str(t.pid), "-o", out, "--no-fork"], capture_output=True,
                           text=True, timeout=HANG)
        check(r.returncode == 2 and "is not writable" in r.stderr,
              "unwritable: the same user's heapsnap refuses (%d, %s)"
              % (r.returncode, r.stderr.strip()))
        check(not hook_maps(t.pid), "unwritable: the target was not touched")
        # run by root, the target finds out when it creates the file
        for mode in ([], ["--fork"]):
            what = "unwritable%s" % (" --fork" if mode else "")
            rc, msg = dump(cli, t.pid, out, *mode)
            check(rc == 2 and "could not write" in msg and "Permission denied" in msg
                  and locked in msg, "%s: clear error naming the directory (%d, %s)"
                  % (what, rc, msg.strip()))
            check(not os.listdir(locked), "%s: nothing left (%s)" % (what, os.listdir(locked)))
            check(wait_until(lambda: not proc_children(t.pid)), "%s: no child left" % what)
            check(wait_until(lambda: proc_fds(t.pid) == fds0), "%s: no fd left open (%s, was "
                  "%s)" % (what, proc_fds(t.pid), fds0))
            check(wait_until(lambda: proc_threads(t.pid) == threads0), "%s: no thread left"
                  % what)
            check(talk() == b"hi", "%s: answers after" % what)
            t.healthy(what)
            good = os.path.join(ok, "good.hsnap")
            rc, msg = dump(cli, t.pid, good, *mode)
            if check(rc == 0, "%s: then a dump to a writable directory (%s)"
                     % (what, msg.strip())):
                check(count(cli, good, "__main__.AcceptorXyz") == 44,
                      "%s: the snapshot has the 44 objects" % what)
                os.unlink(good)
        check(not leftovers(ok), "unwritable: no stray files (%s)" % leftovers(ok))
    finally:
        t.stop()


# --- fifty: 50 dumps of a loaded threaded server; nothing leaks ------------

THREADED_SERVER = r'''
import http.server, socketserver
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
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
srv = S(("127.0.0.1", 0), H)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever(poll_interval=0.5)
'''

LEAKED = "__main__.LeakedRequestRecordXyz"
# The target's anonymous memory (RssAnon) is read at quiet moments (no
# request in flight, handler threads gone) after dumps 10, 20, 30, 40 and
# 50, less the Python objects the leak itself adds (from the snapshots).
# Without a leak the allocators move it a little, up and down (a freed
# large block raises glibc's mmap threshold, later ones come from the heap,
# which may stay or shrink back): with one malloc arena, 30 runs over the 7
# interpreters measured single 10-dump steps of -1.2 to +1.3 MiB, the
# memory going back and forth between two levels about 1.2 MiB apart, and a
# net growth from dump 10 to 50 of -0.7 to +1.3 MiB (with glibc's
# per-thread arenas, one-off jumps of up to 5.9 MiB that stay, hence
# MALLOC_ARENA_MAX=1). The bound on the net growth, 40 x 64 KiB = 2.5 MiB,
# is thus crossed by any leak of about 75 KiB or more per dump: the writer's chunk buffers and zstd
# context, the visited bitmap or the work stack (each over 64 KiB even for
# this small heap); the 16 KiB stub pages are checked apart, and Python
# objects by the idle dumps' object counts.
RSS_BOUND = 40 * 64 * 1024


def case_fifty(cli, py, tmp):
    out_dir = tempfile.mkdtemp(dir=tmp, prefix="fifty-")
    # one malloc arena: a thread's arena keeps what it freed, and which
    # thread gets a new one depends on the timing of the handler threads
    t = Target(py, THREADED_SERVER, env={"MALLOC_ARENA_MAX": "1"})
    port = int(t.info[0])

    def get(path="/x"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=HANG) as r:
            return int(r.read())

    stop, paused, idle_now = threading.Event(), threading.Event(), threading.Event()
    served = [0]
    errors = []

    def load():
        while not stop.is_set():
            if paused.is_set():
                idle_now.set()
                time.sleep(0.01)
                continue
            idle_now.clear()
            try:
                get("/load")
                served[0] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            time.sleep(0.005)
    th = threading.Thread(target=load)
    try:
        get()
        # quiet baseline: the listening socket, the main thread, no stub page
        wait_until(lambda: proc_threads(t.pid) == 1)
        fds0, threads0, anonx0 = proc_fds(t.pid), proc_threads(t.pid), anon_exec_maps(t.pid)
        th.start()
        prev_n, bracket_ok, mono_ok, dumps_ok = 0, 0, 0, 0
        rss, pybytes, hook1 = {}, {}, None
        for i in range(1, 51):
            before = get()  # completed, so in every later snapshot
            snap = os.path.join(out_dir, "d%d.hsnap" % i)
            rc, msg = dump(cli, t.pid, snap)
            after = get()   # not yet appended at any earlier snapshot
            if rc != 0:
                print("fifty: dump %d failed: %s" % (i, msg.strip()))
                continue
            dumps_ok += 1
            d = summary_json(cli, snap)
            n = type_count(d, LEAKED)
            bracket_ok += before <= n <= after - 1
            if not before <= n <= after - 1:
                print("fifty: dump %d has %d records, served %d..%d" % (i, n, before, after - 1))
            mono_ok += n > prev_n
            prev_n = n
            if i == 1:
                hook1 = hook_maps(t.pid)
            if i % 10 == 0:
                # RSS of the quiet target: handler threads (stacks, arenas)
                # come and go with the load
                paused.set()
                idle_now.wait(10)
                wait_until(lambda: proc_threads(t.pid) == threads0)
                rss[i], pybytes[i] = proc_rss(t.pid, "RssAnon"), d["total"]["bytes"]
                paused.clear()
            os.unlink(snap)
        stop.set()
        th.join()
        check(not errors, "fifty: every request answered (%s)" % errors[:3])
        check(dumps_ok == 50, "fifty: 50 dumps in a row succeed (%d did)" % dumps_ok)
        check(bracket_ok == dumps_ok, "fifty: each snapshot has the records of the requests "
              "served by then (%d of %d)" % (bracket_ok, dumps_ok))
        check(mono_ok == dumps_ok, "fifty: the count grows with every dump (%d of %d)"
              % (mono_ok, dumps_ok))
        check(served[0] > 50, "fifty: requests served during the dumps (%d)" % served[0])

        # nothing left in the target
        wait_until(lambda: proc_threads(t.pid) == threads0 and proc_fds(t.pid) == fds0)
        check(proc_threads(t.pid) == threads0, "fifty: thread count back to %d (%d)"
              % (threads0, proc_threads(t.pid)))
        check(proc_fds(t.pid) == fds0, "fifty: open fds back to baseline (%s, was %s)"
              % (proc_fds(t.pid), fds0))
        hooks = hook_maps(t.pid)
        check(len(set(m[3] for m in hooks)) == 1 and hooks == hook1,
              "fifty: one hook loaded once (%d mappings of %s, %d after the first dump)"
              % (len(hooks), sorted(set(m[3] for m in hooks)), len(hook1 or [])))
        check(anon_exec_maps(t.pid) == anonx0, "fifty: no stub page left mapped (%s)"
              % anon_exec_maps(t.pid))
        steps = [(rss[i + 10] - rss[i]) - max(0, pybytes[i + 10] - pybytes[i])
                 for i in (10, 20, 30, 40)]
        growth = sum(steps)
        print("fifty: anonymous RSS after dumps 10..50: %s MiB; less the leaked objects, steps "
              "of %s KiB" % (" ".join("%.2f" % (rss[i] / 2**20) for i in sorted(rss)),
                             " ".join("%d" % (x // 1024) for x in steps)))
        check(growth <= RSS_BOUND, "fifty: the target's memory grew %.2f MiB over 40 dumps "
              "(bound %.2f MiB)" % (growth / 2**20, RSS_BOUND / 2**20))
        # a dump leaves no Python object behind: six dumps of the idle
        # target find the same objects, give or take the one list that
        # select() returns or not at the moment the main thread is stopped,
        # and a handler's garbage collected meanwhile (a leak of one object
        # per dump would add 5 from the first to the last)
        idle = []
        for i in range(6):
            snap = os.path.join(out_dir, "idle%d.hsnap" % i)
            rc, msg = dump(cli, t.pid, snap)
            if check(rc == 0, "fifty: idle dump %d (%s)" % (i, msg.strip())):
                idle.append(summary_json(cli, snap)["total"]["count"])
                os.unlink(snap)
        check(len(idle) == 6 and idle[5] - idle[0] <= 2 and idle[4] - idle[1] <= 2,
              "fifty: six idle dumps find the same objects (%s)" % idle)

        # fork mode: ten more, the forked children reaped, their reaper
        # threads gone
        fork_ok = 0
        for i in range(10):
            before = get()
            snap = os.path.join(out_dir, "f%d.hsnap" % i)
            rc, msg = dump(cli, t.pid, snap, "--fork")
            after = get()
            if rc != 0:
                print("fifty: fork dump %d failed: %s" % (i, msg.strip()))
                continue
            n = count(cli, snap, LEAKED)
            fork_ok += before <= n <= after - 1
            os.unlink(snap)
        check(fork_ok == 10, "fifty: 10 fork-mode dumps succeed with the records served by "
              "then (%d)" % fork_ok)
        check(wait_until(lambda: not proc_children(t.pid)), "fifty: forked children reaped (%s)"
              % proc_children(t.pid))
        check(wait_until(lambda: proc_threads(t.pid) == threads0), "fifty: no reaper thread left "
              "(%d threads)" % proc_threads(t.pid))
        check(wait_until(lambda: proc_fds(t.pid) == fds0), "fifty: open fds back to baseline "
              "after fork mode (%s)" % proc_fds(t.pid))
        check(anon_exec_maps(t.pid) == anonx0, "fifty: no stub page left after fork mode")
        check(hook_maps(t.pid) == hook1, "fifty: still one hook loaded after fork mode")
        check(not leftovers(out_dir) and not os.listdir(out_dir),
              "fifty: no stray files in the output directory (%s)" % os.listdir(out_dir))
        k = get()
        check(get() == k + 1, "fifty: serves after the dumps")
        t.healthy("fifty")
    finally:
        stop.set()
        if th.is_alive():
            th.join()
        t.stop()


# --- diskfull: the output file system fills up -----------------------------

def mount_tmpfs(d, size):
    """Mount a tmpfs of `size` on d: (True, '') or (False, why not)."""
    if os.geteuid() != 0:
        return False, "not root"
    if not shutil.which("mount"):
        return False, "no mount command"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0777" % size, "tmpfs", d],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def fs_used(d):
    st = os.statvfs(d)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def case_diskfull(cli, py, tmp):
    full = tempfile.mkdtemp(dir=tmp, prefix="full-")
    ok, why = mount_tmpfs(full, "2m")
    if not ok:
        print("diskfull: skipped: cannot mount a 2 MiB tmpfs here (%s)" % why)
        return
    t = None
    try:
        t = Target(py, BIG % 1000000)  # a 3.4 MB snapshot
        fds0, threads0 = proc_fds(t.pid), proc_threads(t.pid)
        for mode in ([], ["--fork"]):
            what = "diskfull%s" % (" --fork" if mode else "")
            out = os.path.join(full, "big.hsnap")
            rc, msg = dump(cli, t.pid, out, *mode)
            check(rc == 2 and "No space left on device" in msg,
                  "%s: clear error (%d, %s)" % (what, rc, msg.strip()))
            if not mode:
                # the hook's OSError carries the errno of the failed write
                check("[Errno 28]" in msg, "%s: the error is ENOSPC, not EIO (%s)"
                      % (what, msg.strip()))
            check(wait_until(lambda: not proc_children(t.pid)), "%s: no child left" % what)
            check(not os.listdir(full), "%s: nothing left, final or temporary (%s)"
                  % (what, os.listdir(full)))
            # no deleted file held open: the space is free again
            check(wait_until(lambda: fs_used(full) == 0), "%s: the space is freed (%d bytes "
                  "used)" % (what, fs_used(full)))
            check(wait_until(lambda: proc_fds(t.pid) == fds0), "%s: no fd left open in the "
                  "target (%s, was %s)" % (what, proc_fds(t.pid), fds0))
            check(wait_until(lambda: proc_threads(t.pid) == threads0), "%s: no thread left in "
                  "the target" % what)
            t.healthy(what)
            good = os.path.join(tmp, "good.hsnap")
            rc, msg = dump(cli, t.pid, good, *mode)
            if check(rc == 0, "%s: a dump to a good directory then succeeds (%s)"
                     % (what, msg.strip())):
                size = os.path.getsize(good)
                check(size > 2 * 2**20, "%s: the snapshot (%d bytes) is bigger than the file "
                      "system" % (what, size))
                check(count(cli, good, "__main__.BulkXyz") == 1000000,
                      "%s: the good snapshot has the 1000000 objects" % what)
                os.unlink(good)
    finally:
        if t:
            t.stop()
        subprocess.run(["umount", full])


CASES = ["server", "sleep", "accept", "threads", "timeout", "faults", "killed", "concurrent", "users",
         "fifty", "diskfull", "unwritable"]


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
