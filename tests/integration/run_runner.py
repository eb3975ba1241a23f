"""Integration test: `heapsnap run` and `python -m heapsnap` under this interpreter.

Checks: a snapshot at exit by default; the script's exit status passed
through (0, 3, and 1 when it raises); sys.argv as the script expects;
`--every 0.2` takes periodic snapshots (counted, never timed); `--signal USR1` takes one per signal,
whether the signal is sent to `heapsnap run` (forwarded) or to the Python
process; `python -m heapsnap._runner` directly; `python -m heapsnap --help`
forwards to the CLI; usage errors exit 129.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402

TARGET = T.fixture("run_target.py")


def snapshots(d):
    return sorted(glob.glob(os.path.join(d, "*.hsnap")))


def markers_in(path):
    try:
        s = hsnap.read(path)
    except Exception as e:
        T.fail("hsnap.py reads %s" % path, "%s: %s" % (type(e).__name__, e))
        return None
    return sum(1 for n in s.nodes.values() if s.type_name(n).endswith("RunMarker"))


def run_cli(args, out, *cmd, timeout=120):
    return T.run([args.cli, "run", "--python", sys.executable, "-o", out] + list(cmd), timeout=timeout)


def test_exit_status(args, work):
    for code in (0, 3):
        out = os.path.join(work, "exit%d" % code)
        os.makedirs(out)
        p = run_cli(args, out, "--", TARGET, "exit", str(code))
        T.equal(p.returncode, code, "run: exit status %d is passed through" % code)
        snaps = snapshots(out)
        T.equal(len(snaps), 1, "run: one snapshot at exit (status %d)" % code)
        if snaps:
            T.equal(markers_in(snaps[0]), 42, "run: the at-exit snapshot holds the script's 42 RunMarker objects")
            T.equal(os.stat(snaps[0]).st_mode & 0o777, 0o600, "run: snapshot mode 0600")
        T.equal([f for f in os.listdir(out) if ".tmp" in f], [], "run: no temporary files left")
    out = os.path.join(work, "raise")
    os.makedirs(out)
    p = run_cli(args, out, "--", TARGET, "raise")
    T.equal(p.returncode, 1, "run: a script that raises exits 1")
    T.check("ValueError: run_target asked to raise" in p.stderr, "run: the traceback reaches stderr",
            p.stderr[-1500:])
    T.equal(len(snapshots(out)), 1, "run: a snapshot is still taken at exit when the script raises")


def test_argv(args, work):
    out = os.path.join(work, "argv")
    os.makedirs(out)
    p = run_cli(args, out, "--", TARGET, "argv", "a", "b c", "--out", "-o")
    try:
        argv = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        argv = p.stdout
    T.equal(argv, [TARGET, "argv", "a", "b c", "--out", "-o"],
            "run: the script sees its own sys.argv (options after -- untouched)")
    T.equal(p.returncode, 0, "run: argv case exits 0")


def test_every(args, work):
    out = os.path.join(work, "every")
    os.makedirs(out)
    # the script ends once it sees 3 periodic snapshots (work done, not time:
    # a loaded machine takes longer, never fails; 600 s is a hang detector)
    p = run_cli(args, out, "--every", "0.2", "--", TARGET, "snapshots", out, "3", timeout=900)
    T.equal(p.returncode, 0, "run --every: exit 0 (the script saw its 3 snapshots)")
    n = len(snapshots(out))
    T.check(n >= 3, "run --every 0.2: periodic snapshots (3 or more)", "found %d: %r" % (n, os.listdir(out)))
    T.equal([f for f in os.listdir(out) if ".tmp" in f], [], "run --every: no temporary files left")
    sizes = [os.path.getsize(f) for f in snapshots(out)]
    T.check(all(s > 56 for s in sizes), "run --every: every snapshot is complete", "sizes %r" % sizes)


def test_every_exit_mid_dump(args, work):
    # Dumps of a bigger heap back to back: the script ends while one is being
    # written. It must be finished or abandoned cleanly: no temporary file,
    # no truncated snapshot.
    for i in range(2):
        out = os.path.join(work, "every-busy%d" % i)
        os.makedirs(out)
        p = run_cli(args, out, "--every", "0.02", "--", TARGET, "busy-snapshots", out, "2", timeout=900)
        T.equal(p.returncode, 0, "run --every (busy heap): exit 0")
        left = [f for f in os.listdir(out) if ".tmp" in f]
        T.equal(left, [], "run --every: the script ending during a periodic dump leaves no temporary file")
        bad = []
        snaps = snapshots(out)
        for f in snaps:
            q = T.run([args.cli, "info", f], timeout=60)
            if q.returncode != 0:
                bad.append(q.stderr.strip())
        T.check(len(snaps) >= 2, "run --every 0.02: several snapshots", "found %d" % len(snaps))
        T.equal(bad, [], "run --every: every snapshot left is complete (heapsnap info reads it)")


def wait_for(pred, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_signal(args, work):
    out = os.path.join(work, "signal")
    os.makedirs(out)
    ready = os.path.join(work, "signal.ready")
    cmd = [args.cli, "run", "--python", sys.executable, "-o", out, "--signal", "USR1", "--", TARGET, "signal", ready]
    print("$ %s &" % " ".join(T.quote(c) for c in cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # waits bounded generously: hang detectors, not time limits
        if not T.check(wait_for(lambda: os.path.exists(ready) and open(ready).read().strip(), 600),
                       "run --signal: the script starts"):
            return
        child = int(open(ready).read().strip())
        os.kill(proc.pid, signal.SIGUSR1)  # to `heapsnap run`: forwarded to the child
        T.check(wait_for(lambda: len(snapshots(out)) >= 1, 600),
                "run --signal USR1: a signal sent to `heapsnap run` is forwarded and takes a snapshot",
                "snapshots: %r" % os.listdir(out))
        time.sleep(0.3)
        os.kill(child, signal.SIGUSR1)  # straight to the Python process
        T.check(wait_for(lambda: len(snapshots(out)) >= 2, 600),
                "run --signal USR1: a signal sent to the Python process takes a second snapshot",
                "snapshots: %r" % os.listdir(out))
    finally:
        open(ready + ".done", "w").close()
        try:
            so, se = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
            T.fail("run --signal: the script ends when told to")
    T.equal(proc.returncode, 0, "run --signal: exit 0 (stderr: %s)" % se.decode("utf-8", "replace")[-300:].strip())
    T.equal(len(snapshots(out)), 2, "run --signal without --at-exit: exactly one snapshot per signal, none at exit")
    for f in snapshots(out):
        T.equal(markers_in(f), 42, "run --signal: %s holds the 42 RunMarker objects" % os.path.basename(f))


def test_runner_module(args, work):
    out = os.path.join(work, "runner")
    os.makedirs(out)
    env = T.env_for_hook(args.build)
    p = T.run([sys.executable, "-m", "heapsnap._runner", "--out", out, "--at-exit", "--", TARGET, "exit", "5"], env=env)
    T.equal(p.returncode, 5, "python -m heapsnap._runner passes the exit status through")
    T.equal(len(snapshots(out)), 1, "python -m heapsnap._runner --at-exit: one snapshot")
    p = T.run([sys.executable, "-m", "heapsnap._runner", "--out", out, "--collect", "--at-exit", "--", TARGET, "exit", "0"],
              env=env)
    T.equal(p.returncode, 0, "python -m heapsnap._runner --collect: exit 0")
    T.equal(len(snapshots(out)), 2, "python -m heapsnap._runner --collect: a second, distinctly named snapshot")


def test_help(args, work):
    env = T.env_for_hook(args.build)
    p = T.run([sys.executable, "-m", "heapsnap", "--help"], env=env)
    T.equal(p.returncode, 0, "python -m heapsnap --help exits 0")
    text = p.stdout + p.stderr
    T.check("usage" in text.lower() and "summary" in text and "diff" in text,
            "python -m heapsnap --help prints the CLI's help (usage, summary, diff)", text[:1500])
    direct = T.run([args.cli, "--help"])
    T.equal(p.stdout, direct.stdout, "python -m heapsnap --help prints what `heapsnap --help` prints")
    p = T.run([args.cli, "run"])
    T.equal(p.returncode, 129, "heapsnap run without a script is a usage error (129)")
    p = T.run([args.cli, "run", "--every", "zero", "--", TARGET])
    T.equal(p.returncode, 129, "heapsnap run --every zero is a usage error (129)")
    for sig in ("SEGV", "SIGBUS", "11", "6", "KILL"):
        # a crash signal caught by a snapshot handler would make a real crash spin
        p = T.run([args.cli, "run", "--signal", sig, "--", TARGET])
        T.equal(p.returncode, 129, "heapsnap run --signal %s is refused (129)" % sig)
        T.check("--signal expects one of" in p.stderr, "heapsnap run --signal %s says what is allowed" % sig,
                p.stderr)
    p = T.run([args.cli, "run", "--python", "/no/such/python", "--", TARGET])
    T.equal(p.returncode, 2, "heapsnap run with a missing interpreter exits 2")
    T.check("/no/such/python" in p.stderr and len([l for l in p.stderr.splitlines() if l.strip()]) == 1,
            "... with one error line naming it", p.stderr)


def main():
    args = T.parser(__doc__).parse_args()
    work = T.setup(args, "runner")
    T.require_hook(args.build)
    for t in (test_exit_status, test_argv, test_every, test_every_exit_mid_dump, test_signal, test_runner_module, test_help):
        print("--- %s" % t.__name__)
        try:
            t(args, work)
        except subprocess.TimeoutExpired as e:
            T.fail("%s: a command timed out" % t.__name__, str(e))
    T.finish()


if __name__ == "__main__":
    main()
