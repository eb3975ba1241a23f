#!/usr/bin/env python3
"""Native buffers of the standard library's exporters, found in C by the
hook (heapsnap._heapsnap._native_buffers), against what Python says of the
same objects: array.array's item buffer (address from buffer_info(), bytes
from sys.getsizeof's allocated x itemsize), mmap.mmap's mapping (address
through ctypes, length), and nothing for bytes, bytearray and memoryview
(their bytes are the object's own size or their base's)."""
import array
import mmap
import sys
import tempfile

from heapsnap import _heapsnap as hs

HOST, DEVICE, MAPPED = 0, 1, 2
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


check(hs._native_notes() == "", "prepare used every loaded library: notes %r" % hs._native_notes())

for tc, init in (("b", range(7)), ("i", range(1000)), ("d", [0.5] * 33), ("Q", range(5)), ("f", [1.5] * 9)):
    a = array.array(tc, init)
    a.extend(a[:3])  # grown: allocated > len, as the allocator holds it
    bufs = hs._native_buffers(a)
    held = sys.getsizeof(a) - sys.getsizeof(array.array(tc))  # allocated * itemsize
    check(len(bufs) == 1 and bufs[0][0] == "<native> array.array items" and bufs[0][1] == a.buffer_info()[0]
          and bufs[0][2] == held and bufs[0][3] == HOST,
          "array('%s') of %d: %r == items at %#x, %d B" % (tc, len(a), bufs, a.buffer_info()[0], held))
check(hs._native_buffers(array.array("d")) == [], "an empty array.array owns no buffer")


class MyArray(array.array):
    pass


s = MyArray("h", range(100))
check([b[1:3] for b in hs._native_buffers(s)] == [(s.buffer_info()[0], sys.getsizeof(s) - sys.getsizeof(MyArray("h")))],
      "an array.array subclass: its items")

try:
    import ctypes
except ImportError:
    ctypes = None


def address(m):
    if ctypes is None:
        return None
    c = ctypes.c_char.from_buffer(m)
    try:
        return ctypes.addressof(c)
    finally:
        del c


m = mmap.mmap(-1, 5 * 4096)
bufs = hs._native_buffers(m)
want = address(m)
check(len(bufs) == 1 and bufs[0][0] == "<native> mmap" and bufs[0][2] == 5 * 4096 and bufs[0][3] == MAPPED
      and (want is None or bufs[0][1] == want), "anonymous mmap: %r (mapping at %r)" % (bufs, want))
with tempfile.TemporaryFile() as f:
    f.write(b"x" * 10000)
    f.flush()
    fm = mmap.mmap(f.fileno(), 0)
    bufs = hs._native_buffers(fm)
    check(len(bufs) == 1 and bufs[0][2] == 10000 and bufs[0][3] == MAPPED, "file mmap of 10000 B: %r" % bufs)
    fm.close()
    check(hs._native_buffers(fm) == [], "a closed mmap owns nothing")
m.close()

for obj in (b"x" * 100000, bytearray(100000), memoryview(bytearray(1000)), memoryview(array.array("d", [1.0] * 10)),
            "text", 12345, [1, 2], None):
    check(hs._native_buffers(obj) == [], "%s owns no native buffer of its own" % type(obj).__name__)

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all native stdlib checks passed")
