"""Where the RSS goes: `heapsnap summary`'s breakdown on real processes
(run by the interpreter under test) and on synthetic snapshots with exact
figures.

usage: PYTHON memory_tests.py   (env HEAPSNAP, MAKE_SNAPSHOT, SCHEMA_DIR,
       VALIDATE, FIXTURES, OLD_SNAPSHOTS, PYTHONPATH with the hook)

Real processes, dumped in-process and in fork mode:
- 200 MiB malloc'd through ctypes and touched: native_heap >= 190 MiB;
- 1M small dicts, 1 in 64 kept, gc.collect(): pymalloc_free is the biggest
  part and the sentence says fragmentation;
- 8 threads waiting: stacks > 0, 8 or more thread stacks found;
and on each: the parts before `other` add up to the RSS within 5%, the
RSS split is within 5% of VmRSS read by the program just before the dump,
--json validates against formats/summary.schema.json.
"""
import json
import os
import subprocess
import sys
import tempfile

HEAPSNAP = os.environ["HEAPSNAP"]
MAKE_SNAPSHOT = os.environ["MAKE_SNAPSHOT"]
SCHEMA = os.path.join(os.environ["SCHEMA_DIR"], "summary.schema.json")
VALIDATE = os.environ["VALIDATE"]
FIXTURES = os.environ["FIXTURES"]
OLD = os.environ["OLD_SNAPSHOTS"].split(",")
MiB = 1 << 20

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)
    return cond


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def summary(path):
    text = run([HEAPSNAP, "summary", path, "--top", "3"])
    js = run([HEAPSNAP, "summary", path, "--json", "--top", "3"])
    if not check(text.returncode == 0 and js.returncode == 0,
                 "summary %s: exit %d/%d: %s" % (path, text.returncode, js.returncode, text.stderr + js.stderr)):
        return None, None
    v = run(["/usr/bin/python3", VALIDATE, SCHEMA], input=js.stdout)
    if v.returncode == 77:
        print("note: jsonschema missing, --json not validated")
    else:
        check(v.returncode == 0, "summary --json of %s does not match the schema:\n%s" % (path, v.stdout))
    return text.stdout, json.loads(js.stdout)


def meta(path):
    r = run([HEAPSNAP, "info", path, "--json"])
    return json.loads(r.stdout)["meta"] if r.returncode == 0 else {}


def parts(js):
    return {p["name"]: p["bytes"] for p in js["memory"]["breakdown"]}


PRELUDE = r'''
import gc, sys, heapsnap
def vmrss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def dump():
    with open(sys.argv[1] + ".vmrss", "w") as f:
        f.write(str(vmrss()))
    heapsnap.dump(sys.argv[1], fork=sys.argv[2] == "fork")
'''

PROGRAMS = {
    "malloc200": r'''
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
n = 200 << 20
p = libc.malloc(n)
ctypes.memset(p, 1, n)
dump()
''',
    "fragmentation": r'''
tmp = [dict(a=i) for i in range(1000000)]
keep = tmp[::64]
del tmp
gc.collect()
dump()
''',
    "threads": r'''
import threading
ev = threading.Event()
ready = []
def work():
    ready.append(1)
    ev.wait()
ts = [threading.Thread(target=work) for _ in range(8)]
for t in ts:
    t.start()
while len(ready) < 8:
    pass
dump()
ev.set()
for t in ts:
    t.join()
''',
}


def real_case(tmp, name, mode):
    path = os.path.join(tmp, "%s-%s.hsnap" % (name, mode))
    prog = os.path.join(tmp, name + ".py")
    with open(prog, "w") as f:
        f.write(PRELUDE + PROGRAMS[name])
    r = run([sys.executable, prog, path, mode])
    label = "%s (%s)" % (name, mode)
    if not check(r.returncode == 0, "%s: the program failed: %s" % (label, r.stderr)):
        return
    m = meta(path)
    mem = m.get("memory", {})
    # the parent's figures are there in both modes
    check("arena_bytes" in mem.get("pymalloc", {}), "%s: META memory.pymalloc missing: %r" % (label, mem))
    check("in_use" in mem.get("malloc", {}), "%s: META memory.malloc missing: %r" % (label, mem))
    text, js = summary(path)
    if js is None:
        return
    if mode == "fork" and "maps" not in mem:
        # the child writes the mappings into META_END (hook/memory.h); until
        # fork.c calls it the breakdown says why it is missing
        check("the forked child did not record" in text, "%s: no maps and no reason:\n%s" % (label, text))
        print("note: %s: the forked child wrote no mappings (fork.c does not call "
              "hs_hook__memory_end_json): breakdown not checked" % label)
        return
    p = parts(js)
    rss = js["memory"]["breakdown_rss"]
    before_other = sum(v for k, v in p.items() if k != "other")
    check(abs(before_other - rss) <= 0.05 * rss,
          "%s: parts before other %d vs RSS %d: more than 5%% apart (%r)" % (label, before_other, rss, p))
    check(p["other"] + before_other - js["memory"]["breakdown_excess"] == rss,
          "%s: the parts do not add up to the RSS: %r" % (label, p))
    with open(path + ".vmrss") as f:
        vmrss = int(f.read())
    check(abs(rss - vmrss) <= 0.05 * vmrss, "%s: RSS split %d vs VmRSS %d" % (label, rss, vmrss))
    check("where the RSS goes" in text and js["memory"]["explanation"] in text,
          "%s: no table or sentence in the text:\n%s" % (label, text))
    if name == "malloc200":
        check(p["native_heap"] >= 190 * MiB, "%s: native_heap %d < 190 MiB (%r)" % (label, p["native_heap"], p))
        check(js["memory"]["explanation"].startswith("native heap"),
              "%s: sentence: %s" % (label, js["memory"]["explanation"]))
    elif name == "fragmentation":
        top = max((k for k in p if k != "python_objects"), key=lambda k: p[k])
        check(top == "pymalloc_free" and p["pymalloc_free"] > rss / 2,
              "%s: pymalloc_free is not the biggest part: %r" % (label, p))
        check("fragmentation" in js["memory"]["explanation"],
              "%s: sentence: %s" % (label, js["memory"]["explanation"]))
    elif name == "threads":
        check(p["stacks"] > 0, "%s: stacks 0: %r" % (label, p))
        check(mem["maps"]["thread_stacks"] >= 8 and mem["maps"]["thread_stack_rss"] > 0,
              "%s: thread stacks not found: %r" % (label, mem["maps"]))


def synthetic(tmp, name):
    src = os.path.join(FIXTURES, name + ".txt")
    out = os.path.join(tmp, name + ".hsnap")
    r = run([MAKE_SNAPSHOT, src, out])
    check(r.returncode == 0, "make_snapshot %s: %s" % (name, r.stderr))
    return out


def synthetic_cases(tmp):
    # exact figures: see fixtures/exact.txt
    text, js = summary(synthetic(tmp, "exact"))
    if js:
        want = {"python_objects": 1002000, "garbage": 1000, "native_buffers": 0,
                "interpreter": 1997000, "pymalloc_free": 2194304, "native_heap": 49000000,
                "native_free": 1000000, "libraries": 10000000, "stacks": 300000,
                "other": 39363296}
        check(parts(js) == want, "exact: %r != %r" % (parts(js), want))
        check([p["name"] for p in js["memory"]["breakdown"]][-1] == "other", "exact: other is not last")
        check(js["memory"]["size_model"] == "allocator", "exact: size model %r" % js["memory"]["size_model"])
        check(js["memory"]["breakdown_excess"] == 0 and js["memory"]["breakdown_untouched"] == 0,
              "exact: excess/untouched: %r" % js["memory"])
        check(js["memory"]["explanation"].startswith("native heap 46.7 MiB"),
              "exact: sentence %r" % js["memory"]["explanation"])
        check("sizes: allocator blocks (pymalloc size classes, malloc chunks, GC headers, inline values) "
              "and native buffers owned by objects" in text, "exact: no size-model line:\n" + text)
        check("warning" not in text, "exact: a warning:\n" + text)
    # the allocators claim 1 MB more than the anonymous RSS: malloc's free space was never touched
    text, js = summary(synthetic(tmp, "untouched"))
    if js:
        p = parts(js)
        check(p["native_free"] == 0 and js["memory"]["breakdown_untouched"] == 1000000,
              "untouched: %r %r" % (p, js["memory"]))
        check("was never touched" in text, "untouched: no note:\n" + text)
    # parts beyond the RSS are said, never hidden
    text, js = summary(synthetic(tmp, "excess"))
    if js:
        p = parts(js)
        check(p["other"] == 0 and js["memory"]["breakdown_excess"] == 5000000,
              "excess: %r %r" % (p, js["memory"]))
        check("warning: the parts exceed the RSS by 4.8 MiB" in text, "excess: no warning:\n" + text)
    # Python objects beyond the RSS: a warning, in text and JSON
    text, js = summary(synthetic(tmp, "objects-over-rss"))
    if js:
        check("warning: Python objects (4.9 KiB) exceed the RSS (1000 B)" in text,
              "objects-over-rss: no warning:\n" + text)
        check(len(js["memory"]["warnings"]) == 1 and "exceed the RSS" in js["memory"]["warnings"][0],
              "objects-over-rss: JSON warnings %r" % js["memory"]["warnings"])
        check(js["memory"]["breakdown_unavailable"] == "snapshot taken by an older hook", "objects-over-rss")
    # older snapshots still summarise
    for old in OLD:
        text, js = summary(old)
        if js:
            check("RSS breakdown unavailable (snapshot taken by an older hook)" in text,
                  "%s: no 'unavailable' line:\n%s" % (old, text))
            check("sizes: as sys.getsizeof reports (older snapshot)" in text, "%s: size model" % old)
            check("breakdown" not in js["memory"] and js["memory"]["size_model"] == "getsizeof", old)
    # --by module says what it groups by and where import cost is
    r = run([HEAPSNAP, "summary", OLD[0], "--by", "module"])
    check("by the module that defines their type" in r.stdout and "retained --by package" in r.stdout,
          "--by module header:\n" + r.stdout)


def main():
    with tempfile.TemporaryDirectory(prefix="hs-memory-") as tmp:
        synthetic_cases(tmp)
        for name in PROGRAMS:
            for mode in ("inproc", "fork"):
                real_case(tmp, name, mode)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
