#!/usr/bin/env python3
"""A numpy array of dtype object holds references to Python objects that
numpy's ndarray does not traverse (it has no tp_traverse): the walk reads
its slots itself (native.c hs_native_object_items), so the objects are in
the snapshot, each with an edge `[i]` from the array that owns the data,
in-process and in fork mode alike. A pandas object column's strings are
then retained by the frame (they were invisible: 2M strings of a column
showed up as 124 MiB of "pymalloc blocks no object owns")."""
import gc
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import hsnap  # noqa: E402

import numpy as np  # noqa: E402

import heapsnap  # noqa: E402

CLI = os.environ["HS_CLI"]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


N = 5000
arr = np.array(["obj-%d-%s" % (i, "x" * (i % 7)) for i in range(N)], dtype=object)
view = arr[::2]                       # a view: reaches the same objects through its base
empty = np.empty(0, dtype=object)
holes = np.empty(3, dtype=object)     # numpy fills with None
try:
    import pandas as pd
    frame = pd.DataFrame({"city": pd.Series(["city-%d" % i for i in range(N)], dtype=object),
                          "n": np.arange(N)})
except ImportError:
    pd = frame = None
gc.collect()
want = {("obj-%d-%s" % (i, "x" * (i % 7))).encode(): i for i in range(N)}

work = tempfile.mkdtemp(prefix="heapsnap-objarr-")
for mode in ("in-process", "fork"):
    path = os.path.join(work, mode + ".hsnap")
    heapsnap.dump(path, **({"fork": True, "wait": True} if mode == "fork" else {}))
    snap = hsnap.read(path)
    node = snap.nodes.get(id(arr))
    check(node is not None, "%s: the object array is a node" % mode)
    if node is None:
        continue
    items = {}
    for e in node.edges:
        if e.label_kind == hsnap.L_INDEX:
            items[e.label] = e.target
    found = 0
    for i in range(N):
        t = snap.nodes.get(items.get(i, 0))
        if t is not None and snap.type_name(t) == "str" and want.get(t.value) == i:
            found += 1
    check(found == N, "%s: all %d strings are nodes with an edge [i] from the array (%d found)" % (mode, N, found))
    vnode = snap.nodes.get(id(view))
    check(vnode is not None and not any(e.label_kind == hsnap.L_INDEX for e in vnode.edges),
          "%s: the view has no item edges (its base has them)" % mode)
    hnode = snap.nodes.get(id(holes))
    check(hnode is not None and sorted(e.target for e in hnode.edges if e.label_kind == hsnap.L_INDEX)
          == [id(None)] * 3, "%s: np.empty(3, object) holds three None" % mode)
    enode = snap.nodes.get(id(empty))
    check(enode is not None and not any(e.label_kind == hsnap.L_INDEX for e in enode.edges),
          "%s: an empty object array has no item edges" % mode)
    if frame is not None:
        p = subprocess.run([CLI, "dominators", "--json", "--address", "%#x" % id(frame), path],
                           capture_output=True, text=True)
        obj = json.loads(p.stdout)["object"] if p.returncode == 0 else {}
        strs = sum(n.size for n in snap.nodes.values()
                   if snap.type_name(n) == "str" and n.value and n.value.startswith(b"city-"))
        check(obj.get("retained", 0) >= strs > N * 48,
              "%s: the DataFrame retains its object column's %d strings (%d B; retained %s)"
              % (mode, N, strs, obj.get("retained")))

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all passed")
