"""A small, independent reader of heapsnap snapshot files (formats/snapshot-v1.md),
for the integration tests: a second implementation of the spec in Python, so
that edge labels, roots and node flags written by the hook can be checked
without going through the C analyzer.

Runs on any Python 3.8+; zstd frames are decompressed with libzstd through
ctypes (the library the C code links against).

    snap = read("a.hsnap")
    snap.meta, snap.types, snap.nodes (address -> Node), snap.roots, snap.strings
"""
import ctypes
import ctypes.util
import json
import struct
import zlib

MAGIC = b"\x89HSN\r\n\x1a\n"
END_MAGIC = b"HSNAPEND"

SEC_META, SEC_STRINGS, SEC_TYPES, SEC_NODES, SEC_ROOTS, SEC_META_END, SEC_SIZES, SEC_INDEX = 1, 2, 3, 4, 5, 6, 7, 15
SEC_REPORTED = 10  # format 1.1: what sys.getsizeof reports, per record of the NODES before

F_GC, F_VALUE, F_TRUNC, F_EST, F_IMMORTAL, F_CONT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
# type flags
T_GC, T_HEAP, T_SIZEOF, T_NATIVE, T_DEVICE, T_MAPPED = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

E_STRONG, E_WEAK = 0, 1
L_NONE, L_INDEX, L_KEY, L_ATTR, L_NAME, L_ATTR_NAME, L_DICT_KEY, L_LOCAL = range(8)
ROOT_KINDS = {1: "module", 2: "frame", 3: "local", 4: "held", 5: "interpreter"}

_zstd = None


def _zstd_lib():
    global _zstd
    if _zstd is None:
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        lib = ctypes.CDLL(name)
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        _zstd = lib
    return _zstd


def _decompress(data, raw_len):
    lib = _zstd_lib()
    buf = ctypes.create_string_buffer(max(raw_len, 1))
    n = lib.ZSTD_decompress(buf, raw_len, data, len(data))
    if lib.ZSTD_isError(n) or n != raw_len:
        raise FormatError("zstd frame does not decompress to %d bytes" % raw_len)
    return buf.raw[:raw_len]


class FormatError(Exception):
    pass


class Cursor:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def varint(self):
        d = self.d
        i = self.i
        b = d[i]
        if b < 0x80:  # most values are one byte: the tests' reading time is here
            self.i = i + 1
            return b
        v = b & 0x7F
        shift = 7
        i += 1
        while True:
            b = d[i]
            i += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                self.i = i
                return v
            shift += 7
            if shift > 63:
                raise FormatError("varint too long")

    def byte(self):
        i = self.i
        if i >= len(self.d):
            raise FormatError("short read")
        self.i = i + 1
        return self.d[i]

    def zigzag(self):
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def take(self, n):
        b = self.d[self.i:self.i + n]
        if len(b) != n:
            raise FormatError("short read")
        self.i += n
        return b

    def stream(self):
        n = self.varint()
        return Cursor(self.take(n))

    def done(self):
        return self.i == len(self.d)


class Edge:
    __slots__ = ("target", "kind", "label_kind", "label")

    def __init__(self, target, kind, label_kind, label):
        self.target, self.kind, self.label_kind, self.label = target, kind, label_kind, label

    def __repr__(self):
        return "Edge(%#x, kind=%d, label=%d:%r)" % (self.target, self.kind, self.label_kind, self.label)


class Node:
    # size: real bytes (format 1.1) or sys.getsizeof (1.0); getsizeof: what
    # sys.getsizeof reported (REPORTED, 1.1), None when unknown (see
    # Snapshot.getsizeof)
    __slots__ = ("address", "type", "size", "refcount", "flags", "value", "edges", "getsizeof")

    def __repr__(self):
        return "Node(%#x, type=%d, size=%d, rc=%d, flags=%#x, value=%r, %d edges)" % (
            self.address, self.type, self.size, self.refcount, self.flags, self.value, len(self.edges))


class Snapshot:
    def __init__(self):
        self.header = {}
        self.meta = {}
        self.strings = []
        self.types = []     # list of dicts: address, name, flags, basic_size
        self.nodes = {}     # address -> Node
        self.order = []     # addresses in file order
        self.roots = []     # list of dicts: kind, kind_name, target, name, detail
        self.totals = None
        self.sections = []

    # -- helpers for tests
    def type_name(self, node):
        return self.types[node.type]["name"]

    def is_native(self, node):
        return bool(self.types[node.type]["flags"] & T_NATIVE)

    def getsizeof(self, node):
        """What sys.getsizeof reported for the node: its REPORTED entry; in a
        1.0 file, its size. None when unknown (1.1 without an entry)."""
        if node.getsizeof is not None:
            return node.getsizeof
        return node.size if self.header.get("minor", 0) == 0 else None

    def by_type(self, name):
        return [n for n in self.nodes.values() if self.types[n.type]["name"] == name]

    def string(self, sid):
        return None if sid is None else self.strings[sid]

    def label_text(self, edge):
        """The label as the spec says it reads: [3], ['k'], .name, __dict__ ..."""
        k = edge.label_kind
        if k == L_NONE:
            return ""
        if k == L_INDEX:
            return "[%d]" % edge.label
        if k in (L_KEY, L_ATTR):
            key = self.nodes.get(edge.label)
            v = key.value if key is not None else None
            if k == L_ATTR:
                return "." + (v.decode("utf-8", "replace") if v is not None else "?")
            if key is None:
                return "[?]"
            tn = self.type_name(key)
            if tn == "str" and v is not None:
                return "[%r]" % v.decode("utf-8", "replace")
            return "[%s]" % (v.decode("utf-8", "replace") if v is not None else "<%s>" % tn)
        if k == L_NAME:
            return self.strings[edge.label]
        if k == L_ATTR_NAME:
            return "." + self.strings[edge.label]
        if k == L_DICT_KEY:
            return "<key>"
        if k == L_LOCAL:
            return "local " + self.strings[edge.label]
        return "<label kind %d>" % k

    def referrers(self, address):
        out = []
        for n in self.nodes.values():
            for e in n.edges:
                if e.target == address:
                    out.append((n, e))
        return out


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return parse(data)


def parse(data):
    s = Snapshot()
    if len(data) < 56:
        raise FormatError("file too short")
    if data[:8] != MAGIC:
        raise FormatError("bad magic")
    major, minor, kind, psize, order, pyver, flags, _res, crc = struct.unpack_from("<HHHBBIIII", data, 8)
    if zlib.crc32(data[:28]) != crc:
        raise FormatError("header crc")
    s.header = dict(major=major, minor=minor, kind=kind, pointer_size=psize, byte_order=order,
                    python_version=pyver, flags=flags)
    foot = data[-24:]
    index_off, nsec, fcrc = struct.unpack_from("<QII", foot, 0)
    if foot[16:] != END_MAGIC or zlib.crc32(foot[:12]) != fcrc:
        raise FormatError("footer")
    pos = 32
    payloads = []
    end = len(data) - 24
    while pos < end:
        kind_, sflags, raw, stored, pcrc, hcrc = struct.unpack_from("<IIIIII", data, pos)
        if zlib.crc32(data[pos:pos + 20]) != hcrc:
            raise FormatError("section header crc at %d" % pos)
        body = data[pos + 24:pos + 24 + stored]
        if zlib.crc32(body) != pcrc:
            raise FormatError("section payload crc at %d" % pos)
        if sflags & 1:
            body = _decompress(body, raw)
        s.sections.append((kind_, pos, raw, stored))
        payloads.append((kind_, body))
        pos += 24 + stored
    if pos != end:
        raise FormatError("sections overrun footer")
    prev_node = None
    last_records = []  # the last NODES section's records (None: a continuation)
    kinds = [k for k, _ in payloads]
    for (kind_, body), prev_kind in zip(payloads, [None] + kinds[:-1]):
        c = Cursor(body)
        if kind_ == SEC_META:
            s.meta = json.loads(body.decode("utf-8"))
        elif kind_ == SEC_META_END:
            # merged over META: objects one level deep, other keys replaced
            for k, v in json.loads(body.decode("utf-8")).items():
                if isinstance(v, dict) and isinstance(s.meta.get(k), dict):
                    s.meta[k].update(v)
                else:
                    s.meta[k] = v
        elif kind_ == SEC_SIZES:
            # sizes measured after the walk: replace the estimate, clear flag 0x08
            addr = 0
            for _ in range(c.varint()):
                addr += c.zigzag()
                size = c.varint()
                n = s.nodes.get(addr)
                if n is not None:
                    n.size = size
                    n.flags &= ~F_EST
        elif kind_ == SEC_REPORTED:
            # positional, right after its NODES section: one varint per
            # record, 0 unknown, else getsizeof = size + zigzag(v - 1)
            if prev_kind != SEC_NODES:
                raise FormatError("REPORTED not right after a NODES section")
            count = c.varint()
            if count != len(last_records):
                raise FormatError("REPORTED has %d entries for %d records" % (count, len(last_records)))
            for rec in last_records:
                v = c.varint()
                if v == 0:
                    continue
                if rec is None:
                    raise FormatError("REPORTED entry for a continuation record")
                d = ((v - 1) >> 1) ^ -((v - 1) & 1)
                if rec.size + d < 0:
                    raise FormatError("REPORTED getsizeof below 0")
                rec.getsizeof = rec.size + d
            if not c.done():
                raise FormatError("REPORTED trailing bytes")
        elif kind_ == SEC_STRINGS:
            for _ in range(c.varint()):
                n = c.varint()
                s.strings.append(c.take(n).decode("utf-8", "surrogateescape"))
        elif kind_ == SEC_TYPES:
            for _ in range(c.varint()):
                addr = c.varint()
                name = c.varint()
                fl = c.varint()
                bs = c.varint()
                s.types.append(dict(address=addr, name=s.strings[name - 1] if name else None,
                                    flags=fl, basic_size=bs))
        elif kind_ == SEC_NODES:
            last_records = []
            prev_node = _parse_nodes(s, c, prev_node, last_records)
        elif kind_ == SEC_ROOTS:
            for _ in range(c.varint()):
                rk = c.varint()
                tgt = c.varint()
                nm = c.varint()
                dt = c.varint()
                s.roots.append(dict(kind=rk, kind_name=ROOT_KINDS.get(rk, "unknown"), target=tgt,
                                    name=s.strings[nm - 1] if nm else None,
                                    detail=s.strings[dt - 1] if dt else None))
        elif kind_ == SEC_INDEX:
            s.totals = dict(zip(("nodes", "edges", "strings", "types", "roots"),
                                [c.varint() for _ in range(5)]))
    return s


def _parse_nodes(s, c, prev_node, records):
    ncount = c.varint()
    ecount = c.varint()
    addr_s, type_s, size_s, rc_s = c.stream(), c.stream(), c.stream(), c.stream()
    flags_s, ecounts_s, values_s = c.stream(), c.stream(), c.stream()
    targets_s, kinds_s, labels_s, keys_s = c.stream(), c.stream(), c.stream(), c.stream()
    addr = 0
    tgt = 0
    idx = 0
    key = 0
    for _ in range(ncount):
        addr += addr_s.zigzag()
        n = Node()
        n.address = addr
        n.type = type_s.varint()
        n.size = size_s.varint()
        n.refcount = rc_s.varint()
        n.flags = flags_s.byte()
        n.value = None
        n.getsizeof = None
        if n.flags & F_VALUE:
            n.value = values_s.take(values_s.varint())
        ne = ecounts_s.varint()
        edges = []
        for _ in range(ne):
            tgt += targets_s.zigzag()
            b = kinds_s.byte()
            ek, lk = b & 3, (b >> 2) & 15
            lab = None
            if lk == L_INDEX:
                idx += labels_s.zigzag()
                lab = idx
            elif lk in (L_NAME, L_ATTR_NAME, L_LOCAL):
                lab = labels_s.varint()
            elif lk in (L_KEY, L_ATTR):
                key += keys_s.zigzag()
                lab = key
            edges.append(Edge(tgt, ek, lk, lab))
        if n.flags & F_CONT:
            if prev_node is None or prev_node.address != addr:
                raise FormatError("continuation record without its node")
            prev_node.edges.extend(edges)
            records.append(None)
            continue
        n.edges = edges
        if addr in s.nodes:
            raise FormatError("object %#x twice" % addr)
        s.nodes[addr] = n
        s.order.append(addr)
        records.append(n)
        prev_node = n
    for st in (addr_s, type_s, size_s, rc_s, flags_s, ecounts_s, values_s, targets_s, kinds_s, labels_s, keys_s):
        if not st.done():
            raise FormatError("stream not consumed exactly")
    return prev_node


if __name__ == "__main__":
    import sys
    snap = read(sys.argv[1])
    print(json.dumps(snap.header))
    print(json.dumps(snap.totals))
    print("nodes", len(snap.nodes), "types", len(snap.types), "roots", len(snap.roots), "strings", len(snap.strings))
    for r in snap.roots[:10]:
        print(r)
    for a in snap.order[:10]:
        n = snap.nodes[a]
        print(n, snap.type_name(n), [snap.label_text(e) for e in n.edges[:5]])
