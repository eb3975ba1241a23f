"""functools.lru_cache (a C object) keeps 50 results, each a list of 4 items."""
import sys
import _common

app = _common.module()
_common.define(app, """
import functools

class Item:
    pass

@functools.lru_cache(maxsize=None)
def load(i):
    return [Item() for _ in range(4)]
""")


def main(out):
    for i in range(50):
        app.load(i)
    _common.dump(out)


main(sys.argv[1])
