#!/usr/bin/env python3
"""The pinned virtual environment the tracker's library tests run in:
BUILD/venv-track-X.Y-HASH (HASH of PY's real path), made by interpreter PY with numpy pinned for its
version (and, on 3.11, torch from the wheel in /opt/wheels when asked).
Made once; the pins and the interpreter's version are stamped.

usage: track_venv.py BUILD PY [torch]

Prints the venv's python on the last line of stdout and exits 0; exits 77
with the reason when the venv or the packages cannot be had.
"""
import glob
import hashlib
import os
import subprocess
import sys

NUMPY = {(3, 8): "numpy==1.24.4", (3, 9): "numpy==2.0.2"}
NUMPY_DEFAULT = "numpy==2.2.6"
TORCH_WHEEL = "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def version_of(py):
    out = subprocess.run([py, "-c", "import sys; print('%d %d' % sys.version_info[:2])"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return tuple(int(x) for x in out.split())


def main(argv):
    build, py = os.path.abspath(argv[1]), argv[2]
    want_torch = len(argv) > 3 and argv[3] == "torch"
    ver = version_of(py)
    pins = [NUMPY.get(ver, NUMPY_DEFAULT)]
    if want_torch:
        if ver != (3, 11) or not os.path.exists(TORCH_WHEEL):
            print("SKIP: torch is tested on 3.11 with %s only" % TORCH_WHEEL)
            return 77
        pins.append(TORCH_WHEEL)
    real = os.path.realpath(py)
    # one per interpreter: /usr/bin/python3 and pyenv's 3.11 are both 3.11
    tag = hashlib.sha256(real.encode()).hexdigest()[:8]
    name = "venv-track-%d.%d-%s%s" % (ver[0], ver[1], tag, "-torch" if want_torch else "")
    venv = os.path.join(build, name)
    vpy = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "heapsnap-pins.txt")
    want = hashlib.sha256("\n".join(pins + [real, "%d.%d" % ver]).encode()).hexdigest()
    if os.path.exists(vpy) and os.path.exists(stamp) and open(stamp).read().strip() == want:
        print(vpy)
        return 0
    print("creating %s with %s" % (venv, " ".join(pins)), flush=True)
    p = subprocess.run([py, "-m", "venv", "--clear", venv])
    if p.returncode != 0:
        print("SKIP: cannot create a venv with %s -m venv" % py)
        return 77
    p = subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-input", "--timeout", "30", "--retries", "1", "--only-binary", ":all:"]
                       + pins, timeout=1200, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        print(p.stdout.decode("utf-8", "replace")[-3000:])
        print("SKIP: cannot install %s for %d.%d (no network?)" % (" ".join(pins), ver[0], ver[1]))
        return 77
    with open(stamp, "w") as f:
        f.write(want + "\n")
    print(vpy)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
