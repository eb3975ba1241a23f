"""A numpy view keeps its base array alive through `.base`: the snapshot must
have that edge (ndarray has no tp_traverse), the base counts its buffer once
and the view does not. Exit 77 (skip) where numpy is not importable."""
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
if node.size != expect_base:
    problems.append("base size %d, sys.getsizeof says %d" % (node.size, expect_base))
if vnode.size != expect_view or vnode.size >= 1_000_000:
    problems.append("view size %d (getsizeof %d): the buffer must not count twice" % (vnode.size, expect_view))
refs = [(s.type_name(r), s.label_text(e)) for r, e in s.referrers(base_id)]
if ("numpy.ndarray", ".base") not in refs:
    problems.append("no .base edge from the view to its base: referrers %r" % refs)
for p in problems:
    print("FAIL", p)
print("numpy view/base: %s" % ("ok" if not problems else "%d problems" % len(problems)))
sys.exit(1 if problems else 0)
