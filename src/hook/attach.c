/*
 * hook/attach.c: the entry point `heapsnap dump <pid>` calls in a process
 * that never imported heapsnap (src/attach/ loads this file with dlopen).
 *
 * heapsnap_attach_dump() is called on the main thread, either at a safe
 * point between bytecodes (GIL held) or while the thread is blocked in a
 * system call with the GIL released; PyGILState_Ensure() covers both. It
 * runs the same dump() as heapsnap.dump(path), through a module object made
 * once by PyInit__heapsnap() and kept (not put in sys.modules: the target's
 * imports see nothing), and reports through the shared block. It leaves no
 * exception set and keeps errno: the interrupted code does not see it ran.
 */
#include "hook_internal.h"

#include <errno.h>
#include <string.h>

#include "heapsnap/attach.h"

PyObject *PyInit__heapsnap(void);

__attribute__((visibility("default"))) int heapsnap_attach_dump(hs_attach_shared *a);

static PyObject *attached_module; /* kept for later dumps into this process */

static uint64_t get_u64(PyObject *d, const char *k)
{
	PyObject *v = PyDict_GetItemString(d, k);
	if (!v || !PyLong_Check(v))
		return 0;
	unsigned long long x = PyLong_AsUnsignedLongLong(v);
	if (x == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return x;
}

static double get_double(PyObject *d, const char *k)
{
	PyObject *v = PyDict_GetItemString(d, k);
	double x = v ? PyFloat_AsDouble(v) : 0;
	if (x == -1.0 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return x;
}

/* The current exception as the message; clears it. */
static void take_error(hs_attach_shared *a)
{
	PyObject *t, *v, *tb;
	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	const char *msg = NULL;
	PyObject *s = v ? PyObject_Str(v) : NULL;
	if (s)
		msg = PyUnicode_AsUTF8(s);
	if (!msg) {
		PyErr_Clear();
		msg = "unknown error";
	}
	snprintf(a->message, sizeof(a->message), "%s", msg);
	if (v && PyErr_GivenExceptionMatches(v, PyExc_OSError)) {
		PyObject *en = PyObject_GetAttrString(v, "errno");
		if (en && PyLong_Check(en))
			a->errnum = (int32_t)PyLong_AsLong(en);
		Py_XDECREF(en);
		PyErr_Clear();
	}
	Py_XDECREF(s);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
}

int heapsnap_attach_dump(hs_attach_shared *a)
{
	int saved_errno = errno;
	if (!a || a->magic != HS_ATTACH_MAGIC || a->size != sizeof(*a))
		return -1;
	a->path[sizeof(a->path) - 1] = '\0';
	a->message[0] = '\0';
	a->errnum = 0;
	if (!Py_IsInitialized()) {
		snprintf(a->message, sizeof(a->message), "the interpreter is not running");
		a->state = HS_ATTACH_STATE_FAILED;
		return 0;
	}
	PyGILState_STATE g = PyGILState_Ensure();
	a->state = HS_ATTACH_STATE_RUNNING;
	PyObject *et, *ev, *etb;
	PyErr_Fetch(&et, &ev, &etb); /* none expected; kept intact if any */
	if (!attached_module)
		attached_module = PyInit__heapsnap();
	PyObject *r = NULL, *path = NULL;
	if (attached_module)
		path = PyUnicode_DecodeFSDefault(a->path);
	int fork_mode = (a->flags & HS_ATTACH_FLAG_FORK) != 0;
	if (path && !fork_mode) {
		r = PyObject_CallMethod(attached_module, "dump", "O", path);
	} else if (path) {
		/* the child reports through a status file: see heapsnap/attach.h */
		PyObject *status = PyUnicode_FromFormat("%U%s", path, HS_ATTACH_STATUS_SUFFIX);
		PyObject *fn = PyObject_GetAttrString(attached_module, "dump");
		PyObject *args = Py_BuildValue("(O)", path);
		PyObject *kw = status ? Py_BuildValue("{s:O,s:d,s:O}", "fork", Py_True, "timeout",
		                                      a->fork_timeout > 0 ? a->fork_timeout : 300.0,
		                                      "status", status) : NULL;
		if (fn && args && kw)
			r = PyObject_Call(fn, args, kw);
		Py_XDECREF(kw);
		Py_XDECREF(args);
		Py_XDECREF(fn);
		Py_XDECREF(status);
	}
	if (r && PyDict_Check(r)) {
		a->child_pid = (int32_t)get_u64(r, "pid");
		a->objects = get_u64(r, "objects");
		a->edges = get_u64(r, "edges");
		a->bytes = get_u64(r, "bytes");
		a->pause_seconds = get_double(r, "pause_seconds");
		a->seconds = get_double(r, "seconds");
		a->state = HS_ATTACH_STATE_DONE;
	} else {
		if (PyErr_Occurred())
			take_error(a);
		else
			snprintf(a->message, sizeof(a->message), "dump() returned no result");
		a->state = HS_ATTACH_STATE_FAILED;
	}
	Py_XDECREF(r);
	Py_XDECREF(path);
	PyErr_Restore(et, ev, etb);
	PyGILState_Release(g);
	errno = saved_errno;
	return 0;
}
