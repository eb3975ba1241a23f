"""FastAPI under uvicorn (a separate process started with HEAPSNAP_AGENT=1
through heapsnap/_bootstrap, importing nothing of ours itself) under request
load from 4 client threads: `heapsnap stats PID`, `heapsnap dump PID` (fork,
the default) and `--no-fork`, both through the agent. Every request answers
correctly during and after the dumps, the orders the app holds are in each
snapshot (exactly, once the load is stopped), and the target is left
untraced and running until it is told to stop."""
import json
import os
import subprocess
import threading
import time

import rwcheck as R
import live as L

APP = r'''
from fastapi import FastAPI

class RwOrderXyz:
    __slots__ = ("n", "items")
    def __init__(self, n):
        self.n = n
        self.items = ["item-%d-%d" % (n, i) for i in range(4)]

ORDERS = []
app = FastAPI()

@app.get("/order/{k}")
def order(k: int):
    ORDERS.extend(RwOrderXyz(k) for _ in range(k))
    return {"added": k, "total": len(ORDERS)}

@app.get("/count")
async def count():
    return {"total": len(ORDERS), "sum": sum(o.n for o in ORDERS)}
'''

work = R.WORK
agent_dir = os.path.join(work, "agents")
os.mkdir(agent_dir, 0o700)
open(os.path.join(work, "rwapp.py"), "w").write(APP)
port = L.free_port()
url = "http://127.0.0.1:%d" % port
srv = subprocess.Popen([L.sys.executable, "-m", "uvicorn", "rwapp:app", "--host", "127.0.0.1",
                        "--port", str(port), "--log-level", "warning"],
                       env=L.target_env(agent_dir), cwd=work, stdin=subprocess.DEVNULL)
sent = [0]
errors = []
lock = threading.Lock()
stop_load = threading.Event()


def client(k):
    while not stop_load.is_set():
        try:
            code, body = L.get("%s/order/%d" % (url, k))
            doc = json.loads(body)
            if code != 200 or doc["added"] != k:
                errors.append((code, body))
            with lock:
                sent[0] += k
        except Exception as e:  # noqa: BLE001 -- any failure of the app is the finding
            errors.append(repr(e))
            time.sleep(0.05)


def count():
    code, body = L.get(url + "/count")
    R.check(code == 200, "/count answers %d" % code)
    return json.loads(body)


try:
    if not L.wait_http(url + "/count", srv, 60):
        R.fail("uvicorn did not start (exit %r)" % srv.poll())
        R.done()
    sock = os.path.join(agent_dir, "agent-%d.sock" % srv.pid)
    R.check(L.wait_for(lambda: os.path.exists(sock), 20), "the agent's socket %s appears" % sock)

    # quiet: exact figures
    L.get(url + "/order/50")
    st = L.run_json("stats", srv.pid, "--types", "10")
    L.validate(st, "stats")
    R.check(st.get("agent") not in (None, False), "stats reaches the agent: %r" % st.get("agent"))
    R.check(st.get("memory", {}).get("rss", 0) > 10 << 20, "stats: RSS above 10 MiB: %r" % st.get("memory"))
    R.check(st.get("memory", {}).get("pss") is not None, "stats: PSS measured: %r" % st.get("memory"))
    tnames = [t.get("name", "") for t in (st.get("types") or {}).get("types", [])]
    R.check(any(n.endswith("RwOrderXyz") or n.endswith("str") for n in tnames),
            "stats --types lists the app's types: %r" % tnames)
    snap0 = os.path.join(work, "quiet.hsnap")
    rc, out, err = L.run("dump", srv.pid, "--agent", "-o", snap0)
    R.check(rc == 0 and os.path.exists(snap0), "dump --agent (quiet) exits 0: %s" % err[-300:])
    if rc == 0:
        s = L.run_json("summary", snap0, "--top", "0")
        R.check(L.type_count(s, "RwOrderXyz") == 50, "quiet snapshot holds the 50 orders: %d"
                % L.type_count(s, "RwOrderXyz"))

    # under load
    ts = [threading.Thread(target=client, args=(k,)) for k in (1, 2, 3, 5)]
    for t in ts:
        t.start()
    # the load is running once orders come back (counted, not timed)
    R.check(L.wait_for(lambda: sent[0] > 20), "the load starts: %d orders" % sent[0])
    results = {}
    for mode in ("fork", "no-fork", "default"):
        snap = os.path.join(work, "load-%s.hsnap" % mode)
        before = count()["total"]
        args = ["dump", srv.pid, "-o", snap] + {"fork": ["--agent"], "no-fork": ["--agent", "--no-fork"],
                                                   "default": []}[mode]
        t0 = time.monotonic()
        rc, out, err = L.run(*args)
        results[mode] = time.monotonic() - t0
        after = count()["total"]
        if not R.check(rc == 0 and os.path.exists(snap), "dump (%s) under load exits 0: %s" % (mode, err[-300:])):
            continue
        R.check("agent" in (out + err).lower() or mode == "default",
                "dump (%s) says it went through the agent: %r" % (mode, (out + err)[-200:]))
        s = L.run_json("summary", snap, "--top", "0")
        n = L.type_count(s, "RwOrderXyz")
        R.check(before <= n <= after, "snapshot (%s) holds between %d and %d orders: %d" % (mode, before, after, n))
        info = L.run_json("info", snap)
        meta = json.dumps(info)
        R.check(str(srv.pid) in meta, "info (%s) names pid %d" % (mode, srv.pid))
        R.check(L.tracer(srv.pid) == 0, "after dump (%s) the target is not traced" % mode)
        time.sleep(0.5)
    st2 = L.run_json("stats", srv.pid, "--fast")
    R.check(st2.get("agent") not in (None, False), "stats --fast under load reaches the agent")
    time.sleep(0.5)
    stop_load.set()
    for t in ts:
        t.join(L.HANG)
    R.check(not errors, "every request under load answered correctly: %d failures, first %r"
            % (len(errors), errors[:3]))
    c = count()
    R.check(c["total"] == 50 + sent[0], "the app counted every order: %d, clients sent %d"
            % (c["total"], 50 + sent[0]))
    R.check(sent[0] > 20, "the load did run during the dumps: %d orders" % sent[0])
    # after the load: exact again, through the default path (agent)
    snap = os.path.join(work, "after.hsnap")
    rc, out, err = L.run("dump", srv.pid, "-o", snap)
    if R.check(rc == 0, "dump after the load: %s" % err[-300:]):
        s = L.run_json("summary", snap, "--top", "0")
        R.check(L.type_count(s, "RwOrderXyz") == c["total"], "snapshot after the load holds all %d orders: %d"
                % (c["total"], L.type_count(s, "RwOrderXyz")))
    R.check(srv.poll() is None, "uvicorn still runs after the dumps")
    print("dump seconds: %r, orders sent under load %d" % (results, sent[0]))
finally:
    stop_load.set()
    rc = L.stop(srv)
# uvicorn >= 0.29 shuts down cleanly, then re-raises the signal it caught
R.check(rc in (0, -L.signal.SIGTERM), "uvicorn shuts down on SIGTERM after the dumps: %r" % rc)
R.done()
