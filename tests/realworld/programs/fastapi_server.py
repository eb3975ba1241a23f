"""FastAPI under uvicorn in a thread: dumps from an async handler (event
loop thread) and from sync handlers (threadpool), 8 requests at once; every
request succeeds and the cache reads as held by module __main__."""
import asyncio, threading, time
import httpx, uvicorn
from fastapi import FastAPI
import heapsnap
import rwcheck as R

app = FastAPI()
CACHE = {}
IDS = {}


@app.get("/items/{n}")
async def items(n: int):
    CACHE[n] = [{"i": i, "s": "v%d" % i} for i in range(500)]
    IDS["list"] = id(CACHE[n])
    await asyncio.sleep(0)
    heapsnap.dump(R.path("async.hsnap"))
    return {"ok": n}


@app.get("/sync/{n}")
def sync_items(n: int):
    CACHE["s%d" % n] = bytearray(100000)
    heapsnap.dump(R.path("sync%d.hsnap" % n))
    return {"ok": n}


server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
th = threading.Thread(target=server.run, name="uvicorn")
th.start()
# Waits are hang detectors (HANG s), never time limits: a handler dumps the
# heap while holding the GIL, 8 of them at once, which a loaded machine
# makes slow; the answers are checked, not the time.
HANG = 600
deadline = time.monotonic() + HANG
while not server.started and time.monotonic() < deadline:
    time.sleep(0.05)
port = server.servers[0].sockets[0].getsockname()[1]
url = "http://127.0.0.1:%d" % port
codes = []
with httpx.Client(timeout=HANG) as c:
    for i in range(2):
        codes += [c.get(url + "/items/%d" % i).status_code, c.get(url + "/sync/%d" % i).status_code]
ts = [threading.Thread(target=lambda k=k: codes.append(httpx.get(url + "/sync/%d" % (10 + k), timeout=HANG).status_code))
      for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
server.should_exit = True
th.join()
R.check(codes == [200] * 12, "every request succeeds: %r" % codes)
j = R.cli_json("paths", R.path("async.hsnap"), "--address", hex(IDS["list"]))
texts = [p["text"] for p in j.get("paths", [])]
R.check(texts and texts[0].startswith("module __main__ → dict['CACHE']"), "cache path: %r" % texts)
R.done()
