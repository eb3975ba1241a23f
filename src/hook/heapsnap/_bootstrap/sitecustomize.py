"""heapsnap's start-up hook: heapsnap/_bootstrap/sitecustomize.py.

`heapsnap run` and `heapsnap record` put this directory on PYTHONPATH, so
the `site` module imports this file as `sitecustomize` when the interpreter
starts. It does two things:

1. it runs the sitecustomize it hides: the next one on sys.path (Debian's
   /usr/lib/python3.X/sitecustomize.py, a virtualenv's, the user's), under
   the same name, as if this file were not there;
2. when HEAPSNAP_AGENT is set, it starts the heapsnap agent
   (heapsnap.agent: the value is "1" or options such as
   "signal=USR2,every=60,keep=5,dir=/path"), loading the heapsnap package
   this directory belongs to.

A problem is one line on stderr; the program always runs. Not honoured
under `python -S` or `-I` (no site, or no PYTHONPATH).
"""
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.abspath(__file__))


def _chain():
    import importlib.machinery
    import importlib.util
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _sys.path)
    if spec is None or spec.loader is None:
        return
    me = _sys.modules.get("sitecustomize")
    mod = importlib.util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = mod  # the import machinery keeps this one
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        # what site.execsitecustomize would have printed
        _sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                          "%s: %s\n" % (type(e).__name__, e))
        if me is not None:
            _sys.modules["sitecustomize"] = me


def _start_agent():
    value = _os.environ.get("HEAPSNAP_AGENT")
    if not value or value.strip().lower() in ("0", "no", "off", "false"):
        return
    pkg = _os.path.dirname(_here)
    try:
        if "heapsnap" not in _sys.modules:
            import importlib.util
            spec = importlib.util.spec_from_file_location(
                "heapsnap", _os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg])
            mod = importlib.util.module_from_spec(spec)
            _sys.modules["heapsnap"] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del _sys.modules["heapsnap"]
                raise
        from heapsnap import agent
    except Exception as e:
        _sys.stderr.write("heapsnap: HEAPSNAP_AGENT is set but heapsnap cannot be loaded from "
                          "'%s' (%s: %s); the agent was not started\n" % (pkg, type(e).__name__, e))
        return
    agent._start_from_env()


# served its purpose: leave the program's sys.path as it would be
_sys.path[:] = [p for p in _sys.path if not p or _os.path.abspath(p) != _here]
_chain()
_start_agent()
