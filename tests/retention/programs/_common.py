"""Shared by the retention fixture programs: a module to hold things (so
paths start at `module rt_app`), a sidecar JSON of object addresses, and
the dump."""
import json
import sys
import types

import heapsnap


def module(name="rt_app"):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m


def define(mod, source):
    """Run `source` in the module, so its classes are named rt_app.X."""
    exec(source, mod.__dict__)


def dump(path, **ids):
    heapsnap.dump(path)
    with open(path + ".json", "w") as f:
        json.dump({k: "0x%x" % v for k, v in ids.items()}, f)
