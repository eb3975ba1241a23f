"""gunicorn with 2 sync workers serving Flask + SQLAlchemy (sqlite in
memory per worker, a cache of known objects growing per request), run as
`heapsnap record -o x.hsrec --snapshot-every 2 -- gunicorn ...` and stopped
by SIGTERM to heapsnap (forwarded to gunicorn, which shuts down cleanly).
The recording has the master and both workers with exit 0; `timeline --json`
has peaks inside each lifetime, the tree's total is PSS and its peak is the
sum of the processes' PSS at that instant; `plot -o x.svg` draws it; every
snapshot listed opens with `summary`, and the workers' hold the cache."""
import json
import os
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import rwcheck as R
import live as L

APP = r'''
import os
from flask import Flask, jsonify
from sqlalchemy import create_engine, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, Session

class Base(DeclarativeBase):
    pass

class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))

class RwNoteCacheXyz:
    def __init__(self, note_id, text):
        self.note_id = note_id
        self.text = text
        self.blob = bytearray(4096)

engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
CACHE = []
app = Flask(__name__)

@app.get("/add/<int:k>")
def add(k):
    with Session(engine) as s:
        notes = [Note(text="note %d of %d" % (i, os.getpid())) for i in range(k)]
        s.add_all(notes)
        s.commit()
        CACHE.extend(RwNoteCacheXyz(n.id, n.text) for n in notes)
        rows = s.query(Note).count()
    return jsonify(pid=os.getpid(), added=k, rows=rows, cached=len(CACHE))
'''

work = R.WORK
open(os.path.join(work, "rwflask.py"), "w").write(APP)
port = L.free_port()
url = "http://127.0.0.1:%d" % port
rec = os.path.join(work, "x.hsrec")
t0 = time.monotonic()
h = subprocess.Popen([R.CLI, "record", "-o", rec, "--snapshot-every", "2", "--",
                      "gunicorn", "-w", "2", "-k", "sync", "--bind", "127.0.0.1:%d" % port,
                      "--log-level", "warning", "rwflask:app"],
                     env=L.target_env(), cwd=work, stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
out_lines = []
reader = threading.Thread(target=lambda: out_lines.extend(h.stdout), daemon=True)
reader.start()
per_pid = {}
errors = []


stop_load = threading.Event()


def client(k):
    while not stop_load.is_set():
        try:
            code, body = L.get("%s/add/%d" % (url, k))
            d = json.loads(body)
            if code != 200 or d["added"] != k:
                errors.append(body)
            per_pid[d["pid"]] = max(per_pid.get(d["pid"], 0), d["cached"])
            if d["rows"] != d["cached"]:
                errors.append("rows %d != cached %d" % (d["rows"], d["cached"]))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            time.sleep(0.05)


try:
    if not L.wait_http(url + "/add/1", h, 60):
        R.fail("gunicorn under record did not start: %s" % "".join(out_lines)[-1500:])
        R.done()
    ts = [threading.Thread(target=client, args=(k,)) for k in (10, 20, 5)]
    for t in ts:
        t.start()
    # the load runs until the recorder has written 6 snapshots and both
    # workers served (work done, not seconds: a loaded machine takes longer)
    def enough():
        # files x.<pid>.<n>.hsnap: 6 in all, and each worker that served has one
        names = [f for dp, dn, fn in os.walk(work) for f in fn if f.endswith(".hsnap")]
        pids = {f.split(".")[1] for f in names if f.count(".") >= 3}
        return len(names) >= 6 and len(per_pid) == 2 and all(str(w) in pids for w in per_pid)
    R.check(L.wait_for(enough), "6 snapshots written under load, both workers served")
    stop_load.set()
    for t in ts:
        t.join()
    R.check(not errors, "every request answered: %d failures, first %r" % (len(errors), errors[:3]))
    R.check(len(per_pid) == 2, "both workers served requests: %r" % per_pid)
    t_term = time.monotonic() - t0  # the recording's clock starts a little later
    h.send_signal(signal.SIGTERM)
    try:
        rc = h.wait(L.HANG)
    except subprocess.TimeoutExpired:
        R.fail("heapsnap record did not end within %d s of SIGTERM (hang detector)" % L.HANG)
        h.kill()
        rc = h.wait()
finally:
    if h.poll() is None:
        h.kill()
        h.wait()
reader.join(5)
out = "".join(out_lines)
print(out)
R.check(rc == 0, "record passes gunicorn's exit status 0 through: %r" % rc)
R.check("recorded 3 processes" in out, "record says it recorded 3 processes: %r" % out[-300:])

tl = L.run_json("timeline", rec)
L.validate(tl, "timeline")
R.check(tl.get("recording", {}).get("complete") is True, "the recording is complete: %r" % tl.get("recording"))
procs = tl.get("processes", [])
R.check(len(procs) == 3, "3 processes recorded: %r" % [(p["pid"], p["ppid"]) for p in procs])
roots = [p for p in procs if p.get("root")]
master = roots[0] if len(roots) == 1 else None
R.check(master is not None, "one root process: %r" % [p["pid"] for p in roots])
if master:
    workers = [p for p in procs if p["ppid"] == master["pid"]]
    R.check(len(workers) == 2, "2 workers under the master %d: %r" % (master["pid"], [p["pid"] for p in workers]))
    R.check(sorted(p["pid"] for p in workers) == sorted(per_pid),
            "the workers recorded are the ones that served: %r vs %r" % ([p["pid"] for p in workers], list(per_pid)))
    R.check(any("gunicorn" in a for a in master["argv"]), "master argv names gunicorn: %r" % master["argv"])
    R.check(master["python"] is True and master["agent"] is True, "master is Python with the agent")
for p in procs:
    ex = p.get("exit") or {}
    R.check(ex.get("status") == "exited" and ex.get("code") == 0,
            "pid %d exited 0: %r" % (p["pid"], ex))
    R.check(p["end"] is not None and p["start"] < p["end"], "pid %d has a lifetime" % p["pid"])
    for metric in ("rss", "pss", "uss"):
        pk = (p.get("peak") or {}).get(metric) or {}
        R.check(pk.get("bytes", 0) > 5 << 20 and p["start"] - 0.05 <= pk.get("t", -1) <= p["end"] + 0.05,
                "pid %d: peak %s %r inside its lifetime %.2f-%.2f" % (p["pid"], metric, pk, p["start"], p["end"]))
    rss = max(s["rss"] for s in p["samples"])
    R.check(rss == p["peak"]["rss"]["bytes"], "pid %d: peak RSS %d is its highest sample %d"
            % (p["pid"], p["peak"]["rss"]["bytes"], rss))
    if p is not master:
        R.check(p["peak"]["uss"]["bytes"] > 20 << 20, "worker %d: USS peak above 20 MiB (4 KiB per cached note)"
                % p["pid"])
tot = tl.get("total", {})
R.check(tot.get("metric") == "pss", "the tree total is PSS: %r" % tot.get("metric"))
pk = (tot.get("peak") or {}).get("pss") or {}
byp = {b["pid"]: b["bytes"] for b in pk.get("by_process", [])}
R.check(len(byp) == 3 and sum(byp.values()) == pk.get("bytes"),
        "tree PSS peak %r is the sum of its processes at %.2f s: %r" % (pk.get("bytes"), pk.get("t", -1), byp))
R.check(pk.get("bytes", 0) <= sum(p["peak"]["pss"]["bytes"] for p in procs),
        "tree PSS peak is not above the sum of per-process peaks")
R.check(pk.get("bytes", 0) < tot.get("peak", {}).get("rss", {}).get("bytes", 0),
        "tree PSS peak below the tree RSS at its peak (workers share pages with the master)")
ts_ = tot.get("samples", [])
R.check(ts_ and max(s["pss"] for s in ts_) == pk.get("bytes"),
        "the tree's peak PSS is its highest total sample")

snaps = tl.get("snapshots", [])
R.check(len([s for s in snaps if s.get("error") is None]) >= 6,
        "--snapshot-every 2: at least the 6 snapshots seen: %r" % [(s["pid"], s["t"], s.get("error")) for s in snaps])
print("snapshots: %r, SIGTERM at ~%.2f s" % ([(s["pid"], round(s["t"], 2), s.get("error")) for s in snaps], t_term))
held = {}
for s in snaps:
    if s.get("error") is not None:
        # one scheduled while gunicorn shuts down may find the worker gone:
        # then it is that process's last one (an order, not a time)
        later = [x for x in snaps if x["pid"] == s["pid"] and x["t"] > s["t"] and x.get("error") is None]
        R.check(not later, "snapshot of %d at %.2f s failed although later ones succeeded (SIGTERM at "
                "~%.2f s): %r" % (s["pid"], s["t"], t_term, s.get("error")))
        continue
    path = os.path.join(work, s["path"])
    sm = L.run_json("summary", path, "--top", "0")
    R.check(sm.get("total", {}).get("count") == s["objects"],
            "%s: summary counts %r objects, the timeline %r" % (s["path"], sm.get("total", {}).get("count"), s["objects"]))
    held[s["pid"]] = max(held.get(s["pid"], 0), L.type_count(sm, "RwNoteCacheXyz"))
    meta = L.run_json("info", path).get("meta", {})
    mains = [t for t in meta.get("threads", []) if t.get("main")]
    # a worker is a fork of the master: its main thread is the process itself
    R.check(len(mains) == 1 and mains[0].get("native_id") == s["pid"],
            "%s: the main thread's native id is the process's pid %d: %r" % (s["path"], s["pid"], mains))
if master:
    R.check(held.get(master["pid"], 0) == 0, "the master holds no cached notes: %r" % held)
    for w in per_pid:
        R.check(0 < held.get(w, 0) <= per_pid[w], "worker %d's snapshots hold its cache (at most %d): %r"
                % (w, per_pid[w], held.get(w)))

svg = os.path.join(work, "x.svg")
pj = L.run_json("plot", rec, "-o", svg)
L.validate(pj, "plot")
if R.check(os.path.exists(svg) and os.path.getsize(svg) > 2000, "plot wrote %s" % svg):
    try:
        root = ET.parse(svg).getroot()
        text = " ".join(t for t in root.itertext())
        R.check(root.tag.endswith("svg"), "the plot is an SVG document")
        R.check(all(str(p["pid"]) in text for p in procs), "the plot's legend names every pid")
    except ET.ParseError as e:
        R.fail("the plot is not well-formed XML: %s" % e)
print("gunicorn_record: %.1f s" % (time.monotonic() - t0))
R.done()
