"""The same process dumped three times: a module-level dict gains 1000
sessions between dumps (a leak), while temporary objects come and go and
jobs are replaced at a steady count (churn). With `churn` as the second
argument the sessions are replaced instead of kept: no leak at all."""
import gc
import sys
import _common

app = _common.module()
_common.define(app, """
class SessionState:
    def __init__(self, i):
        self.history = [i]

class Temp:
    pass

class Job:
    pass
""")


def main(prefix, mode):
    app._sessions = {}
    app._jobs = []
    for k, temps in enumerate((300, 100, 200)):
        if mode == "churn":
            app._sessions = {}
        for i in range(1000):
            app._sessions["s%d" % (k * 1000 + i)] = app.SessionState(i)
        app._temps = [app.Temp() for _ in range(temps)]
        app._jobs = [app.Job() for _ in range(50)]
        gc.collect()
        _common.dump("%s%d.hsnap" % (prefix, k), sessions=id(app._sessions))


main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "leak")
