"""A numpy view keeps its base array alive through `.base`: the snapshot must
have that edge (ndarray has no tp_traverse), the buffer is counted once (a
native node the base owns, format 1.1) and not by the view. Exit 77 (skip) where numpy is not importable."""
import os
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integration"))
try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not importable in %s" % sys.executable)
    sys.exit(77)
import heapsnap
import hsnap

base = np.zeros(1_250_000)  # 10,000,000 bytes
view = base[::2]
expect_base = sys.getsizeof(base)
expect_view = sys.getsizeof(view)
base_id = id(base)
del base
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "np.hsnap")
    heapsnap.dump(path)
    s = hsnap.read(path)
node = s.nodes[base_id]
vnode = s.nodes[id(view)]
problems = []
# format 1.1: the buffer is a native node the base owns ("data"), counted
# once; sys.getsizeof's figures (the base's includes it) are in REPORTED
data = [s.nodes.get(e.target) for e in node.edges if s.label_text(e) == "data"]
if len(data) != 1 or data[0] is None or data[0].size != 10_000_000:
    problems.append("the base's data buffer: %r" % data)
if s.getsizeof(node) != expect_base or node.size >= 1_000_000:
    problems.append("base size %d, REPORTED %r, sys.getsizeof says %d" % (node.size, s.getsizeof(node), expect_base))
if s.getsizeof(vnode) != expect_view or vnode.size >= 1_000_000:
    problems.append("view size %d, REPORTED %r (getsizeof %d): the buffer must not count twice"
                    % (vnode.size, s.getsizeof(vnode), expect_view))
if sum(n.size for n in s.nodes.values() if n.size >= 1_000_000) != 10_000_000:
    problems.append("the 10 MB buffer is not counted exactly once")
refs = [(s.type_name(r), s.label_text(e)) for r, e in s.referrers(base_id)]
if ("numpy.ndarray", ".base") not in refs:
    problems.append("no .base edge from the view to its base: referrers %r" % refs)
for p in problems:
    print("FAIL", p)
print("numpy view/base: %s" % ("ok" if not problems else "%d problems" % len(problems)))
sys.exit(1 if problems else 0)
