"""200 items in a list captured by a closure (held through its cell)."""
import sys
import _common

app = _common.module()
_common.define(app, "class Item:\n    pass\n")


def make():
    cache = [app.Item() for _ in range(200)]

    def get():
        return cache
    return get


def main(out):
    app.getter = make()
    _common.dump(out, cache=id(app.getter()))


main(sys.argv[1])
