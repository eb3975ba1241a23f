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
"""
from heapsnap._heapsnap import __version__, dump

__all__ = ["dump", "__version__"]
