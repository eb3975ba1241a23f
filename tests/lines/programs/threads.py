# two named threads, each retaining a known amount on its own line
import threading
import time

out = {}


def worker_a():
    out["a"] = [bytearray(2000) for _ in range(3000)]  # LINE_A


def worker_b():
    out["b"] = [bytearray(3000) for _ in range(3000)]  # LINE_B


ta = threading.Thread(target=worker_a, name="alpha")
tb = threading.Thread(target=worker_b, name="beta")
ta.start()
tb.start()
ta.join()
tb.join()
time.sleep(1.2)
