"""Integration test: a real program's heap (Flask + SQLAlchemy, fixtures/programs/real_app.py).

Runs in BUILD/venv-it (tests/integration/setup_venv.py: /usr/bin/python3 and
pinned packages; skipped with the reason when they cannot be had). Checks
that the dump of a heap full of third-party C and Python objects reads back,
that the users and posts loaded into a Session are counted exactly, that the
diff shows them as new, and that they are reachable from the roots.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hstest as T  # noqa: E402
import hsnap  # noqa: E402
from run_hook_cases import reachable  # noqa: E402


def main():
    args = T.parser(__doc__).parse_args()
    work = T.setup(args, "real_program")
    p = T.run([T.SYSTEM_PYTHON, os.path.join(T.HERE, "setup_venv.py"), args.build], timeout=900)
    if p.returncode == T.SKIP:
        T.skip(p.stdout.strip().splitlines()[-1])
    if p.returncode != 0:
        T.skip("setup_venv.py failed (exit %d): %s" % (p.returncode, (p.stdout + p.stderr)[-500:]))
    py = p.stdout.strip().splitlines()[-1]
    p = T.run([py, "-c", "import heapsnap"], env=T.env_for_hook(args.build))
    if not T.check(p.returncode == 0, "the hook imports in the venv (%s)" % py, p.stderr[-1000:]):
        T.finish()
    p = T.run([py, T.fixture("real_app.py"), work], env=T.env_for_hook(args.build), timeout=300)
    if not T.check(p.returncode == 0, "real_app.py (Flask + SQLAlchemy) dumps twice", p.stdout[-1000:] + p.stderr[-3000:]):
        T.finish()
    res = json.load(open(os.path.join(work, "result.json")))
    T.equal(res["status"], 200, "the app served a request before the dump")
    before, after = res["snapshots"]["before"], res["snapshots"]["after"]
    users, posts = res["users"], res["posts"]
    summ = T.cli_json(args.cli, ["summary", "--top", "0", after])
    if summ is not None:
        T.validate(summ, "summary.schema.json", "summary --json")
        rows = T.rows_by_name(summ)
        T.equal((rows.get(res["user_type"]) or {}).get("count"), users, "summary: %d %s" % (users, res["user_type"]))
        T.equal((rows.get(res["post_type"]) or {}).get("count"), posts, "summary: %d %s" % (posts, res["post_type"]))
        T.equal((rows.get("flask.app.Flask") or {}).get("count"), 1, "summary: one flask.app.Flask")
        st = (rows.get("sqlalchemy.orm.state.InstanceState") or {}).get("count") or 0
        T.check(st >= users + posts, "summary: an InstanceState per loaded object (>= %d)" % (users + posts),
                "found %d" % st)
        print("after: %d objects, %d bytes, %d types" % (summ["total"]["count"], summ["total"]["bytes"],
                                                         summ["total"]["groups"]))
    diff = T.cli_json(args.cli, ["diff", "--top", "0", before, after])
    if diff is not None:
        T.validate(diff, "diff.schema.json", "diff --json")
        rows = T.rows_by_name(diff)
        r = rows.get(res["user_type"]) or {}
        T.equal(r.get("count_b"), users, "diff: %d users in the second dump" % users)
        # a User left from the served request may be in A; its address may be reused in B
        T.check((r.get("new_count") or 0) >= users - (r.get("count_a") or 0),
                "diff: the loaded users are new in the second dump", "row %r" % r)
    info = T.cli_json(args.cli, ["info", after])
    if info is not None:
        T.validate(info, "info.schema.json", "info --json")
        dang = (info.get("counts") or {}).get("dangling")
        T.equal(dang, {"references": 0, "keys": 0, "roots": 0}, "info: no dangling references in a real heap")
    s = hsnap.read(after)
    reach = reachable(s)
    T.check(all(a in reach for a in res["user_ids"]), "loaded users are reachable from the roots")
    sizes = json.load(open(os.path.join(work, "sizes.json")))
    compared = 0
    bad = []
    for k, v in sizes.items():
        n = s.nodes.get(int(k))
        if n is None:
            continue
        reported = s.getsizeof(n)  # format 1.1: node sizes are allocator bytes
        if reported is None:
            continue  # a Python-level __sizeof__: never called
        compared += 1
        if reported != v:
            bad.append((s.type_name(n), reported, v))
    T.check(compared > 0.9 * len(s.by_type("dict")), "getsizeof figures compared for the GC-tracked objects (%d)" % compared)
    by_type = {}
    for t, a, b in bad:
        by_type.setdefault(t, []).append((a, b))
    T.check(len(bad) <= 5, "the snapshot's getsizeof figures equal sys.getsizeof for every GC-tracked object of a real heap "
            "(at most 5 objects changed after the dump)",
            "%d differ; by type (snapshot, getsizeof): %r" % (len(bad), {t: v[:3] for t, v in sorted(by_type.items())[:15]}))
    T.finish()


if __name__ == "__main__":
    main()
