"""Run a script the way `python script.py` would, taking heap snapshots.

    python -m heapsnap._runner --out DIR [--at-exit] [--every SECONDS]
                               [--signal SIG] [--collect] -- script.py args...

Snapshots go to DIR/heapsnap-<pid>-<n>.hsnap (n = 1, 2, ...):
  --at-exit       when the script ends (normally, by sys.exit or an exception);
                  the exit status is kept
  --every SECONDS from a background thread (the dump holds the GIL throughout,
                  so the script is paused while it runs)
  --signal SIG    when SIG (e.g. USR1) arrives
  --collect       run gc.collect() before each snapshot
Each snapshot prints one line on stderr. `heapsnap run` execs this module,
so the interface above is fixed.
"""
import argparse
import atexit
import os
import signal
import sys
import threading
import traceback

from heapsnap import dump

_lock = threading.RLock()
_count = [0]


def _human(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def _snapshot(out, collect, stop=None):
    with _lock:
        if stop is not None and stop.is_set():
            return None  # the script has ended: no periodic snapshot after that
        _count[0] += 1
        path = os.path.join(out, "heapsnap-%d-%d.hsnap" % (os.getpid(), _count[0]))
        try:
            r = dump(path, collect=collect)
        except Exception as e:  # never take the script down
            sys.stderr.write("heapsnap: cannot write %s: %s\n" % (path, e))
            return None
        sys.stderr.write("heapsnap: wrote %s (%s objects, %s, %.2f s)\n"
                         % (path, format(r["objects"], ","), _human(r["bytes"]), r["seconds"]))
        sys.stderr.flush()
        return path


# what `heapsnap run --signal` accepts (cli/cmd_run.c): never a crash signal,
# whose handler would turn a real crash into a spin
_RUN_SIGNALS = ("HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "ALRM", "WINCH", "CONT", "TSTP",
                "TTIN", "TTOU")


def _parse_signal(text):
    t = text.strip().upper()
    allowed = {int(getattr(signal, "SIG" + n)): n for n in _RUN_SIGNALS}
    if t.isdigit():
        num = int(t)
    else:
        if t.startswith("SIG"):
            t = t[3:]
        num = int(getattr(signal, "SIG" + t)) if t in _RUN_SIGNALS else None
    if num not in allowed:
        raise argparse.ArgumentTypeError("signal '%s' is not allowed: one of %s (name or number)"
                                         % (text, " ".join(_RUN_SIGNALS)))
    return num


def _parse_args(argv):
    if "--" in argv:
        i = argv.index("--")
        opts, rest = argv[:i], argv[i + 1:]
    else:
        # no "--": options first, then the script and its arguments
        opts, rest = [], list(argv)
        while rest and rest[0].startswith("-"):
            opt = rest.pop(0)
            opts.append(opt)
            if opt in ("--out", "--every", "--signal") and rest:
                opts.append(rest.pop(0))
    p = argparse.ArgumentParser(prog="python -m heapsnap._runner",
                                description="run a script, taking heap snapshots")
    p.add_argument("--out", required=True, help="directory for the snapshots")
    p.add_argument("--at-exit", action="store_true", help="snapshot when the script ends")
    p.add_argument("--every", type=float, metavar="SECONDS", help="snapshot periodically")
    p.add_argument("--signal", type=_parse_signal, metavar="SIG", help="snapshot on this signal")
    p.add_argument("--collect", action="store_true", help="gc.collect() before each snapshot")
    a = p.parse_args(opts)
    if not rest:
        p.error("no script given (usage: ... -- script.py args...)")
    if a.every is not None and not 0 < a.every <= 1e9:  # NaN and infinities too
        p.error("--every needs a positive number of seconds (at most 1e9)")
    return a, rest


def _run_script(path, args):
    """Run `path` as __main__ the way the interpreter does for `python path`."""
    sys.argv = [path] + list(args)
    if os.path.isdir(path) or not path.endswith((".py", ".pyw")) and _is_zip(path):
        # a directory or zip with __main__.py
        import runpy
        sys.path.insert(0, path)
        runpy.run_path(path, run_name="__main__")
        return
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    # A real __main__ module in sys.modules, so the script's globals stay
    # alive (and rooted) for an at-exit snapshot, as under `python script.py`.
    import types
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _is_zip(path):
    import zipfile
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def main(argv=None):
    a, rest = _parse_args(sys.argv[1:] if argv is None else argv)
    out = a.out
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        sys.stderr.write("heapsnap: cannot create '%s': %s\n" % (out, e.strerror or e))
        return 2
    script = rest[0]
    if not os.path.exists(script):
        sys.stderr.write("heapsnap: cannot run '%s': no such file\n" % script)
        return 2

    stop = threading.Event()

    def finish_periodic():
        # Stop the periodic thread and wait for a snapshot it may be
        # writing (the dump releases the GIL while it commits): otherwise
        # the interpreter could end while it is half written.
        stop.set()
        with _lock:
            pass

    if a.at_exit:
        def at_exit():
            finish_periodic()
            _snapshot(out, a.collect)
        atexit.register(at_exit)
    else:
        atexit.register(finish_periodic)
    if a.signal is not None:
        signal.signal(a.signal, lambda signum, frame: _snapshot(out, a.collect))
    if a.every:
        def periodic():
            while not stop.wait(a.every):
                _snapshot(out, a.collect, stop)
        threading.Thread(target=periodic, name="heapsnap-every", daemon=True).start()

    try:
        _run_script(script, rest[1:])
    except SystemExit:
        raise
    except BaseException as e:
        # Print like the interpreter would, without this runner's frames.
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        return 130 if isinstance(e, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
