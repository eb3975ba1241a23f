#!/usr/bin/env python3
"""Tests of `heapsnap record --lines`, `heapsnap lines` and `heapsnap flamegraph`
(issue 8 phase 2): fixture programs with known answers under a real recorder.

    run_lines.py cli                      bad inputs (any build)
    run_lines.py python --python PY       recordings on interpreter PY

Bounds (each stated where checked):
  exact mode: the bytes requested on a known line, plus CPython's per-object
  headers (bytearray: 57 bytes + its buffer of n + 1), within 2%;
  sampled mode (fixed seed): an estimate of B bytes sampled with mean S has a
  standard deviation of about sqrt(S * B); checked within 4 of them; blocks
  of at least S are always taken, so the 64 MiB temporary is within 1%.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = os.path.join(HERE, "programs")
HEAPSNAP = os.environ.get("HEAPSNAP", "heapsnap")
PYDIR = os.environ.get("HS_PYTHON_DIR", "")
WORK = os.environ.get("WORK", os.path.join(os.getcwd(), "lines-work"))
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
    env.update(kw.pop("env", {}))
    return subprocess.run([HEAPSNAP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, **kw)


def is_heapsnap_file(path):
    """A file of the heapsnap package the recorded program ran with (the
    build's python/heapsnap), by its real location: a checkout or a user's
    directory that happens to be called heapsnap is not heapsnap's code."""
    if not PYDIR:
        return False
    pkg = os.path.realpath(os.path.join(PYDIR, "heapsnap")) + os.sep
    return os.path.realpath(path).startswith(pkg)


def validate(doc):
    try:
        import jsonschema
    except ImportError:
        print("note: jsonschema missing; schema not checked")
        return
    schema = json.load(open(os.path.join(ROOT, "formats", "lines.schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        check(False, "schema lines: %s" % str(e).splitlines()[0])


def fresh(sub):
    d = os.path.join(WORK, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def line_of(program, marker):
    for i, text in enumerate(open(os.path.join(PROGRAMS, program)), 1):
        if marker in text:
            return i
    raise AssertionError("no %s in %s" % (marker, program))


def lines_json(rec, *extra):
    r = run(["lines", rec, "--json", "--top", "0"] + list(extra))
    if not check(r.returncode == 0, "lines %s: exit %d: %s" % (rec, r.returncode, r.stderr)):
        return None
    doc = json.loads(r.stdout)
    validate(doc)
    return doc


def row(doc, program, line):
    for x in doc["lines"] if doc else ():
        if x["file"].endswith("/" + program) and x["line"] == line:
            return x
    return None


def record(d, name, py, program, *opts, **kw):
    out = os.path.join(d, name + ".hsrec")
    r = run(["record", "-q", "-o", out, "--lines"] + list(opts) + ["--", py,
            os.path.join(PROGRAMS, program)], timeout=kw.pop("timeout", 120), **kw)
    check(r.returncode == 0, "record %s: exit %d: %s" % (name, r.returncode, r.stderr))
    return out, r


def near(v, want, rel):
    return v is not None and abs(v - want) <= rel * want


# ------------------------------------------------------------------ cli

def test_cli():
    d = fresh("cli")
    # not a recording at all
    junk = os.path.join(d, "junk.hsrec")
    open(junk, "wb").write(b"not a recording, just bytes\n" * 10)
    r = run(["lines", junk])
    check(r.returncode == 2 and r.stderr.startswith("heapsnap: ") and "\n" == r.stderr[-1]
          and r.stderr.count("\n") == 1, "lines on garbage: exit 2, one line: %d %r"
          % (r.returncode, r.stderr))
    r = run(["flamegraph", junk, "-o", os.path.join(d, "x.svg")])
    check(r.returncode == 2 and not os.path.exists(os.path.join(d, "x.svg")),
          "flamegraph on garbage: exit 2, no file: %d %r" % (r.returncode, r.stderr))
    # usage errors
    for args in (["lines"], ["lines", junk, "--by", "sideways"], ["flamegraph", junk],
                 ["flamegraph", junk, "--live", "--peak", "-o", "x.svg"],
                 ["record", "--exact", "--", "true"], ["record", "--lines", "--exact",
                                                       "--sample-bytes", "10", "--", "true"],
                 ["record", "--lines", "--sample-bytes", "zero", "--", "true"]):
        r = run(args)
        check(r.returncode == 129, "usage %s: exit %d %r" % (args, r.returncode, r.stderr))


# ------------------------------------------------------------------ python

def test_exact(d, py):
    rec, _ = record(d, "exact", py, "basic.py", "--exact")
    doc = lines_json(rec)
    if not doc:
        return
    check(doc["sampling"]["exact"] and not doc["sampling"]["estimates"], "exact: sampling says so")
    lt, lp, lc = (line_of("basic.py", m) for m in ("LINE_TABLE", "LINE_PEAK", "LINE_CHURN"))
    t, p, c = row(doc, "basic.py", lt), row(doc, "basic.py", lp), row(doc, "basic.py", lc)
    # table: 10000 bytearrays of 1000: 10000 * (57 + 1001) = 10.58 MB, plus the list
    want = 10000 * (57 + 1001)
    check(t and near(t["live_bytes"], want, 0.02) and near(t["peak_bytes"], want, 0.02),
          "exact: retained table live/peak %s (want %d within 2%%)" % (t, want))
    check(t and t["allocations"] >= 20000, "exact: table allocations %s" % (t and t["allocations"]))
    # the temporary: 64 MiB + 58, live 0 at the end, held at the peak
    want = 64 * MIB + 57 + 1
    check(p and p["live_bytes"] == 0 and near(p["peak_bytes"], want, 0.001)
          and near(p["allocated_bytes"], want, 0.001), "exact: the peak's temporary %s" % p)
    check(doc["totals"]["peak_total_bytes"] >= 64 * MIB + 10 * MIB,
          "exact: peak total %d" % doc["totals"]["peak_total_bytes"])
    # churn: 4000 * (57 + 10001) allocated, nothing kept, not at the peak
    want = 4000 * (57 + 10001)
    check(c and c["live_bytes"] == 0 and c["peak_bytes"] == 0 and near(c["allocated_bytes"], want, 0.02)
          and c["allocations"] == 8000, "exact: churn %s (want %d allocated, 8000 allocations)"
          % (c, want))
    # inclusive: the module line calling build() holds the table
    call = row(doc, "basic.py", line_of("basic.py", "keep = build()"))
    check(call and call["live_bytes"] == 0 and call["total_live_bytes"] >= t["live_bytes"],
          "exact: inclusive figure of the call line %s" % call)
    check(t and "bytearray(1000)" in t["source"], "exact: source text %r" % (t and t["source"]))
    # the agent's own work is not the program's
    own = [x["file"] for x in doc["lines"] if is_heapsnap_file(x["file"])]
    check(not own, "exact: no heapsnap frames: %s" % own)
    # ordering and filters
    r = run(["lines", rec, "--by", "peak", "--top", "1", "--json"])
    one = json.loads(r.stdout) if r.returncode == 0 else None
    check(one and len(one["lines"]) == 1 and one["lines"][0]["line"] == lp, "--by peak --top 1: %s"
          % (one and one["lines"]))
    r = run(["lines", rec, "--function", "churn", "--json", "--top", "0"])
    f = json.loads(r.stdout) if r.returncode == 0 else None
    check(f and f["lines"] and all("churn" in x["function"] for x in f["lines"]), "--function churn")
    r = run(["lines", rec, "--by", "allocated"])
    check(r.returncode == 0 and "basic.py:%d" % lp in r.stdout and "exact" in r.stdout,
          "lines table: %s" % r.stderr)
    # flame graph
    for what in ("--live", "--peak", "--allocated"):
        svg = os.path.join(d, "exact%s.svg" % what)
        r = run(["flamegraph", rec, what, "-o", svg])
        if not check(r.returncode == 0, "flamegraph %s: %s" % (what, r.stderr)):
            continue
        root = ET.parse(svg).getroot()
        titles = [e.text for e in root.iter("{http://www.w3.org/2000/svg}title")]
        names = {"--live": "build", "--peak": "peak", "--allocated": "churn"}
        check(any(t.startswith(names[what] + " (") and "basic.py" in t for t in titles),
              "flamegraph %s names %s: %s" % (what, names[what], titles[:6]))
        again = svg + ".2"
        run(["flamegraph", rec, what, "-o", again])
        check(open(svg, "rb").read() == open(again, "rb").read(), "flamegraph %s deterministic" % what)
    return rec


def test_sampled(d, py):
    S = 65536
    rec, _ = record(d, "sampled", py, "basic.py", "--sample-bytes", str(S), "--seed", "7")
    doc = lines_json(rec)
    if not doc:
        return
    sm = doc["sampling"]
    check(not sm["exact"] and sm["estimates"] and sm["sample_bytes"] == S and sm["seed"] == 7,
          "sampled: settings %s" % sm)
    lt, lp, lc = (line_of("basic.py", m) for m in ("LINE_TABLE", "LINE_PEAK", "LINE_CHURN"))
    t, p, c = row(doc, "basic.py", lt), row(doc, "basic.py", lp), row(doc, "basic.py", lc)
    want = 10000 * (57 + 1001)
    sd = (S * want) ** 0.5
    check(t and abs(t["live_bytes"] - want) <= 4 * sd, "sampled: table live %s, want %d +- %d"
          % (t and t["live_bytes"], want, 4 * sd))
    want = 64 * MIB + 58
    check(p and near(p["peak_bytes"], want, 0.01) and p["live_bytes"] == 0,
          "sampled: the temporary (always taken) %s" % p)
    want = 4000 * (57 + 10001)
    sd = (S * want) ** 0.5
    check(c and abs(c["allocated_bytes"] - want) <= 4 * sd and c["live_bytes"] == 0,
          "sampled: churn allocated %s, want %d +- %d" % (c and c["allocated_bytes"], want, 4 * sd))
    r = run(["lines", rec])
    check(r.returncode == 0 and "~" in r.stdout and "estimates" in r.stdout,
          "sampled: the table marks estimates")
    size = os.path.getsize(rec)
    print("sampled recording of basic.py: %d bytes" % size)
    check(size < 200000, "sampled recording size %d" % size)


def test_threads(d, py):
    rec, _ = record(d, "threads", py, "threads.py", "--exact")
    doc = lines_json(rec)
    a = row(doc, "threads.py", line_of("threads.py", "LINE_A"))
    b = row(doc, "threads.py", line_of("threads.py", "LINE_B"))
    check(a and near(a["live_bytes"], 3000 * (57 + 2001), 0.02), "threads: alpha's line %s" % a)
    check(b and near(b["live_bytes"], 3000 * (57 + 3001), 0.02), "threads: beta's line %s" % b)


def test_fork(d, py):
    rec, r = record(d, "fork", py, "forking.py", "--exact")
    child = int(r.stdout.split()[0]) if r.stdout.split() else 0
    doc = lines_json(rec, "--pid", str(child)) if child else None
    c = row(doc, "forking.py", line_of("forking.py", "LINE_CHILD"))
    check(c and near(c["live_bytes"], 2000 * (57 + 4001), 0.02),
          "fork: the child's own tracking %s" % c)
    check(doc and not row(doc, "forking.py", line_of("forking.py", "LINE_PARENT")),
          "fork: the child does not repeat the parent's figures")
    top = lines_json(rec)
    p = row(top, "forking.py", line_of("forking.py", "LINE_PARENT"))
    check(p and near(p["live_bytes"], 5000 * (57 + 1001), 0.02), "fork: parent's line %s" % p)


def test_pid(d, py):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(PYDIR, "heapsnap", "_bootstrap") + ":" + PYDIR
    env["HEAPSNAP_AGENT"] = "1"
    env["HEAPSNAP_AGENT_DIR"] = os.path.join(d, "agents")
    status = os.path.join(d, "server.status")
    server = subprocess.Popen([py, os.path.join(PROGRAMS, "server.py"), status], env=env)
    try:
        # waits are hang detectors (600 s); the checks count the server's
        # rounds, never its rate (a loaded machine runs fewer of them)
        def status_now():
            try:
                return json.load(open(status))
            except (OSError, ValueError):
                return None
        deadline = time.monotonic() + 600
        while status_now() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        n0 = (status_now() or {}).get("items", 0)
        rec = os.path.join(d, "pid.hsrec")
        r = run(["record", "-q", "--pid", str(server.pid), "--duration", "2.5", "--lines", "--exact",
                 "-o", rec], timeout=600)
        check(r.returncode == 0, "--pid --lines: exit %d %s" % (r.returncode, r.stderr))
        n1 = (status_now() or {}).get("items", 0)
        # the server writes its status each round: tracking shows stopped soon
        deadline = time.monotonic() + 600
        while (status_now() or {}).get("active", True) and time.monotonic() < deadline:
            time.sleep(0.05)
        st = status_now()
        check(st and not st["active"], "--pid --lines: tracking stopped at the end: %s" % st)
        check(server.poll() is None, "--pid --lines: the server runs on")
        doc = lines_json(rec)
        g = row(doc, "server.py", line_of("server.py", "LINE_GROW"))
        # the rounds made while tracked, 100057 bytes each (+1 for the
        # header's rounding): at least one, at most those between the
        # status read before the recording and the one after it (+1)
        check(g and 100057 <= g["live_bytes"] <= (n1 - n0 + 1) * 100058,
              "--pid --lines: growth from now on %s (rounds %d -> %d)" % (g, n0, n1))
        check(doc and doc["sampling"]["from_now"], "--pid --lines: from_now")
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=600)
    check(rc == 0, "--pid --lines: the server's memory is intact and it exits 0 (got %s)" % rc)


def test_native(d, py):
    probe = subprocess.run([py, "-c", "import numpy"], stderr=subprocess.PIPE)
    if probe.returncode != 0:
        print("skip: numpy is not importable by %s: --native numpy test not run" % py)
        return
    rec, _ = record(d, "native", py, "numpy_buf.py", "--native", "--exact")
    doc = lines_json(rec)
    n = row(doc, "numpy_buf.py", line_of("numpy_buf.py", "LINE_NUMPY"))
    check(doc and doc["sampling"]["native"], "native: sampling.native")
    check(n and near(n["live_bytes"], 32 * MIB, 0.01), "native: numpy buffer charged to the "
          "user's line %s" % n)


def numpy_python(py):
    """py if it imports numpy, else the pinned venv of tests/track (made once)."""
    if subprocess.run([py, "-c", "import numpy"], stderr=subprocess.PIPE).returncode == 0:
        return py
    if not PYDIR:
        return None
    v = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "track", "track_venv.py"),
                        os.path.dirname(PYDIR), py], stdout=subprocess.PIPE, universal_newlines=True)
    return v.stdout.strip().splitlines()[-1] if v.returncode == 0 else None


def test_native_resident(d, py):
    """`import numpy` under --native: the live bytes charged to the import are
    resident ones (at most the RSS it added, +10%), and the peak of `lines`
    is at most the peak RSS the same recording measured."""
    npy = numpy_python(py)
    if not npy:
        print("skip: no numpy for %s (not installed, no venv): resident test not run" % py)
        return
    out = os.path.join(d, "numpy-import.rss")
    rec, _ = record(d, "numpy-import", npy, "numpy_import.py", "--native", env={"HS_TEST_OUT": out})
    doc = lines_json(rec)
    r0, r1 = (int(x) for x in open(out).read().split())
    n = row(doc, "numpy_import.py", line_of("numpy_import.py", "LINE_IMPORT"))
    check(n and 0 < n["live_bytes"] <= 1.1 * (r1 - r0),
          "native resident: import numpy live %s <= RSS growth %d + 10%%" % (n and n["live_bytes"], r1 - r0))
    tl = run(["timeline", rec, "--json"])
    peak_rss = json.loads(tl.stdout)["total"]["peak"]["rss"]["bytes"] if tl.returncode == 0 else None
    peak = doc["totals"]["peak_total_bytes"] if doc else None
    check(peak_rss and peak is not None and peak <= peak_rss,
          "native resident: lines peak %s <= the recording's peak RSS %s" % (peak, peak_rss))
    txt = run(["lines", rec])
    check("resident pages" in txt.stdout, "native resident: the text says live and peak are resident")


def test_python(py):
    d = fresh("py-%s" % os.path.basename(os.path.dirname(os.path.dirname(py))))
    test_exact(d, py)
    test_sampled(d, py)
    test_threads(d, py)
    test_fork(d, py)
    test_pid(d, py)
    test_native(d, py)
    test_native_resident(d, py)
    # a recording without line data: clear message, exit 2
    out = os.path.join(d, "plain.hsrec")
    r = run(["record", "-q", "--no-agent", "-o", out, "--", py, "-c", "pass"])
    check(r.returncode == 0, "plain record")
    for args in (["lines", out], ["flamegraph", out, "-o", os.path.join(d, "plain.svg")]):
        r = run(args)
        check(r.returncode == 2 and "record --lines" in r.stderr and r.stderr.count("\n") == 1,
              "%s without line data: exit 2 and says why: %d %r" % (args[0], r.returncode, r.stderr))
    check(not os.path.exists(os.path.join(d, "plain.svg")), "no SVG left behind")


def main():
    if sys.argv[1:2] == ["cli"]:
        test_cli()
    elif sys.argv[1:2] == ["python"] and sys.argv[2:3] == ["--python"]:
        test_python(sys.argv[3])
    else:
        sys.exit("usage: run_lines.py cli | python --python PY")
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
