#!/usr/bin/python3
"""Data-driven CLI tests for `heapsnap` (tests/cli/cases.txt).

  run.py prepare            build fixtures: make_snapshot on fixtures/*.txt,
                            then damaged variants of small.hsnap
  run.py case NAME          run one case
  run.py update [NAME...]   rewrite golden files from the current output

Environment: HEAPSNAP (the CLI), MAKE_SNAPSHOT, FIXTURES (output dir).

cases.txt lines:  name | arguments | exit status | checks
  arguments: shell words; @name stands for FIXTURES/name.hsnap, @@ for FIXTURES,
             $HERE for this directory
  checks (joined with ';'):
    golden              stdout equals golden/<name>.out
    stdout~REGEX        stdout matches REGEX (re.search, multiline)
    stderr~REGEX        stderr is exactly one line and matches REGEX
    usage               stderr's last line starts with "usage: heapsnap"
    schema:NAME         stdout is JSON valid against formats/NAME.schema.json
    json:PATH=VALUE     a field of the JSON stdout (PATH dotted, [i] for lists)
    file:OUT=GOLDEN     the file OUT the command wrote (in the fixture dir) equals
                        golden/GOLDEN (`update` rewrites it too)
    svg:OUT=L1|L2...    OUT parses as XML (SVG) and has <text> elements L1, L2...
    quiet               stderr is empty
"""
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.environ.get("FIXTURES", os.path.join(os.getcwd(), "cli-fixtures"))
HEAPSNAP = os.environ.get("HEAPSNAP", "heapsnap")
MAKE = os.environ.get("MAKE_SNAPSHOT", "make_snapshot")


def cases():
    out = {}
    with open(os.path.join(HERE, "cases.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, args, status, checks = [p.strip() for p in line.split("|", 3)]
            out[name] = (args, int(status), [c.strip() for c in checks.split(";") if c.strip()])
    return out


def header_crc_fix(data):
    return data[:28] + struct.pack("<I", zlib.crc32(data[:28]) & 0xFFFFFFFF) + data[32:]


def section(kind, payload):
    head = struct.pack("<IIII", kind, 0, len(payload), len(payload))
    head += struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF)
    head += struct.pack("<I", zlib.crc32(head) & 0xFFFFFFFF)
    return head + payload


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def absurd_counts():
    """A well-formed container whose index claims 2^40 objects: the reader must
    refuse it without trying to allocate for them."""
    hdr = b"\x89HSN\r\n\x1a\n" + struct.pack("<HHHBBII I", 1, 0, 1, 8, 1, 0x030C01F0, 0, 0)
    hdr = hdr[:28] + struct.pack("<I", zlib.crc32(hdr[:28]) & 0xFFFFFFFF)
    meta = section(1, b'{"format":"heapsnap-snapshot"}')
    off_meta = len(hdr)
    index_payload = b"".join(varint(v) for v in (1 << 40, 1 << 41, 0, 0, 0))
    index_payload += varint(1) + varint(1) + varint(off_meta) + varint(len(meta) - 24) * 2
    off_index = len(hdr) + len(meta)
    index = section(15, index_payload)
    foot = struct.pack("<QI", off_index, 1)
    foot += struct.pack("<I", zlib.crc32(foot) & 0xFFFFFFFF) + b"HSNAPEND"
    return hdr + meta + index + foot


def prepare():
    os.makedirs(FIX, exist_ok=True)
    for name in sorted(os.listdir(os.path.join(HERE, "fixtures"))):
        if name.endswith(".txt"):
            src = os.path.join(HERE, "fixtures", name)
            dst = os.path.join(FIX, name[:-4] + ".hsnap")
            subprocess.run([MAKE, src, dst], check=True)
    good = open(os.path.join(FIX, "small.hsnap"), "rb").read()
    variants = {
        "truncated": good[: len(good) - 10],
        "half": good[: len(good) // 2],
        "bitflip": good[:100] + bytes([good[100] ^ 0x10]) + good[101:],
        "badmagic": b"\x89HSX" + good[4:],
        "textmode": good.replace(b"\r\n", b"\n", 1),
        "version2": header_crc_fix(good[:8] + struct.pack("<H", 2) + good[10:]),
        "zero": b"",
        "garbage": b"this is not a heap snapshot\n" * 20,
        "absurd": absurd_counts(),
    }
    for name, data in variants.items():
        with open(os.path.join(FIX, "bad-" + name + ".hsnap"), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(FIX, "adir.hsnap"), exist_ok=True)
    # an index of two per-process snapshots (dump --children writes one),
    # and a damaged file that starts like one
    procs = [{"pid": pid, "ppid": 1, "argv": ["python3", "app.py"], "status": "ok", "file": name,
              "memory": {"rss": 1 << 20, "pss": 1 << 19, "uss": 1 << 18, "swap": 0}}
             for pid, name in ((100, "small.hsnap"), (101, "grown.hsnap"))]
    index = {"format": "heapsnap-index", "version": 1, "root_pid": 100, "time": 1700000000.5,
             "time_iso": "2023-11-14T22:13:20+0000", "boot_id": "boot-1", "fork": False,
             "processes": procs}
    with open(os.path.join(FIX, "set.hsidx"), "w") as f:
        json.dump(index, f, indent=1)
    with open(os.path.join(FIX, "bad-brace.hsnap"), "w") as f:
        f.write(json.dumps(index)[:100])


def expand(args):
    out = []
    for w in shlex.split(args.replace("$HERE", HERE)):
        if w == "@@":
            w = FIX
        elif w.startswith("@"):
            w = os.path.join(FIX, w[1:] + ".hsnap")
        out.append(w)
    return out


def run_case(name, case):
    args, _, _ = case
    argv = [HEAPSNAP] + expand(args)
    env = dict(os.environ, LC_ALL="C")
    p = subprocess.run(argv, capture_output=True, env=env, timeout=60, cwd=FIX)
    # paths in output are relative to the fixture dir: make goldens portable
    out = p.stdout.decode("utf-8", "replace").replace(FIX + "/", "")
    err = p.stderr.decode("utf-8", "replace").replace(FIX + "/", "")
    return p.returncode, out, err


def json_path(doc, path):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def check(name, case):
    args, status, checks = case
    code, out, err = run_case(name, case)
    if code < 0:  # killed by a signal: report it the way a shell does
        code = 128 - code
    problems = []
    if code != status:
        problems.append("exit status %d, expected %d" % (code, status))
    for c in checks:
        if c == "golden":
            path = os.path.join(HERE, "golden", name + ".out")
            want = open(path).read() if os.path.exists(path) else None
            if want != out:
                problems.append("stdout differs from golden/%s.out (run.py update %s)" % (name, name))
        elif c.startswith("stdout~"):
            if not re.search(c[7:], out, re.M):
                problems.append("stdout does not match %r" % c[7:])
        elif c.startswith("stderr~(?s)"):  # multi-line stderr (usage errors)
            if not re.search(c[7:], err):
                problems.append("stderr does not match %r" % c[7:])
        elif c.startswith("stderr~"):
            lines = err.splitlines()
            if len(lines) != 1 or not re.search(c[7:], lines[0]):
                problems.append("stderr is not one line matching %r" % c[7:])
        elif c.startswith("file:"):
            out_name, gold = c[5:].split("=", 1)
            got = open(os.path.join(FIX, out_name)).read() if os.path.exists(os.path.join(FIX, out_name)) else None
            gpath = os.path.join(HERE, "golden", gold)
            want = open(gpath).read() if os.path.exists(gpath) else None
            if got is None or got != want:
                problems.append("%s differs from golden/%s (run.py update %s)" % (out_name, gold, name))
        elif c.startswith("svg:"):
            out_name, labels = c[4:].split("=", 1)
            import xml.dom.minidom
            try:
                doc = xml.dom.minidom.parse(os.path.join(FIX, out_name))
            except Exception as e:  # noqa: BLE001
                problems.append("%s does not parse as XML: %s" % (out_name, e))
                continue
            if doc.documentElement.tagName != "svg":
                problems.append("%s: root element is <%s>, not <svg>" % (out_name, doc.documentElement.tagName))
            texts = set()
            for t in doc.getElementsByTagName("text"):
                texts.add("".join(n.data for n in t.childNodes if n.nodeType == n.TEXT_NODE))
            for lab in labels.split("|"):
                if lab not in texts:
                    problems.append("%s has no node or edge label %r (labels: %s)" % (out_name, lab, sorted(texts)))
        elif c == "usage":
            lines = err.splitlines()
            if not lines or not lines[-1].startswith("usage: heapsnap"):
                problems.append("no usage line on stderr")
        elif c == "quiet":
            if err:
                problems.append("stderr not empty")
        elif c.startswith("schema:"):
            import jsonschema
            schema = json.load(open(os.path.join(ROOT, "formats", c[7:] + ".schema.json")))
            jsonschema.Draft202012Validator.check_schema(schema)
            try:
                jsonschema.validate(json.loads(out), schema, cls=jsonschema.Draft202012Validator)
            except Exception as e:  # noqa: BLE001 - report any failure
                problems.append("schema %s: %s" % (c[7:], str(e).splitlines()[0]))
        elif c.startswith("json:"):
            path, want = c[5:].split("=", 1)
            try:
                got = json_path(json.loads(out), path)
            except Exception as e:  # noqa: BLE001
                problems.append("json %s: %s" % (path, e))
                continue
            if json.dumps(got, ensure_ascii=False) != want and str(got) != want:
                problems.append("json %s = %s, expected %s" % (path, json.dumps(got), want))
        else:
            problems.append("unknown check %r" % c)
    if problems:
        sys.stdout.write("$ heapsnap %s\n--- stdout\n%s--- stderr\n%s---\n" % (args, out, err))
        for p in problems:
            print("FAIL %s: %s" % (name, p))
        return 1
    print("ok %s" % name)
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd = sys.argv[1]
    if cmd == "prepare":
        prepare()
        return 0
    all_cases = cases()
    if cmd == "case":
        return check(sys.argv[2], all_cases[sys.argv[2]])
    if cmd == "update":
        names = sys.argv[2:] or [n for n, c in all_cases.items() if "golden" in c[2]]
        if not sys.argv[2:]:
            names += [n for n, c in all_cases.items() if any(x.startswith("file:") for x in c[2])]
        for n in names:
            _, out, _ = run_case(n, all_cases[n])
            if "golden" in all_cases[n][2]:
                with open(os.path.join(HERE, "golden", n + ".out"), "w") as f:
                    f.write(out)
                print("wrote golden/%s.out" % n)
            for c in all_cases[n][2]:
                if c.startswith("file:"):
                    out_name, gold = c[5:].split("=", 1)
                    with open(os.path.join(FIX, out_name)) as src, \
                            open(os.path.join(HERE, "golden", gold), "w") as dst:
                        dst.write(src.read())
                    print("wrote golden/%s" % gold)
        return 0
    if cmd == "all":
        return max([check(n, c) for n, c in all_cases.items()] or [0])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
