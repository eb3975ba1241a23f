"""heapsnap.agent: an opt-in agent inside a long-running Python service.

    import heapsnap.agent
    heapsnap.agent.start()                          # a Unix socket for `heapsnap dump/stats PID`
    heapsnap.agent.start(signal="SIGUSR2")          # + `kill -USR2 PID` writes a snapshot
    heapsnap.agent.start(every=600, keep=5, directory="/var/tmp/snaps")   # + one every 10 min

or without changing the program:

    python -m heapsnap.agent [--signal SIG] [--every S] [--keep N] [--max-bytes B]
                             [--dir D] [--fork] [--no-socket] script.py args... | -m module args...
    HEAPSNAP_AGENT=1 python app.py
    HEAPSNAP_AGENT="signal=USR2,every=600,keep=5,dir=/var/tmp/snaps" python app.py

The socket, /tmp/heapsnap-<uid>/agent-<pid>.sock (directory 0700, socket
0600; $HEAPSNAP_AGENT_DIR/agent-<pid>.sock when that is set), answers the
fixed commands of formats/agent-protocol.md (HELLO, STATS, TYPES, MARKS,
GCEVENTS, DUMP, AGENT), one JSON line per command line, to the same user
and root only (SO_PEERCRED). No command runs code the client sends.

Snapshots taken on the signal or periodically go to `directory` as
heapsnap-<pid>-<YYYYmmdd-HHMMSS>-<n>.hsnap; only the newest `keep` of this
process's files (and at most `max_bytes` in all) are kept, and a snapshot
is skipped, with a warning on the "heapsnap.agent" logger, when the
filesystem has less than `min_free` bytes free (default: 64 MiB, or twice
the largest snapshot written, whichever is more).

The agent's threads are daemon threads that sleep in poll() while idle.
It stops at exit (the socket is removed) or on stop(). After os.fork() a
child gets an agent of its own (its own socket), so workers of a forking
server are reachable one by one.
"""
import atexit
import errno
import os
import select
import socket as _socket
import struct
import sys
import threading
import time

import heapsnap
from heapsnap import _agent_options as _opts
from heapsnap import _events, _heapsnap

__all__ = ["start", "stop", "current", "Agent"]

PROTOCOL = 1
MAX_LINE = 4096          # bytes of a command line, its newline included
LINE_TIMEOUT = 10.0      # a started line must be complete within this
IDLE_TIMEOUT = 120.0     # a connection with no command for this long is closed
SEND_TIMEOUT = 10.0      # a client that does not read its reply for this long is dropped
MAX_CONNECTIONS = 16     # connections served at once; more are closed at once
DEFAULT_MIN_FREE = 64 << 20
TYPES_MAX = 100000

_state_lock = threading.Lock()
_agent = None
_hooks_installed = False


def _log():
    import logging
    return logging.getLogger("heapsnap.agent")


def _warn(msg, *args):
    try:
        _log().warning(msg, *args)
    except Exception:  # never let logging take the program down
        pass


def current():
    """The running agent of this process, or None."""
    a = _agent
    return a if a is not None and a.running else None


# --------------------------------------------------------------------------
# arguments

def _signal_number(sig):
    return _opts.signal_number(sig)


def _signal_name(num):
    return _opts.signal_name(num)


def _size(text, label="size"):
    """'512', '64K', '10M', '2G' (powers of 1024) -> bytes."""
    return _opts.size(text, label)


def _socket_dir():
    """The directory of the socket, made if needed: $HEAPSNAP_AGENT_DIR as
    given, else /tmp/heapsnap-<uid> (0700). Either must be a directory, not
    a symbolic link, ours, and not writable by other users."""
    import stat
    uid = os.geteuid()
    d = os.environ.get("HEAPSNAP_AGENT_DIR")
    what = "HEAPSNAP_AGENT_DIR"
    if d:
        d = os.path.abspath(d)
    else:
        d = "/tmp/heapsnap-%d" % uid
        what = "the agent's socket directory"
    try:
        os.makedirs(d, 0o700, exist_ok=True)
    except FileExistsError:
        pass  # not a directory: said below
    st = os.lstat(d)
    why = None
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        why = "it is not a directory"
    elif st.st_uid != uid:
        why = "it belongs to uid %d" % st.st_uid
    elif stat.S_IMODE(st.st_mode) & 0o022 and not st.st_mode & stat.S_ISVTX:
        why = "other users can write to it (mode %04o)" % stat.S_IMODE(st.st_mode)
    if why:
        raise PermissionError(errno.EPERM, "heapsnap: cannot use '%s' (%s) for the agent's socket: %s; "
                              "remove it, or set HEAPSNAP_AGENT_DIR to a directory of your own"
                              % (d, what, why), d)
    if what != "HEAPSNAP_AGENT_DIR" and stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(d, 0o700)
    return d


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale(d, own):
    """Sockets agent-<pid>.sock of agents whose process is gone (a child that
    ended with os._exit, a process killed by a signal): nobody listens on
    them. Only sockets of this user are touched (lstat: a symbolic link or
    any other file is left alone, never followed), and only when the
    process is gone and a connection is refused."""
    import stat
    uid = os.geteuid()
    try:
        names = os.listdir(d)
    except OSError:
        return
    for name in names:
        digits = name[6:-5] if name.startswith("agent-") and name.endswith(".sock") else ""
        if not (digits.isdigit() and digits.isascii()) or int(digits) == own or _pid_alive(int(digits)):
            continue
        path = os.path.join(d, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
            continue
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.settimeout(0.2)
            s.connect(path)
        except ConnectionRefusedError:
            try:
                st2 = os.lstat(path)
                if (st2.st_ino, st2.st_dev) == (st.st_ino, st.st_dev):  # not replaced meanwhile
                    os.unlink(path)
            except OSError:
                pass
        except OSError:
            pass
        finally:
            s.close()


# --------------------------------------------------------------------------
# the agent

class Agent:
    """A running agent; made by heapsnap.agent.start()."""

    def __init__(self, socket=True, signal=None, every=None, keep=5, max_bytes=None,
                 directory=None, fork=False, min_free=None, after_fork=True):
        # every option checked here, at start: one ValueError naming the
        # option, never a surprise in one of the agent's threads later
        o = _opts.check(socket=socket, signal=signal, every=every, keep=keep, max_bytes=max_bytes,
                        directory=directory, fork=fork, min_free=min_free, after_fork=after_fork)
        self.options = dict(o)  # a forked child's agent starts from these
        self.socket = o["socket"]
        self.signal = o["signal"]
        self.every = o["every"]
        self.keep = o["keep"]
        self.max_bytes = o["max_bytes"]
        self.min_free = DEFAULT_MIN_FREE if o["min_free"] is None else o["min_free"]
        self.fork = o["fork"]
        self.after_fork = o["after_fork"]
        self.directory = o["directory"] if (self.signal or self.every) else None
        self.pid = os.getpid()
        self.socket_path = None
        self.running = False
        self.started = None
        self.started_t = None
        self._stopping = False
        self._listener = None
        self._socket_ino = None
        self._wake = None
        self._sigpipe = None
        self._threads = []
        self._conns = set()
        self._conn_lock = threading.Lock()
        self._dump_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._euid = os.geteuid()
        self._snap_n = 0
        self._largest = 0
        self.counts = dict(connections=0, refused=0, busy=0, commands=0, errors=0,
                           dumps=0, snapshots_written=0, snapshots_skipped=0,
                           snapshots_failed=0, snapshots_removed=0)
        self.last_skip = None
        self.last_snapshot = None

    def _count(self, key):
        with self._count_lock:  # from several threads: no lost increment
            self.counts[key] += 1

    def __repr__(self):
        return "<heapsnap.agent.Agent pid %d %s%s>" % (
            self.pid, "running" if self.running else "stopped",
            (" socket %s" % self.socket_path) if self.socket_path else "")

    # -- start and stop -------------------------------------------------

    def _start(self):
        self._wake = os.pipe()
        try:
            if self.socket:
                self._bind()
            if self.signal:
                import signal as _signal
                h = _signal.getsignal(self.signal)
                if h not in (_signal.SIG_DFL, None):
                    raise ValueError("heapsnap: signal %s already has a handler in this program "
                                     "(%r); choose another one" % (_signal_name(self.signal), h))
                r, w = os.pipe()
                os.set_blocking(w, False)
                self._sigpipe = (r, w)
                _heapsnap._signal_install(self.signal, w)
        except BaseException:
            self._close_all(unlink=True)
            raise
        self.running = True
        self.started = time.time()
        self.started_t = time.monotonic()
        if self.socket:
            self._spawn(self._listen_loop, "heapsnap-agent")
        if self.signal or self.every:
            self._spawn(self._snapshot_loop, "heapsnap-agent-snapshots")

    def _spawn(self, fn, name, *args):
        def run():
            # never a traceback from one of our threads in the user's program
            try:
                fn(*args)
            except Exception as e:
                _warn("heapsnap: the agent's thread %s of process %d stopped: %s", name, self.pid,
                      _message(e))
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def _bind(self):
        d = _socket_dir()
        path = os.path.join(d, "agent-%d.sock" % self.pid)
        if len(os.fsencode(path)) > 107:
            raise OSError(errno.ENAMETOOLONG, "heapsnap: the agent's socket path is too long for a "
                          "Unix socket (107 bytes); set HEAPSNAP_AGENT_DIR to a shorter directory", path)
        _remove_stale(d, self.pid)
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            try:
                os.unlink(path)  # ours by its name: a process with our pid left it
            except FileNotFoundError:
                pass
            s.bind(path)
            os.chmod(path, 0o600)
            s.listen(MAX_CONNECTIONS)
            s.setblocking(False)
            self._socket_ino = os.stat(path).st_ino
        except BaseException:
            s.close()
            raise
        self._listener = s
        self.socket_path = path

    def stop(self, timeout=30.0):
        """Stop the agent: no more connections or snapshots; the socket file
        is removed. Waits up to `timeout` seconds for a snapshot being
        written. Idempotent."""
        if not self.running:
            return
        self.running = False
        self._stopping = True
        if self.signal:
            try:
                _heapsnap._signal_restore(self.signal)
            except OSError:
                pass
        self._unlink_socket()
        try:
            os.write(self._wake[1], b"x")
        except OSError:
            pass
        with self._conn_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
        end = time.monotonic() + timeout
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(max(0.0, end - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        if not self._threads:
            self._close_all(unlink=False)

    def _unlink_socket(self):
        path, ino = self.socket_path, self._socket_ino
        if not path:
            return
        try:
            if os.stat(path).st_ino == ino:  # not a newer agent's socket
                os.unlink(path)
        except OSError:
            pass

    def _close_all(self, unlink):
        if unlink:
            self._unlink_socket()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for pair in (self._wake, self._sigpipe):
            for fd in pair or ():
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake = self._sigpipe = None

    def _abandon_in_child(self):
        """In a forked child: drop the parent's agent without touching what
        belongs to the parent (its socket file, its threads)."""
        self.running = False
        self._stopping = True
        self._threads = []
        if self.signal:
            # the inherited handler writes into the parent's pipe, whose
            # descriptors are closed below: back to the program's
            # disposition (a child agent installs it again)
            try:
                _heapsnap._signal_restore(self.signal)
            except OSError:
                pass
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        self._conns = set()
        self._close_all(unlink=False)

    # -- information ----------------------------------------------------

    def _counts_copy(self):
        with self._count_lock:
            return dict(self.counts)

    def info(self):
        """What the AGENT command answers: the configuration and counters."""
        return {
            "pid": self.pid, "running": self.running, "socket": self.socket_path,
            "signal": _signal_name(self.signal) if self.signal else None,
            "every": self.every, "keep": self.keep, "max_bytes": self.max_bytes,
            "min_free": self.min_free, "directory": self.directory, "fork": self.fork,
            "after_fork": self.after_fork, "started": self.started,
            "connections_open": len(self._conns), "counts": self._counts_copy(),
            "last_snapshot": self.last_snapshot, "last_skip": self.last_skip,
            "limits": {"line_bytes": MAX_LINE, "line_seconds": LINE_TIMEOUT,
                       "idle_seconds": IDLE_TIMEOUT, "send_seconds": SEND_TIMEOUT,
                       "connections": MAX_CONNECTIONS},
        }

    # -- the socket -----------------------------------------------------

    def _listen_loop(self):
        p = select.poll()
        p.register(self._listener.fileno(), select.POLLIN)
        p.register(self._wake[0], select.POLLIN)
        wake = self._wake[0]
        while not self._stopping:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            if self._stopping or any(fd == wake for fd, _ in events):
                break
            if any(ev & (select.POLLNVAL | select.POLLERR) for _, ev in events):
                # the program closed our descriptors (a daemonising
                # os.closerange): nothing left to serve, and no busy loop
                _warn("heapsnap: the agent's socket of process %d was closed under it; the agent "
                      "stops listening (start it after the program daemonises)", self.pid)
                break
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stopping:
                    break
                time.sleep(0.1)  # EMFILE and the like: do not spin
                continue
            try:
                self._accept(conn)
            except Exception:
                conn.close()

    def _accept(self, conn):
        self._count("connections")
        try:
            creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", creds)
        except OSError:
            uid = -1
        if uid != self._euid and uid != 0:
            self._count("refused")
            conn.close()
            return
        with self._conn_lock:
            if len(self._conns) >= MAX_CONNECTIONS:
                busy = True
            else:
                busy = False
                self._conns.add(conn)
        if busy:
            self._count("busy")
            try:
                conn.setblocking(False)
                conn.send(_error("the agent serves %d connections at once; try again" % MAX_CONNECTIONS))
            except OSError:
                pass
            conn.close()
            return
        try:
            self._spawn_conn(conn)
        except BaseException:
            with self._conn_lock:
                self._conns.discard(conn)
            raise

    def _spawn_conn(self, conn):
        t = threading.Thread(target=self._serve, args=(conn,), name="heapsnap-agent-conn", daemon=True)
        t.start()
        # finished connection threads are dropped as new ones start
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, conn):
        buf = bytearray()
        line_start = 0.0
        try:
            conn.setblocking(True)
            while not self._stopping:
                nl = buf.find(b"\n")
                if nl >= 0:
                    if nl + 1 > MAX_LINE:
                        self._send(conn, _error("command line longer than %d bytes" % MAX_LINE))
                        break
                    line = bytes(buf[:nl])
                    del buf[:nl + 1]
                    line_start = time.monotonic()
                    reply = self._handle(line)
                    if not self._send(conn, reply):
                        break
                    continue
                if len(buf) >= MAX_LINE:
                    self._send(conn, _error("command line longer than %d bytes" % MAX_LINE))
                    break
                if buf:
                    left = line_start + LINE_TIMEOUT - time.monotonic()
                    if left <= 0:
                        self._send(conn, _error("command line not finished within %g s" % LINE_TIMEOUT))
                        break
                    conn.settimeout(left)
                else:
                    conn.settimeout(IDLE_TIMEOUT)
                try:
                    chunk = conn.recv(MAX_LINE)
                except _socket.timeout:
                    if buf:
                        continue  # the line deadline is checked above
                    break  # idle
                if not chunk:
                    break
                if not buf:
                    line_start = time.monotonic()
                buf += chunk
        except OSError:
            pass  # the client went away
        finally:
            with self._conn_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn, data):
        try:
            conn.settimeout(SEND_TIMEOUT)
            conn.sendall(data)
            return True
        except OSError:
            return False

    def _handle(self, line):
        self._count("commands")
        if line.endswith(b"\r"):
            line = line[:-1]
        word, _, rest = line.strip().partition(b" ")
        try:
            cmd = word.decode("ascii")
        except UnicodeDecodeError:
            cmd = None
        fn = _COMMANDS.get(cmd) if cmd else None
        if fn is None:
            self._count("errors")
            shown = word[:40].decode("ascii", "replace") if word else ""
            return _error("unknown command '%s'; the commands are %s" % (shown, " ".join(sorted(_COMMANDS))))
        try:
            reply = fn(self, rest.strip())
            return _encode(reply)
        except OSError as e:
            self._count("errors")
            return _error(_message(e), e.errno)
        except Exception as e:
            self._count("errors")
            return _error(_message(e))

    # -- commands -------------------------------------------------------

    def _cmd_hello(self, arg):
        if arg:
            raise ValueError("HELLO takes no argument")
        return {"ok": True, "protocol": PROTOCOL, "pid": os.getpid(), "ppid": os.getppid(),
                "python": "%d.%d.%d" % sys.version_info[:3], "hexversion": sys.hexversion,
                "heapsnap": heapsnap.__version__,
                "argv": [a if isinstance(a, str) else repr(a) for a in list(getattr(sys, "argv", []))],
                "executable": sys.executable, "uid": self._euid,
                "started": self.started, "t": time.monotonic(), "wall": time.time(),
                "commands": sorted(_COMMANDS)}

    def _cmd_stats(self, arg):
        words = arg.split()
        if words not in ([], [b"fast"]):
            raise ValueError("STATS takes no argument but 'fast'")
        return stats(fast=bool(words))

    def _cmd_types(self, arg):
        words = arg.split()
        top, gc_only = 20, False
        for w in words:
            if w.isdigit():
                top = int(w)
            elif w == b"gc":
                gc_only = True
            else:
                raise ValueError("TYPES takes a count and optionally 'gc', not '%s'"
                                 % w[:40].decode("ascii", "replace"))
        if not 1 <= top <= TYPES_MAX:
            raise ValueError("TYPES: the count must be between 1 and %d" % TYPES_MAX)
        return types(top, gc_only=gc_only)

    def _cmd_marks(self, arg):
        return dict({"ok": True}, **_events.marks(_since_arg(arg, "MARKS")))

    def _cmd_gcevents(self, arg):
        return dict({"ok": True}, **_events.gc_events(_since_arg(arg, "GCEVENTS")))

    def _cmd_dump(self, arg):
        use_fork = False
        if arg.endswith(b" fork"):
            arg, use_fork = arg[:-5].rstrip(), True
        if not arg or not arg.startswith(b"/") or b"\0" in arg:
            raise ValueError("DUMP needs an absolute path (then optionally 'fork')")
        path = os.fsdecode(arg)
        self._count("dumps")
        t0 = time.monotonic()
        with self._dump_lock:
            if use_fork:
                r = heapsnap.dump(path, fork=True, wait=True)
            else:
                r = heapsnap.dump(path)
        out = {"ok": True, "path": r.get("path", path), "objects": r.get("objects"),
               "edges": r.get("edges"), "bytes": r.get("bytes"),
               "pause_seconds": r.get("pause_seconds"), "seconds": time.monotonic() - t0,
               "fork": use_fork}
        if use_fork:
            out["child_pid"] = r.get("pid")
            out["child_seconds"] = r.get("child_seconds")
            out["child_private_dirty"] = r.get("child_private_dirty_bytes")
        return out

    def _cmd_track(self, arg):
        word, _, rest = arg.partition(b" ")
        word = word.decode("ascii", "replace")
        if word == "START":
            lt = _lines_start(_track_opts(rest.decode("ascii", "replace")), True)
            return lt.read()
        lt = _lines
        if word in ("READ", "STOP"):
            known = rest.split()
            try:
                known = [int(x) for x in known]
            except ValueError:
                known = None
            if known is None or len(known) > 3:
                raise ValueError("TRACK %s takes [LOCATIONS STACKS PEAK]: the counts of location "
                                 "and stack definitions known and the peak known" % word)
            if lt is None:
                raise ValueError("tracking is not on in this process (TRACK START first)")
            return lt.read(*known, stop=word == "STOP")
        raise ValueError("TRACK takes START [OPTIONS], READ or STOP")

    def _cmd_agent(self, arg):
        if arg:
            raise ValueError("AGENT takes no argument")
        return dict({"ok": True}, **self.info())

    # -- snapshots on a signal or a timer --------------------------------

    def _snapshot_loop(self):
        p = select.poll()
        p.register(self._wake[0], select.POLLIN)
        if self._sigpipe:
            p.register(self._sigpipe[0], select.POLLIN)
        wake = self._wake[0]
        sigfd = self._sigpipe[0] if self._sigpipe else -1
        due = time.monotonic() + self.every if self.every else None
        while not self._stopping:
            timeout = None
            if due is not None:
                timeout = max(0, int((due - time.monotonic()) * 1000) + 1)
            try:
                events = p.poll(timeout)
            except InterruptedError:
                continue
            if self._stopping or any(fd == wake for fd, _ in events):
                break
            if any(ev & (select.POLLNVAL | select.POLLERR) for _, ev in events):
                _warn("heapsnap: the agent's pipes of process %d were closed under it; no more "
                      "signal or periodic snapshots", self.pid)
                break
            if any(fd == sigfd for fd, _ in events):
                try:
                    os.read(sigfd, 4096)  # several signals: one snapshot
                except OSError:
                    pass
                self._snapshot("signal")
            if due is not None and time.monotonic() >= due:
                self._snapshot("periodic")
                due += self.every
                now = time.monotonic()
                if due <= now:
                    due = now + self.every  # a snapshot longer than the period

    def _snapshot(self, why):
        with self._dump_lock:
            if self._stopping:
                return None
            self._snap_n += 1
            name = "heapsnap-%d-%s-%d.hsnap" % (self.pid, time.strftime("%Y%m%d-%H%M%S"), self._snap_n)
            path = os.path.join(self.directory, name)
            try:
                st = os.statvfs(self.directory)
                free = st.f_bavail * st.f_frsize
            except OSError as e:
                self._skip(why, "cannot check the free space of '%s': %s" % (self.directory, e.strerror))
                return None
            need = max(self.min_free, 2 * self._largest)
            if free < need:
                self._skip(why, "only %s free in '%s', below the margin of %s"
                           % (_human(free), self.directory, _human(need)))
                return None
            try:
                if self.fork:
                    r = heapsnap.dump(path, fork=True, wait=True)
                else:
                    r = heapsnap.dump(path)
            except Exception as e:
                self._count("snapshots_failed")
                _warn("heapsnap: %s snapshot of process %d failed: %s", why, self.pid, _message(e))
                return None
            self._count("snapshots_written")
            self._largest = max(self._largest, int(r.get("bytes") or 0))
            self.last_snapshot = path
            try:
                _log().info("heapsnap: wrote %s (%s snapshot, %s objects, %s)", path, why,
                            r.get("objects"), _human(r.get("bytes") or 0))
            except Exception:
                pass
            self._prune(path)
            return path

    def _skip(self, why, reason):
        self._count("snapshots_skipped")
        self.last_skip = {"wall": time.time(), "reason": reason, "trigger": why}
        _warn("heapsnap: %s snapshot of process %d skipped: %s", why, self.pid, reason)

    def _prune(self, newest):
        """Keep the newest `keep` of this process's snapshot files, and at
        most `max_bytes` of them; the one just written always stays."""
        if self.keep is None and self.max_bytes is None:
            return
        files = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            n = _snapshot_number(name, self.pid)
            if n is None:
                continue
            p = os.path.join(self.directory, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            files.append((p == newest, st.st_mtime_ns, n, p, st.st_size))
        files.sort()  # oldest first; the newest file last whatever its time
        total = sum(f[4] for f in files)
        n = len(files)
        for is_newest, _, _, p, size in files:
            if is_newest:
                break
            if (self.keep is None or n <= self.keep) and (self.max_bytes is None or total <= self.max_bytes):
                break
            try:
                os.unlink(p)
                self._count("snapshots_removed")
            except OSError:
                continue
            n -= 1
            total -= size
        if self.max_bytes is not None and total > self.max_bytes:
            _warn("heapsnap: the newest snapshot alone (%s) exceeds max_bytes (%s): kept",
                  newest, _human(self.max_bytes))


_COMMANDS = {
    "HELLO": Agent._cmd_hello,
    "STATS": Agent._cmd_stats,
    "TYPES": Agent._cmd_types,
    "MARKS": Agent._cmd_marks,
    "GCEVENTS": Agent._cmd_gcevents,
    "DUMP": Agent._cmd_dump,
    "AGENT": Agent._cmd_agent,
    "TRACK": Agent._cmd_track,
}


def _snapshot_number(name, pid):
    """n of "heapsnap-<pid>-<YYYYmmdd>-<HHMMSS>-<n>.hsnap", else None (no
    regular expressions: `re` costs start-up time)."""
    head = "heapsnap-%d-" % pid
    if not name.startswith(head) or not name.endswith(".hsnap"):
        return None
    parts = name[len(head):-len(".hsnap")].split("-")
    if (len(parts) != 3 or len(parts[0]) != 8 or len(parts[1]) != 6 or
            not all(p.isdigit() and p.isascii() for p in parts)):
        return None
    return int(parts[2])


def _since_arg(arg, cmd):
    if not arg:
        return 0
    if not arg.isdigit():
        raise ValueError("%s takes a sequence number (0 or more)" % cmd)
    return int(arg)


def _message(e):
    m = str(e) or type(e).__name__
    if isinstance(e, OSError) and e.strerror and not str(e).startswith("heapsnap"):
        m = e.strerror + ((": '%s'" % e.filename) if e.filename else "")
    if m.startswith("heapsnap: "):
        m = m[len("heapsnap: "):]
    return m


def _encode(obj):
    import json
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode("ascii")


def _error(message, err=None):
    r = {"ok": False, "error": message}
    if err:
        r["errno"] = err
    return _encode(r)


def _human(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0


# --------------------------------------------------------------------------
# the figures, also usable without an agent

def stats(fast=False):
    """The STATS reply as a dict (formats/agent-protocol.md): process
    memory, GC figures (objects tracked, collections, pause times from the
    GC ring), pymalloc. fast=True leaves out uss and pss."""
    import gc
    t, wall = time.monotonic(), time.time()
    s = _heapsnap._stats(fast=fast)
    r = {"ok": True, "t": t, "wall": wall}
    for k in ("rss", "vms", "swap", "uss", "pss"):
        if s.get(k) is not None:
            r[k] = s[k]
    r["threads"] = s["python_threads"]
    r["agent_threads"] = sum(1 for t in threading.enumerate() if t.name.startswith("heapsnap-agent"))
    if s.get("os_threads") is not None:
        r["os_threads"] = s["os_threads"]
    g = {"enabled": gc.isenabled(), "counts": list(gc.get_count()),
         "thresholds": list(gc.get_threshold()),
         "pause_seconds": _events.gc_pause_seconds(), "pause_since": _events.since}
    if s.get("tracked_objects") is not None:
        g["tracked_objects"] = s["tracked_objects"]
        g["tracked_per_generation"] = s["tracked_per_generation"]
    else:
        g["collecting"] = True
    st = gc.get_stats()
    for key in ("collections", "collected", "uncollectable"):
        g[key] = [d.get(key, 0) for d in st]
    try:
        g["frozen"] = gc.get_freeze_count()
    except AttributeError:
        pass
    r["gc"] = g
    r["pymalloc"] = {k: v for k, v in s["pymalloc"].items() if v is not None}
    r["seconds"] = time.monotonic() - t
    return r


def types(top=20, gc_only=False):
    """The TYPES reply as a dict: objects and bytes per type (the `top`
    largest by bytes), counted the way a snapshot counts them, without
    writing one."""
    r = _heapsnap._types(top, gc_only=gc_only)
    out = {"ok": True, "t": time.monotonic(), "objects": r["objects"], "bytes": r["bytes"],
           "seconds": r["seconds"], "walk_seconds": r["walk_seconds"], "mode": r["mode"],
           "type_names": r["type_names"], "estimated": r["estimated"], "types": r["types"]}
    return out


# --------------------------------------------------------------------------
# the module's functions

def start(socket=True, signal=None, every=None, keep=5, max_bytes=None, directory=None,
          fork=False, min_free=None, after_fork=True):
    """Start the agent of this process and return it; when one runs
    already, return that one unchanged (stop() it first to change options).

    socket     listen on /tmp/heapsnap-<uid>/agent-<pid>.sock (0600; the
               directory 0700), or $HEAPSNAP_AGENT_DIR/agent-<pid>.sock
    signal     a signal that writes a snapshot: USR1, USR2 or a real-time
               signal (RTMIN..RTMAX, "RTMIN+2"), by name ("SIGUSR2",
               "USR2") or number; refused when the program has a handler
               for it, and for any other signal (crash signals such as SEGV
               must keep their default action)
    every      seconds between periodic snapshots, 1 to 30 days
    keep       snapshot files of this process kept in `directory` (the
               newest; 1 to 100,000, None: no limit)
    max_bytes  at most that many bytes of them (the newest always stays)
    directory  where signal and periodic snapshots go (default: the
               current directory at start): an existing directory, not a
               symbolic link, this user's or root's, not writable by
               other users unless sticky
    fork       take those snapshots in fork mode (the process pauses for
               the fork only; see heapsnap.dump)
    min_free   skip a snapshot when the filesystem has less free space
               than this (bytes; default 64 MiB, at least twice the
               largest snapshot written)
    after_fork a child made by os.fork() starts an agent of its own

    Raises ValueError for a bad option (the message names it, the value
    and what is allowed: heapsnap/_agent_options.py), even when an agent
    runs already; OSError when the socket cannot be made.
    """
    global _agent
    _opts.check(socket=socket, signal=signal, every=every, keep=keep, max_bytes=max_bytes,
                directory=directory, fork=fork, min_free=min_free, after_fork=after_fork)
    with _state_lock:
        if _agent is not None and _agent.running:
            return _agent
        a = Agent(socket=socket, signal=signal, every=every, keep=keep, max_bytes=max_bytes,
                  directory=directory, fork=fork, min_free=min_free, after_fork=after_fork)
        _install_hooks()
        a._start()
        _agent = a
        return a


def stop(timeout=30.0):
    """Stop the agent of this process, if any (see Agent.stop)."""
    global _agent
    with _state_lock:
        a, _agent = _agent, None
    if a is not None:
        a.stop(timeout)


def _install_hooks():
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_exit():
    _lines_final_file()
    try:
        stop(timeout=30.0)
    except Exception:
        pass


def _after_fork_in_child():
    global _agent, _state_lock
    _state_lock = threading.Lock()  # another thread may have held it at fork time
    a, _agent = _agent, None
    if a is None:
        return
    was_running = a.running
    a._abandon_in_child()
    if not was_running or not a.after_fork:
        return
    _lines_after_fork()
    try:
        child = Agent(**a.options)
        child._start()
        _agent = child
    except Exception as e:
        _warn("heapsnap: the agent could not start in child process %d: %s", os.getpid(), _message(e))


# --------------------------------------------------------------------------
# allocation tracking for `heapsnap record --lines` (TRACK START/READ/STOP)

def _track_opts(text):
    """"exact" / "sample=524288,seed=1,all_frames,native" -> Tracker kwargs."""
    opts = {"exact": False, "sample_bytes": 512 * 1024, "seed": None, "all_frames": False,
            "native": None}
    for item in text.replace(" ", ",").split(","):
        item = item.strip()
        if not item or item.lower() in ("1", "on", "yes", "sampled"):
            continue
        key, eq, val = item.partition("=")
        key = key.lower().replace("-", "_")
        if key == "exact" and not eq:
            opts["exact"] = True
        elif key in ("sample", "sample_bytes") and eq:
            opts["sample_bytes"] = _size(val)
            if opts["sample_bytes"] < 1:
                raise ValueError("sample=%s must be at least 1 byte" % val)
        elif key == "seed" and eq and val.isdigit():
            opts["seed"] = int(val)
        elif key == "all_frames" and not eq:
            opts["all_frames"] = True
        elif key == "native" and not eq:
            opts["native"] = True
        else:
            raise ValueError("bad tracking option '%s' (exact, sample=BYTES, seed=N, all_frames, "
                             "native)" % item)
    return opts


class _LineTrack(object):
    """One tracker for the recorder. Replies are absolute (figures so far per
    stack), and definitions are sent from the ids the client says it knows,
    so a reply lost on the way (the process exiting while it is sent) loses
    nothing: the next reply, or the file written at exit, has it all."""

    def __init__(self, opts, from_now):
        from heapsnap import _track
        self._track = _track
        self.opts = opts
        self.from_now = from_now
        self.lock = threading.Lock()
        self.tracker = _track.Tracker(exact=opts["exact"], sample_bytes=opts["sample_bytes"],
                                      all_frames=opts["all_frames"], seed=opts["seed"],
                                      native=opts["native"])
        self.stack_ids = {}     # (kind, thread, truncated, frames) -> id, -1: heapsnap's own
        self.stack_defs = []    # per id: its definition
        self.own_codes = []     # per code: a file of the heapsnap package (the agent's work)
        self.lib = []           # per location: library flag
        self.final = None       # the last export, once stopped
        self.finished = False
        self.t0 = time.monotonic()
        self.tracker.start()

    def read(self, known_locs=0, known_stacks=0, known_peak=-1, stop=False):
        with self.lock:
            if self.finished:
                d = self.final
            else:
                if stop:
                    self.tracker.stop()
                    self.finished = True
                d = self.tracker._data()
                if stop:
                    self.final = d
            return self._reply(d, known_locs, known_stacks, known_peak)

    def _reply(self, d, known_locs, known_stacks, known_peak):
        now = time.monotonic()
        tot = d.get("totals", {})
        out = {"ok": True, "t": now, "active": not self.finished, "final": self.finished}
        if tot.get("forked_child"):
            out.update(locs=[], stacks=[], figures=[], forked_child=True)
            return out
        out["settings"] = {"exact": bool(tot.get("exact")),
                           "sample_bytes": int(tot.get("sample_bytes") or 0),
                           "seed": tot.get("seed"), "native": bool(tot.get("native")),
                           "all_frames": self.opts["all_frames"],
                           "peak_basis": tot.get("peak_basis", ""),
                           "from_now": self.from_now, "t": self.t0}
        codes, locs, threads = d["codes"], d["locs"], d["threads"]
        own = self.own_codes
        for i in range(len(own), len(codes)):
            own.append(codes[i][0].startswith(_PACKAGE_DIR))
        is_lib = self._track.is_library
        for i in range(len(self.lib), len(locs)):
            self.lib.append(1 if is_lib(codes[locs[i][0]][0]) else 0)
        new_locs = []
        for i in range(max(known_locs, 0), len(locs)):
            code, line = locs[i]
            fn, qn, first = codes[code]
            new_locs.append([i, fn, qn, line, first, self.lib[i]])
        figures = []
        peak_rows = []
        for st in d["stacks"]:
            kind, thread, trunc, frames = st[0], st[1], st[2], st[3]
            key = (kind, thread, trunc, frames)
            sid = self.stack_ids.get(key)
            if sid is None:
                if any(own[locs[f][0]] for f in frames):
                    sid = self.stack_ids[key] = -1  # the agent's own work: not the program's
                else:
                    sid = self.stack_ids[key] = len(self.stack_defs)
                    th = threads[thread] if 0 <= thread < len(threads) else None
                    self.stack_defs.append([sid, kind, th[1] if th else -1, th[2] if th else None,
                                            trunc, list(frames)])
            if sid < 0:
                continue
            figures.append([sid, st[5], st[6], st[8], st[9]])
            if st[11]:
                peak_rows.append([sid, st[10], st[11]])
        out["locs"] = new_locs
        out["stacks"] = self.stack_defs[max(known_stacks, 0):]
        out["figures"] = figures
        pk = tot.get("peak_bytes")
        if pk is not None and pk > 0 and pk != known_peak:
            out["peak"] = {"bytes": pk, "stacks": peak_rows}
        out["final_bytes"] = tot.get("final_bytes")
        return out


_lines = None
_lines_lock = threading.Lock()
# heapsnap's own code by the package's location (as imported and resolved),
# never by a directory name: a checkout called heapsnap/ is the user's code
_PACKAGE_DIR = tuple({os.path.dirname(os.path.abspath(__file__)) + os.sep,
                      os.path.dirname(os.path.realpath(__file__)) + os.sep})


def _lines_start(opts, from_now):
    global _lines
    with _lines_lock:
        if _lines is not None and not _lines.finished:
            raise ValueError("tracking is already on in this process")
        _lines = _LineTrack(opts, from_now)
        return _lines


def _lines_final_file():
    """At exit (the recorder may not read again): the last figures into
    $HEAPSNAP_AGENT_DIR/track-<pid>.json, written under a temporary name."""
    lt = _lines
    d = os.environ.get("HEAPSNAP_AGENT_DIR")
    if lt is None or lt.finished or not d:
        return
    try:
        reply = _encode(lt.read(0, 0, -1, stop=True))
        final = os.path.join(d, "track-%d.json" % os.getpid())
        # created exclusively, never through a link, 0600, then renamed:
        # HEAPSNAP_AGENT_DIR may be a shared directory
        tmp = "%s.tmp.%d.%s" % (final, os.getpid(), os.urandom(4).hex())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(reply)
            if os.path.islink(final):
                raise PermissionError(errno.EPERM, "refusing to replace '%s': it is a symbolic "
                                      "link" % final)
            os.rename(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except Exception as e:
        _warn("heapsnap: the last allocation figures of process %d were lost: %s", os.getpid(),
              _message(e))


def _lines_exit_hooks():
    """For `record --lines`: multiprocessing's fork workers (and other
    children made by os.fork()) leave by os._exit, which runs no atexit:
    wrap it so their last figures are written as at a normal exit."""
    real_exit = os._exit
    if getattr(real_exit, "__wrapped__", None):
        return  # already wrapped (a forked child inherits the wrapper)

    def _exit(status):
        try:
            _lines_final_file()
        finally:
            real_exit(status)
    _exit.__wrapped__ = real_exit
    os._exit = _exit


def _lines_after_fork():
    """In a child made by fork: the parent's tracker stopped there (see
    heapsnap.track); start the child's own when the recorder asked for it."""
    global _lines
    _lines = None
    value = os.environ.get("HEAPSNAP_TRACK")
    if value:
        try:
            _lines_start(_track_opts(value), False)
        except Exception as e:
            _warn("heapsnap: allocation tracking could not start in child process %d: %s",
                  os.getpid(), _message(e))


# --------------------------------------------------------------------------
# HEAPSNAP_AGENT and python -m heapsnap.agent

def _parse_env(value):
    """HEAPSNAP_AGENT's value -> start() keyword arguments, or None (off)."""
    r = _opts.parse_env(value)
    if r is None:
        return None
    opts, labels = r
    return _opts.check(labels=labels, **opts)


def _start_from_env():
    """Called at interpreter start-up (heapsnap/_bootstrap/sitecustomize.py,
    heapsnap-agent.pth): start the agent HEAPSNAP_AGENT asks for. Never
    raises: a problem is one line on stderr and the program runs on."""
    value = os.environ.get("HEAPSNAP_AGENT")
    if value is None:
        return None
    try:
        opts = _parse_env(value)
        if opts is None:
            return None
        track = os.environ.get("HEAPSNAP_TRACK")
        if track:
            # before the agent's fork hook is installed: heapsnap.track's own
            # after-fork clean-up runs first in a child
            topts = _track_opts(track)
            # imported now, not lazily by a connection thread: a fork while
            # a thread imports leaves the module's import lock held in the
            # child (3.8), whose exit would then wait for it forever
            import json  # noqa: F401
            from heapsnap import _track  # noqa: F401
        a = start(**opts)
        if track:
            _lines_start(topts, False)
            _lines_exit_hooks()
        return a
    except Exception as e:
        try:
            sys.stderr.write("heapsnap: HEAPSNAP_AGENT='%s': %s; the agent was not started\n"
                             % (value, _message(e)))
        except Exception:
            pass
        return None


_USAGE = ("usage: python -m heapsnap.agent [--signal SIG] [--every SECONDS] [--keep N]\n"
          "                                [--max-bytes BYTES] [--min-free BYTES] [--dir DIR]\n"
          "                                [--fork] [--no-socket] (script.py | -m module) [args...]\n")


def _main(argv):
    opts = {}
    i = 0
    takes = {"--signal": "signal", "--every": "every", "--keep": "keep", "--max-bytes": "max_bytes",
             "--min-free": "min_free", "--dir": "directory"}
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(_USAGE + "\nRun a Python program with the heapsnap agent (see "
                             "heapsnap.agent.start).\n")
            return 0
        if a == "--":
            i += 1
            break
        if a == "--fork":
            opts["fork"] = True
        elif a == "--no-socket":
            opts["socket"] = False
        elif a.split("=", 1)[0] in takes:
            name, eq, val = a.partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    sys.stderr.write("heapsnap: %s needs a value\n%s" % (name, _USAGE))
                    return 129
                i += 1
                val = argv[i]
            opts[takes[name]] = val
        elif a.startswith("-") and a != "-m":
            sys.stderr.write("heapsnap: unknown option '%s'\n%s" % (a, _USAGE))
            return 129
        else:
            break
        i += 1
    rest = argv[i:]
    if not rest:
        sys.stderr.write("heapsnap: no program given\n" + _USAGE)
        return 129
    try:
        labels = {"directory": "--dir", "max_bytes": "--max-bytes", "min_free": "--min-free",
                  "signal": "--signal", "every": "--every", "keep": "--keep"}
        start(**_opts.check(labels=labels, **opts))
    except (ValueError, TypeError) as e:
        sys.stderr.write("heapsnap: %s\n%s" % (_message(e), _USAGE))
        return 129
    except OSError as e:
        sys.stderr.write("heapsnap: cannot start the agent: %s\n" % _message(e))
        return 2
    from heapsnap import _runner
    import traceback
    try:
        if rest[0] == "-m":
            if len(rest) < 2:
                sys.stderr.write("heapsnap: -m needs a module name\n" + _USAGE)
                return 129
            import runpy
            sys.argv = [rest[1]] + rest[2:]
            sys.path[0] = os.getcwd()
            runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
        else:
            if not os.path.exists(rest[0]):
                sys.stderr.write("heapsnap: cannot run '%s': no such file\n" % rest[0])
                return 2
            _runner._run_script(rest[0], rest[1:])
    except SystemExit:
        raise
    except BaseException as e:
        tb = e.__traceback__
        skip = {__file__, _runner.__file__}
        if "runpy" in sys.modules:
            skip.add(sys.modules["runpy"].__file__)
        while tb is not None and tb.tb_frame.f_code.co_filename in skip:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        return 130 if isinstance(e, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    # run by `python -m heapsnap.agent`: the state must live in the real
    # module (heapsnap.agent), which the program may import too
    from heapsnap import agent as _real
    sys.exit(_real._main(sys.argv[1:]))
