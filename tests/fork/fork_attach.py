"""`heapsnap dump PID --fork` on targets that never imported heapsnap.

usage: fork_attach.py --cli HEAPSNAP --python PY

Two targets (one busy in bytecode: pending-call safe point; one blocked in
time.sleep: GIL taken in the system call), each dumped twice with --fork:
the file has the known objects, the target runs on, the child is reaped,
no status or temporary file is left; then --fork-timeout kills the child.
Exit 77 when ptrace is not allowed here.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

FAILED = []

BUSY = """
import os, sys
class Leak:
    def __init__(self, i): self.i = i
keep = [Leak(i) for i in range(300000)]
print("ready", os.getpid(), flush=True)
n = 0
while True:
    n += 1
"""
SLEEPY = BUSY.replace("while True:\n    n += 1", "import time\nwhile True:\n    time.sleep(100)")


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def gone(pid, seconds=10.0):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                f.read()
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


# select, nanosleep, clock_nanosleep, poll, pselect6: time.sleep's system
# call across 3.8-3.13
SLEEP_SYSCALLS = {"23", "35", "230", "7", "270"}


def wait_asleep(pid, seconds=30.0):
    """Until the target is blocked in time.sleep's system call: "sleepy"
    tests a dump taken while the main thread sleeps (a dump queued in the
    instant before it enters the sleep is a different case: see
    tests/attach)."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            with open("/proc/%d/syscall" % pid) as f:
                if f.read().split(" ", 1)[0] in SLEEP_SYSCALLS:
                    return True
        except OSError:
            return False
        time.sleep(0.01)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    d = tempfile.mkdtemp(prefix="hs-fork-attach-")
    for name, code in (("busy", BUSY), ("sleepy", SLEEPY), ("sleepy-now", SLEEPY)):
        p = subprocess.Popen([a.python, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            if not line.startswith("ready"):
                check(False, "%s target started" % name)
                continue
            # "sleepy-now" dumps at once: the dump is often queued in the
            # instant before the 100 s sleep starts (it is then taken in
            # the sleep, blocked mode, the queued call cancelled)
            if name == "sleepy" and not check(wait_asleep(p.pid), "sleepy: target asleep in time.sleep"):
                continue
            for i in range(2):
                out = os.path.join(d, "%s-%d.hsnap" % (name, i))
                r = subprocess.run([a.cli, "dump", str(p.pid), "--fork", "-o", out],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0 and "ptrace" in r.stderr:
                    print("skip: ptrace not allowed here:", r.stderr.strip())
                    return 77
                if not check(r.returncode == 0, "%s: dump --fork (%s)" % (name, r.stderr.strip())):
                    continue
                print(r.stdout.strip())
                m = re.search(r"child (\d+) walked", r.stdout)
                pm = re.search(r"pause ([0-9.]+) ms", r.stdout)
                check(m is not None and pm is not None, "%s: child and pause reported" % name)
                s = json.loads(subprocess.run([a.cli, "summary", out, "--json", "--top", "1000"],
                                              check=True, stdout=subprocess.PIPE,
                                              text=True).stdout)
                counts = {row["name"]: row["count"] for row in s["rows"]}
                check(counts.get("__main__.Leak") == 300000, "%s: the known objects" % name)
                info = json.loads(subprocess.run([a.cli, "info", out, "--json"], check=True,
                                                 stdout=subprocess.PIPE, text=True).stdout)
                fk = info["meta"]["dump"].get("fork", {})
                check(m and fk.get("child_pid") == int(m.group(1)), "%s: dump.fork in META_END" % name)
                check(m and gone(int(m.group(1))), "%s: child reaped in the target" % name)
                check(p.poll() is None, "%s: target still running" % name)
                left = glob.glob(out + ".*")
                check(not left, "%s: no status or temporary file left %s" % (name, left))
            # the watchdog, through the CLI
            out = os.path.join(d, "%s-watchdog.hsnap" % name)
            r = subprocess.run([a.cli, "dump", str(p.pid), "--fork", "--fork-timeout", "0.001",
                                "-o", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
            check(r.returncode == 2 and "watchdog" in r.stderr,
                  "%s: --fork-timeout kills the child (%s)" % (name, r.stderr.strip()))
            time.sleep(0.2)
            check(not os.path.exists(out) and not glob.glob(out + ".*"),
                  "%s: nothing left after the watchdog" % name)
            check(p.poll() is None, "%s: target still running after the watchdog" % name)
        finally:
            p.kill()
            p.wait()
    if FAILED:
        print("%d failure(s)" % len(FAILED))
        return 1
    import shutil
    shutil.rmtree(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
