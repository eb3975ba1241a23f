#!/usr/bin/env python3
"""numpy data buffers found in C by the hook (heapsnap._heapsnap._native_buffers)
against numpy's own answers: an array that owns its data (flags.owndata) owns
one buffer at its data pointer of the bytes numpy allocated, which tracemalloc
sees under numpy's domain (numpy reports its data allocations there); views
own none. Runs in a venv with numpy 1.x or 2.x (the PyArray_Descr layouts
differ); with pandas there too, a DataFrame's buffers are its blocks' and its
index's (memory_usage(deep=False)) plus a few small bookkeeping arrays."""
import gc
import mmap
import sys
import tempfile
import tracemalloc

import numpy as np

from heapsnap import _heapsnap as hs

HOST, DEVICE, MAPPED = 0, 1, 2
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def data_ptr(a):
    return a.__array_interface__["data"][0]


def traced_alloc(make):
    """make() under tracemalloc: (result, sizes of the numpy-domain blocks it allocated)."""
    domain = np.lib.tracemalloc_domain
    tracemalloc.start()
    try:
        obj = make()
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, domain)])
    finally:
        tracemalloc.stop()
    return obj, sorted(t.size for t in snap.traces)


print("numpy %s" % np.__version__)
check(hs._native_notes() == "", "prepare checked numpy's layout: notes %r" % hs._native_notes())

cases = [
    ("float64 (1000, 7)", lambda: np.ones((1000, 7))),
    ("int8 13", lambda: np.zeros(13, dtype=np.int8)),
    ("complex128 (4, 5, 6)", lambda: np.full((4, 5, 6), 1j)),
    ("structured 100", lambda: np.zeros(100, dtype=[("a", "i4"), ("b", "f8"), ("c", "S3")])),
    ("object 50", lambda: np.array([object() for _ in range(50)] + [None], dtype=object)[:50].copy()),
    ("string U7 10", lambda: np.array(["abcdefg"] * 10)),
    ("0-d float32", lambda: np.array(3.0, dtype=np.float32)),
    ("empty float64 (0, 3)", lambda: np.empty((0, 3))),
    ("Fortran (17, 9)", lambda: np.asfortranarray(np.ones((17, 9)))),
]
for name, make in cases:
    a, sizes = traced_alloc(make)
    bufs = hs._native_buffers(a)
    want = max(a.nbytes, 1) if np.lib.NumpyVersion(np.__version__) >= "1.23.0" else (a.nbytes or a.itemsize or 1)
    check(len(bufs) == 1 and bufs[0][0] == "<native> numpy data" and bufs[0][1] == data_ptr(a)
          and bufs[0][2] == want and bufs[0][3] == HOST and want in sizes,
          "%s owns %r: numpy data at %#x of %d B (tracemalloc saw %r)" % (name, bufs, data_ptr(a), want, sizes[-3:]))

a = np.arange(10000, dtype=np.float64).reshape(100, 100)
for vname, v in (("slice", a[10:20]), ("transpose", a.T), ("reshape", a.reshape(-1)), ("view", a.view(np.int64)),
                 ("column", a[:, 3]), ("view of a view", a[1:][::2])):
    check(not v.flags.owndata and hs._native_buffers(v) == [], "a %s owns no buffer (its base chain leads to the owner)" % vname)
check(hs._native_buffers(np.frombuffer(b"x" * 800, dtype=np.uint8)) == [], "frombuffer over bytes owns nothing")


class Sub(np.ndarray):
    pass


s = np.ones(321).view(Sub).copy()
check([b[1:3] for b in hs._native_buffers(s)] == [(data_ptr(s), 321 * 8)], "an ndarray subclass owning its data")

r = np.ones(100)
r.resize(5000, refcheck=False)
check([b[1:3] for b in hs._native_buffers(r)] == [(data_ptr(r), 5000 * 8)], "an array resized in place: the new buffer")

with tempfile.NamedTemporaryFile() as f:
    f.write(b"\0" * 8192)
    f.flush()
    mm = np.memmap(f.name, dtype=np.float64, mode="r+")
    check(hs._native_buffers(mm) == [], "np.memmap owns no data buffer (its base mmap owns the mapping)")
    base = mm.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    check(isinstance(base, mmap.mmap) and [(b[2], b[3]) for b in hs._native_buffers(base)] == [(8192, MAPPED)],
          "np.memmap's base mmap: 8192 B mapped")
    del mm, base

for scalar in (np.float64(1.5), np.int32(3), np.dtype("f8")):
    check(hs._native_buffers(scalar) == [], "%s owns no data buffer" % type(scalar).__name__)

try:
    import pandas as pd
except ImportError:
    pd = None
if pd is not None:
    n = 20000
    df = pd.DataFrame({"f1": np.random.rand(n), "f2": np.random.rand(n), "i": np.arange(n, dtype=np.int64),
                       "s": np.arange(n, dtype=np.int32), "o": ["x%d" % (i % 100) for i in range(n)]},
                      index=pd.Index(np.arange(n, dtype=np.int64) * 2))
    truth = int(df.memory_usage(index=True, deep=False).sum())

    # every distinct buffer reachable from the frame (what the walk does:
    # referents, and an array's base, as the hook reads it)
    seen, buffers, stack = set(), {}, [df]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (type, type(sys), type(check))):
            continue
        seen.add(id(o))
        for b in hs._native_buffers(o):
            buffers[b[1]] = b[2]
        stack.extend(gc.get_referents(o))
        if isinstance(o, np.ndarray) and o.base is not None:
            stack.append(o.base)
    blocks = {}
    for blk in df._mgr.blocks:
        v = blk.values
        while isinstance(v, np.ndarray) and not v.flags.owndata:
            v = v.base
        blocks[data_ptr(v)] = v.nbytes
    idx = df.index.values
    blocks[data_ptr(idx if idx.flags.owndata else idx.base)] = df.index.nbytes
    check(sum(blocks.values()) == truth, "pandas %s: blocks + index nbytes = memory_usage(deep=False) = %d" % (pd.__version__, truth))
    check(all(buffers.get(k) == v for k, v in blocks.items()),
          "each block and the index is one buffer of its nbytes, found from the frame")
    rest = {k: v for k, v in buffers.items() if k not in blocks}
    check(sum(rest.values()) < 4096, "the other buffers reached are small bookkeeping (columns, block positions): %d B in %d"
          % (sum(rest.values()), len(rest)))

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all numpy checks passed")
