"""Allocation tracking of real libraries (issue 13, part 6), in a pinned venv.

usage: track_libs.py BUILD PY    (BUILD/python holds the built package)

Makes (once) BUILD/venv-track-X.Y with numpy for interpreter PY (and on 3.11
one with the torch CPU wheel of /opt/wheels), then runs the checks in it;
exits 77 with the reason when numpy cannot be had.

numpy without --native: PyTraceMalloc_Track reports reach the tracker
  - np.ones(10_000_000) is 80,000,000 bytes live on its line (numpy's nbytes),
    numpy imported before or after tracking started;
  - a freed array leaves the live set, and is in its line's peak;
  - tracemalloc running at the same time still sees the buffers (its
    numpy domain, 389047, holds the array's nbytes), before and after;
  - the slots are restored at the end: a later tracemalloc-only run sees
    the reports and the tracker none.
With the LD_PRELOAD interposer (native=True):
  - a function that never allocated with the GIL mallocs without it
    (ctypes.CDLL): charged to its line, not to "<native>";
  - numpy's stable sort allocates its merge buffer with the GIL released:
    charged to the line of the call;
  - torch (3.11): model construction, loss.backward() and opt.step() get
    the bytes of parameters, gradients and Adam's state (storage nbytes),
    and "<native>" keeps almost nothing.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1 << 20
FAILED = []


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


def native_rows(t):
    return sum(r.live_bytes for r in t.lines(top=None) if r.file == "<native>")


# ---------------------------------------------------------------- numpy
def test_numpy_traced(hst, np_already):
    import tracemalloc
    with hst.track(seed=3, native=False) as t:
        import numpy as np
        a = np.ones(10_000_000)  # NP_ONES
        b = np.ones(3_000_000)  # NP_FREED
        del b
        slots = hst._heapsnap._track_status()["traced_slots"]
    check(slots >= 2, "numpy (%s): Track/Untrack slots patched (%d)"
          % ("imported before" if np_already else "imported while tracking", slots))
    r = row(t, lineno("NP_ONES"))
    check(r is not None and r.live_bytes == a.nbytes == 80_000_000,
          "numpy: np.ones(10_000_000) live on its line = nbytes (%s)" % (r and r.live_bytes))
    r = row(t, lineno("NP_FREED"))
    check(r is not None and r.live_bytes == 0 and r.peak_bytes >= 24_000_000,
          "numpy: a freed array leaves the live set, stays in the peak (%s, %s)"
          % (r and r.live_bytes, r and r.peak_bytes))
    check(t.peak_bytes >= 80_000_000 + 24_000_000 - 1,
          "numpy: the running total counts reported buffers (%d)" % t.peak_bytes)
    check(not hst._heapsnap._track_status()["traced_slots"], "numpy: slots restored at stop")

    # tracemalloc at the same time: both see the buffer
    tracemalloc.start()
    try:
        with hst.track(seed=4, native=False) as t:
            c = np.ones(2_000_000)  # NP_BOTH
        snap = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    dom = tracemalloc.DomainFilter(True, 389047)
    traced = sum(s.size for s in snap.filter_traces([dom]).statistics("filename"))
    check(traced >= c.nbytes, "numpy+tracemalloc: tracemalloc sees the buffer (%d >= %d)"
          % (traced, c.nbytes))
    r = row(t, lineno("NP_BOTH"))
    check(r is not None and r.live_bytes == c.nbytes,
          "numpy+tracemalloc: the tracker too (%s)" % (r and r.live_bytes))
    # after stop: tracemalloc alone still gets the reports
    tracemalloc.start()
    try:
        d = np.ones(1_000_000)
        snap = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traced = sum(s.size for s in snap.filter_traces([dom]).statistics("filename"))
    check(traced >= d.nbytes, "numpy: tracemalloc alone after tracking (%d)" % traced)


# ---------------------------------------------------- the GIL released
def test_nogil(hst):
    import ctypes
    libc = ctypes.CDLL(None)  # releases the GIL around calls
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.memset.restype = ctypes.c_void_p
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def fresh():
        # never allocated with the GIL before: its code object is unknown
        return libc.memset(libc.malloc(12 * MB), 1, 12 * MB)  # NOGIL_FRESH

    with hst.track(seed=9, native=True) as t:
        p = fresh()
    r = row(t, lineno("NOGIL_FRESH"))
    check(r is not None and r.live_bytes == 12 * MB,
          "no GIL: a fresh function's malloc is charged to its line (%s)" % (r and r.live_bytes))
    libc.free(p)

    import numpy as np
    a = np.random.default_rng(1).random(4_000_000)
    with hst.track(seed=10, native=True) as t:
        s = np.sort(a, kind="stable")  # NOGIL_SORT
    r = row(t, lineno("NOGIL_SORT"))
    # the result (32 MB) and timsort's merge buffer, made with the GIL released
    check(r is not None and r.allocated_bytes >= s.nbytes + 8 * MB,
          "no GIL: np.sort's buffer is charged to the line (allocated %s, result %d)"
          % (r and r.allocated_bytes, s.nbytes))
    nat = [x for x in t.lines(top=None) if x.file == "<native>"]
    check(sum(x.allocated_bytes for x in nat) < 2 * MB,
          "no GIL: <native> allocated little (%d)" % sum(x.allocated_bytes for x in nat))


# ---------------------------------------------------------------- torch
def test_torch(hst):
    try:
        import torch
    except ImportError:
        print("skip: torch is not installed in this venv (3.11 only)", flush=True)
        return
    torch.manual_seed(0)
    torch.set_num_threads(1)

    def storage_bytes(ts):
        return sum(x.untyped_storage().nbytes() for x in ts)

    with hst.track(seed=12, native=True) as t:
        lin, relu = torch.nn.Linear, torch.nn.ReLU
        model = torch.nn.Sequential(lin(1024, 2048), relu(), lin(2048, 1024))  # TORCH_MODEL
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.randn(64, 1024)
        loss = model(x).square().mean()
        loss.backward()  # TORCH_BACKWARD
        opt.step()  # TORCH_STEP
        status = hst._heapsnap._track_status()
    params = list(model.parameters())
    pbytes = storage_bytes(params)
    gbytes = storage_bytes([p.grad for p in params])
    sbytes = storage_bytes([v for st in opt.state.values() for v in st.values()
                            if torch.is_tensor(v) and v.numel() > 1])
    check(status["native"], "torch: native tracking")
    r = row(t, lineno("TORCH_MODEL"))
    check(r is not None and r.live_bytes >= 0.95 * pbytes,
          "torch: model construction holds the parameters (%s >= %d)" % (r and r.live_bytes, pbytes))
    r = row(t, lineno("TORCH_BACKWARD"))
    check(r is not None and r.live_bytes >= 0.95 * gbytes,
          "torch: loss.backward() holds the gradients (%s ~ %d)" % (r and r.live_bytes, gbytes))
    r = row(t, lineno("TORCH_STEP"))
    check(r is not None and r.live_bytes >= 0.95 * sbytes,
          "torch: opt.step() holds Adam's state (%s ~ %d)" % (r and r.live_bytes, sbytes))
    nat = native_rows(t)
    check(nat < 0.05 * (pbytes + gbytes + sbytes),
          "torch: <native> keeps little (%d of %d)" % (nat, pbytes + gbytes + sbytes))


def run_inside():
    import importlib
    np_already = "--numpy-first" in sys.argv
    if np_already:
        import numpy  # noqa: F401
    hst = importlib.import_module("heapsnap._track")
    print("python", sys.version.split()[0], "numpy first" if np_already else "", flush=True)
    test_numpy_traced(hst, np_already)
    if hst._heapsnap._track_status()["native_available"]:
        test_nogil(hst)
        if "--torch" in sys.argv:
            test_torch(hst)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        return run_inside()
    build, py = sys.argv[1], sys.argv[2]
    preload = os.path.join(build, "lib", "libheapsnap_preload.so")
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"), PYTHONDONTWRITEBYTECODE="1")
    runs = []
    v = subprocess.run([sys.executable, os.path.join(HERE, "track_venv.py"), build, py],
                       stdout=subprocess.PIPE, universal_newlines=True)
    if v.returncode != 0:
        print(v.stdout)
        return 77
    vpy = v.stdout.strip().splitlines()[-1]
    runs.append([vpy, __file__, "--inside"])
    runs.append([vpy, __file__, "--inside", "--numpy-first"])
    t = subprocess.run([sys.executable, os.path.join(HERE, "track_venv.py"), build, py, "torch"],
                       stdout=subprocess.PIPE, universal_newlines=True)
    if t.returncode == 0:
        runs.append([t.stdout.strip().splitlines()[-1], __file__, "--inside", "--torch"])
    else:
        print(t.stdout.strip().splitlines()[-1])
    rc = 0
    for args in runs:
        e = dict(env, LD_PRELOAD=preload) if "--numpy-first" not in args else env
        p = subprocess.run(args, env=e)
        rc = rc or p.returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
