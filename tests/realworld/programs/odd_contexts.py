"""dump() from the places real programs call it: a signal handler, __del__,
a weakref callback, profile/trace/sys.monitoring callbacks, a metaclass, a
module being imported, several threads at once, a daemon thread and atexit.
None may crash; only the GC-callback cases are refused (RuntimeError)."""
import atexit, gc, os, signal, sys, threading, time, weakref
import heapsnap
import rwcheck as R

n = [0]
errors = []
SNAP = R.path("odd.hsnap")


def d(tag, path=SNAP):
    n[0] += 1
    try:
        heapsnap.dump(path)
    except RuntimeError as e:
        errors.append((tag, str(e)))


signal.signal(signal.SIGUSR1, lambda *a: d("signal"))
t = threading.Thread(target=lambda: [os.kill(os.getpid(), signal.SIGUSR1) or time.sleep(0.01) for _ in range(10)])
t.start()
x = 0
while t.is_alive():
    x += sum([i * 2 for i in range(1000)])
t.join()


class Del:
    def __del__(self): d("del")


Del()


class W: pass


w = W(); ref = weakref.ref(w, lambda r: d("weakref")); del w
gc.callbacks.append(lambda phase, info: d("gc-callback") if phase == "start" else None)
gc.collect(); gc.callbacks.clear()


def f(k): return [k] * 3


def prof(frame, event, arg):
    if n[0] < 40: d("profile-" + event)


sys.setprofile(prof); f(1); len([]); sys.setprofile(None)


def tr(frame, event, arg):
    if n[0] < 60: d("trace-" + event)
    return tr


sys.settrace(tr); f(2); sys.settrace(None)
if hasattr(sys, "monitoring"):
    M = sys.monitoring
    M.use_tool_id(3, "heapsnap-test")
    cnt = [0]

    def cb(*a):
        if cnt[0] < 12:
            cnt[0] += 1; d("monitoring")
    ev = M.events.PY_START | M.events.PY_RETURN | M.events.CALL | M.events.PY_YIELD | M.events.RAISE
    for e in (M.events.PY_START, M.events.PY_RETURN, M.events.CALL, M.events.PY_YIELD, M.events.RAISE):
        M.register_callback(3, e, cb)
    M.set_events(3, ev)

    def g2():
        yield 1
    f(3); list(g2())
    try:
        f(None)[5]
    except IndexError:
        pass
    M.set_events(3, 0); M.free_tool_id(3)


class Meta(type):
    def __new__(m, name, bases, ns):
        d("metaclass"); return super().__new__(m, name, bases, ns)


class K(metaclass=Meta):
    d("class body")


with open(os.path.join(R.WORK, "hs_import_mod.py"), "w") as fh:
    fh.write("import heapsnap, sys\nheapsnap.dump(sys.argv[0] + '.imp.hsnap' if False else %r)\nX = 1\n"
             % os.path.join(R.WORK, "imp.hsnap"))
sys.path.insert(0, R.WORK)
import hs_import_mod  # noqa: E402,F401


def many(i):
    for _ in range(3):
        d("threads", R.path("t%d.hsnap" % i))


ts = [threading.Thread(target=many, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()



# A collection in another thread whose finalizer lets this thread run: the
# dump waits for the collection to end instead of failing (a threadpool
# request handler dumping while another request's thread collects).
class SlowDel:
    def __del__(self):
        time.sleep(0.3)


def collector():
    a = SlowDel(); a.self = a; del a
    gc.collect()


t = threading.Thread(target=collector)
t.start()
time.sleep(0.1)
d("other-thread-collecting")
t.join()
refused = sorted({tag for tag, _ in errors})
R.check(set(refused) <= {"gc-callback"}, "only the gc callback is refused: %r" % errors[:5])
s = R.hsnap.read(SNAP)
R.check(len(s.nodes) > 1000, "the last snapshot reads back")
print("%d dumps, refused: %r" % (n[0], refused))


def daemon():
    while True:
        d("daemon", R.path("daemon.hsnap"))


threading.Thread(target=daemon, daemon=True).start()
time.sleep(0.1)
atexit.register(lambda: d("atexit", R.path("atexit.hsnap")))
if R.problems:
    R.done()
print("0 problems")
