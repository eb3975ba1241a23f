"""10 objects reachable only through a WeakValueDictionary (and a weakref):
each sits in a reference cycle with itself and the GC is disabled, so they
still exist but nothing retains them: garbage, never retained."""
import gc
import sys
import weakref
import _common

app = _common.module()
_common.define(app, "class Weakling:\n    pass\n\nclass Kept:\n    pass\n")


def main(out):
    gc.disable()
    app.registry = weakref.WeakValueDictionary()
    app.refs = []
    for i in range(10):
        o = app.Weakling()
        o.me = o
        app.registry[i] = o
        app.refs.append(weakref.ref(o))
    del o
    app.kept = app.Kept()              # retained normally, for contrast
    app.registry["kept"] = app.kept
    _common.dump(out, registry=id(app.registry))


main(sys.argv[1])
