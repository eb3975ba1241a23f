"""Damaged inputs: `heapsnap summary` (and info, diff) must exit 2 with one
error line that names the file; never crash, hang or succeed.

usage: corrupt_cases.py --cli CLI --build BUILD [--seed SNAPSHOT]

The damaged files are made on the fly from a real snapshot: SNAPSHOT if
given, else one dumped now by /usr/bin/python3 with the build's hook
(fixtures/programs/make_seed_snapshot.py), else the checked-in
fixtures/snapshots/synthetic-small.hsnap. Cases: truncated (in the header,
in a section, just before the footer, by one byte), single bit flips in
the header, a section header, a payload and the footer, a wrong major
version with a valid header CRC, unknown header flags with a valid CRC, a
text file, an empty file, a directory, a missing file, a file without read
permission (when not root), and a snapshot saved through a text-mode
newline conversion; then damage no checksum catches: the file is rebuilt
with every length, offset and CRC right around changed content (node and
edge counts off by one, a short stream, a type id or string id out of
range, an unknown node flag or label kind, two nodes at one address, a
claim of 2^40 strings, META not JSON, wrong index totals, an overlong
varint, a raw length over the limit), plus two files that must read: the
seed rebuilt unchanged, and the seed with a section of unknown kind added.
"""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402


def seed(args, work):
    if args.seed:
        return args.seed
    out = os.path.join(work, "seed.hsnap")
    py = T.SYSTEM_PYTHON if os.path.exists(T.SYSTEM_PYTHON) else sys.executable
    p = T.run([py, T.fixture("make_seed_snapshot.py"), out], env=T.env_for_hook(args.build), timeout=120)
    if p.returncode == 0 and os.path.exists(out):
        return out
    T.note("could not dump a seed snapshot with the hook (%s); using the synthetic fixture"
           % (p.stderr.strip().splitlines() or ["?"])[-1])
    return os.path.join(T.ROOT, "fixtures", "snapshots", "synthetic-small.hsnap")


def with_header_crc(b):
    b = bytearray(b)
    struct.pack_into("<I", b, 28, zlib.crc32(bytes(b[:28])))
    return bytes(b)


def flip(data, off, bit=0):
    b = bytearray(data)
    b[off] ^= 1 << bit
    return bytes(b)


def section_offsets(data):
    out = []
    pos = 32
    end = len(data) - 24
    while pos < end:
        stored = struct.unpack_from("<I", data, pos + 12)[0]
        out.append(pos)
        pos += 24 + stored
    return out


def cases(data):
    secs = section_offsets(data)
    n = len(data)
    c = [
        ("empty file", b""),
        ("magic only", data[:8]),
        ("cut in the header", data[:20]),
        ("header only", data[:32]),
        ("cut inside the first section", data[:secs[0] + 30] if secs else data[:40]),
        ("cut in the middle", data[:n // 2]),
        ("cut before the footer", data[:n - 24]),
        ("one byte short", data[:n - 1]),
        ("one byte extra", data + b"\0"),
        ("bit flip in the magic", flip(data, 1)),
        ("bit flip in the version", flip(data, 8)),
        ("bit flip in the header CRC", flip(data, 29, 3)),
        ("bit flip in the footer end magic", flip(data, n - 3)),
        ("bit flip in the footer index offset", flip(data, n - 24, 2)),
        ("major version 2 with a valid header CRC", with_header_crc(data[:8] + struct.pack("<H", 2) + data[10:])),
        ("major version 0 with a valid header CRC", with_header_crc(data[:8] + struct.pack("<H", 0) + data[10:])),
        ("unknown header flag with a valid CRC", with_header_crc(data[:20] + struct.pack("<I", 0x80) + data[24:])),
        ("file kind 7 with a valid CRC", with_header_crc(data[:12] + struct.pack("<H", 7) + data[14:])),
        ("text file", b"this is not a heap snapshot\njust some text\n"),
        ("JSON file", b'{"format": "heapsnap-snapshot"}\n'),
        ("newline conversion (LF -> CRLF)", data.replace(b"\n", b"\r\n")),
        ("newline conversion (CRLF -> LF)", data.replace(b"\r\n", b"\n")),
        ("high bit stripped (7-bit transfer)", bytes(x & 0x7F for x in data)),
        ("zeros", b"\0" * n),
    ]
    for i, off in enumerate(secs[:6]):
        c.append(("bit flip in section %d's header" % i, flip(data, off + 8, 5)))
        stored = struct.unpack_from("<I", data, off + 12)[0]
        if stored:
            c.append(("bit flip in section %d's payload" % i, flip(data, off + 24 + stored // 2, 6)))
    return c


# ---------------------------------------------------------------- rebuilding
# Damage that checksums cannot catch: the file is taken apart, one section's
# content is changed, and the file is put back together with every length,
# offset and CRC right (sections stored uncompressed, which the format allows).

def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(v):
    return (v << 1) if v >= 0 else ((-v) << 1) - 1


def split_sections(data):
    """[(kind, raw payload)] for every section before the index."""
    out = []
    pos = 32
    end = len(data) - 24
    while pos < end:
        kind, flags, raw, stored = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 24:pos + 24 + stored]
        if flags & 1:
            body = hsnap._decompress(body, raw)
        if kind != hsnap.SEC_INDEX:
            out.append((kind, body))
        pos += 24 + stored
    return out


def section(kind, payload, raw_len=None):
    hdr = struct.pack("<IIIII", kind, 0, len(payload) if raw_len is None else raw_len, len(payload),
                      zlib.crc32(payload))
    return hdr + struct.pack("<I", zlib.crc32(hdr)) + payload


def assemble(header, sections, totals, index_extra=b""):
    out = bytearray(header)
    entries = []
    for kind, payload in sections:
        entries.append((kind, len(out), len(payload), len(payload)))
        out += section(kind, payload)
    idx = b"".join(uvarint(t) for t in totals) + uvarint(len(entries))
    idx += b"".join(uvarint(k) + uvarint(o) + uvarint(r) + uvarint(st) for k, o, r, st in entries) + index_extra
    index_off = len(out)
    out += section(hsnap.SEC_INDEX, idx)
    foot = struct.pack("<QI", index_off, len(entries))
    out += foot + struct.pack("<I", zlib.crc32(foot)) + hsnap.END_MAGIC
    return bytes(out)


def nodes_parts(payload):
    c = hsnap.Cursor(payload)
    n, e = c.varint(), c.varint()
    streams = []
    for _ in range(11):
        ln = c.varint()
        streams.append(bytearray(c.take(ln)))
    return n, e, streams


def nodes_join(n, e, streams):
    return uvarint(n) + uvarint(e) + b"".join(uvarint(len(s)) + bytes(s) for s in streams)


def rebuilt_cases(data):
    snap = hsnap.parse(data)
    t = snap.totals
    totals = [t["nodes"], t["edges"], t["strings"], t["types"], t["roots"]]
    header = data[:32]
    secs = split_sections(data)
    first_nodes = next(i for i, (k, _) in enumerate(secs) if k == hsnap.SEC_NODES)
    n, e, st = nodes_parts(secs[first_nodes][1])

    def with_nodes(n2, e2, st2):
        s2 = list(secs)
        s2[first_nodes] = (hsnap.SEC_NODES, nodes_join(n2, e2, st2))
        return assemble(header, s2, totals)

    def replace_stream(i, content):
        st2 = [bytearray(x) for x in st]
        st2[i] = bytearray(content)
        return st2

    # stream order: address type size refcount flags edge_counts values targets edge_kinds labels label_keys
    types_stream = hsnap.Cursor(bytes(st[1]))
    type_ids = [types_stream.varint() for _ in range(n)]
    flags = bytearray(st[4])
    flags[0] = 0x80
    kinds = bytearray(st[8])
    kinds[0] = 0x3C if kinds else 0
    addr = hsnap.Cursor(bytes(st[0]))
    deltas = [addr.zigzag() for _ in range(n)]
    if n >= 3:  # node 1 moved onto node 0's address, node 2 and later unchanged
        deltas[2] += deltas[1]
        deltas[1] = 0
    dup_addr = b"".join(uvarint(zigzag(d)) for d in deltas)
    strings_i = next(i for i, (k, _) in enumerate(secs) if k == hsnap.SEC_STRINGS)
    types_i = next(i for i, (k, _) in enumerate(secs) if k == hsnap.SEC_TYPES)

    def with_section(i, payload, kind=None):
        s2 = list(secs)
        s2[i] = (kind if kind is not None else secs[i][0], payload)
        return assemble(header, s2, totals)

    tc = hsnap.Cursor(secs[types_i][1])
    ntypes = tc.varint()
    bad_type_name = uvarint(ntypes) + uvarint(tc.varint()) + uvarint(10 ** 6) + secs[types_i][1][tc.i + 1:] \
        if ntypes else secs[types_i][1]
    unknown = list(secs)
    unknown.insert(len(unknown), (99, b"a section kind from the future"))
    meta_i = next(i for i, (k, _) in enumerate(secs) if k == hsnap.SEC_META)
    # format 1.1: REPORTED (what sys.getsizeof reports) right after a NODES
    # section, one varint per record: 0 unknown, else zigzag(getsizeof -
    # size) + 1. A seed without one after its first NODES gets one there.
    first_size = hsnap.Cursor(bytes(st[2])).varint()
    if not (first_nodes + 1 < len(secs) and secs[first_nodes + 1][0] == hsnap.SEC_REPORTED):
        secs = list(secs)
        secs.insert(first_nodes + 1, (hsnap.SEC_REPORTED, uvarint(n) + uvarint(zigzag(-8) + 1) + b"\x00" * (n - 1)))
    rep_i = first_nodes + 1
    rep = secs[rep_i][1]
    rep_count = hsnap.Cursor(rep).varint()
    rep_body = rep[len(uvarint(rep_count)):]
    rc_ = hsnap.Cursor(rep_body)
    rep_entries = [rc_.varint() for _ in range(rep_count)]
    before_nodes = list(secs)
    before_nodes.insert(first_nodes, before_nodes.pop(rep_i))
    after_other = list(secs)  # a STRINGS section between NODES and its REPORTED
    after_other.insert(rep_i, (hsnap.SEC_STRINGS, uvarint(0)))
    return [
        ("valid CRCs: REPORTED has one entry more than its NODES has records",
         with_section(rep_i, uvarint(rep_count + 1) + rep_body + b"\x00"), 2),
        ("valid CRCs: REPORTED has one entry fewer than its NODES has records",
         with_section(rep_i, uvarint(rep_count - 1) + b"".join(uvarint(v) for v in rep_entries[:-1])), 2),
        ("valid CRCs: REPORTED with a trailing byte", with_section(rep_i, rep + b"\x00"), 2),
        ("valid CRCs: REPORTED cut inside an entry", with_section(rep_i, rep[:-1] + b"\x80"), 2),
        ("valid CRCs: REPORTED gives a getsizeof below 0",
         with_section(rep_i, uvarint(rep_count) + uvarint(zigzag(-first_size - 1) + 1) +
                      b"".join(uvarint(v) for v in rep_entries[1:])), 2),
        ("valid CRCs: REPORTED before any NODES", assemble(header, before_nodes, totals), 2),
        ("valid CRCs: REPORTED not right after its NODES", assemble(header, after_other, totals), 2),
        ("REPORTED all unknown (valid)", with_section(rep_i, uvarint(rep_count) + b"\x00" * rep_count), 0),
        ("rebuilt unchanged (control)", assemble(header, secs, totals), 0),
        ("unknown section kind 99 (must be skipped)", assemble(header, unknown, totals), 0),
        ("valid CRCs: NODES claims one node more than its streams hold", with_nodes(n + 1, e, st), 2),
        ("valid CRCs: NODES claims one edge more", with_nodes(n, e + 1, st), 2),
        ("valid CRCs: NODES stream one byte short", with_nodes(n, e, replace_stream(2, st[2][:-1])), 2),
        ("valid CRCs: a type id out of range",
         with_nodes(n, e, replace_stream(1, uvarint(10 ** 6) + b"".join(uvarint(x) for x in type_ids[1:]))), 2),
        ("valid CRCs: unknown node flag 0x80", with_nodes(n, e, replace_stream(4, flags)), 2),
        ("valid CRCs: edge label kind 15", with_nodes(n, e, replace_stream(8, kinds)), 2),
        ("valid CRCs: two nodes at one address", with_nodes(n, e, replace_stream(0, dup_addr)), 2),
        ("valid CRCs: STRINGS claims 2^40 strings",
         with_section(strings_i, uvarint(1 << 40) + secs[strings_i][1][len(uvarint(hsnap.Cursor(secs[strings_i][1]).varint())):]), 2),
        ("valid CRCs: a type name beyond the string table", with_section(types_i, bad_type_name), 2),
        ("valid CRCs: META is not JSON", with_section(meta_i, b"\x00not json{"), 2),
        ("valid CRCs: index totals claim one node more",
         assemble(header, secs, [totals[0] + 1] + totals[1:]), 2),
        ("valid CRCs: 10-byte varint overflow in NODES",
         with_nodes(n, e, replace_stream(2, b"\xff" * 9 + b"\x7f" + bytes(st[2])[1:])), 2),
        ("valid CRCs: section raw length above 64 MiB",
         assemble(header, secs, totals).replace(section(secs[0][0], secs[0][1]),
                                                section(secs[0][0], secs[0][1], raw_len=65 << 20), 1), 2),
    ]


def check_one(cli, cmd, path, what):
    args = [cli] + cmd + [path]
    p = T.run(args, timeout=30)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    ok = p.returncode == 2 and len(lines) == 1 and lines[0].startswith("heapsnap: ") and path in lines[0]
    T.check(ok, "%s: `heapsnap %s` exits 2 with one line naming the file" % (what, cmd[0]),
            "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout[:300], p.stderr[-600:]))
    if ok:
        print("     %s" % lines[0])


def main():
    ap = T.parser(__doc__)
    ap.add_argument("--seed", help="snapshot to damage")
    args = ap.parse_args()
    work = T.setup(args, "corrupt")
    src = seed(args, work)
    data = open(src, "rb").read()
    print("seed: %s (%d bytes)" % (src, len(data)))
    p = T.run([args.cli, "summary", src])
    if not T.check(p.returncode == 0, "the undamaged seed reads (summary exits 0)", p.stderr[-500:]):
        T.finish()
    for i, (what, content) in enumerate(cases(data)):
        path = os.path.join(work, "case%02d.hsnap" % i)
        with open(path, "wb") as f:
            f.write(content)
        check_one(args.cli, ["summary"], path, what)
        if i % 4 == 0:
            check_one(args.cli, ["info"], path, what)
            check_one(args.cli, ["diff", src], path, what + " (as diff's second file)")
    try:
        rebuilt = rebuilt_cases(data)
    except Exception as e:
        T.fail("the seed can be taken apart and rebuilt by corrupt_cases.py", "%s: %s" % (type(e).__name__, e))
        rebuilt = []
    good = T.run([args.cli, "summary", "--top", "0", src]).stdout
    for i, (what, content, want) in enumerate(rebuilt):
        path = os.path.join(work, "rebuilt%02d.hsnap" % i)
        with open(path, "wb") as f:
            f.write(content)
        if want == 0:
            p = T.run([args.cli, "summary", "--top", "0", path])
            T.check(p.returncode == 0 and p.stdout.replace(path, src) == good,
                    "%s: summary reads it and prints what it prints for the seed" % what,
                    "exit %d, stderr %r" % (p.returncode, p.stderr[-500:]))
        else:
            check_one(args.cli, ["summary"], path, what)
    d = os.path.join(work, "a-directory.hsnap")
    os.mkdir(d)
    check_one(args.cli, ["summary"], d, "a directory")
    check_one(args.cli, ["summary"], os.path.join(work, "missing.hsnap"), "a missing file")
    if os.geteuid() != 0:
        path = os.path.join(work, "unreadable.hsnap")
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0)
        check_one(args.cli, ["summary"], path, "a file without read permission")
    else:
        T.note("running as root: the unreadable-file case is skipped")
    T.finish()


if __name__ == "__main__":
    main()
