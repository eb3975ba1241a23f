"""Lists every Python interpreter on this machine, says which ones the
integration tests run under and why the others are skipped, and checks that
the hook imports under each tested one.

usage: run_interpreters.py --cli CLI --build BUILD --tested PY [PY...]
"""
import glob
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402


def candidates():
    found = ["/usr/bin/python3"]
    for p in sorted(glob.glob("/root/.pyenv/versions/*/bin/python[23].*")):
        base = os.path.basename(p)
        if base.count(".") == 1 and base.replace("python", "").replace(".", "").isdigit():
            found.append(p)
    return [p for p in found if os.path.exists(p)]


def version(py):
    try:
        p = subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.stdout.decode().strip() if p.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def main():
    ap = T.parser(__doc__)
    ap.add_argument("--tested", nargs="*", default=[])
    args = ap.parse_args()
    tested = [os.path.realpath(p) for p in args.tested]
    print("interpreters found on this machine:")
    for py in candidates():
        v = version(py)
        real = os.path.realpath(py)
        if real in tested or py in args.tested:
            p = subprocess.run([py, "-c", "import heapsnap; heapsnap.dump"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=T.env_for_hook(args.build))
            ok = p.returncode == 0
            q = subprocess.run([py, "-c", "import numpy; print(numpy.__version__)"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            npy = ("numpy %s" % q.stdout.decode().strip() if q.returncode == 0
                   else "no numpy: python.numpy.* for it is skipped")
            print("  %-45s %-8s tested (%s)" % (py, v, npy))
            T.check(ok, "the hook imports under %s (%s)" % (py, v),
                    p.stderr.decode("utf-8", "replace").strip()[-800:])
        else:
            if v is None:
                why = "does not run"
            else:
                mm = tuple(int(x) for x in v.split(".")[:2])
                if mm < (3, 8) or mm > (3, 13):
                    why = "Python %s is not supported (3.8-3.13)" % v
                else:
                    why = "not configured (no headers, free-threaded, or not in HEAPSNAP_PYTHONS)"
            print("  %-45s %-8s SKIPPED: %s" % (py, v or "?", why))
    T.check(len(args.tested) >= 1, "at least one interpreter is tested")
    T.finish()


if __name__ == "__main__":
    main()
