"""The agent's options, good and bad, in all three spellings (issue 12 part 4).

usage: run_options.py --python PY --package DIR

- heapsnap.agent.start(...): every option with good values (the agent runs,
  AGENT's info shows the value as understood) and bad ones (a ValueError
  whose message is exactly "heapsnap: OPTION=VALUE is not allowed: ..." with
  what is allowed; no agent running afterwards);
- HEAPSNAP_AGENT=...: a program that imports nothing of ours: with a bad
  value it runs to its own exit status (5) with exactly one line on stderr
  naming the variable, its value and the option, no traceback and no agent;
  with a good value the agent runs with those options;
- python -m heapsnap.agent --option VALUE: exit 129 and the option named;
- the C handler (hook/trigger.c) refuses a crash signal on its own, and a
  signal that already has a handler installed outside Python;
- a program whose agent takes a signal still dies of a real SIGSEGV
  (status -11), it does not spin;
- the snapshot directory: a symbolic link, another user's directory, a
  directory others may write (not sticky) are refused; a sticky one is fine;
- stale sockets: the next agent removes agent-PID.sock of a dead process,
  and leaves alone a symbolic link, a regular file and another user's
  socket under such a name.
Run by /usr/bin/python3; the targets run on --python.
"""
import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile

FAILED = []
HANG = 600  # a hang detector for each program, never a time limit


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


def show(v):
    return "'%s'" % v if isinstance(v, str) else repr(v)


SIG_ALLOWED = "the agent takes USR1, USR2 or a real-time signal RTMIN..RTMAX"
EVERY_ALLOWED = "a number of seconds from 1 to 2592000 (30 days)"
KEEP_ALLOWED = "a whole number of files from 1 to 100000"
SIZE_ALLOWED = "bytes, or with K, M, G, T (powers of 1024)"

# (option, value as Python source, expected: dict of AGENT info fields, or the
# text that must follow "is not allowed: ")
NEEDS_DIR = ("signal", "every")
START_CASES = [
    ("signal", "'USR1'", {"signal": "SIGUSR1"}),
    ("signal", "'SIGUSR2'", {"signal": "SIGUSR2"}),
    ("signal", "'usr2'", {"signal": "SIGUSR2"}),
    ("signal", "int(signal.SIGUSR1)", {"signal": "SIGUSR1"}),
    ("signal", "str(int(signal.SIGUSR2))", {"signal": "SIGUSR2"}),
    ("signal", "'RTMIN'", {"signal": "SIGRTMIN"}),
    ("signal", "'SIGRTMIN+3'", {"signal": "SIGRTMIN+3"}),
    ("signal", "'rtmax-1'", {"signal": "SIGRTMIN+%d" % (64 - 34 - 1)}),
    ("signal", "'SEGV'", SIG_ALLOWED), ("signal", "'SIGBUS'", SIG_ALLOWED),
    ("signal", "'fpe'", SIG_ALLOWED), ("signal", "'ILL'", SIG_ALLOWED),
    ("signal", "'ABRT'", SIG_ALLOWED), ("signal", "11", SIG_ALLOWED), ("signal", "'6'", SIG_ALLOWED),
    ("signal", "'TERM'", SIG_ALLOWED), ("signal", "'SIGINT'", SIG_ALLOWED),
    ("signal", "'HUP'", SIG_ALLOWED), ("signal", "'KILL'", SIG_ALLOWED),
    ("signal", "'STOP'", SIG_ALLOWED), ("signal", "'PIPE'", SIG_ALLOWED),
    ("signal", "'CHLD'", SIG_ALLOWED), ("signal", "'RTMIN+99'", SIG_ALLOWED),
    ("signal", "'NOSUCH'", "no such signal; " + SIG_ALLOWED), ("signal", "True", SIG_ALLOWED),
    ("signal", "0", SIG_ALLOWED), ("signal", "-1", SIG_ALLOWED), ("signal", "65", SIG_ALLOWED),
    ("signal", "10.0", SIG_ALLOWED),
    ("every", "1", {"every": 1.0}), ("every", "1.5", {"every": 1.5}), ("every", "'2'", {"every": 2.0}),
    ("every", "2592000", {"every": 2592000.0}),
    ("every", "0", EVERY_ALLOWED), ("every", "0.999", EVERY_ALLOWED), ("every", "0.001", EVERY_ALLOWED),
    ("every", "-1", EVERY_ALLOWED), ("every", "float('nan')", EVERY_ALLOWED),
    ("every", "float('inf')", EVERY_ALLOWED), ("every", "1e308", EVERY_ALLOWED),
    ("every", "2592001", EVERY_ALLOWED), ("every", "True", EVERY_ALLOWED),
    ("every", "'abc'", EVERY_ALLOWED), ("every", "[1]", EVERY_ALLOWED),
    ("keep", "1", {"keep": 1}), ("keep", "100000", {"keep": 100000}), ("keep", "None", {"keep": None}),
    ("keep", "'3'", {"keep": 3}),
    ("keep", "0", KEEP_ALLOWED), ("keep", "-1", KEEP_ALLOWED), ("keep", "100001", KEEP_ALLOWED),
    ("keep", "2.5", KEEP_ALLOWED), ("keep", "True", KEEP_ALLOWED), ("keep", "'x'", KEEP_ALLOWED),
    ("max_bytes", "1", {"max_bytes": 1}), ("max_bytes", "'2G'", {"max_bytes": 2 << 30}),
    ("max_bytes", "'1.5GiB'", {"max_bytes": 3 << 29}), ("max_bytes", "'10MB'", {"max_bytes": 10 << 20}),
    ("max_bytes", "None", {"max_bytes": None}),
    ("max_bytes", "0", SIZE_ALLOWED), ("max_bytes", "-1", SIZE_ALLOWED), ("max_bytes", "'inf'", SIZE_ALLOWED),
    ("max_bytes", "'nan'", SIZE_ALLOWED), ("max_bytes", "'1Z'", SIZE_ALLOWED),
    ("max_bytes", "2**63", SIZE_ALLOWED), ("max_bytes", "True", SIZE_ALLOWED),
    ("min_free", "0", {"min_free": 0}), ("min_free", "'64M'", {"min_free": 64 << 20}),
    ("min_free", "-1", SIZE_ALLOWED), ("min_free", "'nan'", SIZE_ALLOWED), ("min_free", "'x'", SIZE_ALLOWED),
    ("socket", "'maybe'", "True or False"), ("fork", "2", "True or False"),
    ("after_fork", "'perhaps'", "True or False"),
]

START_PROG = r'''
import json, os, signal, sys
import heapsnap.agent as agent
cases, d = json.loads(sys.argv[1]), sys.argv[2]
for opt, src in cases:
    kw = {opt: eval(src)}
    if opt not in ("signal", "every"):
        kw["every"] = 1000
    kw["directory"] = d
    try:
        a = agent.start(**kw)
        info = a.info()
        out = {"ok": True, "info": {k: info.get(k) for k in ("signal", "every", "keep", "max_bytes",
                                                              "min_free", "directory")}}
        agent.stop()
    except ValueError as e:
        out = {"ok": False, "error": str(e), "running": agent.current() is not None}
    except Exception as e:
        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "other": True}
    print(json.dumps(out), flush=True)
'''


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG, **kw)


def env_for(a, pythonpath=None, **extra):
    e = dict(os.environ)
    for k in ("PYTHONPATH", "HEAPSNAP_AGENT", "HEAPSNAP_AGENT_DIR"):
        e.pop(k, None)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    if pythonpath:
        e["PYTHONPATH"] = pythonpath
    e.update(extra)
    return e


def case_start(a, tmp):
    d = tempfile.mkdtemp(prefix="start-", dir=tmp)
    cases = [(o, s) for o, s, _ in START_CASES]
    p = run([a.python, "-c", START_PROG, json.dumps(cases), d], env_for(a, a.package))
    lines = p.stdout.splitlines()
    if not check(p.returncode == 0 and len(lines) == len(cases),
                 "start: the matrix ran (%d of %d): %s" % (len(lines), len(cases), p.stderr[-2000:])):
        return
    check("Traceback" not in p.stderr, "start: no traceback: %s" % p.stderr[-1000:])
    for (opt, src, want), line in zip(START_CASES, lines):
        r = json.loads(line)
        what = "start(%s=%s)" % (opt, src)
        if isinstance(want, dict):
            if check(r["ok"], "%s starts the agent: %s" % (what, r.get("error"))):
                got = {k: r["info"][k] for k in want}
                check(got == want, "%s: AGENT shows %s (got %s)" % (what, want, got))
                check(r["info"]["directory"] == d, "%s: directory %s" % (what, r["info"]["directory"]))
        else:
            value = eval(src, {"signal": signal})
            head = "heapsnap: %s=%s is not allowed: " % (opt, show(value))
            check(not r["ok"] and not r.get("other") and r["error"].startswith(head) and want in r["error"],
                  "%s: ValueError %r...%r (got %r)" % (what, head, want, r.get("error")))
            check(not r.get("running"), "%s: no agent running after the error" % what)


ENV_PROG = ("import sys\n"
            "m = sys.modules.get('heapsnap.agent')\n"
            "a = m.current() if m else None\n"
            "i = a.info() if a else {}\n"
            "print('agent' if a else 'none', i.get('signal'), i.get('every'), i.get('keep'),"
            " i.get('max_bytes'), i.get('directory'), bool(i.get('socket')))\n"
            "sys.exit(5)\n")

# (value of HEAPSNAP_AGENT, expected stdout words after 'agent', or the
# text the one stderr line must hold besides the variable and its value)
def env_cases(d):
    return [
        ("1", ["None", "None", "5", "None", "None", "True"]),
        ("signal=USR2,dir=%s" % d, ["SIGUSR2", "None", "5", "None", d, "True"]),
        ("signal=SIGRTMIN+1,dir=%s,nosocket" % d, ["SIGRTMIN+1", "None", "5", "None", d, "False"]),
        ("signal=12,dir=%s" % d, ["SIGUSR2", "None", "5", "None", d, "True"]),
        ("every=1,keep=none,max_bytes=1G,dir=%s" % d, ["None", "1.0", "None", str(1 << 30), d, "True"]),
        ("every=600,keep=2,min_free=0,fork=yes,dir=%s" % d, ["None", "600.0", "2", "None", d, "True"]),
        ("signal=SEGV", "signal='SEGV' is not allowed: " + SIG_ALLOWED),
        ("signal=SIGBUS,dir=%s" % d, "signal='SIGBUS' is not allowed: " + SIG_ALLOWED),
        ("signal=FPE", "signal='FPE' is not allowed"), ("signal=ILL", "signal='ILL' is not allowed"),
        ("signal=abrt", "signal='abrt' is not allowed"), ("signal=11", "signal='11' is not allowed"),
        ("signal=TERM", "signal='TERM' is not allowed"), ("signal=nosuch", "no such signal"),
        ("every=1e308", "every='1e308' is not allowed: " + EVERY_ALLOWED),
        ("every=0.001", "every='0.001' is not allowed: " + EVERY_ALLOWED),
        ("every=0", "every='0' is not allowed"), ("every=-5", "every='-5' is not allowed"),
        ("every=nan", "every='nan' is not allowed"), ("every=inf", "every='inf' is not allowed"),
        ("every=soon", "every='soon' is not allowed"),
        ("keep=0", "keep='0' is not allowed: " + KEEP_ALLOWED), ("keep=1.5", "keep='1.5' is not allowed"),
        ("max_bytes=0", "max_bytes='0' is not allowed"), ("max_bytes=inf", "max_bytes='inf' is not allowed"),
        ("max_bytes=12Q", "max_bytes='12Q' is not allowed"), ("min_free=-1", "min_free='-1' is not allowed"),
        ("dir=/nonexistent-hs-dir,every=10", "dir='/nonexistent-hs-dir' is not allowed: "
         "'/nonexistent-hs-dir' does not exist"),
        ("dir=/etc/passwd,signal=USR1", "dir='/etc/passwd' is not allowed: '/etc/passwd' is not a directory"),
        ("socket=maybe", "socket='maybe' is not allowed: True or False"),
        ("every", "'every' needs a value"), ("bogus=1", "unknown option 'bogus'"),
        ("socket=0", "the agent has nothing to do"),
    ]


def case_env(a, tmp):
    d = tempfile.mkdtemp(prefix="env-", dir=tmp)
    boot = os.path.join(a.package, "heapsnap", "_bootstrap")
    for value, want in env_cases(d):
        p = run([a.python, "-c", ENV_PROG], env_for(a, boot, HEAPSNAP_AGENT=value), cwd=tmp)
        what = "HEAPSNAP_AGENT=%r" % value
        check(p.returncode == 5, "%s: the program's own exit status (got %d: %s)" % (what, p.returncode,
                                                                                   p.stderr[-500:]))
        check("Traceback" not in p.stderr, "%s: no traceback: %s" % (what, p.stderr[-800:]))
        words = p.stdout.split()
        if isinstance(want, list):
            check(words[:1] == ["agent"] and words[1:] == want and p.stderr == "",
                  "%s: the agent runs with %s (got %r, stderr %r)" % (what, want, p.stdout, p.stderr))
        else:
            head = "heapsnap: HEAPSNAP_AGENT='%s': " % value
            tail = "; the agent was not started\n"
            check(words == ["none"] + ["None"] * 5 + ["False"],
                  "%s: no agent (got %r)" % (what, p.stdout))
            check(p.stderr.count("\n") == 1 and p.stderr.startswith(head) and p.stderr.endswith(tail)
                  and want in p.stderr, "%s: one line %r...%r...%r (got %r)" % (what, head, want, tail, p.stderr))


def case_module(a, tmp):
    script = os.path.join(tmp, "mod_prog.py")
    with open(script, "w") as f:
        f.write("print('ran')\n")
    for args, want in ((["--signal", "SEGV"], "--signal='SEGV' is not allowed"),
                       (["--every", "0.01"], "--every='0.01' is not allowed"),
                       (["--every", "1e308"], "--every='1e308' is not allowed"),
                       (["--keep", "0"], "--keep='0' is not allowed"),
                       (["--max-bytes", "nan"], "--max-bytes='nan' is not allowed"),
                       (["--dir", "/nonexistent-hs-dir", "--every", "5"], "--dir='/nonexistent-hs-dir'")):
        p = run([a.python, "-m", "heapsnap.agent"] + args + [script], env_for(a, a.package), cwd=tmp)
        what = "python -m heapsnap.agent %s" % " ".join(args)
        check(p.returncode == 129 and p.stderr.startswith("heapsnap: " + want) and "usage:" in p.stderr
              and "Traceback" not in p.stderr and p.stdout == "",
              "%s: exit 129, %r (got %d %r)" % (what, want, p.returncode, p.stderr[:300]))


C_PROG = r'''
import faulthandler, os, signal, sys, tempfile
import heapsnap.agent as agent
from heapsnap import _heapsnap
r, w = os.pipe()
for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT, signal.SIGTERM):
    try:
        _heapsnap._signal_install(int(sig), w)
        print("installed", int(sig))
    except ValueError as e:
        print("refused", int(sig), "not one the agent may take" in str(e))
faulthandler.register(signal.SIGUSR1)  # a handler installed in C, unseen by signal.getsignal
try:
    agent.start(signal="USR1", directory=tempfile.gettempdir(), socket=False)
    print("usr1 taken")
except ValueError as e:
    print("usr1 refused", "already has a handler" in str(e), agent.current() is None)
'''


def case_c(a, tmp):
    p = run([a.python, "-c", C_PROG], env_for(a, a.package), cwd=tmp)
    lines = p.stdout.splitlines()
    check(p.returncode == 0 and len(lines) == 7, "c: ran: %s %s" % (p.stdout, p.stderr[-800:]))
    check(all(l.startswith("refused") and l.endswith("True") for l in lines[:6]),
          "c: trigger.c refuses SEGV, BUS, FPE, ILL, ABRT and TERM itself: %s" % lines[:6])
    check(lines[6:] == ["usr1 refused True True"], "c: a signal with a C handler is refused: %s" % lines[6:])


CRASH_PROG = r'''
import ctypes, sys, tempfile
import heapsnap.agent as agent
agent.start(signal="USR2", directory=tempfile.gettempdir())
print("crashing", flush=True)
ctypes.string_at(0)
'''


def case_crash(a, tmp):
    try:
        p = run([a.python, "-c", CRASH_PROG], env_for(a, a.package), cwd=tmp)
        check(p.returncode == -signal.SIGSEGV and p.stdout == "crashing\n",
              "crash: a real SIGSEGV kills the program with the agent running (got %d %r %s)"
              % (p.returncode, p.stdout, p.stderr[-300:]))
    except subprocess.TimeoutExpired:
        check(False, "crash: the program spun after SIGSEGV instead of dying")


def case_dirs(a, tmp):
    root = tempfile.mkdtemp(prefix="dirs-", dir=tmp)
    real = os.path.join(root, "real")
    os.mkdir(real, 0o700)
    link = os.path.join(root, "link")
    os.symlink(real, link)
    open_dir = os.path.join(root, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    sticky = os.path.join(root, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    cases = [(link, "is a symbolic link"), (open_dir, "is writable by other users and not sticky"),
             (sticky, None), (real, None)]
    if os.geteuid() == 0:
        other = os.path.join(root, "other")
        os.mkdir(other, 0o755)
        os.chown(other, 65534, 65534)
        cases.append((other, "belongs to uid 65534"))
    else:
        print("dirs: another user's directory not tried (needs root)")
    prog = ("import sys, json\nimport heapsnap.agent as agent\n"
            "for d in sys.argv[1:]:\n"
            "    try:\n"
            "        agent.start(every=1000, directory=d, socket=False); agent.stop(); print('ok')\n"
            "    except ValueError as e:\n"
            "        print(json.dumps(str(e)))\n")
    p = run([a.python, "-c", prog] + [c[0] for c in cases], env_for(a, a.package), cwd=tmp)
    lines = p.stdout.splitlines()
    if not check(len(lines) == len(cases), "dirs: ran: %s" % p.stderr[-800:]):
        return
    for (d, want), line in zip(cases, lines):
        if want is None:
            check(line == "ok", "dirs: %s accepted (got %s)" % (d, line))
        else:
            msg = json.loads(line) if line.startswith('"') else line
            check(msg.startswith("heapsnap: directory='%s' is not allowed: " % d) and want in msg,
                  "dirs: %s refused: %r (got %r)" % (d, want, msg))


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def case_stale(a, tmp):
    d = tempfile.mkdtemp(prefix="sockets-", dir=tmp)
    victim = os.path.join(tmp, "victim.txt")
    with open(victim, "w") as f:
        f.write("keep me")
    names = {}
    # a stale socket of ours: nobody listens, its process is gone
    names["stale"] = os.path.join(d, "agent-%d.sock" % dead_pid())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(names["stale"])
    s.close()
    names["link"] = os.path.join(d, "agent-%d.sock" % dead_pid())
    os.symlink(victim, names["link"])
    names["file"] = os.path.join(d, "agent-%d.sock" % dead_pid())
    open(names["file"], "w").close()
    if os.geteuid() == 0:
        names["other"] = os.path.join(d, "agent-%d.sock" % dead_pid())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(names["other"])
        s.close()
        os.lchown(names["other"], 65534, 65534)
    prog = "import sys\nimport heapsnap.agent as agent\na = agent.start()\nprint(a.socket_path)\n"
    p = run([a.python, "-c", prog], env_for(a, a.package, HEAPSNAP_AGENT_DIR=d), cwd=tmp)
    check(p.returncode == 0 and p.stdout.startswith(d), "stale: the agent started in %s: %s" % (d, p.stderr[-500:]))
    check(not os.path.lexists(names["stale"]), "stale: a dead process's socket is removed")
    check(os.path.islink(names["link"]) and open(victim).read() == "keep me",
          "stale: a symbolic link under a socket's name is left alone, its target untouched")
    check(os.path.isfile(names["file"]), "stale: a regular file under a socket's name is left alone")
    if "other" in names:
        check(stat.S_ISSOCK(os.lstat(names["other"]).st_mode), "stale: another user's socket is left alone")
    # the socket directory itself: a link or a directory others can write is refused
    link = os.path.join(tmp, "sockdir-link")
    os.symlink(d, link)
    open_dir = os.path.join(tmp, "sockdir-open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    boot = os.path.join(a.package, "heapsnap", "_bootstrap")
    for sd, want in ((link, "it is a symbolic link"), (open_dir, "other users can write to it")):
        p = run([a.python, "-c", ENV_PROG], env_for(a, boot, HEAPSNAP_AGENT="1", HEAPSNAP_AGENT_DIR=sd), cwd=tmp)
        check(p.returncode == 5 and p.stdout.split()[:1] == ["none"] and p.stderr.count("\n") == 1 and
              want in p.stderr and "HEAPSNAP_AGENT_DIR" in p.stderr and "Traceback" not in p.stderr,
              "stale: HEAPSNAP_AGENT_DIR %s refused in one line (%r): %d %r" % (sd, want, p.returncode, p.stderr))


CASES = [("start", case_start), ("env", case_env), ("module", case_module), ("c", case_c),
         ("crash", case_crash), ("dirs", case_dirs), ("stale", case_stale)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    a.package = os.path.abspath(a.package)
    tmp = tempfile.mkdtemp(prefix="hs-agent-options-")
    os.chmod(tmp, 0o755)
    for name, fn in CASES:
        if a.case and name not in a.case:
            continue
        n = len(FAILED)
        try:
            fn(a, tmp)
        except Exception as e:
            import traceback
            traceback.print_exc()
            check(False, "%s: raised %s: %s" % (name, type(e).__name__, e))
        print("%-8s %s" % (name, "ok" if len(FAILED) == n else "FAILED"), flush=True)
    if not FAILED:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
