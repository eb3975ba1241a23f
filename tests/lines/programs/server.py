# a running server for record --pid --lines: grows on a known line, and
# writes the tracker's status to argv[1] each round (so the test can see
# that tracking stopped when the recording ended)
import json
import os
import signal
import sys
import time

from heapsnap import _heapsnap

running = [True]
signal.signal(signal.SIGTERM, lambda *a: running.__setitem__(0, False))
store = []
while running[0]:
    store.append(bytearray(100000))  # LINE_GROW
    st = _heapsnap._track_status()
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"active": st["active"], "items": len(store)}, f)
    os.rename(tmp, sys.argv[1])
    time.sleep(0.05)
total = sum(len(b) for b in store)
sys.exit(0 if total == 100000 * len(store) else 3)
