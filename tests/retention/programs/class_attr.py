"""300 items in a list held by a class attribute."""
import sys
import _common

app = _common.module()
_common.define(app, "class Registry:\n    items = []\n\nclass Item:\n    pass\n")


def main(out):
    app.Registry.items.extend(app.Item() for _ in range(300))
    _common.dump(out, items=id(app.Registry.items))


main(sys.argv[1])
