#!/usr/bin/python3
"""Run a native-buffer test in a pinned venv, created once.

usage: venv_run.py BUILD PYTHON NAME SCRIPT [ARGS...]

NAME picks a requirements file beside this script (requirements-NAME.txt,
one pin a line; a line starting with a path is a local wheel). The venv is
BUILD/native-venvs/NAME-KEY (KEY from the pins and the interpreter), made by
PYTHON, reused while both are the same. Prints the venv's python on the last
line, then runs SCRIPT with it (our package from BUILD/python on
PYTHONPATH) and exits with its status; exits 77 with the reason when it cannot be had (no venv
module, PyPI unreachable, no wheel for this Python, the torch wheel missing).
"""
import hashlib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def venv(argv):
    build, py, name = os.path.abspath(argv[1]), argv[2], argv[3]
    req = os.path.join(HERE, "requirements-%s.txt" % name)
    pins = [l.strip() for l in open(req) if l.strip() and not l.startswith("#")]
    for p in pins:
        if p.startswith("/") and not os.path.exists(p):
            print("SKIP: %s is not on this machine" % p)
            return SKIP
    ver = subprocess.run([py, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    if ver.returncode != 0:
        print("SKIP: %s does not run" % py)
        return SKIP
    key = hashlib.sha256(("\n".join(pins) + ver.stdout + py).encode()).hexdigest()[:12]
    venv = os.path.join(build, "native-venvs", "%s-%s" % (name, key))
    vpy = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "heapsnap-ok")
    if os.path.exists(stamp):
        return vpy
    print("creating %s (%s)" % (venv, " ".join(pins)), flush=True)
    p = subprocess.run([py, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if p.returncode != 0:
        print("SKIP: %s -m venv failed (python3-venv missing?): %s" % (py, p.stderr[-300:]))
        return SKIP
    p = subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                        "--timeout", "30", "--retries", "1", "--only-binary", ":all:", "-r", req],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        print(p.stdout[-1500:] + p.stderr[-1500:])
        print("SKIP: pip could not install %s for %s (PyPI unreachable or no wheel for this Python)"
              % (" ".join(pins), py))
        return SKIP
    with open(stamp, "w") as f:
        f.write("ok\n")
    return vpy


def main(argv):
    vpy = venv(argv)
    if vpy == SKIP:
        return SKIP
    print("venv python: %s" % vpy, flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(os.path.abspath(argv[1]), "python")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([vpy, argv[4]] + argv[5:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
