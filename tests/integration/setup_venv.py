#!/usr/bin/python3
"""Create (once) the virtual environment the real-program test runs in:
BUILD/venv-it, made by /usr/bin/python3 with pinned third-party packages from
PyPI (pip as configured on the machine). The system interpreters are never
touched.

usage: /usr/bin/python3 setup_venv.py BUILD

Prints the venv's python on the last line of stdout and exits 0; exits 77
with the reason when the venv or the packages cannot be had (no network, no
ensurepip), so the caller can skip.
"""
import hashlib
import os
import subprocess
import sys

PINS = [
    "flask==3.1.3",
    "werkzeug==3.1.9",
    "jinja2==3.1.6",
    "markupsafe==3.0.3",
    "itsdangerous==2.2.0",
    "click==8.5.0",
    "blinker==1.9.0",
    "sqlalchemy==2.0.54",
    "greenlet==3.5.6",
    "typing_extensions==4.16.0",
]


def main(argv):
    build = os.path.abspath(argv[1])
    venv = os.path.join(build, "venv-it")
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "heapsnap-pins.txt")
    want = hashlib.sha256("\n".join(PINS + [sys.version]).encode()).hexdigest()
    if os.path.exists(py) and os.path.exists(stamp) and open(stamp).read().strip() == want:
        print(py)
        return 0
    print("creating %s with %s" % (venv, " ".join(PINS)))
    p = subprocess.run([sys.executable, "-m", "venv", "--clear", venv])
    if p.returncode != 0:
        print("SKIP: cannot create a venv with %s -m venv (python3-venv missing?)" % sys.executable)
        return 77
    p = subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-input", "--timeout", "30", "--retries", "1", "--only-binary", ":all:"] + PINS, timeout=600,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        print(p.stdout.decode("utf-8", "replace")[-3000:])
        print("SKIP: pip could not install %s into %s" % (" ".join(PINS), venv))
        return 77
    with open(stamp, "w") as f:
        f.write(want + "\n")
    print(py)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
