"""Real sizes (snapshot format 1.1): node sizes are the allocator blocks each
object owns, checked against tracemalloc, the independent truth.

tracemalloc records each block's requested size; the allocator serves a
request of n bytes with a block of round(n) bytes (pymalloc: 16-byte
classes up to 512; glibc: chunks of max(32, n + 8 rounded to 16), page-
rounded mmaps from 128 KiB). The comparisons apply that rounding to each
traced block and require heapsnap's sum of the objects' node sizes to be
within 2% of tracemalloc's (they are exact on the test heaps); the
requested (unrounded) figure is printed too.

Cases, in-process and fork mode: 100k instances of a 3-attribute class
(+ their __dict__s where they have one, + the list), lists, dicts, sets,
str, bytes, bytearrays, tuples; REPORTED equals sys.getsizeof for every one
of them in-process (and for the builtin kinds in fork mode); the two modes
give identical node sizes; META_END's byte figures add up to the total.
usage: sizes_tests.py
"""
import gc
import os
import sys
import tempfile
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import hsnap  # noqa: E402
import heapsnap  # noqa: E402

FAILS = []


def check(cond, what, detail=""):
    print("%s %s%s" % ("ok  " if cond else "FAIL", what, ("\n     " + detail) if detail and not cond else ""))
    if not cond:
        FAILS.append(what)
    return cond


def block(n):
    """The block the allocator serves for a request of n bytes (blocks.c)."""
    if n <= 0:
        return 0
    if n <= 512:
        return (n + 15) & ~15
    if n >= 128 * 1024:
        return (n + 16 + 4095) & ~4095
    return max(32, (n + 8 + 15) & ~15)


class Point3:
    def __init__(self, i):
        self.a = i % 200  # small ints: preallocated, not part of the measure
        self.b = None
        self.c = True


def measured(make):
    """(result, tracemalloc requested bytes, rounded bytes) of make()."""
    gc.collect()
    tracemalloc.start()
    t0 = tracemalloc.take_snapshot()
    objs = make()
    t1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    req = sum(t.size for t in t1.traces) - sum(t.size for t in t0.traces)
    rnd = sum(block(t.size) for t in t1.traces) - sum(block(t.size) for t in t0.traces)
    return objs, req, rnd


def owned(snap, node):
    """A node's size plus its __dict__'s (3.8-3.10 instances)."""
    total = node.size
    for e in node.edges:
        if e.label_kind == hsnap.L_NAME and snap.strings[e.label] == "__dict__" and e.target in snap.nodes:
            total += snap.nodes[e.target].size
    return total


CASES = [
    ("100k Point3 instances", lambda: [Point3(i) for i in range(100000)], True),
    ("10k lists of 0..49 items", lambda: [[None] * (i % 50) for i in range(10000)], False),
    ("10k dicts of 0..29 small-int keys", lambda: [dict.fromkeys(range(i % 30)) for i in range(10000)], False),
    ("5k sets of 0..39 small ints", lambda: [set(range(i % 40)) for i in range(5000)], False),
    ("25k str of 1..399 chars", lambda: ["%07d" % i + "x" * (i % 393) for i in range(25000)], False),
    ("20k non-ASCII str", lambda: ["\u00e9\u4e2d%06d" % i * (1 + i % 7) for i in range(20000)], False),
    ("15k bytes of 0..999", lambda: [b"%06d" % i + bytes(i % 994) for i in range(15000)], False),
    ("10k bytearrays", lambda: [bytearray(b"%06d" % i * (1 + i % 60)) for i in range(10000)], False),
    ("15k tuples of 1..19", lambda: [tuple([i % 200] * (1 + i % 19)) for i in range(15000)], False),
    ("3 big lists (malloc, mmap)", lambda: [[None] * 100, [None] * 5000, [None] * 100000], False),
]


def main():
    tmp = tempfile.mkdtemp(prefix="hs-sizes-")
    v = "%d.%d" % sys.version_info[:2]
    held = []
    results = []
    for name, make, _ in CASES:
        objs, req, rnd = measured(make)
        held.append(objs)
        results.append((name, objs, req, rnd))
    paths = {}
    for fork in (False, True):
        paths[fork] = os.path.join(tmp, "fork.hsnap" if fork else "inproc.hsnap")
        heapsnap.dump(paths[fork], fork=fork)
    snaps = {fork: hsnap.read(p) for fork, p in paths.items()}
    for fork, snap in snaps.items():
        mode = "fork" if fork else "in-process"
        dump = snap.meta.get("dump", {})
        check(snap.header["minor"] == 1 and dump.get("size_model") == "allocator",
              "%s %s: format 1.1, size model 'allocator'" % (v, mode), repr((snap.header, dump)))
        total = sum(n.size for n in snap.nodes.values())
        parts = sum(dump.get(k, 0) for k in ("bytes_pymalloc", "bytes_malloc", "bytes_static",
                                             "bytes_native", "bytes_device"))
        check(parts == total, "%s %s: META_END bytes_* add up to the node total (%d)" % (v, mode, total),
              "parts %d, nodes %d: %r" % (parts, total, dump))
        for name, objs, req, rnd in results:
            nodes = [snap.nodes.get(id(o)) for o in objs]
            lst = snap.nodes.get(id(objs))
            missing = sum(n is None for n in nodes) + (lst is None)
            if not check(missing == 0, "%s %s %s: every object is a node" % (v, mode, name),
                         "%d missing" % missing):
                continue
            got = sum(owned(snap, n) for n in nodes) + lst.size
            check(abs(got - rnd) <= 0.02 * rnd,
                  "%s %s %s: real bytes %d vs tracemalloc %d rounded to blocks (%d requested)"
                  % (v, mode, name, got, rnd, req), "off by %+.2f%%" % (100.0 * (got - rnd) / rnd))
            # what sys.getsizeof says, kept in REPORTED
            bad = [(sys.getsizeof(o), snap.getsizeof(n)) for o, n in zip(objs, nodes)
                   if snap.getsizeof(n) != sys.getsizeof(o)]
            bad += [(sys.getsizeof(objs), snap.getsizeof(lst))] if snap.getsizeof(lst) != sys.getsizeof(objs) else []
            check(not bad, "%s %s %s: REPORTED equals sys.getsizeof" % (v, mode, name),
                  "%d differ, e.g. (getsizeof, REPORTED) %r" % (len(bad), bad[:5]))
    # both modes give the same node sizes, object by object
    a, b = snaps[False], snaps[True]
    diff = []
    for name, objs, _, _ in results:
        for o in list(objs) + [objs]:
            na, nb = a.nodes[id(o)], b.nodes[id(o)]
            if na.size != nb.size:
                diff.append((name, na.size, nb.size))
    check(not diff, "%s: fork and in-process node sizes identical for the test objects" % v,
          "%d differ: %r" % (len(diff), diff[:5]))
    common = [ad for ad in a.nodes if ad in b.nodes and a.type_name(a.nodes[ad]) == b.type_name(b.nodes[ad])]
    same = sum(a.nodes[ad].size == b.nodes[ad].size for ad in common)
    check(same >= len(common) - 50, "%s: fork and in-process agree on %d of %d common nodes"
          % (v, same, len(common)))
    print("\n%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
