"""Quick self-check of the hook: run with the built package on PYTHONPATH.

    PYTHONPATH=build/python python3 tests/integration/hook_smoke.py

Checks that dump() writes a complete snapshot (header magic, footer, mode
0600, no temporary file left), that its figures are sane, that the GC state
and exception state are restored, that failures raise instead of crashing,
that a deep chain does not recurse, that a dump from a second thread works,
and that the runner takes snapshots at exit and keeps the exit status.
Exits 0 on success; prints what failed otherwise.
"""
import gc
import os
import stat
import subprocess
import sys
import tempfile
import threading

import heapsnap

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def check_file(path):
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89HSN\r\n\x1a\n", "%s: header magic" % path)
    check(data[-8:] == b"HSNAPEND", "%s: footer magic" % path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check(mode == 0o600, "%s: mode %o, expected 600" % (path, mode))
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if ".tmp." in n]
    check(not leftovers, "temporary files left: %s" % leftovers)
    return len(data)


class Fixture:
    def __init__(self, i):
        self.items = list(range(i, i + 5))
        self.names = {"k%d" % j: "v%d" % j for j in range(3)}


def main():
    tmp = tempfile.mkdtemp(prefix="hs-smoke-")
    keep = [Fixture(i) for i in range(1000)]
    deep = None
    for _ in range(200000):
        deep = [deep]

    enabled = gc.isenabled()
    path = os.path.join(tmp, "a.hsnap")
    r = heapsnap.dump(path)
    size = check_file(path)
    check(r["path"] == path, "result path")
    check(r["bytes"] == size, "result bytes == file size")
    check(r["objects"] > 200000 + 1000 * 10, "objects counted: %d" % r["objects"])
    check(r["edges"] >= 200000, "edges counted")
    check(r["roots"] > 0 and r["types"] > 0, "roots and types")
    check(0 <= r["pause_seconds"] <= r["seconds"], "timings")
    check(gc.isenabled() == enabled, "gc state restored")

    gc.disable()
    heapsnap.dump(path, collect=True)
    check(not gc.isenabled(), "disabled gc stays disabled")
    if enabled:
        gc.enable()

    try:
        raise KeyError("pending")
    except KeyError:
        heapsnap.dump(path)
        check(isinstance(sys.exc_info()[1], KeyError), "exception state preserved")

    try:
        heapsnap.dump(os.path.join(tmp, "missing", "x.hsnap"))
        check(False, "OSError for an unwritable path")
    except OSError as e:
        check("missing" in str(e), "OSError names the path: %s" % e)
    check(gc.isenabled() == enabled, "gc state restored after an error")

    class BadSize:
        def __sizeof__(self):
            raise ValueError("no size")
    bad = [BadSize() for _ in range(3)]
    r = heapsnap.dump(path)
    check(r["sizeof_errors"] >= 3 or r["sizeof_skipped"] >= 3, "__sizeof__ errors recorded")

    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", heapsnap.dump(os.path.join(tmp, "t.hsnap"))))
    t.start()
    t.join()
    check("r" in out and out["r"]["objects"] > 0, "dump from a second thread")

    script = os.path.join(tmp, "script.py")
    with open(script, "w") as f:
        f.write("import sys\ndata = [str(i) for i in range(1000)]\nsys.exit(3)\n")
    snaps = os.path.join(tmp, "runs")
    p = subprocess.run([sys.executable, "-m", "heapsnap._runner", "--out", snaps, "--at-exit",
                        "--", script], stderr=subprocess.PIPE, universal_newlines=True)
    check(p.returncode == 3, "runner keeps the exit status (%d)" % p.returncode)
    names = sorted(os.listdir(snaps)) if os.path.isdir(snaps) else []
    check(len(names) == 1 and names[0].endswith("-1.hsnap"),
          "runner wrote one snapshot: %s" % names)
    check("heapsnap: wrote " in p.stderr, "runner prints a line: %r" % p.stderr)
    for n in names:
        check_file(os.path.join(snaps, n))

    del keep, deep, bad
    print("hook smoke: %s (%s, %d objects)" % ("FAILED" if failures else "ok",
                                                sys.version.split()[0], r["objects"]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
