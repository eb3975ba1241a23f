"""heapsnap.track with the LD_PRELOAD interposer (libheapsnap_preload.so).

usage: LD_PRELOAD=.../libheapsnap_preload.so track_native.py
       (PYTHONPATH has the built package)

Checks: native blocks allocated with the GIL held (ctypes.PyDLL malloc) are
charged to the Python line; without the GIL (ctypes.CDLL releases it) to the
line too once its code object is known; a native thread with no Python frame
to "native, thread NAME"; a Python block that reaches malloc through
PyMem_RawMalloc is counted once; the running total sees native memory; a
numpy buffer (skipped with a message when numpy is not importable); the
interposer is pass-through once tracking stops.

Large native blocks count their resident pages: the blocks are written
(memset) where their bytes are expected live; an untouched one is live for
the page or so malloc wrote, and reserved for its size.
"""
import ctypes
import os
import sys
import threading

import importlib

# the module (heapsnap.track may also name the function exported by the package)
hst = importlib.import_module("heapsnap._track")

FAILED = []
MB = 1 << 20


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def lineno(tag):
    with open(__file__) as f:
        for i, text in enumerate(f, 1):
            if ("# " + tag) in text and "lineno(" not in text:
                return i
    raise LookupError(tag)


def row(t, line):
    for r in t.lines(top=None, file=__file__):
        if r.line == line:
            return r
    return None


libc_gil = ctypes.PyDLL(None)
libc_gil.malloc.restype = ctypes.c_void_p
libc_gil.malloc.argtypes = [ctypes.c_size_t]
libc_gil.free.argtypes = [ctypes.c_void_p]
libc_nogil = ctypes.CDLL(None)
libc_nogil.malloc.restype = ctypes.c_void_p
libc_nogil.malloc.argtypes = [ctypes.c_size_t]
libc_nogil.free.argtypes = [ctypes.c_void_p]
libc_nogil.memset.restype = ctypes.c_void_p
libc_nogil.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def touched(p, n):
    libc_nogil.memset(p, 1, n)
    return p


def native_blocks():
    keep = touched(libc_gil.malloc(40 * MB), 40 * MB)  # NATIVE_GIL
    gone = touched(libc_gil.malloc(30 * MB), 30 * MB)  # NATIVE_TEMP
    libc_gil.free(gone)
    nogil = touched(libc_nogil.malloc(20 * MB), 20 * MB)  # NATIVE_NOGIL
    reserved = libc_gil.malloc(24 * MB)  # NATIVE_RESERVED
    return keep, nogil, reserved


def python_block():
    return bytes(2 * MB)  # PY_RAW


def test_native():
    check(hst._heapsnap._track_status()["native_available"], "native: the interposer is loaded")
    with hst.track(seed=5, native=True) as t:
        keep, nogil, reserved = native_blocks()
        pb = python_block()
    check(t.totals["native"], "native: tracking native memory")
    r = row(t, lineno("NATIVE_GIL"))
    check(r is not None and abs(r.live_bytes - 40 * MB) < 0.001 * 40 * MB,
          "native: malloc with the GIL held is charged to the line (%s)" % (r and r.live_bytes))
    r = row(t, lineno("NATIVE_TEMP"))
    check(r is not None and r.live_bytes == 0 and r.peak_bytes >= 30 * MB,
          "native: a freed native block is in the peak, not live (%s, %s)" % (
              r and r.live_bytes, r and r.peak_bytes))
    r = row(t, lineno("NATIVE_NOGIL"))
    check(r is not None and r.live_bytes >= 20 * MB,
          "native: malloc without the GIL is charged to the line (%s)" % (r and r.live_bytes))
    r = row(t, lineno("PY_RAW"))
    check(r is not None and r.allocations == 1 and abs(r.live_bytes - sys.getsizeof(pb)) < 64,
          "native: a Python block reaching malloc is counted once (%s)" % (r and r.allocations))
    check(t.peak_bytes >= 70 * MB, "native: the running total includes native memory (%d)" % t.peak_bytes)
    r = row(t, lineno("NATIVE_RESERVED"))
    check(r is not None and r.live_bytes < 64 * 1024 and r.reserved_bytes == 24 * MB,
          "native: an untouched block is reserved, not resident (live %s, reserved %s)" % (
              r and r.live_bytes, r and r.reserved_bytes))
    check(t.peak_bytes < 40 * MB + 30 * MB + 20 * MB + 8 * MB,
          "native: the peak leaves the untouched 24 MiB out (%d)" % t.peak_bytes)
    libc_gil.free(keep)
    libc_gil.free(nogil)
    libc_gil.free(reserved)


def test_native_thread():
    def run():
        libc_nogil.free(touched(libc_nogil.malloc(8 * MB), 8 * MB))
        x = touched(libc_nogil.malloc(6 * MB), 6 * MB)  # noqa: kept
        box.append(x)
    box = []
    with hst.track(exact=True, native=True) as t:
        # a thread whose only Python frame is threading's: the block is
        # charged to its innermost frame, or "native, thread NAME"
        th = threading.Thread(target=run, name="cworker")
        th.start()
        th.join()
    per = {d["name"]: d for d in t.threads()}
    check("cworker" in per and per["cworker"]["live_bytes"] >= 6 * MB,
          "native: thread name on native blocks (%s)" % sorted(k for k in per if k))
    libc_nogil.free(box[0])


def test_numpy():
    try:
        import numpy as np
    except ImportError:
        print("skip: numpy is not importable on this interpreter", flush=True)
        return
    with hst.track(seed=11) as t:
        a = np.ones(10 * 1000 * 1000)  # NUMPY
        b = np.ones(5 * 1000 * 1000)  # NUMPY_TMP
        del b
        z = np.zeros(6 * 1000 * 1000)  # NUMPY_ZEROS (48 MB: above glibc's largest mmap threshold)
    r = row(t, lineno("NUMPY"))
    check(r is not None and abs(r.live_bytes - a.nbytes) <= 0.01 * a.nbytes,
          "numpy: the array's buffer is charged to its line (%s ~ %d)" % (r and r.live_bytes, a.nbytes))
    r = row(t, lineno("NUMPY_TMP"))
    check(r is not None and r.live_bytes == 0 and r.peak_bytes >= 40 * 1000 * 1000,
          "numpy: the freed array is in the peak (%s)" % (r and r.peak_bytes))
    r = row(t, lineno("NUMPY_ZEROS"))
    check(r is not None and r.live_bytes < 64 * 1024 and r.reserved_bytes == z.nbytes,
          "numpy: np.zeros (calloc, untouched) is reserved, not resident (live %s, reserved %s)"
          % (r and r.live_bytes, r and r.reserved_bytes))
    top = t.lines(by="live", top=1)
    check(top and top[0].line == lineno("NUMPY"), "numpy: np.ones folded into the calling line")


def test_inert():
    p = libc_gil.malloc(1000)
    libc_gil.free(p)
    check(not hst._heapsnap._track_status()["active"], "inert: tracking off, calls pass through")


def main():
    print("python", sys.version.split()[0], "LD_PRELOAD", os.environ.get("LD_PRELOAD"), flush=True)
    test_native()
    test_native_thread()
    test_numpy()
    test_inert()
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
