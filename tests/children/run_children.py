"""`heapsnap dump PID --children` against real process trees that import
nothing of ours, then `summary INDEX` and `diff INDEX_A INDEX_B`.

usage: run_children.py --cli HEAPSNAP --python PY [--case NAME]...
       run_children.py --cli HEAPSNAP --python PY --build BUILD --case gunicorn

Cases: pool-fork, pool-spawn, pool-forkserver (a multiprocessing Pool of 3
workers holding known objects), tree (a `sleep` child skipped, a Python grandchild under a
shell, a child that dies during its dump), roots (the root failing, a
non-Python root), usage; gunicorn (2 sync workers serving a known leak, in
a venv made from requirements-gunicorn.txt; exit 77 when it cannot be
installed). Targets run without our package on PYTHONPATH and must be left
running, untraced and working.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
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


def validate(doc, name, what):
    try:
        import jsonschema
    except ImportError:
        return
    schema = json.load(open(os.path.join(ROOT, "formats", name + ".schema.json")))
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        check(False, "%s valid against %s: %s" % (what, name, str(e).splitlines()[0]))


def run(cli, *args, timeout=120):
    r = subprocess.run([cli] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def dump_children(cli, pid, out, *extra):
    t0 = time.monotonic()
    if "--fork" not in extra and "--no-fork" not in extra:
        extra = tuple(extra) + ("--no-fork",)  # the default is fork mode
    rc, so, se = run(cli, "dump", pid, "--children", "-o", out, *extra)
    took = time.monotonic() - t0
    idx = None
    if os.path.exists(out):
        idx = json.load(open(out))
        validate(idx, "index", out)
    return rc, so, se, idx, took


def summary(cli, index, *extra):
    rc, so, se = run(cli, "summary", index, "--json", "--top", "0", *extra)
    if not check(rc == 0, "summary %s: exit 0 (%s)" % (index, se.strip())):
        return None
    d = json.loads(so)
    validate(d, "summary-set", "summary INDEX --json")
    return d


def count_in(row_owner, suffix):
    return sum(r["count"] for r in row_owner["rows"] if r["name"].endswith(suffix))


def per_process(summ, suffix):
    """{pid: count} of the types named *suffix."""
    out = {}
    for r in summ["rows"]:
        if r["name"].endswith(suffix):
            for p in r["processes"]:
                out[p["pid"]] = out.get(p["pid"], 0) + p["count"]
    return out


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split()[1]
    except OSError:
        return None
    return None


def healthy(pids, what):
    for pid in pids:
        st = proc_status(pid, "State")
        check(st in ("R", "S"), "%s: process %d running (state %s)" % (what, pid, st))
        check(proc_status(pid, "TracerPid") == "0", "%s: process %d not traced" % (what, pid))


def no_leftovers(d, what):
    left = [f for f in os.listdir(d) if ".tmp." in f or f.endswith(".hsfork-status")]
    check(not left, "%s: no temporary files left (%s)" % (what, left))


# ---------------------------------------------------------------------------
# multiprocessing pools

POOL = r'''
import json, multiprocessing as mp, os, sys

class PoolHeldXyz:
    def __init__(self, i):
        self.i = i

KEEP = []

def init(counter, barrier, base, step):
    global BARRIER
    BARRIER = barrier
    with counter.get_lock():
        k = counter.value
        counter.value += 1
    KEEP.extend(PoolHeldXyz(i) for i in range(base + step * k))

def whoami(_):
    BARRIER.wait(timeout=60)  # three tasks at once: one per worker
    return os.getpid(), len(KEEP)

def grow(n):
    KEEP.extend(PoolHeldXyz(i) for i in range(n))
    BARRIER.wait(timeout=60)
    return os.getpid(), len(KEEP)

def square(x):
    return x * x

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    counter = ctx.Value("i", 0)
    barrier = ctx.Barrier(3)
    pool = ctx.Pool(3, initializer=init, initargs=(counter, barrier, 10, 5))
    held = dict(pool.map(whoami, range(3), chunksize=1))
    PARENT = [PoolHeldXyz(i) for i in range(17)]  # after the workers forked
    print("ready", os.getpid(), json.dumps(held), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "grow":
            print("grown", json.dumps(dict(pool.map(grow, [int(cmd[1])] * 3, chunksize=1))),
                  flush=True)
        elif cmd[0] == "check":
            print("checked", pool.map(square, range(200)) == [x * x for x in range(200)],
                  flush=True)
        else:
            break
    pool.terminate()
    pool.join()
'''

PARENT_HELD = 17
GROW = 31


def case_pool(cli, py, tmp, method):
    what = "pool-" + method
    script = os.path.join(tmp, "pool_target.py")
    open(script, "w").write(POOL)
    p = subprocess.Popen([py, script, method], env=target_env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=tmp)
    try:
        line = p.stdout.readline().split(None, 2)
        if not check(line and line[0] == "ready", "%s: target started (%r)" % (what, line)):
            return
        root = int(line[1])
        held = {int(k): v for k, v in json.loads(line[2]).items()}
        check(sorted(held.values()) == [10, 15, 20], "%s: workers hold 10, 15, 20 (%s)" % (what, held))
        out = os.path.join(tmp, what + "-1.hsidx")
        rc, so, se, idx, took = dump_children(cli, root, out)
        print("%s: dump --children in %.2f s\n%s%s" % (what, took, so, se), flush=True)
        if not check(rc == 0 and idx, "%s: dump --children exit 0 (%d: %s)" % (what, rc, se.strip())):
            return
        procs = idx["processes"]
        ok = [x for x in procs if x["status"] == "ok"]
        # fork: the parent and 3 workers; spawn: also the resource tracker;
        # forkserver: also the fork server, the workers' parent
        want = {"fork": 4, "spawn": 5, "forkserver": 6}[method]
        check(len(procs) == want and len(ok) == want,
              "%s: %d processes, all snapshotted (%s)" % (what, want,
                                                          [(x["pid"], x["status"], x.get("error")) for x in procs]))
        check(procs[0]["pid"] == root, "%s: the root first" % what)
        check(set(held) <= {x["pid"] for x in ok}, "%s: every worker snapshotted" % what)
        trackers = [x for x in ok if any("resource_tracker" in a for a in x["argv"])]
        check(len(trackers) == (0 if method == "fork" else 1), "%s: resource tracker (%d)" % (what, len(trackers)))
        servers = [x for x in ok if any("multiprocessing.forkserver" in a for a in x["argv"])
                   and x["ppid"] == root]
        check(len(servers) == (1 if method == "forkserver" else 0), "%s: fork server (%d)" % (what, len(servers)))
        parents = {x["pid"]: x["ppid"] for x in ok}
        check(all(parents.get(w) == (servers[0]["pid"] if servers else root) for w in held),
              "%s: the workers' parent (%s)" % (what, parents))
        for x in ok:
            check(os.path.exists(os.path.join(tmp, x["file"])) and x["file"] == "%s-1-%d.hsnap" % (what, x["pid"]),
                  "%s: snapshot %s beside the index" % (what, x["file"]))
            check(all(k in x["memory"] for k in ("rss", "pss", "uss", "swap")), "%s: memory of %d" % (what, x["pid"]))
        no_leftovers(tmp, what)

        s1 = summary(cli, out)
        if s1:
            pp = per_process(s1, ".PoolHeldXyz")
            expect = dict(held)
            expect[root] = PARENT_HELD
            check(pp == expect, "%s: PoolHeldXyz per process %s, expected %s" % (what, pp, expect))
            check(count_in(s1, ".PoolHeldXyz") == PARENT_HELD + 45, "%s: PoolHeldXyz in all" % what)
            t = s1["total"]
            check(t["processes"] == want, "%s: summary of %d processes" % (what, want))
            check(t["count"] == sum(x["count"] for x in s1["processes"]), "%s: total objects = sum" % what)
            check(t["bytes"] == sum(x["bytes"] for x in s1["processes"]), "%s: total bytes = sum" % what)
            check(t["memory"]["pss"] == sum(x["memory"]["pss"] for x in s1["processes"]) and
                  t["memory"]["uss"] == sum(x["memory"]["uss"] for x in s1["processes"]) and
                  t["memory"]["rss"] == sum(x["memory"]["rss"] for x in s1["processes"]),
                  "%s: memory totals = sums" % what)
            check(t["memory"]["pss"] < t["memory"]["rss"],
                  "%s: PSS total %d < RSS sum %d (shared pages counted once)"
                  % (what, t["memory"]["pss"], t["memory"]["rss"]))
            if method == "fork":
                # forked workers share the parent's pages: their PSS is well below their RSS
                for x in s1["processes"][1:]:
                    check(x["memory"]["pss"] < 0.8 * x["memory"]["rss"],
                          "%s: worker %d shares copy-on-write pages (PSS %d, RSS %d)"
                          % (what, x["pid"], x["memory"]["pss"], x["memory"]["rss"]))
            # every single snapshot agrees with its row of the set
            for x in s1["processes"]:
                rc2, so2, _ = run(cli, "summary", os.path.join(tmp, x["file"]), "--json")
                check(rc2 == 0 and json.loads(so2)["total"]["count"] == x["count"],
                      "%s: summary of %s alone agrees" % (what, x["file"]))
        healthy([x["pid"] for x in procs], what)

        # the pool still works, and its workers grow
        p.stdin.write("check\n")
        p.stdin.flush()
        check(p.stdout.readline().split() == ["checked", "True"], "%s: map() right after the dump" % what)
        p.stdin.write("grow %d\n" % GROW)
        p.stdin.flush()
        line = p.stdout.readline().split(None, 1)
        grown = {int(k): v for k, v in json.loads(line[1]).items()} if line and line[0] == "grown" else {}
        check(grown == {pid: n + GROW for pid, n in held.items()}, "%s: each worker grew (%s)" % (what, grown))

        extra = ("--fork",) if method == "fork" else ()
        out2 = os.path.join(tmp, what + "-2.hsidx")
        rc, so, se, idx2, took = dump_children(cli, root, out2, *extra)
        print("%s: second dump --children %s in %.2f s" % (what, " ".join(extra), took), flush=True)
        if check(rc == 0 and idx2, "%s: second dump exit 0 (%s)" % (what, se.strip())):
            check(sum(x["status"] == "ok" for x in idx2["processes"]) == want,
                  "%s: second set complete" % what)
            check(idx2["fork"] == bool(extra), "%s: fork mode recorded" % what)
            rc, so, se = run(cli, "diff", out, out2, "--json", "--top", "0")
            if check(rc == 0, "%s: diff of the sets (%s)" % (what, se.strip())):
                d = json.loads(so)
                validate(d, "diff-set", "diff INDEX INDEX --json")
                check(d["total"]["compared"] == want and d["total"]["ended"] == 0 and
                      d["total"]["started"] == 0, "%s: all %d processes compared" % (what, want))
                rows = [r for r in d["rows"] if r["name"].endswith(".PoolHeldXyz")]
                check(len(rows) == 1 and rows[0]["count_delta"] == 3 * GROW,
                      "%s: PoolHeldXyz +%d in all (%s)" % (what, 3 * GROW, rows))
                if rows:
                    per = {x["pid"]: x["count_delta"] for x in rows[0]["processes"]}
                    check(per == {pid: GROW for pid in held},
                          "%s: +%d in each worker, none in the parent (%s)" % (what, GROW, per))
                check(d["grew"], "%s: grew" % what)
            rc, so, se = run(cli, "diff", out, out2)
            check(rc == 0 and "PoolHeldXyz" in so and "+%d" % GROW in so, "%s: diff text" % what)
            rc, so, se = run(cli, "summary", out2)
            check(rc == 0 and "physical memory:" in so and "PSS total" in so, "%s: summary text" % what)
        healthy([x["pid"] for x in procs], what + " (second)")
        p.stdin.write("check\n")
        p.stdin.flush()
        check(p.stdout.readline().split() == ["checked", "True"], "%s: map() after the second dump" % what)
        p.stdin.write("quit\n")
        p.stdin.flush()
        check(p.wait(timeout=60) == 0, "%s: the pool ends cleanly" % what)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        # the workers and the tracker end with the parent (pipes closed)
        time.sleep(0.2)


# ---------------------------------------------------------------------------
# a tree with a non-Python child, a Python grandchild under a shell, and a
# child that dies while it is being dumped

TREE = r'''
import os, subprocess, sys
class TreeHeldXyz: pass
keep = [TreeHeldXyz() for _ in range(13)]
py = sys.executable
sleeper = subprocess.Popen(["sleep", "1000"])
grand = ("class GrandXyz: pass\nkeep = [GrandXyz() for _ in range(29)]\n"
         "import sys\nprint('up', flush=True)\nsys.stdin.read()\n")
shell = subprocess.Popen(["/bin/sh", "-c", '"$0" -c "$1"; exit 0', py, grand],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
shell.stdout.readline()
# holds the GIL in one C call (no safe point) until SIGALRM ends it
dying = subprocess.Popen([py, "-c", "import signal; signal.alarm(%d); print('go', flush=True); "
                          "sum(range(10**15))" % int(sys.argv[1])], stdout=subprocess.PIPE)
dying.stdout.readline()
print("ready", os.getpid(), sleeper.pid, shell.pid, dying.pid, flush=True)
sys.stdin.read()
sleeper.kill(); shell.kill(); dying.kill()
'''


def descendants(pid):
    """{child pid: comm} of the direct children of pid."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open("/proc/%s/stat" % d).read()
            except OSError:
                continue
            if int(s[s.rindex(")") + 2:].split()[1]) == pid:
                out[int(d)] = s[s.index("(") + 1:s.rindex(")")]
    return out


def case_tree(cli, py, tmp):
    what = "tree"
    script = os.path.join(tmp, "tree_target.py")
    open(script, "w").write(TREE)
    p = subprocess.Popen([py, script, "5"], env=target_env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=tmp)
    try:
        line = p.stdout.readline().split()
        if not check(line and line[0] == "ready", "tree: target started (%r)" % line):
            return
        root, sleeper, shell, dying = map(int, line[1:5])
        grand = [c for c in descendants(shell)]
        check(len(grand) == 1, "tree: the shell has one Python child (%s)" % grand)
        d = os.path.join(tmp, "tree")
        os.makedirs(d)
        rc, so, se, idx, took = dump_children(cli, root, os.path.join(d, "t.hsidx"), "--timeout", "30")
        print("tree: dump --children in %.2f s\n%s%s" % (took, so, se), flush=True)
        check(rc == 0, "tree: exit 0 though one child died (%d: %s)" % (rc, se.strip()))
        check("1 of 3 processes could not be snapshotted" in se,
              "tree: says so on stderr (%s)" % se.strip())
        if not idx:
            return
        st = {x["pid"]: x for x in idx["processes"]}
        check(sorted(st) == sorted([root, sleeper, shell, dying] + grand),
              "tree: every descendant listed (%s)" % sorted(st))
        check(st.get(sleeper, {}).get("status") == "skipped" and
              "not a Python process" in st.get(sleeper, {}).get("error", ""),
              "tree: sleep skipped as not Python (%s)" % st.get(sleeper))
        check(st.get(sleeper, {}).get("argv") == ["sleep", "1000"], "tree: argv of sleep")
        check(st.get(shell, {}).get("status") == "skipped", "tree: the shell skipped")
        # it dies during its dump, or (a loaded machine) before its turn came
        check(st.get(dying, {}).get("status") == "exited" and st[dying].get("file") is None and
              ("died" in st[dying].get("error", "") or
               "has exited" in st[dying].get("error", "")),
              "tree: the dying child recorded as exited (%s)" % st.get(dying))
        # ended with it, not by the 30 s timeout: told by the reason, not the time
        err = st.get(dying, {}).get("error", "")
        check("timed out" not in err and "timeout" not in err and "safe point" not in err,
              "tree: the dying child's dump ended with it, not by the timeout (%s)" % err)
        for pid, n, name in ((root, 13, "__main__.TreeHeldXyz"), (grand[0] if grand else 0, 29,
                                                                    "__main__.GrandXyz")):
            x = st.get(pid, {})
            if check(x.get("status") == "ok", "tree: %d snapshotted" % pid):
                rc, so2, _ = run(cli, "summary", os.path.join(d, x["file"]), "--json", "--top", "0")
                got = sum(r["count"] for r in json.loads(so2)["rows"] if r["name"] == name) if rc == 0 else -1
                check(got == n, "tree: %d %s in %d (got %d)" % (n, name, pid, got))
        if grand:
            check(st.get(grand[0], {}).get("ppid") == shell, "tree: the grandchild's parent is the shell")
        files = sorted(os.listdir(d))
        check(files == sorted(["t.hsidx"] + ["t-%d.hsnap" % pid for pid in (root, grand[0] if grand else 0)]),
              "tree: exactly the index and two snapshots (%s)" % files)
        no_leftovers(d, "tree")
        s = summary(cli, os.path.join(d, "t.hsidx"))
        if s:
            ns = {x["pid"]: x["status"] for x in s["not_snapshotted"]}
            check(ns == {sleeper: "skipped", shell: "skipped", dying: "exited"},
                  "tree: summary lists those not snapshotted (%s)" % ns)
        healthy([root, sleeper, shell] + grand, "tree")
        check(proc_status(dying, "State") in (None, "Z"), "tree: the dying child is gone")
    finally:
        if p.poll() is None:
            p.stdin.close()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        p.wait()


BUSY_ROOT = r'''
import subprocess, sys, os
child = subprocess.Popen([sys.executable, "-c", "class KidXyz: pass\nk=[KidXyz() for _ in range(7)]\n"
                          "import sys\nprint('up', flush=True)\nsys.stdin.read()"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
child.stdout.readline()
print("ready", os.getpid(), child.pid, flush=True)
sum(range(10**15))
'''


def case_roots(cli, py, tmp):
    # the root reaches no safe point: exit 2, said on stderr, the child's snapshot indexed
    p = subprocess.Popen([py, "-c", BUSY_ROOT], env=target_env(), stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        if check(line and line[0] == "ready", "roots: busy target started"):
            root, child = int(line[1]), int(line[2])
            out = os.path.join(tmp, "busy.hsidx")
            rc, so, se, idx, took = dump_children(cli, root, out, "--timeout", "1")
            check(rc == 2, "roots: exit 2 when the root fails (%d)" % rc)
            check(se.startswith("heapsnap: cannot snapshot process %d (the root)" % root) and
                  "the index lists the 1 other snapshot" in se, "roots: said on stderr (%s)" % se.strip())
            if check(idx is not None, "roots: the index is written"):
                st = {x["pid"]: x["status"] for x in idx["processes"]}
                check(st == {root: "failed", child: "ok"}, "roots: statuses (%s)" % st)
                s = summary(cli, out)
                check(s and count_in(s, "__main__.KidXyz") == 7, "roots: the child's objects")
            healthy([root, child], "roots")
    finally:
        p.kill()
        p.wait()
    # a non-Python root: its Python descendants are the set
    script = "import sys\nclass ViaShellXyz: pass\nk = [ViaShellXyz() for _ in range(5)]\nprint('up', flush=True)\nsys.stdin.read()\n"
    sh = subprocess.Popen(["/bin/sh", "-c", '"$0" -c "$1"; exit 0', py, script], env=target_env(),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        check(sh.stdout.readline().strip() == "up", "roots: shell child started")
        out = os.path.join(tmp, "shell.hsidx")
        rc, so, se, idx, took = dump_children(cli, sh.pid, out)
        check(rc == 0 and idx and idx["processes"][0]["status"] == "skipped" and
              [x["status"] for x in idx["processes"][1:]] == ["ok"],
              "roots: non-Python root, Python child snapshotted (%d %s)" % (rc, se.strip()))
        s = summary(cli, out) if idx else None
        check(s and count_in(s, "__main__.ViaShellXyz") == 5, "roots: the child's objects via the shell")
    finally:
        sh.kill()
        sh.wait()
    # nothing Python at all: exit 2, nothing written
    sl = subprocess.Popen(["sleep", "100"])
    try:
        out = os.path.join(tmp, "sleep.hsidx")
        rc, so, se, idx, took = dump_children(cli, sl.pid, out)
        check(rc == 2 and "not a Python process and has no Python descendants" in se and
              len(se.strip().splitlines()) == 1, "roots: sleep alone (%d %s)" % (rc, se.strip()))
        check(idx is None and not glob.glob(os.path.join(tmp, "sleep*")), "roots: nothing written")
        rc, so, se = run(cli, "dump", "999999999", "--children", "-o", out)
        check(rc == 2 and "no such process" in se, "roots: no such process (%s)" % se.strip())
    finally:
        sl.kill()
        sl.wait()


def case_usage(cli, py, tmp):
    for args, needle in ((["--children", "-o", os.path.join(tmp, "x.txt")], "expects NAME.hsidx"),
                         (["--children", "--jobs", "0"], "--jobs expects"),
                         (["--jobs", "2"], "--jobs needs --children"),
                         (["--fork", "--no-fork"], "contradict"),
                         (["--no-fork", "--fork-timeout", "3"], "--fork-timeout needs --fork")):
        rc, so, se = run(cli, "dump", "1", *args)
        check(rc == 129 and needle in se, "usage: %s -> 129 (%d %s)" % (args, rc, se.strip()))
    rc, so, se = run(cli, "dump", "1", "--children", "-o", os.path.join(tmp, "nodir", "x.hsidx"))
    check(rc == 2 and "does not exist" in se, "usage: missing directory (%s)" % se.strip())


# ---------------------------------------------------------------------------
# gunicorn

APP = r'''
import os
class GunicornLeakXyz:
    def __init__(self, path): self.path = path
LEAK = []
def application(environ, start_response):
    LEAK.extend(GunicornLeakXyz(environ.get("PATH_INFO")) for _ in range(10))
    body = ("%d %d" % (os.getpid(), len(LEAK))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def venv_for(py, req, build):
    pins = [l.strip() for l in open(req) if l.strip() and not l.startswith("#")]
    ver = subprocess.run([py, "-c", "import sys; print(sys.version)"], capture_output=True,
                         text=True).stdout
    key = hashlib.sha256(("\n".join(pins) + ver + py).encode()).hexdigest()[:12]
    venv = os.path.join(build, "children-venvs", "gunicorn-%s" % key)
    vpy = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "heapsnap-ok")
    if os.path.exists(stamp):
        return vpy
    print("creating %s (%s)" % (venv, " ".join(pins)), flush=True)
    r = subprocess.run([py, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: %s -m venv failed (python3-venv missing?): %s" % (py, r.stderr[-300:]))
        sys.exit(SKIP)
    r = subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-input", "--timeout", "30", "--retries", "1", "--only-binary", ":all:",
                        "-r", req], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        print(r.stdout[-1500:] + r.stderr[-1500:])
        print("SKIP: pip could not install %s for %s (PyPI unreachable or no wheel for this "
              "Python)" % (req, py))
        sys.exit(SKIP)
    open(stamp, "w").write("ok\n")
    return vpy


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_gunicorn(cli, py, tmp, build):
    vpy = venv_for(py, os.path.join(HERE, "requirements-gunicorn.txt"), build)
    app = os.path.join(tmp, "leakyapp.py")
    open(app, "w").write(APP)
    port = free_port()
    p = subprocess.Popen([vpy, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
                          "--bind", "127.0.0.1:%d" % port, "--chdir", tmp, "--log-level", "warning",
                          "leakyapp:application"], env=target_env(), cwd=tmp,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)

    def get(path="/x"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            pid, n = r.read().split()
            return int(pid), int(n)

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/warmup")
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    print(p.stdout.read() if p.poll() is not None else "")
                    check(False, "gunicorn: serves within 60 s")
                    return
                time.sleep(0.2)
        # wait for both workers to be up, then count what each served
        workers = {}
        deadline = time.monotonic() + 30
        while len(descendants(p.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        last = {}
        for i in range(40):
            pid, n = get("/r%d" % i)
            last[pid] = n
        served = dict(last)  # leaked objects per worker, as the app counts them (warmup included)
        kids = descendants(p.pid)
        check(len(kids) == 2, "gunicorn: two workers (%s)" % kids)
        out = os.path.join(tmp, "g1.hsidx")
        rc, so, se, idx, took = dump_children(cli, p.pid, out)
        print("gunicorn: dump --children in %.2f s\n%s%s" % (took, so, se), flush=True)
        if not check(rc == 0 and idx, "gunicorn: dump --children exit 0 (%s)" % se.strip()):
            return
        st = {x["pid"]: x for x in idx["processes"]}
        check(sorted(st) == sorted([p.pid] + list(kids)) and
              all(x["status"] == "ok" for x in st.values()),
              "gunicorn: master and 2 workers snapshotted (%s)" %
              [(x["pid"], x["status"], x.get("error")) for x in idx["processes"]])
        s = summary(cli, out)
        if s:
            pp = per_process(s, "leakyapp.GunicornLeakXyz")
            expect = {pid: n for pid, n in served.items()}
            check(pp == expect, "gunicorn: the leaked objects are in the workers that served "
                                "(%s, the app says %s)" % (pp, expect))
            check(p.pid not in pp, "gunicorn: none in the master")
            t = s["total"]
            check(t["memory"]["pss"] < t["memory"]["rss"], "gunicorn: PSS total < RSS sum")
        # serves after the dump; grow, dump again, diff
        after = {}
        for i in range(20):
            pid, n = get("/after%d" % i)
            after[pid] = n
        out2 = os.path.join(tmp, "g2.hsidx")
        rc, so, se, idx2, took = dump_children(cli, p.pid, out2)
        print("gunicorn: second dump --children in %.2f s" % took, flush=True)
        if check(rc == 0 and idx2, "gunicorn: second dump (%s)" % se.strip()):
            rc, so, se = run(cli, "diff", out, out2, "--json", "--top", "0")
            if check(rc == 0, "gunicorn: diff (%s)" % se.strip()):
                d = json.loads(so)
                validate(d, "diff-set", "gunicorn diff")
                rows = [r for r in d["rows"] if r["name"] == "leakyapp.GunicornLeakXyz"]
                per = {x["pid"]: x["count_delta"] for x in rows[0]["processes"]} if rows else {}
                want = {pid: after[pid] - served.get(pid, 0) for pid in after}
                check(per == want, "gunicorn: growth per worker %s, expected %s" % (per, want))
                check(rows and rows[0]["count_delta"] == 200, "gunicorn: +200 leaked objects in all")
        healthy([p.pid] + list(kids), "gunicorn")
        check(get("/last")[1] > 0, "gunicorn: serves after two dumps")
    finally:
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--build")
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    cli = os.path.abspath(a.cli)
    cases = a.case or ["usage", "pool-fork", "pool-spawn", "pool-forkserver", "tree", "roots"]
    scope = "/proc/sys/kernel/yama/ptrace_scope"
    if os.path.exists(scope) and open(scope).read().strip() == "3":
        print("SKIP: ptrace is disabled here (kernel.yama.ptrace_scope=3)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="hs-children-")
    try:
        for c in cases:
            d = os.path.join(tmp, c)
            os.makedirs(d)
            print("== %s (%s)" % (c, a.python), flush=True)
            if c == "pool-fork":
                case_pool(cli, a.python, d, "fork")
            elif c == "pool-spawn":
                case_pool(cli, a.python, d, "spawn")
            elif c == "pool-forkserver":
                case_pool(cli, a.python, d, "forkserver")
            elif c == "tree":
                case_tree(cli, a.python, d)
            elif c == "roots":
                case_roots(cli, a.python, d)
            elif c == "usage":
                case_usage(cli, a.python, d)
            elif c == "gunicorn":
                case_gunicorn(cli, a.python, d, a.build or tmp)
            else:
                print("unknown case", c)
                return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
