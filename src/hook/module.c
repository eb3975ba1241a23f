/*
 * hook/module.c: the `heapsnap._heapsnap` extension module and dump().
 *
 * Order of a dump, and why:
 *   1. optional gc.collect() (may run finalizers: before anything else);
 *   2. metadata and thread names (meta.c) - the only Python-level calls,
 *      whose objects are all released before the walk starts;
 *   3. cyclic GC disabled (restored on every path), writer opened on a
 *      temporary name, META written, heap walked (walk.c);
 *   4. the GIL is released while the writer finishes compressing, writes
 *      the index and renames the file (no Python object is touched then);
 *   5. the result dict is built last, so it is not in the snapshot.
 */
#include "hook_internal.h"
#include "stats_internal.h"
#include "track_export.h"
#include "native.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heapsnap/errors.h"

static int in_dump; /* a __sizeof__ or finalizer calling dump() again */
static unsigned long dump_thread; /* the thread that set in_dump */

/*
 * A collection or a dump in another thread lets this thread run while it
 * runs Python code (finalizers, metadata reads): a server's worker thread
 * calling dump() then must wait for it, with the GIL released, not fail.
 * When no other thread exists, or the dump is this thread's own, or the
 * collection still runs after 2 s, the caller is inside it (a finalizer or
 * a gc callback): @return -1 and let the caller refuse, else 0.
 */
static int wait_for_other_threads(void)
{
	PyThreadState *me = PyThreadState_Get();
	double end = hs_hook__now() + 2.0;
	for (;;) {
		int dumping = in_dump && dump_thread != PyThread_get_thread_ident();
		int collecting = hs_hook__gc_collecting();
		if (!dumping && !collecting)
			return 0;
		if ((in_dump && !dumping) || (!dumping && hs_hook__now() > end))
			return -1;
		PyThreadState *t = PyInterpreterState_ThreadHead(me->interp);
		if (t && t == me && !PyThreadState_Next(t))
			return -1;
		Py_BEGIN_ALLOW_THREADS
		usleep(1000);
		Py_END_ALLOW_THREADS
	}
}

/* What keeps a file from being created beside `path`: its directory
 * missing, not a directory, not writable or read-only (an errno), else 0. */
static int dir_errno(const char *path)
{
	char *dir = hs_strdup(path);
	int err = 0;
	if (dir) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			strcpy(dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		struct stat st;
		if (stat(dir, &st) != 0)
			err = errno;
		else if (!S_ISDIR(st.st_mode))
			err = ENOTDIR;
		else if (access(dir, W_OK | X_OK) != 0)
			err = errno;
		hs_free(dir);
	}
	return err;
}

/* errno for an OSError: the directory's own problem (missing, not a
 * directory, not writable) when there is one, else what the failing call
 * left, else EIO. */
static int io_errno(const char *path, int saved)
{
	int err = dir_errno(path);
	if (!err)
		err = saved && saved != ENOENT ? saved : EIO;
	return err;
}

/* OSError(errno, message, filename): the subclass (FileNotFoundError,
 * PermissionError...) follows errno; returns -1. */
static int raise_io(PyObject *pathobj, const char *path, int saved_errno)
{
	const char *msg = hs_error_last();
	PyObject *m = PyUnicode_FromFormat("heapsnap: cannot write snapshot: %s", msg && *msg ? msg : "I/O error");
	if (!m)
		return -1;
	PyObject *args = Py_BuildValue("(iNO)", io_errno(path, saved_errno), m, pathobj);
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return -1;
}

int hs_hook__raise(int code, const char *path)
{
	const char *msg = hs_error_last();
	if (!msg || !*msg)
		msg = hs_error_name(code);
	switch (code) {
	case HS_ENOMEM:
		PyErr_Format(PyExc_MemoryError, "heapsnap: out of memory while dumping: %s", msg);
		break;
	case HS_EIO:
		if (path)
			PyErr_Format(PyExc_OSError, "heapsnap: cannot write snapshot '%s': %s", path, msg);
		else
			PyErr_Format(PyExc_OSError, "heapsnap: %s", msg);
		break;
	default:
		PyErr_Format(PyExc_RuntimeError, "heapsnap: dump failed: %s", msg);
	}
	return -1;
}

static uint32_t runtime_hexversion(void)
{
	PyObject *hex = PySys_GetObject("hexversion");
	long v = hex && PyLong_Check(hex) ? PyLong_AsLong(hex) : PY_VERSION_HEX;
	if (v == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		v = PY_VERSION_HEX;
	}
	return (uint32_t)v;
}

static int set_item(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

PyDoc_STRVAR(dump_doc,
"dump(path, *, collect=False, fork=False, wait=False, timeout=300, status=None) -> dict\n"
"\n"
"Write a snapshot of every live object of this interpreter to `path`.\n"
"\n"
"The walk runs in C with the GIL held and the cyclic GC paused: it starts\n"
"from every object the GC tracks and follows tp_traverse, so untracked\n"
"containers and atoms (str, int, float, bytes, code) are included. Each\n"
"object is recorded with its type, size as sys.getsizeof reports it,\n"
"refcount and labelled references; roots are sys.modules, every thread's\n"
"frames and the interpreter state. The file is written to a temporary name\n"
"(mode 0600) and renamed when complete.\n"
"\n"
"collect=True runs gc.collect() first.\n"
"\n"
"fork=True takes the snapshot in a forked child that walks the copy-on-write\n"
"heap while this process goes on: the pause is the metadata and the fork\n"
"alone. The child runs no Python code and writes nothing into the heap, so\n"
"types with their own __sizeof__ get their basic size (flagged estimated).\n"
"It is killed after `timeout` seconds (no file is left), and reaped by pid\n"
"on a C thread. Returns at once {path, fork, pid, pause_seconds,\n"
"fork_seconds, meta_seconds...}; wait=True blocks (GIL released) until the\n"
"child is done and adds its figures (objects, bytes, walk_seconds,\n"
"child_private_dirty_bytes...), raising like an in-process dump (TimeoutError\n"
"when the watchdog killed it). status=FILE: the child writes its outcome\n"
"there as 'key value' lines (used by `heapsnap dump PID --fork`).\n"
"\n"
"Returns a dict of figures: path, objects, edges, roots, types, bytes\n"
"(file size), seconds (whole call), pause_seconds (GIL held for the dump),\n"
"walk_seconds, sizeof_calls, sizeof_errors, sizeof_skipped...\n"
"Raises OSError when the file cannot be written, MemoryError or\n"
"RuntimeError otherwise; the process is left as it was.");

static PyObject *dump(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "path", "collect", "fork", "wait", "timeout", "status", NULL };
	PyObject *pathobj = NULL, *pathbytes = NULL, *result = NULL, *statusobj = NULL;
	int collect = 0, use_fork = 0, wait = 0;
	double fork_timeout = 300.0;
	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$pppdO:dump", kwlist, &pathobj, &collect,
	                                 &use_fork, &wait, &fork_timeout, &statusobj))
		return NULL;
	if (!use_fork && (wait || statusobj)) {
		PyErr_SetString(PyExc_ValueError, "heapsnap: wait= and status= need fork=True");
		return NULL;
	}
	if (!(fork_timeout > 0)) {
		PyErr_SetString(PyExc_ValueError, "heapsnap: timeout must be a positive number of seconds");
		return NULL;
	}
	if (!PyUnicode_FSConverter(pathobj, &pathbytes))
		return NULL;
	const char *path = PyBytes_AS_STRING(pathbytes);
	if (wait_for_other_threads() < 0 && in_dump) {
		Py_DECREF(pathbytes);
		PyErr_SetString(PyExc_RuntimeError, "heapsnap: dump() called while a dump is running");
		return NULL;
	}
	if (hs_hook__gc_collecting()) {
		Py_DECREF(pathbytes);
		PyErr_SetString(PyExc_RuntimeError,
		                "heapsnap: cannot dump while the garbage collector is running "
		                "(called from a finalizer or a gc callback?)");
		return NULL;
	}
	in_dump = 1;
	dump_thread = PyThread_get_thread_ident();
	double t_start = hs_hook__now();
	double collect_seconds = 0;
	if (collect) {
		PyObject *gc = PyImport_ImportModule("gc");
		PyObject *r = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
		Py_XDECREF(gc);
		if (!r)
			goto out;
		Py_DECREF(r);
		collect_seconds = hs_hook__now() - t_start;
	}

	if (use_fork) {
		/* Checked here as well as by the child's writer: the child reports
		 * through a pipe only with wait=True, else through the status file
		 * (`dump PID --fork`), which cannot be written where the snapshot
		 * cannot; an unwritable directory would go unexplained. */
		int derr = dir_errno(path);
		if (derr) {
			hs_error_set(HS_EIO, "cannot create '%s': %s", path, strerror(derr));
			raise_io(pathobj, path, derr);
			goto out;
		}
		PyObject *statusbytes = NULL;
		if (statusobj && statusobj != Py_None && !PyUnicode_FSConverter(statusobj, &statusbytes))
			goto out;
		result = hs_hook__fork_dump(pathobj, path, collect, collect_seconds, wait, fork_timeout,
		                            statusbytes ? PyBytes_AS_STRING(statusbytes) : NULL);
		Py_XDECREF(statusbytes);
		goto out;
	}

	double t_pause = hs_hook__now();
	hs_meta meta;
	hs_json json;
	hs_json_init(&json);
	hs_writer *w = NULL;
	hs_walk_result wr;
	hs_write_stats stats;
	memset(&wr, 0, sizeof(wr));
	memset(&stats, 0, sizeof(stats));
	int ok = 0;
	if (hs_hook__meta_gather(&meta, &json, collect) < 0) {
		hs_hook__meta_release(&meta);
		hs_json_release(&json);
		goto out;
	}

	/* allocation sites: asked before the pause, written after the walk */
	hs_sites_ctx sites;
	hs_sites_result sites_res;
	memset(&sites_res, 0, sizeof(sites_res));
	hs_hook__sites_prepare(&sites, self);

	int was_enabled = hs_hook__gc_enabled();
	hs_hook__gc_set_enabled(0);
	hs_writer_options opts = HS_WRITER_OPTIONS_INIT;
	opts.python_version = runtime_hexversion();
	errno = 0;
	int rc = hs_writer_open(&w, path, &opts);
	int saved_errno = errno;
	if (rc == 0)
		rc = hs_writer_meta(w, (const char *)json.b.data, json.b.len);
	if (rc == HS_EIO)
		raise_io(pathobj, path, saved_errno);
	else if (rc < 0)
		hs_hook__raise(rc, path);
	else {
		errno = 0;
		rc = hs_hook__walk(w, &meta, &wr);
		if (rc == 0)
			rc = hs_hook__sites_write(w, &sites, &sites_res);
		if (rc == 0)
			ok = 1;
		else if (rc == HS_EIO)
			raise_io(pathobj, path, errno);
		else
			hs_hook__raise(rc, path);
	}
	hs_hook__gc_set_enabled(was_enabled);
	double t_resume = hs_hook__now();
	int sites_written = sites.active;
	uint64_t sites_sample_bytes = sites.sample_bytes;
	hs_hook__sites_release(&sites);
	hs_hook__meta_release(&meta);
	hs_json_release(&json);

	in_dump = 0; /* what follows cannot re-enter; other threads may dump */
	if (ok) {
		/* Figures known only now go into the closing metadata section,
		 * merged over META by readers. */
		hs_json end;
		hs_json_init(&end);
		hs_json_open(&end, NULL, '{');
		hs_json_open(&end, "dump", '{');
		hs_json_double(&end, "pause_seconds", t_resume - t_pause);
		hs_json_double(&end, "walk_seconds", wr.walk_seconds);
		hs_json_double(&end, "collect_seconds", collect_seconds);
		hs_json_uint(&end, "sizeof_calls", wr.sizeof_calls);
		hs_json_uint(&end, "sizeof_errors", wr.sizeof_errors);
		hs_json_uint(&end, "sizeof_skipped", wr.sizeof_skipped);
		hs_json_uint(&end, "objects", wr.nodes);
		hs_json_uint(&end, "edges", wr.edges);
		hs_hook__walk_meta_end(&end, &wr); /* size model (walk.c) */
		if (sites_written) {
			hs_json_open(&end, "sites", '{');
			hs_json_uint(&end, "blocks", sites_res.blocks);
			hs_json_uint(&end, "stacks", sites_res.stacks);
			hs_json_uint(&end, "locations", sites_res.locations);
			hs_json_uint(&end, "sample_bytes", sites_sample_bytes);
			hs_json_double(&end, "seconds", sites_res.seconds);
			hs_json_close(&end, '}');
		}
		hs_json_open(&end, "notes", '[');
		if (wr.sizeof_skipped)
			hs_json_cstr(&end, NULL, "some Python-level __sizeof__ methods could not be called "
			                         "(out of memory while deferring them after the walk); those "
			                         "objects have their basic size and the size-estimated flag");
		hs_hook__walk_notes(&end, &wr); /* native libraries left uncounted */
		hs_json_close(&end, ']');
		hs_json_close(&end, '}');
		hs_json_close(&end, '}');
		if (end.err) {
			PyErr_NoMemory();
			ok = 0;
		} else if ((rc = hs_writer_meta_end(w, (const char *)end.b.data, end.b.len)) < 0) {
			hs_hook__raise(rc, path);
			ok = 0;
		}
		hs_json_release(&end);
	}
	if (ok) {
		/* Nothing below touches a Python object. */
		int commit_errno = 0;
		Py_BEGIN_ALLOW_THREADS
		errno = 0;
		rc = hs_writer_commit(w, &stats);
		commit_errno = errno;
		Py_END_ALLOW_THREADS
		if (rc == HS_EIO) {
			raise_io(pathobj, path, commit_errno);
			ok = 0;
		} else if (rc < 0) {
			hs_hook__raise(rc, path);
			ok = 0;
		}
	}
	hs_writer_free(w); /* removes the temporary file unless committed */
	if (!ok)
		goto out;

	double t_end = hs_hook__now();
	result = PyDict_New();
	if (!result)
		goto out;
	if (set_item(result, "path", PyUnicode_DecodeFSDefault(path)) < 0 ||
	    set_item(result, "objects", PyLong_FromUnsignedLongLong(wr.nodes)) < 0 ||
	    set_item(result, "edges", PyLong_FromUnsignedLongLong(wr.edges)) < 0 ||
	    set_item(result, "roots", PyLong_FromUnsignedLongLong(wr.roots)) < 0 ||
	    set_item(result, "types", PyLong_FromUnsignedLongLong(wr.types)) < 0 ||
	    set_item(result, "strings", PyLong_FromUnsignedLongLong(stats.strings)) < 0 ||
	    set_item(result, "bytes", PyLong_FromUnsignedLongLong(stats.file_bytes)) < 0 ||
	    set_item(result, "raw_bytes", PyLong_FromUnsignedLongLong(stats.raw_bytes)) < 0 ||
	    set_item(result, "seconds", PyFloat_FromDouble(t_end - t_start)) < 0 ||
	    set_item(result, "pause_seconds", PyFloat_FromDouble(t_resume - t_pause)) < 0 ||
	    set_item(result, "walk_seconds", PyFloat_FromDouble(wr.walk_seconds)) < 0 ||
	    set_item(result, "collect_seconds", PyFloat_FromDouble(collect_seconds)) < 0 ||
	    set_item(result, "sizeof_calls", PyLong_FromUnsignedLongLong(wr.sizeof_calls)) < 0 ||
	    set_item(result, "sizeof_errors", PyLong_FromUnsignedLongLong(wr.sizeof_errors)) < 0 ||
	    set_item(result, "sizeof_skipped", PyLong_FromUnsignedLongLong(wr.sizeof_skipped)) < 0 ||
	    set_item(result, "peak_stack", PyLong_FromSize_t(wr.peak_stack)) < 0 ||
	    set_item(result, "writer_peak_bytes", PyLong_FromUnsignedLongLong(stats.peak_buffer_bytes)) < 0) {
		Py_CLEAR(result);
	}
out:
	in_dump = 0;
	Py_XDECREF(pathbytes);
	return result;
}

/* Test aid (tests/native): the native buffers `obj` owns, found as the walk
 * finds them, with a state prepared for this call alone. */
PyDoc_STRVAR(native_buffers_doc,
"_native_buffers(obj) -> list of (type_name, address, bytes, where)\n\n"
"The native buffers the walk would count for obj (where: 0 host, 1 device,\n"
"2 mapped). For tests.");

static PyObject *native_buffers(PyObject *self, PyObject *obj)
{
	(void)self;
	hs_native_state *st = hs_native_prepare();
	if (!st)
		return PyErr_NoMemory();
	hs_native_buffer buf[8];
	int recipe = hs_native_recipe(st, Py_TYPE(obj));
	int n = recipe ? hs_native_buffers(st, recipe, obj, buf, 8) : 0;
	hs_native_free(st);
	PyObject *list = PyList_New(0);
	for (int i = 0; list && i < n; i++) {
		PyObject *t = Py_BuildValue("(sKKi)", buf[i].type_name,
		                            (unsigned long long)buf[i].address,
		                            (unsigned long long)buf[i].bytes, buf[i].where);
		if (!t || PyList_Append(list, t) < 0)
			Py_CLEAR(list);
		Py_XDECREF(t);
	}
	return list;
}

/* Test aid: what the native prepare step could not use (hs_native_notes). */
static PyObject *native_notes(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	hs_native_state *st = hs_native_prepare();
	if (!st)
		return PyErr_NoMemory();
	PyObject *r = PyUnicode_FromString(hs_native_notes(st));
	hs_native_free(st);
	return r;
}

static PyMethodDef methods[] = {
	{ "dump", (PyCFunction)(void (*)(void))dump, METH_VARARGS | METH_KEYWORDS, dump_doc },
	/* the agent's helpers (stats.c, trigger.c; heapsnap/agent.py) */
	{ "_stats", (PyCFunction)(void (*)(void))hs_hook__stats, METH_VARARGS | METH_KEYWORDS,
	  hs_hook__stats_doc },
	{ "_types", (PyCFunction)(void (*)(void))hs_hook__types, METH_VARARGS | METH_KEYWORDS,
	  hs_hook__types_doc },
	{ "_signal_install", hs_hook__signal_install, METH_VARARGS, hs_hook__signal_install_doc },
	{ "_signal_set_fd", hs_hook__signal_set_fd, METH_VARARGS, hs_hook__signal_set_fd_doc },
	{ "_signal_restore", hs_hook__signal_restore, METH_VARARGS, hs_hook__signal_restore_doc },
	{ "_native_buffers", native_buffers, METH_O, native_buffers_doc },
	{ "_native_notes", native_notes, METH_NOARGS, "_native_notes() -> str: what native prepare could not use. For tests." },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT, "_heapsnap",
	"heapsnap._heapsnap: the C heap walker behind heapsnap.dump().", -1, methods,
	NULL, NULL, NULL, NULL
};

/* Spelled out: 3.8's PyMODINIT_FUNC does not set default visibility, and the
 * build hides every symbol by default. */
__attribute__((visibility("default"))) PyObject *PyInit__heapsnap(void);
__attribute__((visibility("default"))) PyObject *PyInit__heapsnap(void)
{
	if (hs_hook__init() < 0)
		return NULL;
	PyObject *m = PyModule_Create(&moduledef);
	if (!m)
		return NULL;
	if (PyModule_AddStringConstant(m, "__version__", HS_HOOK_VERSION) < 0 ||
	    PyModule_AddIntConstant(m, "BUILT_FOR_HEXVERSION", PY_VERSION_HEX) < 0 ||
	    hs_track__register(m) < 0 || hs_events__register(m) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
