"""Stdlib C types, odd __sizeof__s and suspended coroutines/generators: every
object is a node and its getsizeof figure, where known, equals sys.getsizeof;
a suspended task's local and a generator's local are reached through their coroutine/generator."""
import array, asyncio, collections, ctypes, datetime, decimal, fractions, functools, hashlib, io
import itertools, mmap, operator, queue, re, socket, sqlite3, struct, sys, threading, types, weakref, zlib
import rwcheck as R


class NegSizeof:
    def __sizeof__(self): return -5
class HugeSizeof:
    def __sizeof__(self): return 1 << 62
class BadGetattr:
    def __getattr__(self, n): raise RuntimeError(n)
class BadGetattribute:
    def __getattribute__(self, n): raise RuntimeError(n)
class Marker: pass
class GenMarker: pass


@functools.lru_cache(maxsize=64)
def cached(x): return [x]


con = sqlite3.connect(":memory:")
cur = con.cursor(); cur.execute("create table t(a)"); cur.executemany("insert into t values (?)", [(i,) for i in range(50)])
cur.execute("select * from t")
mm = mmap.mmap(-1, 4096)
ba = bytearray(b"x" * 1000)
sock = socket.socket()
KEEP = dict(
    arr=array.array("d", range(1000)), dq=collections.deque(range(100), maxlen=200),
    od=collections.OrderedDict((i, str(i)) for i in range(100)), dd=collections.defaultdict(list, {1: [2]}),
    ctr=collections.Counter("abracadabra"), part=functools.partial(cached, 1), lru=cached,
    it=itertools.count(5), tee=itertools.tee(range(10)), grp=itertools.groupby("aabb"),
    dec=decimal.Decimal("1.2345678901234567890"), dctx=decimal.getcontext(), dt=datetime.datetime(2024, 1, 2),
    rx=re.compile(r"(\w+)\s(\d+)"), m=re.match(r"(\w+)", "hello world"), cint=ctypes.c_int(5),
    cbuf=ctypes.create_string_buffer(100), carr=(ctypes.c_double * 50)(), mm=mm, mv=memoryview(ba),
    bio=io.BytesIO(b"x" * 5000), sio=io.StringIO("y" * 5000), con=con, cur=cur, neg=NegSizeof(), huge=HugeSizeof(),
    bga=BadGetattr(), bgab=BadGetattribute(), frac=fractions.Fraction(3, 7), ns=types.SimpleNamespace(a=1),
    mp=types.MappingProxyType({1: 2}), wvd=weakref.WeakValueDictionary(), big=10 ** 1000, ustr="日本語" * 10,
    emoji="\U0001f600" * 5, surrogate="a\udc80b", fz=frozenset(range(100)), st=set(range(1000)), q=queue.Queue(),
    lock=threading.Lock(), rlock=threading.RLock(), sha=hashlib.sha256(), zc=zlib.compressobj(), sock=sock,
    stc=struct.Struct("iid"), ig=operator.itemgetter(1),
)
for i in range(80):
    cached(i)
"é" * 10  # noqa: B018


async def coro(ev):
    local_thing = Marker()  # noqa: F841
    await ev.wait()


def gen():
    gm = GenMarker()  # noqa: F841
    yield 1


async def main():
    ev = asyncio.Event()
    tasks = [asyncio.ensure_future(coro(ev)) for _ in range(500)]
    g = gen(); next(g)
    await asyncio.sleep(0)
    r, s = R.sizes(R.path("zoo.hsnap"))
    # Python-level __sizeof__ is never called (format 1.1): the lying ones
    # get their real block and no getsizeof figure
    for k in ("neg", "huge"):
        n = s.nodes.get(id(KEEP[k]))
        R.check(n is not None and 16 <= n.size < 4096 and s.getsizeof(n) is None,
                "%s: a real size (%r), no getsizeof figure" % (k, n))
    R.check(r["sizeof_errors"] == 0, "no __sizeof__ error: none written in Python is called: %r" % r)
    for k, o in KEEP.items():
        R.check(id(o) in s.nodes, "%s (%s) in the snapshot" % (k, type(o).__name__))
    s = None
    heapsnap_path = R.path("zoo2.hsnap")
    __import__("heapsnap").dump(heapsnap_path)
    ev.set()
    await asyncio.gather(*tasks)
    g.close()
    return heapsnap_path

p = asyncio.run(main())
j = R.cli_json("paths", p, "--type", "__main__.Marker")
texts = [x["text"] for x in j.get("paths", [])]
R.check(len(texts) == 1 and "_asyncio.Task" in texts[0] and "local local_thing" in texts[0]
        or len(texts) == 1 and "frame local local_thing" in texts[0],
        "a suspended task's local is reached through the task: %r" % texts)
j = R.cli_json("paths", p, "--type", "__main__.GenMarker")
texts = [x["text"] for x in j.get("paths", [])]
R.check(len(texts) == 1 and "local gm" in texts[0], "a generator's local is reached through it: %r" % texts)
sock.close(); mm.close(); con.close()
R.done()
