/*
 * hook/walk.c: the heap walk. The one translation unit of the hook that
 * reads CPython's internal structures (GC lists, managed dicts, interpreter
 * frames), so every version gate lives here.
 *
 * Shape of a dump (GIL held throughout, cyclic GC disabled by the caller):
 *   1. roots: sys.modules entries, every thread's frames, interpreter state;
 *      their targets are pushed on the work stack;
 *   2. seeds: every object on the GC generation lists (0, 1, 2 and the
 *      permanent generation), copied into an array first because a
 *      __sizeof__ call may allocate and append to those lists;
 *   3. a depth-first walk with an explicit stack: each object popped is
 *      written as a node, then its outgoing edges, and every edge target
 *      (and every key object a label names) not yet seen is marked and
 *      pushed. Objects the GC does not track (str, int, untracked tuples)
 *      are reached this way, each exactly once.
 *
 * Labelled edges. For each object we first build "candidates": references
 * we can name from the object's struct (dict items, list indexes, function
 * fields, instance attributes, slots, frame locals...). Then, if the object
 * is a GC object, tp_traverse runs with a visitor that matches each visited
 * pointer against an unused candidate (scanning from the last match, so the
 * usual in-order case costs O(1)) and takes its label, or labels it NONE.
 * Candidates tp_traverse never visited are written afterwards (code objects
 * and static types are not GC objects; type_traverse skips __name__...),
 * except "match-only" ones, which only name what the traversal reports
 * (frame locals of a frame owned elsewhere, members of static C types).
 */
#define Py_BUILD_CORE_MODULE 1
#include "pycore.h"

#include <string.h>

#include "heapsnap/errors.h"
#include "native.h"

/* structmember.h type codes, stable across versions */
#define HS_T_OBJECT 6
#define HS_T_OBJECT_EX 16
#define HS_RELATIVE_OFFSET 8

#define VALUE_MAX_CP 40
#define VALUE_MAX_BYTES 40

/* ------------------------------------------------------------------ */
/* GC state                                                            */

static struct _gc_runtime_state *gcstate(void)
{
#if PY_VERSION_HEX < 0x03090000
	return &_PyRuntime.gc;
#else
	return &PyThreadState_Get()->interp->gc;
#endif
}

unsigned long hs_hook__main_thread_ident(void) { return _PyRuntime.main_thread; }
int hs_hook__gc_collecting(void) { return gcstate()->collecting != 0; }
int hs_hook__gc_enabled(void) { return gcstate()->enabled != 0; }
void hs_hook__gc_set_enabled(int on) { gcstate()->enabled = on; }

/* For stats.c (declared in stats_internal.h): every object on the
 * generation lists 0..2, then the permanent generation (3), in list order.
 * GIL held, no collection running, and `fn` must not create or free GC
 * objects. Stops at the first non-zero return of `fn`, which it returns. */
int hs_hook__gc_foreach(int (*fn)(PyObject *op, int generation, void *arg), void *arg)
{
	struct _gc_runtime_state *gc = gcstate();
	for (int i = 0; i <= NUM_GENERATIONS; i++) {
		PyGC_Head *head = i < NUM_GENERATIONS ? &gc->generations[i].head
		                                      : &gc->permanent_generation.head;
		for (PyGC_Head *g = (PyGC_Head *)head->_gc_next; g != head; g = (PyGC_Head *)g->_gc_next) {
			int rc = fn((PyObject *)(g + 1), i, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* PyObject_IS_GC without the call (the exported function in 3.9+). */

static inline int gc_is_tracked(PyObject *op)
{
	return ((PyGC_Head *)op - 1)->_gc_next != 0;
}

/* ------------------------------------------------------------------ */
/* Names used as NAME labels                                           */

#define HS_NAMES(X) \
	X(DICT, "__dict__") X(CLASS, "__class__") X(MRO, "__mro__") X(BASES, "__bases__") \
	X(BASE, "__base__") X(NAME, "__name__") X(QUALNAME, "__qualname__") \
	X(SLOTS, "__slots__") X(SUBCLASSES, "__subclasses__") X(HTMODULE, "ht_module") \
	X(CACHE, "tp_cache") X(CODE, "__code__") X(GLOBALS, "__globals__") \
	X(BUILTINS, "__builtins__") X(DEFAULTS, "__defaults__") X(KWDEFAULTS, "__kwdefaults__") \
	X(CLOSURE, "__closure__") X(DOC, "__doc__") X(MODULE, "__module__") \
	X(ANNOTATIONS, "__annotations__") X(TYPE_PARAMS, "__type_params__") \
	X(CELL, "cell_contents") X(CALLBACK, "__callback__") X(REFERENT, "__referent__") \
	X(CO_CONSTS, "co_consts") X(CO_NAMES, "co_names") X(CO_VARNAMES, "co_varnames") \
	X(CO_FREEVARS, "co_freevars") X(CO_CELLVARS, "co_cellvars") X(CO_FILENAME, "co_filename") \
	X(CO_NAME, "co_name") X(CO_QUALNAME, "co_qualname") X(CO_CODE, "co_code") \
	X(CO_LNOTAB, "co_lnotab") X(CO_LINETABLE, "co_linetable") \
	X(CO_EXCTABLE, "co_exceptiontable") X(CO_LPNAMES, "co_localsplusnames") \
	X(CO_LPKINDS, "co_localspluskinds") X(F_BACK, "f_back") X(F_CODE, "f_code") \
	X(F_BUILTINS, "f_builtins") X(F_GLOBALS, "f_globals") X(F_LOCALS, "f_locals") \
	X(F_TRACE, "f_trace") X(F_FUNC, "f_func") X(F_EXTRA, "f_extra_locals") \
	X(F_LCACHE, "f_locals_cache") X(F_FRAMEOBJ, "frame_obj") \
	X(ND_BASE, "base") X(ND_DTYPE, "dtype")

enum {
#define X(id, s) N_##id,
	HS_NAMES(X)
#undef X
	N_COUNT
};
static const char *const name_text[N_COUNT] = {
#define X(id, s) s,
	HS_NAMES(X)
#undef X
};

/* ------------------------------------------------------------------ */
/* Per-type information                                                */

enum obj_kind {
	K_OTHER, K_DICT, K_LIST, K_TUPLE, K_FUNC, K_CELL, K_TYPE, K_MODULE,
	K_FRAME, K_CODE, K_WEAKREF, K_GEN, K_NDARRAY
};

enum value_kind { V_NONE, V_STR, V_INT, V_BOOL, V_FLOAT, V_BYTES };

enum dict_mode { D_NONE, D_OFFSET, D_MANAGED };

typedef struct slotdef {
	Py_ssize_t offset;
	uint32_t name;
	uint8_t match_only;
} slotdef;

typedef struct tinfo {
	PyTypeObject *tp;
	uint32_t id;
	uint8_t size_kind, kind, value_kind, exact, heap, dict_mode;
	int recipe;        /* hs_native_recipe(): 0 owns no native buffer */
	hs_block_type bt;  /* how its real size is computed (blocks.c) */
	slotdef *slots;
	uint32_t nslots;
} tinfo;

/* A native buffer met during the walk (native.h): its node is written
 * once the walk is over, unless a Python object turned out to be at its
 * address (a wrong recipe must not corrupt the graph). */
typedef struct nbuf {
	uintptr_t address; /* 0: empty slot */
	uint64_t bytes;
	const char *type_name;
	int where;
} nbuf;

typedef struct ntype {
	const char *type_name; /* static string from native.c */
	int where;
	uint32_t id;
} ntype;

/* An edge we can name, before tp_traverse confirms it. */
typedef struct cand {
	PyObject *obj;
	uint64_t label;
	uint8_t lk, ek, flags;
} cand;
#define C_USED 1u
#define C_MATCH_ONLY 2u
#define C_KEYOBJ 4u    /* label is an object address to walk too */
#define C_NOMATCH 8u   /* never matched by a traversal (weak referent) */

typedef struct strcache_slot {
	PyObject *s;
	uint32_t id;
} strcache_slot;

typedef struct walk {
	hs_writer *w;
	const hs_meta *meta;
	hs_vset seen;

	PyObject **stack;
	size_t sp, cap, peak;

	tinfo **types;
	size_t tmask, tcount;
	tinfo *last;

	cand *cands;
	size_t ncand, ccap, cursor;

	strcache_slot *sc; /* str object -> string id, for local names */
	size_t scmask, sccount;

	int err;              /* sticky hs_error_code from a callback */
	const hs_native_state *native;
	nbuf *nb;             /* native buffers by address, open addressing */
	size_t nbmask, nbcount;
	ntype *nt;            /* their synthetic types */
	size_t ntcount;
	hs_blocks_acc acc;    /* bytes by allocator */
	uint32_t names[N_COUNT];
	hs_size_rules sizes;  /* which __sizeof__ is a known builtin (sizes.c) */
	hs_buf tmp;
	hs_walk_result *res;
} walk;

static PyObject *s_sizeof;  /* "__sizeof__", interned, module lifetime */
static PyObject *s_module;  /* "__module__" */

int hs_hook__init(void)
{
	if (!s_sizeof)
		s_sizeof = PyUnicode_InternFromString("__sizeof__");
	if (!s_module)
		s_module = PyUnicode_InternFromString("__module__");
	return s_sizeof && s_module ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Work stack and edges                                                */

static int grow_stack(walk *w)
{
	size_t cap = w->cap ? w->cap * 2 : 65536;
	PyObject **s = hs_reallocarray(w->stack, cap, sizeof(*s));
	if (!s)
		return HS_ENOMEM;
	w->stack = s;
	w->cap = cap;
	return 0;
}

/* Mark and push `o` unless already seen. */
static inline int push_new(walk *w, PyObject *o)
{
	int r = hs_vset_add(&w->seen, o);
	if (r <= 0)
		return r;
	if (w->sp == w->cap && grow_stack(w) < 0)
		return HS_ENOMEM;
	w->stack[w->sp++] = o;
	if (w->sp > w->peak)
		w->peak = w->sp;
	return 0;
}

static inline int emit(walk *w, PyObject *target, uint8_t ek, uint8_t lk, uint64_t label, int keyobj)
{
	hs_edge_record e;
	e.target = (uint64_t)(uintptr_t)target;
	e.kind = ek;
	e.label_kind = lk;
	e.label = label;
	int rc = hs_writer_edge(w->w, &e);
	if (rc < 0)
		return rc;
	w->res->edges++;
	if ((rc = push_new(w, target)) < 0)
		return rc;
	if (keyobj && label)
		return push_new(w, (PyObject *)(uintptr_t)label);
	return 0;
}

static inline void cand_add(walk *w, PyObject *o, uint8_t lk, uint64_t label, uint8_t flags)
{
	if (o == NULL)
		return;
	if (w->ncand == w->ccap) {
		size_t cap = w->ccap ? w->ccap * 2 : 256;
		cand *c = hs_reallocarray(w->cands, cap, sizeof(*c));
		if (!c) {
			w->err = HS_ENOMEM;
			return;
		}
		w->cands = c;
		w->ccap = cap;
	}
	cand *c = &w->cands[w->ncand++];
	c->obj = o;
	c->label = label;
	c->lk = lk;
	c->ek = HS_EDGE_STRONG;
	c->flags = flags;
}

#define CAND_NAME(w, o, n) cand_add((w), (PyObject *)(o), HS_LABEL_NAME, (w)->names[n], 0)

static int visit_edge(PyObject *o, void *arg)
{
	walk *w = arg;
	if (o == NULL)
		return 0;
	size_t n = w->ncand;
	size_t i = w->cursor;
	for (size_t k = 0; k < n; k++) {
		cand *c = &w->cands[i];
		if (c->obj == o && !(c->flags & (C_USED | C_NOMATCH))) {
			c->flags |= C_USED;
			w->cursor = i + 1 == n ? 0 : i + 1;
			int rc = emit(w, o, c->ek, c->lk, c->label, c->flags & C_KEYOBJ);
			if (rc < 0) {
				w->err = rc;
				return -1;
			}
			return 0;
		}
		i = i + 1 == n ? 0 : i + 1;
	}
	int rc = emit(w, o, HS_EDGE_STRONG, HS_LABEL_NONE, 0, 0);
	if (rc < 0) {
		w->err = rc;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Strings                                                             */

static int string_id(walk *w, uint32_t *out, const char *s, size_t len)
{
	int rc = hs_writer_string(w->w, out, s, len);
	return rc;
}

/* String id of a Python str (a local or attribute name), cached by object. */
static int pystr_id(walk *w, PyObject *s, uint32_t *out)
{
	if (!s || !PyUnicode_Check(s))
		return 1;
	size_t h = ((uintptr_t)s >> 4) * 0x9E3779B97F4A7C15ULL >> 7;
	size_t i = h & w->scmask;
	while (w->sc[i].s) {
		if (w->sc[i].s == s) {
			*out = w->sc[i].id;
			return 0;
		}
		i = (i + 1) & w->scmask;
	}
	hs_buf_clear(&w->tmp);
	int trunc;
	int rc = hs_hook__str_utf8(&w->tmp, s, 4096, &trunc);
	if (rc != 0)
		return rc;
	if ((rc = string_id(w, out, (const char *)w->tmp.data, w->tmp.len)) < 0)
		return rc;
	if ((w->sccount + 1) * 2 > w->scmask + 1) {
		size_t cap = (w->scmask + 1) * 2;
		strcache_slot *n = hs_calloc(cap, sizeof(*n));
		if (!n)
			return HS_ENOMEM;
		for (size_t j = 0; j <= w->scmask; j++) {
			if (!w->sc[j].s)
				continue;
			size_t k = (((uintptr_t)w->sc[j].s >> 4) * 0x9E3779B97F4A7C15ULL >> 7) & (cap - 1);
			while (n[k].s)
				k = (k + 1) & (cap - 1);
			n[k] = w->sc[j];
		}
		hs_free(w->sc);
		w->sc = n;
		w->scmask = cap - 1;
		i = h & w->scmask;
		while (w->sc[i].s)
			i = (i + 1) & w->scmask;
	}
	w->sc[i].s = s;
	w->sc[i].id = *out;
	w->sccount++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Types                                                               */

/* "module.QualName", builtins bare, read without running Python code. */
static int type_name(walk *w, PyTypeObject *tp, hs_buf *b)
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
		if (ht->ht_qualname && PyUnicode_Check(ht->ht_qualname)) {
			if (hs_hook__str_utf8(b, ht->ht_qualname, 1000, &trunc) < 0)
				return HS_ENOMEM;
			return 0;
		}
	}
	const char *n = tp->tp_name ? tp->tp_name : "?";
	return hs_buf_put(b, n, strlen(n));
}

static int add_slots(walk *w, tinfo *ti)
{
	PyTypeObject *tp = ti->tp;
	PyObject *mro = tp->tp_mro;
	Py_ssize_t nb = mro && PyTuple_Check(mro) ? PyTuple_GET_SIZE(mro) : 0;
	for (Py_ssize_t b = -1; b < nb; b++) {
		PyTypeObject *base = b < 0 ? tp : (PyTypeObject *)PyTuple_GET_ITEM(mro, b);
		if (b >= 0 && base == tp)
			continue;
		if (!PyType_Check((PyObject *)base) || !base->tp_members)
			continue;
		int heap = (base->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
		if (!heap && ti->kind != K_OTHER)
			continue; /* kinds with their own labels: avoid double names */
		for (PyMemberDef *m = base->tp_members; m->name; m++) {
			if (m->type != HS_T_OBJECT && m->type != HS_T_OBJECT_EX)
				continue;
			if (m->flags & HS_RELATIVE_OFFSET)
				continue;
			int dup = 0;
			for (uint32_t k = 0; k < ti->nslots; k++)
				dup |= ti->slots[k].offset == m->offset;
			if (dup || m->offset < (Py_ssize_t)sizeof(PyObject))
				continue;
			slotdef *s = hs_reallocarray(ti->slots, ti->nslots + 1, sizeof(*s));
			if (!s)
				return HS_ENOMEM;
			ti->slots = s;
			s += ti->nslots++;
			s->offset = m->offset;
			s->match_only = !heap;
			int rc = string_id(w, &s->name, m->name, strlen(m->name));
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * numpy arrays are not GC objects and have no tp_traverse, yet a view keeps
 * its base (the array owning the buffer) alive through `base`: without that
 * edge a big buffer held only by a view would look held from C. The fields
 * sit at fixed offsets in PyArrayObject_fields (numpy 1.x and 2.x alike):
 * PyObject_HEAD, data, nd, dimensions, strides, base, descr.
 */
typedef struct ndarray_head {
	PyObject_HEAD
	char *data;
	int nd;
	void *dimensions;
	void *strides;
	PyObject *base;
	PyObject *descr;
	int flags;
} ndarray_head;

#define HS_NPY_ARRAY_OWNDATA 0x0004 /* NPY_ARRAY_OWNDATA, numpy 1.x and 2.x */

/*
 * What numpy's ndarray.__sizeof__ returns (basic size, dimensions and
 * strides, plus the buffer when the array owns it), computed from the fields
 * without calling it: fork mode (fork.c) runs no code in the child. The
 * buffer's size is taken from the strides: an array that owns its buffer is
 * contiguous (C or Fortran order), so the largest |stride| x extent is its
 * byte count, whatever the dtype descriptor's layout (which differs between
 * numpy 1 and 2). Returns -1 when that cannot be told (0-d arrays).
 */
static Py_ssize_t ndarray_native_size(PyTypeObject *tp, PyObject *op)
{
	const ndarray_head *a = (const ndarray_head *)op;
	if (a->nd < 0 || a->nd > 64)
		return -1;
	Py_ssize_t s = tp->tp_basicsize + (Py_ssize_t)a->nd * (Py_ssize_t)sizeof(Py_ssize_t) * 2;
	if (!(a->flags & HS_NPY_ARRAY_OWNDATA))
		return s;
	if (a->nd == 0 || !a->dimensions || !a->strides)
		return -1;
	const Py_ssize_t *dims = a->dimensions, *strides = a->strides;
	Py_ssize_t bytes = 0;
	for (int i = 0; i < a->nd; i++) {
		if (dims[i] == 0)
			return s; /* empty */
		Py_ssize_t st = strides[i] < 0 ? -strides[i] : strides[i];
		if (dims[i] > 0 && st > 0 && st <= PY_SSIZE_T_MAX / dims[i] && st * dims[i] > bytes)
			bytes = st * dims[i];
	}
	return bytes > 0 ? s + bytes : -1;
}

static int is_ndarray_type(PyTypeObject *tp)
{
	for (PyTypeObject *t = tp; t; t = t->tp_base)
		if (!strcmp(t->tp_name, "numpy.ndarray"))
			return tp->tp_basicsize >= (Py_ssize_t)sizeof(ndarray_head);
	return 0;
}

static tinfo *tinfo_new(walk *w, PyTypeObject *tp)
{
	tinfo *ti = hs_calloc(1, sizeof(*ti));
	if (!ti) {
		w->err = HS_ENOMEM;
		return NULL;
	}
	ti->tp = tp;
	unsigned long fl = tp->tp_flags;
	ti->heap = (fl & Py_TPFLAGS_HEAPTYPE) != 0;
	ti->size_kind = (uint8_t)hs_hook__size_kind(&w->sizes, tp);

	if (fl & Py_TPFLAGS_DICT_SUBCLASS) {
		ti->kind = K_DICT;
		ti->exact = tp == &PyDict_Type;
	} else if (fl & Py_TPFLAGS_LIST_SUBCLASS) {
		ti->kind = K_LIST;
		ti->exact = tp == &PyList_Type;
	} else if (fl & Py_TPFLAGS_TUPLE_SUBCLASS) {
		ti->kind = K_TUPLE;
		ti->exact = tp == &PyTuple_Type;
	} else if (fl & Py_TPFLAGS_TYPE_SUBCLASS) {
		ti->kind = K_TYPE;
	} else if (tp == &PyFunction_Type) {
		ti->kind = K_FUNC;
	} else if (tp == &PyCell_Type) {
		ti->kind = K_CELL;
	} else if (PyType_IsSubtype(tp, &PyModule_Type)) {
		ti->kind = K_MODULE;
	} else if (tp == &PyFrame_Type) {
		ti->kind = K_FRAME;
	} else if (tp == &PyCode_Type) {
		ti->kind = K_CODE;
	} else if (PyType_IsSubtype(tp, &_PyWeakref_RefType) || tp == &_PyWeakref_ProxyType ||
	           tp == &_PyWeakref_CallableProxyType) {
		ti->kind = K_WEAKREF;
#if PY_VERSION_HEX >= 0x030B0000
	} else if (tp == &PyGen_Type || tp == &PyCoro_Type || tp == &PyAsyncGen_Type) {
		ti->kind = K_GEN;
#endif
	} else if (is_ndarray_type(tp)) {
		ti->kind = K_NDARRAY;
	}

	if (fl & Py_TPFLAGS_UNICODE_SUBCLASS)
		ti->value_kind = V_STR;
	else if (tp == &PyBool_Type)
		ti->value_kind = V_BOOL;
	else if (fl & Py_TPFLAGS_LONG_SUBCLASS)
		ti->value_kind = V_INT;
	else if (fl & Py_TPFLAGS_BYTES_SUBCLASS)
		ti->value_kind = V_BYTES;
	else if (PyType_IsSubtype(tp, &PyFloat_Type))
		ti->value_kind = V_FLOAT;

	if (ti->kind != K_TYPE && ti->kind != K_FUNC && ti->kind != K_MODULE) {
#if PY_VERSION_HEX >= 0x030B0000
		if (fl & Py_TPFLAGS_MANAGED_DICT)
			ti->dict_mode = D_MANAGED;
		else
#endif
		if (tp->tp_dictoffset != 0)
			ti->dict_mode = D_OFFSET;
	}
	hs_blocks_type_init(&w->sizes, tp, &ti->bt);
	ti->recipe = w->native ? hs_native_recipe(w->native, tp) : 0;
	int rc = add_slots(w, ti);

	hs_buf name = HS_BUF_INIT;
	uint32_t sid = 0;
	if (rc == 0)
		rc = type_name(w, tp, &name);
	if (rc == 0)
		rc = string_id(w, &sid, name.len ? (const char *)name.data : "", name.len);
	hs_buf_release(&name);
	if (rc == 0) {
		hs_type_record tr;
		tr.address = (uint64_t)(uintptr_t)tp;
		tr.name = sid;
		tr.flags = (PyType_IS_GC(tp) ? HS_TYPE_GC : 0) | (ti->heap ? HS_TYPE_HEAP : 0) |
		           (ti->bt.estimated ? HS_TYPE_SIZEOF_PY : 0);
		tr.basic_size = (uint64_t)tp->tp_basicsize;
		rc = hs_writer_type(w->w, &ti->id, &tr);
	}
	if (rc < 0) {
		hs_free(ti->slots);
		hs_free(ti);
		w->err = rc;
		return NULL;
	}
	w->res->types++;
	return ti;
}

static inline size_t type_slot(PyTypeObject *tp, size_t mask)
{
	return (size_t)(((uintptr_t)tp >> 4) * 0x9E3779B97F4A7C15ULL >> 13) & mask;
}

static tinfo *tinfo_get(walk *w, PyTypeObject *tp)
{
	if (w->last && w->last->tp == tp)
		return w->last;
	size_t i = type_slot(tp, w->tmask);
	while (w->types[i]) {
		if (w->types[i]->tp == tp)
			return w->last = w->types[i];
		i = (i + 1) & w->tmask;
	}
	tinfo *ti = tinfo_new(w, tp);
	if (!ti)
		return NULL;
	if ((w->tcount + 1) * 2 > w->tmask + 1) {
		size_t cap = (w->tmask + 1) * 2;
		tinfo **n = hs_calloc(cap, sizeof(*n));
		if (!n) {
			hs_free(ti->slots);
			hs_free(ti);
			w->err = HS_ENOMEM;
			return NULL;
		}
		for (size_t j = 0; j <= w->tmask; j++) {
			if (!w->types[j])
				continue;
			size_t k = type_slot(w->types[j]->tp, cap - 1);
			while (n[k])
				k = (k + 1) & (cap - 1);
			n[k] = w->types[j];
		}
		hs_free(w->types);
		w->types = n;
		w->tmask = cap - 1;
		i = type_slot(tp, w->tmask);
		while (w->types[i])
			i = (i + 1) & w->tmask;
	}
	w->types[i] = ti;
	w->tcount++;
	return w->last = ti;
}

/* ------------------------------------------------------------------ */
/* Sizes: real bytes (blocks.c), and what sys.getsizeof reports         */

/* Call op's type's C-level __sizeof__ like sys.getsizeof does, swallowing
 * any exception (in-process only: it creates an int). A method descriptor
 * runs no Python code. @return 0 with *out set, or 1. */
static int size_call_c(walk *w, PyObject *op, Py_ssize_t *out)
{
	PyTypeObject *tp = Py_TYPE(op);
	PyObject *desc = _PyType_Lookup(tp, s_sizeof);
	if (!desc || Py_TYPE(desc) != &PyMethodDescr_Type)
		return 1;
	PyObject *et, *ev, *etb;
	PyErr_Fetch(&et, &ev, &etb);
	Py_INCREF(desc);
	Py_INCREF(op);
	PyObject *r = PyObject_CallFunctionObjArgs(desc, op, NULL);
	w->res->sizeof_calls++;
	Py_ssize_t v = -1;
	if (r && PyLong_Check(r))
		v = PyLong_AsSsize_t(r);
	Py_XDECREF(r);
	Py_DECREF(op);
	Py_DECREF(desc);
	int ok = v >= 0 && !PyErr_Occurred();
	PyErr_Clear();
	PyErr_Restore(et, ev, etb);
	if (!ok) {
		w->res->sizeof_errors++;
		return 1;
	}
	*out = v;
	return 0;
}

/* What sys.getsizeof(op) reports, when it can be known without running
 * Python code: computed in C for the builtin kinds (sizes.c) and numpy
 * arrays, a C __sizeof__ called in-process. @return 0 with *out, or 1. */
static int obj_getsizeof(walk *w, tinfo *ti, PyObject *op, int is_gc, uint64_t *out)
{
	PyTypeObject *tp = ti->tp;
	Py_ssize_t s;
	if (hs_hook__size_native(ti->size_kind, tp, op, &s)) {
		*out = (uint64_t)(s + hs_hook__presize(tp, op, is_gc));
		return 0;
	}
	if (ti->size_kind != HS_SK_CALL_C)
		return 1; /* a Python __sizeof__ (never called: slow, and nothing needs it) */
	if (ti->kind == K_NDARRAY && (s = ndarray_native_size(tp, op)) >= 0) {
		*out = (uint64_t)(s + hs_hook__presize(tp, op, is_gc));
		return 0;
	}
	if (hs_hook__no_heap_writes) {
		/* fork mode (fork.c): a call would create an int in the heap
		 * being walked */
		w->res->sizeof_not_called++;
		return 1;
	}
	if (size_call_c(w, op, &s) != 0)
		return 1;
	*out = (uint64_t)(s + hs_hook__presize(tp, op, is_gc));
	return 0;
}

static void obj_size(walk *w, tinfo *ti, PyObject *op, hs_node_record *n)
{
	n->size = hs_blocks_size(&ti->bt, ti->tp, op, &w->acc, (n->flags & HS_NODE_GC_TRACKED) != 0);
	if (ti->bt.estimated) {
		n->flags |= HS_NODE_SIZE_ESTIMATED;
		w->res->sizes_estimated++;
	}
}

/* ------------------------------------------------------------------ */
/* Short values                                                        */

static int obj_value(walk *w, tinfo *ti, PyObject *op, hs_node_record *n)
{
	hs_buf *b = &w->tmp;
	hs_buf_clear(b);
	int trunc = 0;
	switch (ti->value_kind) {
	case V_STR: {
		int rc = hs_hook__str_utf8(b, op, VALUE_MAX_CP, &trunc);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return 0;
		break;
	}
	case V_BOOL: {
		const char *t = op == Py_True ? "True" : "False";
		if (hs_buf_put(b, t, strlen(t)) < 0)
			return HS_ENOMEM;
		break;
	}
	case V_INT: {
		int ovf = 0, neg = 0;
		unsigned long long u;
		long long v = PyLong_AsLongLongAndOverflow(op, &ovf);
		if (v == -1 && PyErr_Occurred()) {
			PyErr_Clear();
			return 0;
		}
		if (ovf == 0) {
			neg = v < 0;
			u = neg ? 0ULL - (unsigned long long)v : (unsigned long long)v;
		} else if (ovf > 0 && _PyLong_NumBits(op) <= 64) {
			u = PyLong_AsUnsignedLongLong(op);
			if (u == (unsigned long long)-1 && PyErr_Occurred()) {
				PyErr_Clear();
				return 0;
			}
		} else {
			return 0; /* beyond 64 bits: no value */
		}
		char t[24];
		size_t i = sizeof(t);
		do {
			t[--i] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (neg)
			t[--i] = '-';
		if (hs_buf_put(b, t + i, sizeof(t) - i) < 0)
			return HS_ENOMEM;
		break;
	}
	case V_FLOAT: {
		char *t = PyOS_double_to_string(PyFloat_AS_DOUBLE(op), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
		if (!t) {
			PyErr_Clear();
			return 0;
		}
		int rc = hs_buf_put(b, t, strlen(t));
		PyMem_Free(t);
		if (rc < 0)
			return HS_ENOMEM;
		break;
	}
	case V_BYTES: {
		Py_ssize_t len = PyBytes_GET_SIZE(op);
		if (len > VALUE_MAX_BYTES) {
			len = VALUE_MAX_BYTES;
			trunc = 1;
		}
		if (hs_buf_put(b, PyBytes_AS_STRING(op), (size_t)len) < 0)
			return HS_ENOMEM;
		break;
	}
	default:
		return 0;
	}
	n->flags |= HS_NODE_HAS_VALUE | (trunc ? HS_NODE_VALUE_TRUNCATED : 0);
	n->value = (const char *)b->data;
	n->value_len = (uint32_t)b->len;
	if (!n->value)
		n->value = "";
	return 0;
}

/* ------------------------------------------------------------------ */
/* Candidates per kind                                                 */

static void dict_cands(walk *w, PyObject *op)
{
#if PY_VERSION_HEX >= 0x030D0000
	/* A dict materialised from inline values shares them while the owner's
	 * values are valid: the owner holds them (PyObject_VisitManagedDict)
	 * and dict_traverse skips them, and the keys belong to the type. */
	PyDictValues *vals = ((PyDictObject *)op)->ma_values;
	if (vals && vals->embedded)
		return;
#endif
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	while (PyDict_Next(op, &pos, &k, &v)) {
		cand_add(w, k, HS_LABEL_DICT_KEY, 0, 0);
		cand_add(w, v, HS_LABEL_KEY, (uint64_t)(uintptr_t)k, C_KEYOBJ);
	}
}

static void seq_cands(walk *w, PyObject **items, Py_ssize_t n)
{
	for (Py_ssize_t i = 0; i < n; i++)
		cand_add(w, items[i], HS_LABEL_INDEX, (uint64_t)i, 0);
}

static void func_cands(walk *w, PyObject *op)
{
	PyFunctionObject *f = (PyFunctionObject *)op;
	CAND_NAME(w, f->func_code, N_CODE);
	CAND_NAME(w, f->func_globals, N_GLOBALS);
#if PY_VERSION_HEX >= 0x030A0000
	CAND_NAME(w, f->func_builtins, N_BUILTINS);
#endif
	CAND_NAME(w, f->func_module, N_MODULE);
	CAND_NAME(w, f->func_defaults, N_DEFAULTS);
	CAND_NAME(w, f->func_kwdefaults, N_KWDEFAULTS);
	CAND_NAME(w, f->func_doc, N_DOC);
	CAND_NAME(w, f->func_name, N_NAME);
	CAND_NAME(w, f->func_dict, N_DICT);
	CAND_NAME(w, f->func_closure, N_CLOSURE);
	CAND_NAME(w, f->func_annotations, N_ANNOTATIONS);
#if PY_VERSION_HEX >= 0x030C0000
	CAND_NAME(w, f->func_typeparams, N_TYPE_PARAMS);
#endif
	CAND_NAME(w, f->func_qualname, N_QUALNAME);
}

static void type_cands(walk *w, PyObject *op)
{
	PyTypeObject *t = (PyTypeObject *)op;
	int heap = (t->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
	PyObject *dict = t->tp_dict;
#if PY_VERSION_HEX >= 0x030C0000
	if (!dict && !heap)
		dict = _PyType_GetDict(t); /* static builtin types keep it per interpreter */
#endif
	CAND_NAME(w, dict, N_DICT);
	CAND_NAME(w, t->tp_cache, N_CACHE);
	CAND_NAME(w, t->tp_mro, N_MRO);
	CAND_NAME(w, t->tp_bases, N_BASES);
	CAND_NAME(w, t->tp_base, N_BASE);
	if (heap) {
		PyHeapTypeObject *ht = (PyHeapTypeObject *)t;
#if PY_VERSION_HEX >= 0x03090000
		CAND_NAME(w, ht->ht_module, N_HTMODULE);
#endif
		CAND_NAME(w, ht->ht_name, N_NAME);
		CAND_NAME(w, ht->ht_qualname, N_QUALNAME);
		CAND_NAME(w, ht->ht_slots, N_SLOTS);
	}
#if PY_VERSION_HEX >= 0x030C0000
	/* 3.12+: a static builtin type stores an index there, not a dict. */
	if (heap)
#endif
		CAND_NAME(w, t->tp_subclasses, N_SUBCLASSES);
}

static void code_cands(walk *w, PyObject *op)
{
	PyCodeObject *co = (PyCodeObject *)op;
	CAND_NAME(w, co->co_consts, N_CO_CONSTS);
	CAND_NAME(w, co->co_names, N_CO_NAMES);
	CAND_NAME(w, co->co_filename, N_CO_FILENAME);
	CAND_NAME(w, co->co_name, N_CO_NAME);
#if PY_VERSION_HEX < 0x030B0000
	CAND_NAME(w, co->co_code, N_CO_CODE);
	CAND_NAME(w, co->co_varnames, N_CO_VARNAMES);
	CAND_NAME(w, co->co_freevars, N_CO_FREEVARS);
	CAND_NAME(w, co->co_cellvars, N_CO_CELLVARS);
#if PY_VERSION_HEX < 0x030A0000
	CAND_NAME(w, co->co_lnotab, N_CO_LNOTAB);
#else
	CAND_NAME(w, co->co_linetable, N_CO_LINETABLE);
#endif
#else
	CAND_NAME(w, co->co_qualname, N_CO_QUALNAME);
	CAND_NAME(w, co->co_linetable, N_CO_LINETABLE);
	CAND_NAME(w, co->co_exceptiontable, N_CO_EXCTABLE);
	CAND_NAME(w, co->co_localsplusnames, N_CO_LPNAMES);
	CAND_NAME(w, co->co_localspluskinds, N_CO_LPKINDS);
#if PY_VERSION_HEX < 0x030C0000
	CAND_NAME(w, co->_co_code, N_CO_CODE);
#else
	if (co->_co_cached) {
		CAND_NAME(w, co->_co_cached->_co_code, N_CO_CODE);
		CAND_NAME(w, co->_co_cached->_co_varnames, N_CO_VARNAMES);
		CAND_NAME(w, co->_co_cached->_co_cellvars, N_CO_CELLVARS);
		CAND_NAME(w, co->_co_cached->_co_freevars, N_CO_FREEVARS);
	}
#endif
#endif
}

static void local_cand(walk *w, PyObject *v, PyObject *name, uint8_t flags)
{
	uint32_t id;
	if (!v)
		return;
	int rc = pystr_id(w, name, &id);
	if (rc < 0) {
		w->err = rc;
		return;
	}
	if (rc > 0)
		cand_add(w, v, HS_LABEL_NONE, 0, flags);
	else
		cand_add(w, v, HS_LABEL_LOCAL, id, flags);
}

#if PY_VERSION_HEX >= 0x030B0000
static PyCodeObject *iframe_code(_PyInterpreterFrame *fr)
{
#if PY_VERSION_HEX >= 0x030D0000
	return fr->f_executable && PyCode_Check(fr->f_executable) ? (PyCodeObject *)fr->f_executable : NULL;
#else
	return fr->f_code;
#endif
}

/* Names for what _PyFrame_Traverse visits of a frame owned by a frame or
 * generator object; match-only, the traversal decides what is live. */
static void iframe_cands(walk *w, _PyInterpreterFrame *fr)
{
	PyCodeObject *co = iframe_code(fr);
	if (!co)
		return;
	PyObject *names = co->co_localsplusnames;
	int n = co->co_nlocalsplus;
	for (int i = 0; i < n; i++) {
		PyObject *name = names && PyTuple_Check(names) && i < PyTuple_GET_SIZE(names)
		                     ? PyTuple_GET_ITEM(names, i) : NULL;
		local_cand(w, fr->localsplus[i], name, C_MATCH_ONLY);
	}
	cand_add(w, (PyObject *)co, HS_LABEL_NAME, w->names[N_F_CODE], C_MATCH_ONLY);
	cand_add(w, fr->f_locals, HS_LABEL_NAME, w->names[N_F_LOCALS], C_MATCH_ONLY);
#if PY_VERSION_HEX >= 0x030C0000
	cand_add(w, fr->f_funcobj, HS_LABEL_NAME, w->names[N_F_FUNC], C_MATCH_ONLY);
#else
	cand_add(w, (PyObject *)fr->f_func, HS_LABEL_NAME, w->names[N_F_FUNC], C_MATCH_ONLY);
#endif
}
#endif

static void frame_cands(walk *w, PyObject *op)
{
	PyFrameObject *f = (PyFrameObject *)op;
	CAND_NAME(w, f->f_back, N_F_BACK);
	CAND_NAME(w, f->f_trace, N_F_TRACE);
#if PY_VERSION_HEX < 0x030B0000
	PyCodeObject *co = f->f_code;
	CAND_NAME(w, co, N_F_CODE);
	CAND_NAME(w, f->f_builtins, N_F_BUILTINS);
	CAND_NAME(w, f->f_globals, N_F_GLOBALS);
	CAND_NAME(w, f->f_locals, N_F_LOCALS);
	if (!co || !PyTuple_Check(co->co_varnames) || !PyTuple_Check(co->co_cellvars) ||
	    !PyTuple_Check(co->co_freevars))
		return;
	Py_ssize_t nl = co->co_nlocals, nc = PyTuple_GET_SIZE(co->co_cellvars);
	Py_ssize_t nf = PyTuple_GET_SIZE(co->co_freevars);
	for (Py_ssize_t i = 0; i < nl + nc + nf; i++) {
		PyObject *name;
		if (i < nl)
			name = i < PyTuple_GET_SIZE(co->co_varnames) ? PyTuple_GET_ITEM(co->co_varnames, i) : NULL;
		else if (i < nl + nc)
			name = PyTuple_GET_ITEM(co->co_cellvars, i - nl);
		else
			name = PyTuple_GET_ITEM(co->co_freevars, i - nl - nc);
		local_cand(w, f->f_localsplus[i], name, 0);
	}
#else
#if PY_VERSION_HEX >= 0x030D0000
	CAND_NAME(w, f->f_extra_locals, N_F_EXTRA);
	CAND_NAME(w, f->f_locals_cache, N_F_LCACHE);
#endif
	_PyInterpreterFrame *fr = f->f_frame;
	if (fr && fr->owner == FRAME_OWNED_BY_FRAME_OBJECT)
		iframe_cands(w, fr);
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
static void gen_cands(walk *w, PyObject *op)
{
	PyGenObject *g = (PyGenObject *)op;
	if (g->gi_frame_state < FRAME_CLEARED)
		iframe_cands(w, (_PyInterpreterFrame *)g->gi_iframe);
}
#endif

/* Instance attributes: managed dict/values, tp_dictoffset dict, slots. */
static void instance_cands(walk *w, tinfo *ti, PyObject *op)
{
	for (uint32_t i = 0; i < ti->nslots; i++) {
		PyObject *v = *(PyObject **)((char *)op + ti->slots[i].offset);
		cand_add(w, v, HS_LABEL_ATTR_NAME, ti->slots[i].name, ti->slots[i].match_only ? C_MATCH_ONLY : 0);
	}
	if (ti->dict_mode == D_OFFSET) {
		PyObject **dp = _PyObject_GetDictPtr(op); /* no managed dict: just arithmetic */
		if (dp && *dp)
			CAND_NAME(w, *dp, N_DICT);
	}
#if PY_VERSION_HEX >= 0x030B0000
	else if (ti->dict_mode == D_MANAGED) {
		PyDictKeysObject *keys = ((PyHeapTypeObject *)ti->tp)->ht_cached_keys;
		PyDictValues *values = NULL;
		Py_ssize_t nvalues = 0;
		PyObject *dict = NULL;
#if PY_VERSION_HEX < 0x030C0000
		values = *_PyObject_ValuesPointer(op);
		dict = *_PyObject_ManagedDictPointer(op);
		nvalues = values && keys ? keys->dk_nentries : 0;
#elif PY_VERSION_HEX < 0x030D0000
		PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(op);
		if (_PyDictOrValues_IsValues(dorv)) {
			values = _PyDictOrValues_GetValues(dorv);
			nvalues = keys ? keys->dk_nentries : 0;
		} else {
			dict = _PyDictOrValues_GetDict(dorv);
		}
#else
		if (ti->tp->tp_flags & Py_TPFLAGS_INLINE_VALUES) {
			values = _PyObject_InlineValues(op);
			if (values->valid)
				nvalues = values->capacity;
			else
				values = NULL;
		}
		dict = (PyObject *)_PyObject_ManagedDictPointer(op)->dict;
#endif
		if (values && nvalues > 0) {
			Py_ssize_t nkeys = keys && keys->dk_kind != DICT_KEYS_GENERAL ? keys->dk_nentries : 0;
			PyDictUnicodeEntry *ents = nkeys ? DK_UNICODE_ENTRIES(keys) : NULL;
			for (Py_ssize_t i = 0; i < nvalues; i++) {
				PyObject *v = values->values[i];
				if (!v)
					continue;
				PyObject *k = i < nkeys ? ents[i].me_key : NULL;
				if (k)
					cand_add(w, v, HS_LABEL_ATTR, (uint64_t)(uintptr_t)k, C_KEYOBJ);
				else
					cand_add(w, v, HS_LABEL_NONE, 0, 0);
			}
		}
		CAND_NAME(w, dict, N_DICT);
	}
#endif
	/* Instances of heap types own a reference to their type. */
	if (ti->heap)
		CAND_NAME(w, Py_TYPE(op), N_CLASS);
}

/* ------------------------------------------------------------------ */
/* One object                                                          */

static int direct_seq(walk *w, PyObject **items, Py_ssize_t n)
{
	for (Py_ssize_t i = 0; i < n; i++) {
		if (!items[i])
			continue;
		int rc = emit(w, items[i], HS_EDGE_STRONG, HS_LABEL_INDEX, (uint64_t)i, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int direct_dict(walk *w, PyObject *op)
{
#if PY_VERSION_HEX >= 0x030D0000
	PyDictValues *vals = ((PyDictObject *)op)->ma_values;
	if (vals && vals->embedded)
		return 0;
#endif
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	while (PyDict_Next(op, &pos, &k, &v)) {
		int rc = emit(w, k, HS_EDGE_STRONG, HS_LABEL_DICT_KEY, 0, 0);
		if (rc == 0)
			rc = emit(w, v, HS_EDGE_STRONG, HS_LABEL_KEY, (uint64_t)(uintptr_t)k, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int obj_edges(walk *w, tinfo *ti, PyObject *op, int is_gc)
{
	PyTypeObject *tp = ti->tp;
	w->ncand = 0;
	w->cursor = 0;
	switch (ti->kind) {
	case K_DICT:
		if (ti->exact)
			return direct_dict(w, op);
		dict_cands(w, op);
		break;
	case K_LIST:
		if (ti->exact)
			return direct_seq(w, ((PyListObject *)op)->ob_item, PyList_GET_SIZE(op));
		seq_cands(w, ((PyListObject *)op)->ob_item, PyList_GET_SIZE(op));
		break;
	case K_TUPLE:
		if (ti->exact)
			return direct_seq(w, ((PyTupleObject *)op)->ob_item, PyTuple_GET_SIZE(op));
		seq_cands(w, ((PyTupleObject *)op)->ob_item, PyTuple_GET_SIZE(op));
		break;
	case K_FUNC:
		func_cands(w, op);
		break;
	case K_CELL:
		CAND_NAME(w, ((PyCellObject *)op)->ob_ref, N_CELL);
		break;
	case K_TYPE:
		type_cands(w, op);
		break;
	case K_MODULE:
		CAND_NAME(w, PyModule_GetDict(op), N_DICT);
		break;
	case K_FRAME:
		frame_cands(w, op);
		break;
	case K_CODE:
		code_cands(w, op);
		break;
	case K_WEAKREF: {
		PyWeakReference *wr = (PyWeakReference *)op;
		if (wr->wr_object && wr->wr_object != Py_None) {
			cand_add(w, wr->wr_object, HS_LABEL_NAME, w->names[N_REFERENT], C_NOMATCH);
			if (w->ncand)
				w->cands[w->ncand - 1].ek = HS_EDGE_WEAK;
		}
		CAND_NAME(w, wr->wr_callback, N_CALLBACK);
		break;
	}
#if PY_VERSION_HEX >= 0x030B0000
	case K_GEN:
		gen_cands(w, op);
		break;
#endif
	case K_NDARRAY: {
		ndarray_head *a = (ndarray_head *)op;
		cand_add(w, a->base, HS_LABEL_ATTR_NAME, w->names[N_ND_BASE], 0);
		cand_add(w, a->descr, HS_LABEL_ATTR_NAME, w->names[N_ND_DTYPE], 0);
		break;
	}
	default:
		break;
	}
	instance_cands(w, ti, op);
	if (w->err)
		return w->err;

	if (is_gc && tp->tp_traverse) {
		tp->tp_traverse(op, visit_edge, w);
		if (w->err)
			return w->err;
	}
	for (size_t i = 0; i < w->ncand; i++) {
		cand *c = &w->cands[i];
		if (c->flags & (C_USED | C_MATCH_ONLY))
			continue;
		int rc = emit(w, c->obj, c->ek, c->lk, c->label, c->flags & C_KEYOBJ);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Native buffers (native.h)                                           */

#define NATIVE_MAX 8

static inline size_t nb_slot(uintptr_t a, size_t mask)
{
	return (size_t)((a >> 4) * 0x9E3779B97F4A7C15ULL >> 17) & mask;
}

/* The slot of buffer `a`, or an empty one where it goes. */
static nbuf *nb_find(walk *w, uintptr_t a)
{
	size_t i = nb_slot(a, w->nbmask);
	while (w->nb[i].address && w->nb[i].address != a)
		i = (i + 1) & w->nbmask;
	return &w->nb[i];
}

static int nb_grow(walk *w)
{
	size_t cap = w->nb ? (w->nbmask + 1) * 2 : 1024;
	nbuf *n = hs_calloc(cap, sizeof(*n));
	if (!n)
		return HS_ENOMEM;
	for (size_t j = 0; w->nb && j <= w->nbmask; j++) {
		if (!w->nb[j].address)
			continue;
		size_t k = nb_slot(w->nb[j].address, cap - 1);
		while (n[k].address)
			k = (k + 1) & (cap - 1);
		n[k] = w->nb[j];
	}
	hs_free(w->nb);
	w->nb = n;
	w->nbmask = cap - 1;
	return 0;
}

static inline int seen_object(walk *w, uintptr_t a)
{
	return hs_vset_has(&w->seen, (const void *)a);
}

/* The owner -> buffer edges of `op`; each distinct buffer is remembered
 * for its node (written by native_nodes after the walk). A buffer at the
 * address of an object already seen is skipped (counted). */
static int native_edges(walk *w, tinfo *ti, PyObject *op)
{
	hs_native_buffer b[NATIVE_MAX];
	int n = hs_native_buffers(w->native, ti->recipe, op, b, NATIVE_MAX);
	for (int i = 0; i < n && i < NATIVE_MAX; i++) {
		if (!b[i].address || !b[i].type_name || !b[i].label)
			continue;
		if (seen_object(w, b[i].address)) {
			w->res->native_conflicts++;
			continue;
		}
		if ((w->nbcount + 1) * 2 > (w->nb ? w->nbmask + 1 : 0) && nb_grow(w) < 0)
			return HS_ENOMEM;
		nbuf *slot = nb_find(w, b[i].address);
		if (!slot->address) {
			slot->address = b[i].address;
			slot->bytes = b[i].bytes;
			slot->type_name = b[i].type_name;
			slot->where = b[i].where;
			w->nbcount++;
		}
		uint32_t label;
		int rc = string_id(w, &label, b[i].label, strlen(b[i].label));
		if (rc < 0)
			return rc;
		hs_edge_record e = { (uint64_t)b[i].address, HS_EDGE_STRONG, HS_LABEL_NAME, label };
		if ((rc = hs_writer_edge(w->w, &e)) < 0)
			return rc;
		w->res->edges++;
	}
	return 0;
}

static int native_type(walk *w, const nbuf *b, uint32_t *id)
{
	for (size_t i = 0; i < w->ntcount; i++) {
		if (w->nt[i].where == b->where &&
		    (w->nt[i].type_name == b->type_name || !strcmp(w->nt[i].type_name, b->type_name))) {
			*id = w->nt[i].id;
			return 0;
		}
	}
	ntype *nt = hs_reallocarray(w->nt, w->ntcount + 1, sizeof(*nt));
	if (!nt)
		return HS_ENOMEM;
	w->nt = nt;
	hs_type_record tr;
	memset(&tr, 0, sizeof(tr));
	/* a synthetic type: its "address" is that of its static name */
	tr.address = (uint64_t)(uintptr_t)b->type_name;
	tr.flags = HS_TYPE_NATIVE | (b->where == HS_NATIVE_DEVICE ? HS_TYPE_DEVICE : 0) |
	           (b->where == HS_NATIVE_MAPPED ? HS_TYPE_MAPPED : 0);
	int rc = string_id(w, &tr.name, b->type_name, strlen(b->type_name));
	if (rc == 0)
		rc = hs_writer_type(w->w, id, &tr);
	if (rc < 0)
		return rc;
	nt[w->ntcount].type_name = b->type_name;
	nt[w->ntcount].where = b->where;
	nt[w->ntcount].id = *id;
	w->ntcount++;
	w->res->types++;
	return 0;
}

/* One node per distinct buffer, once every object is known. */
static int native_nodes(walk *w)
{
	for (size_t i = 0; w->nb && i <= w->nbmask; i++) {
		const nbuf *b = &w->nb[i];
		if (!b->address)
			continue;
		if (seen_object(w, b->address)) {
			w->res->native_conflicts++; /* its edges name that object */
			continue;
		}
		hs_node_record n;
		memset(&n, 0, sizeof(n));
		n.address = (uint64_t)b->address;
		n.size = b->bytes;
		int rc = native_type(w, b, &n.type);
		if (rc == 0)
			rc = hs_writer_node(w->w, &n);
		if (rc < 0)
			return rc;
		w->res->nodes++;
		w->res->native_buffers++;
		if (b->where == HS_NATIVE_DEVICE)
			w->res->bytes_device += b->bytes;
		else
			w->res->bytes_native += b->bytes;
	}
	return 0;
}

static int process(walk *w, PyObject *op)
{
	PyTypeObject *tp = Py_TYPE(op);
	tinfo *ti = tinfo_get(w, tp);
	if (!ti)
		return w->err ? w->err : HS_ENOMEM;
	int is_gc = hs_hook__obj_is_gc(tp, op);
	hs_node_record n;
	memset(&n, 0, sizeof(n));
	n.address = (uint64_t)(uintptr_t)op;
	n.type = ti->id;
	if (is_gc && gc_is_tracked(op))
		n.flags |= HS_NODE_GC_TRACKED;
#if PY_VERSION_HEX >= 0x030C0000
	if (_Py_IsImmortal(op))
		n.flags |= HS_NODE_IMMORTAL;
	else
#endif
		n.refcount = (uint64_t)Py_REFCNT(op);
	obj_size(w, ti, op, &n);
	int rc = obj_value(w, ti, op, &n);
	if (rc == 0)
		rc = hs_writer_node(w->w, &n);
	if (rc < 0)
		return rc;
	w->res->nodes++;
	uint64_t gs;
	/* every known figure, equal or not: a reader cannot tell "equal" from
	 * "unknown" by an absent entry */
	if (obj_getsizeof(w, ti, op, is_gc, &gs) == 0 &&
	    (rc = hs_writer_reported(w->w, n.address, gs)) < 0)
		return rc;
	rc = obj_edges(w, ti, op, is_gc);
	if (rc == 0 && ti->recipe)
		rc = native_edges(w, ti, op);
	if (rc == 0 && ti->recipe) {
		/* objects held in a native buffer (a numpy object array's items:
		 * ndarray has no tp_traverse) */
		PyObject *const *items;
		size_t count;
		if (hs_native_object_items(w->native, ti->recipe, op, &items, &count))
			rc = direct_seq(w, (PyObject **)items, (Py_ssize_t)count);
	}
	return rc;
}

static int drain(walk *w)
{
	while (w->sp) {
		PyObject *op = w->stack[--w->sp];
		int rc = process(w, op);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Roots                                                               */

static int put_pystr(hs_buf *b, PyObject *s, const char *fallback)
{
	int trunc;
	if (s && PyUnicode_Check(s)) {
		int rc = hs_hook__str_utf8(b, s, 500, &trunc);
		if (rc <= 0)
			return rc;
	}
	return hs_buf_put(b, fallback, strlen(fallback));
}

static int root(walk *w, uint8_t kind, PyObject *target, const hs_buf *name, const char *detail,
                size_t dlen, int walk_it)
{
	if (!target)
		return 0;
	hs_root_record r;
	r.kind = kind;
	r.target = (uint64_t)(uintptr_t)target;
	r.name = HS_NO_STRING;
	r.detail = HS_NO_STRING;
	int rc = 0;
	if (name)
		rc = string_id(w, &r.name, name->len ? (const char *)name->data : "", name->len);
	if (rc == 0 && detail)
		rc = string_id(w, &r.detail, detail, dlen);
	if (rc == 0)
		rc = hs_writer_root(w->w, &r);
	if (rc == 0)
		w->res->roots++;
	if (rc == 0 && walk_it)
		rc = push_new(w, target);
	return rc;
}

static int root_c(walk *w, uint8_t kind, PyObject *target, const char *name)
{
	hs_buf b = HS_BUF_INIT;
	int rc = hs_buf_put(&b, name, strlen(name));
	if (rc == 0)
		rc = root(w, kind, target, &b, NULL, 0, 1);
	hs_buf_release(&b);
	return rc;
}

static int module_roots(walk *w)
{
	PyObject *mods = PyImport_GetModuleDict();
	if (!mods || !PyDict_Check(mods))
		return 0;
	hs_buf b = HS_BUF_INIT;
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	int rc = 0;
	while (rc == 0 && PyDict_Next(mods, &pos, &k, &v)) {
		hs_buf_clear(&b);
		rc = put_pystr(&b, k, "?");
		if (rc == 0)
			rc = root(w, HS_ROOT_MODULE, v, &b, NULL, 0, 1);
	}
	hs_buf_release(&b);
	return rc;
}

/* "FUNC (file:line)" */
static int frame_where(hs_buf *b, PyCodeObject *co, int line)
{
#if PY_VERSION_HEX >= 0x030B0000
	PyObject *fname = co->co_qualname;
#else
	PyObject *fname = co->co_name;
#endif
	char num[32];
	int rc = put_pystr(b, fname, "?");
	if (rc == 0)
		rc = hs_buf_put(b, " (", 2);
	if (rc == 0)
		rc = put_pystr(b, co->co_filename, "?");
	if (rc == 0)
		rc = hs_buf_put(b, num, (size_t)snprintf(num, sizeof(num), ":%d)", line));
	return rc;
}

#if PY_VERSION_HEX >= 0x030B0000
/* Is `d` the __dict__ of a module in sys.modules? (dict lookups only.) */
static int is_module_globals(PyObject *d)
{
	if (!d || !PyDict_Check(d))
		return 0;
	PyObject *name = PyDict_GetItemString(d, "__name__");
	PyObject *modules = PyImport_GetModuleDict();
	if (!name || !PyUnicode_CheckExact(name) || !modules || !PyDict_Check(modules))
		return 0;
	PyObject *m = PyDict_GetItem(modules, name);
	return m && PyModule_Check(m) && PyModule_GetDict(m) == d;
}
#endif

static int thread_roots(walk *w)
{
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	hs_buf tname = HS_BUF_INIT, label = HS_BUF_INIT;
	int rc = 0;
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts && rc == 0;
	     ts = PyThreadState_Next(ts)) {
		const hs_thread_info *ti = hs_hook__meta_thread(w->meta, ts->thread_id);
		char num[40];
		hs_buf_clear(&tname);
		rc = hs_buf_put(&tname, "thread ", 7);
		if (rc == 0 && ti && ti->name) {
			rc = hs_buf_put(&tname, "'", 1);
			if (rc == 0)
				rc = hs_buf_put(&tname, ti->name, strlen(ti->name));
			if (rc == 0)
				rc = hs_buf_put(&tname, "'", 1);
		} else if (rc == 0) {
			rc = hs_buf_put(&tname, num, (size_t)snprintf(num, sizeof(num), "%lu", ts->thread_id));
		}
#if PY_VERSION_HEX < 0x030B0000
		for (PyFrameObject *f = ts->frame; f && rc == 0; f = f->f_back) {
			hs_buf_clear(&label);
			rc = hs_buf_put(&label, "frame ", 6);
			if (rc == 0)
				rc = frame_where(&label, f->f_code, PyFrame_GetLineNumber(f));
			if (rc == 0)
				rc = root(w, HS_ROOT_FRAME, (PyObject *)f, &tname, (const char *)label.data, label.len, 1);
		}
#else
#if PY_VERSION_HEX >= 0x030D0000
		_PyInterpreterFrame *fr = ts->current_frame;
#else
		_PyInterpreterFrame *fr = ts->cframe ? ts->cframe->current_frame : NULL;
#endif
		for (; fr && rc == 0; fr = fr->previous) {
#if PY_VERSION_HEX >= 0x030C0000
			if (fr->owner == FRAME_OWNED_BY_CSTACK)
				continue; /* the shim frame of an eval loop entry */
#endif
			PyCodeObject *co = iframe_code(fr);
			if (!co || _PyFrame_IsIncomplete(fr))
				continue;
#if PY_VERSION_HEX >= 0x030C0000
			int line = PyUnstable_InterpreterFrame_GetLine(fr);
#else
			int line = PyCode_Addr2Line(co, (int)(fr->prev_instr - _PyCode_CODE(co)) *
			                                    (int)sizeof(_Py_CODEUNIT));
#endif
			hs_buf_clear(&label);
			rc = hs_buf_put(&label, tname.data, tname.len);
			if (rc == 0)
				rc = hs_buf_put(&label, " frame ", 7);
			if (rc == 0)
				rc = frame_where(&label, co, line);
			PyObject *names = co->co_localsplusnames;
			int n = co->co_nlocalsplus;
			hs_buf lname = HS_BUF_INIT;
			for (int i = 0; i < n && rc == 0; i++) {
				PyObject *v = fr->localsplus[i];
				if (!v)
					continue;
				hs_buf_clear(&lname);
				PyObject *nm = names && PyTuple_Check(names) && i < PyTuple_GET_SIZE(names)
				                   ? PyTuple_GET_ITEM(names, i) : NULL;
				rc = put_pystr(&lname, nm, "?");
				if (rc == 0)
					rc = root(w, HS_ROOT_LOCAL, v, &label, (const char *)lname.data, lname.len, 1);
			}
			hs_buf_release(&lname);
#if PY_VERSION_HEX >= 0x030C0000
			PyObject *func = fr->f_funcobj;
#else
			PyObject *func = (PyObject *)fr->f_func;
#endif
			if (rc == 0)
				rc = root(w, HS_ROOT_LOCAL, func, &label, "<function>", 10, 1);
			if (rc == 0)
				rc = root(w, HS_ROOT_LOCAL, (PyObject *)co, &label, "<code>", 6, 1);
			/* A module's top-level frame has the module's dict as its
			 * locals: rooting it here would make `local <locals>` the
			 * shortest path to every global, where `module NAME` is the
			 * answer people look for. */
			if (rc == 0 && !is_module_globals(fr->f_locals))
				rc = root(w, HS_ROOT_LOCAL, fr->f_locals, &label, "<locals>", 8, 1);
			if (rc == 0)
				rc = root(w, HS_ROOT_LOCAL, (PyObject *)fr->frame_obj, &label, "<frame>", 7, 1);
#if PY_VERSION_HEX >= 0x030C0000
			/* The value stack: stacktop is -1 while the frame's own eval
			 * loop holds the stack pointer, and valid once it saved it
			 * (calls into Python). Entries are recorded but not walked:
			 * a stale slot must never be dereferenced. */
			int top = fr->stacktop;
			if (top > n && top <= n + co->co_stacksize) {
				for (int i = n; i < top && rc == 0; i++) {
					char st[32];
					rc = root(w, HS_ROOT_LOCAL, fr->localsplus[i], &label, st,
					          (size_t)snprintf(st, sizeof(st), "<stack %d>", i - n), 0);
				}
			}
#endif
		}
#endif
	}
	hs_buf_release(&tname);
	hs_buf_release(&label);
	return rc;
}

/* For stats.c (declared in stats_internal.h): call `fn` on the frames of
 * every thread as thread_roots() roots them. Before 3.11: each frame object
 * (a running frame is not on the GC lists). 3.11+: what each frame holds
 * (locals and cells, function, code, f_locals, frame object): a running
 * frame is no object there, and its frame object (if any) does not
 * traverse its locals. Stops at the first non-zero return of `fn`, which
 * it returns. */
int hs_hook__frames_foreach(int (*fn)(PyObject *op, void *arg), void *arg)
{
#if PY_VERSION_HEX >= 0x030B0000
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
#if PY_VERSION_HEX >= 0x030D0000
		_PyInterpreterFrame *fr = ts->current_frame;
#else
		_PyInterpreterFrame *fr = ts->cframe ? ts->cframe->current_frame : NULL;
#endif
		for (; fr; fr = fr->previous) {
#if PY_VERSION_HEX >= 0x030C0000
			if (fr->owner == FRAME_OWNED_BY_CSTACK)
				continue;
			PyObject *func = fr->f_funcobj;
#else
			PyObject *func = (PyObject *)fr->f_func;
#endif
			PyCodeObject *co = iframe_code(fr);
			if (!co || _PyFrame_IsIncomplete(fr))
				continue;
			PyObject *more[4] = { func, (PyObject *)co, fr->f_locals, (PyObject *)fr->frame_obj };
			for (int i = 0; i < co->co_nlocalsplus; i++) {
				int rc = fr->localsplus[i] ? fn(fr->localsplus[i], arg) : 0;
				if (rc)
					return rc;
			}
			for (int i = 0; i < 4; i++) {
				int rc = more[i] ? fn(more[i], arg) : 0;
				if (rc)
					return rc;
			}
		}
	}
#else
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
		for (PyFrameObject *f = ts->frame; f; f = f->f_back) {
			int rc = fn((PyObject *)f, arg);
			if (rc)
				return rc;
		}
	}
#endif
	return 0;
}

static int interp_roots(walk *w)
{
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	int rc = root_c(w, HS_ROOT_INTERPRETER, interp->sysdict, "sys.__dict__");
	if (rc == 0)
		rc = root_c(w, HS_ROOT_INTERPRETER, interp->builtins, "builtins");
	if (rc == 0)
		rc = root_c(w, HS_ROOT_INTERPRETER, PyImport_GetModuleDict(), "sys.modules");
	return rc;
}

/* ------------------------------------------------------------------ */
/* Seeds                                                               */

static int collect_seeds(PyObject ***out, size_t *count)
{
	struct _gc_runtime_state *gc = gcstate();
	PyGC_Head *heads[NUM_GENERATIONS + 1];
	for (int i = 0; i < NUM_GENERATIONS; i++)
		heads[i] = &gc->generations[i].head;
	heads[NUM_GENERATIONS] = &gc->permanent_generation.head;
	size_t n = 0, cap = 0;
	PyObject **seeds = NULL;
	for (int i = 0; i <= NUM_GENERATIONS; i++) {
		PyGC_Head *head = heads[i];
		for (PyGC_Head *g = (PyGC_Head *)head->_gc_next; g != head; g = (PyGC_Head *)g->_gc_next) {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 65536;
				PyObject **s = hs_reallocarray(seeds, nc, sizeof(*s));
				if (!s) {
					hs_free(seeds);
					return HS_ENOMEM;
				}
				seeds = s;
				cap = nc;
			}
			seeds[n++] = (PyObject *)(g + 1);
		}
	}
	*out = seeds;
	*count = n;
	return 0;
}

/* ------------------------------------------------------------------ */

static int walk_init(walk *w)
{
	int rc = hs_vset_init(&w->seen);
	if (rc < 0)
		return rc;
	w->tmask = 255;
	w->types = hs_calloc(w->tmask + 1, sizeof(*w->types));
	w->scmask = 255;
	w->sc = hs_calloc(w->scmask + 1, sizeof(*w->sc));
	if (!w->types || !w->sc)
		return HS_ENOMEM;
	for (int i = 0; i < N_COUNT; i++)
		HS_TRY(string_id(w, &w->names[i], name_text[i], strlen(name_text[i])));
	if (hs_hook__size_rules_init(&w->sizes) < 0) {
		PyErr_Clear();
		return HS_ENOMEM;
	}
	return 0;
}

static void walk_release(walk *w)
{
	hs_vset_release(&w->seen);
	hs_free(w->stack);
	if (w->types) {
		for (size_t i = 0; i <= w->tmask; i++) {
			if (w->types[i]) {
				hs_free(w->types[i]->slots);
				hs_free(w->types[i]);
			}
		}
		hs_free(w->types);
	}
	hs_free(w->cands);
	hs_free(w->sc);
	hs_free(w->nb);
	hs_free(w->nt);
	hs_buf_release(&w->tmp);
}

/* Fork mode: prepared in the parent before the fork (fork.c). */
static hs_native_state *prepared_native;
static int prepared;

int hs_hook__walk_prepare(void)
{
	hs_hook__walk_unprepare();
	hs_blocks_prepare();
	prepared_native = hs_native_prepare();
	if (!prepared_native)
		return HS_ENOMEM;
	prepared = 1;
	return 0;
}

void hs_hook__walk_unprepare(void)
{
	hs_native_free(prepared_native);
	prepared_native = NULL;
	prepared = 0;
}

void hs_hook__walk_meta_end(hs_json *j, const hs_walk_result *wr)
{
	hs_json_cstr(j, "size_model", "allocator");
	hs_json_uint(j, "bytes_pymalloc", wr->bytes_pymalloc);
	hs_json_uint(j, "bytes_malloc", wr->bytes_malloc);
	hs_json_uint(j, "bytes_static", wr->bytes_static);
	hs_json_uint(j, "bytes_native", wr->bytes_native);
	hs_json_uint(j, "bytes_device", wr->bytes_device);
	hs_json_uint(j, "native_buffers", wr->native_buffers);
	hs_json_uint(j, "native_conflicts", wr->native_conflicts);
	hs_json_uint(j, "sizes_estimated", wr->sizes_estimated);
}

void hs_hook__walk_notes(hs_json *j, const hs_walk_result *wr)
{
	if (wr->native_notes[0])
		hs_json_cstr(j, NULL, wr->native_notes);
}

int hs_hook__walk(hs_writer *writer, const hs_meta *m, hs_walk_result *res)
{
	walk w;
	memset(&w, 0, sizeof(w));
	memset(res, 0, sizeof(*res));
	w.w = writer;
	w.meta = m;
	w.res = res;
	PyObject **seeds = NULL;
	size_t nseeds = 0;
	double t0 = hs_hook__now();

	if (hs_hook__gc_collecting())
		return hs_error_set(HS_EINVAL, "the garbage collector is running "
		                    "(dump called from a finalizer or a gc callback?)");
	/* In-process: prepare here (hs_native_prepare may run Python code:
	 * before the walk holds any pointer). */
	int own_prepare = !prepared;
	if (own_prepare && hs_hook__walk_prepare() < 0)
		return hs_error_set(HS_ENOMEM, "out of memory (native buffer layouts)");
	w.native = prepared_native;
	snprintf(res->native_notes, sizeof(res->native_notes), "%s", hs_native_notes(w.native));
	int rc = walk_init(&w);
	if (rc == 0)
		rc = module_roots(&w);
	if (rc == 0)
		rc = interp_roots(&w);
	if (rc == 0)
		rc = thread_roots(&w);
	if (rc == 0)
		rc = drain(&w);
	if (rc == 0)
		rc = collect_seeds(&seeds, &nseeds);
	for (size_t i = 0; rc == 0 && i < nseeds; i++) {
		rc = push_new(&w, seeds[i]);
		if (rc == 0)
			rc = drain(&w);
	}
	hs_free(seeds);
	if (rc == 0)
		rc = native_nodes(&w);
	res->peak_stack = w.peak;
	res->vset_pages = w.seen.pages;
	res->bytes_pymalloc = w.acc.pymalloc;
	res->bytes_malloc = w.acc.malloc;
	res->bytes_static = w.acc.static_bytes;
	res->walk_seconds = hs_hook__now() - t0;
	walk_release(&w);
	if (own_prepare)
		hs_hook__walk_unprepare();
	return rc < 0 ? rc : 0;
}
