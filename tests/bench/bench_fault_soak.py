"""Soak: kill `heapsnap dump PID` hundreds of times per interpreter at random
moments (seeded), in-process, fork and --children modes, and count how many
kills cut a dump short and how many targets survived. The same checks as
the test suite's tests/attach/fault_inject.py (which this runs), many more
kills; figures for docs/benchmarks.md.

usage: bench_fault_soak.py [--build build] [--kills 150] [--seed 7]
                           [--python PY ...]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PYTHONS = ["/root/.pyenv/versions/3.8.18/bin/python3", "/usr/bin/python3",
                   "/root/.pyenv/versions/3.13.0/bin/python3"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--kills", type=int, default=150, help="random kills per mode")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--python", action="append")
    a = ap.parse_args()
    cli = os.path.abspath(os.path.join(a.build, "heapsnap"))
    script = os.path.join(HERE, "..", "attach", "fault_inject.py")
    rows = []
    for py in a.python or DEFAULT_PYTHONS:
        if not os.path.exists(py):
            print("skip %s: not installed" % py)
            continue
        ver = subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True).stdout.strip()
        t0 = time.monotonic()
        c0 = os.times()
        r = subprocess.run([sys.executable, script, "--cli", cli, "--python", py, "--random",
                            str(a.kills), "--seed", str(a.seed), "--json"],
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
        c1 = os.times()
        line = [l for l in r.stdout.splitlines() if l.startswith("{")]
        if not line:
            print("%s: no figures (exit %d)\n%s\n%s" % (py, r.returncode, r.stdout[-2000:],
                                                        r.stderr[-2000:]))
            continue
        res = json.loads(line[-1])
        for mode, st in res["stats"].items():
            rows.append((ver + (" (Debian)" if py == "/usr/bin/python3" else ""), mode,
                         st["kills"], st["killed"], st["finished"], st["survived"]))
        fails = [l for l in r.stdout.splitlines() if l.startswith("FAIL")]
        print("%s: %d failures, %.0f s wall, %.0f s CPU (children)" %
              (py, res["failures"], wall, (c1.children_user + c1.children_system) -
               (c0.children_user + c0.children_system)))
        for f in fails[:20]:
            print("  " + f)
    print()
    print("| Python | mode | kills | cut a dump short | after it ended | target survived |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %d | %d | %d |" % r)


if __name__ == "__main__":
    main()
