"""`heapsnap record`'s socket directories (/tmp/heapsnap-rec-<pid>-XXXXXX):
removed at every end the recorder sees, and, after a SIGKILL, by the next
recorder of the same user; never another user's, never through a link,
never while the recorder or an agent in it is alive.

usage: stale_dirs.py --cli HEAPSNAP --python PY

Waits are bounded generously and only detect hangs.
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILED = []
PARENT = "/tmp"


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what.split(":")[0], flush=True)
    return cond


def wait_until(cond, seconds=60.0, step=0.05):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def dirs_of(pid):
    return glob.glob(os.path.join(PARENT, "heapsnap-rec-%d-*" % pid))


def sockets(d):
    return glob.glob(os.path.join(d, "agent-*.sock"))


SLEEPER = "import sys; print('up', flush=True); sys.stdin.readline()"


class Recorder:
    """heapsnap record -- PY -c SLEEPER: the command waits for its stdin."""

    def __init__(self, ctx, name):
        self.out = os.path.join(ctx.tmp, name + ".hsrec")
        self.p = subprocess.Popen([ctx.cli, "record", "-q", "-o", self.out, "--", ctx.py, "-c", SLEEPER],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ctx.env)
        self.pid = self.p.pid
        check(self.p.stdout.readline().strip() == "up", "%s: the command runs" % name)
        # the agent of the command binds its socket in the directory
        ok = wait_until(lambda: len(dirs_of(self.pid)) == 1 and sockets(dirs_of(self.pid)[0]))
        check(ok, "%s: its directory and the command's agent socket appear: %s" %
              (name, dirs_of(self.pid)))
        self.dir = dirs_of(self.pid)[0] if ok else None
        self.command_pid = None
        if ok:
            s = os.path.basename(sockets(self.dir)[0])
            self.command_pid = int(s[len("agent-"):-len(".sock")])

    def finish(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            rc = self.p.wait(120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


class Ctx:
    def __init__(self, cli, py, tmp):
        self.cli, self.py, self.tmp = cli, py, tmp
        self.env = dict(os.environ)
        self.env.pop("PYTHONPATH", None)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"


def case_exits(ctx):
    """Every end the recorder sees removes its directory."""
    r = Recorder(ctx, "normal")
    rc = r.finish()
    check(rc == 0 and r.dir and not os.path.exists(r.dir), "normal end: directory removed (%s)" % rc)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        r = Recorder(ctx, "sig%d" % sig)
        # sent to the recorder alone: forwarded to the command, which ends
        # of it; the recorder then ends too
        os.kill(r.pid, sig)
        try:
            rc = r.p.wait(120)
        except subprocess.TimeoutExpired:
            r.p.kill()
            rc = None
        r.finish()
        check(rc is not None and r.dir and not os.path.exists(r.dir),
              "%s: directory removed (exit %s)" % (signal.Signals(sig).name, rc))
    # SIGPIPE (a closed stderr pipe, or kill): held until the end of the
    # recording, then acts; the directory is gone either way
    r = Recorder(ctx, "sigpipe")
    os.kill(r.pid, signal.SIGPIPE)
    time.sleep(0.2)
    check(r.p.poll() is None, "SIGPIPE: the recording goes on until its end")
    rc = r.finish()
    check(r.dir and not os.path.exists(r.dir), "SIGPIPE: directory removed (exit %s)" % rc)
    # an error at start (unwritable output) leaves nothing
    before = set(glob.glob(os.path.join(PARENT, "heapsnap-rec-*")))
    r = subprocess.run([ctx.cli, "record", "-q", "-o", "/nonexistent-dir/x.hsrec", "--", ctx.py, "-c", "pass"],
                       capture_output=True, text=True, env=ctx.env, timeout=120)
    after = set(glob.glob(os.path.join(PARENT, "heapsnap-rec-*")))
    check(r.returncode != 0 and not (after - before), "error at start: no directory left (%s %r)" %
          (r.returncode, r.stderr[-300:]))


def case_stale(ctx):
    """SIGKILLed recorders leave their directory; the next recorder removes
    it, and nothing else."""
    live = Recorder(ctx, "live")
    killed = Recorder(ctx, "killed")
    orphaned = Recorder(ctx, "orphaned")
    # a killed recorder whose command ended too: stale
    os.kill(killed.pid, signal.SIGKILL)
    killed.p.wait()
    os.kill(killed.command_pid, signal.SIGKILL)
    check(wait_until(lambda: not os.path.exists("/proc/%d" % killed.command_pid) or
                     open("/proc/%d/stat" % killed.command_pid).read().split(") ")[1][0] == "Z"),
          "killed: its command ended")
    # a killed recorder whose command still runs its agent there: kept
    os.kill(orphaned.pid, signal.SIGKILL)
    orphaned.p.wait()
    check(os.path.isdir(killed.dir) and os.path.isdir(orphaned.dir),
          "SIGKILL leaves the directories (nothing runs at a SIGKILL)")
    # an old-style name (no pid) whose sockets are dead and that is old: stale
    legacy = tempfile.mkdtemp(prefix="heapsnap-rec-", dir=PARENT)
    with open(os.path.join(legacy, "track-1.json"), "w") as f:
        f.write("{}")
    old = time.time() - 7200
    os.utime(legacy, (old, old))
    recent_legacy = tempfile.mkdtemp(prefix="heapsnap-rec-", dir=PARENT)
    # another user's directory with a dead owner pid, and a link to a
    # directory of ours: neither touched
    others = []
    if os.geteuid() == 0:
        o = tempfile.mkdtemp(prefix="heapsnap-rec-999999999-", dir=PARENT)
        # that prefix makes "heapsnap-rec-999999999-XXXXXXXX": rename to the pattern
        other = os.path.join(PARENT, "heapsnap-rec-999999998-abcdef")
        if os.path.lexists(other):
            shutil.rmtree(other)
        os.rename(o, other)
        open(os.path.join(other, "agent-5.sock"), "w").close()
        os.chown(os.path.join(other, "agent-5.sock"), 65534, 65534)
        os.chown(other, 65534, 65534)
        others.append(other)
    victim = tempfile.mkdtemp(prefix="victim-", dir=ctx.tmp)
    open(os.path.join(victim, "precious"), "w").close()
    link = os.path.join(PARENT, "heapsnap-rec-999999997-ghijkl")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(victim, link)
    try:
        nxt = Recorder(ctx, "next")
        check(not os.path.exists(killed.dir), "next run: the killed recorder's directory is gone")
        check(os.path.isdir(live.dir) and sockets(live.dir),
              "next run: the live recorder's directory is kept")
        check(os.path.isdir(orphaned.dir) and sockets(orphaned.dir),
              "next run: a directory where an agent still listens is kept")
        check(not os.path.exists(legacy), "next run: an old-style stale directory is gone")
        check(os.path.isdir(recent_legacy), "next run: a recent old-style directory is kept")
        for o in others:
            check(os.path.isdir(o) and os.path.exists(os.path.join(o, "agent-5.sock")),
                  "next run: another user's directory is untouched")
        check(os.path.islink(link) and os.path.exists(os.path.join(victim, "precious")),
              "next run: a link named like a directory is not followed")
        check(nxt.finish() == 0 and not os.path.exists(nxt.dir), "next run: its own directory removed")
        check(live.finish() == 0 and not os.path.exists(live.dir), "live: removed at its end")
        # the orphaned command ends: its directory is stale now
        os.kill(orphaned.command_pid, signal.SIGKILL)
        check(wait_until(lambda: not os.path.exists("/proc/%d" % orphaned.command_pid) or
                         open("/proc/%d/stat" % orphaned.command_pid).read().split(") ")[1][0] == "Z"),
              "orphaned: its command ended")
        last = Recorder(ctx, "last")
        check(not os.path.exists(orphaned.dir), "a later run removes it once nobody listens")
        last.finish()
    finally:
        for d in [legacy, recent_legacy] + others:
            shutil.rmtree(d, ignore_errors=True)
        if os.path.lexists(link):
            os.unlink(link)
        for d in (killed.dir, orphaned.dir):
            if d:
                shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="heapsnap-stale-")
    try:
        ctx = Ctx(os.path.abspath(a.cli), a.python, tmp)
        case_exits(ctx)
        case_stale(ctx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
