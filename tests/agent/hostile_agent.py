"""A hostile agent: heapsnap's agent client against a socket answered by a
test program instead of heapsnap.agent.

usage: hostile_agent.py --cli HEAPSNAP --fixture SNAPSHOT [--case NAME]... [--slow]

Each case starts a fake target (a /usr/bin/python3 process, no heapsnap in
it) that binds $HEAPSNAP_AGENT_DIR/agent-<its pid>.sock, answers HELLO
correctly unless the case is about HELLO, and answers one command (STATS,
TYPES or DUMP) with something a real agent never sends: garbage, numbers
out of range, NaN, missing fields, wrong types, an endless line, a file
that is not the snapshot asked for, a closed connection, or nothing.
`heapsnap stats` / `heapsnap dump --agent` must then exit 2 with one
clear message naming the socket and the problem, and never crash or hang
(timeouts here only detect hangs: they are generous). A well-behaved fake
(the control case) must still work, so the failures are the replies'.

--slow adds the DUMP that is never answered (the client waits for the
fork-mode child's watchdog plus its 60 s margin).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FAILED = []
HANG = 120  # seconds: a hang detector, not a speed requirement


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what.split(":")[0], flush=True)
    return cond


# The fake agent. argv: SCENARIO FIXTURE FIXTURE_OBJECTS [PEER_FOR]
# It prints "ready PATH" once listening.
SERVER = r'''
import json, os, shutil, socket, sys, threading, time
scenario, fixture, fixture_objects = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = int(sys.argv[4]) if len(sys.argv) > 4 else os.getpid()
d = os.environ["HEAPSNAP_AGENT_DIR"]
path = os.path.join(d, "agent-%d.sock" % target)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o600)
if scenario == "peer-uid":
    os.seteuid(65534)  # SO_PEERCRED records the listener's euid at listen()
s.listen(8)
if scenario == "peer-uid":
    os.seteuid(0)
print("ready", path, flush=True)

def hello():
    return {"ok": True, "protocol": 1, "pid": target, "ppid": os.getppid(), "python": "3.11.2",
            "hexversion": 51053296, "uid": os.geteuid(), "started": time.time(),
            "t": time.monotonic(), "wall": time.time(), "commands": ["DUMP", "HELLO", "STATS", "TYPES"]}

def stats():
    return {"ok": True, "t": time.monotonic(), "wall": time.time(), "rss": 1 << 20,
            "vms": 1 << 22, "threads": 1, "agent_threads": 1, "os_threads": 2,
            "gc": {"enabled": True, "tracked_objects": 100, "tracked_per_generation": [1, 2, 97, 0],
                   "counts": [1, 0, 0], "thresholds": [700, 10, 10], "collections": [3, 0, 0],
                   "collected": [0, 0, 0], "uncollectable": [0, 0, 0],
                   "pause_seconds": [0.001, 0, 0], "frozen": 0},
            "pymalloc": {"arenas_allocated": 1, "bytes_in_arenas": 262144, "bytes_in_use": 1000,
                         "blocks_in_use": 10, "arenas_highwater": 1},
            "seconds": 0.001}

def types():
    return {"ok": True, "t": time.monotonic(), "objects": 100, "bytes": 5000, "seconds": 0.001,
            "walk_seconds": 0.001, "mode": "closure", "type_names": 1, "estimated": 0,
            "types": [{"name": "str", "count": 100, "bytes": 5000}]}

def dump_ok(p, objects=None, size=None):
    return {"ok": True, "path": p, "objects": fixture_objects if objects is None else objects,
            "edges": 4, "bytes": os.path.getsize(p) if size is None else size,
            "pause_seconds": 0.01, "seconds": 0.02, "fork": False}

def line(obj):
    return (json.dumps(obj) + "\n").encode()

def answer(cmd, arg, conn):
    """bytes to send, or None to close, or "silent" """
    sc = scenario
    if cmd == "HELLO":
        if sc == "hello-garbage": return b"hello there\n"
        if sc == "hello-no-pid": h = hello(); del h["pid"]; return line(h)
        if sc == "hello-pid-string": h = hello(); h["pid"] = str(target); return line(h)
        if sc == "hello-protocol-negative": h = hello(); h["protocol"] = -1; return line(h)
        if sc == "hello-other-pid": h = hello(); h["pid"] = 1; return line(h)
        if sc == "hello-close": return None
        if sc == "hello-silent": return "silent"
        return line(hello())
    if cmd == "STATS":
        st = stats()
        if sc == "stats-garbage": return b"\x00\xff garbage {\n"
        if sc == "stats-not-object": return b"[1,2,3]\n"
        if sc == "stats-huge": st["gc"]["tracked_objects"] = 1e300; return line(st)
        if sc == "stats-infinite": return line(st).replace(b'"rss": 1048576', b'"rss": 1e999')
        if sc == "stats-negative": st["rss"] = -1; return line(st)
        if sc == "stats-fraction": st["threads"] = 2.5; return line(st)
        if sc == "stats-nan": return line(st).replace(b'"rss": 1048576', b'"rss": NaN')
        if sc == "stats-missing-gc": del st["gc"]; return line(st)
        if sc == "stats-missing-ok": del st["ok"]; return line(st)
        if sc == "stats-wrong-type": st["gc"]["collections"] = "many"; return line(st)
        if sc == "stats-array-item": st["gc"]["pause_seconds"] = [0.1, -3, 0]; return line(st)
        if sc == "stats-error-not-string": return line({"ok": False, "error": 42})
        if sc == "stats-endless":
            conn.sendall(b'{"ok":true,"pad":"')
            chunk = b"x" * 65536
            try:
                for _ in range(200):  # 12.5 MiB, more than the client's cap
                    conn.sendall(chunk)
            except OSError:
                pass
            return "silent"
        if sc == "stats-close": return None
        if sc == "stats-silent": return "silent"
        return line(st)
    if cmd == "TYPES":
        ty = types()
        if sc == "types-negative": ty["types"][0]["count"] = -5; return line(ty)
        if sc == "types-not-array": ty["types"] = {"str": 100}; return line(ty)
        if sc == "types-name-number": ty["types"][0]["name"] = 7; return line(ty)
        if sc == "types-objects-fraction": ty["objects"] = 1.5; return line(ty)
        return line(ty)
    if cmd == "DUMP":
        p = arg.split(" ")[0]
        if sc == "dump-huge": r = {"ok": True, "path": p, "objects": 18446744073709551615,
                                   "edges": 0, "bytes": 0, "pause_seconds": 0}; return line(r)
        if sc == "dump-negative": r = {"ok": True, "path": p, "objects": -1, "edges": 0,
                                       "bytes": 0, "pause_seconds": 0}; return line(r)
        if sc == "dump-missing-path": r = {"ok": True, "objects": 4, "edges": 4, "bytes": 445,
                                           "pause_seconds": 0}; return line(r)
        if sc == "dump-path-number": r = {"ok": True, "path": 3, "objects": 4, "edges": 4,
                                          "bytes": 445, "pause_seconds": 0}; return line(r)
        if sc == "dump-no-file": return line({"ok": True, "path": p, "objects": 4, "edges": 4,
                                              "bytes": 445, "pause_seconds": 0.01})
        if sc == "dump-other-path":
            shutil.copyfile(fixture, p)
            return line(dump_ok(p) | {"path": "/etc/hostname"})
        if sc == "dump-not-snapshot":
            with open(p, "w") as f:
                f.write("this is not a snapshot\n" * 40)
            return line(dump_ok(p, objects=4))
        if sc == "dump-other-uid":
            shutil.copyfile(fixture, p)
            os.chown(p, 65534, 65534)
            return line(dump_ok(p))
        if sc == "dump-symlink":
            os.symlink(fixture, p)
            return line({"ok": True, "path": p, "objects": fixture_objects, "edges": 4,
                         "bytes": os.path.getsize(fixture), "pause_seconds": 0.01})
        if sc == "dump-fifo":
            os.mkfifo(p, 0o600)
            return line({"ok": True, "path": p, "objects": 4, "edges": 4, "bytes": 445,
                         "pause_seconds": 0.01})
        if sc == "dump-old-file":
            shutil.copyfile(fixture, p)
            os.utime(p, (time.time() - 3600, time.time() - 3600))
            return line(dump_ok(p))
        if sc == "dump-wrong-count":
            shutil.copyfile(fixture, p)
            return line(dump_ok(p, objects=fixture_objects + 1000))
        if sc == "dump-wrong-bytes":
            shutil.copyfile(fixture, p)
            return line(dump_ok(p, size=10 ** 9))
        if sc == "dump-close": return None
        if sc == "dump-silent": return "silent"
        shutil.copyfile(fixture, p)  # the control case
        return line(dump_ok(p))
    return line({"ok": False, "error": "unknown command"})

def serve(conn):
    buf = b""
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                l, buf = buf.split(b"\n", 1)
                cmd, _, arg = l.decode().partition(" ")
                out = answer(cmd, arg, conn)
                if out is None:
                    conn.close()
                    return
                if out == "silent":
                    time.sleep(3600)
                    return
                conn.sendall(out)
    except OSError:
        pass

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


class Fake:
    def __init__(self, ctx, scenario, peer_for=None):
        self.dir = tempfile.mkdtemp(prefix="hostile-", dir=ctx.tmp)
        env = dict(os.environ, HEAPSNAP_AGENT_DIR=self.dir)
        env.pop("PYTHONPATH", None)
        args = ["/usr/bin/python3", "-c", SERVER, scenario, ctx.fixture, str(ctx.objects)]
        if peer_for:
            args.append(str(peer_for))
        self.p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            self.p.kill()
            raise RuntimeError("the fake agent did not start: %r %s" % (line, self.p.stderr.read()))
        self.socket = line.split(" ", 1)[1].strip()
        self.pid = self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()


class Ctx:
    def __init__(self, cli, fixture, tmp):
        self.cli, self.fixture, self.tmp = cli, fixture, tmp
        info = json.loads(subprocess.run([cli, "info", "--json", fixture], capture_output=True,
                                         text=True, check=True).stdout)
        self.objects = info["counts"]["objects"]


def run(ctx, *args, timeout=HANG):
    t0 = time.monotonic()
    try:
        r = subprocess.run([ctx.cli] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout, r.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", e.stderr or "", time.monotonic() - t0


def clear_failure(name, rc, out, err, expect, sock, pid=None):
    """Exit 2, no output claiming success, one 'heapsnap:' line naming the
    socket (or the process) and the expected problem."""
    lines = [l for l in err.splitlines() if l.startswith("heapsnap:")]
    named = sock in err or (pid is not None and ("process %d" % pid) in err)
    return check(rc == 2 and "wrote" not in out and len(lines) == 1 and named and
                 all(e in err for e in expect),
                 "%s: exit 2 with one clear message (%s): rc=%s out=%r err=%r" %
                 (name, " / ".join(expect), rc, out[-300:], err[-600:]))


STATS_CASES = {
    # name: (extra stats args, words the message must hold)
    "hello-garbage": ((), ["not a JSON object line"]),
    "hello-no-pid": ((), ["'pid' is missing"]),
    "hello-pid-string": ((), ["'pid' is not a number"]),
    "hello-protocol-negative": ((), ["'protocol' is negative"]),
    "hello-other-pid": ((), ["answers for process 1"]),
    "hello-close": ((), ["closed the connection"]),
    "hello-silent": (("--timeout", "2"), ["did not answer HELLO within 2.0 s"]),
    "stats-garbage": ((), ["not a JSON object line"]),
    "stats-not-object": ((), ["not a JSON object line"]),
    "stats-huge": ((), ["'gc.tracked_objects' is out of range"]),
    "stats-infinite": ((), ["'rss' is not a finite number"]),
    "stats-negative": ((), ["'rss' is negative"]),
    "stats-fraction": ((), ["'threads' is not an integer"]),
    "stats-nan": ((), ["not JSON"]),
    "stats-missing-gc": ((), ["'gc' is missing"]),
    "stats-missing-ok": ((), ["'ok' is missing"]),
    "stats-wrong-type": ((), ["'gc.collections' is not an array"]),
    "stats-array-item": ((), ["'gc.pause_seconds' item 1 is negative"]),
    "stats-error-not-string": ((), ["'error' is not a string"]),
    "stats-endless": ((), ["longer than 4 MiB"]),
    "stats-close": ((), ["closed the connection without answering"]),
    "stats-silent": (("--timeout", "2"), ["did not answer STATS within 2.0 s"]),
    "types-negative": (("--types", "5"), ["'types' item 0: 'count' is negative"]),
    "types-not-array": (("--types", "5"), ["'types' is not an array"]),
    "types-name-number": (("--types", "5"), ["'types' item 0: 'name' is not a string"]),
    "types-objects-fraction": (("--types", "5"), ["'objects' is not an integer"]),
}

DUMP_CASES = {
    "hello-garbage": ((), ["not a JSON object line"]),
    "hello-no-pid": ((), ["'pid' is missing"]),
    "hello-silent": (("--timeout", "2"), ["did not answer HELLO within 2.0 s"]),
    "dump-huge": ((), ["'objects' is out of range"]),
    "dump-negative": ((), ["'objects' is negative"]),
    "dump-missing-path": ((), ["'path' is missing"]),
    "dump-path-number": ((), ["'path' is not a string"]),
    "dump-no-file": ((), ["there is no such file"]),
    "dump-other-path": ((), ["the reply names another file"]),
    "dump-not-snapshot": ((), ["it is not a heapsnap snapshot"]),
    "dump-symlink": ((), ["it is a symbolic link"]),
    "dump-fifo": ((), ["it is not a regular file"]),
    "dump-old-file": ((), ["before the request"]),
    "dump-wrong-count": ((), ["the file holds 4 objects, the reply says 1004"]),
    "dump-wrong-bytes": ((), ["the reply says 1000000000"]),
    "dump-close": ((), ["closed the connection without answering"]),
}


def case_stats(ctx, only):
    for name, (extra, expect) in STATS_CASES.items():
        if only and name not in only:
            continue
        f = Fake(ctx, name)
        try:
            rc, out, err, secs = run(ctx, "stats", f.pid, *extra)
            clear_failure("stats " + name, rc, out, err, expect, f.socket, f.pid)
            if name.startswith("stats-") or name.startswith("types-"):
                rc, out, err, secs = run(ctx, "stats", f.pid, "--json", *extra)
                check(rc == 2 and out == "", "stats --json %s: exit 2 and no JSON: %s %r" %
                      (name, rc, out[:200]))
        finally:
            f.stop()
    if not only or "control" in only:
        f = Fake(ctx, "control")
        try:
            rc, out, err, secs = run(ctx, "stats", f.pid, "--json", "--types", "5")
            doc = json.loads(out) if rc == 0 else {}
            check(rc == 0 and doc["agent"]["gc"]["tracked_objects"] == 100 and
                  doc["types"]["types"][0]["name"] == "str",
                  "stats control: a well-formed fake is read: %s %r" % (rc, err))
        finally:
            f.stop()


def case_dump(ctx, only, slow):
    cases = dict(DUMP_CASES)
    if os.geteuid() == 0:
        cases["dump-other-uid"] = ((), ["belongs to uid 65534"])
    if slow:
        cases["dump-silent"] = (("--fork", "--fork-timeout", "1"), ["did not answer DUMP within 61.0 s"])
    for name, (extra, expect) in cases.items():
        if only and name not in only:
            continue
        f = Fake(ctx, name)
        out_path = os.path.join(ctx.tmp, "out-%s.hsnap" % name)
        try:
            rc, out, err, secs = run(ctx, "dump", "--agent", f.pid, "-o", out_path, *extra)
            clear_failure("dump " + name, rc, out, err, expect, f.socket, f.pid)
        finally:
            f.stop()
            if os.path.lexists(out_path):
                os.unlink(out_path)
    if not only or "control" in only:
        f = Fake(ctx, "control")
        out_path = os.path.join(ctx.tmp, "out-control.hsnap")
        try:
            rc, out, err, secs = run(ctx, "dump", "--agent", f.pid, "-o", out_path)
            check(rc == 0 and ("wrote %s: %d objects" % (out_path, ctx.objects)) in out,
                  "dump control: a fake that writes a real snapshot is believed: %s %r %r" %
                  (rc, out, err))
        finally:
            f.stop()


def case_peer(ctx, only):
    """The socket of a process answered by another one: its socket file has
    the right name and owner, but its peer is not the process."""
    if only and "peer" not in only:
        return
    sleeper_dir = tempfile.mkdtemp(prefix="peer-", dir=ctx.tmp)
    env = dict(os.environ, HEAPSNAP_AGENT_DIR=sleeper_dir)
    sleeper = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(600)"], env=env)
    try:
        # the impostor binds the sleeper's name in the sleeper's directory
        env2 = dict(os.environ, HEAPSNAP_AGENT_DIR=sleeper_dir)
        imp = subprocess.Popen(["/usr/bin/python3", "-c", SERVER, "control", ctx.fixture,
                                str(ctx.objects), str(sleeper.pid)], env=env2,
                               stdout=subprocess.PIPE, text=True)
        imp.stdout.readline()
        try:
            rc, out, err, secs = run(ctx, "stats", sleeper.pid)
            clear_failure("peer stats", rc, out, err, ["served by process %d" % imp.pid],
                          "agent-%d.sock" % sleeper.pid)
            out_path = os.path.join(ctx.tmp, "out-peer.hsnap")
            rc, out, err, secs = run(ctx, "dump", "--agent", sleeper.pid, "-o", out_path)
            clear_failure("peer dump", rc, out, err, ["served by process %d" % imp.pid],
                          "agent-%d.sock" % sleeper.pid)
            check(not os.path.exists(out_path), "peer dump: nothing written")
        finally:
            imp.kill()
            imp.wait()
            imp.stdout.close()
    finally:
        sleeper.kill()
        sleeper.wait()
    if os.geteuid() == 0 and (not only or "peer-uid" in only):
        f = Fake(ctx, "peer-uid")
        try:
            rc, out, err, secs = run(ctx, "stats", f.pid)
            clear_failure("peer-uid stats", rc, out, err, ["is served by uid 65534"], f.socket)
        finally:
            f.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--case", action="append", default=[])
    ap.add_argument("--slow", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="heapsnap-hostile-")
    os.chmod(tmp, 0o755)
    try:
        ctx = Ctx(os.path.abspath(a.cli), os.path.abspath(a.fixture), tmp)
        only = set(a.case)
        case_stats(ctx, only)
        case_dump(ctx, only, a.slow)
        case_peer(ctx, only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
