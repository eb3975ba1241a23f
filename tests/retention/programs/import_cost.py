"""What importing modules costs: tracemalloc's measure of the imports
against heapsnap's per-package retained sizes.

usage: import_cost.py OUT.hsnap MODULE[,MODULE...]

Imports the modules under tracemalloc (after a collection, with the GC
disabled so that no collection frees earlier garbage in the middle), then
dumps. Writes OUT.hsnap.json: `traced` (bytes tracemalloc holds for the
imports, measured before the dump) and `packages` (top-level names of the
modules the imports added)."""
import gc
import importlib
import json
import sys
import tracemalloc

import heapsnap  # before measuring: its own modules are not the imports'


def main(out, names):
    gc.collect()
    gc.disable()
    before = set(sys.modules)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for name in names:
        importlib.import_module(name)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    new = sorted(set(m.split(".")[0] for m in set(sys.modules) - before))
    heapsnap.dump(out)
    with open(out + ".json", "w") as f:
        json.dump({"traced": traced, "packages": new}, f)


main(sys.argv[1], sys.argv[2].split(","))
