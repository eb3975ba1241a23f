/*
 * hook/native.c: native buffers owned by objects (see native.h).
 *
 * Library knowledge lives in one table, `libraries[]` at the end: one row per
 * library with the sys.modules key that says it is loaded, a prepare function
 * (with the GIL, may run Python code: finds the types and checks the layout
 * on objects it makes, whose answers Python tells it), a classifier (type ->
 * recipe, no Python code) and a reader (object -> buffers, no Python code,
 * no allocation). docs/native-libraries.md is the recipe for adding a row.
 *
 * Rules every reader keeps: a layout is used only when prepare saw it give
 * the right answers on objects of known content (never guessed from a
 * version number alone); reads stay inside the object whose type was
 * checked, or follow pointers whose chain prepare validated; every count
 * read from memory is bounds-checked before it is multiplied.
 */
#include "native.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"

/* recipe = row index * RECIPE_STRIDE + what (what >= 1) */
#define RECIPE_STRIDE 16

enum { ROW_NUMPY = 0 }; /* libraries[] row of numpy */
enum { NP_ARRAY = 1 };
enum { TORCH_TENSOR = 1, TORCH_STORAGE = 2 };
enum { STDLIB_ARRAY = 1, STDLIB_MMAP = 2 };

#define PROBE_SPAN 512 /* bytes of an unknown C++ object scanned for a field */
#define TORCH_META 14  /* c10::DeviceType::Meta (torch/headeronly/core/DeviceType.h) */

struct hs_native_state {
	char notes[1024];
	struct {
		int ready;
		PyTypeObject *ndarray; /* borrowed: only compared, never dereferenced */
		PyTypeObject *dtype;
		size_t elsize_off;     /* in PyArray_Descr */
		int elsize_is_intp;    /* 2.x: npy_intp; 1.x: int */
		int empty_elsize;      /* < 1.23: an empty array allocates elsize bytes, else 1 */
		int object_items;      /* type_num checked on an object array: its items are edges */
	} np;
	struct {
		int ready, storage_ready;
		PyTypeObject *tensor;  /* torch._C.TensorBase */
		PyTypeObject *storage; /* torch._C.StorageBase */
		size_t impl_off;       /* THPVariable -> TensorImpl* */
		long flag_off;         /* MaybeOwned's isBorrowed_ before impl_off, or -1 */
		size_t storage_off;    /* TensorImpl -> StorageImpl* */
		size_t data_off;       /* StorageImpl -> data pointer */
		size_t nbytes_off;     /* StorageImpl -> size_bytes */
		size_t device_off;     /* StorageImpl -> DeviceType byte */
		size_t sobj_off;       /* THPStorage -> StorageImpl* */
		long sobj_flag_off;
	} torch;
	struct {
		PyTypeObject *array, *mmap;
		int array_ready, mmap_ready;
	} std;
};

static void note(hs_native_state *st, const char *fmt, ...)
{
	size_t len = strlen(st->notes);
	if (len + 3 >= sizeof(st->notes))
		return;
	if (len) {
		st->notes[len++] = ';';
		st->notes[len++] = ' ';
		st->notes[len] = '\0';
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->notes + len, sizeof(st->notes) - len, fmt, ap);
	va_end(ap);
}

static inline uintptr_t word_at(const void *base, size_t off)
{
	uintptr_t w;
	memcpy(&w, (const char *)base + off, sizeof(w));
	return w;
}

/* Reads n bytes at an address that may not be mapped, without faulting:
 * the kernel copies them into a pipe (EFAULT when unreadable). Only
 * prepare uses it, while it scans C++ objects it does not know yet. */
static int probe_read(int fds[2], uintptr_t addr, void *buf, size_t n)
{
	if (addr < 4096 || addr % sizeof(void *))
		return -1;
	ssize_t w = write(fds[1], (const void *)addr, n);
	if (w <= 0) {
		return -1;
	}
	ssize_t r = read(fds[0], buf, (size_t)w);
	return (w == (ssize_t)n && r == w) ? 0 : -1;
}

/* Runs `code` (which sets `out`) with `mod` bound to `name`; new reference
 * to `out` or NULL with no exception left set. */
static PyObject *run_probe(const char *name, PyObject *mod, const char *code)
{
	PyObject *g = PyDict_New(), *out = NULL;
	if (!g)
		goto done;
	if (PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0 ||
	    PyDict_SetItemString(g, name, mod) < 0)
		goto done;
	PyObject *r = PyRun_String(code, Py_file_input, g, g);
	if (!r)
		goto done;
	Py_DECREF(r);
	out = PyDict_GetItemString(g, "out");
	Py_XINCREF(out);
done:
	if (PyErr_Occurred())
		PyErr_Clear();
	/* a function defined by the probe refers to `g`: that cycle would keep
	 * the probe objects alive into the walk (the GC is paused there) */
	if (g)
		PyDict_Clear(g);
	Py_XDECREF(g);
	return out;
}

static PyTypeObject *type_attr(PyObject *mod, const char *name)
{
	PyObject *t = PyObject_GetAttrString(mod, name);
	if (!t) {
		PyErr_Clear();
		return NULL;
	}
	PyTypeObject *tp = PyType_Check(t) ? (PyTypeObject *)t : NULL;
	Py_DECREF(t); /* the module keeps it alive */
	return tp;
}

static int is_sub(PyTypeObject *tp, PyTypeObject *base)
{
	return base && (tp == base || PyType_IsSubtype(tp, base));
}

/* ------------------------------------------------------------------ */
/* numpy: an array with NPY_ARRAY_OWNDATA owns its data buffer; views  */
/* (base set, OWNDATA clear) own none, their base chain leads to it.   */

#define NP_DATA 16    /* PyArrayObject_fields, numpy/ndarraytypes.h (1.x and 2.x) */
#define NP_ND 24
#define NP_DIMS 32
#define NP_DESCR 56
#define NP_FLAGS 64
#define NP_OWNDATA 0x0004
#define NP_DESCR_TYPE_NUM 28 /* int type_num after typeobj and four chars (1.x and 2.x) */
#define NP_OBJECT 17         /* NPY_OBJECT */
#define NP_MAXDIMS 64

/* The bytes numpy allocated for the array's data (0 when not computable). */
static uint64_t np_nbytes(const hs_native_state *st, PyObject *op)
{
	const char *o = (const char *)op;
	int nd;
	memcpy(&nd, o + NP_ND, sizeof(nd));
	if (nd < 0 || nd > NP_MAXDIMS)
		return 0;
	PyObject *descr = (PyObject *)word_at(o, NP_DESCR);
	if (!descr || !is_sub(Py_TYPE(descr), st->np.dtype))
		return 0;
	int64_t elsize;
	if (st->np.elsize_is_intp) {
		memcpy(&elsize, (const char *)descr + st->np.elsize_off, sizeof(elsize));
	} else {
		int e;
		memcpy(&e, (const char *)descr + st->np.elsize_off, sizeof(e));
		elsize = e;
	}
	if (elsize < 0)
		return 0;
	const int64_t *dims = (const int64_t *)word_at(o, NP_DIMS);
	uint64_t n = (uint64_t)elsize;
	for (int i = 0; i < nd; i++) {
		if (!dims || dims[i] < 0)
			return 0;
		if (dims[i] && n > UINT64_MAX / (uint64_t)dims[i])
			return 0;
		n *= (uint64_t)dims[i];
	}
	/* numpy allocates something for an empty array (ctors.c,
	 * PyArray_NewFromDescr_int): 1 byte since 1.23, elsize before */
	if (n == 0)
		n = (st->np.empty_elsize && elsize) ? (uint64_t)elsize : 1;
	return n;
}

static int np_type_num(PyObject *arr)
{
	const char *descr = (const char *)word_at(arr, NP_DESCR);
	int t;
	if (!descr)
		return -1;
	memcpy(&t, descr + NP_DESCR_TYPE_NUM, sizeof(t));
	return t;
}

static int np_prepare(hs_native_state *st, PyObject *np)
{
	PyTypeObject *nd = type_attr(np, "ndarray"), *dt = type_attr(np, "dtype");
	PyObject *ver = PyObject_GetAttrString(np, "__version__");
	const char *v = ver && PyUnicode_Check(ver) ? PyUnicode_AsUTF8(ver) : NULL;
	int major = -1, minor = -1;
	if (!v || sscanf(v, "%d.%d", &major, &minor) != 2)
		major = -1;
	PyErr_Clear();
	if (!nd || !dt || nd->tp_basicsize < NP_FLAGS + (Py_ssize_t)sizeof(int)) {
		note(st, "numpy: ndarray or dtype not found: numpy buffers not counted");
		goto done;
	}
	if (major == 1) {
		st->np.elsize_off = 32; /* after int type_num; char flags */
		st->np.elsize_is_intp = 0;
		st->np.empty_elsize = minor < 23;
	} else if (major == 2) {
		st->np.elsize_off = 40; /* after npy_uint64 flags */
		st->np.elsize_is_intp = 1;
	} else {
		note(st, "numpy %s: unknown array layout: numpy buffers not counted", v ? v : "?");
		goto done;
	}
	st->np.ndarray = nd;
	st->np.dtype = dt;
	/* check the layout on arrays of known shape (a view and an int8 array
	 * too, so that an int read where an intp lies cannot pass) */
	PyObject *out = run_probe("np",
		np,
		"a = np.empty((3, 7), dtype=np.float64)\n"
		"b = np.empty(11, dtype=np.int8)\n"
		"c = np.array([None, 'x', 3], dtype=object)\n"
		"out = [(x, x.__array_interface__['data'][0], x.nbytes, bool(x.flags.owndata))\n"
		"       for x in (a, b, a[1:], c)]\n");
	int ok = out && PyList_Check(out) && PyList_GET_SIZE(out) == 4;
	for (Py_ssize_t i = 0; ok && i < 4; i++) {
		PyObject *t = PyList_GET_ITEM(out, i);
		PyObject *arr = PyTuple_GET_ITEM(t, 0);
		uintptr_t data = (uintptr_t)PyLong_AsVoidPtr(PyTuple_GET_ITEM(t, 1));
		uint64_t nbytes = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, 2));
		int owns = PyTuple_GET_ITEM(t, 3) == Py_True;
		int flags;
		memcpy(&flags, (const char *)arr + NP_FLAGS, sizeof(flags));
		ok = word_at(arr, NP_DATA) == data && ((flags & NP_OWNDATA) != 0) == owns &&
		     np_nbytes(st, arr) == nbytes;
	}
	if (PyErr_Occurred())
		PyErr_Clear();
	if (!ok) {
		note(st, "numpy %s: array layout did not check out: numpy buffers not counted", v);
		Py_XDECREF(out);
		goto done;
	}
	/* type_num: NPY_OBJECT on the object array and not on the others, and
	 * its three slots are the objects Python put there */
	{
		PyObject *c = PyTuple_GET_ITEM(PyList_GET_ITEM(out, 3), 0);
		PyObject *a = PyTuple_GET_ITEM(PyList_GET_ITEM(out, 0), 0);
		PyObject *const *slots = (PyObject *const *)word_at(c, NP_DATA);
		st->np.object_items = np_type_num(a) != NP_OBJECT && np_type_num(c) == NP_OBJECT &&
		                      slots && slots[0] == Py_None && PyUnicode_Check(slots[1]) &&
		                      PyLong_Check(slots[2]);
		if (!st->np.object_items)
			note(st, "numpy %s: object arrays' layout did not check out: their items not followed", v);
	}
	Py_XDECREF(out);
	st->np.ready = 1;
done:
	Py_XDECREF(ver);
	return 0;
}

static int np_classify(const hs_native_state *st, PyTypeObject *tp)
{
	return st->np.ready && is_sub(tp, st->np.ndarray) ? NP_ARRAY : 0;
}

static int np_buffers(const hs_native_state *st, int what, PyObject *op,
                      hs_native_buffer *out, int max)
{
	(void)what;
	int flags;
	memcpy(&flags, (const char *)op + NP_FLAGS, sizeof(flags));
	uintptr_t data = word_at(op, NP_DATA);
	if (max < 1 || !(flags & NP_OWNDATA) || !data)
		return 0;
	out->address = data;
	out->bytes = np_nbytes(st, op);
	out->type_name = "<native> numpy data";
	out->label = "data";
	out->where = HS_NATIVE_HOST;
	return 1;
}

/* ------------------------------------------------------------------ */
/* torch: the unit is the StorageImpl that tensors, views, parameters  */
/* and .data share. Its identity is its data pointer, so that a        */
/* torch.from_numpy tensor is one node with the numpy buffer it        */
/* borrows; a storage without data (meta, empty) is named by the       */
/* StorageImpl's own address. The C++ layout is no stable ABI: prepare */
/* finds each offset by scanning tensors of known storage and checks   */
/* them on others (a view, a parameter, another size, a meta tensor).  */

typedef struct torch_probe {
	PyObject *obj;
	uintptr_t data;
	uint64_t nbytes;
} torch_probe;

/* The StorageImpl of a tensor through the offsets found so far, 0 if none. */
static uintptr_t torch_storage_impl(const hs_native_state *st, PyObject *op)
{
	if (st->torch.flag_off >= 0 && ((const char *)op)[st->torch.flag_off] != 0)
		return 0; /* a borrowed MaybeOwned: not a layout prepare could check */
	uintptr_t impl = word_at(op, st->torch.impl_off);
	if (!impl)
		return 0;
	return word_at((const void *)impl, st->torch.storage_off);
}

static int torch_fill(const hs_native_state *st, uintptr_t si, hs_native_buffer *out)
{
	const char *s = (const char *)si;
	uintptr_t data = word_at(s, st->torch.data_off);
	int64_t nbytes;
	memcpy(&nbytes, s + st->torch.nbytes_off, sizeof(nbytes));
	unsigned char dev = (unsigned char)s[st->torch.device_off];
	out->address = data ? data : si;
	out->bytes = nbytes > 0 && dev != TORCH_META ? (uint64_t)nbytes : 0;
	out->type_name = "<native> torch storage";
	out->label = "storage";
	out->where = dev == 0 || dev == TORCH_META ? HS_NATIVE_HOST : HS_NATIVE_DEVICE;
	return 1;
}

/* Finds impl_off/storage_off/data_off/nbytes_off on probe p[0], keeping
 * the first candidate that the other probes confirm. */
static int torch_find(hs_native_state *st, int fds[2], const torch_probe *p, int np)
{
	PyObject *t = p[0].obj;
	Py_ssize_t span = Py_TYPE(t)->tp_basicsize;
	if (span > 256)
		span = 256;
	unsigned char a[PROBE_SPAN], b[PROBE_SPAN];
	for (size_t io = sizeof(PyObject); io + sizeof(void *) <= (size_t)span; io += sizeof(void *)) {
		uintptr_t impl = word_at(t, io);
		if (probe_read(fds, impl, a, sizeof(a)) < 0)
			continue;
		for (size_t so = 0; so < sizeof(a); so += sizeof(void *)) {
			uintptr_t si = word_at(a, so);
			if (probe_read(fds, si, b, sizeof(b)) < 0)
				continue;
			for (size_t d = 0; d < sizeof(b); d += 8) {
				if (word_at(b, d) != p[0].data)
					continue;
				for (size_t n = 0; n < sizeof(b); n += 8) {
					if (n == d || word_at(b, n) != p[0].nbytes)
						continue;
					st->torch.impl_off = io;
					st->torch.storage_off = so;
					st->torch.data_off = d;
					st->torch.nbytes_off = n;
					st->torch.flag_off = io > sizeof(PyObject) ? (long)(io - sizeof(void *)) : -1;
					int ok = 1;
					for (int k = 0; ok && k < np; k++) {
						const char *o = (const char *)p[k].obj;
						if (Py_TYPE(p[k].obj)->tp_basicsize < (Py_ssize_t)(io + sizeof(void *)) ||
						    (st->torch.flag_off >= 0 && o[st->torch.flag_off] != 0)) {
							ok = 0;
							break;
						}
						uintptr_t ki = word_at(o, io), ks;
						unsigned char c[PROBE_SPAN];
						ok = probe_read(fds, ki + so, &ks, sizeof(ks)) == 0 &&
						     probe_read(fds, ks, c, sizeof(c)) == 0 &&
						     word_at(c, d) == p[k].data && word_at(c, n) == p[k].nbytes;
					}
					if (ok)
						return 0;
				}
			}
		}
	}
	return -1;
}

static int torch_prepare(hs_native_state *st, PyObject *torch)
{
	PyObject *C = PyObject_GetAttrString(torch, "_C");
	PyTypeObject *tb = C ? type_attr(C, "TensorBase") : NULL;
	if (C && !tb)
		tb = type_attr(C, "_TensorBase");
	PyTypeObject *sb = C ? type_attr(C, "StorageBase") : NULL;
	Py_XDECREF(C);
	PyErr_Clear();
	int fds[2] = { -1, -1 };
	PyObject *out = NULL;
	if (!tb) {
		note(st, "torch: TensorBase not found: tensor storages not counted");
		goto done;
	}
	/* probes: a tensor, a view at an offset into another storage, a
	 * parameter (a Python subclass), a meta tensor (no data), sizes that
	 * cannot be confused with one another */
	out = run_probe("torch", torch,
		"t1 = torch.empty(12347, dtype=torch.float32)\n"
		"b2 = torch.empty(5003, dtype=torch.float64)\n"
		"t3 = torch.nn.Parameter(torch.empty(4099, dtype=torch.int16), requires_grad=False)\n"
		"t4 = torch.empty(333, dtype=torch.float32, device='meta')\n"
		"def info(t):\n"
		"    s = t.untyped_storage()\n"
		"    return (t, s.data_ptr(), s.nbytes(), s)\n"
		"out = [info(t) for t in (t1, b2[7:], t3, b2, t4)]\n");
	if (!out || !PyList_Check(out) || PyList_GET_SIZE(out) != 5) {
		note(st, "torch: probe tensors could not be made: tensor storages not counted");
		goto done;
	}
	torch_probe p[5];
	for (int k = 0; k < 5; k++) {
		PyObject *t = PyList_GET_ITEM(out, k);
		p[k].obj = PyTuple_GET_ITEM(t, 0);
		p[k].data = (uintptr_t)PyLong_AsVoidPtr(PyTuple_GET_ITEM(t, 1));
		p[k].nbytes = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, 2));
	}
	if (PyErr_Occurred() || pipe(fds) < 0) {
		PyErr_Clear();
		note(st, "torch: probe values unreadable: tensor storages not counted");
		goto done;
	}
	/* the CPU probes find and check the chain; the meta one must then
	 * read data 0 and its size through the same offsets */
	if (torch_find(st, fds, p, 4) < 0) {
		note(st, "torch: tensor layout not found: tensor storages not counted");
		goto done;
	}
	st->torch.tensor = tb;
	uintptr_t cpu = torch_storage_impl(st, p[0].obj), meta = torch_storage_impl(st, p[4].obj);
	unsigned char c[PROBE_SPAN], m[PROBE_SPAN];
	if (!cpu || !meta || probe_read(fds, cpu, c, sizeof(c)) < 0 ||
	    probe_read(fds, meta, m, sizeof(m)) < 0 || word_at(m, st->torch.data_off) != 0 ||
	    word_at(m, st->torch.nbytes_off) != p[4].nbytes) {
		note(st, "torch: meta tensor layout did not check out: tensor storages not counted");
		goto done;
	}
	/* the device: the byte after the data pointer that is CPU (0) here
	 * and Meta there (c10::DataPtr::device_) */
	size_t dev = 0;
	for (size_t i = st->torch.data_off + 8; i < st->torch.data_off + 64 && i < sizeof(c); i++) {
		if (c[i] == 0 && m[i] == TORCH_META) {
			dev = i;
			break;
		}
	}
	if (!dev) {
		note(st, "torch: storage device not found: tensor storages not counted");
		goto done;
	}
	st->torch.device_off = dev;
	st->torch.ready = 1;
	/* torch.UntypedStorage objects (THPStorage) hold a StorageImpl too */
	PyObject *s = PyTuple_GET_ITEM(PyList_GET_ITEM(out, 0), 3);
	PyObject *s2 = PyTuple_GET_ITEM(PyList_GET_ITEM(out, 1), 3);
	if (sb && is_sub(Py_TYPE(s), sb)) {
		Py_ssize_t span = Py_TYPE(s)->tp_basicsize;
		for (size_t o = sizeof(PyObject); o + 8 <= (size_t)span && o < 64; o += 8) {
			if (word_at(s, o) != cpu || word_at(s2, o) != torch_storage_impl(st, p[1].obj))
				continue;
			long fl = o > sizeof(PyObject) ? (long)(o - 8) : -1;
			if (fl >= 0 && (((const char *)s)[fl] || ((const char *)s2)[fl]))
				continue;
			st->torch.storage = sb;
			st->torch.sobj_off = o;
			st->torch.sobj_flag_off = fl;
			st->torch.storage_ready = 1;
			break;
		}
	}
	if (!st->torch.storage_ready)
		note(st, "torch: UntypedStorage layout not found: storages reached only through tensors");
done:
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	Py_XDECREF(out);
	if (PyErr_Occurred())
		PyErr_Clear();
	return 0;
}

static int torch_classify(const hs_native_state *st, PyTypeObject *tp)
{
	if (st->torch.ready && is_sub(tp, st->torch.tensor) &&
	    tp->tp_basicsize >= (Py_ssize_t)(st->torch.impl_off + sizeof(void *)))
		return TORCH_TENSOR;
	if (st->torch.storage_ready && is_sub(tp, st->torch.storage) &&
	    tp->tp_basicsize >= (Py_ssize_t)(st->torch.sobj_off + sizeof(void *)))
		return TORCH_STORAGE;
	return 0;
}

static int torch_buffers(const hs_native_state *st, int what, PyObject *op,
                         hs_native_buffer *out, int max)
{
	uintptr_t si;
	if (max < 1)
		return 0;
	if (what == TORCH_TENSOR) {
		si = torch_storage_impl(st, op);
	} else {
		if (st->torch.sobj_flag_off >= 0 && ((const char *)op)[st->torch.sobj_flag_off])
			return 0;
		si = word_at(op, st->torch.sobj_off);
	}
	/* no storage: an undefined tensor, or a TensorImpl kind without one
	 * (sparse, nested, wrapper subclasses) */
	return si ? torch_fill(st, si, out) : 0;
}

/* ------------------------------------------------------------------ */
/* The standard library: array.array's item buffer (Modules/           */
/* arraymodule.c, the same layout 3.8-3.13), mmap.mmap's mapping.       */

#define ARR_ITEM 24  /* arrayobject: PyObject_VAR_HEAD; char *ob_item; */
#define ARR_ALLOC 32 /* Py_ssize_t allocated; */
#define ARR_DESCR 40 /* const struct arraydescr *ob_descr {char typecode; int itemsize;} */
#define MMAP_DATA 16 /* mmap_object: PyObject_HEAD; char *data; Py_ssize_t size; */
#define MMAP_SIZE 24

static int arr_read(PyObject *op, uintptr_t *data, uint64_t *bytes)
{
	*data = word_at(op, ARR_ITEM);
	Py_ssize_t alloc;
	memcpy(&alloc, (const char *)op + ARR_ALLOC, sizeof(alloc));
	const char *descr = (const char *)word_at(op, ARR_DESCR);
	if (!*data || !descr || alloc <= 0)
		return -1;
	int itemsize;
	memcpy(&itemsize, descr + 4, sizeof(itemsize));
	if (itemsize <= 0 || itemsize > 16 || (uint64_t)alloc > UINT64_MAX / 16)
		return -1;
	*bytes = (uint64_t)alloc * (uint64_t)itemsize;
	return 0;
}

static int stdlib_prepare_array(hs_native_state *st, PyObject *mod)
{
	PyTypeObject *tp = type_attr(mod, "array");
	if (!tp || tp->tp_basicsize < ARR_DESCR + 8)
		return 0;
	PyObject *out = run_probe("array", mod,
		"a = array.array('d', [0.5] * 5)\n"
		"out = (a, a.buffer_info()[0], a.itemsize)\n");
	uintptr_t data;
	uint64_t bytes;
	if (out && PyTuple_Check(out) &&
	    arr_read(PyTuple_GET_ITEM(out, 0), &data, &bytes) == 0 &&
	    data == (uintptr_t)PyLong_AsVoidPtr(PyTuple_GET_ITEM(out, 1)) &&
	    bytes >= 5 * 8 && bytes % 8 == 0 && Py_SIZE(PyTuple_GET_ITEM(out, 0)) == 5) {
		st->std.array = tp;
		st->std.array_ready = 1;
	} else {
		note(st, "array: layout did not check out: array.array buffers not counted");
	}
	PyErr_Clear();
	Py_XDECREF(out);
	return 0;
}

static int stdlib_prepare_mmap(hs_native_state *st, PyObject *mod)
{
	PyTypeObject *tp = type_attr(mod, "mmap");
	if (!tp || tp->tp_basicsize < MMAP_SIZE + 8)
		return 0;
	PyObject *m = run_probe("mmap", mod, "out = mmap.mmap(-1, 3 * 4096)\n");
	Py_buffer view;
	if (m && PyObject_GetBuffer(m, &view, PyBUF_SIMPLE) == 0) {
		Py_ssize_t size;
		memcpy(&size, (const char *)m + MMAP_SIZE, sizeof(size));
		if (word_at(m, MMAP_DATA) == (uintptr_t)view.buf && size == view.len && size == 3 * 4096) {
			st->std.mmap = tp;
			st->std.mmap_ready = 1;
		}
		PyBuffer_Release(&view);
	}
	if (!st->std.mmap_ready)
		note(st, "mmap: layout did not check out: mappings not counted");
	if (m) {
		PyObject *r = PyObject_CallMethod(m, "close", NULL);
		Py_XDECREF(r);
	}
	PyErr_Clear();
	Py_XDECREF(m);
	return 0;
}

static int array_classify(const hs_native_state *st, PyTypeObject *tp)
{
	return st->std.array_ready && is_sub(tp, st->std.array) ? STDLIB_ARRAY : 0;
}

static int mmap_classify(const hs_native_state *st, PyTypeObject *tp)
{
	return st->std.mmap_ready && is_sub(tp, st->std.mmap) ? STDLIB_MMAP : 0;
}

static int stdlib_buffers(const hs_native_state *st, int what, PyObject *op,
                          hs_native_buffer *out, int max)
{
	(void)st;
	if (max < 1)
		return 0;
	if (what == STDLIB_ARRAY) {
		uintptr_t data;
		uint64_t bytes;
		if (arr_read(op, &data, &bytes) < 0)
			return 0; /* empty: no buffer */
		out->address = data;
		out->bytes = bytes;
		out->type_name = "<native> array.array items";
		out->label = "data";
		out->where = HS_NATIVE_HOST;
		return 1;
	}
	uintptr_t data = word_at(op, MMAP_DATA);
	Py_ssize_t size;
	memcpy(&size, (const char *)op + MMAP_SIZE, sizeof(size));
	if (!data || size <= 0)
		return 0; /* closed */
	out->address = data;
	out->bytes = (uint64_t)size;
	out->type_name = "<native> mmap";
	out->label = "mapping";
	out->where = HS_NATIVE_MAPPED;
	return 1;
}

/* ------------------------------------------------------------------ */
/* The table. A row is used when its module is in sys.modules at       */
/* prepare time (a library not imported has no objects to find).       */

typedef struct native_library {
	const char *module;                                     /* sys.modules key */
	int (*prepare)(hs_native_state *st, PyObject *module);  /* GIL; may run Python */
	int (*classify)(const hs_native_state *st, PyTypeObject *tp);
	int (*buffers)(const hs_native_state *st, int what, PyObject *op,
	               hs_native_buffer *out, int max);
} native_library;

static const native_library libraries[] = {
	{ "numpy", np_prepare, np_classify, np_buffers },
	{ "torch", torch_prepare, torch_classify, torch_buffers },
	{ "array", stdlib_prepare_array, array_classify, stdlib_buffers },
	{ "mmap", stdlib_prepare_mmap, mmap_classify, stdlib_buffers },
};
#define N_LIBRARIES (sizeof(libraries) / sizeof(libraries[0]))

hs_native_state *hs_native_prepare(void)
{
	hs_native_state *st = hs_calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->torch.flag_off = st->torch.sobj_flag_off = -1;
	PyObject *exc_type, *exc_value, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
	PyObject *modules = PySys_GetObject("modules"); /* borrowed */
	for (size_t i = 0; modules && PyDict_Check(modules) && i < N_LIBRARIES; i++) {
		PyObject *mod = PyDict_GetItemString(modules, libraries[i].module);
		if (!mod || !PyModule_Check(mod))
			continue;
		Py_INCREF(mod);
		libraries[i].prepare(st, mod);
		Py_DECREF(mod);
		PyErr_Clear();
	}
	PyErr_Restore(exc_type, exc_value, exc_tb);
	return st;
}

void hs_native_free(hs_native_state *st)
{
	hs_free(st);
}

const char *hs_native_notes(const hs_native_state *st)
{
	return st ? st->notes : "";
}

int hs_native_recipe(const hs_native_state *st, PyTypeObject *tp)
{
	if (!st || !tp)
		return 0;
	for (size_t i = 0; i < N_LIBRARIES; i++) {
		int what = libraries[i].classify(st, tp);
		if (what > 0)
			return (int)i * RECIPE_STRIDE + what;
	}
	return 0;
}

int hs_native_buffers(const hs_native_state *st, int recipe, PyObject *op,
                      hs_native_buffer *out, int max)
{
	if (!st || recipe <= 0 || !op || !out || max < 1)
		return 0;
	size_t row = (size_t)recipe / RECIPE_STRIDE;
	int what = recipe % RECIPE_STRIDE;
	if (row >= N_LIBRARIES || what == 0)
		return 0;
	return libraries[row].buffers(st, what, op, out, max);
}

int hs_native_object_items(const hs_native_state *st, int recipe, PyObject *op,
                           PyObject *const **items, size_t *count)
{
	if (!st || !st->np.object_items || recipe <= 0 || (size_t)recipe / RECIPE_STRIDE != ROW_NUMPY ||
	    recipe % RECIPE_STRIDE != NP_ARRAY || !op)
		return 0;
	int flags;
	memcpy(&flags, (const char *)op + NP_FLAGS, sizeof(flags));
	uintptr_t data = word_at(op, NP_DATA);
	const char *descr = (const char *)word_at(op, NP_DESCR);
	/* an owning array's allocation is all its elements (views reach the
	 * same objects through their base) */
	if (!(flags & NP_OWNDATA) || !data || !descr || !is_sub(Py_TYPE((PyObject *)descr), st->np.dtype) ||
	    np_type_num(op) != NP_OBJECT)
		return 0;
	uint64_t n = np_nbytes(st, op) / sizeof(PyObject *);
	int nd;
	memcpy(&nd, (const char *)op + NP_ND, sizeof(nd));
	const int64_t *dims = (const int64_t *)word_at(op, NP_DIMS);
	uint64_t elems = 1;
	for (int i = 0; i < nd && dims; i++)
		elems *= (uint64_t)dims[i];
	if (elems < n) /* an empty array's one-element allocation holds nothing */
		n = elems;
	*items = (PyObject *const *)data;
	*count = (size_t)n;
	return n > 0;
}
