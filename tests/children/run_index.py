"""Snapshot sets without live processes: `summary INDEX` and `diff INDEX_A
INDEX_B` on indexes written here around fixture snapshots (make_snapshot,
tests/cli/fixtures), checked against the single-snapshot commands, and bad
indexes (one error line naming the file, exit 2).

usage: run_index.py --cli HEAPSNAP --make-snapshot MAKE_SNAPSHOT
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(cli, *args):
    r = subprocess.run([cli] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def js(cli, *args):
    rc, out, err = run(cli, *args)
    if not check(rc == 0, "%s: exit 0 (%d: %s)" % (" ".join(args), rc, err.strip())):
        return None
    return json.loads(out)


def validate(doc, name, what):
    try:
        import jsonschema
    except ImportError:
        print("note: jsonschema missing, %s not validated" % what)
        return
    schema = json.load(open(os.path.join(ROOT, "formats", name + ".schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        check(False, "%s valid against %s: %s" % (what, name, str(e).splitlines()[0]))


def proc(pid, ppid, status, file=None, mem=None, start=None, error=None, argv=None):
    p = {"pid": pid, "ppid": ppid, "argv": argv or ["python3", "app.py", str(pid)],
         "status": status}
    if start is not None:
        p["start_ticks"] = start
    if file:
        p["file"] = file
    if status != "ok":
        p["error"] = error or "not a Python process"
    if mem:
        p["memory"] = mem
    return p


def index(path, procs, root=100, version=1, boot="boot-1", fmt="heapsnap-index", valid=True):
    doc = {"format": fmt, "version": version, "root_pid": root, "time": 1700000000.5,
           "time_iso": "2023-11-14T22:13:20+0000", "boot_id": boot, "fork": False,
           "processes": procs}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    if valid:
        validate(doc, "index", os.path.basename(path))
    return path


def mem(rss, pss, uss):
    return {"rss": rss, "pss": pss, "uss": uss, "swap": 0}


def error_case(cli, what, args, code, *needles):
    rc, out, err = run(cli, *args)
    lines = err.strip().splitlines()
    check(rc == code, "%s: exit %d (got %d: %s)" % (what, code, rc, err.strip()))
    if code == 2:
        check(len(lines) == 1 and lines[0].startswith("heapsnap: "),
              "%s: one error line (%r)" % (what, err))
        check(out == "", "%s: nothing on stdout (%r)" % (what, out[:200]))
    for n in needles:
        check(n in err, "%s: %r in the message (%s)" % (what, n, err.strip()))


def mutate(doc, rnd):
    """One random change somewhere in doc: a key dropped, a value of
    another type, a number out of range."""
    values = [None, True, -1, 0, 2 ** 31, 2 ** 63, 1.5, 1e300, "", "x" * 300, "../../etc/passwd",
              [], {}, [1, "a"], {"k": 1}]
    paths = []

    def walk(v, path):
        paths.append(path)
        if isinstance(v, dict):
            for k in v:
                walk(v[k], path + [k])
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, path + [i])
    walk(doc, [])
    path = rnd.choice(paths[1:])
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if rnd.random() < 0.3 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rnd.choice(values)


def mutations(cli, good, path, n=150):
    """Damaged indexes never crash the reader: exit 0, or 2 with one line."""
    import copy
    import random
    rnd = random.Random(1234)
    base = json.load(open(good))
    text = json.dumps(base)
    bad = 0
    for i in range(n):
        if i % 5 == 4:
            data = text[: rnd.randrange(len(text))]
        else:
            doc = copy.deepcopy(base)
            for _ in range(rnd.randint(1, 3)):
                mutate(doc, rnd)
            data = json.dumps(doc)
        with open(path, "w") as f:
            f.write(data)
        for args in (["summary", path, "--json"], ["diff", good, path]):
            rc, out, err = run(cli, *args)
            lines = err.strip().splitlines()
            if rc not in (0, 2) or (rc == 2 and (len(lines) != 1 or not lines[0].startswith("heapsnap: "))):
                bad += 1
                check(False, "mutation %d (%s): exit %d, %r; index %s" % (i, args[0], rc, err[-300:], data[:500]))
    check(bad == 0, "%d mutated indexes read without a crash" % n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--make-snapshot", required=True)
    a = ap.parse_args()
    cli = os.path.abspath(a.cli)
    tmp = tempfile.mkdtemp(prefix="hs-index-")
    try:
        fx = os.path.join(ROOT, "tests", "cli", "fixtures")
        small = os.path.join(tmp, "small.hsnap")
        grown = os.path.join(tmp, "grown.hsnap")
        subprocess.run([a.make_snapshot, os.path.join(fx, "small.txt"), small], check=True)
        subprocess.run([a.make_snapshot, os.path.join(fx, "grown.txt"), grown], check=True)
        s_small = js(cli, "summary", small, "--json", "--top", "0")
        s_grown = js(cli, "summary", grown, "--json", "--top", "0")
        d_single = js(cli, "diff", small, grown, "--json", "--top", "0")

        # set A: 100 (small), 101 (small), 102 skipped; set B: 100 (grown),
        # 101 (small), 103 started (grown), 104 failed
        sub = os.path.join(tmp, "sets")
        os.makedirs(sub)
        for name, src in (("a-100", small), ("a-101", small), ("b-100", grown), ("b-101", small),
                          ("b-103", grown)):
            shutil.copy(src, os.path.join(sub, name + ".hsnap"))
        ia = index(os.path.join(sub, "a.hsidx"), [
            proc(100, 1, "ok", "a-100.hsnap", mem(10 << 20, 6 << 20, 4 << 20), start=500),
            proc(101, 100, "ok", "a-101.hsnap", mem(8 << 20, 3 << 20, 2 << 20), start=510),
            proc(102, 100, "skipped", argv=["sleep", "1000"], start=520),
        ])
        ib = index(os.path.join(sub, "b.hsidx"), [
            proc(100, 1, "ok", "b-100.hsnap", mem(12 << 20, 7 << 20, 5 << 20), start=500),
            proc(101, 100, "ok", "b-101.hsnap", mem(8 << 20, 3 << 20, 2 << 20), start=510),
            proc(103, 100, "ok", "b-103.hsnap", mem(9 << 20, 4 << 20, 3 << 20), start=530),
            proc(104, 100, "failed", error="process 104 did not reach a safe point", start=540),
        ])

        # --- summary of a set: per process = the single summaries, totals = sums
        s = js(cli, "summary", ia, "--json", "--top", "0")
        if s:
            validate(s, "summary-set", "summary INDEX --json")
            check([p["pid"] for p in s["processes"]] == [100, 101], "summary: processes 100, 101")
            check([p["count"] for p in s["processes"]] == [s_small["total"]["count"]] * 2,
                  "summary: per-process objects as summary SNAP")
            check(s["total"]["count"] == 2 * s_small["total"]["count"], "summary: total objects = sum")
            check(s["total"]["bytes"] == 2 * s_small["total"]["bytes"], "summary: total bytes = sum")
            m = s["total"]["memory"]
            check(m.get("pss") == 9 << 20 and m.get("uss") == 6 << 20 and m.get("rss") == 18 << 20,
                  "summary: memory totals are the sums of the index's figures (%s)" % m)
            check([(x["pid"], x["status"]) for x in s["not_snapshotted"]] == [(102, "skipped")],
                  "summary: the skipped process is listed")
            single = {r["name"]: r for r in s_small["rows"]}
            for r in s["rows"]:
                one = single.get(r["name"])
                if not check(one is not None, "summary: row %s in the single summary" % r["name"]):
                    continue
                check(r["count"] == 2 * one["count"] and r["bytes"] == 2 * one["bytes"],
                      "summary: row %s doubled" % r["name"])
                check([(p["pid"], p["count"]) for p in r["processes"]] ==
                      [(100, one["count"]), (101, one["count"])], "summary: row %s per process" % r["name"])
            check(len(s["rows"]) == len(s_small["rows"]), "summary: same rows as one snapshot")
        s2 = js(cli, "summary", ia, "--json", "--top", "2")
        if s2:
            validate(s2, "summary-set", "summary INDEX --json --top 2")
            check(len(s2["rows"]) == 2 and s2["other"]["groups"] == s2["total"]["groups"] - 2,
                  "summary --top 2: two rows and the rest in other")
            check(sum(r["count"] for r in s2["rows"]) + s2["other"]["count"] == s2["total"]["count"],
                  "summary --top 2: rows + other = total")
        sm = js(cli, "summary", ia, "--json", "--by", "module")
        if sm:
            validate(sm, "summary-set", "summary INDEX --by module --json")
            check(sm["by"] == "module" and any(r["name"] == "app.models" for r in sm["rows"]),
                  "summary --by module: module rows")
        rc, out, err = run(cli, "summary", ia)
        check(rc == 0, "summary text: exit 0 (%s)" % err)
        check("physical memory: 9.0 MiB (PSS total" in out, "summary text: PSS total said (%s)" % out)
        check("USS total" in out and "6.0 MiB" in out, "summary text: USS total")
        check("not snapshotted:" in out and "sleep 1000" in out and "skipped: not a Python process" in out,
              "summary text: the skipped process and why")

        # --- diff of two sets
        d = js(cli, "diff", ia, ib, "--json", "--top", "0")
        if d:
            validate(d, "diff-set", "diff A B --json")
            by = {(p["pid"], p["match"]): p for p in d["processes"]}
            check(sorted(by) == [(100, "both"), (101, "both"), (103, "started")],
                  "diff: 100 and 101 compared, 103 started (%s)" % sorted(by))
            p100 = by.get((100, "both"), {})
            check(p100.get("count_delta") == d_single["total"]["count_delta"] and
                  p100.get("bytes_delta") == d_single["total"]["bytes_delta"] and
                  p100.get("new_count") == d_single["total"]["new_count"],
                  "diff: process 100 changes as diff SNAP SNAP")
            check(p100.get("memory", {}).get("uss_delta") == 1 << 20 and
                  p100.get("memory", {}).get("pss_delta") == 1 << 20, "diff: USS/PSS change of 100")
            p101 = by.get((101, "both"), {})
            check(p101.get("count_delta") == 0 and p101.get("new_count") == 0, "diff: 101 unchanged")
            p103 = by.get((103, "started"), {})
            check(p103.get("note") == "not in A" and p103.get("count") == s_grown["total"]["count"],
                  "diff: 103 started, its objects")
            check(d["total"]["compared"] == 2 and d["total"]["started"] == 1 and d["total"]["ended"] == 0,
                  "diff: totals count processes")
            check(d["total"]["count_delta"] == d_single["total"]["count_delta"], "diff: total change")
            check(d["grew"] == d_single["grew"], "diff: grew as the single diff")
            rows = {r["name"]: r for r in d["rows"]}
            for r in d_single["rows"]:
                m = rows.get(r["name"])
                if not check(m is not None, "diff: changed row %s" % r["name"]):
                    continue
                check(m["count_delta"] == r["count_delta"] and m["bytes_delta"] == r["bytes_delta"],
                      "diff: row %s change as the single diff" % r["name"])
                check([p["pid"] for p in m["processes"]] == [100], "diff: row %s changed in 100 only"
                      % r["name"])
            check(len(d["rows"]) == len(d_single["rows"]), "diff: as many changed rows")
            check([x["pid"] for x in d["not_snapshotted_b"]] == [104], "diff: 104 not snapshotted in B")
        rc, out, err = run(cli, "diff", ia, ib)
        check(rc == 0 and "2 processes compared (matched by pid), 0 ended, 1 started" in out,
              "diff text: headline (%s%s)" % (out[:300], err))
        check("started (a snapshot in B only):" in out and "not in A" in out, "diff text: started list")
        rc, _, _ = run(cli, "diff", ia, ib, "--exit-code")
        check(rc == (1 if d_single["grew"] else 0), "diff --exit-code: %d" % rc)
        rc, _, _ = run(cli, "diff", ia, ia, "--exit-code")
        check(rc == 0, "diff A A --exit-code: 0")

        # a reused pid is two processes; another boot matches nothing
        ic = index(os.path.join(sub, "c.hsidx"), [
            proc(100, 1, "ok", "b-100.hsnap", start=500),
            proc(101, 100, "ok", "b-101.hsnap", start=999),
        ])
        d = js(cli, "diff", ia, ic, "--json")
        if d:
            got = sorted((p["pid"], p["match"], p.get("note")) for p in d["processes"])
            check(got == [(100, "both", None), (101, "ended", "pid reused by another process"),
                          (101, "started", "pid reused by another process")],
                  "diff: reused pid 101 ended and started (%s)" % got)
        idb = index(os.path.join(sub, "d.hsidx"), [proc(100, 1, "ok", "b-100.hsnap", start=500)],
                    boot="boot-2")
        d = js(cli, "diff", ia, idb, "--json")
        if d:
            check(d["total"]["compared"] == 0 and d["total"]["ended"] == 2 and d["total"]["started"] == 1,
                  "diff: another boot matches nothing")

        # an index elsewhere than the current directory, named relative
        r = subprocess.run([cli, "summary", "sets/a.hsidx", "--json"], cwd=tmp, capture_output=True,
                           text=True)
        check(r.returncode == 0 and json.loads(r.stdout)["total"]["processes"] == 2,
              "summary sets/a.hsidx from its parent directory (%s)" % r.stderr.strip())

        # --- bad indexes
        bad = os.path.join(tmp, "bad")
        os.makedirs(bad)
        shutil.copy(small, os.path.join(bad, "m-1.hsnap"))
        good_small = open(small, "rb").read()
        with open(os.path.join(bad, "m-2.hsnap"), "wb") as f:
            f.write(good_small[: len(good_small) // 2])
        p = os.path.join(bad, "notjson.hsidx")
        open(p, "w").write("this is not an index\n")
        error_case(cli, "not JSON", ["summary", p], 2, "notjson.hsidx", "not a heapsnap index")
        p = os.path.join(bad, "brace.idx")
        open(p, "w").write('{"format": "heapsnap-index", "version": 1,')
        error_case(cli, "truncated JSON (sniffed by '{')", ["summary", p], 2, "brace.idx", "invalid JSON")
        p = index(os.path.join(bad, "v2.hsidx"), [proc(1, 0, "ok", "m-1.hsnap")], root=1, version=2,
                  valid=False)
        error_case(cli, "version 2", ["summary", p], 2, "v2.hsidx", "index version 2")
        p = index(os.path.join(bad, "fmt.hsidx"), [proc(1, 0, "ok", "m-1.hsnap")], root=1,
                  fmt="something-else", valid=False)
        error_case(cli, "wrong format", ["summary", p], 2, "fmt.hsidx", "'format'")
        p = index(os.path.join(bad, "missing.hsidx"), [proc(1, 0, "ok", "m-1.hsnap"),
                                                       proc(2, 1, "ok", "gone-2.hsnap")], root=1)
        error_case(cli, "missing member", ["summary", p], 2, "missing.hsidx", "gone-2.hsnap", "missing")
        error_case(cli, "missing member (diff)", ["diff", ia, p], 2, "missing.hsidx", "gone-2.hsnap")
        p = index(os.path.join(bad, "damaged.hsidx"), [proc(1, 0, "ok", "m-1.hsnap"),
                                                       proc(2, 1, "ok", "m-2.hsnap")], root=1)
        error_case(cli, "damaged member", ["summary", p], 2, "m-2.hsnap", "damaged.hsidx", "process 2")
        p = index(os.path.join(bad, "twice.hsidx"), [proc(1, 0, "ok", "m-1.hsnap"),
                                                     proc(1, 0, "ok", "m-1.hsnap")], root=1, valid=False)
        error_case(cli, "pid twice", ["summary", p], 2, "twice.hsidx", "listed twice")
        p = index(os.path.join(bad, "nofile.hsidx"), [proc(1, 0, "ok")], root=1, valid=False)
        error_case(cli, "ok without file", ["summary", p], 2, "nofile.hsidx", "no file")
        p = index(os.path.join(bad, "empty.hsidx"), [], root=1, valid=False)
        error_case(cli, "no processes", ["summary", p], 2, "empty.hsidx", "empty")
        p = os.path.join(bad, "types.hsidx")
        json.dump({"format": "heapsnap-index", "version": 1, "root_pid": 1, "time": 0,
                   "processes": [{"pid": "one", "ppid": 0, "argv": [], "status": "ok"}]}, open(p, "w"))
        error_case(cli, "pid not a number", ["summary", p], 2, "types.hsidx", "'pid'")
        error_case(cli, "no such index", ["summary", os.path.join(bad, "nope.hsidx")], 2,
                   "nope.hsidx", "no such file")
        error_case(cli, "index vs snapshot", ["diff", ia, small], 129, "cannot compare a snapshot with an index")
        mutations(cli, ia, os.path.join(sub, "mut.hsidx"))
        # a snapshot still goes the old way, message unchanged
        error_case(cli, "damaged snapshot alone", ["summary", os.path.join(bad, "m-2.hsnap")], 2,
                   "m-2.hsnap")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        return 1
    print("all index checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
