"""Helpers for the real-world programs that drive live targets (servers,
pools) from outside: the targets import nothing of ours unless a test puts
the agent's bootstrap directory on their PYTHONPATH.

target_env(agent_dir=None): the environment for a target (our package off
PYTHONPATH; with agent_dir, HEAPSNAP_AGENT=1 through heapsnap/_bootstrap
and the agent's sockets in agent_dir).
run(*args): run the heapsnap CLI; (exit status, stdout, stderr).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import rwcheck as R

BUILD_PY = os.environ.get("HS_BUILD_PYTHON") or next(
    (p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
     if os.path.isdir(os.path.join(p, "heapsnap"))), "")
BOOTSTRAP = os.path.join(BUILD_PY, "heapsnap", "_bootstrap")
VENV_BIN = os.path.dirname(sys.executable)


# Every wait here is a hang detector, never a time limit: a loaded machine
# (another build beside the tests) makes a dump or a request many times
# slower, and that is not a failure. Tests check answers and counts; speed is
# measured by tests/bench/. Callers' shorter figures are raised to this.
HANG = 600


def target_env(agent_dir=None):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("HEAPSNAP_AGENT", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # a venv's console scripts, and the interpreter they name, first
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    if agent_dir:
        env["PYTHONPATH"] = BOOTSTRAP
        env["HEAPSNAP_AGENT"] = "1"
        env["HEAPSNAP_AGENT_DIR"] = agent_dir
    return env


def run(*args, timeout=None, env=None):
    timeout = HANG if timeout is None else max(timeout, HANG)
    t0 = time.monotonic()
    p = subprocess.run([R.CLI] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    print("heapsnap %s -> %d (%.2fs)" % (" ".join(map(str, args)), p.returncode,
                                        time.monotonic() - t0), flush=True)
    if p.returncode not in (0, 1):
        print(p.stderr[-1500:], flush=True)
    return p.returncode, p.stdout, p.stderr


def run_json(*args, **kw):
    rc, out, err = run(*(args + ("--json",)), **kw)
    R.check(rc == 0, "heapsnap %s --json exited %d: %s" % (" ".join(map(str, args)), rc, err[-400:]))
    try:
        return json.loads(out)
    except ValueError:
        R.fail("heapsnap %s --json: not JSON: %.200r" % (" ".join(map(str, args)), out))
        return {}


def validate(doc, schema):
    """Check doc against formats/<schema>.schema.json when jsonschema is there."""
    try:
        import jsonschema
    except ImportError:
        return
    path = os.path.join(R.HERE, "..", "..", "formats", schema + ".schema.json")
    try:
        jsonschema.validate(doc, json.load(open(path)))
    except jsonschema.ValidationError as e:
        R.fail("%s: does not match its schema: %s" % (schema, e.message[:300]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=None):
    timeout = HANG if timeout is None else timeout
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_http(url, proc, seconds=None):
    deadline = time.monotonic() + max(seconds or 0, HANG)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            get(url, timeout=2)
            return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_for(cond, seconds=None, step=0.05):
    deadline = time.monotonic() + max(seconds or 0, HANG)
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tracer(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return 0


def type_count(summary, name):
    """Objects of the type whose name is name or ends with .name."""
    return sum(r["count"] for r in summary.get("rows", [])
               if r["name"] == name or r["name"].endswith("." + name))


def stop(proc, sig=signal.SIGTERM, seconds=None):
    seconds = max(seconds or 0, HANG)
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        R.fail("pid %d did not exit within %ds of signal %d" % (proc.pid, seconds, sig))
        proc.kill()
        return proc.wait()
