"""How much memory a heap holds, by heapsnap and by its peers, against the truth.

usage: python3 tests/bench/bench_sizes.py --cli build/heapsnap --python VENV/bin/python
       [--build build] [--only instances,pandas,torch] [--json FILE]

VENV is a venv with the libraries and the peers (torch from
/opt/wheels, numpy, pandas, memray, pympler, guppy3):

    python3.11 -m venv VENV
    VENV/bin/pip install /opt/wheels/torch-2.13.0+cpu-*.whl numpy pandas memray pympler guppy3

For each heap, a fresh process builds it and measures, in this order:
  truth       what the heap is known to hold: tracemalloc's growth while
              building it (instances: every byte is a Python allocation), and
              the same traces with each block rounded as the allocator rounds
              it (the reference for the ratios), the
              library's own byte counts (torch: storages' nbytes; pandas:
              DataFrame.memory_usage(deep=True) and deep=False), RSS growth.
  heapsnap    `heapsnap diff before after --json` total growth (in-process
              dump and fork dump), and the dump's wall and CPU seconds (fork:
              the caller's pause only; a child walks and writes).
  tracemalloc growth of traced memory while building (the build slows down).
  pympler     asizeof.asizeof(root): its time and answer.
  guppy3      hpy().heap() growth since setrelheap() before the build.
  memray      `memray run` of the build: the peak it reports (memray tracks
              allocations; it cannot list what is live at a moment).
Each tool runs in its own process (they disturb one another). Prints a
Markdown table per heap: bytes, ratio to the truth, wall and CPU seconds.
Not a pass/fail test.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HEAPS = {}

HEAPS["instances"] = r'''
N = 400_000
class Rec:
    def __init__(self, i):
        self.a = i
        self.b = i + 1.5
        self.c = None
def build():
    return [Rec(i) for i in range(N)]
def truth(root):
    return {}
'''

HEAPS["pandas"] = r'''
import numpy as np, pandas as pd
N = 2_000_000
def build():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "id": np.arange(N, dtype=np.int64),
        "amount": rng.random(N),
        "qty": rng.integers(0, 100, N).astype(np.int32),
        "city": pd.Series(rng.choice(["Paris", "Lyon", "Nice", "Lille"], N)).astype(object),
    })
    df["total"] = df["amount"] * df["qty"]
    out = df[df["qty"] > 10].groupby("city").agg({"total": "sum", "qty": "mean"})
    return [df, out]
def truth(root):
    df = root[0]
    return {"memory_usage(deep=True)": int(df.memory_usage(deep=True).sum()),
            "memory_usage(deep=False)": int(df.memory_usage(deep=False).sum())}
'''

HEAPS["torch"] = r'''
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
def build():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(),
        torch.nn.Linear(64 * 64, 4096), torch.nn.ReLU(),
        torch.nn.Linear(4096, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(16, 3, 32, 32)
    y = torch.randint(0, 10, (16,))
    for _ in range(2):
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return [model, opt, x, y]
def truth(root):
    model, opt = root[0], root[1]
    params = sum(p.untyped_storage().nbytes() for p in model.parameters())
    grads = sum(p.grad.untyped_storage().nbytes() for p in model.parameters() if p.grad is not None)
    state = 0
    for st in opt.state.values():
        for v in st.values():
            if torch.is_tensor(v):
                state += v.untyped_storage().nbytes()
    inputs = sum(t.untyped_storage().nbytes() for t in root[2:])
    # torch's CPU allocator does not report to tracemalloc: the storages
    # are added to tracemalloc's figure to make the reference
    return {"parameters": params, "gradients": grads, "adam state": state,
            "unseen by tracemalloc": params + grads + state + inputs}
'''

DRIVER = r'''
import gc, json, os, resource, sys, time
MODE = sys.argv[1]; OUT = sys.argv[2]
exec(compile(open(sys.argv[3]).read(), "heap", "exec"))
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
res = {}
gc.collect()
if MODE == "truth":
    import tracemalloc
    r0 = rss(); tracemalloc.start(); gc.collect()
    t0 = tracemalloc.get_traced_memory()[0]
    snap0 = tracemalloc.take_snapshot()
    root = build(); gc.collect()
    res["tracemalloc growth"] = tracemalloc.get_traced_memory()[0] - t0
    # the same blocks as the allocator holds them: pymalloc's 16-byte
    # classes up to 512 B, glibc chunks above (page-rounded from 128 KiB)
    def block(n):
        if n <= 512:
            return max(16, (n + 15) & ~15)
        if n >= 128 * 1024:
            return (n + 16 + 4095) & ~4095
        return max(32, (n + 8 + 15) & ~15)
    def blocks(snap):
        return sum(block(t.size) for t in snap.traces)
    snap1 = tracemalloc.take_snapshot()
    res["tracemalloc growth, blocks rounded"] = blocks(snap1) - blocks(snap0)
    del snap0, snap1
    tracemalloc.stop()
    res["RSS growth"] = rss() - r0
    res.update(truth(root))
elif MODE in ("heapsnap", "heapsnap-fork"):
    import heapsnap
    fork = MODE == "heapsnap-fork"
    heapsnap.dump(OUT + ".before.hsnap", fork=fork)
    root = build(); gc.collect()
    w0, c0 = time.perf_counter(), cpu()
    heapsnap.dump(OUT + ".after.hsnap", fork=fork)
    res["wall"] = time.perf_counter() - w0; res["cpu"] = cpu() - c0
elif MODE == "tracemalloc":
    import tracemalloc
    root0 = None
    tracemalloc.start(); gc.collect()
    t0 = tracemalloc.get_traced_memory()[0]
    w0, c0 = time.perf_counter(), cpu()
    root = build(); gc.collect()
    res["wall"] = time.perf_counter() - w0; res["cpu"] = cpu() - c0
    res["bytes"] = tracemalloc.get_traced_memory()[0] - t0
    res["note"] = "wall/CPU: the build under tracing"
elif MODE == "build":
    w0, c0 = time.perf_counter(), cpu()
    root = build(); gc.collect()
    res["wall"] = time.perf_counter() - w0; res["cpu"] = cpu() - c0
elif MODE == "pympler":
    from pympler import asizeof
    root = build(); gc.collect()
    w0, c0 = time.perf_counter(), cpu()
    res["bytes"] = asizeof.asizeof(root)
    res["wall"] = time.perf_counter() - w0; res["cpu"] = cpu() - c0
elif MODE == "guppy3":
    from guppy import hpy
    h = hpy(); h.setrelheap()
    root = build(); gc.collect()
    w0, c0 = time.perf_counter(), cpu()
    res["bytes"] = h.heap().size
    res["wall"] = time.perf_counter() - w0; res["cpu"] = cpu() - c0
elif MODE == "memray":
    root = build(); gc.collect()
with open(OUT, "w") as f:
    json.dump(res, f)
'''


def run(py, args, env=None, timeout=1800):
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([py] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=timeout)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - t0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return p.returncode, p.stdout.decode("utf-8", "replace"), wall, cpu


def human(n):
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--build", default=None, help="build dir whose python/ has the hook (default: the CLI's)")
    ap.add_argument("--only", default="instances,pandas,torch")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    build = os.path.abspath(a.build or os.path.dirname(os.path.abspath(a.cli)))
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"), PYTHONDONTWRITEBYTECODE="1")
    work = tempfile.mkdtemp(prefix="heapsnap-bench-sizes-")
    driver = os.path.join(work, "driver.py")
    with open(driver, "w") as f:
        f.write(DRIVER)
    venv_bin = os.path.dirname(a.python)
    all_results = {}
    for name in a.only.split(","):
        heap = os.path.join(work, "heap_" + name + ".py")
        with open(heap, "w") as f:
            f.write(HEAPS[name])
        res = {}

        def mode(m):
            out = os.path.join(work, "%s-%s.json" % (name, m))
            rc, text, wall, cpu = run(a.python, [driver, m, out, heap], env=env)
            if rc != 0:
                print("  %s/%s failed (%d): %s" % (name, m, rc, text[-400:].strip()), flush=True)
                return None
            with open(out) as f:
                return json.load(f)

        print("== %s" % name, flush=True)
        res["truth"] = mode("truth")
        res["build"] = mode("build")
        for m in ("heapsnap", "heapsnap-fork"):
            r = mode(m)
            if r is not None:
                out = os.path.join(work, "%s-%s.json" % (name, m))
                p = subprocess.run([a.cli, "diff", out + ".before.hsnap", out + ".after.hsnap", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                try:
                    d = json.loads(p.stdout)
                    r["bytes"] = d["total"]["bytes_delta"]
                except (ValueError, KeyError):
                    r["note"] = "diff failed: " + p.stderr.decode()[-200:]
            res[m] = r
        res["tracemalloc"] = mode("tracemalloc")
        res["pympler"] = mode("pympler")
        res["guppy3"] = mode("guppy3")
        memray = os.path.join(venv_bin, "memray")
        if os.path.exists(memray):
            bin_out = os.path.join(work, name + ".memray.bin")
            rc, text, wall, cpu = run(memray, ["run", "-q", "-f", "-o", bin_out, driver, "memray",
                                               os.path.join(work, name + "-memray.json"), heap], env=env)
            r = {"wall": wall, "cpu": cpu, "note": "whole run under tracking; bytes = peak"}
            st = subprocess.run([memray, "stats", "--json", "-f", "-o", bin_out + ".stats.json", bin_out],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            try:
                with open(bin_out + ".stats.json") as f:
                    s = json.load(f)
                r["bytes"] = s.get("metadata", {}).get("peak_memory")
            except (OSError, ValueError):
                r["note"] = "memray stats failed: " + st.stdout.decode()[-200:]
            res["memray"] = r
        else:
            res["memray"] = None
        all_results[name] = res
        truth = res["truth"] or {}
        print("\n### %s\n" % name)
        print("truth: " + ", ".join("%s %s" % (k, human(v)) for k, v in truth.items()))
        ref = truth.get("tracemalloc growth, blocks rounded")
        if ref is not None:
            ref += truth.get("unseen by tracemalloc", 0)
            print("reference: tracemalloc's blocks rounded + what it cannot see = %s" % human(ref))
        print("\n| tool | bytes | / reference | wall s | CPU s |\n|---|---:|---:|---:|---:|")
        for tool in ("heapsnap", "heapsnap-fork", "tracemalloc", "pympler", "guppy3", "memray"):
            r = res.get(tool)
            if not r:
                print("| %s | failed | | | |" % tool)
                continue
            b = r.get("bytes")
            ratio = ("%.2f" % (b / ref)) if b and ref else "—"
            print("| %s | %s | %s | %.2f | %.2f |" % (tool, human(b), ratio, r.get("wall", 0), r.get("cpu", 0)))
        b = res.get("build") or {}
        print("\nbuild alone: %.2f s wall, %.2f s CPU" % (b.get("wall", 0), b.get("cpu", 0)), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(all_results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
