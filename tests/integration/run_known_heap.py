"""Integration test: a heap of exactly known shape, dumped by the hook under
this interpreter, read back by `heapsnap summary|diff|info --json` and by an
independent Python reader of the format (hsnap.py).

Checks, between a dump before and after fixtures/programs/known_heap.py
creates N records:
  - diff: exact count and byte change of every type the fixture created or
    resized (known_heap.Record, known_heap.Slotted, list, dict, int, str,
    bytes, cell, tuple, function), and N new known_heap.Record objects;
  - summary: exact count and bytes of the fixture-unique types;
  - the same figures computed from the file by hsnap.py (so a mismatch says
    whether the hook or the analyzer is wrong), and per-type totals of the
    analyzer equal to the reader's for every type;
  - what sys.getsizeof says of each node (format 1.1 REPORTED entries) equals
    sys.getsizeof in the process; node sizes are real bytes (tests/sizes checks
    them against tracemalloc), and the analyzer's figures equal the sum of
    node sizes hsnap.py reads; ints/strs carry their values, edge labels
    read as Python would (.items or __dict__['items'], [3], ['key0'], .left);
  - a dump right after the second one sees exactly the same heap;
  - every --json output validates against its schema in formats/.
"""
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402

N, M, K = 2000, 20, 5


def reader_totals(snap, getsizeof=False):
    """Count and bytes per type: real bytes (node sizes), or what
    sys.getsizeof reported (REPORTED; None when one is unknown)."""
    tot = defaultdict(lambda: [0, 0])
    for n in snap.nodes.values():
        t = tot[snap.type_name(n)]
        t[0] += 1
        b = snap.getsizeof(n) if getsizeof else n.size
        t[1] = None if b is None or t[1] is None else t[1] + b
    return tot


def diff_field(row, *names):
    for n in names:
        if n in row:
            return row[n]
    return None


def main():
    args = T.parser(__doc__).parse_args()
    work = T.setup(args, "known_heap")
    T.require_hook(args.build)
    p = T.run_fixture(args.build, [T.fixture("known_heap.py"), str(N), str(M), str(K), work], timeout=120)
    if not T.check(p.returncode == 0, "known_heap.py runs and dumps under %s" % sys.executable,
                   p.stdout[-2000:] + p.stderr[-4000:]):
        T.finish()
    exp = json.load(open(os.path.join(work, "expected.json")))
    before, after = exp["paths"]["before"], exp["paths"]["after"]
    deltas = exp["deltas"]

    # ---- the independent reader: what the hook wrote
    try:
        sa = hsnap.read(before)
        sb = hsnap.read(after)
    except Exception as e:
        T.fail("hsnap.py reads the hook's snapshots", "%s: %s" % (type(e).__name__, e))
        T.finish()
    ta, tb = reader_totals(sa), reader_totals(sb)
    ga, gb = reader_totals(sa, True), reader_totals(sb, True)
    T.equal((sb.header["minor"], sb.meta.get("dump", {}).get("size_model")), (1, "allocator"),
            "format 1.1, size model 'allocator'")
    for tname, d in sorted(deltas.items()):
        dc = gb[tname][0] - ga[tname][0]
        db = None if gb[tname][1] is None or ga[tname][1] is None else gb[tname][1] - ga[tname][1]
        T.check((dc, db) == (d["count_delta"], d["bytes_delta"]),
                "file: %s grows by %d objects, %d getsizeof bytes" % (tname, d["count_delta"], d["bytes_delta"]),
                "found %+d objects, %+d bytes in the snapshots (read by hsnap.py): the hook wrote "
                "other figures than sys.getsizeof gives" % (dc, db))
    for tname, a in exp["after"].items():
        T.equal(tuple(gb[tname]), (a["count"], a["bytes"]), "file: %s count and getsizeof bytes after" % tname)
        T.check(tb[tname][1] >= a["bytes"], "file: %s real bytes (%d) >= getsizeof's (%d)"
                % (tname, tb[tname][1], a["bytes"]))
    T.equal(sb.header["python_version"] >> 16, (exp["python"][0] << 8) | exp["python"][1],
            "header PY_VERSION_HEX major.minor")

    smp = exp["sample"]
    rec = sb.nodes.get(smp["record"])
    if T.check(rec is not None, "the first Record is a node of the snapshot"):
        T.equal(sb.getsizeof(rec), smp["record_size"], "Record: REPORTED is sys.getsizeof")
        T.check(rec.size >= smp["record_size"], "Record: real size %d at least getsizeof's %d"
                % (rec.size, smp["record_size"]))
        T.equal(sb.type_name(rec), "known_heap.Record", "Record node type name")
        # .items directly (managed/inline values) or through __dict__['items']
        labels = {}
        for e in rec.edges:
            labels[sb.label_text(e)] = e.target
            if sb.label_text(e) == "__dict__" and e.target in sb.nodes:
                for e2 in sb.nodes[e.target].edges:
                    labels["__dict__" + sb.label_text(e2)] = e2.target
        items_label = ".items" if exp["inline_values"] else "__dict__['items']"
        alt = "__dict__['items']" if exp["inline_values"] else ".items"
        found = labels.get(items_label, labels.get(alt))
        T.check(found == smp["items"], "Record -> its list reads %s" % items_label,
                "labels found on the Record: %r" % sorted(labels))
        T.check(labels.get(items_label.replace("items", "tags"),
                           labels.get(alt.replace("items", "tags"))) == smp["tags"],
                "Record -> its dict reads %s" % items_label.replace("items", "tags"),
                "labels found on the Record: %r" % sorted(labels))
    lst = sb.nodes.get(smp["items"])
    if T.check(lst is not None, "the Record's list is a node"):
        T.equal(sb.getsizeof(lst), smp["items_size"], "list: REPORTED is sys.getsizeof")
        T.equal(len(lst.edges), M, "list node has one edge per item")
        T.equal([sb.label_text(e) for e in lst.edges[:3]], ["[0]", "[1]", "[2]"], "list edges are labelled by index")
        i0 = sb.nodes.get(smp["item0"])
        if T.check(i0 is not None, "an int reached only through a list is a node (non-GC objects are walked)"):
            T.equal(i0.value, str(smp["item0_value"]).encode(), "int node carries its decimal value")
            T.equal(sb.type_name(i0), "int", "int node type name")
    d = sb.nodes.get(smp["tags"])
    if T.check(d is not None, "the Record's dict is a node"):
        lbl = {sb.label_text(e): e.target for e in d.edges}
        T.check(lbl.get("['key0']") == smp["tag_value0"], "dict -> value reads ['key0']",
                "labels: %r" % sorted(lbl))
        T.check(any(e.label_kind == hsnap.L_DICT_KEY and e.target == smp["tag_key0"] for e in d.edges),
                "dict -> key object has the dict-key label")
        v = sb.nodes.get(smp["tag_value0"])
        if v is not None:
            T.equal(v.value, smp["tag_value0_text"].encode(), "str node carries its text")
    s0 = sb.nodes.get(smp["slotted0"])
    if T.check(s0 is not None, "a Slotted instance is a node"):
        lbl = sorted(sb.label_text(e) for e in s0.edges)
        T.check(".right" in lbl, "__slots__ member edge reads .right", "labels: %r" % lbl)
    clo = sb.nodes.get(smp["closure"])
    if T.check(clo is not None, "the closure function is a node"):
        # function -> __closure__ tuple -> [0] cell -> payload
        reach = {clo.address}
        frontier = [clo.address]
        for _ in range(3):
            nxt = []
            for a in frontier:
                for e in sb.nodes[a].edges if a in sb.nodes else ():
                    if e.target not in reach:
                        reach.add(e.target)
                        nxt.append(e.target)
            frontier = nxt
        T.check(smp["closure_cell"] in reach and smp["closure_payload"] in reach,
                "closure function reaches its cell and the captured bytes within 3 edges")
        pl = sb.nodes.get(smp["closure_payload"])
        if pl is not None:
            g = smp["closure_payload_size"]
            T.equal(sb.getsizeof(pl), g, "captured bytes: REPORTED is sys.getsizeof")
            # a bytes object is one block of getsizeof bytes: a glibc chunk above 512
            T.equal(pl.size, max(32, (g + 8 + 15) & ~15) if g > 512 else (g + 15) & ~15,
                    "captured bytes: real size is its allocator block")
    none = sb.nodes.get(smp["none"])
    if T.check(none is not None, "None is a node (a Slotted instance refers to it)"):
        if smp["immortal"]:
            T.check(none.flags & hsnap.F_IMMORTAL and none.refcount == 0,
                    "None is flagged immortal with refcount 0 (3.12+)", "flags %#x, refcount %d" % (none.flags, none.refcount))
        else:
            T.check(not none.flags & hsnap.F_IMMORTAL and none.refcount > 1000,
                    "None is not immortal before 3.12 and has its real refcount",
                    "flags %#x, refcount %d" % (none.flags, none.refcount))
    mod_roots = [r for r in sb.roots if r["kind_name"] == "module" and r["name"] == "known_heap"]
    T.check(mod_roots and mod_roots[0]["target"] == smp["module"], "module known_heap is a module root",
            "module roots: %r" % [r["name"] for r in sb.roots if r["kind_name"] == "module"][:50])
    refs = [sb.label_text(e) for n, e in sb.referrers(smp["registry"])]
    T.check("['registry']" in refs or ".registry" in refs, "registry is reached as ['registry'] from the module dict",
            "labels of edges to registry: %r" % refs)
    # a dump leaves no trace: a second dump right after the first sees the same heap
    try:
        sc = hsnap.read(exp["paths"]["again"])
        tc = reader_totals(sc)
        changed = sorted((t, tc[t][0] - tb[t][0], tc[t][1] - tb[t][1]) for t in set(tb) | set(tc)
                         if tuple(tc[t]) != tuple(tb[t]))
        T.equal(changed, [], "file: two dumps in a row see the same heap (dump creates and keeps nothing): "
                "(type, count change, bytes change)")
        bad = []
        compared = 0
        for k, v in exp["gc_sizes"].items():
            n = sc.nodes.get(int(k))
            if n is not None:
                compared += 1
                g = sc.getsizeof(n)
                if g is not None and g != v:
                    bad.append((sc.type_name(n), g, v))
        T.check(compared >= len(exp["gc_sizes"]) - 10,
                "file: every GC-tracked object is a node (%d of %d found)" % (compared, len(exp["gc_sizes"])))
        T.equal(bad[:10], [], "file: REPORTED equals sys.getsizeof for every GC-tracked object "
                "where known (type, snapshot, getsizeof)")
    except Exception as e:
        T.fail("hsnap.py reads again.hsnap", "%s: %s" % (type(e).__name__, e))
    # totals in the index agree with the records
    T.equal(sb.totals["nodes"], len(sb.nodes), "index totals: nodes")
    T.equal(sb.totals["roots"], len(sb.roots), "index totals: roots")

    # ---- the analyzer
    summ = T.cli_json(args.cli, ["summary", "--top", "0", after])
    if summ is not None:
        T.validate(summ, "summary.schema.json", "summary --json")
        rows = T.rows_by_name(summ)
        for tname, a in exp["after"].items():
            r = rows.get(tname) or {}
            T.equal((r.get("count"), r.get("bytes")), (a["count"], tb[tname][1]),
                    "summary: %s count and real bytes" % tname)
        # every row equals the independent reader's totals (only if the summary is not truncated)
        if len(rows) == len(tb):
            bad = [(n, (r.get("count"), r.get("bytes")), tuple(tb[n])) for n, r in rows.items()
                   if (r.get("count"), r.get("bytes")) != tuple(tb[n])]
            T.check(not bad, "summary: every type's count and bytes equal hsnap.py's",
                    "(type, analyzer, reader): %r" % bad[:10])
        else:
            T.note("summary has %d rows, the file %d types: per-type cross-check skipped "
                   "(summary truncated?)" % (len(rows), len(tb)))
        tot = summ.get("total") or {}
        T.equal((tot.get("count"), tot.get("bytes")), (len(sb.nodes), sum(n.size for n in sb.nodes.values())),
                "summary: total objects and bytes")

    diff = T.cli_json(args.cli, ["diff", "--top", "0", before, after])
    if diff is not None:
        T.validate(diff, "diff.schema.json", "diff --json")
        rows = T.rows_by_name(diff)
        for tname, d in sorted(deltas.items()):
            r = rows.get(tname) or {}
            got = (diff_field(r, "count_delta", "delta_count"), diff_field(r, "bytes_delta", "delta_bytes"))
            T.equal(got, (d["count_delta"], tb[tname][1] - ta[tname][1]),
                    "diff: %s (count, real bytes) change" % tname)
        r = rows.get("known_heap.Record") or {}
        T.equal(diff_field(r, "new_count", "new"), N, "diff: %d new known_heap.Record objects" % N)
        news = diff.get("new")
        if isinstance(news, list):
            nr = {x.get("name"): x for x in news}
            T.equal((nr.get("known_heap.Record") or {}).get("count"), N,
                    "diff: the new-objects table lists %d known_heap.Record" % N)

    # diff --exit-code: 1 when something grew, 0 for two dumps of the same heap
    p = T.run([args.cli, "diff", "--exit-code", before, after])
    T.equal(p.returncode, 1, "diff --exit-code exits 1 when types grew")
    p = T.run([args.cli, "diff", "--exit-code", after, exp["paths"]["again"]])
    T.equal(p.returncode, 0, "diff --exit-code exits 0 between two dumps of an unchanged heap")
    same = T.cli_json(args.cli, ["diff", "--top", "0", after, exp["paths"]["again"]])
    if same is not None:
        T.equal((same.get("grew"), same.get("rows")), (False, []), "diff of an unchanged heap: grew false, no rows")

    # --by module: the fixture's module holds exactly its two classes' instances
    mods = T.cli_json(args.cli, ["summary", "--by", "module", "--top", "0", after])
    if mods is not None:
        T.validate(mods, "summary.schema.json", "summary --by module --json")
        r = T.rows_by_name(mods).get("known_heap") or {}
        a = exp["after"]
        T.equal((r.get("count"), r.get("bytes")),
                (a["known_heap.Record"]["count"] + a["known_heap.Slotted"]["count"],
                 tb["known_heap.Record"][1] + tb["known_heap.Slotted"][1]),
                "summary --by module: known_heap = its Record and Slotted instances")

    info = T.cli_json(args.cli, ["info", after])
    if info is not None:
        T.validate(info, "info.schema.json", "info --json")
        c = info.get("counts") or {}
        T.equal(c.get("objects"), len(sb.nodes), "info: counts.objects")
        T.equal(c.get("bytes"), sum(n.size for n in sb.nodes.values()), "info: counts.bytes")
        T.equal(c.get("references"), sum(len(n.edges) for n in sb.nodes.values()), "info: counts.references")
        T.equal(c.get("types"), len(sb.types), "info: counts.types")
        T.equal(c.get("dangling"), {"references": 0, "keys": 0, "roots": 0},
                "info: no dangling references, keys or roots (the walk is closed)")
        byk = {}
        for r in sb.roots:
            byk[r["kind_name"]] = byk.get(r["kind_name"], 0) + 1
        croots = dict(c.get("roots") or {})
        croots.pop("held", None)
        T.equal({k: v for k, v in croots.items() if v}, byk, "info: file roots by kind agree with hsnap.py")
        T.equal((info.get("meta") or {}).get("format"), "heapsnap-snapshot", "info: meta.format")
    T.finish()


if __name__ == "__main__":
    main()
