"""Dumps while 4 threads run Python that mutates dicts, lists and instances:
every dump succeeds and every snapshot reads back."""
import random, sys, threading
import heapsnap
import rwcheck as R

N = int(sys.argv[1]) if len(sys.argv) > 1 else 15
stop = threading.Event()
shared = {}


def mutator(k):
    rnd = random.Random(k); d = {}; lst = []

    class C: pass
    while not stop.is_set():
        for i in range(200):
            d[rnd.random()] = [i] * rnd.randint(0, 5)
            lst.append(C()); lst[-1].x = {i: str(i)}
            if len(d) > 2000: d.clear()
            if len(lst) > 3000: del lst[:1500]
            shared[k, i % 50] = (i, "s" * (i % 7))
            if i % 20 == 0: shared.pop((k, (i + 7) % 50), None)


threads = [threading.Thread(target=mutator, args=(k,), name="mutator-%d" % k) for k in range(4)]
for t in threads: t.start()
try:
    for i in range(N):
        r = heapsnap.dump(R.path("h.hsnap"))
        if i % 10 == 0:
            s = R.hsnap.read(R.path("h.hsnap"))
            names = {x["name"] for x in s.roots if x["kind_name"] == "local"} if s.roots and "kind_name" in s.roots[0] else set()
            s = None
finally:
    stop.set()
    for t in threads: t.join()
print("%d dumps, last %d objects" % (N, r["objects"]))
R.done()
