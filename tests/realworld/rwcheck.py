"""Shared checks for the real-world fixture programs (imported by them).

sizes(path): measure sys.getsizeof of every object the GC lists and of
everything they refer to, dump right after (GC paused, so nothing moves in
between), and check that every such object is in the snapshot and that
the snapshot's getsizeof figure (REPORTED, format 1.1) equals sys.getsizeof
wherever it is known (node sizes are allocator bytes; tests/sizes checks
those against tracemalloc).
cli(*args): run the heapsnap CLI (HS_CLI) and return its stdout.
fail(msg) / done(): collect problems and exit 1 if there were any.
"""
import gc
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import hsnap  # noqa: E402
import heapsnap  # noqa: E402

CLI = os.environ.get("HS_CLI", "heapsnap")
WORK = os.environ.get("HS_WORK", "/tmp")
problems = []


def path(name):
    return os.path.join(WORK, name)


def fail(msg):
    problems.append(msg)
    print("FAIL", msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def sizes(snap_path, limit=20):
    """Dump to snap_path; every object is a node whose known getsizeof figure is sys.getsizeof's."""
    gc.disable()
    want = {}
    for o in gc.get_objects():
        for x in [o] + gc.get_referents(o):
            want.setdefault(id(x), x)
    # Measured once every reference this check holds exists: a BytesIO
    # counts its buffer only while nothing else references it.
    for addr, x in want.items():
        try:
            want[addr] = (x, sys.getsizeof(x))
        except Exception:
            want[addr] = (x, None)
    r = heapsnap.dump(snap_path)
    gc.enable()
    s = hsnap.read(snap_path)
    bad = unknown = 0
    for addr, (x, size) in want.items():
        n = s.nodes.get(addr)
        if n is None:
            fail("%s at %#x is alive but not in the snapshot" % (type(x).__name__, addr))
            continue
        reported = s.getsizeof(n)
        if reported is None:
            unknown += 1  # a type with a Python-level __sizeof__: never called
        elif size is not None and reported != size:
            bad += 1
            if bad <= limit:
                fail("%s %.60r: getsizeof %d in the snapshot, sys.getsizeof %d"
                     % (type(x).__name__, x, reported, size))
    print("sizes: %d objects compared, %d differ, %d without a getsizeof figure" % (len(want), bad, unknown))
    want.clear()
    return r, s


def cli(*args):
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        fail("heapsnap %s exited %d: %s" % (" ".join(map(str, args)), p.returncode, p.stderr[-500:]))
    return p.stdout


def cli_json(*args):
    out = cli(*(args + ("--json",)))
    try:
        return json.loads(out)
    except ValueError:
        fail("heapsnap %s --json: not JSON: %.200r" % (" ".join(map(str, args)), out))
        return {}


def done():
    print("%d problems" % len(problems))
    sys.exit(1 if problems else 0)
