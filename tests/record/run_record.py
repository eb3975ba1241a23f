#!/usr/bin/python3
"""Tests of `heapsnap record`, recordings and `heapsnap timeline`.

  run_record.py fixtures           make_recording's known-answer recordings read
                                   back the same as the shipped ones
  run_record.py cli                timeline/info on the fixtures: golden text,
                                   JSON schema, exact figures, damaged files
  run_record.py python --python PY real recordings of fixture programs run by PY
  run_record.py update             rewrite the golden files and shipped fixtures

Environment: HEAPSNAP (the CLI), MAKE_RECORDING, WORK (scratch directory),
TZ=UTC (the golden text prints local times).
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = os.path.join(ROOT, "fixtures", "programs")
SHIPPED = os.path.join(ROOT, "fixtures", "recordings")
GOLDEN = os.path.join(HERE, "golden")
HEAPSNAP = os.environ.get("HEAPSNAP", "heapsnap")
MAKE = os.environ.get("MAKE_RECORDING", "make_recording")
WORK = os.environ.get("WORK", os.path.join(os.getcwd(), "record-work"))
MIB = 1 << 20

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(args, **kw):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.setdefault("TZ", "UTC")
    env.update(kw.pop("env", {}))
    return subprocess.run([HEAPSNAP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, **kw)


def timeline(path):
    r = run(["timeline", path, "--json"])
    if not check(r.returncode == 0, "timeline %s: exit %d: %s" % (path, r.returncode, r.stderr)):
        return None, r
    return json.loads(r.stdout), r


def validate(doc, name):
    import jsonschema
    schema = json.load(open(os.path.join(ROOT, "formats", name + ".schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        check(False, "schema %s: %s" % (name, str(e).splitlines()[0]))


def fresh_work(sub):
    d = os.path.join(WORK, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def make(kind, out):
    subprocess.check_call([MAKE, kind, out])


# ---------------------------------------------------------------------------
# fixtures: what make_recording writes reads back like the shipped files

def strip_file(doc):
    doc["recording"].pop("file", None)
    for s in doc["snapshots"]:
        s.pop("path", None)
    return doc


def test_fixtures():
    d = fresh_work("fixtures")
    for kind in ("tree", "abrupt"):
        out = os.path.join(d, kind + ".hsrec")
        make(kind, out)
        shipped = os.path.join(SHIPPED, kind + ".hsrec")
        if not check(os.path.exists(shipped), "shipped fixture %s missing" % shipped):
            continue
        a, _ = timeline(out)
        b, _ = timeline(shipped)
        if a and b:
            check(strip_file(a) == strip_file(b),
                  "%s: make_recording and the shipped fixture read back differently" % kind)


# ---------------------------------------------------------------------------
# cli

def one_line_error(r, pattern, what):
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2, "%s: exit %d, expected 2 (%s)" % (what, r.returncode, r.stderr.strip()))
    check(len(lines) == 1, "%s: %d stderr lines, expected one: %r" % (what, len(lines), r.stderr))
    check(bool(lines) and re.search(pattern, lines[0]) is not None,
          "%s: stderr %r does not match %r" % (what, r.stderr.strip(), pattern))


def header_crc_fix(data):
    return data[:28] + struct.pack("<I", zlib.crc32(data[:28]) & 0xFFFFFFFF) + data[32:]


def sections(data):
    """(offset, kind, stored) of each section after the header."""
    out, off = [], 32
    while off + 24 <= len(data):
        kind, flags, raw, stored = struct.unpack_from("<IIII", data, off)
        out.append((off, kind, stored))
        off += 24 + stored
        if kind == 15:
            break
    return out


def golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return
    want = open(path).read() if os.path.exists(path) else None
    if not check(want == text, "golden %s differs" % name):
        sys.stdout.write("--- got:\n" + text + "--- want:\n" + (want or "(missing)\n"))


def test_cli():
    d = fresh_work("cli")
    tree = os.path.join(SHIPPED, "tree.hsrec")
    abrupt = os.path.join(SHIPPED, "abrupt.hsrec")
    # the golden text uses the path as given: copy under a stable name
    local = os.path.join(d, "tree.hsrec")
    shutil.copy(tree, local)

    r = run(["timeline", "tree.hsrec"], cwd=d)
    check(r.returncode == 0 and r.stderr == "", "timeline text: %d %s" % (r.returncode, r.stderr))
    golden("timeline-tree.out", r.stdout)
    r = run(["info", "tree.hsrec"], cwd=d)
    check(r.returncode == 0 and r.stderr == "", "info text: %d %s" % (r.returncode, r.stderr))
    golden("info-tree.out", r.stdout)
    r = run(["timeline", "tree.hsrec", "--samples", "--max-samples", "5"], cwd=d)
    check(r.returncode == 0, "timeline --samples")
    golden("timeline-tree-samples.out", r.stdout)

    doc, _ = timeline(local)
    if doc:
        validate(doc, "timeline")
        rec = doc["recording"]
        check(rec["complete"] is True and rec["warning"] is None and rec["stop"] == "exited",
              "tree: complete recording")
        check(rec["duration"] == 10.0 and rec["interval"] == 0.01, "tree: duration and interval")
        ps = {p["pid"]: p for p in doc["processes"]}
        check(sorted(ps) == [100, 101, 102], "tree: processes %s" % sorted(ps))
        root, child, worker = ps.get(100), ps.get(101), ps.get(102)
        if root and child and worker:
            check(root["root"] and root["python"] and root["agent"], "root flags")
            check(root["peak"]["rss"] == {"bytes": 120 * MIB, "t": 3.0}, "root peak rss %s" % root["peak"]["rss"])
            check(root["peak"]["pss"]["bytes"] == 114 * MIB, "root peak pss %s" % root["peak"]["pss"])
            check(root["exit"]["status"] == "exited" and root["exit"]["code"] == 0, "root exit")
            check(root["at_exit"]["rss"] == 30 * MIB, "root rss at exit %s" % root["at_exit"])
            check(child["exit"]["code"] == 3 and child["parent"] == 0 and child["ppid"] == 100,
                  "fork child exit/parent")
            check(child["start"] == 0.5 and child["end"] == 5.0, "child lifetime")
            check(child["peak"]["pss"]["bytes"] == 40 * MIB, "child pss (copy-on-write shared)")
            e = worker["exit"]
            check(e["status"] == "signaled" and e["signal"] == 9 and e["signal_name"] == "SIGKILL",
                  "worker killed by SIGKILL")
            check(e["oom_killed"] and e["oom_evidence"] == ["cgroup", "kernel-log"], "worker OOM")
            check(worker["argv"] == ["/bin/worker", "--big"] and worker["execs"] == 1, "worker exec")
            check(worker["peak"]["rss"]["bytes"] == 209 * MIB, "worker peak %s" % worker["peak"]["rss"])
            check(root["rates"]["rss"] == 100.0 and root["rates"]["pss"] == 2.0, "rates %s" % root["rates"])
            check(len(root["samples"]) == 1001, "root samples: %d" % len(root["samples"]))
            s = root["samples"][300]
            # the status figures are those of 2.9 s: the one of 3 s came 5 us after
            check(s["t"] == 3.0 and s["rss"] == 120 * MIB and s["anon"] == 107 * MIB and s["cpu"] == 1.087
                  and s["pss"] == 114 * MIB and s["uss"] == 112 * MIB, "root sample at 3 s: %s" % s)
            check(root["python_heap"] and len(root["python_heap"]["types"]) == 11, "root types")
            check(root["python_heap"]["types"][3]["top"][2] == {"name": "app.models.User", "count": 300, "bytes": 16800},
                  "types row %s" % root["python_heap"]["types"][3]["top"][2])
        tot = doc["total"]
        check(tot["metric"] == "pss", "total metric")
        pk = tot["peak"]["pss"]
        check(pk["bytes"] == 362 * MIB and pk["t"] == 3.99, "tree PSS peak %s" % pk)
        check(sorted((x["pid"], x["bytes"]) for x in pk["by_process"]) ==
              [(100, 114 * MIB), (101, 40 * MIB), (102, 208 * MIB)], "peak breakdown %s" % pk["by_process"])
        check(tot["peak"]["rss"]["bytes"] == 389 * MIB, "tree RSS peak")
        kinds = [p["kind"] for p in doc["phases"]]
        check(kinds == ["plateau", "growth", "plateau", "growth", "decline", "plateau", "decline",
                        "plateau", "decline", "plateau"], "phases %s" % kinds)
        g = doc["phases"][3]
        check(abs(g["start"] - 1.0) < 0.05 and abs(g["end"] - 4.0) < 0.05, "growth phase span %s" % g)
        check([m["label"] for m in doc["markers"]] == ["load", "join", "write"], "markers")
        check(doc["markers"][1]["t"] == 3.000001 and doc["markers"][1]["pid"] == 100, "marker time")
        sn = doc["snapshots"]
        check(len(sn) == 1 and sn[0]["file"] == "app.100.1.hsnap" and sn[0]["trigger"] == "growth"
              and sn[0]["path"] == os.path.join(d, "app.100.1.hsnap"), "snapshots %s" % sn)
        check(doc["notes"] == [{"t": 10.0, "pid": None, "level": "info", "text": "fixture recording"}],
              "notes %s" % doc["notes"])
    r = run(["info", local, "--json"])
    if check(r.returncode == 0, "info --json"):
        info = json.loads(r.stdout)
        validate(info, "info-recording")
        check(info["kind"] == "recording" and len(info["processes"]) == 3, "info counts")
        check(info["meta"]["command"] == ["python3", "app.py"] and info["meta_end"]["stop"] == "exited",
              "info meta")
    r = run(["timeline", local, "--json", "--max-samples", "10"])
    doc = json.loads(r.stdout)
    check(all(len(p["samples"]) <= 10 for p in doc["processes"]) and len(doc["total"]["samples"]) == 10,
          "--max-samples 10")
    check(max(s["rss"] for s in doc["processes"][0]["samples"]) == 120 * MIB, "thinning keeps the peak")

    # the recorder killed: ends at a chunk boundary
    doc, r = timeline(abrupt)
    if doc:
        validate(doc, "timeline")
        check(doc["recording"]["complete"] is False and doc["recording"]["stop"] == "unknown", "abrupt: incomplete")
        check(doc["recording"]["duration"] == 6.0, "abrupt: duration %s" % doc["recording"]["duration"])
        check(r.stderr.strip() == "heapsnap: warning: '%s': recording ended abruptly at 6.0 s" % abrupt,
              "abrupt: warning %r" % r.stderr)
        ps = {p["pid"]: p for p in doc["processes"]}
        check(ps[100]["exit"]["status"] == "running" and ps[101]["exit"]["code"] == 3, "abrupt: exits")
    r = run(["info", abrupt, "--json"])
    check(r.returncode == 0 and json.loads(r.stdout)["meta_end"] is None, "abrupt: info")

    data = open(tree, "rb").read()
    secs = sections(data)
    chunks = [s for s in secs if s[1] == 16]
    # cut inside the 6th chunk: the partial chunk is dropped with a warning
    off, kind, stored = chunks[5]
    cut = os.path.join(d, "cut.hsrec")
    open(cut, "wb").write(data[:off + 24 + stored // 2])
    doc, r = timeline(cut)
    if doc:
        check(doc["recording"]["duration"] == 5.0 and not doc["recording"]["complete"], "cut: up to chunk 5")
        check(re.search(r"recording ended abruptly at 5\.0 s \(an incomplete chunk at offset %d was dropped\)" % off,
                        r.stderr) is not None, "cut: warning %r" % r.stderr)
    # cut inside a chunk's header
    open(cut, "wb").write(data[:off + 10])
    doc, r = timeline(cut)
    check(doc is not None and doc["recording"]["duration"] == 5.0, "cut in a header")
    # a power cut: zeros where the last chunk should be
    open(cut, "wb").write(data[:off] + b"\0" * 3000)
    doc, r = timeline(cut)
    check(doc is not None and doc["recording"]["duration"] == 5.0, "zero-filled tail")
    # cut inside META: nothing to read
    open(cut, "wb").write(data[:40])
    one_line_error(run(["timeline", cut]), r"^heapsnap: cannot read '.*cut\.hsrec': truncated \(metadata "
                   r"incomplete\); the recorder stopped before writing anything$", "cut in META")
    # damage in the middle: an error, not a warning
    off, kind, stored = chunks[3]
    bad = bytearray(data)
    bad[off + 24 + stored // 2] ^= 0x40
    dam = os.path.join(d, "damaged.hsrec")
    open(dam, "wb").write(bytes(bad))
    one_line_error(run(["timeline", dam]), r"^heapsnap: cannot read '.*damaged\.hsrec': damaged section at "
                   r"offset %d \(checksum mismatch\); the recording is damaged before its end$" % off,
                   "damaged middle chunk")
    one_line_error(run(["info", dam]), r"damaged section at offset %d" % off, "info on a damaged recording")
    # garbage, empty, wrong version, a snapshot, a directory, a missing file
    g = os.path.join(d, "garbage.hsrec")
    open(g, "wb").write(os.urandom(4096))
    one_line_error(run(["timeline", g]), r"not a heapsnap recording \(bad magic\)$", "garbage")
    open(g, "wb").write(b"")
    one_line_error(run(["timeline", g]), r"empty file, not a heapsnap recording$", "empty")
    v2 = bytearray(data)
    v2[8:10] = struct.pack("<H", 2)
    open(g, "wb").write(header_crc_fix(bytes(v2)))
    one_line_error(run(["timeline", g]), r"recording format version 2\.0 is not supported", "version 2")
    one_line_error(run(["timeline", os.path.join(ROOT, "fixtures", "snapshots", "synthetic-small.hsnap")]),
                   r"this is a heapsnap snapshot, not a recording$", "a snapshot given to timeline")
    one_line_error(run(["timeline", d]), r"it is a directory, not a recording$", "a directory")
    one_line_error(run(["timeline", os.path.join(d, "nope.hsrec")]), r"no such file$", "missing file")
    # usage
    r = run(["timeline"])
    check(r.returncode == 129, "timeline without a file: %d" % r.returncode)
    r = run(["record"])
    check(r.returncode == 129 and "expected a command" in r.stderr, "record without a command")
    r = run(["record", "--interval", "fast", "--", "true"])
    check(r.returncode == 129 and "--interval expects" in r.stderr, "record --interval fast")
    r = run(["record", "--pid", "1", "--", "true"])
    check(r.returncode == 129, "record --pid and a command")
    r = run(["record", "-o", os.path.join(d, "x.hsrec"), "--", os.path.join(d, "no-such-program")])
    check(r.returncode == 127 and "cannot run" in r.stderr and not os.path.exists(os.path.join(d, "x.hsrec")),
          "record of a missing program: %d %r" % (r.returncode, r.stderr))


# ---------------------------------------------------------------------------
# python: real recordings

def record(args, py_args, out, timeout=60, **kw):
    return run(["record", "-o", out] + args + ["--"] + py_args, timeout=timeout, **kw)


def by_pid(doc):
    return {p["pid"]: p for p in doc["processes"]}


def test_python(py):
    d = fresh_work("python-%s" % os.path.basename(py))
    ver = subprocess.check_output([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  universal_newlines=True).strip()
    phases = os.path.join(PROGRAMS, "record_phases.py")

    # 1. known phases, markers from heapsnap.mark, Python figures
    out = os.path.join(d, "phases.hsrec")
    r = record([], [py, phases, "--step-mib", "10", "--steps", "8", "--step-seconds", "0.15",
                    "--hold", "1.5", "--after", "0.8"], out)
    check(r.returncode == 0, "phases: exit %d: %s" % (r.returncode, r.stderr))
    doc, _ = timeline(out)
    if doc:
        validate(doc, "timeline")
        root = doc["processes"][0]
        check(root["root"] and root["exit"]["code"] == 0 and root["python"], "phases: root")
        # the RSS when the program starts to allocate (its "grow" marker;
        # the interpreter's own start-up comes before it)
        tg = [m["t"] for m in doc["markers"] if m["label"] == "grow"]
        before = [s["rss"] for s in root["samples"] if tg and s["t"] <= tg[0]]
        base = before[-1] if before else min(s["rss"] for s in root["samples"][:5])
        grew = root["peak"]["rss"]["bytes"] - base
        check(75 * MIB <= grew <= 95 * MIB, "phases: grew %.1f MiB, expected about 80" % (grew / MIB))
        kinds = [p["kind"] for p in doc["phases"]]
        check("growth" in kinds and "decline" in kinds and kinds.index("growth") < kinds.index("decline"),
              "phases: %s" % kinds)
        # phases are placed by the program's markers (grow, hold, free), an
        # order of events: a loaded machine stretches them, never reorders
        mt = {m["label"]: m["t"] for m in doc["markers"]}
        big = [p for p in doc["phases"] if p["kind"] == "growth" and p["to"] - p["from"] > 60 * MIB]
        check(len(big) == 1 and (not mt.get("free") or big[0]["end"] <= mt["free"]),
              "phases: one growth of ~80 MiB, before 'free': %s" % doc["phases"])
        dec = [p for p in doc["phases"] if p["kind"] == "decline"]
        check(len(dec) == 1 and dec[0]["from"] - dec[0]["to"] > 70 * MIB, "phases: the free: %s" % dec)
        plat = [p for p in doc["phases"] if p["kind"] == "plateau" and
                (not mt.get("hold") or p["end"] > mt["hold"]) and (not mt.get("free") or p["start"] < mt["free"])]
        check(len(plat) >= 1, "phases: the hold is a plateau")
        labels = [m["label"] for m in doc["markers"]]
        check(labels == ["grow", "hold", "free"], "phases: markers %s" % labels)
        if len(labels) == 3:
            m = doc["markers"]
            # the program sleeps between its markers: at least that far apart
            # (no upper bound: a loaded machine only adds time)
            check(1.0 <= m[1]["t"] - m[0]["t"] and 1.3 <= m[2]["t"] - m[1]["t"],
                  "phases: marker spacing %s" % m)
            if dec:
                check(dec[0]["start"] >= m[1]["t"], "phases: the decline comes after 'hold' (%s)" % dec[0])
        check(root["agent"] and root["python_heap"] and len(root["python_heap"]["samples"]) >= 3,
              "phases: Python figures")
        if root["python_heap"] and root["python_heap"]["types"]:
            names = [t["name"] for t in root["python_heap"]["types"][1]["top"]]
            check("bytes" in names, "phases: bytes among the top types %s" % names)
        # RSS every 10 ms: never more than 100 a second; how many fewer a
        # loaded machine gets is a benchmark figure (tests/bench/bench_record.py)
        check(0 < root["rates"]["rss"] <= 101, "phases: RSS samples/s %.1f" % root["rates"]["rss"])

    # 2. children by fork, spawn, exec, and one killed
    out = os.path.join(d, "children.hsrec")
    r = record([], [py, os.path.join(PROGRAMS, "record_children.py")], out)
    check(r.returncode == 0, "children: exit %d: %s" % (r.returncode, r.stderr))
    doc, _ = timeline(out)
    if doc:
        root = doc["processes"][0]
        # each child by what the recording says of it: exit statuses and argv
        found = {}
        for p in doc["processes"][1:]:
            e = p["exit"]
            if e["status"] == "exited" and e["code"] == 3:
                found["fork"] = p
            elif e["status"] == "signaled" and e["signal"] == 9:
                found["kill"] = p
            elif e["status"] == "exited" and e["code"] == 7:
                found["exec"] = p
            elif "multiprocessing" in p["command"] and p["peak"]["rss"] and \
                    p["peak"]["rss"]["bytes"] > 40 * MIB:
                found["spawn"] = p
        check(set(found) == {"fork", "kill", "exec", "spawn"},
              "children: found %s among %s" % (sorted(found), [(p["pid"], p["command"][:60], p["exit"])
                                                 for p in doc["processes"]]))
        for kind, mib in (("fork", 30), ("spawn", 40), ("exec", 50), ("kill", 20)):
            p = found.get(kind)
            if not p:
                continue
            peak = p["peak"]["rss"]["bytes"] if p["peak"]["rss"] else 0
            check(mib * MIB <= peak <= (mib + 40) * MIB,
                  "children: %s peak %.1f MiB, expected %d + interpreter" % (kind, peak / MIB, mib))
            if kind != "spawn":
                check(p["ppid"] == root["pid"] and p["parent"] == 0, "children: %s ppid" % kind)
            check(p["from_birth"], "children: %s seen from its first tick" % kind)
        if "exec" in found:
            check(found["exec"]["argv"][1] == "-c", "children: exec argv %s" % found["exec"]["argv"])
        printed = dict((w[0], int(w[1])) for w in (l.split() for l in r.stdout.splitlines())
                       if len(w) == 2 and w[1].isdigit())
        for kind, pid in printed.items():
            check(kind not in found or found[kind]["pid"] == pid, "children: %s is pid %d" % (kind, pid))
        check(len(set(p["pid"] for p in doc["processes"])) == len(doc["processes"]),
              "children: a process recorded twice")
        tot = doc["total"]["peak"]
        check(tot["pss"]["bytes"] <= doc["total"]["sum_of_process_peaks_rss"],
              "children: the combined PSS peak is below the sum of RSS peaks")

    # 3. a non-zero exit is passed through and recorded
    out = os.path.join(d, "exit.hsrec")
    r = record([], [py, phases, "--steps", "1", "--hold", "0.1", "--after", "0.1", "--exit", "4"], out)
    check(r.returncode == 4, "exit 4 passed through: %d" % r.returncode)
    doc, _ = timeline(out)
    if doc:
        check(doc["processes"][0]["exit"]["code"] == 4, "exit 4 recorded")

    # 4. a target killed by a signal: recorded, and heapsnap dies the same way
    out = os.path.join(d, "killed.hsrec")
    r = record([], [py, "-c", "import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), signal.SIGTERM)"], out)
    check(r.returncode == -signal.SIGTERM, "killed target: heapsnap exit %d" % r.returncode)
    doc, _ = timeline(out)
    if doc:
        e = doc["processes"][0]["exit"]
        check(e["status"] == "signaled" and e["signal_name"] == "SIGTERM" and not e["oom_killed"],
              "killed target recorded: %s" % e)

    # 5. --pid of a running server: no agent there, /proc figures only
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    server = subprocess.Popen([py, "-c", "import time\nd = []\nwhile True:\n    d.append(b'x' * (1 << 20))\n"
                               "    time.sleep(0.05)\n"], env=env)
    try:
        time.sleep(0.5)
        out = os.path.join(d, "pid.hsrec")
        r = run(["record", "--pid", str(server.pid), "--duration", "1.5", "-o", out], timeout=30)
        check(r.returncode == 0, "--pid: exit %d %s" % (r.returncode, r.stderr))
        doc, _ = timeline(out)
        if doc:
            validate(doc, "timeline")
            p = doc["processes"][0]
            check(p["pid"] == server.pid and p["exit"]["status"] == "running" and p["start"] < 0,
                  "--pid: the server, running, started before")
            check(doc["recording"]["mode"] == "pid" and doc["recording"]["stop"] == "duration",
                  "--pid: mode and stop")
            # at most 150 at 10 ms (late ticks are skipped, not bunched); how
            # many fewer a loaded machine gets is a benchmark figure, not a test
            check(2 <= len(p["samples"]) <= 152, "--pid: %d samples in 1.5 s" % len(p["samples"]))
            g = p["peak"]["rss"]["bytes"] - p["samples"][0]["rss"]
            # the server adds 1 MiB a round and sleeps 50 ms: growth seen, and no
            # more than its sleeps allow (a loaded machine makes fewer rounds)
            check(1 * MIB <= g <= 40 * MIB, "--pid: grew %.1f MiB in 1.5 s (at most 20 MiB/s)" % (g / MIB))
            check(not p["agent"] and any("no heapsnap agent" in n["text"] for n in doc["notes"]),
                  "--pid: says /proc figures only: %s" % doc["notes"])
            ph = doc["phases"]
            grow = sum(x["end"] - x["start"] for x in ph if x["kind"] == "growth")
            span = ph[-1]["end"] - ph[0]["start"] if ph else 0
            check(ph and grow > 0 and not any(x["kind"] == "decline" for x in ph),
                  "--pid: growth, never a decline: %s (growth %.2f of %.2f s)" % (ph, grow, span))
    finally:
        server.kill()
        server.wait()

    # 6. the recorder SIGKILLed mid-run: the file reads back up to there
    out = os.path.join(d, "killed-recorder.hsrec")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    rec = subprocess.Popen([HEAPSNAP, "record", "--no-agent", "-o", out, "--", py, "-c",
                            "import time; d = b'x' * (30 << 20); time.sleep(3600)"], env=env,
                           stderr=subprocess.PIPE, universal_newlines=True)

    # killed once the file holds the target's 30 MiB (read back as it grows:
    # work done, not a time; 600 s is a hang detector)
    def holds_30():
        if not os.path.exists(out):
            return False
        q = run(["timeline", out, "--json"])
        try:
            return q.returncode == 0 and json.loads(q.stdout)["processes"][0]["peak"]["rss"]["bytes"] >= 30 * MIB
        except (ValueError, KeyError, IndexError, TypeError):
            return False
    end = time.monotonic() + 600
    while not holds_30() and time.monotonic() < end and rec.poll() is None:
        time.sleep(0.2)
    target = None
    try:
        for line in open("/proc/%d/task/%d/children" % (rec.pid, rec.pid)).read().split():
            target = int(line)
    except OSError:
        pass
    rec.send_signal(signal.SIGKILL)
    rec.wait()
    if target:
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    doc, r = timeline(out)
    if doc:
        rd = doc["recording"]
        check(not rd["complete"] and rd["duration"] > 0, "killed recorder: duration %s" % rd["duration"])
        check("recording ended abruptly at" in r.stderr, "killed recorder: warning %r" % r.stderr)
        p = doc["processes"][0]
        check(p["exit"]["status"] == "running" and p["peak"]["rss"]["bytes"] >= 30 * MIB,
              "killed recorder: the target's figures up to the kill")

    # 7. snapshots on a schedule: files beside the recording that heapsnap reads
    out = os.path.join(d, "snaps.hsrec")
    r = record(["--snapshot-every", "0.5s", "--heap-every", "0.5s"],
               [py, phases, "--steps", "3", "--step-seconds", "0.1", "--hold", "0.8", "--after", "0.3",
                "--hold-files", os.path.join(d, "snaps.*.hsnap"), "2"], out)
    check(r.returncode == 0, "snapshots: exit %d %s" % (r.returncode, r.stderr))
    doc, _ = timeline(out)
    if doc:
        sn = [s for s in doc["snapshots"] if s["error"] is None]
        check(len(sn) >= 2, "snapshots: %s" % doc["snapshots"])
        for s in sn:
            check(os.path.exists(s["path"]) and s["file"].startswith("snaps.") and s["file"].endswith(".hsnap"),
                  "snapshot file %s" % s)
        if sn:
            ri = run(["info", sn[0]["path"], "--json"])
            check(ri.returncode == 0 and json.loads(ri.stdout)["counts"]["objects"] > 1000,
                  "snapshot readable: %s" % ri.stderr)

    # 8. an OOM kill (a memory cgroup with a 100 MiB limit, where allowed)
    test_oom(py, d)

    # 9. no children followed with --no-children
    out = os.path.join(d, "nochildren.hsrec")
    r = record(["--no-children", "--no-agent"], [py, "-c", "import subprocess, sys; "
               "subprocess.call([sys.executable, '-c', 'pass'])"], out)
    doc, _ = timeline(out)
    check(doc is not None and len(doc["processes"]) == 1, "--no-children: one process")


def memory_cgroup_with_limit(limit):
    """A new memory cgroup below ours, limited to `limit` bytes: (its
    cgroup.procs path, its directory), or None where that is not allowed."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        num, ctrl, path = line.split(":", 2)
        if "memory" in ctrl.split(","):
            base, limit_file = "/sys/fs/cgroup/memory" + path, "memory.limit_in_bytes"
        elif num == "0" and ctrl == "":
            base, limit_file = "/sys/fs/cgroup" + path, "memory.max"
        else:
            continue
        d = os.path.join(base.rstrip("/"), "heapsnap-record-oom-%d" % os.getpid())
        try:
            os.mkdir(d)
            with open(os.path.join(d, limit_file), "w") as f:
                f.write(str(limit))
            open(os.path.join(d, "memory.swappiness"), "w").write("0") if limit_file.endswith("bytes") else None
            return os.path.join(d, "cgroup.procs"), d
        except OSError:
            try:
                os.rmdir(d)
            except OSError:
                pass
    return None


def test_oom(py, d):
    cg = memory_cgroup_with_limit(100 << 20)
    if not cg:
        print("skip: cannot make a memory cgroup with a limit here (OOM kill test)")
        return
    procs, cgdir = cg
    out = os.path.join(d, "oom.hsrec")
    try:
        r = record(["--no-agent"], ["/bin/sh", "-c", "echo $$ > %s; exec %s -c 'import time\nd = []\n"
                   "while True:\n    d.append(b\"x\" * (5 << 20)); time.sleep(0.01)\n'" % (procs, py)],
                   out, timeout=60)
        check(r.returncode == -signal.SIGKILL, "oom: heapsnap passes SIGKILL through: %d" % r.returncode)
        doc, _ = timeline(out)
        if doc:
            e = doc["processes"][0]["exit"]
            check(e["status"] == "signaled" and e["signal"] == 9 and e["oom_killed"],
                  "oom: the OOM kill is recorded: %s" % e)
            trl = run(["timeline", out])
            check("was killed by the OOM killer" in trl.stdout, "oom: the timeline says so")
    finally:
        for _ in range(50):
            try:
                os.rmdir(cgdir)
                break
            except OSError:
                time.sleep(0.1)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 129
    os.makedirs(WORK, exist_ok=True)
    what = sys.argv[1]
    if what == "fixtures":
        test_fixtures()
    elif what == "cli":
        test_cli()
    elif what == "python":
        test_python(sys.argv[sys.argv.index("--python") + 1])
    elif what == "update":
        os.makedirs(SHIPPED, exist_ok=True)
        for kind in ("tree", "abrupt"):
            make(kind, os.path.join(SHIPPED, kind + ".hsrec"))
        os.environ["UPDATE_GOLDEN"] = "1"
        test_cli()
    else:
        print(__doc__)
        return 129
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
