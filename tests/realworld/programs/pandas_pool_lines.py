"""A pandas job with a multiprocessing Pool (2 workers, fork and spawn) run
as `heapsnap record --lines -- python job.py`: the main process builds a
DataFrame of 600,000 Python strings on one known line, each task in the
workers one of 500,000 on another known line. `heapsnap lines --by peak`
names the main line near the top over the whole tree, and `--pid WORKER`
names the worker line first in each worker that ran a task, with a size
the strings explain (sampled estimates: within a factor of 2.5)."""
import json
import os
import subprocess
import sys
import time

import rwcheck as R
import live as L

JOB = r'''
import multiprocessing as mp
import sys
import numpy as np
import pandas as pd

def work(seed):
    rows = 500_000
    frame = pd.DataFrame({"key": ["key-%07d-%03d" % (i, seed) for i in range(rows)], "v": np.arange(rows)})  # HEAVY-WORKER
    return int(frame["v"].sum()) + len(frame)

def main():
    base = pd.DataFrame({"key": ["key-%07d-%03d" % (i, 999) for i in range(600_000)]})  # HEAVY-MAIN
    # close() + join(): the workers end normally. `with Pool() as p:` ends
    # with terminate() (SIGTERM to the workers), which loses up to the last
    # second of their line figures (a known limit of record --lines)
    pool = mp.get_context(sys.argv[1]).Pool(2)
    res = pool.map(work, range(6), chunksize=1)
    pool.close()
    pool.join()
    print("RESULT", len(base), sum(res))

if __name__ == "__main__":
    main()
'''

work = R.WORK
job = os.path.join(work, "rwjob.py")
open(job, "w").write(JOB)
lines = JOB.splitlines()
heavy_main = 1 + next(i for i, l in enumerate(lines) if "# HEAVY-MAIN" in l)
heavy_worker = 1 + next(i for i, l in enumerate(lines) if "# HEAVY-WORKER" in l)
want_sum = sum(500_000 * 499_999 // 2 + 500_000 for _ in range(6))
# A str of 15-16 ASCII characters is 64-65 bytes on 3.8-3.13, plus 8 for the list's slot
STR_BYTES = 72


def rows_at(doc, line):
    return [r for r in doc.get("lines", []) if r["file"].endswith("rwjob.py") and r["line"] == line]


for method in ("fork", "spawn"):
    t0 = time.monotonic()
    rec = os.path.join(work, "job-%s.hsrec" % method)
    p = subprocess.run([R.CLI, "record", "--lines", "--seed", "7", "-q", "-o", rec, "--",
                        sys.executable, job, method], env=L.target_env(), cwd=work,
                       capture_output=True, text=True, timeout=300)
    print("record --lines (%s): exit %d in %.1f s" % (method, p.returncode, time.monotonic() - t0))
    if not R.check(p.returncode == 0, "%s: record --lines exits 0: %s" % (method, (p.stdout + p.stderr)[-1500:])):
        continue
    R.check("RESULT 600000 %d" % want_sum in p.stdout, "%s: the job's answer is right: %r" % (method, p.stdout[-300:]))
    tl = L.run_json("timeline", rec)
    procs = tl.get("processes", [])
    root = next((q for q in procs if q.get("root")), None)
    workers = [q for q in procs if root and q["ppid"] == root["pid"] and q.get("python")]
    pool_workers = [q for q in workers if "resource_tracker" not in " ".join(q["argv"])
                    and "forkserver" not in " ".join(q["argv"])]
    R.check(len(pool_workers) >= 2, "%s: the 2 pool workers are recorded: %r"
            % (method, [(q["pid"], q["ppid"], q["command"][-60:]) for q in procs]))
    # the whole tree, by peak: the main process's line is near the top
    doc = L.run_json("lines", rec, "--by", "peak", "--top", "10")
    L.validate(doc, "lines")
    top = [(r["file"].rsplit("/", 1)[-1], r["line"], r["peak_bytes"]) for r in doc.get("lines", [])]
    print("%s: lines --by peak: %r" % (method, top[:5]))
    pos = [i for i, r in enumerate(doc.get("lines", [])) if r["file"].endswith("rwjob.py") and r["line"] == heavy_main]
    R.check(pos and pos[0] < 3, "%s: the HEAVY-MAIN line %d is in the top 3 by peak: %r" % (method, heavy_main, top))
    R.check(doc.get("totals", {}).get("processes", 0) >= 3,
            "%s: lines counts the main process and the workers: %r" % (method, doc.get("totals")))
    if root:
        d = L.run_json("lines", rec, "--pid", root["pid"], "--by", "peak", "--top", "3")
        r = d.get("lines", [{}])[0] if d.get("lines") else {}
        R.check(r.get("line") == heavy_main and r.get("file", "").endswith("rwjob.py"),
                "%s: --pid main: HEAVY-MAIN first by peak: %r" % (method, r))
        lo, hi = 600_000 * STR_BYTES / 2.5, 600_000 * STR_BYTES * 2.5
        R.check(lo <= r.get("peak_bytes", 0) <= hi, "%s: HEAVY-MAIN holds %r bytes at the peak, expected %d-%d"
                % (method, r.get("peak_bytes"), lo, hi))
        R.check(r.get("source", "").lstrip().startswith("base = pd.DataFrame"),
                "%s: the row shows the source line: %r" % (method, r.get("source")))
    ran = 0
    for w in pool_workers:
        # the worker function's lines: in a spawned worker, `import pandas`
        # (charged to the job's import line) holds about as much as one
        # task's frame, so across all lines the order of the two is a toss-up
        d = L.run_json("lines", rec, "--pid", w["pid"], "--by", "peak", "--top", "3",
                       "--function", "work")
        if not d.get("lines"):
            continue
        ran += 1
        r = d["lines"][0]
        R.check(r.get("line") == heavy_worker and r.get("file", "").endswith("rwjob.py"),
                "%s: --pid %d (worker): HEAVY-WORKER line %d first by peak: %r"
                % (method, w["pid"], heavy_worker, [(x["file"][-30:], x["line"], x["peak_bytes"]) for x in d["lines"]]))
        lo, hi = 500_000 * STR_BYTES / 2.5, 500_000 * STR_BYTES * 2.5
        R.check(lo <= r.get("peak_bytes", 0) <= hi, "%s: worker %d: HEAVY-WORKER holds %r bytes at the peak, expected %d-%d"
                % (method, w["pid"], r.get("peak_bytes"), lo, hi))
        R.check(r.get("live_bytes", 0) < r.get("peak_bytes", 0) / 4,
                "%s: worker %d: the frame is freed after each task: live %r, peak %r"
                % (method, w["pid"], r.get("live_bytes"), r.get("peak_bytes")))
    R.check(ran == 2, "%s: both pool workers have tracked lines: %d" % (method, ran))
    # allocated (temporaries of the formatting included): the worker line
    # formats 6 x 500,000 strings as the main line formats 600,000, so over
    # the tree it allocated 5 times as much (sampled: within 25%); the main
    # process exits normally, its figures are complete
    d = L.run_json("lines", rec, "--by", "allocated", "--top", "0", "--file", "rwjob.py")
    rw, rm = rows_at(d, heavy_worker), rows_at(d, heavy_main)
    aw = sum(r["allocated_bytes"] for r in rw)  # 3.8-3.11: <listcomp> and the function
    am = sum(r["allocated_bytes"] for r in rm)
    R.check(am > 0 and 3.75 <= aw / am <= 6.25,
            "%s: HEAVY-WORKER allocated %.1f MB over the 6 tasks, 5x the %.1f MB of HEAVY-MAIN expected "
            "(ratio %.2f)" % (method, aw / 1e6, am / 1e6, aw / am if am else 0))
    fg = os.path.join(work, "job-%s.svg" % method)
    rc, out, err = L.run("flamegraph", rec, "--peak", "-o", fg)
    R.check(rc == 0 and os.path.exists(fg) and "rwjob.py:%d" % heavy_main in open(fg).read(),
            "%s: the flame graph names rwjob.py:%d: %s" % (method, heavy_main, err[-300:]))
    print("%s: %.1f s in all" % (method, time.monotonic() - t0))
R.done()
