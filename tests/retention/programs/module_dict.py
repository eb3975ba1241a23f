"""500 sessions in a module-level dict: one aggregated path, count 500."""
import sys
import _common

app = _common.module()
_common.define(app, "class Session:\n    def __init__(self):\n        self.history = []\n")


def main(out):
    app._sessions = {"user_%d" % i: app.Session() for i in range(500)}
    _common.dump(out, sessions=id(app._sessions))


main(sys.argv[1])
