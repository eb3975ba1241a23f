#!/usr/bin/python3
"""Tests of `heapsnap plot` on recordings with known answers
(tests/plot/make_plot_recording.c).

  run_plot.py           run the tests
  run_plot.py update    rewrite the golden structure files (tests/plot/golden/)

The golden files hold the SVG's structure (its series, legend, axis and
marker labels, tooltips), not its pixels or coordinates.

Environment: HEAPSNAP (the CLI), MAKE_PLOT_RECORDING, WORK (scratch
directory), TZ=UTC (the subtitle prints the local start time).
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(HERE, "golden")
HEAPSNAP = os.environ.get("HEAPSNAP", "heapsnap")
MAKE = os.environ.get("MAKE_PLOT_RECORDING", "make_plot_recording")
WORK = os.environ.get("WORK", os.path.join(os.getcwd(), "plot-work"))
SVG = "{http://www.w3.org/2000/svg}"
KIB = 1024
MIB = 1 << 20
ELL = "\u2026"
DOT = "\u00b7"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(args):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["TZ"] = "UTC"
    return subprocess.run([HEAPSNAP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env)


def plot(rec, out, *args, expect=0):
    r = run(["plot", rec, "-o", out] + list(args))
    check(r.returncode == expect, "plot %s -o %s %s: exit %d, expected %d: %s"
          % (os.path.basename(rec), os.path.basename(out), " ".join(args), r.returncode, expect,
             r.stderr.strip()))
    return r


def plot_json(rec, out, *args):
    r = plot(rec, out, "--json", *args)
    if r.returncode != 0:
        return {}
    doc = json.loads(r.stdout)
    validate(doc)
    return doc


def validate(doc):
    import jsonschema
    schema = json.load(open(os.path.join(ROOT, "formats", "plot.schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        check(False, "plot.schema.json: %s" % str(e).splitlines()[0])


def one_line_error(r, code, pattern, what):
    lines = r.stderr.strip().splitlines()
    check(r.returncode == code, "%s: exit %d, expected %d (%s)" % (what, r.returncode, code,
                                                                   r.stderr.strip()))
    if code == 2:
        check(len(lines) == 1, "%s: %d stderr lines, expected one: %r" % (what, len(lines),
                                                                           r.stderr))
    check(bool(lines) and re.search(pattern, lines[0]) is not None,
          "%s: stderr %r does not match %r" % (what, r.stderr.strip(), pattern))


# ---------------------------------------------------------------------------
# PNG: header, IHDR, and the pixels (decoded here: zlib + the five filters)

def png_read(path):
    data = open(path, "rb").read()
    if not check(data[:8] == b"\x89PNG\r\n\x1a\n", "%s: not a PNG signature" % path):
        return None
    pos, chunks = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        check(zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "%s: bad CRC in %r" % (path, kind))
        chunks.append((kind, body))
        pos += 12 + n
    check(chunks[0][0] == b"IHDR", "%s: first chunk %r, not IHDR" % (path, chunks[0][0]))
    check(chunks[-1][0] == b"IEND", "%s: last chunk %r, not IEND" % (path, chunks[-1][0]))
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    check(depth == 8 and ctype in (2, 6) and interlace == 0,
          "%s: depth %d colour type %d interlace %d" % (path, depth, ctype, interlace))
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    counts = {}
    for line in rows:
        for x in range(0, stride, bpp):
            px = line[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    return {"width": w, "height": h, "colours": counts}


def rgb(v):
    return bytes(((v >> 16) & 255, (v >> 8) & 255, v & 255))


# the plot's palette (src/render/plot.c), in band order
BLUE, VERMILLION, GREEN, PURPLE, ORANGE = 0x0072b2, 0xd55e00, 0x009e73, 0xcc79a7, 0xe69f00


# ---------------------------------------------------------------------------
# SVG structure

def svg_tree(path):
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        check(False, "%s does not parse as XML: %s" % (path, e))
        return None


def cls(e):
    return (e.get("class") or "").split()


def tooltip(e):
    t = e.find(SVG + "title")
    return t.text if t is not None else None


def texts(e, klass):
    return [t.text for t in e.iter(SVG + "text") if klass in cls(t)]


def find_id(root, ident):
    for e in root.iter():
        if e.get("id") == ident:
            return e
    return None


def structure(root):
    """The SVG's structure as lines of text: what golden files hold."""
    out = ["svg %sx%s" % (root.get("width"), root.get("height"))]
    out.append("svg title: %s" % root.find(SVG + "title").text)
    for k in ("title", "subtitle", "warning"):
        for t in texts(root, k):
            out.append("%s: %s" % (k, t))
    for panel in root.iter(SVG + "g"):
        if "panel" not in cls(panel):
            continue
        pid = panel.get("id")
        out.append("panel %s" % pid)
        for t in texts(panel, "panel-title"):
            out.append("  panel-title: %s" % t)
        for axis in ("y", "x"):
            g = find_id(panel, "%s-%s" % (pid, axis))
            if g is not None:
                out.append("  %s ticks: %s" % (axis, " | ".join(texts(g, "tick"))))
                for t in texts(g, "axis-title"):
                    out.append("  %s title: %s" % (axis, t))
        series = find_id(panel, "%s-series" % pid)
        for e in series.iter(SVG + "path") if series is not None else []:
            c = cls(e)
            if c and c[0] in ("series", "band", "process-peak", "killed"):
                key = e.get("data-pid") or e.get("data-type") or ""
                out.append("  %s %s: %s" % (" ".join(c), key, tooltip(e)))
        legend = find_id(panel, "%s-legend" % pid)
        for entry in legend.iter(SVG + "g") if legend is not None else []:
            if "legend-entry" not in cls(entry):
                continue
            label = texts(entry, "legend-label")
            value = texts(entry, "legend-value")
            out.append("  legend: %s%s" % (label[0] if label else "",
                                           " = " + value[0] if value else ""))
    for g in root.iter(SVG + "g"):
        if "marker" in cls(g):
            out.append("marker: %s / %s" % (" ".join(texts(g, "marker-label")) or "(no label)",
                                            tooltip(g)))
    for e in root.iter(SVG + "path"):
        if "snapshot" in cls(e):
            out.append("%s: %s" % (" ".join(cls(e)), tooltip(e)))
    for t in texts(root, "peak-label"):
        out.append("peak: %s" % t)
    return out


def golden(name, lines, update):
    path = os.path.join(GOLDEN, name + ".txt")
    text = "\n".join(lines) + "\n"
    if update:
        os.makedirs(GOLDEN, exist_ok=True)
        open(path, "w").write(text)
        return
    if not check(os.path.exists(path), "golden %s missing (run_plot.py update)" % path):
        return
    want = open(path).read()
    if want != text:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            "golden/" + name + ".txt", "now"))
        check(False, "%s: structure differs from golden:\n%s" % (name, diff))


# ---------------------------------------------------------------------------

def test_formats(d, tree, many):
    """PNG, SVG and PDF of one recording: size, parse, content."""
    png = os.path.join(d, "tree.png")
    st = plot_json(tree, png)
    img = png_read(png)
    if img:
        check((img["width"], img["height"]) == (1200, 800),
              "tree.png is %dx%d, expected 1200x800 (with the types panel)"
              % (img["width"], img["height"]))
        # every process's colour is drawn (flat stretches and dots have exact pixels)
        for name, c in (("200", BLUE), ("201", VERMILLION), ("202", GREEN), ("203", PURPLE),
                        ("204 (one sample: a dot)", ORANGE)):
            check(img["colours"].get(rgb(c), 0) >= 8, "tree.png: colour of %s drawn in %d pixels"
                  % (name, img["colours"].get(rgb(c), 0)))
        white = img["colours"].get(b"\xff\xff\xff", 0)
        check(0.5 < white / (1200 * 800) < 0.97, "tree.png: %.0f%% white" %
              (100.0 * white / (1200 * 800)))
    check(st.get("format") == "png" and st.get("bytes") == os.path.getsize(png),
          "tree.png: --json format/bytes %r/%r vs %d" % (st.get("format"), st.get("bytes"),
                                                          os.path.getsize(png)))
    # the default size without the types panel, and an asked size
    png2 = os.path.join(d, "many.png")
    plot(many, png2)
    img = png_read(png2)
    if img:
        check((img["width"], img["height"]) == (1200, 600), "many.png is %dx%d, expected 1200x600"
              % (img["width"], img["height"]))
    png3 = os.path.join(d, "big.png")
    plot(tree, png3, "--width", "1600", "--height", "900", "--stacked")
    img = png_read(png3)
    if img:
        check((img["width"], img["height"]) == (1600, 900), "big.png is %dx%d" %
              (img["width"], img["height"]))
    # PDF
    pdf = os.path.join(d, "tree.pdf")
    st = plot_json(tree, pdf)
    data = open(pdf, "rb").read()
    check(data.startswith(b"%PDF-1."), "tree.pdf: no PDF header")
    check(data.rstrip().endswith(b"%%EOF"), "tree.pdf: no %%EOF trailer")
    check(re.search(rb"/MediaBox \[ ?0 0 1200 800 ?\]", data) is not None,
          "tree.pdf: no 1200x800 MediaBox")
    check(st.get("format") == "pdf", "tree.pdf: --json format %r" % st.get("format"))
    # SVG: parses, same bytes every time
    a, b = os.path.join(d, "a.svg"), os.path.join(d, "b.svg")
    plot(tree, a)
    plot(tree, b)
    check(open(a, "rb").read() == open(b, "rb").read(), "the SVG differs between two runs")
    root = svg_tree(a)
    if root is not None:
        check((root.get("width"), root.get("height")) == ("1200", "800"),
              "a.svg: %s x %s" % (root.get("width"), root.get("height")))


def test_svg_content(d, tree):
    svg = os.path.join(d, "tree.svg")
    st = plot_json(tree, svg)
    root = svg_tree(svg)
    if root is None:
        return
    legend = texts(find_id(root, "memory-legend"), "legend-label")
    # (start, end): a long command is cut in the middle of the legend, never its pid
    want = [
        ("python3 " + ELL + "/run_nightly_job.py --d", ELL + " [200]"),
        ("python3 " + ELL + "/run_nightly_job.p", ELL + " (fork) [201]"),
        ("python3 (multiprocessing spawn) [202]", ""),
        ("worker --big [203] " + DOT + " OOM-killed", ""),
        ("sh -c true [204] " + DOT + " RSS", ""),
        ("2 snapshots", ""),
    ]
    check(len(legend) == len(want), "legend has %d entries: %r" % (len(legend), legend))
    for (a, b), got in zip(want, legend):
        check(got.startswith(a) and got.endswith(b) and (b or got == a),
              "legend entry %r, expected %r...%r" % (got, a, b))
    # full commands in the tooltips of the series
    series = [e for e in root.iter(SVG + "path") if "series" in cls(e)]
    pids = [e.get("data-pid") for e in series if "type" not in cls(e)]
    check(pids == ["200", "201", "202", "203", "204"], "memory series by pid: %r" % pids)
    tips = {e.get("data-pid"): tooltip(e) for e in series if "type" not in cls(e)}
    check("/usr/bin/python3 /srv/etl/pipeline/jobs/run_nightly_job.py --date 2024-01-01 "
          "[pid 200]" in (tips.get("200") or ""), "tooltip of 200: %r" % tips.get("200"))
    check("OOM" in (tips.get("203") or ""), "tooltip of 203 does not say OOM: %r" % tips.get("203"))
    # the types panel: the top 6 of 8, by peak bytes
    types = [e.get("data-type") for e in series if "type" in cls(e)]
    check(types == ["bytes", "pandas.core.frame.DataFrame", "numpy.ndarray", "dict", "list",
                    "str"], "type lines %r" % types)
    check(st.get("types") == {"count": 6, "pid": 200}, "--json types %r" % st.get("types"))
    # markers, with their labels as given (escaped in the file, whole when parsed)
    marks = texts(root, "marker-label")
    check(marks == ["load", "join", 'write <out> & "done"', "tick"], "marker labels %r" % marks)
    check(st.get("markers") == 4 and st.get("snapshots") == 2,
          "--json markers/snapshots %r/%r" % (st.get("markers"), st.get("snapshots")))
    snaps = [tooltip(e) for e in root.iter(SVG + "path") if "snapshot" in cls(e)]
    check(len(snaps) == 2 and "run.200.1.hsnap" in snaps[0] and "654,321 objects" in snaps[0]
          and "failed: target busy" in snaps[1], "snapshot tooltips %r" % snaps)
    # the short-lived shell still shows: a dot at its peak
    dots = [e.get("data-pid") for e in root.iter(SVG + "path") if "process-peak" in cls(e)]
    check("204" in dots, "no peak dot for the one-sample process 204: %r" % dots)
    killed = [tooltip(e) for e in root.iter(SVG + "path") if "killed" in cls(e)]
    check(len(killed) == 1 and "[203]" in killed[0] and "OOM" in killed[0],
          "killed marks %r" % killed)
    # axes in human units
    y = texts(find_id(root, "memory-y"), "tick")
    check(y[0] == "0" and all(t.endswith(" MiB") for t in y[1:]), "memory y ticks %r" % y)
    x = texts(find_id(root, "memory-x"), "tick")
    check(x == ["0", "2 s", "4 s", "6 s", "8 s", "10 s"], "x ticks %r" % x)
    # the default metric is PSS (the recording has smaps samples); 204 has none
    check(st.get("metric") == "pss" and st.get("fallback") == 1,
          "--json metric %r fallback %r" % (st.get("metric"), st.get("fallback")))
    sub = texts(root, "subtitle")
    check(bool(sub) and sub[0].startswith("PSS (estimated between smaps_rollup samples)")
          and "started 2023-11-14 22:13:20 UTC" in sub[0], "subtitle %r" % sub)


def test_peaks(d, tree):
    """The peaks drawn are the known answers, and agree with `heapsnap timeline`."""
    r = run(["timeline", tree, "--json"])
    if not check(r.returncode == 0, "timeline: %s" % r.stderr):
        return
    tl = json.loads(r.stdout)["total"]["peak"]
    out = os.path.join(d, "p.svg")
    st = plot_json(tree, out, "--metric", "rss")
    check(st.get("peak") == {"bytes": 249040 * KIB, "t": 4.99, "pid": 203},
          "line peak (rss) %r, expected 249040 KiB at 4.99 s by 203" % st.get("peak"))
    st = plot_json(tree, out, "--metric", "rss", "--stacked")
    check(st.get("peak") == {"bytes": tl["rss"]["bytes"], "t": tl["rss"]["t"], "pid": None},
          "stacked rss peak %r, timeline says %r" % (st.get("peak"), tl["rss"]))
    # the exiting processes count at their exit tick, as in `heapsnap timeline`
    check(st.get("peak", {}).get("bytes") == 503960 * KIB, "stacked rss peak %r, expected "
          "503960 KiB" % st.get("peak"))
    st = plot_json(tree, out, "--stacked")
    check(st.get("peak") == {"bytes": tl["pss"]["bytes"], "t": tl["pss"]["t"], "pid": None},
          "stacked pss peak %r, timeline says %r" % (st.get("peak"), tl["pss"]))
    root = svg_tree(out)
    if root is not None:
        bands = [e.get("data-pid") for e in root.iter(SVG + "path") if "band" in cls(e)]
        check(bands == ["200", "201", "202", "203", "204"], "stacked bands %r" % bands)
        check(not [e for e in root.iter(SVG + "path") if "series" in cls(e) and
                   "type" not in cls(e)], "stacked plot has line series")
        legend = texts(find_id(root, "memory-legend"), "legend-label")
        check(legend and legend[0].startswith("sh -c true"), "stacked legend is not top first: %r"
              % legend)
        peak = texts(root, "peak-label")
        check(peak == ["tree peak %.1f MiB at %.2f s" % (tl["pss"]["bytes"] / MIB, tl["pss"]["t"])],
              "stacked peak label %r" % peak)
    st = plot_json(tree, out, "--metric", "uss", "--stacked")
    check(st.get("peak") == {"bytes": tl["uss"]["bytes"], "t": tl["uss"]["t"], "pid": None},
          "stacked uss peak %r, timeline says %r" % (st.get("peak"), tl["uss"]))


def test_window(d, tree):
    out = os.path.join(d, "w.svg")
    st = plot_json(tree, out, "--from", "2s", "--to", "5.5s", "--metric", "rss")
    check((st.get("from"), st.get("to")) == (2, 5.5), "window %r..%r" % (st.get("from"),
                                                                        st.get("to")))
    check(st.get("markers") == 1 and st.get("snapshots") == 1 and st.get("processes") == 4,
          "window 2..5.5 s: markers %r snapshots %r processes %r (expected 1, 1, 4: the shell "
          "starts at 6 s)" % (st.get("markers"), st.get("snapshots"), st.get("processes")))
    root = svg_tree(out)
    if root is not None:
        check(texts(root, "marker-label") == ["join"], "markers in 2..5.5 s: %r"
              % texts(root, "marker-label"))
        x = texts(find_id(root, "memory-x"), "tick")
        check(x and x[0] == "2 s" and x[-1] in ("5 s", "5.5 s"), "window x ticks %r" % x)
        sub = texts(root, "subtitle")
        check(bool(sub) and "2.00 s to 5.50 s of 10 s" in sub[0], "window subtitle %r" % sub)
    # a window reaching past the end is cut to the recording
    st = plot_json(tree, out, "--from", "8", "--to", "1h")
    check((st.get("from"), st.get("to")) == (8, 10), "window 8 s..1 h: %r..%r" %
          (st.get("from"), st.get("to")))
    check(st.get("processes") == 1, "after 8 s only the root runs: %r" % st.get("processes"))
    # clock times as `timeline` prints them
    st = plot_json(tree, out, "--from", "0:03", "--to", "0:04")
    check((st.get("from"), st.get("to")) == (3, 4), "window 0:03..0:04: %r..%r" %
          (st.get("from"), st.get("to")))


def test_grouping(d, many):
    out = os.path.join(d, "many.svg")
    st = plot_json(many, out)
    check(st.get("metric") == "rss", "no smaps samples: default metric %r" % st.get("metric"))
    check(st.get("processes") == 15 and st.get("drawn") == 10, "15 processes, %r / %r drawn"
          % (st.get("processes"), st.get("drawn")))
    check(st.get("peak") == {"bytes": 80 * MIB, "t": 1, "pid": 314}, "peak %r" % st.get("peak"))
    root = svg_tree(out)
    if root is not None:
        legend = texts(find_id(root, "memory-legend"), "legend-label")
        check(len(legend) == 11 and legend[-1] == "5 more processes", "legend %r" % legend)
        more = [e for e in root.iter(SVG + "path") if "more" in cls(e) and "series" in cls(e)]
        check(len(more) == 5, "%d grey series for the 5 smaller processes" % len(more))
    st = plot_json(many, out, "--top", "13")
    check(st.get("drawn") == 13, "--top 13: %r drawn" % st.get("drawn"))
    st = plot_json(many, out, "--top", "14")
    check(st.get("drawn") == 15, "--top 14 of 15: grouping one saves nothing, %r drawn"
          % st.get("drawn"))
    st = plot_json(many, out, "--stacked")
    check(st.get("peak", {}).get("bytes") == 677 * MIB and st.get("peak", {}).get("t") == 1,
          "stacked peak of the pool %r, expected 677 MiB at 1 s" % st.get("peak"))


def test_bad_inputs(d, tree, empty):
    out = os.path.join(d, "bad.svg")
    r = run(["plot", tree, "-o", os.path.join(d, "x.jpg")])
    one_line_error(r, 129, r"png, \.svg or \.pdf", "unknown extension")
    r = run(["plot", tree])
    one_line_error(r, 129, r"-o FILE", "no -o")
    r = run(["plot", "-o", out])
    one_line_error(r, 129, r"expected one recording", "no recording")
    garbage = os.path.join(d, "garbage.hsrec")
    open(garbage, "wb").write(b"not a recording at all\n" * 50)
    one_line_error(run(["plot", garbage, "-o", out]), 2, r"^heapsnap: cannot read .*garbage",
                   "garbage recording")
    one_line_error(run(["plot", os.path.join(d, "missing.hsrec"), "-o", out]), 2,
                   r"^heapsnap: cannot read .*missing", "missing recording")
    snap = os.path.join(ROOT, "fixtures", "snapshots", "synthetic-small.hsnap")
    if os.path.exists(snap):
        one_line_error(run(["plot", snap, "-o", out]), 2, r"snapshot, not a recording",
                       "a snapshot given")
    one_line_error(run(["plot", empty, "-o", out]), 2, r"no memory sample", "no samples")
    one_line_error(run(["plot", tree, "-o", out, "--from", "20s"]), 2,
                   r"window from 20\.00 s on is empty; the recording covers 0\.00 s to 10\.00 s",
                   "window after the end")
    one_line_error(run(["plot", tree, "-o", out, "--from", "5", "--to", "3"]), 129,
                   r"window is empty: --from 5 is not before --to 3", "--from after --to")
    one_line_error(run(["plot", tree, "-o", out, "--from", "soon"]), 129,
                   r"--from: cannot read 'soon' as a time", "bad --from")
    one_line_error(run(["plot", tree, "-o", out, "--metric", "vss"]), 129,
                   r"--metric expects rss, uss or pss", "bad --metric")
    one_line_error(run(["plot", tree, "-o", out, "--width", "50"]), 129,
                   r"200 to 20000", "tiny --width")
    many = os.path.join(d, "many.hsrec")
    subprocess.check_call([MAKE, "many", many])
    one_line_error(run(["plot", many, "-o", out, "--metric", "pss"]), 2,
                   r"no PSS/USS sample.*--metric rss", "pss without smaps samples")
    one_line_error(run(["plot", tree, "-o", os.path.join(d, "garbage.hsrec", "x.svg")]), 2,
                   r"^heapsnap: cannot write .*x\.svg", "unwritable output")
    check(not os.path.exists(out), "a failed plot left %s behind" % out)
    # a recording cut inside a chunk (the recorder killed): drawn up to there, with the warning
    data = open(tree, "rb").read()
    cut = os.path.join(d, "cut.hsrec")
    open(cut, "wb").write(data[:len(data) * 2 // 3])
    cut_svg = os.path.join(d, "cut.svg")
    r = plot(cut, cut_svg)
    check("ended abruptly" in r.stderr, "cut recording: no warning on stderr: %r" % r.stderr)
    root = svg_tree(cut_svg) if r.returncode == 0 else None
    if root is not None:
        w = texts(root, "warning")
        check(len(w) == 1 and "ended abruptly" in w[0], "cut recording: warning drawn %r" % w)


def test_goldens(d, tree, many, long_rec, update):
    cases = [
        ("tree-lines", tree, []),
        ("tree-stacked-rss", tree, ["--stacked", "--metric", "rss"]),
        ("tree-window", tree, ["--from", "2s", "--to", "5.5s", "--title", "ETL <join> & write"]),
        ("many", many, []),
        ("long", long_rec, ["--types", "0"]),
    ]
    for name, rec, args in cases:
        out = os.path.join(d, name + ".svg")
        r = plot(rec, out, *args)
        if r.returncode != 0:
            continue
        root = svg_tree(out)
        if root is not None:
            golden(name, structure(root), update)


def main():
    update = len(sys.argv) > 1 and sys.argv[1] == "update"
    d = os.path.join(WORK, "plot")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    recs = {}
    for kind in ("tree", "many", "long", "empty"):
        recs[kind] = os.path.join(d, kind + ".hsrec")
        subprocess.check_call([MAKE, kind, recs[kind]])
    if update:
        test_goldens(d, recs["tree"], recs["many"], recs["long"], True)
        print("golden files written to", GOLDEN)
        return 0
    test_formats(d, recs["tree"], recs["many"])
    test_svg_content(d, recs["tree"])
    test_peaks(d, recs["tree"])
    test_window(d, recs["tree"])
    test_grouping(d, recs["many"])
    test_bad_inputs(d, recs["tree"], recs["empty"])
    test_goldens(d, recs["tree"], recs["many"], recs["long"], False)
    left = [f for f in os.listdir(d) if ".tmp-" in f]
    check(not left, "temporary files left behind: %r" % left)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
