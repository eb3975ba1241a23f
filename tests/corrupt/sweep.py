#!/usr/bin/env python3
"""Corruption sweep: damaged snapshots must give exit status 2 and exactly
one error line naming the file, never a crash, a hang or a success.

usage: sweep.py HEAPSNAP_CLI FILE [--flips N] [--cuts N] [--seed S]

Truncates FILE at many offsets (every offset in the header, footer and
section boundaries, plus an even spread) and flips random bits, running
`heapsnap summary` (and `info`) on each damaged copy.

FILE may be an index (`.hsidx`, formats/index-v1.md): its damaged copies go
beside copies of the snapshots it names, and run through `summary`, `diff`
(against the intact index) and `leaks` (which takes snapshots: always an
error). A byte changed in JSON may leave a valid index (a digit of a
number), so `summary` and `diff` may also succeed; anything else than
success or one error line is a failure.
"""
import argparse
import glob
import os
import random
import shutil
import subprocess
import sys
import tempfile


def run(cli, cmd, path, extra=(), may_succeed=False):
    argv = [cli, cmd] + ([path, path, path] if cmd == "leaks" else [path]) + list(extra)
    try:
        p = subprocess.run(argv, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "hang (over 30 s)"
    err = p.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip()]
    if may_succeed and p.returncode == 0 and p.stdout:
        return None
    if p.returncode != 2:
        return "exit status %d (expected 2); stderr: %r" % (p.returncode, err[-500:])
    if len(lines) != 1:
        return "%d stderr lines (expected 1): %r" % (len(lines), err[-500:])
    if not lines[0].startswith("heapsnap: ") or path not in lines[0]:
        return "error line does not name the file: %r" % lines[0]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("snapshot")
    ap.add_argument("--flips", type=int, default=150)
    ap.add_argument("--cuts", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    data = open(args.snapshot, "rb").read()
    index = args.snapshot.endswith(".hsidx")
    rng = random.Random(args.seed)
    n = len(data)
    cuts = set(range(0, min(n, 64))) | set(range(max(0, n - 64), n))
    cuts |= {i * n // args.cuts for i in range(args.cuts)}
    cases = [("cut at %d" % c, data[:c]) for c in sorted(cuts)]
    for _ in range(args.flips):
        i = rng.randrange(n)
        b = bytearray(data)
        b[i] ^= 1 << rng.randrange(8)
        cases.append(("bit flip at %d" % i, bytes(b)))
    for _ in range(20):
        i = rng.randrange(n)
        b = bytearray(data)
        for k in range(i, min(n, i + 16)):
            b[k] = rng.randrange(256)
        cases.append(("garbage at %d" % i, bytes(b)))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="heapsnap-sweep-") as d:
        if index:
            # the members, and the intact index to diff against
            for m in glob.glob(os.path.join(os.path.dirname(os.path.abspath(args.snapshot)), "*.hsnap")):
                shutil.copyfile(m, os.path.join(d, os.path.basename(m)))
            good = os.path.join(d, "intact.hsidx")
            shutil.copyfile(args.snapshot, good)
            path = os.path.join(d, "damaged.hsidx")
            runs = (("summary", (), True), ("diff", (good,), True), ("leaks", (), False))
        else:
            path = os.path.join(d, "damaged.hsnap")
        for name, content in cases:
            with open(path, "wb") as f:
                f.write(content)
            if index:
                todo = runs
            else:
                todo = [(c, (), False) for c in (("summary", "info") if name.startswith("cut") else ("summary",))]
            for cmd, extra, may_succeed in todo:
                problem = run(args.cli, cmd, path, extra, may_succeed)
                if problem:
                    failures += 1
                    print("FAIL %s (%s): %s" % (name, cmd, problem))
    print("corruption sweep: %d damaged copies of %s (%d bytes), %d failures"
          % (len(cases), os.path.basename(args.snapshot), n, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
