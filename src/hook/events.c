/*
 * hook/events.c: the ring of garbage collections behind heapsnap.gc_events()
 * and the agent's GCEVENTS command (heapsnap/_events.py).
 *
 * The ring lives in C, not in Python objects: a Python deque of tuples and
 * floats filled on every collection would itself show up in snapshots as a
 * growing population (until full), that is, heapsnap would report its own
 * bookkeeping as a leak. The gc.callbacks entry is a C function; it reads
 * `info` (a dict built by the collector for every callback) without creating
 * objects. Callbacks run with the GIL held, which serialises the ring.
 */
#include "hook_internal.h"

#define RING 4096

typedef struct gc_event {
	long long seq;
	int generation;
	double t, seconds;
	long long collected, uncollectable;
} gc_event;

static gc_event ring[RING];
static long long next_seq;   /* the seq the next event gets */
static double started;       /* t of the running collection, 0 when none */
static double pause_seconds[3];      /* seconds per generation since `since` */
static double since;         /* when the ring started (monotonic) */

static long long dict_ll(PyObject *info, const char *key)
{
	PyObject *v = PyDict_GetItemString(info, key); /* borrowed, no allocation */
	if (!v || !PyLong_Check(v))
		return 0;
	long long x = PyLong_AsLongLong(v);
	if (x == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return x;
}

static PyObject *gc_callback(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *phase, *info;
	if (!PyArg_ParseTuple(args, "UO", &phase, &info))
		return NULL;
	if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) {
		started = hs_hook__now();
		Py_RETURN_NONE;
	}
	if (!started || !PyDict_Check(info))
		Py_RETURN_NONE; /* installed during a collection: no start seen */
	double d = hs_hook__now() - started;
	long long gen = dict_ll(info, "generation");
	if (gen < 0 || gen > 2)
		gen = 2;
	pause_seconds[gen] += d;
	gc_event *e = &ring[next_seq % RING];
	e->seq = next_seq++;
	e->generation = (int)gen;
	e->t = started;
	e->seconds = d;
	e->collected = dict_ll(info, "collected");
	e->uncollectable = dict_ll(info, "uncollectable");
	started = 0;
	Py_RETURN_NONE;
}

/* {"next", "events": [{"seq", "generation", "t", "seconds", "collected",
 * "uncollectable"}], "dropped"?}: events with seq >= since */
static PyObject *gc_events(PyObject *self, PyObject *args)
{
	(void)self;
	long long from = 0;
	if (!PyArg_ParseTuple(args, "|L", &from))
		return NULL;
	if (from < 0)
		from = 0;
	long long first = next_seq > RING ? next_seq - RING : 0;
	long long dropped = from < first ? first - from : 0;
	if (from < first)
		from = first;
	PyObject *list = PyList_New(0), *out = NULL;
	if (!list)
		return NULL;
	for (long long s = from; s < next_seq; s++) {
		const gc_event *e = &ring[s % RING];
		PyObject *d = Py_BuildValue("{s:L,s:i,s:d,s:d,s:L,s:L}", "seq", e->seq, "generation",
		                            e->generation, "t", e->t, "seconds", e->seconds,
		                            "collected", e->collected, "uncollectable",
		                            e->uncollectable);
		if (!d || PyList_Append(list, d) < 0) {
			Py_XDECREF(d);
			goto done;
		}
		Py_DECREF(d);
	}
	out = Py_BuildValue("{s:L,s:O}", "next", next_seq, "events", list);
	if (out && dropped) {
		PyObject *n = PyLong_FromLongLong(dropped);
		if (!n || PyDict_SetItemString(out, "dropped", n) < 0)
			Py_CLEAR(out);
		Py_XDECREF(n);
	}
done:
	Py_DECREF(list);
	return out;
}

static PyObject *gc_pause_seconds(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return Py_BuildValue("[ddd]", pause_seconds[0], pause_seconds[1], pause_seconds[2]);
}

static PyObject *gc_since(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyFloat_FromDouble(since);
}

static PyMethodDef methods[] = {
	{ "_gc_callback", gc_callback, METH_VARARGS,
	  "_gc_callback(phase, info): the gc.callbacks entry feeding the ring" },
	{ "_gc_events", gc_events, METH_VARARGS,
	  "_gc_events(since=0) -> {next, events, dropped?}: collections with seq >= since" },
	{ "_gc_pause_seconds", gc_pause_seconds, METH_NOARGS,
	  "_gc_pause_seconds() -> [gen0, gen1, gen2]: seconds in collections since the ring started" },
	{ "_gc_since", gc_since, METH_NOARGS,
	  "_gc_since() -> monotonic time the ring started" },
	{ NULL, NULL, 0, NULL }
};

int hs_events__register(PyObject *module)
{
	since = hs_hook__now();
	return PyModule_AddFunctions(module, methods);
}
