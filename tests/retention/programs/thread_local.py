"""A thread named 'hoarder' keeps 400 items in a local `buf` of its frame."""
import sys
import threading
import _common

app = _common.module()
_common.define(app, "class Item:\n    pass\n")
ready, done = threading.Event(), threading.Event()


def hoard():
    buf = [app.Item() for _ in range(400)]
    ready.set()
    done.wait()
    return buf


def main(out):
    t = threading.Thread(target=hoard, name="hoarder")
    t.start()
    ready.wait()
    try:
        _common.dump(out)
    finally:
        done.set()
        t.join()


main(sys.argv[1])
