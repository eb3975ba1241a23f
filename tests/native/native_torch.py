#!/usr/bin/env python3
"""torch storages found in C by the hook (heapsnap._heapsnap._native_buffers)
against torch's own answers (untyped_storage().data_ptr() and .nbytes()):
a model's parameters, gradients and Adam state are the distinct storages
torch says they are, views/parameters/.data share one, torch.from_numpy
shares the numpy buffer's address, a meta tensor holds 0 bytes."""
import sys

import numpy as np
import torch

from heapsnap import _heapsnap as hs

HOST, DEVICE, MAPPED = 0, 1, 2
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def one(t):
    bufs = hs._native_buffers(t)
    return bufs[0] if len(bufs) == 1 else None


print("torch %s, numpy %s" % (torch.__version__, np.__version__))
check(hs._native_notes() == "", "prepare found and checked the tensor and storage layouts: notes %r" % hs._native_notes())

torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(32 * 12 * 12, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for _ in range(2):
    x = torch.randn(8, 3, 16, 16)
    loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (8,)))
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()

tensors = list(model.parameters()) + [p.grad for p in model.parameters()]
for st in opt.state.values():
    tensors += [v for v in st.values() if torch.is_tensor(v)]
truth = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
found = {}
for t in tensors:
    b = one(t)
    if b is None or b[0] != "<native> torch storage" or b[3] != HOST:
        check(False, "tensor %s: %r" % (tuple(t.shape), hs._native_buffers(t)))
        continue
    found[b[1]] = b[2]
check(found == truth, "parameters + gradients + Adam state: %d distinct storages, %d B (torch: %d, %d B)"
      % (len(found), sum(found.values()), len(truth), sum(truth.values())))
params = sum(p.untyped_storage().nbytes() for p in model.parameters())
check(sum(found.values()) >= 4 * params, "and that is at least 4 x the parameters' %d B (weights, grads, exp_avg, exp_avg_sq)" % params)

base = torch.arange(6000, dtype=torch.float32).reshape(60, 100)
want = (base.untyped_storage().data_ptr(), 24000)
for name, v in (("slice", base[5:9]), ("transpose", base.t()), ("view", base.view(-1)), ("detach", base.detach()),
                ("as_strided", base.as_strided((10,), (7,), 3)), ("storage object", base.untyped_storage())):
    b = one(v)
    check(b is not None and (b[1], b[2]) == want, "a %s shares its base's storage: %r" % (name, b))
p = model[0].weight
check(one(p.data)[1:3] == one(p)[1:3] == (p.untyped_storage().data_ptr(), p.untyped_storage().nbytes()),
      "a parameter and its .data are one storage")

a = np.arange(1000, dtype=np.float64)
t = torch.from_numpy(a)
nb = hs._native_buffers(a)
check(nb and one(t) is not None and one(t)[1] == nb[0][1] == a.__array_interface__["data"][0] and one(t)[2] == 8000,
      "torch.from_numpy shares the numpy buffer's address: %r / %r" % (one(t), nb))
check(hs._native_buffers(t.numpy()) == [], "and .numpy() of that tensor owns nothing new (a view of the same memory)")

m1, m2 = torch.empty(1000, device="meta"), torch.empty(1000, device="meta")
b1, b2 = one(m1), one(m2)
check(b1 is not None and b2 is not None and b1[2] == 0 and b2[2] == 0 and b1[1] != b2[1],
      "meta tensors: 0 bytes each, two distinct storages: %r %r" % (b1, b2))
e = one(torch.empty(0))
check(e is not None and e[2] == 0, "an empty tensor: one storage of 0 bytes: %r" % (e,))
check(one(torch.ones(3, dtype=torch.float64))[2] == 24, "a 3-element float64 tensor: 24 bytes")

sp = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (5,), check_invariants=True)
check(hs._native_buffers(sp) == [], "a sparse tensor has no storage of its own (its indices and values are C++ tensors)")

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all torch checks passed")
