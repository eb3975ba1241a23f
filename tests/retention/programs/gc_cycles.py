"""25 pairs of nodes referring to each other, dropped with the GC disabled:
garbage, 25 cycles."""
import gc
import sys
import _common

app = _common.module()
_common.define(app, "class Node:\n    pass\n")


def main(out):
    gc.disable()
    for _ in range(25):
        a, b = app.Node(), app.Node()
        a.other, b.other = b, a
    del a, b
    _common.dump(out)


main(sys.argv[1])
