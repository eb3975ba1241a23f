"""What heapsnap creates and what it reads (src/util/file.c).

usage: run_files.py --cli HEAPSNAP [--python PY --pkg DIR] CASE...

Cases:
  planted   another user (uid 65534, through setpriv) plants symbolic links in
            a 1777 directory at every name heapsnap writes: snapshot output
            (heapsnap.dump in and out of fork mode, `dump PID`, `run -o DIR`),
            a stale-looking temporary name, the fork-mode status file, the
            index and per-process snapshots of `dump --children`, `record -o`,
            `plot`/`graph`/`flamegraph -o`. The victim must be untouched and
            the command must fail with one clear message; every file created
            is mode 0600. Needs root and setpriv (exit 77 otherwise).
  special   a FIFO, a socket, /dev/null and a directory given to every reading
            command: exit 2 at once, one line naming the file.
  cut       a recording cut at every byte of its last kilobyte reads back
            (`info`: exit 0 with a warning).
  stale     leftovers: temporary files of dead writers of the same user are
            removed by the next writer of the same name (never a live
            writer's or another user's); a stale fork-mode status file is not
            taken for a new dump's result and is removed; a full disk during
            `record` leaves no empty or unreadable file (tmpfs; root).

--python/--pkg: an interpreter and the directory holding our package
(build/python) for the parts that need a Python target; they are skipped
without. Subprocess timeouts are hang detectors only (generous).
"""
import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "fixtures")
SNAP = os.path.join(FIXTURES, "snapshots", "synthetic-small.hsnap")
REC = os.path.join(FIXTURES, "recordings", "tree.hsrec")
SKIP = 77
HANG = int(os.environ.get("HS_FILES_HANG", "60"))  # a hang detector only: each command answers at once
NOBODY = 65534
VICTIM_TEXT = b"precious: nobody may make heapsnap write here\n"
FAILED = []
ARGS = None


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(*args, timeout=HANG, env=None, cwd=None):
    if os.environ.get("HS_FILES_VERBOSE"):
        print("+", " ".join(map(str, args))[:200], flush=True)
    try:
        r = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        check(False, "%s: hung (no answer within %d s)" % (" ".join(map(str, args)), timeout))
        return 124, "", ""
    return r.returncode, r.stdout, r.stderr


def cli(*args, **kw):
    return run(ARGS.cli, *args, **kw)


def can_plant():
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def as_nobody(*cmd):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
                   + list(cmd), check=True)


def shared_dir(base, name):
    """A directory like /tmp: world-writable and sticky."""
    d = os.path.join(base, name)
    os.mkdir(d)
    os.chmod(d, 0o1777)
    return d


class Victim:
    """A root-only file that planted links point at."""

    def __init__(self, base):
        d = os.path.join(base, "private")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o700)
        self.path = os.path.join(d, "victim")
        with open(self.path, "wb") as f:
            f.write(VICTIM_TEXT)
        self.st = os.stat(self.path)

    def intact(self, what):
        st = os.stat(self.path)
        with open(self.path, "rb") as f:
            data = f.read()
        return check(data == VICTIM_TEXT and st.st_mode == self.st.st_mode and
                     st.st_uid == self.st.st_uid,
                     "%s: the victim file was written through or changed" % what)


def plant(victim, path):
    as_nobody("ln", "-s", victim.path, path)


def still_planted(path, what):
    check(os.path.islink(path), "%s: the planted link at %s was replaced or removed" % (what, path))


def one_line(se, what):
    lines = [l for l in se.splitlines() if l.strip()]
    return check(len(lines) == 1, "%s: one line on stderr, got %r" % (what, se))


def refused(rc, se, path, what):
    check(rc == 2, "%s: exit status 2, got %d (%s)" % (what, rc, se.strip()))
    check(path in se and "symbolic link" in se, "%s: the message names %s and the link: %r"
          % (what, path, se))


def mode_0600(path, what):
    m = stat.S_IMODE(os.lstat(path).st_mode)
    check(m == 0o600, "%s: %s is mode %o, not 600" % (what, path, m))


def py_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ARGS.pkg
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def target_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


TARGET = r"""
import os, subprocess, sys, time
held = [str(i) * 3 for i in range(20000)]
kids = []
if len(sys.argv) > 1 and sys.argv[1] == "tree":
    kids.append(subprocess.Popen([sys.executable, "-c",
        "import time\nheld = [str(i) for i in range(5000)]\nprint('ready', flush=True)\n"
        "time.sleep(600)"], stdout=subprocess.PIPE, text=True))
    kids[0].stdout.readline()
print("ready", os.getpid(), " ".join(str(k.pid) for k in kids), flush=True)
time.sleep(600)
"""


class Target:
    """A Python process that imports nothing of ours, for `heapsnap dump`."""

    def __init__(self, tree=False):
        self.p = subprocess.Popen([ARGS.python, "-c", TARGET] + (["tree"] if tree else []),
                                  stdout=subprocess.PIPE, text=True, env=target_env())
        line = self.p.stdout.readline().split()
        self.pid = self.p.pid
        self.kids = [int(x) for x in line[2:]] if line and line[0] == "ready" else []

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        for k in self.kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.kill()
        self.p.wait()


# ---------------------------------------------------------------------------

def case_planted(base):
    if not can_plant():
        print("skipped: planting links as another user needs root and setpriv "
              "(util-linux); run the suite as root to check it")
        return SKIP
    v = Victim(base)
    d = shared_dir(base, "shared")

    # record -o
    out = os.path.join(d, "r.hsrec")
    plant(v, out)
    rc, so, se = cli("record", "-o", out, "--", "true")
    refused(rc, se, out, "record -o")
    v.intact("record -o")
    still_planted(out, "record -o")
    ok = os.path.join(d, "ok.hsrec")
    rc, so, se = cli("record", "-o", ok, "--", "true")
    if check(rc == 0, "record: %s" % se.strip()):
        mode_0600(ok, "record -o")

    # plot / graph / flamegraph -o
    for cmd, name, extra in (("plot", "p.svg", [REC]),
                             ("flamegraph", "f.svg", [REC]),
                             ("graph", "g.svg", [SNAP, "--type", "dict"]),
                             ("graph", "g.dot", [SNAP, "--type", "dict"])):
        out = os.path.join(d, name)
        plant(v, out)
        rc, so, se = cli(cmd, *extra, "-o", out)
        refused(rc, se, out, "%s -o %s" % (cmd, name))
        v.intact("%s -o" % cmd)
        still_planted(out, cmd)
        if cmd != "flamegraph":  # the fixture has no allocation sites to draw
            ok = os.path.join(d, "ok-" + name)
            rc, so, se = cli(cmd, *extra, "-o", ok)
            if check(rc == 0, "%s -o: %s" % (cmd, se.strip())):
                mode_0600(ok, "%s -o" % cmd)

    if not ARGS.python or not ARGS.pkg:
        print("note: no --python/--pkg: the snapshot, run and dump parts are skipped")
        return 0

    # heapsnap.dump(): the hook's writer, in process and in a forked child;
    # a planted name in the temporary files' pattern is neither followed
    # nor removed
    out = os.path.join(d, "s.hsnap")
    plant(v, out)
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp_link = "%s.tmp.%d.AAAAAA" % (out, dead.pid)
    plant(v, tmp_link)
    for fork in ("False", "True"):
        code = ("import heapsnap, sys\n"
                "try:\n    heapsnap.dump(%r, fork=%s, wait=%s)\n"
                "except Exception as e:\n    print(e, file=sys.stderr); sys.exit(2)\n"
                % (out, fork, fork))
        rc, so, se = run(ARGS.python, "-c", code, env=py_env())
        refused(rc, se, out, "heapsnap.dump(fork=%s)" % fork)
        v.intact("heapsnap.dump(fork=%s)" % fork)
        still_planted(out, "heapsnap.dump")
        still_planted(tmp_link, "heapsnap.dump (temporary name)")
    # the fork-mode child's status file
    st_path = os.path.join(d, "st.hsfork-status")
    plant(v, st_path)
    ok = os.path.join(d, "ok.hsnap")
    code = ("import heapsnap, os, time\n"
            "r = heapsnap.dump(%r, fork=True, status=%r)\n"
            "for _ in range(6000):\n"
            "    if os.path.exists(%r): break\n"
            "    time.sleep(0.01)\n" % (ok, st_path, ok))
    rc, so, se = run(ARGS.python, "-c", code, env=py_env())
    v.intact("fork-mode status file")
    still_planted(st_path, "fork-mode status file")
    if check(os.path.exists(ok), "fork mode wrote its snapshot: %s" % se.strip()):
        mode_0600(ok, "heapsnap.dump(fork=True)")

    # heapsnap run -o DIR: the script plants links at the names the runner
    # will use for it (heapsnap-PID-N.hsnap) before it ends
    script = os.path.join(base, "plant_run.py")
    with open(script, "w") as f:
        f.write("import os, subprocess, sys\n"
                "for n in range(4):\n"
                "    subprocess.run(['setpriv', '--reuid=%d', '--regid=%d', '--clear-groups',\n"
                "                    'ln', '-s', sys.argv[2], os.path.join(sys.argv[1],\n"
                "                    'heapsnap-%%d-%%d.hsnap' %% (os.getpid(), n))], check=True)\n"
                % (NOBODY, NOBODY))
    rd = shared_dir(base, "run")
    rc, so, se = cli("run", "-o", rd, "--python", ARGS.python, "--", script, rd, v.path)
    v.intact("run -o DIR")
    check("symbolic link" in se, "run -o DIR: the message names the link: %r" % se)
    rd2 = shared_dir(base, "run2")
    with open(script, "w") as f:
        f.write("x = [1] * 10\n")
    rc, so, se = cli("run", "-o", rd2, "--python", ARGS.python, "--", script)
    made = [n for n in os.listdir(rd2) if n.endswith(".hsnap")]
    if check(rc == 0 and made, "run -o DIR wrote a snapshot: %s" % se.strip()):
        for n in made:
            mode_0600(os.path.join(rd2, n), "run -o DIR")

    # heapsnap dump PID: the output and the fork-mode status file
    t = Target()
    try:
        for mode in ("--no-fork", "--fork"):
            out = os.path.join(d, "d%s.hsnap" % mode)
            plant(v, out)
            rc, so, se = cli("dump", t.pid, "-o", out, mode)
            refused(rc, se, out, "dump PID %s" % mode)
            v.intact("dump PID %s" % mode)
        out = os.path.join(d, "df.hsnap")
        status = out + ".hsfork-status"
        plant(v, status)
        rc, so, se = cli("dump", t.pid, "-o", out, "--fork")
        refused(rc, se, status, "dump PID --fork (status file)")
        v.intact("dump PID --fork (status file)")
        out = os.path.join(d, "dok.hsnap")
        rc, so, se = cli("dump", t.pid, "-o", out)
        if check(rc == 0, "dump PID: %s" % se.strip()):
            mode_0600(out, "dump PID")
        check(t.alive(), "the target survived")
    finally:
        t.stop()

    # dump --children: the index and a per-process snapshot
    t = Target(tree=True)
    try:
        if check(len(t.kids) == 1, "the tree target started its child"):
            index = os.path.join(d, "set.hsidx")
            plant(v, index)
            rc, so, se = cli("dump", t.pid, "--children", "-o", index, "--no-fork")
            refused(rc, se, index, "dump --children (index)")
            v.intact("dump --children (index)")
            index = os.path.join(d, "set2.hsidx")
            child_snap = os.path.join(d, "set2-%d.hsnap" % t.kids[0])
            plant(v, child_snap)
            rc, so, se = cli("dump", t.pid, "--children", "-o", index, "--no-fork")
            v.intact("dump --children (a process's snapshot)")
            still_planted(child_snap, "dump --children")
            check("symbolic link" in so + se, "dump --children names the link: %r" % (so + se))
            if check(os.path.exists(index), "the index lists the processes dumped: %s" % se):
                mode_0600(index, "dump --children index")
                mode_0600(os.path.join(d, "set2-%d.hsnap" % t.pid), "dump --children snapshot")
        check(t.alive(), "the tree target survived")
    finally:
        t.stop()
    return 0


# ---------------------------------------------------------------------------

READERS = [
    ("summary", "{}"), ("diff", "{} " + SNAP), ("diff", SNAP + " {}"),
    ("leaks", "{} %s %s" % (SNAP, SNAP)), ("leaks", "%s %s {}" % (SNAP, SNAP)),
    ("paths", "{} --type dict"), ("retained", "{}"), ("dominators", "{} --address 0x10"),
    ("garbage", "{}"), ("graph", "{} --type dict -o @OUT@"), ("info", "{}"),
    ("timeline", "{}"), ("lines", "{}"), ("flamegraph", "{} -o @OUT@"),
    ("plot", "{} -o @OUT@"),
]


def case_special(base):
    fifo = os.path.join(base, "in.fifo")
    os.mkfifo(fifo)
    fifo_idx = os.path.join(base, "in.hsidx")
    os.mkfifo(fifo_idx)
    sock_path = os.path.join(base, "in.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock_path)
    s.listen(1)
    directory = os.path.join(base, "in.dir")
    os.mkdir(directory)
    outdir = os.path.join(base, "outs")
    os.mkdir(outdir)
    specials = [(fifo, "FIFO"), (sock_path, "socket"), ("/dev/null", "character device"),
                (directory, "directory")]
    for path, kind in specials:
        for cmd, args in READERS:
            if any("hung" in f and path in f for f in FAILED):
                break  # one hang per kind of file says it: not one per command
            out = os.path.join(outdir, "x.svg")
            argv = [a.replace("{}", path).replace("@OUT@", out) for a in args.split()]
            what = "%s %s" % (cmd, " ".join(argv))
            rc, so, se = cli(cmd, *argv)
            check(rc == 2, "%s: exit status 2, got %d (%r)" % (what, rc, se))
            one_line(se, what)
            check(path in se and kind in se, "%s: the message names %s and says %s: %r"
                  % (what, path, kind, se))
            check(not os.listdir(outdir), "%s: wrote an output" % what)
    # indexes (by name)
    for argv in (["summary", fifo_idx], ["diff", fifo_idx, fifo_idx]):
        rc, so, se = cli(*argv)
        what = " ".join(argv)
        check(rc == 2, "%s: exit status 2, got %d (%r)" % (what, rc, se))
        one_line(se, what)
        check(fifo_idx in se and "FIFO" in se, "%s: names the FIFO: %r" % (what, se))
    s.close()
    return 0


# ---------------------------------------------------------------------------

def case_cut(base):
    with open(REC, "rb") as f:
        data = f.read()
    path = os.path.join(base, "cut.hsrec")
    start = max(len(data) - 1024, 0)
    bad = 0
    for n in range(start, len(data)):
        with open(path, "wb") as f:
            f.write(data[:n])
        rc, so, se = cli("info", path)
        if rc != 0 or "warning" not in se:
            bad += 1
            check(False, "a recording cut at byte %d of %d: exit %d, %r" % (n, len(data), rc,
                                                                           se.strip()))
            if bad > 5:
                break
    rc, so, se = cli("info", REC)
    check(rc == 0 and "warning" not in se, "the whole recording reads clean: %r" % se)
    return 0


# ---------------------------------------------------------------------------

def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def case_stale(base):
    d = shared_dir(base, "stale")
    out = os.path.join(d, "p.svg")
    dead = dead_pid()
    ours = "%s.tmp.%d.abcdef" % (out, dead)
    live = "%s.tmp.%d.zzzzzz" % (out, os.getpid())
    for p in (ours, live):
        open(p, "w").close()
    theirs = None
    if os.geteuid() == 0:
        theirs = "%s.tmp.%d.THEIRS" % (out, dead)
        open(theirs, "w").close()
        os.chown(theirs, NOBODY, NOBODY)
    rc, so, se = cli("plot", REC, "-o", out)
    check(rc == 0, "plot: %s" % se.strip())
    check(not os.path.exists(ours), "a dead writer's temporary file of ours is removed")
    check(os.path.exists(live), "a live writer's temporary file is kept")
    if theirs:
        check(os.path.exists(theirs), "another user's temporary file is kept")
    # the same for recordings
    out = os.path.join(d, "r.hsrec")
    ours = "%s.tmp.%d.qqqqqq" % (out, dead)
    open(ours, "w").close()
    rc, so, se = cli("record", "-o", out, "--", "true")
    check(rc == 0, "record: %s" % se.strip())
    check(not os.path.exists(ours), "record removes a dead recorder's temporary file")
    left = [n for n in os.listdir(d) if ".tmp." in n and n not in
            (os.path.basename(live), os.path.basename(theirs or ""))]
    check(not left, "nothing left behind: %s" % left)

    # a full disk during record: no empty or unreadable file under the name
    if os.geteuid() == 0 and shutil.which("mount"):
        full_disk(base)
    else:
        print("note: the full-disk part needs root (a small tmpfs); skipped")

    # a stale fork-mode status file (a killed dump's) is not this dump's result
    if ARGS.python:
        t = Target()
        try:
            out = os.path.join(d, "s.hsnap")
            status = out + ".hsfork-status"
            with open(status, "w") as f:
                f.write("pid %d\nok 1\nobjects 987654321\nedges 1\nbytes 1\n" % dead)
            rc, so, se = cli("dump", t.pid, "-o", out, "--fork")
            check(rc == 0, "dump --fork over a stale status file: %s" % se.strip())
            check("987654321" not in so, "the stale status file was taken for the result: %r" % so)
            check(not os.path.exists(status), "the status file is removed")
            check(not [n for n in os.listdir(d) if n.startswith("s.hsnap.")],
                  "nothing left behind by the dump: %s" % os.listdir(d))
            check(t.alive(), "the target survived")
        finally:
            t.stop()
    return 0


def full_disk(base):
    mnt = os.path.join(base, "small")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("note: cannot mount a tmpfs (%s): the full-disk part is skipped" % r.stderr.strip())
        return
    try:
        # full from the start: nothing at all under the name
        fill = os.path.join(mnt, "fill")
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        out = os.path.join(mnt, "r.hsrec")
        rc, so, se = cli("record", "-o", out, "--", "true")
        check(rc == 2, "record on a full disk: exit 2, got %d (%r)" % (rc, se))
        check(not os.path.exists(out), "record on a full disk left %s (%d bytes)" %
              (out, os.path.getsize(out) if os.path.exists(out) else 0))
        check(not [n for n in os.listdir(mnt) if ".tmp." in n], "record on a full disk left a "
              "temporary file: %s" % os.listdir(mnt))
        one_line(se.replace("heapsnap: recorded", ""), "record on a full disk")
        # full after a while: the valid prefix stays readable under the name
        os.unlink(fill)
        with open(fill, "wb") as f:
            f.write(b"\0" * (64 * 1024 - 8192))
        rc, so, se = cli("record", "-o", out, "--interval", "1ms", "--", "sleep", "8",
                         timeout=HANG * 2)
        if os.path.exists(out):
            rc2, so2, se2 = cli("info", out)
            check(rc2 == 0, "a recording cut by a full disk reads back: %r" % se2)
        else:
            check(False, "a recording cut by a full disk after its first chunk left nothing: %r"
                  % se)
    finally:
        subprocess.run(["umount", "-l", mnt])


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python")
    ap.add_argument("--pkg")
    ap.add_argument("cases", nargs="+")
    ARGS = ap.parse_args()
    status = 0
    for c in ARGS.cases:
        base = tempfile.mkdtemp(prefix="heapsnap-files-")
        os.chmod(base, 0o755)  # another user must reach the shared directories
        try:
            rc = globals()["case_" + c](base)
        finally:
            subprocess.run(["umount", "-l", os.path.join(base, "small")],
                           capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
        if rc == SKIP and len(ARGS.cases) == 1:
            return SKIP
    if FAILED:
        print("%d failure(s)" % len(FAILED))
        return 1
    print("ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
