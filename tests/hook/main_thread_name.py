"""A program that never imports threading still has its main thread named
'MainThread' (metadata and frame roots). Run with -S so site does not
import threading. usage: main_thread_name.py HEAPSNAP_CLI"""
import sys

if "threading" in sys.modules:
    print("SKIP: threading already imported at start-up")
    sys.exit(77)
import heapsnap  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def work():
    local_list = [1, 2, 3]
    # no tempfile: it imports random, which imports threading on some versions
    path = "/tmp/heapsnap-main-thread-%d.hsnap" % os.getpid()
    try:
        heapsnap.dump(path)
        threading_seen = "threading" in sys.modules
        import subprocess  # imports threading: only after the dump
        info = json.loads(subprocess.run([sys.argv[1], "info", path, "--json"],
                                         capture_output=True, text=True).stdout)
        paths = json.loads(subprocess.run([sys.argv[1], "paths", path, "--address",
                                           hex(id(local_list)), "--json"],
                                          capture_output=True, text=True).stdout)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return info, paths, threading_seen


info, paths, threading_seen = work()
threads = info["meta"]["threads"]
problems = []
if threading_seen:
    problems.append("threading was imported before the dump")
main = [t for t in threads if t.get("main")]
if len(main) != 1 or main[0].get("name") != "MainThread":
    problems.append("threads %r: expected one main thread named MainThread" % threads)
text = paths["paths"][0]["text"] if paths.get("paths") else ""
if "thread 'MainThread'" not in text:
    problems.append("path %r does not name thread 'MainThread'" % text)
for p in problems:
    print("FAIL", p)
print("path:", text)
sys.exit(1 if problems else 0)
