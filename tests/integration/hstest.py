"""Shared helpers for the integration test drivers (tests/integration/run_*.py).

Every driver is run by ctest with the interpreter under test, takes the same
options (see `parser()`), and ends with `finish()`: exit 0 when every check
passed, 1 when one failed (each failure printed with what was expected and
what was found), 77 when the whole test is skipped (ctest SKIP_RETURN_CODE).
Works on Python 3.8+.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
SYSTEM_PYTHON = "/usr/bin/python3"

_failures = []
_checks = [0]


def parser(doc):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--cli", required=True, help="the heapsnap CLI")
    ap.add_argument("--build", required=True, help="the build directory (PYTHONPATH is BUILD/python)")
    ap.add_argument("--work", help="scratch directory (default: BUILD/tests/integration/<test>)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return ap


def setup(args, name):
    """Scratch dir for this test and interpreter, emptied first."""
    tag = "py%d.%d.%d" % sys.version_info[:3]
    work = args.work or os.path.join(args.build, "tests", "integration", "%s-%s-%s" % (
        name, tag, "system" if sys.executable.startswith("/usr/bin") else "pyenv"))
    if os.path.isdir(work):
        for root, dirs, _ in os.walk(work):
            for d in dirs:  # a case may leave a read-only directory behind
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(work)
    os.makedirs(work)
    os.chmod(work, 0o755)
    print("%s on %s (%s)" % (name, sys.executable, sys.version.split()[0]))
    print("scratch directory: %s" % work)
    return work


def env_for_hook(build):
    env = dict(os.environ)
    pp = os.path.join(build, "python")
    env["PYTHONPATH"] = pp + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONHOME", None)
    return env


def fixture(name):
    return os.path.join(ROOT, "fixtures", "programs", name)


def run(cmd, timeout=300, env=None, check_rc=None, **kw):
    """Run a command, print it and its timing; returns CompletedProcess with
    text stdout/stderr."""
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env, **kw)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    p.seconds = time.time() - t0
    print("$ %s  # exit %d, %.2f s" % (" ".join(quote(c) for c in cmd), p.returncode, p.seconds))
    if check_rc is not None and p.returncode != check_rc:
        fail("`%s` exited %d, expected %d" % (" ".join(quote(c) for c in cmd), p.returncode, check_rc),
             "stdout: %s\nstderr: %s" % (p.stdout[-2000:], p.stderr[-3000:]))
    return p


def quote(s):
    s = str(s)
    if s and all(c.isalnum() or c in "-_./=:,+@" for c in s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def run_fixture(build, argv, timeout=300):
    """Run a fixture program under this interpreter with the hook importable."""
    return run([sys.executable] + argv, timeout=timeout, env=env_for_hook(build))


def cli_json(cli, args, timeout=300, what=None):
    """Run `heapsnap ARGS --json`; returns the parsed document or None (the
    failure is recorded)."""
    p = run([cli] + args + ["--json"], timeout=timeout)
    what = what or "heapsnap %s --json" % args[0]
    if p.returncode != 0:
        fail("%s exited %d" % (what, p.returncode), "stderr: %s" % p.stderr[-2000:])
        return None
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        fail("%s printed invalid JSON: %s" % (what, e), p.stdout[:1000])
        return None


def schema_path(name):
    return os.path.join(ROOT, "formats", name)


def validate(doc, schema_name, what):
    """Validate `doc` against formats/<schema_name> with jsonschema, run by
    /usr/bin/python3 (the interpreter that has python3-jsonschema). A schema
    not written yet is reported, not failed."""
    path = schema_path(schema_name)
    if not os.path.exists(path):
        note("no %s yet: %s not validated" % (schema_name, what))
        return
    if not os.path.exists(SYSTEM_PYTHON):
        note("no %s: %s not validated" % (SYSTEM_PYTHON, what))
        return
    p = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "validate_json.py"), path],
                       input=json.dumps(doc).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode == SKIP:
        note("%s: %s" % (what, p.stdout.decode().strip()))
        return
    check(p.returncode == 0, "%s validates against formats/%s" % (what, schema_name),
          (p.stdout + p.stderr).decode("utf-8", "replace")[-3000:])


def check(cond, what, detail=""):
    """Record one check: `what` is the behaviour, stated positively."""
    if cond:
        _checks[0] += 1
        print("ok   %s" % what)
    else:
        fail(what, detail)
    return bool(cond)


def equal(found, expected, what):
    return check(found == expected, "%s: %r" % (what, expected),
                 "expected %r, found %r" % (expected, found))


def fail(what, detail=""):
    _failures.append(what)
    print("FAIL %s" % what)
    if detail:
        for line in str(detail).splitlines():
            print("     %s" % line)


def note(msg):
    print("note %s" % msg)


def skip(reason):
    print("SKIP: %s" % reason)
    sys.exit(SKIP)


def finish():
    f = len(_failures)
    print("%d passed, %d failed" % (_checks[0], f))
    if f:
        print("failures:")
        for w in _failures:
            print("  - %s" % w)
    sys.exit(1 if f else 0)


def hook_importable(build):
    """None when `import heapsnap` works under this interpreter with the
    build's package, else the reason."""
    p = subprocess.run([sys.executable, "-c", "import heapsnap, sys; heapsnap.dump; print(heapsnap.__file__)"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_hook(build))
    if p.returncode != 0:
        return p.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["import failed"]
    return None


def require_hook(build):
    why = hook_importable(build)
    if why:
        fail("the hook imports under %s" % sys.executable, "\n".join(why))
        finish()


# ---------------------------------------------------------------- JSON access
# The CLI's JSON schemas (formats/*.schema.json) are written by the analyzer
# engineer; these accessors read the documented fields and say clearly when
# one is missing.

def rows_by_name(doc, key_candidates=("rows", "types", "by_type")):
    if doc is None:
        return {}
    for k in key_candidates:
        if isinstance(doc.get(k), list):
            return {r.get("name", r.get("type")): r for r in doc[k]}
    fail("JSON document has a list of rows", "keys: %s" % sorted(doc))
    return {}
