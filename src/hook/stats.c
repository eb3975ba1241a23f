/*
 * hook/stats.c: the cheap figures behind the agent's STATS and TYPES
 * commands (heapsnap/agent.py; formats/agent-protocol.md).
 *
 * _stats(fast=False): process figures from /proc/self (meta.c), Python
 * thread states, pymalloc's figures, and the number of objects on the GC
 * generation lists, counted by following the lists in C (walk.c's
 * hs_hook__gc_foreach): nothing is allocated, nothing is written.
 *
 * _types(n, gc_only=False): objects and bytes per type, the n largest by
 * bytes. The default walks the closure a dump walks: every object on the
 * GC lists and every object reachable from them through tp_traverse, plus
 * the references tp_traverse does not report but a snapshot contains
 * (dict keys, code objects' fields, static types' fields, heap types'
 * names, weak referents, numpy views' bases), plus what the frames of
 * every thread hold (walk.c's hs_hook__frames_foreach: 3.11+ frames live
 * outside the heap). Each object is counted once (the visited bitmap of
 * visited.c), with the real size a snapshot records (blocks.c: the same
 * rules as walk.c's). On the test heaps the totals and
 * every type's count and bytes equal those of a snapshot taken just
 * before, on 3.8 to 3.13. Nothing is written and no label is built: about
 * a third of a dump's walk (formats/agent-protocol.md, "Costs").
 *
 * No code runs: sizes are computed in C (no __sizeof__ is called). The
 * GC is disabled during the walk, which creates no object. Native buffers
 * (native.c) are not counted here: they are no type.
 *
 * gc_only=True counts the objects on the GC lists alone (what
 * objgraph.typestats() sees): no traversal, no bitmap; str, int, bytes and
 * untracked tuples and dicts are then missing.
 */
#include "hook_internal.h"
#include "stats_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap/errors.h"

#if PY_VERSION_HEX >= 0x030D0000
/* exported; declared by the internal headers only in 3.13 */
PyAPI_FUNC(Py_ssize_t) _PyDict_SizeOf(PyDictObject *);
#endif
#if PY_VERSION_HEX >= 0x030C0000
PyAPI_FUNC(PyObject *) _PyType_GetDict(PyTypeObject *);
#endif

/* Waits (GIL released) while a collection runs in another thread that let
 * this one run (finalizers): the lists are then in flux.
 * @return 0 when no collection runs, -1 after `seconds`. */
static int wait_gc_idle(double seconds)
{
	double end = hs_hook__now() + seconds;
	while (hs_hook__gc_collecting()) {
		if (hs_hook__now() > end)
			return -1;
		Py_BEGIN_ALLOW_THREADS
		usleep(1000);
		Py_END_ALLOW_THREADS
	}
	return 0;
}

static int set_item(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

/* An int, or None for an unknown (-1) figure. */
static PyObject *figure(long long v)
{
	if (v < 0)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(v);
}

/* ------------------------------------------------------------------ */
/* _stats                                                              */

typedef struct gc_count {
	uint64_t gens[4];
	uintptr_t sink;
} gc_count;

/*
 * Reading the object's type as well as the list link is not needed for
 * the count, but it makes the walk twice as fast (measured: 80 -> 35 ns
 * per object on 250k objects): with two neighbouring lines touched per
 * object the hardware prefetcher follows the mostly ascending addresses
 * of the list, where the bare pointer chase waits for memory every time.
 */
static int count_tracked(PyObject *op, int generation, void *arg)
{
	gc_count *c = arg;
	c->gens[generation]++;
	c->sink += (uintptr_t)Py_TYPE(op);
	return 0;
}

const char hs_hook__stats_doc[] =
"_stats(fast=False) -> dict\n"
"\n"
"Cheap figures for the agent's STATS: rss, vms, swap, os_threads (from\n"
"/proc/self/status), uss and pss (from /proc/self/smaps_rollup, left out\n"
"when fast: its cost grows with the RSS), python_threads,\n"
"tracked_objects and tracked_per_generation [g0, g1, g2, permanent] (the GC\n"
"lists, followed in C), pymalloc (a dict) and seconds (this call). Unknown\n"
"figures are None.";

PyObject *hs_hook__stats(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "fast", NULL };
	int fast = 0;
	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:_stats", kwlist, &fast))
		return NULL;
	double t0 = hs_hook__now();
	hs_proc_figures p;
	hs_hook__proc_read(&p, !fast);

	long long pythreads = 0;
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts))
		pythreads++;

	gc_count gc;
	memset(&gc, 0, sizeof(gc));
	const uint64_t *gens = gc.gens;
	int have_gc = wait_gc_idle(0.5) == 0;
	if (have_gc)
		hs_hook__gc_foreach(count_tracked, &gc);

	hs_pymalloc_figures pm;
	int have_pm = hs_hook__pymalloc_read(&pm) == 0;

	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	PyObject *pmd = PyDict_New();
	if (!pmd)
		goto fail;
	if (have_pm) {
		if (set_item(pmd, "arenas_allocated", figure(pm.arenas_allocated)) < 0 ||
		    set_item(pmd, "arenas_allocated_total", figure(pm.arenas_allocated_total)) < 0 ||
		    set_item(pmd, "arenas_reclaimed", figure(pm.arenas_reclaimed)) < 0 ||
		    set_item(pmd, "arenas_highwater", figure(pm.arenas_highwater)) < 0 ||
		    set_item(pmd, "bytes_in_use", figure(pm.bytes_in_use)) < 0 ||
		    set_item(pmd, "bytes_available", figure(pm.bytes_available)) < 0 ||
		    set_item(pmd, "bytes_in_arenas", figure(pm.bytes_in_arenas)) < 0 ||
		    set_item(pmd, "blocks_in_use", figure(pm.blocks_in_use)) < 0) {
			Py_DECREF(pmd);
			goto fail;
		}
	}
	if (set_item(d, "pymalloc", pmd) < 0)
		goto fail;
	if (set_item(d, "rss", figure(p.rss)) < 0 || set_item(d, "vms", figure(p.vms)) < 0 ||
	    set_item(d, "swap", figure(p.swap)) < 0 || set_item(d, "os_threads", figure(p.threads)) < 0 ||
	    set_item(d, "python_threads", figure(pythreads)) < 0)
		goto fail;
	if (!fast && (set_item(d, "uss", figure(p.uss)) < 0 || set_item(d, "pss", figure(p.pss)) < 0))
		goto fail;
	if (have_gc) {
		if (set_item(d, "tracked_objects",
		             PyLong_FromUnsignedLongLong(gens[0] + gens[1] + gens[2] + gens[3])) < 0 ||
		    set_item(d, "tracked_per_generation",
		             Py_BuildValue("[KKKK]", (unsigned long long)gens[0], (unsigned long long)gens[1],
		                           (unsigned long long)gens[2], (unsigned long long)gens[3])) < 0)
			goto fail;
	} else if (PyDict_SetItemString(d, "tracked_objects", Py_None) < 0 ||
	           PyDict_SetItemString(d, "tracked_per_generation", Py_None) < 0) {
		goto fail;
	}
	if (set_item(d, "seconds", PyFloat_FromDouble(hs_hook__now() - t0)) < 0)
		goto fail;
	return d;
fail:
	Py_DECREF(d);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* _types: per-type table                                              */

enum type_kind { TK_OTHER, TK_DICT, TK_CODE, TK_TYPE, TK_NDARRAY, TK_WEAKREF };

typedef struct tstat {
	PyTypeObject *tp; /* a strong reference while in the table; NULL: empty slot */
	uint64_t count, bytes;
	uint8_t size_kind, kind, exact;
	hs_block_type bt; /* real sizes (blocks.c) */
} tstat;

typedef struct twalk {
	hs_vset seen;
	PyObject **stack;
	size_t sp, cap;
	tstat *tab;
	size_t mask, ntypes;
	size_t last; /* slot of the last type looked up, or SIZE_MAX */
	uint64_t objects, estimated, sizeof_calls;
	int err;
	int gc_only;
	hs_size_rules sizes; /* which __sizeof__ is a known builtin (sizes.c) */
} twalk;

static PyObject *s_sizeof, *s_module;

/*
 * numpy arrays are not GC objects, yet a view keeps its base alive (walk.c
 * explains the layout, stable across numpy 1.x and 2.x).
 */
typedef struct ndarray_head {
	PyObject_HEAD
	char *data;
	int nd;
	void *dimensions;
	void *strides;
	PyObject *base;
	PyObject *descr;
} ndarray_head;

static int is_ndarray_type(PyTypeObject *tp)
{
	for (PyTypeObject *t = tp; t; t = t->tp_base)
		if (t->tp_name && !strcmp(t->tp_name, "numpy.ndarray"))
			return tp->tp_basicsize >= (Py_ssize_t)sizeof(ndarray_head);
	return 0;
}

static void tstat_init(twalk *w, tstat *t, PyTypeObject *tp)
{
	memset(t, 0, sizeof(*t));
	t->tp = tp;
	Py_INCREF(tp); /* keeps the type, and so its name, until the result is built */
	t->size_kind = (uint8_t)hs_hook__size_kind(&w->sizes, tp);
	hs_blocks_type_init(&w->sizes, tp, &t->bt);
	unsigned long fl = tp->tp_flags;
	if (fl & Py_TPFLAGS_DICT_SUBCLASS) {
		t->kind = TK_DICT;
		t->exact = tp == &PyDict_Type;
	} else if (fl & Py_TPFLAGS_TYPE_SUBCLASS) {
		t->kind = TK_TYPE;
	} else if (tp == &PyCode_Type) {
		t->kind = TK_CODE;
	} else if (PyType_IsSubtype(tp, &_PyWeakref_RefType) || tp == &_PyWeakref_ProxyType ||
	           tp == &_PyWeakref_CallableProxyType) {
		t->kind = TK_WEAKREF;
	} else if (is_ndarray_type(tp)) {
		t->kind = TK_NDARRAY;
	}
}

static inline size_t type_slot(PyTypeObject *tp, size_t mask)
{
	return (size_t)(((uintptr_t)tp >> 4) * 0x9E3779B97F4A7C15ULL >> 13) & mask;
}

static tstat *tstat_get(twalk *w, PyTypeObject *tp)
{
	if (w->last != SIZE_MAX && w->tab[w->last].tp == tp)
		return &w->tab[w->last];
	size_t i = type_slot(tp, w->mask);
	while (w->tab[i].tp) {
		if (w->tab[i].tp == tp) {
			w->last = i;
			return &w->tab[i];
		}
		i = (i + 1) & w->mask;
	}
	if ((w->ntypes + 1) * 2 > w->mask + 1) {
		size_t cap = (w->mask + 1) * 2;
		tstat *n = hs_calloc(cap, sizeof(*n));
		if (!n) {
			w->err = HS_ENOMEM;
			return NULL;
		}
		for (size_t j = 0; j <= w->mask; j++) {
			if (!w->tab[j].tp)
				continue;
			size_t k = type_slot(w->tab[j].tp, cap - 1);
			while (n[k].tp)
				k = (k + 1) & (cap - 1);
			n[k] = w->tab[j];
		}
		hs_free(w->tab);
		w->tab = n;
		w->mask = cap - 1;
		i = type_slot(tp, w->mask);
		while (w->tab[i].tp)
			i = (i + 1) & w->mask;
	}
	tstat_init(w, &w->tab[i], tp);
	w->ntypes++;
	w->last = i;
	return &w->tab[i];
}

/* ------------------------------------------------------------------ */
/* _types: the walk                                                    */

static inline int push_new(twalk *w, PyObject *o)
{
	if (!o)
		return 0;
	int r = hs_vset_add(&w->seen, o);
	if (r <= 0)
		return r;
	if (w->sp == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 65536;
		PyObject **s = hs_reallocarray(w->stack, cap, sizeof(*s));
		if (!s)
			return HS_ENOMEM;
		w->stack = s;
		w->cap = cap;
	}
	w->stack[w->sp++] = o;
	return 0;
}

static int visit(PyObject *o, void *arg)
{
	twalk *w = arg;
	if (push_new(w, o) < 0) {
		w->err = HS_ENOMEM;
		return -1;
	}
	return 0;
}

/* Size and count of one object: its real bytes (blocks.c). */
static int account(twalk *w, tstat *t, PyObject *op, int is_gc)
{
	hs_blocks_acc acc = { 0, 0, 0 };
	(void)is_gc;
	t->count++;
	w->objects++;
	t->bytes += hs_blocks_size(&t->bt, t->tp, op, &acc, 0);
	if (t->bt.estimated)
		w->estimated++;
	return 0;
}

/* Keys and values (dict_traverse skips str keys). A 3.13 dict sharing its
 * owner's inline values is iterated too: the visited bitmap counts each
 * value once, whoever reaches it first. */
static void dict_edges(twalk *w, PyObject *op)
{
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	while (PyDict_Next(op, &pos, &k, &v)) {
		if (push_new(w, k) < 0 || push_new(w, v) < 0) {
			w->err = HS_ENOMEM;
			return;
		}
	}
}

/* Code objects are not GC objects: no tp_traverse (walk.c's code_cands). */
static void code_edges(twalk *w, PyObject *op)
{
	PyCodeObject *co = (PyCodeObject *)op;
	PyObject *f[16];
	int n = 0;
	f[n++] = co->co_consts;
	f[n++] = co->co_names;
	f[n++] = co->co_filename;
	f[n++] = co->co_name;
#if PY_VERSION_HEX < 0x030B0000
	f[n++] = co->co_code;
	f[n++] = co->co_varnames;
	f[n++] = co->co_freevars;
	f[n++] = co->co_cellvars;
#if PY_VERSION_HEX < 0x030A0000
	f[n++] = co->co_lnotab;
#else
	f[n++] = co->co_linetable;
#endif
#else
	f[n++] = co->co_qualname;
	f[n++] = co->co_linetable;
	f[n++] = co->co_exceptiontable;
	f[n++] = co->co_localsplusnames;
	f[n++] = co->co_localspluskinds;
#if PY_VERSION_HEX < 0x030C0000
	f[n++] = co->_co_code;
#else
	if (co->_co_cached) {
		f[n++] = co->_co_cached->_co_code;
		f[n++] = co->_co_cached->_co_varnames;
		f[n++] = co->_co_cached->_co_cellvars;
		f[n++] = co->_co_cached->_co_freevars;
	}
#endif
#endif
	for (int i = 0; i < n; i++)
		if (push_new(w, f[i]) < 0)
			w->err = HS_ENOMEM;
}

/* What type_traverse does not report (heap types), or the whole type
 * (static types are not GC objects: walk.c's type_cands). */
static void type_edges(twalk *w, PyObject *op, int is_gc)
{
	PyTypeObject *t = (PyTypeObject *)op;
	PyObject *f[8];
	int n = 0;
	if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) {
		PyHeapTypeObject *ht = (PyHeapTypeObject *)t;
		f[n++] = ht->ht_name;
		f[n++] = ht->ht_qualname;
		f[n++] = ht->ht_slots;
		f[n++] = t->tp_subclasses;
	}
	if (!is_gc) {
		PyObject *dict = t->tp_dict;
#if PY_VERSION_HEX >= 0x030C0000
		if (!dict && !(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
			dict = _PyType_GetDict(t);
#endif
		f[n++] = dict;
		f[n++] = t->tp_cache;
		f[n++] = t->tp_mro;
		f[n++] = t->tp_bases;
		f[n++] = (PyObject *)t->tp_base;
	}
	for (int i = 0; i < n; i++)
		if (push_new(w, f[i]) < 0)
			w->err = HS_ENOMEM;
}

static int process(twalk *w, PyObject *op)
{
	PyTypeObject *tp = Py_TYPE(op);
	tstat *t = tstat_get(w, tp);
	if (!t)
		return w->err;
	int is_gc = hs_hook__obj_is_gc(tp, op);
	if (account(w, t, op, is_gc) < 0)
		return HS_ENOMEM;
	if (w->gc_only)
		return 0;
	int traverse = is_gc && tp->tp_traverse != NULL;
	uint8_t kind = t->kind, exact = t->exact;
	switch (kind) {
	case TK_DICT:
		dict_edges(w, op);
		if (exact)
			traverse = 0; /* PyDict_Next saw everything */
		break;
	case TK_CODE:
		code_edges(w, op);
		break;
	case TK_TYPE:
		type_edges(w, op, is_gc);
		break;
	case TK_WEAKREF: {
		/* a dump writes the referent too (a weak edge never retains, but
		 * the object is there); weakref_traverse reports the callback only */
		PyObject *ref = ((PyWeakReference *)op)->wr_object;
		if (ref && ref != Py_None && push_new(w, ref) < 0)
			w->err = HS_ENOMEM;
		break;
	}
	case TK_NDARRAY: {
		ndarray_head *a = (ndarray_head *)op;
		if (push_new(w, a->base) < 0 || push_new(w, a->descr) < 0)
			w->err = HS_ENOMEM;
		break;
	}
	default:
		break;
	}
	if (!w->err && traverse)
		tp->tp_traverse(op, visit, w);
	return w->err;
}

static int drain(twalk *w)
{
	while (w->sp) {
		int rc = process(w, w->stack[--w->sp]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int seed(PyObject *op, int generation, void *arg)
{
	twalk *w = arg;
	(void)generation;
	if (w->gc_only)
		return process(w, op);
	int rc = push_new(w, op);
	if (rc == 0)
		rc = drain(w);
	return rc;
}

/* ------------------------------------------------------------------ */
/* _types: names and the result                                        */

/* "module.QualName", builtins bare: walk.c's type_name(). */
static int type_name(PyTypeObject *tp, hs_buf *b)
{
	int trunc;
	if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
		PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
		PyObject *mod = NULL;
		if (tp->tp_dict && PyDict_Check(tp->tp_dict)) {
			mod = PyDict_GetItemWithError(tp->tp_dict, s_module);
			if (!mod)
				PyErr_Clear();
		}
		if (mod && PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
			if (hs_hook__str_utf8(b, mod, 1000, &trunc) < 0 || hs_buf_put_u8(b, '.') < 0)
				return HS_ENOMEM;
		}
		if (ht->ht_qualname && PyUnicode_Check(ht->ht_qualname))
			return hs_hook__str_utf8(b, ht->ht_qualname, 1000, &trunc) < 0 ? HS_ENOMEM : 0;
	}
	const char *n = tp->tp_name ? tp->tp_name : "?";
	return hs_buf_put(b, n, strlen(n));
}

typedef struct row {
	char *name; /* owned, NUL-terminated */
	uint64_t count, bytes;
} row;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const row *)a)->name, ((const row *)b)->name);
}

static int by_bytes(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

static PyObject *build_result(twalk *w, Py_ssize_t top, double t0, double walk_seconds)
{
	PyObject *res = NULL, *list = NULL;
	row *rows = hs_calloc(w->ntypes ? w->ntypes : 1, sizeof(*rows));
	size_t n = 0;
	uint64_t total_bytes = 0;
	hs_buf b = HS_BUF_INIT;
	if (!rows) {
		PyErr_NoMemory();
		return NULL;
	}
	for (size_t i = 0; i <= w->mask; i++) {
		tstat *t = &w->tab[i];
		if (!t->tp)
			continue;
		hs_buf_clear(&b);
		if (type_name(t->tp, &b) < 0 || hs_buf_put_u8(&b, 0) < 0 ||
		    !(rows[n].name = hs_strdup((const char *)b.data))) {
			PyErr_NoMemory();
			goto done;
		}
		rows[n].count = t->count;
		rows[n].bytes = t->bytes;
		total_bytes += t->bytes;
		n++;
	}
	/* one row per name, as `heapsnap summary` shows them */
	qsort(rows, n, sizeof(*rows), by_name);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && !strcmp(rows[m - 1].name, rows[i].name)) {
			rows[m - 1].count += rows[i].count;
			rows[m - 1].bytes += rows[i].bytes;
			hs_free(rows[i].name);
			rows[i].name = NULL;
		} else {
			rows[m++] = rows[i];
			if (m - 1 != i)
				rows[i].name = NULL;
		}
	}
	qsort(rows, m, sizeof(*rows), by_bytes);
	size_t shown = top < 0 || (size_t)top > m ? m : (size_t)top;
	list = PyList_New((Py_ssize_t)shown);
	if (!list)
		goto done;
	for (size_t i = 0; i < shown; i++) {
		/* an extension's tp_name may not be UTF-8: never fail on it */
		PyObject *name = PyUnicode_DecodeUTF8(rows[i].name, (Py_ssize_t)strlen(rows[i].name),
		                                      "replace");
		PyObject *r = name ? Py_BuildValue("{s:N,s:K,s:K}", "name", name, "count",
		                                   (unsigned long long)rows[i].count, "bytes",
		                                   (unsigned long long)rows[i].bytes) : NULL;
		if (!r)
			goto done;
		PyList_SET_ITEM(list, (Py_ssize_t)i, r);
	}
	res = Py_BuildValue("{s:K,s:K,s:n,s:K,s:K,s:d,s:d,s:s,s:O}",
	                    "objects", (unsigned long long)w->objects,
	                    "bytes", (unsigned long long)total_bytes,
	                    "type_names", (Py_ssize_t)m,
	                    "estimated", (unsigned long long)w->estimated,
	                    "sizeof_calls", (unsigned long long)w->sizeof_calls,
	                    "walk_seconds", walk_seconds,
	                    "seconds", hs_hook__now() - t0,
	                    "mode", w->gc_only ? "gc" : "closure",
	                    "types", list);
done:
	Py_XDECREF(list);
	for (size_t i = 0; i < n; i++)
		hs_free(rows[i].name);
	hs_free(rows);
	hs_buf_release(&b);
	return res;
}

static int frame_seed(PyObject *op, void *arg)
{
	twalk *w = arg;
	int rc = push_new(w, op);
	if (rc == 0)
		rc = drain(w);
	return rc;
}

const char hs_hook__types_doc[] =
"_types(top=20, gc_only=False) -> dict\n"
"\n"
"Objects and bytes per type name, for the agent's TYPES: {objects, bytes,\n"
"type_names, estimated, sizeof_calls, walk_seconds, seconds, mode, types:\n"
"[{name, count, bytes}, ...]} with the `top` largest by bytes (top < 0: all).\n"
"The default walks what a dump walks, writing nothing; gc_only=True counts\n"
"the objects on the GC lists alone. The GIL is held for the walk.";

PyObject *hs_hook__types(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "top", "gc_only", NULL };
	Py_ssize_t top = 20;
	int gc_only = 0;
	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|np:_types", kwlist, &top, &gc_only))
		return NULL;
	hs_blocks_prepare();
	if (!s_sizeof && !(s_sizeof = PyUnicode_InternFromString("__sizeof__")))
		return NULL;
	if (!s_module && !(s_module = PyUnicode_InternFromString("__module__")))
		return NULL;
	double t0 = hs_hook__now();
	if (wait_gc_idle(2.0) < 0) {
		PyErr_SetString(PyExc_RuntimeError, "heapsnap: the garbage collector has been running "
		                "in another thread for 2 s; try again");
		return NULL;
	}

	twalk w;
	memset(&w, 0, sizeof(w));
	w.gc_only = gc_only;
	w.last = SIZE_MAX;
	w.mask = 255;
	w.tab = hs_calloc(w.mask + 1, sizeof(*w.tab));
	int rc = w.tab ? 0 : HS_ENOMEM;
	if (rc == 0 && !gc_only)
		rc = hs_vset_init(&w.seen);
	if (rc == 0 && hs_hook__size_rules_init(&w.sizes) < 0) {
		PyErr_Clear();
		rc = HS_ENOMEM;
	}

	/* The walk: no object is created or freed, no code runs. */
	int was_enabled = hs_hook__gc_enabled();
	hs_hook__gc_set_enabled(0);
	double tw = hs_hook__now();
	if (rc == 0 && !gc_only)
		rc = hs_hook__frames_foreach(frame_seed, &w);
	if (rc == 0)
		rc = hs_hook__gc_foreach(seed, &w);
	double walk_seconds = hs_hook__now() - tw;
	hs_hook__gc_set_enabled(was_enabled);
	hs_free(w.stack);
	if (!gc_only)
		hs_vset_release(&w.seen);

	PyObject *res = NULL;
	if (rc == 0) {
		res = build_result(&w, top, t0, walk_seconds);
	} else {
		PyErr_NoMemory();
	}
	if (w.tab) {
		for (size_t i = 0; i <= w.mask; i++)
			Py_XDECREF(w.tab[i].tp);
		hs_free(w.tab);
	}
	return res;
}
