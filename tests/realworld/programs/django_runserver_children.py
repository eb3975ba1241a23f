"""`python manage.py runserver` (Django's autoreloader: a parent that runs
the server again as a child process, RUN_MAIN=true, and restarts it on code
changes; neither imports anything of ours) snapshotted whole with
`heapsnap dump PARENT --children` while idle, then again under request load:
the index has the parent and the child with their memory, `summary` of the
index adds up PSS, the child's snapshot holds exactly the objects its view
cached and the parent's none, and both go on working untraced."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import rwcheck as R
import live as L

FILES = {
    "rwsite/__init__.py": "",
    "rwsite/settings.py": r'''
SECRET_KEY = "heapsnap-realworld"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "rwsite.urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
''',
    "rwsite/views.py": r'''
import os
from django.http import JsonResponse

class RwDjangoCacheXyz:
    def __init__(self, n):
        self.n = n
        self.payload = "payload-%06d" % n

CACHE = []

def add(request, k):
    CACHE.extend(RwDjangoCacheXyz(len(CACHE) + i) for i in range(k))
    return JsonResponse({"pid": os.getpid(), "cached": len(CACHE)})
''',
    "rwsite/urls.py": r'''
from django.urls import path
from rwsite import views
urlpatterns = [path("add/<int:k>", views.add)]
''',
    "manage.py": r'''
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rwsite.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
''',
}

work = R.WORK
for name, text in FILES.items():
    os.makedirs(os.path.dirname(os.path.join(work, name)), exist_ok=True)
    open(os.path.join(work, name), "w").write(text)
port = L.free_port()
url = "http://127.0.0.1:%d" % port
parent = subprocess.Popen([sys.executable, "manage.py", "runserver", "127.0.0.1:%d" % port],
                          env=L.target_env(), cwd=work, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
err_lines = []
threading.Thread(target=lambda: err_lines.extend(parent.stderr), daemon=True).start()


def add(k):
    code, body = L.get("%s/add/%d" % (url, k))
    d = json.loads(body)
    R.check(code == 200, "/add answers %d" % code)
    return d["pid"], d["cached"]


def check_set(idx, child, cached, exact):
    """The index at idx: parent + child, their memory, the child's cache."""
    ix = json.load(open(idx))
    L.validate(ix, "index")
    procs = {p["pid"]: p for p in ix.get("processes", [])}
    R.check(set(procs) == {parent.pid, child}, "%s: the index has the parent %d and the child %d: %r"
            % (os.path.basename(idx), parent.pid, child, sorted(procs)))
    s = L.run_json("summary", idx, "--top", "0")
    L.validate(s, "summary-set")
    rows = {p["pid"]: p for p in s.get("processes", [])}
    R.check(set(rows) == {parent.pid, child}, "summary: both processes: %r" % sorted(rows))
    R.check(not s.get("not_snapshotted"), "summary: nothing left out: %r" % s.get("not_snapshotted"))
    if child in rows:
        R.check(rows[child]["ppid"] == parent.pid, "summary: the child's parent is %d: %r"
                % (parent.pid, rows[child]["ppid"]))
    pss = [p.get("memory", {}).get("pss") for p in rows.values()]
    R.check(all(isinstance(x, int) and x > 1 << 20 for x in pss), "summary: PSS of each process: %r" % pss)
    tot = (s.get("total", {}).get("memory") or {}).get("pss")
    R.check(tot == sum(x for x in pss if isinstance(x, int)), "summary: the PSS total %r is the sum %r" % (tot, pss))
    R.check(s.get("total", {}).get("count") == sum(p["count"] for p in rows.values()),
            "summary: the object total is the sum of the processes")
    for pid, want in ((parent.pid, 0), (child, cached)):
        if pid not in procs:
            continue
        snap = os.path.join(os.path.dirname(idx), procs[pid]["file"])
        one = L.run_json("summary", snap, "--top", "0")
        n = L.type_count(one, "RwDjangoCacheXyz")
        if exact or pid == parent.pid:
            R.check(n == want, "%s (pid %d) holds %d cached objects: %d" % (procs[pid]["file"], pid, want, n))
        else:
            R.check(want[0] <= n <= want[1], "%s (pid %d) holds %d-%d cached objects: %d"
                    % (procs[pid]["file"], pid, want[0], want[1], n))
        R.check(L.tracer(pid) == 0, "pid %d is not traced after the dump" % pid)


try:
    if not L.wait_http(url + "/add/0", parent, 90):
        R.fail("runserver did not start: %s" % "".join(err_lines)[-1500:])
        R.done()
    child, cached = add(25)
    R.check(child != parent.pid and L.children_of(parent.pid) == [child],
            "the server runs in the autoreloader's child %d: %r" % (child, L.children_of(parent.pid)))
    idx = os.path.join(work, "idle.hsidx")
    t0 = time.monotonic()
    rc, out, err = L.run("dump", parent.pid, "--children", "-o", idx, timeout=180)
    print("dump --children (idle): %.2f s" % (time.monotonic() - t0))
    if R.check(rc == 0 and os.path.exists(idx), "dump --children exits 0: %s" % err[-500:]):
        check_set(idx, child, cached, True)
    R.check(add(5) == (child, cached + 5), "the server answers after the dump")

    # under load (4 clients), in-process walks (--no-fork)
    stop_load = threading.Event()
    errors = []

    def client():
        while not stop_load.is_set():
            try:
                add(1)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                time.sleep(0.05)
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    _, before = add(0)
    idx2 = os.path.join(work, "busy.hsidx")
    rc, out, err = L.run("dump", parent.pid, "--children", "--no-fork", "-o", idx2, timeout=180)
    _, after = add(0)
    stop_load.set()
    for t in ts:
        t.join(30)
    R.check(not errors, "requests during the dump: %d failed, first %r" % (len(errors), errors[:3]))
    if R.check(rc == 0 and os.path.exists(idx2), "dump --children --no-fork under load exits 0: %s" % err[-500:]):
        check_set(idx2, child, (before, after), False)
        d = L.run_json("diff", idx, idx2)
        L.validate(d, "diff-set")
        R.check(str(after - cached - 5) in json.dumps(d) or "RwDjangoCacheXyz" in json.dumps(d),
                "diff of the two sets names the cache's growth")
    _, now = add(0)
    R.check(parent.poll() is None and L.children_of(parent.pid) == [child],
            "the autoreloader and its server still run: %r" % L.children_of(parent.pid))
finally:
    try:
        os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C in the terminal
    except ProcessLookupError:
        pass
    try:
        rc = parent.wait(30)
    except subprocess.TimeoutExpired:
        R.fail("runserver did not stop on Ctrl-C")
        os.killpg(parent.pid, signal.SIGKILL)
        rc = parent.wait()
R.check(rc in (0, -signal.SIGINT), "runserver stops on Ctrl-C: %r; %s" % (rc, "".join(err_lines)[-500:]))
R.check("Traceback" not in "".join(err_lines), "no traceback from runserver: %s" % "".join(err_lines)[-1500:])
R.done()
