"""Kill `heapsnap dump PID` at every phase and at random moments: the target
must survive every time, still run Python with its state intact, and be
left untraced; no partial file may appear under the final name; nothing is
left behind.

usage: fault_inject.py --cli HEAPSNAP --python PY [--random N] [--seed S]
                       [--modes no-fork,fork,children] [--json]

Phase kills use heapsnap's fault-injection points (HEAPSNAP_TEST_FAULT=
"<point>:<n>:<signo>": heapsnap raises the signal at the n-th pass through
the point; see src/attach/attach_internal.h): seized (stopped, nothing
changed), entered (a remote call's registers just set: mmap, mprotect,
Py_IsInitialized, PyGILState_Check, Py_AddPendingCall, dlopen, dlsym, the
dump, munmap in turn), returned (a call back home), queued (the safe-point
stub queued), kicked (a lock wait interrupted, its EINTR not yet set), stub
(at the safe point), detach, fork-wait (fork mode: the child writes).
Random kills (seeded) send SIGTERM or SIGKILL after a random delay within a
dump's duration. Three targets: "sleep" (main thread blocked in a system
call), "busy" (running bytecode: pending-call mode), "mixed" (bytecode and
lock waits: interrupted futex waits). Every check is about outcomes; waits
are bounded generously and serve only as hang detectors.
"""
import argparse
import ctypes
import glob
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILED = []
HANG = 120  # seconds: a hang detector, not a speed limit

TARGET = r'''
import os, sys, threading, time, queue, signal, faulthandler, ctypes
kind = sys.argv[1]
# state a careless injection would change: the main thread's signal mask and
# its alternate signal stack (faulthandler installs one)
faulthandler.enable()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
class StackT(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
def altstack():
    st = StackT()
    libc.sigaltstack(None, ctypes.byref(st))
    return (st.sp, st.flags, st.size)
state0 = (signal.pthread_sigmask(signal.SIG_BLOCK, []), altstack())
data = [("k%d" % i) * 3 for i in range(60000)]
digest = hash(tuple(data))
q = queue.Queue()
stop = threading.Event()
ping = threading.Event()
def feeder():
    while not stop.is_set():
        time.sleep(0.001)
        q.put(1)
def control():
    for line in sys.stdin:
        line = line.strip()
        if line == "ping":
            ping.set()
        elif line == "quit":
            stop.set()
            return
threading.Thread(target=feeder, daemon=True).start()
threading.Thread(target=control, daemon=True).start()
if kind == "children":
    import subprocess
    child = subprocess.Popen([sys.executable, "-c",
        "import os, time\nd=[str(i)*2 for i in range(20000)]\np=os.getppid()\n"
        "while os.getppid() == p: time.sleep(0.01)"])
print("ready", os.getpid(), flush=True)
n = 0
while not stop.is_set():
    n += 1
    if kind in ("sleep", "children"):
        time.sleep(0.001)
    elif kind == "busy":
        sum(range(300))
    else:
        sum(range(3000))
        q.get()
    # values through SSE registers and C calls: a register clobbered by an
    # injection shows up here or as a crash
    a = n * 0.5
    if a * 2 != n or len(data) != 60000:
        print("CORRUPT registers", n, flush=True)
        os._exit(3)
    if ping.is_set():
        ping.clear()
        if hash(tuple(data)) != digest:
            print("CORRUPT data", flush=True)
            os._exit(3)
        state = (signal.pthread_sigmask(signal.SIG_BLOCK, []), altstack())
        if state != state0:
            print("CORRUPT signal state", state0, state, flush=True)
            os._exit(3)
        print("pong", n, flush=True)
if kind == "children":
    child.kill()
    child.wait()
print("bye", n, flush=True)
'''


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


def die_with_parent():
    """The target goes when this driver goes (a ctest timeout kills only us)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Target:
    def __init__(self, py, kind, workdir):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("HEAPSNAP_TEST_FAULT", None)
        self.kind = kind
        self.p = subprocess.Popen([py, "-c", TARGET, kind], env=env, cwd=workdir, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  preexec_fn=die_with_parent)
        line = self.readline()
        if not line.startswith("ready"):
            raise RuntimeError("target did not start: %r" % line)
        self.pid = self.p.pid
        self.kids = self.children()

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                return set(f.read().split())
        except OSError:
            return set()

    def forks_done(self):
        """A fork-mode child of a killed dump finishes by itself: wait for it."""
        for _ in range(HANG * 20):
            if self.children() <= self.kids:
                return True
            time.sleep(0.05)
        return False

    def readline(self):
        r, _, _ = select.select([self.p.stdout], [], [], HANG)
        return self.p.stdout.readline().strip() if r else ""

    def status(self, key):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return line.split()[1]
        except OSError:
            return None
        return None

    def healthy(self, what):
        """Alive, untraced, and its main thread answers (runs Python)."""
        if not check(self.p.poll() is None, "%s: target alive (exit %s)" % (what, self.p.poll())):
            return False
        # ptrace detaches at once, but a killed tracer's exit is seen a little later
        for _ in range(HANG * 100):
            if self.status("TracerPid") == "0":
                break
            time.sleep(0.01)
        check(self.status("TracerPid") == "0", "%s: target no longer traced" % what)
        try:
            self.p.stdin.write("ping\n")
            self.p.stdin.flush()
        except OSError:
            return check(False, "%s: target takes input" % what)
        line = self.readline()
        return check(line.startswith("pong"), "%s: target's main thread answers, its signal "
                     "mask, alternate stack and data unchanged (got %r)" % (what, line))

    def finish(self, what):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except OSError:
            pass
        line = self.readline()
        try:
            rc = self.p.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        check(line.startswith("bye") and rc == 0, "%s: target ends cleanly (%r, exit %s)" %
              (what, line, rc))


def writer_alive(tmp):
    """A temporary name says its writer: NAME.tmp.<pid>.XXXXXX."""
    parts = os.path.basename(tmp).rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    return os.path.exists("/proc/%s" % parts[1])


def settle(d, live_only=False):
    """Wait for writes still going on in the target (a dump that runs on after
    a kill ends by itself: complete, renamed into place) and the fork child.
    live_only: temporary files of dead writers (a SIGKILLed heapsnap's index)
    are left for the next run to remove."""
    for _ in range(HANG * 20):
        left = glob.glob(os.path.join(d, "*.tmp*"))
        if live_only:
            left = [f for f in left if writer_alive(f)]
        if not left:
            return True
        time.sleep(0.05)
    return False


def valid_snapshot(cli, path):
    r = subprocess.run([cli, "info", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=HANG)
    return r.returncode == 0, r.stderr.strip()


def dump_cmd(cli, pid, mode, out):
    cmd = [cli, "dump", str(pid), "--no-agent"]
    if mode == "no-fork":
        cmd.append("--no-fork")
    elif mode == "fork":
        cmd.append("--fork")
    else:
        cmd += ["--children"]
    return cmd + ["-o", out]


def outputs(d):
    return sorted(os.listdir(d))


def trial(cli, tgt, mode, d, name, fault=None, delay=None, sig=None, stats=None):
    """One dump killed one way. Returns the dumper's exit status."""
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    out = os.path.join(d, "x.hsidx" if mode == "children" else "x.hsnap")
    env = dict(os.environ)
    env.pop("HEAPSNAP_TEST_FAULT", None)
    if fault:
        env["HEAPSNAP_TEST_FAULT"] = fault
    p = subprocess.Popen(dump_cmd(cli, tgt.pid, mode, out), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if delay is not None:
        time.sleep(delay)
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
    try:
        _, err = p.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        check(False, "%s: heapsnap hung" % name)
    rc = p.returncode
    if stats is not None:
        stats["kills"] += 1
        key = "killed" if rc in (-signal.SIGKILL, 128 + signal.SIGTERM, -signal.SIGTERM) else \
            "finished"
        stats[key] += 1
    if rc == 128 + signal.SIGTERM:
        check("interrupted by signal 15" in err, "%s: says it was interrupted (%r)" % (name, err))
    # -SIGTERM: the signal came before heapsnap set its handlers (nothing
    # was touched yet)
    check(rc in (0, 2, -signal.SIGKILL, -signal.SIGTERM, 128 + signal.SIGTERM),
          "%s: heapsnap exit status %s (%s)" % (name, rc, err.strip()[-300:]))
    ok = tgt.healthy(name)
    if stats is not None and ok:
        stats["survived"] += 1
    check(tgt.forks_done(), "%s: the forked child finished" % name)
    # a SIGKILLed heapsnap cannot remove its own temporary index: the next
    # run does (checked below)
    check(settle(d, live_only=rc == -signal.SIGKILL), "%s: temporary files gone (%s)" %
          (name, outputs(d)))
    # no partial file under a final name: whatever is there is complete
    for f in glob.glob(os.path.join(d, "*.hsnap")):
        good, msg = valid_snapshot(cli, f)
        check(good, "%s: %s is a valid snapshot (%s)" % (name, os.path.basename(f), msg))
    if rc == 0:
        check(os.path.exists(out), "%s: success wrote %s" % (name, os.path.basename(out)))
    if rc == 128 + signal.SIGTERM or rc == -signal.SIGTERM:
        left = [f for f in outputs(d) if f.endswith((".hsfork-status", ".sock"))]
        check(not left, "%s: nothing left behind after SIGTERM (%s)" % (name, left))
        if mode == "children" and rc == 128 + signal.SIGTERM:
            # an interrupted tree dump writes no index and keeps no snapshot
            check(not outputs(d), "%s: no index, no snapshots after SIGTERM (%s)" %
                  (name, outputs(d)))
    if rc == -signal.SIGKILL:
        # nothing could clean up: the next dump to the same name must work
        # and take away what a killed one left
        r = subprocess.run(dump_cmd(cli, tgt.pid, mode, out), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=HANG)
        check(r.returncode == 0, "%s: a dump after the kill works (%s)" % (name, r.stderr.strip()))
        check(settle(d), "%s: temporary files gone after the next dump" % name)
        extra = [f for f in outputs(d) if not f.endswith((".hsnap", ".hsidx"))]
        check(not extra, "%s: nothing left behind after the next dump (%s)" % (name, extra))
        tgt.healthy(name + " (after the next dump)")
    return rc


POINTS = (["seized:1"] + ["entered:%d" % i for i in range(1, 10)] +
          ["returned:%d" % i for i in range(1, 10)] +
          ["quiet:1", "queued:1", "kicked:1", "stub:1", "detach:1", "fork-wait:1"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--random", type=int, default=12, help="random-moment kills per mode")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--modes", default="no-fork,fork,children")
    ap.add_argument("--no-phases", action="store_true")
    ap.add_argument("--json", action="store_true", help="print figures as JSON (benchmarks)")
    a = ap.parse_args()
    if not os.path.exists(a.python):
        print("SKIP: no interpreter %s" % a.python)
        return 77
    probe = subprocess.run(["sh", "-c", "cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null"],
                           capture_output=True, text=True).stdout.strip()
    if probe not in ("", "0") and os.geteuid() != 0:
        print("SKIP: ptrace restricted (kernel.yama.ptrace_scope=%s) and not root" % probe)
        return 77
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="hs-fault-")
    os.chmod(work, 0o700)
    stats = {}
    targets = {}
    try:
        for mode in a.modes.split(","):
            st = stats.setdefault(mode, {"kills": 0, "killed": 0, "finished": 0, "survived": 0})
            kinds = ["children"] if mode == "children" else ["sleep", "busy", "mixed"]
            targets = {k: Target(a.python, k, work) for k in kinds}
            d = os.path.join(work, "out")
            os.makedirs(d, exist_ok=True)
            i = 0
            if not a.no_phases:
                for point in POINTS:
                    if point == "fork-wait:1" and mode == "no-fork":
                        continue
                    for sig in (signal.SIGTERM, signal.SIGKILL):
                        kind = kinds[i % len(kinds)]
                        i += 1
                        trial(a.cli, targets[kind], mode, d,
                              "%s %s %s at %s" % (mode, kind, sig.name, point),
                              fault="%s:%d" % (point, sig), stats=st)
            # how long a whole dump takes here: the window for random kills
            t0 = time.monotonic()
            trial(a.cli, targets[kinds[0]], mode, d, "%s timing" % mode)
            span = max(time.monotonic() - t0, 0.05)
            for k in range(a.random):
                kind = kinds[k % len(kinds)]
                sig = signal.SIGKILL if rng.random() < 0.5 else signal.SIGTERM
                delay = rng.uniform(0, span * 1.2)
                trial(a.cli, targets[kind], mode, d, "%s %s %s after %.4f s" %
                      (mode, kind, sig.name, delay), delay=delay, sig=sig, stats=st)
            for k, t in targets.items():
                t.finish("%s %s" % (mode, k))
                if t.p.returncode == 0:
                    st["targets_ok"] = st.get("targets_ok", 0) + 1
    finally:
        for t in targets.values():
            if t.p.poll() is None:
                t.p.kill()
                t.p.wait()
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps({"python": a.python, "stats": stats, "failures": len(FAILED)}))
    for mode, st in stats.items():
        print("%-9s %4d kills (%d cut a dump short, %d came after it ended), target survived "
              "%d" % (mode, st["kills"], st["killed"], st["finished"], st["survived"]))
    if FAILED:
        print("%d failure(s)" % len(FAILED))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
