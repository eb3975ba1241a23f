#!/usr/bin/env python3
"""Allocation sites in snapshots: heapsnap.dump() while heapsnap.track() is
on stores each tracked object's allocation site (SITES/ALLOCS sections);
`heapsnap summary --by site`, `paths` and `retained` show them.

usage: sites_tests.py HEAPSNAP_CLI   (our package on PYTHONPATH)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

CLI = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="hs-sites-")
FAILURES = []

EXACT_PROG = '''
import gc, sys, heapsnap
class Thing:
    def __init__(self, i):
        self.i = i
gc.collect()
gc.disable()   # a collection could free a dict onto the free list mid-test
with heapsnap.track(exact=True):
    drain = [{} for _ in range(300)]              # empties the dict free list
    things = [Thing(i) for i in range(1000)]      # LINE_THINGS
    dicts = [{"k": i} for i in range(500)]        # LINE_DICTS
    heapsnap.dump(sys.argv[1])
'''

SAMPLED_PROG = '''
import sys, heapsnap
with heapsnap.track(sample_bytes=256 * 1024, seed=7):
    big = [bytes(300 * 1024) for _ in range(20)]       # LINE_BIG
    small = [str(i) * 3 for i in range(20000)]          # LINE_SMALL
    heapsnap.dump(sys.argv[1])
'''

OFF_PROG = '''
import sys, heapsnap
class Thing:
    pass
things = [Thing() for i in range(100)]
heapsnap.dump(sys.argv[1])
'''


def line_of(prog, marker):
    for i, l in enumerate(prog.splitlines(), 1):
        if marker in l:
            return i
    raise AssertionError(marker)


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run_prog(name, prog):
    path = os.path.join(TMP, name + ".py")
    with open(path, "w") as f:
        f.write(prog)
    snap = os.path.join(TMP, name + ".hsnap")
    subprocess.run([sys.executable, path, snap], check=True)
    return path, snap


def cli(*args, code=0):
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True)
    if p.returncode != code:
        raise AssertionError("%s: exit %d (expected %d): %s" % (args, p.returncode, code, p.stderr))
    return p


def section_kinds(snap):
    """Section kinds listed by the index (uncompressed index only)."""
    data = open(snap, "rb").read()
    off = struct.unpack_from("<Q", data, len(data) - 24)[0]
    kind, flags, raw, stored = struct.unpack_from("<IIII", data, off)
    assert flags == 0, "compressed index"
    p = data[off + 24: off + 24 + stored]
    vals, i = [], 0
    while i < len(p):
        v, s = 0, 0
        while True:
            b = p[i]
            i += 1
            v |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                break
        vals.append(v)
    count = vals[5]
    return [vals[6 + 4 * k] for k in range(count)]


def rows_by_line(summary, path):
    out = {}
    for r in summary["rows"]:
        s = r.get("site")
        if s and s["file"] == path:
            out[s["line"]] = r
    return out


def test_exact():
    path, snap = run_prog("exact", EXACT_PROG)
    lt, ld = line_of(EXACT_PROG, "LINE_THINGS"), line_of(EXACT_PROG, "LINE_DICTS")
    kinds = section_kinds(snap)
    check(8 in kinds and 9 in kinds, "exact: SITES and ALLOCS sections present (%s)" % kinds)
    j = json.loads(cli("summary", snap, "--by", "site", "--top", "0", "--json").stdout)
    check(j["by"] == "site", "exact: by")
    check(j["sites"]["sampled"] is False and j["sites"]["sample_bytes"] == 0, "exact: not sampled")
    rows = rows_by_line(j, path)
    check(lt in rows and ld in rows, "exact: rows for lines %d and %d: %s" % (lt, ld, sorted(rows)))
    if lt in rows:
        r = rows[lt]
        types = {t["name"]: t for t in r["types"]}
        check(types.get("__main__.Thing", {}).get("count") == 1000,
              "exact: 1000 Thing at line %d: %s" % (lt, r["types"]))
        check(r["site"]["function"].endswith("<listcomp>") or r["site"]["function"] == "<module>",
              "exact: function %r" % r["site"]["function"])
        check(r["estimate"] is False and r["samples"] == r["count"], "exact: no estimate")
        check("__main__.Thing" not in {t["name"] for rr in j["rows"] if rr is not r for t in rr["types"]},
              "exact: Thing only at its line")
    if ld in rows:
        types = {t["name"]: t for t in rows[ld]["types"]}
        check(types.get("dict", {}).get("count") == 500,
              "exact: 500 dict at line %d: %s" % (ld, rows[ld]["types"]))
    text = cli("summary", snap, "--by", "site").stdout
    check("%s:%d" % (path, lt) in text and "__main__.Thing 1,000" in text, "exact: text row:\n" + text)
    # paths: "allocated at file:line"
    p = cli("paths", snap, "--type", "__main__.Thing").stdout
    check("allocated at" in p and "%s:%d" % (path, lt) in p, "paths: allocated at:\n" + p)
    pj = json.loads(cli("paths", snap, "--type", "__main__.Thing", "--json").stdout)
    at = pj["paths"][0].get("allocated_at")
    check(at and at["file"] == path and at["line"] == lt, "paths --json allocated_at: %s" % at)
    r = cli("retained", snap, "--top", "5").stdout
    check("allocated at" in r, "retained: column:\n" + r)
    rj = json.loads(cli("retained", snap, "--top", "5", "--json").stdout)
    check(all("allocated_at" in o for o in rj["objects"]), "retained --json allocated_at")


def test_sampled():
    path, snap = run_prog("sampled", SAMPLED_PROG)
    lb, ls = line_of(SAMPLED_PROG, "LINE_BIG"), line_of(SAMPLED_PROG, "LINE_SMALL")
    j = json.loads(cli("summary", snap, "--by", "site", "--top", "0", "--json").stdout)
    check(j["sites"]["sampled"] is True and j["sites"]["sample_bytes"] == 256 * 1024,
          "sampled: flags %s" % j["sites"])
    rows = rows_by_line(j, path)
    check(lb in rows, "sampled: big line %d in %s" % (lb, sorted(rows)))
    if lb in rows:
        types = {t["name"]: t for t in rows[lb]["types"]}
        # blocks >= the mean are always taken, weight 1: exact count
        check(types.get("bytes", {}).get("count") == 20,
              "sampled: 20 bytes objects at line %d: %s" % (lb, rows[lb]["types"]))
        check(rows[lb]["estimate"] is True, "sampled: estimate flag")
    if ls in rows:
        r = rows[ls]
        check(r["estimate"] is True and r["count"] >= r["samples"], "sampled: small estimate %s" % r)
    text = cli("summary", snap, "--by", "site").stdout
    check("objects~" in text and "sampled" in text, "sampled: text marks estimates:\n" + text)


def test_off():
    path, snap = run_prog("off", OFF_PROG)
    kinds = section_kinds(snap)
    check(8 not in kinds and 9 not in kinds, "off: no site sections (%s)" % kinds)
    p = cli("summary", snap, "--by", "site", code=2)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(len(lines) == 1 and "no allocation sites" in lines[0] and snap in lines[0],
          "off: one error line: %r" % p.stderr)
    info = json.loads(cli("info", snap, "--json").stdout)
    check("sites" not in json.dumps(info.get("meta", info).get("dump", {})) , "off: no sites in META_END")
    out = cli("paths", snap, "--type", "__main__.Thing").stdout
    check("allocated at" not in out, "off: paths unchanged")


# ---- forged files: an unknown section kind; damaged site sections ----

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zz(v):
    return (v << 1) ^ (v >> 63)


def forge(path, sections, nstrings):
    hdr = bytearray(32)
    hdr[0:8] = b"\x89HSN\r\n\x1a\n"
    struct.pack_into("<HHHBB", hdr, 8, 1, 0, 1, 8, 1)
    struct.pack_into("<I", hdr, 28, zlib.crc32(bytes(hdr[:28])))
    out = bytearray(hdr)
    entries = []
    for kind, payload in sections:
        sh = bytearray(struct.pack("<IIIII", kind, 0, len(payload), len(payload), zlib.crc32(payload)))
        sh += struct.pack("<I", zlib.crc32(bytes(sh)))
        entries.append((kind, len(out), len(payload)))
        out += sh + payload
    idx = b"".join(varint(v) for v in (0, 0, nstrings, 0, 0, len(entries)))
    for k, off, n in entries:
        idx += varint(k) + varint(off) + varint(n) + varint(n)
    index_off = len(out)
    sh = bytearray(struct.pack("<IIIII", 15, 0, len(idx), len(idx), zlib.crc32(idx)))
    sh += struct.pack("<I", zlib.crc32(bytes(sh)))
    out += sh + idx
    foot = bytearray(struct.pack("<QI", index_off, len(entries)))
    foot += struct.pack("<I", zlib.crc32(bytes(foot)))
    out += foot + b"HSNAPEND"
    with open(path, "wb") as f:
        f.write(out)


def strings(*ss):
    return varint(len(ss)) + b"".join(varint(len(s)) + s for s in ss)


def sites(sample, locs, stacks):
    b = varint(sample) + varint(len(locs))
    for f, fn, line, flags in locs:
        b += varint(f) + varint(fn) + varint(line) + varint(flags)
    b += varint(len(stacks))
    for st in stacks:
        b += varint(len(st)) + b"".join(varint(x) for x in st)
    return b


def allocs(recs):
    cols = [b"", b"", b"", b""]
    pa = pt = 0
    for a, st, size, t in recs:
        cols[0] += varint(zz(a - pa))
        cols[1] += varint(st)
        cols[2] += varint(size)
        cols[3] += varint(zz(t - pt))
        pa, pt = a, t
    return varint(len(recs)) + b"".join(varint(len(c)) + c for c in cols)


def test_forged():
    meta = (1, b'{"format": "heapsnap-snapshot"}')
    strs = (2, strings(b"app.py", b"main"))
    good_sites = (8, sites(0, [(1, 2, 10, 0)], [[0]]))
    good_allocs = (9, allocs([(0x1000, 0, 32, 5)]))
    # a valid file with site sections, and one with an unknown kind: both load
    ok = os.path.join(TMP, "forged-ok.hsnap")
    forge(ok, [meta, strs, good_sites, good_allocs, (200, b"future section")], 2)
    cli("summary", ok)
    j = json.loads(cli("summary", ok, "--by", "site", "--json").stdout)
    check(j["rows"] == [] and j["sites"]["unmatched_blocks"] == 1, "forged ok: %s" % j.get("sites"))
    bad = {
        "undefined-string": [meta, strs, (8, sites(0, [(9, 2, 10, 0)], [[0]]))],
        "undefined-location": [meta, strs, (8, sites(0, [(1, 2, 10, 0)], [[3]]))],
        "unknown-flags": [meta, strs, (8, sites(0, [(1, 2, 10, 8)], [[0]]))],
        "trailing-bytes": [meta, strs, (8, sites(0, [(1, 2, 10, 0)], [[0]]) + b"\x00")],
        "too-deep": [meta, strs, (8, sites(0, [(1, 2, 10, 0)], [[0] * 300]))],
        "allocs-before-sites": [meta, strs, good_allocs],
        "undefined-stack": [meta, strs, good_sites, (9, allocs([(0x1000, 4, 32, 5)]))],
        "short-stream": [meta, strs, good_sites, (9, allocs([(0x1000, 0, 32, 5)])[:-1])],
        "count-too-big": [meta, strs, good_sites, (9, varint(1000) + allocs([(0x1000, 0, 32, 5)])[1:])],
    }
    for name, secs in bad.items():
        path = os.path.join(TMP, "forged-%s.hsnap" % name)
        forge(path, secs, 2)
        for cmd in (["summary", path], ["summary", path, "--by", "site"]):
            p = subprocess.run([CLI] + cmd, capture_output=True, text=True)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            check(p.returncode == 2 and len(lines) == 1 and lines[0].startswith("heapsnap: ")
                  and path in lines[0], "forged %s %s: exit %d, %r" % (name, cmd[2:], p.returncode,
                                                                      p.stderr))


def main():
    for t in (test_exact, test_sampled, test_off, test_forged):
        try:
            t()
        except Exception as e:  # noqa: BLE001 - report and go on
            FAILURES.append("%s: %r" % (t.__name__, e))
            print("FAIL: %s: %r" % (t.__name__, e))
    if FAILURES:
        print("%d failure(s)" % len(FAILURES))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
