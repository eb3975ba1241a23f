"""Objects held by a global of the running script (__main__) are retained by
`module __main__`, not by the script frame's locals or "held from C" (a
module's top-level frame has the module dict as its locals, and frames hold
f_globals: both used to win the shortest-path search).

usage: main_module_paths.py HEAPSNAP_CLI"""
import json
import os
import subprocess
import sys
import tempfile

import heapsnap


class LeakedSession:
    pass


_sessions = {}
for i in range(250):
    _sessions["user_%d" % i] = LeakedSession()

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "main.hsnap")
    heapsnap.dump(path)
    out = subprocess.run([sys.argv[1], "paths", path, "--type", "__main__.LeakedSession", "--json"],
                         capture_output=True, text=True)
if out.returncode != 0:
    print("FAIL heapsnap paths exited %d: %s" % (out.returncode, out.stderr))
    sys.exit(1)
doc = json.loads(out.stdout)
paths = doc["paths"]
first = paths[0] if paths else {}
text = first.get("text", "")
ok = (len(paths) == 1 and first.get("count") == 250 and text.startswith("module __main__ ")
      and "['_sessions']" in text)
print("path: %s (x%s)" % (text, first.get("count")))
if not ok:
    print("FAIL expected one path of 250 objects starting at `module __main__` through ['_sessions']")
    sys.exit(1)
