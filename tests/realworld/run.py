#!/usr/bin/python3
"""Run one real-world fixture program under one interpreter.

usage: run.py --cli CLI --build BUILD --python PY --program NAME [--requirements FILE]...

With --requirements (repeatable: the pins of every file go into one venv),
the program runs in a venv made by PY under BUILD/realworld-venvs/ from those
pinned files (made once, reused while the
pins and the interpreter are the same); exit 77 with the reason when the venv
or the packages cannot be had (PyPI unreachable, no wheel for PY).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def venv_for(py, reqs, build):
    pins = []
    for req in reqs:
        pins += [l.strip() for l in open(req) if l.strip() and not l.startswith("#") and l.strip() not in pins]
    ver = subprocess.run([py, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
    key = hashlib.sha256(("\n".join(pins) + ver + py).encode()).hexdigest()[:12]
    name = "+".join(os.path.basename(req)[len("requirements-"):-len(".txt")] for req in reqs)
    venv = os.path.join(build, "realworld-venvs", "%s-%s" % (name, key))
    vpy = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "heapsnap-ok")
    if os.path.exists(stamp):
        return vpy
    print("creating %s (%s)" % (venv, " ".join(pins)), flush=True)
    p = subprocess.run([py, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if p.returncode != 0:
        print("SKIP: %s -m venv failed (python3-venv missing?): %s" % (py, p.stderr[-300:]))
        sys.exit(SKIP)
    p = subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                        "--timeout", "30", "--retries", "1", "--only-binary", ":all:"] + [a for req in reqs for a in ("-r", req)],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        print(p.stdout[-1500:] + p.stderr[-1500:])
        print("SKIP: pip could not install %s for %s (PyPI unreachable or no wheel for this Python)"
              % (" ".join(reqs), py))
        sys.exit(SKIP)
    open(stamp, "w").write("ok\n")
    return vpy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--requirements", action="append")
    # a hang detector, not a time limit (a loaded machine is slow, not wrong)
    ap.add_argument("--timeout", type=int, default=1500)
    a = ap.parse_args()
    py = a.python
    if a.requirements:
        py = venv_for(a.python, a.requirements, a.build)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(a.build, "python") + os.pathsep + HERE
    env["HS_CLI"] = a.cli
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="hs-rw-") as work:
        env["HS_WORK"] = work
        p = subprocess.run([py, os.path.join(HERE, "programs", a.program)], env=env, cwd=work,
                           timeout=a.timeout)
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
