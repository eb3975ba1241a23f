"""Children forked at once under `heapsnap record` get the agent.

usage: fork_agents.py --cli HEAPSNAP --python PY [--runs N]

A child forked a moment ago still holds its parent's agent socket until its
own agent starts: the recorder found that socket, refused it (served by the
parent) and gave up on the child for good, so a gunicorn worker got no
snapshot (realworld.gunicorn_record, about 1 run in 2). Each run forks two
children at once; every process must be recorded with the agent and be
snapshotted. Several runs, since the race is the point.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

PROGRAM = r'''
import os, sys, time
kids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        data = [str(i) for i in range(10000)]
        # live long enough for two scheduled snapshots, counted in the
        # recorder's files, not in time
        d = sys.argv[1]
        deadline = time.monotonic() + 120  # a hang detector
        while time.monotonic() < deadline:
            mine = [f for f in os.listdir(d) if f.startswith("r.%d." % os.getpid())]
            if len(mine) >= 2:
                break
            time.sleep(0.05)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--runs", type=int, default=6)
    a = ap.parse_args()
    failed = 0
    for run in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="hs-forkagents-") as d:
            rec = os.path.join(d, "r.hsrec")
            r = subprocess.run([a.cli, "record", "--snapshot-every", "0.5", "-o", rec, "--",
                                a.python, "-c", PROGRAM, d], capture_output=True, text=True,
                               timeout=900)
            if r.returncode != 0:
                print("FAIL run %d: record exit %d: %s" % (run, r.returncode, r.stderr[-500:]))
                failed += 1
                continue
            info = json.loads(subprocess.run([a.cli, "info", rec, "--json"], capture_output=True,
                                             text=True, timeout=600).stdout)
            procs = info["processes"]
            snaps = {}
            for f in os.listdir(d):
                if f.endswith(".hsnap"):
                    pid = int(f.split(".")[1])
                    snaps[pid] = snaps.get(pid, 0) + 1
            bad = [(p["pid"], p["agent"], snaps.get(p["pid"], 0)) for p in procs
                   if not p["agent"] or not snaps.get(p["pid"])]
            if len(procs) != 3 or bad:
                print("FAIL run %d: %d processes; without the agent or a snapshot: %s" %
                      (run, len(procs), bad))
                failed += 1
            else:
                print("run %d: 3 processes, each with the agent and snapshots %s" %
                      (run, sorted(snaps.values())))
    if failed:
        print("%d of %d runs failed" % (failed, a.runs))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
