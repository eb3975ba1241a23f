"""heapsnap.track(), heapsnap.profile: which line allocated the memory.

    import heapsnap

    with heapsnap.track() as t:                 # sampled: ~1 sample per 512 KiB
        build_report()
    t.report()                             # aligned table on stderr
    for row in t.lines(by="peak", top=5):  # rows: file, line, function, ...
        print(row.file, row.line, row.peak_bytes)

    @heapsnap.profile                      # per-line table of one function
    def load():
        ...

The tracker wraps the interpreter's allocators (RAW, MEM and OBJ domains) in
C. Each recorded block is charged to a stack of (code object, line)
locations read from the interpreter's frames without allocating.

Figures per line ("self"): charged to the innermost frame in your code -
frames in the standard library, site-packages and dist-packages are folded
into the line that called them (all_frames=True keeps them). The total_*
("inclusive") figures count every line on the stack once per block.

  allocated_bytes, allocations   everything allocated while tracking
  live_bytes                     still allocated at the end (or now)
  peak_bytes                     live at the highest point of the running
                                 total (within 1%)

Sampled mode (default) records about one block per `sample_bytes` bytes
allocated (exponential intervals; blocks of at least that size always) and
reweights each sample by the inverse of its probability, so figures are
unbiased estimates; the relative error of a line's figure of B bytes is about
sqrt(sample_bytes / B). exact=True records every block (slower, memory per
live block). `seed` fixes the sampler's random sequence.

The peak total (t.peak_bytes) is exact: requested bytes in exact mode; in
sampled mode with the default allocators, Python's heap footprint (blocks
from malloc at their usable size plus pymalloc arenas, and native blocks
under the LD_PRELOAD interposer), counted at every allocator call.

Blocks that C extensions report to tracing tools (PyTraceMalloc_Track:
numpy's data buffers) are seen without anything else: the reports of
extension modules loaded before or during tracking reach the tracker (and
still tracemalloc, when it runs too).

Native memory: under LD_PRELOAD=libheapsnap_preload.so (what `heapsnap
record --native` does), malloc/calloc/realloc/memalign/mmap of C extensions
are sampled too. A block allocated by a thread that runs Python is charged
to its current Python line, with the GIL held or released (torch's CPU
allocator, numpy's loops); one from a thread without Python (a BLAS or
OpenMP worker) to "native, thread NAME".

Resident, not reserved: large native blocks (128 KiB or more, or the
sampling mean when larger) count their resident pages in live_bytes and
peak_bytes (measured with mincore when recorded and refreshed while
tracking), so a mapping reserved but untouched (np.zeros, BLAS buffers,
thread stacks) adds what RSS adds; reserved_bytes counts them at their size.

Nesting: track() blocks may nest (or overlap from several threads, at most
8 at once). The first sets the tracker's mode; a nested block joins the
running tracker with that mode (a RuntimeWarning says so if it asked for
another) and reports its own figures: what was allocated during it, what of
that is still live at its end, and its own peak.

Fork: in a child process, tracking stops at once (the allocators are
restored by an os.register_at_fork hook); the parent goes on. The child's
trackers report nothing (`t.totals["forked_child"]` is True).
"""
import atexit
import functools
import inspect
import linecache
import os
import sys
import sysconfig
import threading
import warnings

from heapsnap import _heapsnap

__all__ = ["track", "profile", "Tracker", "LineStat"]

KIND_PYTHON, KIND_NATIVE, KIND_MMAP, KIND_NOGIL = 0, 1, 2, 3

FIELDS = ("file", "line", "function", "source", "allocated_bytes", "allocations",
          "live_bytes", "peak_bytes", "total_allocated_bytes", "total_live_bytes",
          "total_peak_bytes")


class LineStat(object):
    """One row of Tracker.lines(): a source line and its figures (bytes).
    reserved_bytes: live_bytes with large native blocks at their size rather
    than their resident pages (equal to live_bytes when there are none)."""
    __slots__ = FIELDS + ("total_allocations", "threads", "reserved_bytes")

    def __init__(self, file, line, function):
        self.file = file
        self.line = line
        self.function = function
        self.source = ""
        self.allocated_bytes = self.allocations = self.live_bytes = self.peak_bytes = 0
        self.total_allocated_bytes = self.total_live_bytes = self.total_peak_bytes = 0
        self.total_allocations = 0
        self.reserved_bytes = 0
        self.threads = set()

    def as_dict(self):
        """The row as a dict with the JSON contract's fields."""
        return {k: getattr(self, k) for k in FIELDS}

    def __repr__(self):
        return "LineStat(%s:%d %s live=%d peak=%d allocated=%d)" % (
            self.file, self.line, self.function, self.live_bytes, self.peak_bytes,
            self.allocated_bytes)


def _library_prefixes():
    out = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            p = sysconfig.get_paths().get(key)
        except Exception:
            p = None
        if p:
            out.add(os.path.realpath(p))
            out.add(p)
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        out.add(os.path.join(base, "lib", "python%d.%d" % sys.version_info[:2]))
    # heapsnap's own frames by the package's real location (both spellings:
    # code objects carry the path as imported), never by a directory name
    here = os.path.dirname(os.path.abspath(__file__))
    out.add(here)
    out.add(os.path.realpath(here))
    return tuple(sorted(p.rstrip("/") + "/" for p in out if p))


_LIB_PREFIXES = None
_LIB_CACHE = {}


def is_library(filename):
    """True for a file of the standard library, site-packages, dist-packages,
    frozen modules or heapsnap itself: folded into the calling line."""
    r = _LIB_CACHE.get(filename)
    if r is not None:
        return r
    global _LIB_PREFIXES
    if _LIB_PREFIXES is None:
        _LIB_PREFIXES = _library_prefixes()
    f = filename or ""
    # numpy < 1.25 generates its dispatchers (np.sort ...) with the file
    # name "<__array_function__ internals>": library code too
    r = (f.startswith("<frozen ") or f == "<__array_function__ internals>" or "/site-packages/" in f
         or "/dist-packages/" in f or f.startswith(_LIB_PREFIXES))
    _LIB_CACHE[filename] = r
    return r


def _fmt_bytes(n):
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return "%s%d %s" % (sign, n, unit) if unit == "B" else "%s%.1f %s" % (sign, n, unit)
        n /= 1024.0


# ---------------------------------------------------------------- tracker

_running = []
_profile_hook_ours = [False]


def _thread_names():
    out = []
    for t in threading.enumerate():
        ident = getattr(t, "ident", None)
        if ident is None:
            continue
        out.append((ident, getattr(t, "native_id", 0) or 0, t.name))
    return out


def _get_profile_hook():
    getp = getattr(threading, "getprofile", None)
    return getp() if getp else getattr(threading, "_profile_hook", None)


class Tracker(object):
    """Allocation tracking over a block of code; see the module docstring.

    Use as a context manager, or call start() and stop(). Figures can be read
    while it runs (they are those so far) and after it stopped.
    """

    def __init__(self, exact=False, sample_bytes=512 * 1024, all_frames=False, seed=None,
                 native=None):
        if not exact and (not isinstance(sample_bytes, int) or sample_bytes < 1):
            raise ValueError("heapsnap: sample_bytes must be a positive int")
        self.exact = bool(exact)
        self.sample_bytes = int(sample_bytes)
        self.all_frames = bool(all_frames)
        self.seed = seed
        self.native = native
        self._session = None
        self._result = None
        self._info = None
        self._agg = {}

    # -- lifecycle
    def start(self):
        if self._session is not None:
            raise RuntimeError("heapsnap: this tracker is already running")
        first = not _running
        info = _heapsnap._track_start(exact=self.exact, sample_bytes=self.sample_bytes,
                                      seed=self.seed, native=self.native,
                                      threads=_thread_names())
        self._session = info["session"]
        self._info = info
        self._result = None
        self._agg = {}
        _running.append(self)
        if first and not info["joined"] and _get_profile_hook() is None:
            threading.setprofile(_heapsnap._track_thread_hello)
            _profile_hook_ours[0] = True
        if info["joined"] and (info["exact"] != self.exact or (
                not self.exact and info["sample_bytes"] != self.sample_bytes)):
            warnings.warn("heapsnap: track() nested in a running tracker uses its mode (%s)"
                          % ("exact" if info["exact"] else
                             "sampled, sample_bytes=%d" % info["sample_bytes"]),
                          RuntimeWarning, stacklevel=3)
        return self

    def stop(self):
        if self._session is None:
            return self
        try:
            self._result = _heapsnap._track_stop(self._session)
        finally:
            self._session = None
            if self in _running:
                _running.remove(self)
            if not _running and _profile_hook_ours[0]:
                if _get_profile_hook() is _heapsnap._track_thread_hello:
                    threading.setprofile(None)
                _profile_hook_ours[0] = False
        self._agg = {}
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def running(self):
        return self._session is not None

    # -- raw data
    def _data(self):
        if self._session is not None:
            return _heapsnap._track_read(self._session)
        if self._result is None:
            raise RuntimeError("heapsnap: this tracker was never started")
        return self._result

    @property
    def totals(self):
        """Totals: peak_bytes (exact, see peak_basis), final_bytes, allocated_bytes,
        allocations, live_bytes, exact, sample_bytes, seed, native, seconds,
        samples, dropped_samples, tracker_bytes..."""
        d = self._data()
        tot = dict(d["totals"])
        alloc_b = alloc_n = live_b = peak_b = res_b = 0
        for st in d["stacks"]:
            alloc_n += st[5]
            alloc_b += st[6]
            live_b += st[9]
            peak_b += st[11]
            res_b += st[12] if len(st) > 12 else st[9]
        tot.update(allocated_bytes=alloc_b, allocations=alloc_n, live_bytes=live_b,
                   peak_live_bytes=peak_b, reserved_bytes=res_b,
                   estimated=not tot.get("exact", False))
        return tot

    @property
    def peak_bytes(self):
        return self._data()["totals"].get("peak_bytes", 0)

    @property
    def sampling(self):
        t = self._data()["totals"]
        return {"exact": t.get("exact", self.exact), "sample_bytes": t.get("sample_bytes", 0),
                "seed": t.get("seed"), "native": t.get("native", False),
                "estimated": not t.get("exact", self.exact)}

    # -- aggregation
    def _aggregate(self, all_frames):
        d = self._data()
        key = (all_frames, id(d))
        if self._session is None and key in self._agg:
            return self._agg[key]
        codes, locs, threads = d["codes"], d["locs"], d["threads"]
        tnames = []
        for ident, tid, name in threads:
            tnames.append(name if name else "%d" % ident)
        loc_info = []
        for ci, line in locs:
            fn, func, first = codes[ci]
            loc_info.append((fn, line, func, first, is_library(fn)))
        rows = {}
        funcs = {}

        def row(k, func, first):
            r = rows.get(k)
            if r is None:
                r = rows[k] = LineStat(k[0], k[1], func)
                funcs[k] = first
            elif first is not None and funcs[k] is not None and first < funcs[k]:
                r.function = func
                funcs[k] = first
            return r

        stacks_out = []
        for st in d["stacks"]:
            kind, tidx, trunc, frames, a_s, a_n, a_b, l_s, l_n, l_b, p_n, p_b = st[:12]
            v_b = st[12] if len(st) > 12 else l_b
            tname = tnames[tidx] if tidx < len(tnames) else "?"
            if not frames:
                if kind in (KIND_NATIVE, KIND_MMAP):
                    k, func = ("<native>", 0), "native, thread %s" % tname
                elif kind == KIND_NOGIL:
                    k, func = ("<python, GIL released>", 0), "thread %s" % tname
                else:
                    k, func = ("<no Python frame>", 0), "thread %s" % tname
                r = row(k, func, None)
                chain = [k]
                self_k = k
            else:
                infos = [loc_info[i] for i in frames]
                if all_frames:
                    self_i = infos[0]
                    used = infos
                else:
                    user = [x for x in infos if not x[4]]
                    self_i = user[0] if user else infos[0]
                    used = user if user else infos[:1]
                self_k = (self_i[0], self_i[1])
                r = row(self_k, self_i[2], self_i[3])
                chain = []
                seen = set()
                for x in used:
                    kk = (x[0], x[1])
                    row(kk, x[2], x[3])
                    chain.append(kk)
                    seen.add(kk)
                if self_k not in seen:
                    chain.insert(0, self_k)
            r.allocated_bytes += a_b
            r.allocations += a_n
            r.live_bytes += l_b
            r.reserved_bytes += v_b
            r.peak_bytes += p_b
            r.threads.add(tname)
            for kk in set(chain):
                rr = rows[kk]
                rr.total_allocated_bytes += a_b
                rr.total_allocations += a_n
                rr.total_live_bytes += l_b
                rr.total_peak_bytes += p_b
            stacks_out.append((chain, tname, kind, trunc, a_n, a_b, l_b, p_b))
        for r in rows.values():
            if r.line > 0:
                r.source = linecache.getline(r.file, r.line).strip()
        res = (rows, stacks_out)
        if self._session is None:
            self._agg[key] = res
        return res

    def lines(self, by="live", top=None, file=None, function=None, thread=None,
              all_frames=None):
        """Rows (LineStat) sorted by `by` ("live", "peak" or "allocated"),
        largest first; rows whose figures are all zero are left out.
        file: a path or its tail ("app.py", "pkg/app.py"); function: a
        (qualified) name; thread: a thread name; all_frames overrides the
        tracker's setting."""
        if by not in ("live", "peak", "allocated"):
            raise ValueError("heapsnap: by must be 'live', 'peak' or 'allocated'")
        af = self.all_frames if all_frames is None else all_frames
        rows, _ = self._aggregate(af)
        out = []
        for r in rows.values():
            if file and not (r.file == file or r.file.endswith("/" + file.lstrip("/"))):
                continue
            if function and not (r.function == function or r.function.endswith("." + function)):
                continue
            if thread and thread not in r.threads:
                continue
            if not (r.allocated_bytes or r.live_bytes or r.peak_bytes or r.total_allocated_bytes
                    or r.total_live_bytes or r.total_peak_bytes):
                continue
            out.append(r)
        attr = {"live": "live_bytes", "peak": "peak_bytes", "allocated": "allocated_bytes"}[by]
        out.sort(key=lambda r: (-getattr(r, attr), -getattr(r, "total_" + attr), r.file, r.line))
        return out[:top] if top else out

    def stacks(self, all_frames=None):
        """Stacks as (frames outermost first [(file, line)], thread, kind,
        truncated, allocations, allocated_bytes, live_bytes, peak_bytes)."""
        af = self.all_frames if all_frames is None else all_frames
        _, st = self._aggregate(af)
        return [(list(reversed(c)),) + tuple(rest) for c, *rest in st]

    def threads(self):
        """Per thread: {name, ident, native_id, allocated_bytes, allocations,
        live_bytes, peak_bytes}."""
        d = self._data()
        out = []
        for i, (ident, tid, name) in enumerate(d["threads"]):
            out.append({"name": name, "ident": ident, "native_id": tid, "allocated_bytes": 0,
                        "allocations": 0, "live_bytes": 0, "peak_bytes": 0})
        for st in d["stacks"]:
            if st[1] < len(out):
                o = out[st[1]]
                o["allocations"] += st[5]
                o["allocated_bytes"] += st[6]
                o["live_bytes"] += st[9]
                o["peak_bytes"] += st[11]
        return [o for o in out if o["allocations"] or o["live_bytes"]]

    def report(self, file=None, by="live", top=20, all_frames=None):
        """Print an aligned table of the top lines to `file` (stderr)."""
        file = file or sys.stderr
        tot = self.totals
        rows = self.lines(by=by, top=top, all_frames=all_frames)
        mode = "exact" if tot.get("exact") else "sampled, estimates (1 sample per %s)" % (
            _fmt_bytes(tot.get("sample_bytes", 0)))
        file.write("heapsnap.track: %s, %.3f s, peak %s (%s), live %s, allocated %s in %d "
                   "allocations%s\n" % (
                       mode, tot.get("seconds", 0.0), _fmt_bytes(tot.get("peak_bytes", 0)),
                       tot.get("peak_basis", "?"), _fmt_bytes(tot["live_bytes"]),
                       _fmt_bytes(tot["allocated_bytes"]), tot["allocations"],
                       ", native" if tot.get("native") else ""))
        # live and peak count resident pages of large native blocks; the
        # reserved column shows their size when that differs anywhere
        reserved = any(r.reserved_bytes != r.live_bytes for r in rows)
        head = ("live", "peak", "allocated", "allocs", "incl.live", "incl.peak", "line",
                "function", "source")
        nnum = 6
        if reserved:
            head = ("live", "reserved") + head[1:]
            nnum = 7
        table = [head]
        for r in rows:
            cells = [_fmt_bytes(r.live_bytes), _fmt_bytes(r.peak_bytes),
                     _fmt_bytes(r.allocated_bytes), str(r.allocations),
                     _fmt_bytes(r.total_live_bytes), _fmt_bytes(r.total_peak_bytes),
                     "%s:%d" % (r.file, r.line), r.function, r.source[:60]]
            if reserved:
                cells.insert(1, _fmt_bytes(r.reserved_bytes))
            table.append(tuple(cells))
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        for t in table:
            cells = [t[i].rjust(widths[i]) if i < nnum else t[i].ljust(widths[i])
                     for i in range(len(head))]
            file.write("  ".join(cells).rstrip() + "\n")
        if len(table) == 1:
            file.write("(no allocation recorded)\n")
        elif reserved:
            file.write("live and peak count the resident pages of large native blocks (%s or "
                       "more); reserved counts them at their size\n"
                       % _fmt_bytes(tot.get("resident_threshold", 0)))
        file.flush()


def track(exact=False, sample_bytes=512 * 1024, all_frames=False, seed=None, native=None):
    """A Tracker: `with track() as t: ...` then t.lines(), t.report(),
    t.peak_bytes, t.totals. See the module docstring for the arguments."""
    return Tracker(exact=exact, sample_bytes=sample_bytes, all_frames=all_frames, seed=seed,
                   native=native)


# ---------------------------------------------------------------- @profile

def _print_profile(t, func, stream):
    code = func.__code__
    fn = code.co_filename
    try:
        src, start = inspect.getsourcelines(func)
    except (OSError, TypeError):
        src, start = [], code.co_firstlineno
    rows = {r.line: r for r in t.lines(by="allocated", file=fn, all_frames=True)
            if r.file == fn}
    tot = t.totals
    out = []
    out.append("Filename: %s\n" % fn)
    out.append("heapsnap.profile: %s (%s), %.3f s, peak %s, allocated %s in %d allocations\n\n" % (
        getattr(func, "__qualname__", func.__name__),
        "exact" if tot.get("exact") else "sampled, estimates",
        tot.get("seconds", 0.0), _fmt_bytes(tot.get("peak_bytes", 0)),
        _fmt_bytes(tot["allocated_bytes"]), tot["allocations"]))
    head = "%6s  %11s  %11s  %11s  %9s  %s" % ("Line #", "Allocated", "Live", "Peak", "Allocs",
                                              "Line Contents")
    out.append(head + "\n" + "=" * len(head) + "\n")
    body_started = False
    for i, text in enumerate(src):
        ln = start + i
        stripped = text.strip()
        if not body_started and (stripped.startswith(("def ", "async def ")) or
                                 stripped.startswith("@")):
            if stripped.startswith(("def ", "async def ")):
                body_started = stripped.endswith(":") or ":" in stripped
            out.append("%6d  %11s  %11s  %11s  %9s  %s\n" % (ln, "", "", "", "", text.rstrip("\n")))
            continue
        body_started = True
        r = rows.get(ln)
        if not stripped or stripped.startswith("#"):
            out.append("%6d  %11s  %11s  %11s  %9s  %s\n" % (ln, "", "", "", "", text.rstrip("\n")))
            continue
        if r is None:
            vals = ("0 B", "0 B", "0 B", "0")
        else:
            vals = (_fmt_bytes(r.total_allocated_bytes), _fmt_bytes(r.total_live_bytes),
                    _fmt_bytes(r.total_peak_bytes), str(r.total_allocations))
        out.append("%6d  %11s  %11s  %11s  %9s  %s\n" % ((ln,) + vals + (text.rstrip("\n"),)))
    out.append("\n")
    stream.write("".join(out))
    stream.flush()


def profile(func=None, stream=None, exact=True, sample_bytes=512 * 1024, all_frames=False):
    """Decorator: when the function returns, print a per-line table of it
    (every line of its source; inclusive figures: what each line allocated,
    directly or in what it called, what of it is live at the return, and at
    the peak) to `stream` (default sys.stderr at call time). Exact by
    default. A recursive call is part of the outermost call's table (one
    table per outermost call); decorated functions called from a decorated
    function print their own tables, and nest as track() blocks do.

        @heapsnap.profile
        def f(): ...

        @heapsnap.profile(stream=sys.stdout, exact=False)
        def g(): ...
    """
    if func is None:
        return lambda f: profile(f, stream=stream, exact=exact, sample_bytes=sample_bytes,
                                 all_frames=all_frames)
    active = set()

    def enter():
        me = threading.get_ident()
        if me in active:
            return None
        active.add(me)
        return Tracker(exact=exact, sample_bytes=sample_bytes, all_frames=all_frames).start()

    def leave(t):
        if t is None:
            return
        active.discard(threading.get_ident())
        t.stop()
        _print_profile(t, func, stream or sys.stderr)

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def awrapper(*args, **kwargs):
            t = enter()
            try:
                return await func(*args, **kwargs)
            finally:
                leave(t)
        return awrapper

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = enter()
        try:
            return func(*args, **kwargs)
        finally:
            leave(t)
    return wrapper


# ---------------------------------------------------------------- process hooks

def _stop_all():
    for t in list(reversed(_running)):
        try:
            t.stop()
        except Exception:
            pass


atexit.register(_stop_all)
if hasattr(os, "register_at_fork"):
    def _after_fork_child():
        del _running[:]
        if _profile_hook_ours[0] and _get_profile_hook() is _heapsnap._track_thread_hello:
            threading.setprofile(None)
        _profile_hook_ours[0] = False
        _heapsnap._track_after_fork_child()
    os.register_at_fork(after_in_child=_after_fork_child)
