"""heapsnap._agent_options: the agent's options, checked once, at start.

Every option of heapsnap.agent.start(), HEAPSNAP_AGENT and
`python -m heapsnap.agent` goes through one function here, so the three
spellings accept the same values and refuse the others with the same
message: the option, the value given, and what is allowed. A bad value is a
ValueError at start, never a surprise later in one of the agent's threads.

The limits, and why:
  signal     USR1, USR2, or a real-time signal (RTMIN..RTMAX, written
             RTMIN+n or RTMAX-n), by name (SIG prefix optional) or number.
             Signals that report a crash or a condition (SEGV, BUS, FPE,
             ILL, ABRT, TRAP, SYS, PIPE, CHLD...) or that the terminal, the
             shell and service managers send (INT, TERM, HUP, QUIT, TSTP...)
             are refused: a handler that only wakes a thread would turn a
             real crash into a spin and a stop request into a snapshot.
             hook/trigger.c refuses the same set again.
  every      seconds, 1 to 30 days: a finite number (NaN, infinities,
             zero and negatives are refused). Below a second the process
             would do little else than dump.
  keep       1 to 100,000 files (None: no limit).
  max_bytes, min_free   sizes: bytes, or with K, M, G, T (powers of
             1024; "KiB", "KB" also read), up to 2**62; max_bytes at least
             1 (None: no limit), min_free 0 or more.
  directory  an existing directory, not a symbolic link, owned by this
             user or root, writable by this process, and not writable by
             other users unless sticky (/tmp is fine: sticky); anything
             else would let another user swap the snapshots for links.
"""
import os
import stat

MIN_EVERY = 1.0
MAX_EVERY = 30 * 86400.0
MAX_KEEP = 100000
MAX_SIZE = 1 << 62

_FALSE = ("0", "no", "off", "false")
_TRUE = ("1", "yes", "on", "true")


def _show(value):
    return "'%s'" % value if isinstance(value, str) else repr(value)


def _bad(label, value, allowed):
    return ValueError("heapsnap: %s=%s is not allowed: %s" % (label, _show(value), allowed))


def rt_range():
    """(SIGRTMIN, SIGRTMAX) as this C library numbers them."""
    import signal as _signal
    return int(getattr(_signal, "SIGRTMIN", 34)), int(getattr(_signal, "SIGRTMAX", 64))


def allowed_signals():
    import signal as _signal
    lo, hi = rt_range()
    return [int(_signal.SIGUSR1), int(_signal.SIGUSR2)] + list(range(lo, hi + 1))


def signal_help():
    lo, hi = rt_range()
    return ("the agent takes USR1, USR2 or a real-time signal RTMIN..RTMAX (RTMIN+n, RTMAX-n: "
            "%d to %d), by name (SIG prefix optional) or number; signals that report crashes "
            "or that terminals and service managers send are refused" % (lo, hi))


def signal_number(value, label="signal"):
    """None, a name ("SIGUSR2", "usr2", "RTMIN+3") or a number -> the
    signal's number, or None. ValueError for anything else."""
    import signal as _signal
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _bad(label, value, signal_help())
    if isinstance(value, int):
        num = int(value)
    else:
        name = value.strip().upper()
        if name.isdigit() and name.isascii():
            num = int(name)
        else:
            if name.startswith("SIG"):
                name = name[3:]
            lo, hi = rt_range()
            num = None
            for base, sign, start in (("RTMIN", 1, lo), ("RTMAX", -1, hi)):
                if name == base:
                    num = start
                elif name.startswith(base + ("+" if sign > 0 else "-")):
                    off = name[len(base) + 1:]
                    if off.isdigit() and off.isascii():
                        num = start + sign * int(off)
                    else:
                        raise _bad(label, value, signal_help())
            if num is None:
                if name in ("USR1", "USR2"):
                    num = int(getattr(_signal, "SIG" + name))
                elif isinstance(getattr(_signal, "SIG" + name, None), int) and name.isalnum():
                    raise _bad(label, value, signal_help())
                else:
                    raise _bad(label, value, "no such signal; " + signal_help())
    if num not in allowed_signals():
        raise _bad(label, value, signal_help())
    return num


def signal_name(num):
    import signal as _signal
    lo, hi = rt_range()
    if num == lo:
        return "SIGRTMIN"
    if lo < num <= hi:
        return "SIGRTMIN+%d" % (num - lo)
    try:
        return _signal.Signals(num).name
    except ValueError:
        return str(num)


def _number(value, label, allowed):
    """A finite float from a number or its text."""
    import math
    if isinstance(value, bool):
        raise _bad(label, value, allowed)
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            raise _bad(label, value, allowed)
    else:
        raise _bad(label, value, allowed)
    if not math.isfinite(v):
        raise _bad(label, value, allowed)
    return v


def interval(value, label="every"):
    """Seconds between periodic snapshots, or None."""
    if value is None:
        return None
    allowed = "a number of seconds from %g to %d (30 days)" % (MIN_EVERY, MAX_EVERY)
    v = _number(value, label, allowed)
    if not MIN_EVERY <= v <= MAX_EVERY:
        raise _bad(label, value, allowed)
    return v


def keep_count(value, label="keep"):
    """How many snapshot files to keep, or None (no limit)."""
    allowed = "a whole number of files from 1 to %d (None or 'none': no limit)" % MAX_KEEP
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, bool):
        raise _bad(label, value, allowed)
    if isinstance(value, int):
        v = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        v = int(value.strip())
    else:
        raise _bad(label, value, allowed)
    if not 1 <= v <= MAX_KEEP:
        raise _bad(label, value, allowed)
    return v


def size(value, label, minimum=0):
    """Bytes from 512, '64K', '10M', '2G', '1.5GiB' (powers of 1024)."""
    if minimum:
        allowed = ("a size of at least %d byte%s and at most 2**62: bytes, or with K, M, G, T "
                   "(powers of 1024); None or 'none': no limit" % (minimum, "" if minimum == 1 else "s"))
    else:
        allowed = "a size from 0 to 2**62: bytes, or with K, M, G, T (powers of 1024)"
    if isinstance(value, bool):
        raise _bad(label, value, allowed)
    mult = 1
    if isinstance(value, str):
        t = value.strip().upper()
        if t.endswith("B"):
            t = t[:-1]
        if t.endswith("I") and len(t) > 1 and t[-2] in "KMGT":
            t = t[:-1]
        for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
            if t.endswith(suffix):
                t, mult = t[:-1], m
                break
        num = t
    else:
        num = value
    try:
        v = _number(num, label, allowed) * mult
    except ValueError:
        raise _bad(label, value, allowed)  # the value as given, not as read
    if not minimum <= v <= MAX_SIZE:
        raise _bad(label, value, allowed)
    return int(v)


def optional_size(value, label, minimum=1):
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return size(value, label, minimum)


def flag(value, label):
    """True or False from a bool, 0/1, or the words of _TRUE/_FALSE."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise _bad(label, value, "True or False (1/0, yes/no, on/off, true/false)")


def snapshot_dir(value, label="directory"):
    """The snapshot directory, checked: its absolute path. ValueError with
    the reason when it is missing, a link, not a directory, another
    user's, or writable by other users without the sticky bit."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, (str, os.PathLike)):
        raise _bad(label, value, "the path of an existing directory")
    path = os.fspath(value)
    if not path or "\0" in path:
        raise _bad(label, value, "the path of an existing directory")
    d = os.path.abspath(path)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        raise _bad(label, value, "'%s' does not exist; create it first" % d)
    except OSError as e:
        raise _bad(label, value, "cannot check '%s': %s" % (d, e.strerror))
    uid = os.geteuid()
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        raise _bad(label, value, "'%s' is a symbolic link; give the directory it points to "
                   "(a link can be switched under the agent)" % d)
    if not stat.S_ISDIR(st.st_mode):
        raise _bad(label, value, "'%s' is not a directory" % d)
    if st.st_uid not in (uid, 0):
        raise _bad(label, value, "'%s' belongs to uid %d; use a directory of your own (uid %d)"
                   % (d, st.st_uid, uid))
    sticky = bool(mode & stat.S_ISVTX)
    if not sticky and (mode & stat.S_IWOTH or (mode & stat.S_IWGRP and st.st_gid != os.getegid())):
        raise _bad(label, value, "'%s' (mode %04o) is writable by other users and not sticky: they "
                   "could replace the snapshots; use a directory only you can write (chmod go-w) "
                   "or a sticky one" % (d, mode))
    if not os.access(d, os.W_OK | os.X_OK):
        raise _bad(label, value, "'%s' is not writable by this process (uid %d)" % (d, uid))
    return d


def parse_env(value):
    """HEAPSNAP_AGENT's value -> (start() keyword arguments, still text,
    and the name each was given under, for messages), or None (off).
    ValueError for an unknown item or one without its value."""
    v = value.strip()
    if v.lower() in ("",) + _FALSE:
        return None
    if v.lower() in _TRUE:
        return {}, {}
    opts, labels = {}, {}
    names = {"signal": "signal", "every": "every", "keep": "keep", "max_bytes": "max_bytes",
             "min_free": "min_free", "dir": "directory", "directory": "directory"}
    for item in v.split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, val = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        val = val.strip()
        if key in ("socket", "fork"):
            opts[key] = flag(val, key) if eq else True
        elif key in ("nosocket", "no_socket") and not eq:
            opts["socket"] = False
        elif key in names:
            if not eq or not val:
                raise ValueError("heapsnap: '%s' needs a value (%s=...)" % (key, key))
            opts[names[key]] = val
            labels[names[key]] = key
        else:
            raise ValueError("heapsnap: unknown option '%s' (socket, nosocket, signal=, every=, keep=, "
                             "max_bytes=, min_free=, dir=, fork)" % key)
    return opts, labels


def check(socket=True, signal=None, every=None, keep=5, max_bytes=None, directory=None,
          fork=False, min_free=None, after_fork=True, labels=None):
    """Every start() option checked and normalised (numbers as numbers, the
    signal as its number, the directory absolute): a dict of them. Raises
    ValueError naming the first bad option (as `labels` names it, else as
    start() does). The directory is checked when given or needed."""
    lab = dict(labels or {})

    def name(opt):
        return lab.get(opt, opt)
    out = dict(socket=flag(socket, name("socket")), fork=flag(fork, name("fork")),
               after_fork=flag(after_fork, name("after_fork")),
               signal=signal_number(signal, name("signal")),
               every=interval(every, name("every")), keep=keep_count(keep, name("keep")),
               max_bytes=optional_size(max_bytes, name("max_bytes"), 1),
               min_free=None if min_free is None else size(min_free, name("min_free"), 0))
    if not (out["socket"] or out["signal"] or out["every"]):
        raise ValueError("heapsnap: the agent has nothing to do: give socket=True, signal= or every=")
    if directory is not None:
        out["directory"] = snapshot_dir(directory, name("directory"))
    elif out["signal"] or out["every"]:
        out["directory"] = snapshot_dir(os.getcwd(), "directory (default: the current directory)")
    else:
        out["directory"] = None
    return out
