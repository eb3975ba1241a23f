#!/usr/bin/env python3
"""End to end: native buffers in a real snapshot (heapsnap.dump, in-process
and fork mode), read back by the independent reader (tests/integration/hsnap.py)
and by the CLI (summary --json): a torch model's parameters, gradients and
Adam state are '<native> torch storage' nodes with exactly the bytes torch
says (untyped_storage().nbytes(), each storage once), tensors and parameters
point at them with a 'storage' edge, a view points at its base's storage, a
meta tensor's storage holds 0 bytes, a numpy array's buffer is one
'<native> numpy data' node; fork mode gives the same totals (within 2%)."""
import gc
import json
import os
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import hsnap  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import heapsnap  # noqa: E402

CLI = os.environ["HS_CLI"]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 14 * 14, 512),
    torch.nn.ReLU(), torch.nn.Linear(512, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for _ in range(2):
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.randint(0, 10, (4,)))
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()
del loss
view = model[3].weight[7:]                        # a view: its base's storage
meta = torch.empty(10 ** 6, device="meta")         # no data: 0 bytes
arr = np.ones((500, 1000))                         # 4,000,000 B of numpy data
gc.collect()
warnings.simplefilter("ignore")  # isinstance() on torch's deprecated aliases below

owned = list(model.parameters()) + [p.grad for p in model.parameters()]
for st in opt.state.values():
    owned += [v for v in st.values() if torch.is_tensor(v)]
truth = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in owned}
# every tensor alive: the storages the walk must find (non-null data)
alive = {}
for o in gc.get_objects():
    if isinstance(o, torch.Tensor) and o.layout == torch.strided and o.device.type == "cpu":
        s = o.untyped_storage()
        if s.data_ptr():
            alive[s.data_ptr()] = s.nbytes()
print("model+grads+Adam: %d storages, %d B; %d CPU storages alive, %d B"
      % (len(truth), sum(truth.values()), len(alive), sum(alive.values())))


def storages(snap):
    return {n.address: n.size for n in snap.by_type("<native> torch storage")}


def summary_bytes(path, name):
    p = subprocess.run([CLI, "summary", "--json", "--top", "500", path], capture_output=True, text=True)
    if p.returncode != 0:
        check(False, "summary --json: %s" % p.stderr.strip())
        return None
    v = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "integration", "validate_json.py"),
                        os.path.join(HERE, "..", "..", "formats", "summary.schema.json")],
                       input=p.stdout, capture_output=True, text=True)
    check(v.returncode == 0, "summary --json validates against formats/summary.schema.json %s" % v.stdout.strip()[-300:])
    rows = [r for r in json.loads(p.stdout).get("rows", []) if r["name"] == name]
    return rows[0]["bytes"] if rows else 0


totals = {}
with tempfile.TemporaryDirectory(prefix="hs-native-") as work:
    for mode in ("in-process", "fork"):
        path = os.path.join(work, "%s.hsnap" % mode)
        heapsnap.dump(path, **({"fork": True, "wait": True} if mode == "fork" else {}))
        snap = hsnap.read(path)
        got = storages(snap)
        sub = {a: got.get(a) for a in truth}
        check(sub == truth, "%s: parameters + gradients + Adam state are %d storage nodes of exactly %d B (%s)"
              % (mode, len(truth), sum(truth.values()),
                 "ok" if sub == truth else [(hex(a), truth[a], got.get(a)) for a in truth if got.get(a) != truth[a]][:5]))
        live = {a: b for a, b in got.items() if b}
        check(live == alive, "%s: the storage nodes with bytes are the CPU storages alive: %d nodes %d B, torch says %d, %d B"
              % (mode, len(live), sum(live.values()), len(alive), sum(alive.values())))
        w = model[3].weight
        sa = w.untyped_storage().data_ptr()
        for name, t in (("a parameter", w), ("a view", view)):
            node = snap.nodes.get(id(t))
            edges = [snap.label_text(e) for e in node.edges if e.target == sa] if node else []
            check(edges == ["storage"], "%s: %s -> its storage, labelled 'storage': %r" % (mode, name, edges))
        node = snap.nodes.get(id(meta))
        mt = [snap.nodes.get(e.target) for e in node.edges if snap.label_text(e) == "storage"] if node else []
        check(len(mt) == 1 and mt[0] is not None and mt[0].size == 0, "%s: the meta tensor's storage holds 0 B" % mode)
        node = snap.nodes.get(id(arr))
        nd = [snap.nodes.get(e.target) for e in node.edges if snap.label_text(e) == "data"] if node else []
        check(len(nd) == 1 and nd[0] is not None and nd[0].address == arr.__array_interface__["data"][0]
              and nd[0].size == 4000000 and snap.type_name(nd[0]) == "<native> numpy data",
              "%s: the numpy array -> its data, one node of 4,000,000 B" % mode)
        s = summary_bytes(path, "<native> torch storage")
        check(s == sum(got.values()), "%s: summary's '<native> torch storage' row: %r B = the nodes' %d B" % (mode, s, sum(got.values())))
        totals[mode] = sum(got.values())
        notes = json.dumps(snap.meta)
        check("torch:" not in notes and "numpy:" not in notes, "%s: no library left uncounted in the notes" % mode)
a, b = totals["in-process"], totals["fork"]
check(abs(a - b) <= 0.02 * a, "fork mode's storage total %d B within 2%% of in-process %d B" % (b, a))

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all end-to-end native checks passed")
