"""Python-level __sizeof__ methods are never called by a dump (format 1.1:
node sizes are real bytes computed in C; what sys.getsizeof would report is
recorded only where it is known without running Python code), also while
other threads run; one that raises changes nothing. The objects' sizes are
their allocator blocks, the same as for a class without __sizeof__.
usage: python_sizeof.py HEAPSNAP_CLI"""
import json
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import hsnap  # noqa: E402
import heapsnap  # noqa: E402

CALLS = []


class Sized:
    def __init__(self, n):
        self.n = n

    def __sizeof__(self):
        CALLS.append(self)
        return 1000 + self.n


class Plain:
    def __init__(self, n):
        self.n = n


class Raises:
    def __sizeof__(self):
        CALLS.append(self)
        raise ValueError("no size for you")


objs = [Sized(i) for i in range(50)]
plain = [Plain(i) for i in range(50)]
bad = Raises()
stop = threading.Event()
spinner = threading.Thread(target=lambda: [None for _ in iter(lambda: stop.wait(0.001), True)],
                           name="spinner")
spinner.start()
try:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.hsnap")
        r = heapsnap.dump(path)
        snap = hsnap.read(path)
        out = subprocess.run([sys.argv[1], "summary", path, "--json", "--top", "0"],
                             capture_output=True, text=True)
finally:
    stop.set()
    spinner.join()
rows = {row["name"]: row for row in json.loads(out.stdout)["rows"]}
problems = []
if CALLS:
    problems.append("a Python __sizeof__ ran during the dump (%d calls)" % len(CALLS))
sized = [snap.nodes[id(o)] for o in objs]
plains = [snap.nodes[id(o)] for o in plain]
if [n.size for n in sized] != [n.size for n in plains]:
    problems.append("Sized and Plain instances differ in real size: %r vs %r"
                    % (sized[0].size, plains[0].size))
if any(snap.getsizeof(n) is not None for n in sized):
    problems.append("a REPORTED entry for an object whose getsizeof needs Python code")
if any(n.flags & hsnap.F_EST for n in sized):
    problems.append("Sized flagged estimated (a Python __sizeof__ sizes other objects)")
got = rows.get("__main__.Sized", {}).get("bytes")
want = sum(n.size for n in sized)
if got != want:
    problems.append("summary: Sized %r bytes, the nodes sum to %d" % (got, want))
if rows.get("__main__.Raises", {}).get("count") != 1:
    problems.append("Raises missing from the snapshot")
if r["sizeof_errors"] != 0:
    problems.append("sizeof errors counted: %r" % r)
for p in problems:
    print("FAIL", p)
print("Sized bytes %r (nodes %d), Plain %d, Python __sizeof__ calls %d" %
      (got, want, sum(n.size for n in plains), len(CALLS)))
sys.exit(1 if problems else 0)
