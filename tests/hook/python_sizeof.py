"""Python-level __sizeof__ methods are honoured, also while other threads run
(they are called after the walk, not during it), and one that raises gives
the basic size flagged as estimated instead of an exception.
usage: python_sizeof.py HEAPSNAP_CLI"""
import json
import os
import subprocess
import sys
import tempfile
import threading

import heapsnap


class Sized:
    def __init__(self, n):
        self.n = n

    def __sizeof__(self):
        return 1000 + self.n


class Raises:
    def __sizeof__(self):
        raise ValueError("no size for you")


objs = [Sized(i) for i in range(50)]
bad = Raises()
stop = threading.Event()
spinner = threading.Thread(target=lambda: [None for _ in iter(lambda: stop.wait(0.001), True)],
                           name="spinner")
spinner.start()
try:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.hsnap")
        r = heapsnap.dump(path)
        out = subprocess.run([sys.argv[1], "summary", path, "--json", "--top", "0"],
                             capture_output=True, text=True)
finally:
    stop.set()
    spinner.join()
rows = {row["name"]: row for row in json.loads(out.stdout)["rows"]}
problems = []
want = sum(sys.getsizeof(o) for o in objs)
got = rows.get("__main__.Sized", {}).get("bytes")
if got != want:
    problems.append("Sized: %r bytes in the snapshot, sys.getsizeof says %d" % (got, want))
if rows.get("__main__.Raises", {}).get("count") != 1:
    problems.append("Raises missing from the snapshot")
if r["sizeof_errors"] < 1:
    problems.append("the raising __sizeof__ was not counted as an error: %r" % r)
for p in problems:
    print("FAIL", p)
print("Sized bytes %r (expected %d), errors %d" % (got, want, r["sizeof_errors"]))
sys.exit(1 if problems else 0)
