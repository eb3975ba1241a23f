"""Integration test: retention on real dumps (fixtures/programs/leaky.py).

Four snapshots of a program with one real leak (LeakedRequest objects piling
up in a module-level dict `_cache`) and three look-alikes that are not leaks
(churn, steady replacement, cyclic garbage with the GC disabled).

From the files (hsnap.py, independent of the analyzer):
  - the shortest retention path of a leaked object reads, from the module
    root `leaky`: __dict__ -> ['_cache'] -> ['req-150'] (labels are what make
    a path readable);
  - reachable LeakedRequest grow by exactly 50 per snapshot, Replaced stay at
    40, the CycleGarbage objects are all unreachable.
From the CLI, for each retention command it has (`leaks`, `paths`,
`garbage`, `retained`; absent ones are reported, not failed): the leak is
found and attributed to `_cache`, the look-alikes are not called leaks, the
garbage is reported as garbage; JSON validates against formats/<cmd>.schema.json.
"""
import json
import os
import subprocess
import sys
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402


def bfs_parents(s):
    """Shortest strong paths from the roots (file roots in order, then the
    derived held-from-C roots): address -> (parent address, edge) or
    (None, root)."""
    incoming = {}
    for n in s.nodes.values():
        for e in n.edges:
            if e.kind == 0:
                incoming[e.target] = incoming.get(e.target, 0) + 1
    parent = {}
    q = deque()
    for r in s.roots:
        if r["target"] in s.nodes and r["target"] not in parent:
            parent[r["target"]] = (None, r)
            q.append(r["target"])
    for a in s.order:
        n = s.nodes[a]
        if a not in parent and not n.flags & hsnap.F_IMMORTAL and n.refcount > incoming.get(a, 0):
            parent[a] = (None, {"kind_name": "held", "name": None})
            q.append(a)
    while q:
        a = q.popleft()
        for e in s.nodes[a].edges:
            if e.kind == 0 and e.target in s.nodes and e.target not in parent:
                parent[e.target] = (a, e)
                q.append(e.target)
    return parent


def path_to(s, parent, addr):
    labels = []
    while True:
        p, e = parent[addr]
        if p is None:
            return e, list(reversed(labels))
        labels.append((s.type_name(s.nodes[p]), s.label_text(e)))
        addr = p


def cli_has(cli, cmd):
    p = subprocess.run([cli, cmd, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode == 0


def main():
    args = T.parser(__doc__).parse_args()
    work = T.setup(args, "retention")
    T.require_hook(args.build)
    p = T.run_fixture(args.build, [T.fixture("leaky.py"), work, "4"], timeout=120)
    if not T.check(p.returncode == 0, "leaky.py runs and dumps 4 snapshots", p.stdout[-1000:] + p.stderr[-3000:]):
        T.finish()
    res = json.load(open(os.path.join(work, "result.json")))
    snaps = res["snapshots"]
    last = hsnap.read(snaps[-1])
    parent = bfs_parents(last)

    if T.check(res["sample"] in parent, "a leaked object is reachable from a root"):
        root, labels = path_to(last, parent, res["sample"])
        text = " -> ".join("%s %s" % (t, l) for t, l in labels)
        print("     path: %s %r: %s" % (root.get("kind_name"), root.get("name"), text))
        T.check(root.get("kind_name") == "module" and root.get("name") == "leaky",
                "the leaked object's shortest path starts at the module root 'leaky'", "root %r" % root)
        lbls = [l for _, l in labels]
        T.check("['_cache']" in lbls and "[%r]" % res["sample_key"] in lbls,
                "the path reads ['_cache'] then [%r]" % res["sample_key"], "labels %r" % lbls)
        T.check(all(l for l in lbls), "every edge of the path has a label", "labels %r" % lbls)

    unnamed = sorted({r["name"].split(" frame")[0] for r in last.roots
                      if r["kind_name"] in ("local", "frame") and r["name"] and "'" not in r["name"].split(" frame")[0]})
    T.equal(unnamed, [], "roots name the main thread 'MainThread' even when threading was never imported")
    counts = []
    for path in snaps:
        s = last if path == snaps[-1] else hsnap.read(path)
        par = parent if s is last else bfs_parents(s)
        row = {}
        for n in s.nodes.values():
            t = s.type_name(n)
            if t.startswith("leaky."):
                r = row.setdefault(t, [0, 0])
                r[0 if n.address in par else 1] += 1
        counts.append(row)
    print("     reachable/unreachable per snapshot: %r" % counts)
    T.equal([c.get("leaky.LeakedRequest", [0, 0])[0] for c in counts], [50, 100, 150, 200],
            "reachable LeakedRequest: 50 more in every snapshot")
    T.equal([c.get("leaky.Replaced", [0, 0])[0] for c in counts], [40] * 4, "reachable Replaced: a steady 40")
    T.equal([c.get("leaky.CycleGarbage", [0, 0]) for c in counts], [[0, 20], [0, 40], [0, 60], [0, 80]],
            "CycleGarbage piles up but is never reachable")

    ran = 0
    cache_hex = hex(res["cache"])
    if cli_has(args.cli, "leaks"):
        ran += 1
        doc = T.cli_json(args.cli, ["leaks", "--top", "0"] + snaps)
        if doc is not None:
            T.validate(doc, "leaks.schema.json", "leaks --json")
            types = {t.get("name"): t for t in doc.get("types") or []}
            lt = types.get(res["leaked_type"])
            if T.check(lt is not None, "leaks: %s is a leaking type" % res["leaked_type"], "types: %r" % sorted(types)):
                T.equal(lt.get("count"), [50, 100, 150, 200], "leaks: its reachable counts per snapshot")
                T.equal(((lt.get("holder") or {}).get("object") or {}).get("address"), cache_hex,
                        "leaks: its holder is the `_cache` dict")
                paths = lt.get("paths") or [{}]
                T.equal(((paths[0].get("root") or {}).get("name"), paths[0].get("count")), ("leaky", 50),
                        "leaks: the 50 new instances share one path from module leaky")
                T.check("['_cache']" in [st.get("label") for st in paths[0].get("steps") or []],
                        "leaks: that path steps through ['_cache']", "path %r" % paths[0].get("text"))
            wrong = [n for n in res["not_leaks"] if n in types]
            T.equal(wrong, [], "leaks: churn, steady replacement and garbage are not leaks")
        p = T.run([args.cli, "leaks"] + snaps)
        T.check(p.returncode == 0 and "_cache" in p.stdout, "leaks (text): names `_cache`",
                p.stdout[-2000:] + p.stderr[-500:])
        p = T.run([args.cli, "leaks", "--exit-code"] + snaps)
        T.equal(p.returncode, 1, "leaks --exit-code exits 1 when something leaks")
    else:
        T.note("the CLI has no `leaks` command yet: not tested")
    if cli_has(args.cli, "paths"):
        ran += 1
        p = T.run([args.cli, "paths", snaps[-1], "--type", res["leaked_type"]])
        T.check(p.returncode == 0 and "_cache" in p.stdout,
                "paths --type %s: the aggregated path names `_cache`" % res["leaked_type"],
                p.stdout[-2000:] + p.stderr[-500:])
        doc = T.cli_json(args.cli, ["paths", snaps[-1], "--type", res["leaked_type"]])
        if doc is not None:
            T.validate(doc, "paths.schema.json", "paths --json")
            T.equal((doc.get("targets") or {}).get("count"), 200, "paths: 200 target objects")
            ps = doc.get("paths") or [{}]
            T.equal((len(ps), ps[0].get("count"), (ps[0].get("root") or {}).get("name")), (1, 200, "leaky"),
                    "paths: the 200 leaked objects are one aggregated path from module leaky")
        doc = T.cli_json(args.cli, ["paths", snaps[-1], "--address", hex(res["sample"])])
        if doc is not None:
            ps = doc.get("paths") or [{}]
            labels = [st.get("label") for st in ps[0].get("steps") or []]
            T.equal(labels[-2:], ["['_cache']", "[%r]" % res["sample_key"]],
                    "paths --address: the path of one leaked object ends ['_cache'] -> [%r]" % res["sample_key"])
    else:
        T.note("the CLI has no `paths` command yet: not tested")
    if cli_has(args.cli, "garbage"):
        ran += 1
        doc = T.cli_json(args.cli, ["garbage", snaps[-1], "--top", "0"])
        if doc is not None:
            T.validate(doc, "garbage.schema.json", "garbage --json")
            rows = T.rows_by_name(doc, ("types",))
            T.equal((rows.get(res["garbage_type"]) or {}).get("count"), res["garbage_count"],
                    "garbage: %d %s" % (res["garbage_count"], res["garbage_type"]))
            T.equal({k: v.get("count") for k, v in rows.items()}, res["garbage_rows"],
                    "garbage: nothing else is garbage (immortal interpreter objects are not garbage)")
            T.equal((doc.get("cycles") or {}).get("count"), res["steps"], "garbage: one cycle per step")
    else:
        T.note("the CLI has no `garbage` command yet: not tested")
    if cli_has(args.cli, "retained"):
        ran += 1
        doc = T.cli_json(args.cli, ["retained", snaps[-1], "--by", "type", "--top", "0"])
        if doc is not None:
            T.validate(doc, "retained.schema.json", "retained --by type --json")
            rows = T.rows_by_name(doc)
            r = rows.get(res["leaked_type"]) or {}
            expect = res["leaked_retained"]
            if res.get("leaked_ids"):  # real bytes (format 1.1): the nodes' sizes
                last = hsnap.read(snaps[-1])
                expect = sum(last.nodes[i].size for i in res["leaked_ids"] if i in last.nodes)
            T.equal(r.get("retained"), expect,
                    "retained --by type: LeakedRequest instances retain themselves, their headers dicts and values "
                    "(not the immortal small ints they refer to)")
        doc = T.cli_json(args.cli, ["retained", snaps[-1], "--by", "object", "--top", "100"])
        if doc is not None:
            T.validate(doc, "retained.schema.json", "retained --by object --json")
            text = json.dumps(doc)
            T.check(str(res["cache"]) in text or hex(res["cache"]) in text,
                    "retained --by object: the `_cache` dict is listed", text[:1000])
    else:
        T.note("the CLI has no `retained` command yet: not tested")
    if cli_has(args.cli, "dominators"):
        ran += 1
        doc = T.cli_json(args.cli, ["dominators", snaps[-1], "--address", hex(res["sample"])])
        if doc is not None:
            T.validate(doc, "dominators.schema.json", "dominators --json")
            chain = [c.get("address") for c in doc.get("chain") or []]
            T.check(len(chain) >= 2 and chain[0] == hex(res["sample"]) and chain[1] == cache_hex,
                    "dominators: the leaked object's immediate dominator is the `_cache` dict", "chain %r" % chain)
    else:
        T.note("the CLI has no `dominators` command yet: not tested")
    if cli_has(args.cli, "graph"):
        ran += 1
        for ext in ("dot", "svg"):
            out = os.path.join(work, "leak.%s" % ext)
            p = T.run([args.cli, "graph", snaps[-1], "--type", res["leaked_type"], "-o", out], timeout=120)
            T.check(p.returncode == 0 and os.path.exists(out) and os.path.getsize(out) > 100,
                    "graph --type %s -o leak.%s draws a file" % (res["leaked_type"], ext), p.stderr[-800:])
            if ext == "dot" and os.path.exists(out):
                T.check("_cache" in open(out, errors="replace").read(), "graph: the drawing names `_cache`")
        doc = T.cli_json(args.cli, ["graph", snaps[-1], "--type", res["leaked_type"], "-o",
                                    os.path.join(work, "leak-json.svg")])
        if doc is not None:
            T.validate(doc, "graph.schema.json", "graph --json")
        out = os.path.join(work, "leak-series.dot")
        p = T.run([args.cli, "graph", "--leak"] + snaps + ["-o", out], timeout=120)
        T.check(p.returncode == 0 and os.path.exists(out), "graph --leak over 4 snapshots draws a file", p.stderr[-800:])
    else:
        T.note("the CLI has no `graph` command yet: not tested")
    print("retention commands tested: %d" % ran)
    T.finish()


if __name__ == "__main__":
    main()
