"""The production agent (heapsnap.agent) against real target programs.

usage: run_agent.py --cli HEAPSNAP --python PY --package DIR [--case NAME]...

DIR is the build's python/ directory (it holds the heapsnap package). The
targets are started by this script with DIR on PYTHONPATH only when the
case is about in-process use (they import heapsnap.agent); the bootstrap
cases give them nothing but heapsnap/_bootstrap. Each case checks exact
answers (counts of a known class, files left, reply fields) and that the
target ends cleanly. Run by the driver interpreter (/usr/bin/python3: it
validates JSON with jsonschema); the targets run on --python.
"""
import argparse
import glob
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

FAILED = []
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


# Every wait below is a hang detector, never a time limit: a loaded machine is
# slow, not wrong. The checks are on answers, counts and the order of events.
HANG = 600


def wait_until(cond, seconds=HANG, step=0.02):
    end = time.monotonic() + max(seconds, HANG)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Ctx:
    def __init__(self, cli, py, package, tmp):
        self.cli, self.py, self.package, self.tmp = cli, py, package, tmp
        self.bootstrap = os.path.join(package, "heapsnap", "_bootstrap")

    def env(self, pythonpath=None, **extra):
        e = dict(os.environ)
        e.pop("PYTHONPATH", None)
        e.pop("HEAPSNAP_AGENT", None)
        e.pop("HEAPSNAP_AGENT_DIR", None)
        e["PYTHONDONTWRITEBYTECODE"] = "1"
        if pythonpath:
            e["PYTHONPATH"] = pythonpath
        e.update(extra)
        return e


class Target:
    """A program printing 'ready ...' when set up; stdin is its command
    channel (lines), stdout its answers."""

    def __init__(self, ctx, code, env=None, args=(), argv=None):
        cmd = argv if argv is not None else [ctx.py, "-c", code] + list(args)
        self.p = subprocess.Popen(cmd, env=env if env is not None else ctx.env(ctx.package),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ctx.tmp)
        line = self.p.stdout.readline().strip()
        if not line.startswith("ready"):
            self.p.kill()
            out, err = self.p.communicate()
            raise RuntimeError("target did not start: %r %s" % (line, err[-2000:]))
        self.info = line.split()[1:]
        self.pid = self.p.pid

    def say(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def finish(self, timeout=HANG):
        """Close stdin (the target's cue to end) and wait: (rc, stdout, stderr).
        Read through the file objects: readline() may have buffered output."""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        got = {}

        def read(name, f):
            got[name] = f.read()
        th = [threading.Thread(target=read, args=(n, f)) for n, f in
              (("out", self.p.stdout), ("err", self.p.stderr))]
        for x in th:
            x.start()
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
            self.p.wait()
        for x in th:
            x.join()
        return rc, got.get("out", ""), got.get("err", "")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def sock_path(pid, d=None):
    return os.path.join(d or "/tmp/heapsnap-%d" % os.geteuid(), "agent-%d.sock" % pid)


class Client:
    def __init__(self, path, timeout=HANG):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def raw(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def req(self, cmd):
        self.raw(cmd.encode() if isinstance(cmd, str) else cmd)
        self.raw(b"\n")
        return json.loads(self.line())

    def close(self):
        self.s.close()


def cli(ctx, *args, timeout=HANG):
    r = subprocess.run([ctx.cli] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def summary(ctx, snap):
    rc, out, err = cli(ctx, "summary", snap, "--json", "--top", "0")
    if rc != 0:
        return None
    return json.loads(out)


def type_count(d, name):
    return sum(t["count"] for t in d["rows"] if t["name"] == name) if d else -1


def validate(schema, doc):
    """Errors of `doc` against formats/SCHEMA (an empty list when valid)."""
    import jsonschema
    with open(os.path.join(ROOT, "formats", schema)) as f:
        s = json.load(f)
    cls = jsonschema.validators.validator_for(s)
    return [e.message for e in cls(s).iter_errors(doc)]


PRELUDE = r'''
import gc, os, sys, time, threading
import heapsnap, heapsnap.agent as agent
class KnownLeakXyz:
    def __init__(self, i):
        self.i = i
def serve(handlers):
    # commands on stdin, one answer line each; EOF ends the program
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        out = handlers[word](arg)
        print("" if out is None else out, flush=True)
'''


# --------------------------------------------------------------------------

def case_basics(ctx):
    """start/stop, idempotence, socket 0600 in a 0700 directory, every
    command's reply, the socket removed on stop and at exit."""
    wall0 = time.time()  # times in replies are checked by order, not by size
    t = Target(ctx, PRELUDE + r'''
a = agent.start()
b = agent.start()
assert a is b, "start() is idempotent"
keep = []
def alloc(arg):
    keep.extend(KnownLeakXyz(i) for i in range(int(arg)))
    return len(keep)
def restart(arg):
    agent.stop()
    ok = not os.path.exists(a.socket_path) and agent.current() is None
    c = agent.start()
    return "%d %s %s" % (ok, c is not a, c.socket_path)
def mark(arg):
    return heapsnap.mark(arg)
def collect(arg):
    return gc.collect()
print("ready", a.socket_path, flush=True)
serve({"alloc": alloc, "restart": restart, "mark": mark, "collect": collect})
''')
    try:
        path = sock_path(t.pid)
        check(t.info[0] == path, "basics: socket at %s (got %s)" % (path, t.info[0]))
        st = os.stat(path)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
              "basics: socket mode 0600 (got %o)" % stat.S_IMODE(st.st_mode))
        dst = os.stat(os.path.dirname(path))
        check(stat.S_IMODE(dst.st_mode) == 0o700 and dst.st_uid == os.geteuid(),
              "basics: directory mode 0700, ours (got %o)" % stat.S_IMODE(dst.st_mode))
        c = Client(path)
        mono0 = time.monotonic()
        h = c.req("HELLO")
        mono1 = time.monotonic()
        check(h.get("ok") is True and h.get("protocol") == 1 and h.get("pid") == t.pid and
              h.get("ppid") == os.getpid(), "basics: HELLO ok, protocol 1, pid, ppid: %s" % h)
        want_py = subprocess.run([ctx.py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                 capture_output=True, text=True).stdout.strip()
        check(h.get("python") == want_py, "basics: HELLO python %s (got %s)" % (want_py, h.get("python")))
        check(h.get("heapsnap") and isinstance(h.get("argv"), list) and h["argv"][0] == "-c",
              "basics: HELLO heapsnap version and argv: %s" % h)
        check(isinstance(h.get("started"), float) and wall0 <= h["started"] <= time.time() and
              mono0 <= h["t"] <= mono1, "basics: HELLO started (wall: after the target was "
              "launched) and t (monotonic: while the request was out): %s" % h)

        # STATS: tracked objects grow by the 10,000 objects allocated
        t.say("collect 0")  # settle what the GC untracks (tuples, dicts)
        s1 = c.req("STATS")
        for k in ("rss", "vms", "swap", "uss", "pss", "threads", "t", "wall"):
            check(k in s1, "basics: STATS has %s" % k)
        g = s1.get("gc", {})
        for k in ("tracked_objects", "counts", "collections", "collected", "uncollectable",
                  "pause_seconds", "enabled"):
            check(k in g, "basics: STATS gc has %s" % k)
        check(len(g.get("counts", [])) == 3 and len(g.get("collections", [])) == 3,
              "basics: STATS gc per-generation lists of 3")
        check(s1.get("rss", 0) > 1 << 20 and s1.get("uss", 0) > 0 and s1["rss"] >= s1["uss"],
              "basics: STATS rss %s >= uss %s > 0" % (s1.get("rss"), s1.get("uss")))
        check("bytes_in_use" in s1.get("pymalloc", {}) and "arenas_allocated" in s1.get("pymalloc", {}),
              "basics: STATS pymalloc figures: %s" % s1.get("pymalloc"))
        check(t.say("alloc 10000") == "10000", "basics: target allocated")
        t.say("collect 0")
        s2 = c.req("STATS fast")
        check("uss" not in s2 and "pss" not in s2 and "rss" in s2, "basics: STATS fast has no uss/pss")
        d = s2["gc"]["tracked_objects"] - s1["gc"]["tracked_objects"]
        check(9950 <= d <= 10100, "basics: tracked objects grew by %d after 10,000 (9950..10100)" % d)
        check(sum(s2["gc"]["tracked_per_generation"]) == s2["gc"]["tracked_objects"],
              "basics: tracked per generation sums to the total")

        # TYPES: the known class, exactly
        ty = c.req("TYPES 100000")
        rows = {r["name"]: r for r in ty.get("types", [])}
        k = rows.get("__main__.KnownLeakXyz")
        check(k is not None and k["count"] == 10000, "basics: TYPES counts 10,000 KnownLeakXyz: %s" % k)
        check(ty.get("objects", 0) > 10000 and ty.get("bytes", 0) > 0 and ty.get("seconds", -1) >= 0 and
              ty.get("mode") == "closure", "basics: TYPES totals")
        top = c.req("TYPES 3")
        check(len(top["types"]) == 3 and top["types"][0]["bytes"] >= top["types"][1]["bytes"] >=
              top["types"][2]["bytes"], "basics: TYPES 3 gives the 3 largest, sorted")
        tg = c.req("TYPES 100000 gc")
        kg = {r["name"]: r for r in tg["types"]}.get("__main__.KnownLeakXyz")
        check(tg.get("mode") == "gc" and kg is not None and kg["count"] == 10000,
              "basics: TYPES gc counts the tracked KnownLeakXyz: %s" % kg)
        check(tg["objects"] < ty["objects"], "basics: TYPES gc sees fewer objects than the closure")
        check(not c.req("TYPES 0")["ok"] and not c.req("TYPES x")["ok"], "basics: TYPES bad count refused")

        # MARKS round trip
        m0 = c.req("MARKS")
        base = m0["next"]
        seqs = [int(t.say("mark phase-%d" % i)) for i in range(3)]
        check(seqs == [base, base + 1, base + 2], "basics: mark() returns consecutive seqs %s" % seqs)
        m = c.req("MARKS %d" % (base + 1))
        check(m["ok"] and [x["label"] for x in m["marks"]] == ["phase-1", "phase-2"] and
              m["next"] == base + 3, "basics: MARKS since: %s" % m)
        check(all(wall0 <= x["wall"] <= time.time() for x in m["marks"]), "basics: MARKS wall times")
        check(c.req("MARKS %d" % (base + 3))["marks"] == [], "basics: MARKS next gives nothing new")

        # GCEVENTS after gc.collect()
        e0 = c.req("GCEVENTS")
        t.say("collect 0")
        e = c.req("GCEVENTS %d" % e0["next"])
        full = [x for x in e["events"] if x["generation"] == 2]
        check(e["ok"] and len(full) >= 1 and all(x["seconds"] >= 0 for x in e["events"]),
              "basics: GCEVENTS shows the full collection: %s" % e)
        s3 = c.req("STATS fast")
        check(s3["gc"]["pause_seconds"][2] > 0, "basics: STATS gen2 pause after gc.collect()")

        a = c.req("AGENT")
        check(a["ok"] and a["socket"] == path and a["counts"]["commands"] >= 10 and
              a["counts"]["refused"] == 0, "basics: AGENT counters: %s" % a.get("counts"))
        c.close()

        # stop() removes the socket; start() again makes a new agent
        r = t.say("restart 0").split()
        check(r[0] == "1" and r[1] == "True" and r[2] == path, "basics: stop removes the socket, "
              "start makes a new agent: %s" % r)
        check(os.path.exists(path), "basics: socket back after the restart")
        check(Client(path).req("HELLO")["ok"], "basics: the new agent answers")
        rc, out, err = t.finish()
        check(rc == 0, "basics: target exits 0 (%s, %s)" % (rc, err[-500:]))
        check(not os.path.exists(path), "basics: socket removed at exit")
        check("Traceback" not in err, "basics: no traceback: %s" % err[-500:])
    finally:
        t.kill()


def case_robust(ctx):
    """Garbage, over-long lines, slow and silent clients, too many
    connections: the agent keeps answering the others."""
    t = Target(ctx, PRELUDE + r'''
agent.LINE_TIMEOUT = 1.0
agent.IDLE_TIMEOUT = 3.0
a = agent.start()
print("ready", flush=True)
serve({})
''')
    try:
        path = sock_path(t.pid)
        c = Client(path)
        for junk in (b"", b"   ", b"hello", b"STATS now please", b"\xff\xfe\x00garbage", b"DUMP",
                     b"DUMP relative/path.hsnap", b"MARKS -1", b"TYPES 5 extra", b"HELLO x",
                     b"exec('import os')", b"DUMP /tmp/x\x00y", b"STATS\tfast"):
            r = c.req(junk)
            check(r.get("ok") is False and isinstance(r.get("error"), str),
                  "robust: %r refused with an error: %s" % (junk, r))
        check(c.req("HELLO")["ok"], "robust: the connection still works after garbage")
        # several commands in one write, answered in order
        c.raw(b"HELLO\nSTATS fast\nMARKS\n")
        got = [json.loads(c.line()) for _ in range(3)]
        check([("protocol" in got[0]), ("rss" in got[1]), ("marks" in got[2])] == [True] * 3,
              "robust: pipelined commands answered in order")
        # a line over 4096 bytes: an error, then the connection is closed
        long = Client(path)
        long.raw(b"HELLO" + b"x" * 5000)
        r = json.loads(long.line())
        check(r["ok"] is False and "longer than 4096" in r["error"], "robust: over-long line: %s" % r)
        try:
            closed = long.s.recv(10) == b""
        except OSError:
            closed = True
        check(closed, "robust: connection closed after an over-long line")
        # a slow client (half a line, then nothing) and a silent one (nothing)
        slow = Client(path)
        slow.raw(b"STA")
        silent = Client(path)
        check(c.req("STATS fast")["ok"], "robust: served while a slow client holds a half line")
        # not delayed by the slow client: answered while the slow client's
        # line is still pending (its time-out, 10 s, has not answered it);
        # an order of events, not a time measured here
        slow.s.setblocking(False)
        try:
            pending = slow.s.recv(1, socket.MSG_PEEK) is None
        except BlockingIOError:
            pending = True
        except OSError:
            pending = False
        slow.s.setblocking(True)
        slow.s.settimeout(600)
        check(pending, "robust: not delayed by the slow client (served before its line timed out)")
        r = json.loads(slow.line())
        check(r["ok"] is False and "not finished" in r["error"], "robust: slow line timed out: %s" % r)
        try:
            gone = silent.s.recv(10) == b""
        except OSError:
            gone = True
        check(gone, "robust: idle connection closed after the idle timeout")
        c.close()
        c = Client(path)  # the first one was idle as long
        # a client that never reads its replies
        hog = Client(path)
        hog.raw(b"TYPES 100000\n" * 200)
        check(c.req("HELLO")["ok"], "robust: served while a client does not read")
        hog.close()
        # 16 connections at once; the 17th is told to come back
        c.close()
        slow.close()
        silent.close()

        def open_now():
            q = Client(path)
            try:
                # while the closed ones are still being reaped the agent may
                # answer "busy" (16 at once) and close: not yet, ask again
                return q.req("AGENT").get("connections_open")
            except (OSError, EOFError, ValueError):
                return None
            finally:
                q.close()
        check(wait_until(lambda: open_now() == 1, 15), "robust: the other connections are gone")
        many = [Client(path) for _ in range(16)]
        for m in many:
            m.req("HELLO")  # each one served by now
        # the waits above may have been told "busy" too: count from here
        busy0 = many[0].req("AGENT")["counts"]["busy"]
        extra = Client(path)
        try:
            r = json.loads(extra.line())
            check(r["ok"] is False and "connections at once" in r["error"], "robust: 17th refused: %s" % r)
        except (EOFError, OSError) as e:
            check(False, "robust: 17th connection got no explanation (%s)" % e)
        busy1 = many[0].req("AGENT")["counts"]["busy"]
        check(busy1 - busy0 == 1, "robust: the busy connection counted (%d -> %d)" % (busy0, busy1))
        for m in many:
            m.close()
        check(wait_until(lambda: open_now() == 1, 5), "robust: serves again")
        rc, out, err = t.finish()
        check(rc == 0 and "Traceback" not in err, "robust: target exits cleanly (%s): %s" % (rc, err[-800:]))
    finally:
        t.kill()


def case_peercred(ctx):
    """A connection from another user (uid 65534) is closed unanswered and
    counted; the socket file's mode is opened on purpose so that only the
    SO_PEERCRED check stands in the way."""
    if os.geteuid() != 0:
        print("peercred: skipped (needs root to connect as another user)")
        return
    d = tempfile.mkdtemp(prefix="agentdir-", dir=ctx.tmp)
    os.chmod(d, 0o711)
    os.chmod(ctx.tmp, 0o711)
    t = Target(ctx, PRELUDE + r'''
a = agent.start()
os.chmod(a.socket_path, 0o666)
print("ready", a.socket_path, flush=True)
serve({})
''', env=ctx.env(ctx.package, HEAPSNAP_AGENT_DIR=d))
    try:
        path = t.info[0]
        check(path == os.path.join(d, "agent-%d.sock" % t.pid), "peercred: socket in HEAPSNAP_AGENT_DIR")
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            result = b"?"
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(path)
                s.sendall(b"HELLO\n")
                data = s.recv(100)
                result = b"closed" if data == b"" else b"answered:" + data[:50]
            except (ConnectionResetError, BrokenPipeError):
                result = b"closed"  # closed before our command went out
            except Exception as e:
                result = ("error:%s" % e).encode()
            os.write(w, result)
            os._exit(0)
        os.close(w)
        os.waitpid(child, 0)
        got = os.read(r, 200)
        os.close(r)
        check(got == b"closed", "peercred: uid 65534 gets the connection closed (%r)" % got)
        a = Client(path).req("AGENT")
        check(a["counts"]["refused"] == 1, "peercred: refusal counted: %s" % a["counts"])
        # the CLI finds it through the target's environment
        rc, out, err = cli(ctx, "stats", t.pid, "--json", "--fast")
        doc = json.loads(out) if rc == 0 else {}
        check(rc == 0 and doc.get("agent") and doc["agent"]["socket"].endswith(path),
              "peercred: heapsnap stats finds the socket in HEAPSNAP_AGENT_DIR: %s %s" % (rc, err))
        rc, out, err = t.finish()
        check(rc == 0 and not os.path.exists(path), "peercred: clean exit, socket removed")
    finally:
        t.kill()


def case_cli(ctx):
    """heapsnap stats (text, JSON against its schema, --types), and heapsnap
    dump PID through the agent (plain and --fork); a target without agent
    gets the /proc figures and the note."""
    t = Target(ctx, PRELUDE + r'''
keep = [KnownLeakXyz(i) for i in range(12345)]
a = agent.start()
print("ready", flush=True)
serve({})
''')
    try:
        rc, out, err = cli(ctx, "stats", t.pid, "--json", "--types", "5")
        doc = json.loads(out) if rc == 0 else {}
        check(rc == 0, "cli: stats --json exits 0 (%s)" % err)
        check(validate("stats.schema.json", doc) == [], "cli: stats JSON valid: %s" % validate("stats.schema.json", doc)[:3])
        ag = doc.get("agent") or {}
        check(ag.get("gc", {}).get("tracked_objects", 0) > 12345 and ag.get("python_threads", 0) >= 2 and
              "note" not in doc, "cli: stats has the agent's figures")
        rows = {r["name"]: r for r in doc.get("types", {}).get("types", [])}
        check(len(rows) == 5, "cli: --types 5 gives 5 rows")
        rc, out, err = cli(ctx, "stats", t.pid, "--types", "100")
        check(rc == 0 and "tracked by the GC" in out and "__main__.KnownLeakXyz" in out and
              "12,345" in out, "cli: stats text: %s %s" % (out[-1500:], err))

        before = Client(sock_path(t.pid)).req("AGENT")["counts"]["dumps"]
        snap = os.path.join(ctx.tmp, "via-agent.hsnap")
        rc, out, err = cli(ctx, "dump", t.pid, "-o", snap, "--no-fork")
        check(rc == 0, "cli: dump PID succeeds (%s)" % err)
        after = Client(sock_path(t.pid)).req("AGENT")["counts"]["dumps"]
        check(after == before + 1, "cli: dump PID went through the agent (%d -> %d DUMPs)" % (before, after))
        sm = summary(ctx, snap)
        check(type_count(sm, "__main__.KnownLeakXyz") == 12345,
              "cli: the snapshot has the 12,345 known objects")
        # TYPES counts what a snapshot holds, without writing one
        ty = Client(sock_path(t.pid)).req("TYPES 100000")
        trow = {r["name"]: r for r in ty["types"]}.get("__main__.KnownLeakXyz", {})
        srow = [r for r in sm["rows"] if r["name"] == "__main__.KnownLeakXyz"][0]
        check(trow.get("count") == srow["count"] and trow.get("bytes") == srow["bytes"],
              "cli: TYPES and the snapshot agree on the known class: %s %s" % (trow, srow))
        for key, tot in (("objects", "count"), ("bytes", "bytes")):
            a_, b_ = ty[key], sm["total"][tot]
            check(abs(a_ - b_) <= b_ * 0.005, "cli: TYPES %s %d within 0.5%% of the snapshot's %d"
                  % (key, a_, b_))
        with open("/proc/%d/status" % t.pid) as f:
            check("TracerPid:\t0" in f.read(), "cli: target not traced")
        fsnap = os.path.join(ctx.tmp, "via-agent-fork.hsnap")
        rc, out, err = cli(ctx, "dump", t.pid, "-o", fsnap, "--fork")
        check(rc == 0 and "fork mode" in out, "cli: dump PID --fork through the agent (%s %s)" % (out, err))
        check(type_count(summary(ctx, fsnap), "__main__.KnownLeakXyz") == 12345,
              "cli: the fork-mode snapshot has the known objects")
        check(Client(sock_path(t.pid)).req("AGENT")["counts"]["dumps"] == before + 2,
              "cli: dump --fork went through the agent")
        # DUMP into a directory that does not exist: an error with errno
        r = Client(sock_path(t.pid)).req("DUMP /nonexistent-dir-xyz/a.hsnap")
        check(r["ok"] is False and r.get("errno") == 2, "cli: DUMP error carries errno: %s" % r)
        rc, out, err = t.finish()
        check(rc == 0, "cli: target exits 0")
    finally:
        t.kill()
    # no agent: /proc figures and the note
    p = subprocess.Popen([ctx.py, "-c", "import time; print('ready', flush=True); time.sleep(3600)"],
                         env=ctx.env(), stdout=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()
        rc, out, err = cli(ctx, "stats", p.pid, "--json")
        doc = json.loads(out) if rc == 0 else {}
        check(rc == 0 and doc.get("agent") is None and "heapsnap.agent.start()" in doc.get("note", "") and
              doc["memory"].get("rss", 0) > 0 and validate("stats.schema.json", doc) == [],
              "cli: stats without agent: /proc figures and the note: %s %s" % (out, err))
        rc, out, err = cli(ctx, "stats", p.pid)
        check(rc == 0 and "no agent: Python figures need" in out, "cli: stats text without agent")
    finally:
        p.kill()
        p.wait()
    rc, out, err = cli(ctx, "stats", "12x")
    check(rc == 129, "cli: stats with a bad pid is a usage error (%d)" % rc)
    rc, out, err = cli(ctx, "stats", "4194304")
    check(rc == 2 and "no such process" in err, "cli: stats of no process exits 2: %s" % err)


def case_signal(ctx):
    """kill -USR2 writes a snapshot named heapsnap-PID-STAMP-1.hsnap, also
    while the main thread sits in a blocking call."""
    d = tempfile.mkdtemp(prefix="sig-", dir=ctx.tmp)
    t = Target(ctx, PRELUDE + r'''
import signal
keep = [KnownLeakXyz(i) for i in range(777)]
signal.signal(signal.SIGUSR1, lambda *x: None)
try:
    agent.start(signal="USR1", directory=sys.argv[1], socket=False)
    print("bad: a signal with a handler was taken", flush=True)
except ValueError:
    pass
a = agent.start(socket=False, signal="SIGUSR2", directory=sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # blocked in read(): the snapshots come from the agent's thread
print("end", flush=True)
''', args=[d])
    try:
        os.kill(t.pid, signal.SIGUSR2)
        pat = os.path.join(d, "heapsnap-%d-*-1.hsnap" % t.pid)
        check(wait_until(lambda: glob.glob(pat), 20), "signal: a snapshot appears after SIGUSR2")
        files = glob.glob(pat)
        if files:
            check(re.match(r"^heapsnap-%d-\d{8}-\d{6}-1\.hsnap$" % t.pid, os.path.basename(files[0])),
                  "signal: file name heapsnap-PID-YYYYmmdd-HHMMSS-1.hsnap: %s" % files[0])
            time.sleep(0.2)
            check(type_count(summary(ctx, files[0]), "__main__.KnownLeakXyz") == 777,
                  "signal: the snapshot has the known objects")
        os.kill(t.pid, signal.SIGUSR2)
        check(wait_until(lambda: glob.glob(os.path.join(d, "heapsnap-%d-*-2.hsnap" % t.pid)), 20),
              "signal: a second signal, a second snapshot")
        check(t.p.poll() is None, "signal: target still running")
        rc, out, err = t.finish()
        check(rc == 0 and out.strip() == "end", "signal: the blocked read went on: %s %r" % (rc, out))
        check("bad:" not in out, "signal: a signal the program handles is refused")
        check(not glob.glob(os.path.join(d, "*.tmp*")), "signal: no temporary file left")
    finally:
        t.kill()


def case_periodic(ctx):
    """every= with keep=3: exactly 3 files remain; max_bytes keeps only the
    newest; a free-space margin above the disk skips with a warning. The
    interval is the smallest allowed (1 s); the waits count snapshots."""
    d = tempfile.mkdtemp(prefix="every-", dir=ctx.tmp)
    t = Target(ctx, PRELUDE + r'''
a = agent.start(every=1, keep=3, directory=sys.argv[1])
print("ready", a.socket_path, flush=True)
serve({"n": lambda arg: agent.current().counts["snapshots_written"]})
''', args=[d])
    try:
        check(wait_until(lambda: int(t.say("n 0")) >= 5, 600, 0.1), "periodic: 5 snapshots written")
        rc, out, err = t.finish()
        files = glob.glob(os.path.join(d, "heapsnap-%d-*.hsnap" % t.pid))
        check(len(files) == 3, "periodic: exactly 3 files remain with keep=3 (%d)" % len(files))
        ns = sorted(int(f.rsplit("-", 1)[1].split(".")[0]) for f in files)
        check(ns == list(range(ns[-1] - 2, ns[-1] + 1)) if ns else False,
              "periodic: the newest three are kept: %s" % ns)
        check(rc == 0 and not glob.glob(os.path.join(d, "*.tmp*")), "periodic: clean exit, no temp file")
    finally:
        t.kill()
    d2 = tempfile.mkdtemp(prefix="bytes-", dir=ctx.tmp)
    t = Target(ctx, PRELUDE + r'''
a = agent.start(every=1, keep=None, max_bytes=1, directory=sys.argv[1], socket=False)
print("ready", flush=True)
serve({"n": lambda arg: agent.current().counts["snapshots_written"]})
''', args=[d2])
    try:
        check(wait_until(lambda: int(t.say("n 0")) >= 3, 600, 0.1), "periodic: 3 snapshots with max_bytes")
        rc, out, err = t.finish()
        files = glob.glob(os.path.join(d2, "heapsnap-%d-*.hsnap" % t.pid))
        check(len(files) == 1, "periodic: max_bytes=1 keeps the newest only (%d)" % len(files))
        check("exceeds max_bytes" in err, "periodic: a warning says the newest exceeds max_bytes")
    finally:
        t.kill()
    d3 = tempfile.mkdtemp(prefix="full-", dir=ctx.tmp)
    t = Target(ctx, PRELUDE + r'''
a = agent.start(every=1, directory=sys.argv[1], min_free=1 << 60, socket=False)
print("ready", flush=True)
serve({"n": lambda arg: "%d %d %s" % (agent.current().counts["snapshots_skipped"],
       agent.current().counts["snapshots_written"], agent.current().last_skip["reason"] if agent.current().last_skip else "")})
''', args=[d3])
    try:
        check(wait_until(lambda: int(t.say("n 0").split()[0]) >= 2, 600, 0.1), "periodic: skips counted")
        r = t.say("n 0")
        check(r.split()[1] == "0" and "below the margin" in r, "periodic: nothing written, reason: %s" % r)
        rc, out, err = t.finish()
        check("skipped: only" in err and "below the margin" in err, "periodic: skip logged: %s" % err[-300:])
        check(not glob.glob(os.path.join(d3, "*")), "periodic: directory left empty")
    finally:
        t.kill()


def case_fork(ctx):
    """After os.fork() the child has its own agent and socket; the parent's
    is untouched; a child ending with os._exit leaves a stale socket that
    the next agent start removes."""
    t = Target(ctx, PRELUDE + r'''
a = agent.start()
kids = []
def fork(arg):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        c = agent.current()
        os.write(w, ("%s %s\n" % (c.socket_path if c else None, c is not a)).encode())
        os.close(w)
        # lives until the test says so (a file go-PID), not for a time
        go, end = "go-%d" % os.getpid(), time.monotonic() + 600
        while not os.path.exists(go) and time.monotonic() < end:
            time.sleep(0.02)
        if arg == "exit":
            sys.exit(0)  # atexit: the socket goes
        os._exit(0)       # no atexit: the socket stays
    os.close(w)
    kids.append(pid)
    return "%d %s" % (pid, os.read(r, 200).decode().strip())
def reap(arg):
    while kids:
        os.waitpid(kids.pop(), 0)
    return "ok"
print("ready", flush=True)
serve({"fork": fork, "reap": reap})
''')
    try:
        r = t.say("fork exit").split()
        child, cpath = int(r[0]), r[1]
        check(cpath == sock_path(child) and r[2] == "True", "fork: the child has its own agent: %s" % r)
        hc = Client(sock_path(child)).req("HELLO")
        hp = Client(sock_path(t.pid)).req("HELLO")
        check(hc["pid"] == child and hc["ppid"] == t.pid and hp["pid"] == t.pid,
              "fork: both answer for themselves (%s, %s)" % (hc["pid"], hp["pid"]))
        rc, out, err = cli(ctx, "stats", child, "--json", "--fast")
        check(rc == 0 and json.loads(out).get("agent"), "fork: heapsnap stats reaches the child's agent")
        open(os.path.join(ctx.tmp, "go-%d" % child), "w").close()
        t.say("reap 0")
        check(not os.path.exists(sock_path(child)), "fork: the child's socket removed at its exit")
        check(os.path.exists(sock_path(t.pid)), "fork: the parent's socket untouched")
        r = t.say("fork _exit").split()
        stale = int(r[0])
        open(os.path.join(ctx.tmp, "go-%d" % stale), "w").close()
        t.say("reap 0")
        check(os.path.exists(sock_path(stale)), "fork: os._exit leaves the child's socket")
        rc, out, err = cli(ctx, "stats", stale)
        check(rc == 2 and "no such process" in err, "fork: the stale socket's process is gone")
        u = Target(ctx, PRELUDE + "agent.start()\nprint('ready', flush=True)\nserve({})\n")
        check(not os.path.exists(sock_path(stale)), "fork: the next agent start removed the stale socket")
        u.finish()
        check(Client(sock_path(t.pid)).req("HELLO")["ok"], "fork: the parent's agent still answers")
        rc, out, err = t.finish()
        check(rc == 0 and not os.path.exists(sock_path(t.pid)), "fork: parent exits cleanly")
    finally:
        t.kill()


def case_bootstrap(ctx):
    """HEAPSNAP_AGENT through heapsnap/_bootstrap/sitecustomize.py, for a
    program that imports nothing of ours: the agent runs, another
    sitecustomize later on the path still runs, the program's output and
    exit status are its own."""
    other = tempfile.mkdtemp(prefix="site-", dir=ctx.tmp)
    with open(os.path.join(other, "sitecustomize.py"), "w") as f:
        f.write("import os\nos.environ['OTHER_SITECUSTOMIZE_RAN'] = 'yes'\n")
    prog = r'''
import os, sys, time
print("ready", os.environ.get("OTHER_SITECUSTOMIZE_RAN"), "heapsnap" in sys.modules,
      any(p.endswith("_bootstrap") for p in sys.path), flush=True)
data = [bytearray(100) for _ in range(5000)]
sys.stdin.readline()
print("done", len(data))
sys.exit(7)
'''
    for label, pp in (("bootstrap only", ctx.bootstrap + os.pathsep + other),
                      ("bootstrap and package", ctx.bootstrap + os.pathsep + ctx.package + os.pathsep + other)):
        t = Target(ctx, prog, env=ctx.env(pp, HEAPSNAP_AGENT="1"))
        try:
            check(t.info == ["yes", "True", "False"], "bootstrap (%s): chained sitecustomize ran, "
                  "heapsnap loaded, _bootstrap off sys.path: %s" % (label, t.info))
            rc, out, err = cli(ctx, "stats", t.pid, "--json", "--fast")
            doc = json.loads(out) if rc == 0 else {}
            check(rc == 0 and doc.get("agent"), "bootstrap (%s): the agent answers (%s)" % (label, err))
            rc, out, err = t.finish()
            check(rc == 7 and out.strip() == "done 5000" and err == "",
                  "bootstrap (%s): output and exit status are the program's: %s %r %r" % (label, rc, out, err))
            check(not os.path.exists(sock_path(t.pid)), "bootstrap (%s): socket removed" % label)
        finally:
            t.kill()
    # options in the variable
    d = tempfile.mkdtemp(prefix="envsig-", dir=ctx.tmp)
    t = Target(ctx, "import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\n",
               env=ctx.env(ctx.bootstrap, HEAPSNAP_AGENT="signal=USR2,dir=%s,keep=1" % d))
    try:
        os.kill(t.pid, signal.SIGUSR2)
        check(wait_until(lambda: glob.glob(os.path.join(d, "heapsnap-%d-*.hsnap" % t.pid)), 20),
              "bootstrap: HEAPSNAP_AGENT=signal=USR2,dir=... writes on the signal")
        check(os.path.exists(sock_path(t.pid)), "bootstrap: the socket is on by default with options")
        rc, out, err = t.finish()
        check(rc == 0, "bootstrap: program ends normally after a signal snapshot")
    finally:
        t.kill()
    # a bad value: one line on stderr, the program runs
    t = Target(ctx, "print('ready', flush=True)\nprint('ran')\n",
               env=ctx.env(ctx.bootstrap, HEAPSNAP_AGENT="bogus=1"))
    rc, out, err = t.finish()
    check(rc == 0 and out.strip() == "ran" and err.count("\n") == 1 and "HEAPSNAP_AGENT" in err and
          "unknown option 'bogus'" in err, "bootstrap: a bad HEAPSNAP_AGENT is one line: %s %r %r" % (rc, out, err))
    # unset: no agent, nothing loaded
    t = Target(ctx, "import sys\nprint('ready', 'heapsnap' in sys.modules, flush=True)\n",
               env=ctx.env(ctx.bootstrap))
    check(t.info == ["False"], "bootstrap: HEAPSNAP_AGENT unset loads nothing")
    t.finish()


def case_module(ctx):
    """python -m heapsnap.agent script.py args / -m module args."""
    script = os.path.join(ctx.tmp, "agent_script.py")
    with open(script, "w") as f:
        f.write("import sys, os\nimport heapsnap.agent\n"
                "a = heapsnap.agent.current()\n"
                "print('ready', sys.argv[1:], __name__, a is not None and a.socket_path, flush=True)\n"
                "sys.stdin.readline()\nsys.exit(3)\n")
    t = Target(ctx, None, argv=[ctx.py, "-m", "heapsnap.agent", "--every", "1000", "--dir", ctx.tmp,
                                 script, "x", "--y"])
    try:
        check(t.info == ["['x',", "'--y']", "__main__", sock_path(t.pid)],
              "module: script runs as __main__ with its argv, and sees the agent: %s" % t.info)
        rc, out, err = cli(ctx, "stats", t.pid, "--json", "--fast")
        check(rc == 0 and json.loads(out).get("agent"), "module: the agent answers")
        a = Client(sock_path(t.pid)).req("AGENT")
        check(a["every"] == 1000 and a["directory"] == ctx.tmp, "module: options given: %s" % a)
        rc, out, err = t.finish()
        check(rc == 3 and not os.path.exists(sock_path(t.pid)), "module: exit status 3 kept, socket removed")
    finally:
        t.kill()
    moddir = tempfile.mkdtemp(prefix="mod-", dir=ctx.tmp)
    with open(os.path.join(moddir, "agentmodxyz.py"), "w") as f:
        f.write("import sys\nprint('ready', __name__, sys.argv[1:], flush=True)\n"
                "sys.stdin.readline()\nraise SystemExit(0)\n")
    env = ctx.env(ctx.package + os.pathsep + moddir)
    t = Target(ctx, None, env=env, argv=[ctx.py, "-m", "heapsnap.agent", "-m", "agentmodxyz", "a1"])
    try:
        check(t.info == ["__main__", "['a1']"], "module: -m module runs as __main__: %s" % t.info)
        check(Client(sock_path(t.pid)).req("HELLO")["ok"], "module: -m module has the agent")
        rc, out, err = t.finish()
        check(rc == 0, "module: -m module exits 0")
    finally:
        t.kill()
    r = subprocess.run([ctx.py, "-m", "heapsnap.agent", "--bogus", "x.py"], env=ctx.env(ctx.package),
                       capture_output=True, text=True)
    check(r.returncode == 129 and "unknown option" in r.stderr, "module: bad option is a usage error")


def case_threads(ctx):
    """4 threads working while 20 DUMPs are requested (5 at a time): every
    file is complete, the threads go on, the program exits cleanly."""
    t = Target(ctx, PRELUDE + r'''
stop = threading.Event()
done = [0, 0, 0, 0]
held = []
def work(k):
    local = []
    while not stop.is_set():
        local.append({"k": k, "v": [KnownLeakXyz(j) for j in range(10)]})
        if len(local) > 200:
            local = local[100:]
        done[k] += 1
        if done[k] % 50 == 0:
            time.sleep(0.001)
ts = [threading.Thread(target=work, args=(k,), name="worker-%d" % k) for k in range(4)]
for x in ts:
    x.start()
keep = [KnownLeakXyz(i) for i in range(5000)]
agent.start()
print("ready", flush=True)
def progress(arg):
    return min(done)
def end(arg):
    stop.set()
    for x in ts:
        x.join()
    return "joined"
serve({"progress": progress, "end": end})
''')
    try:
        p0 = int(t.say("progress 0"))
        errors = []
        paths = [os.path.join(ctx.tmp, "threads-%d.hsnap" % i) for i in range(20)]

        def one(path):
            rc, out, err = cli(ctx, "dump", t.pid, "-o", path, "--no-fork", timeout=300)
            if rc != 0:
                errors.append(err)
        for i in range(0, 20, 5):
            th = [threading.Thread(target=one, args=(p,)) for p in paths[i:i + 5]]
            for x in th:
                x.start()
            for x in th:
                x.join()
        check(not errors, "threads: 20 dumps succeed: %s" % errors[:2])
        counts = [type_count(summary(ctx, p), "__main__.KnownLeakXyz") for p in paths]
        check(all(c >= 5000 for c in counts), "threads: every snapshot complete (>= 5000 known): %s" % counts)
        a = Client(sock_path(t.pid)).req("AGENT")
        check(a["counts"]["dumps"] == 20, "threads: the 20 went through the agent (%d)" % a["counts"]["dumps"])
        p1 = int(t.say("progress 0"))
        check(p1 > p0, "threads: the workers kept working (%d -> %d)" % (p0, p1))
        check(t.say("end 0") == "joined", "threads: workers stop")
        rc, out, err = t.finish()
        check(rc == 0 and "Traceback" not in err and not os.path.exists(sock_path(t.pid)),
              "threads: clean exit: %s %s" % (rc, err[-500:]))
    finally:
        t.kill()


CASES = [("basics", case_basics), ("robust", case_robust), ("peercred", case_peercred),
         ("cli", case_cli), ("signal", case_signal), ("periodic", case_periodic),
         ("fork", case_fork), ("bootstrap", case_bootstrap), ("module", case_module),
         ("threads", case_threads)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        print("skipped: the driver needs python3-jsonschema")
        return 77
    tmp = tempfile.mkdtemp(prefix="hs-agent-")
    ctx = Ctx(os.path.abspath(a.cli), a.python, os.path.abspath(a.package), tmp)
    for name, fn in CASES:
        if a.case and name not in a.case:
            continue
        t0 = time.monotonic()
        n = len(FAILED)
        try:
            fn(ctx)
        except Exception as e:
            import traceback
            traceback.print_exc()
            check(False, "%s: raised %s: %s" % (name, type(e).__name__, e))
        print("%-10s %s (%.1f s)" % (name, "ok" if len(FAILED) == n else "FAILED", time.monotonic() - t0),
              flush=True)
    if not FAILED:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
