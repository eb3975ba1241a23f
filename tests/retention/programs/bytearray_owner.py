"""An owner holding a 1,000,000-byte bytearray: the owner retains it."""
import sys
import _common

app = _common.module()
_common.define(app, "class Owner:\n    def __init__(self):\n        self.buf = bytearray(1000000)\n")


def main(out):
    app.owner = app.Owner()
    _common.dump(out, owner=id(app.owner), buf=id(app.owner.buf))


main(sys.argv[1])
