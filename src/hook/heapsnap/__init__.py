"""heapsnap: memory forensics for Python.

    import heapsnap
    heapsnap.dump("app.hsnap")            # every live object, to a file
    heapsnap.dump("app.hsnap", collect=True)

dump() walks the heap in C (GIL held, cyclic GC paused) and writes a
snapshot that the `heapsnap` command analyses offline: `heapsnap summary`,
`heapsnap diff`, `heapsnap leaks`, ... Run a script with snapshots taken at
exit, periodically or on a signal:

    python -m heapsnap._runner --out DIR --at-exit -- script.py args...

(`heapsnap run` does the same). `python -m heapsnap ARGS` runs the CLI.

A long-running service can keep an agent (heapsnap.agent.start(), or
HEAPSNAP_AGENT=1 in its environment): `heapsnap dump PID` and `heapsnap
stats PID` then talk to it over a Unix socket instead of attaching with
ptrace. Markers for timelines work with or without it:

    heapsnap.mark("cache warmed")        # one append to a bounded ring
"""
from heapsnap._heapsnap import __version__, dump
from heapsnap._events import gc_events, mark, marks

__all__ = ["dump", "mark", "marks", "gc_events", "track", "profile", "Tracker", "__version__"]


def __getattr__(name):
    # heapsnap.track / profile / Tracker load the tracker's Python side on
    # first use: `import heapsnap` stays light and imports no threading,
    # inspect or sysconfig into the program it inspects
    if name in ("track", "profile", "Tracker"):
        from heapsnap import _track
        return getattr(_track, name)
    raise AttributeError("module 'heapsnap' has no attribute %r" % name)

