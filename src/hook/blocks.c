/*
 * hook/blocks.c: object sizes as the allocator holds them ("real bytes",
 * snapshot format 1.1). One version-gated place, shared by the dump's walk
 * (walk.c) and the agent's TYPES walk (stats.c); sizes.c keeps what
 * sys.getsizeof reports.
 *
 * An object's real size is the sum of the allocator blocks it owns:
 *   - its own block: GC header and pre-header (3.11+: managed dict and
 *     weakref pointers) + tp_basicsize + items, and on 3.13 its inline
 *     values; var-sized objects of a heap type come from
 *     PyType_GenericAlloc, which allocates nitems + 1 items;
 *   - its separately allocated internal buffers: list item arrays, dict
 *     keys tables (owned: dk_refcnt == 1) and split values, set tables,
 *     bytearray buffers, str utf8/wstr/data buffers, 3.11/3.12 instance
 *     values arrays, deque blocks, code co_extra (and cell2arg, 3.8-3.10;
 *     _co_cached, 3.12+), a heap type's slot members, doc and cached
 *     shared keys (counted once, on the type, never on instances).
 * Each block is rounded as the allocator serves it (block_round below):
 *   - requests of 1..512 bytes come from pymalloc (PyObject_Malloc and,
 *     3.8+, PyMem_Malloc): SMALL_REQUEST_THRESHOLD 512, size classes of
 *     ALIGNMENT 16 on 64-bit builds (Objects/obmalloc.c 3.8-3.12,
 *     Include/internal/pycore_obmalloc.h 3.13);
 *   - larger ones are glibc malloc chunks: request2size() =
 *     max(MINSIZE 32, (n + SIZE_SZ 8 + MALLOC_ALIGN_MASK 15) & ~15);
 *   - from the default mmap threshold (128 KiB) on, glibc maps the chunk:
 *     n + 16 rounded up to the page. glibc raises that threshold
 *     dynamically after frees, so a big block may really be a heap chunk
 *     (the difference is under one page per block).
 * The model assumes the default allocators (PYTHONMALLOC unset).
 * Static objects (in a loaded image: static types, None, small ints and
 * strings of 3.11+'s _PyRuntime, deep-frozen code) are no allocator block:
 * their size is their struct, unrounded, with no header.
 * Native buffers (numpy data, array.array items, torch storages...) are
 * not counted here: native.c makes each one a node of its own.
 */
#define Py_BUILD_CORE_MODULE 1
#include "pycore.h"
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#define PYMALLOC_MAX 512u       /* SMALL_REQUEST_THRESHOLD */
#define PYMALLOC_ALIGN 16u      /* ALIGNMENT, 64-bit */
#define MALLOC_MMAP_MIN (128u * 1024u) /* DEFAULT_MMAP_THRESHOLD_MIN... default */

static uint64_t page_size = 4096;

/* The block the allocator hands out for a request of n bytes. */
static inline uint64_t block_round(uint64_t n)
{
	if (n == 0)
		return 0;
	if (n <= PYMALLOC_MAX)
		return (n + PYMALLOC_ALIGN - 1) & ~(uint64_t)(PYMALLOC_ALIGN - 1);
	if (n >= MALLOC_MMAP_MIN)
		return (n + 16 + page_size - 1) & ~(page_size - 1);
	uint64_t c = (n + 8 + 15) & ~(uint64_t)15;
	return c < 32 ? 32 : c;
}

/* Add one block of a request of n bytes to the object's total. */
static inline uint64_t add_block(hs_blocks_acc *acc, uint64_t n)
{
	uint64_t b = block_round(n);
	if (n == 0)
		return 0;
	if (n <= PYMALLOC_MAX)
		acc->pymalloc += b;
	else
		acc->malloc += b;
	return b;
}

/* ------------------------------------------------------------------ */
/* Static objects: address ranges of the loaded images                 */

typedef struct range {
	uintptr_t lo, hi;
} range;

static range *ranges;
static size_t nranges, cranges;
#define PAGE_CACHE 1024
static uintptr_t page_key[PAGE_CACHE]; /* region + 1; 0 empty (is_static) */
static uint8_t page_static[PAGE_CACHE];

static int add_range(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		if (nranges == cranges) {
			size_t cap = cranges ? cranges * 2 : 256;
			range *r = hs_reallocarray(ranges, cap, sizeof(*r));
			if (!r)
				return 1; /* out of memory: fewer ranges, statics sized as blocks */
			ranges = r;
			cranges = cap;
		}
		ranges[nranges].lo = info->dlpi_addr + ph->p_vaddr;
		ranges[nranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		nranges++;
	}
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Before a dump (in the parent before a fork: dl_iterate_phdr takes the
 * loader's lock, which another thread may hold at fork time). */
void hs_blocks_prepare(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0)
		page_size = (uint64_t)ps;
	nranges = 0;
	memset(page_key, 0, sizeof(page_key));
	dl_iterate_phdr(add_range, NULL);
	qsort(ranges, nranges, sizeof(*ranges), range_cmp);
}

/* Per 1 MiB region: no static object in it (0), all of it in one image
 * (1), or mixed (2: binary search), in a direct-mapped cache in front of
 * the binary search. A heap of a million objects spans a few hundred
 * regions, far from the images: nearly every lookup is a hit and says 0
 * (a per-page cache missed on most objects of a big heap). Reset by
 * hs_blocks_prepare. */
#define REGION_SHIFT 20

static int range_search(uintptr_t a);
static uint8_t region_kind(uintptr_t region);

static inline int is_static(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uintptr_t region = a >> REGION_SHIFT;
	size_t c = (size_t)(region ^ (region >> 10)) & (PAGE_CACHE - 1);
	uint8_t k;
	if (page_key[c] == region + 1) {
		k = page_static[c];
	} else {
		k = region_kind(region);
		page_key[c] = region + 1;
		page_static[c] = k;
	}
	return k == 2 ? range_search(a) : k;
}

/* The first range whose end is above a (ranges are sorted and disjoint:
 * PT_LOAD segments of distinct images). */
static size_t range_first_above(uintptr_t a)
{
	size_t lo = 0, hi = nranges;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ranges[mid].hi <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint8_t region_kind(uintptr_t region)
{
	uintptr_t lo = region << REGION_SHIFT, hi = lo + ((uintptr_t)1 << REGION_SHIFT);
	size_t i = range_first_above(lo);
	if (i == nranges || ranges[i].lo >= hi)
		return 0;
	if (ranges[i].lo <= lo && ranges[i].hi >= hi)
		return 1;
	return 2;
}

static int range_search(uintptr_t a)
{
	size_t i = range_first_above(a);
	return i < nranges && ranges[i].lo <= a;
}

/* ------------------------------------------------------------------ */
/* Per type                                                            */

/* tp's own C-level __sizeof__: the first one in the MRO that is a method
 * descriptor (Python-level ones size other objects, which are nodes of
 * their own; the object's block follows its C layout). */
static PyObject *c_sizeof(const hs_size_rules *r, PyTypeObject *tp)
{
	PyObject *mro = tp->tp_mro;
	if (!mro || !PyTuple_Check(mro))
		return NULL;
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
		PyTypeObject *b = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
		if (!PyType_Check((PyObject *)b))
			continue;
		PyObject *d = b->tp_dict;
#if PY_VERSION_HEX >= 0x030C0000
		if (!d && !(b->tp_flags & Py_TPFLAGS_HEAPTYPE))
			d = _PyType_GetDict(b); /* static builtin types keep it per interpreter */
#endif
		if (!d || !PyDict_Check(d))
			continue;
		PyObject *v = PyDict_GetItemWithError(d, r->name);
		if (!v) {
			PyErr_Clear();
			continue;
		}
		if (Py_TYPE(v) == &PyMethodDescr_Type)
			return v;
	}
	return NULL;
}

static int type_named(PyTypeObject *tp, const char *name)
{
	for (PyTypeObject *t = tp; t; t = t->tp_base)
		if (t->tp_name && !strcmp(t->tp_name, name))
			return 1;
	return 0;
}

void hs_blocks_type_init(const hs_size_rules *r, PyTypeObject *tp, hs_block_type *bt)
{
	unsigned long fl = tp->tp_flags;
	memset(bt, 0, sizeof(*bt));
	if (fl & Py_TPFLAGS_LONG_SUBCLASS)
		bt->layout = HS_BL_LONG;
	else if (fl & Py_TPFLAGS_UNICODE_SUBCLASS)
		bt->layout = HS_BL_STR;
	else if (fl & Py_TPFLAGS_LIST_SUBCLASS)
		bt->layout = HS_BL_LIST;
	else if (fl & Py_TPFLAGS_DICT_SUBCLASS)
		bt->layout = HS_BL_DICT;
	else if (fl & Py_TPFLAGS_TYPE_SUBCLASS)
		bt->layout = HS_BL_TYPE;
	else if (PyType_IsSubtype(tp, &PySet_Type) || PyType_IsSubtype(tp, &PyFrozenSet_Type))
		bt->layout = HS_BL_SET;
	else if (PyType_IsSubtype(tp, &PyByteArray_Type))
		bt->layout = HS_BL_BYTEARRAY;
	else if (tp == &PyCode_Type)
		bt->layout = HS_BL_CODE;
	else if (type_named(tp, "collections.deque"))
		bt->layout = HS_BL_DEQUE;
	else if (type_named(tp, "numpy.ndarray"))
		bt->layout = HS_BL_NDARRAY;
#if PY_VERSION_HEX >= 0x030B0000
	/* PyObject_HEAD, not VAR_HEAD: allocated with PyObject_GC_NewVar(...,
	 * co_nlocalsplus + co_stacksize) whose ob_size field is then another
	 * member (f_back, gi_code...); the slot count comes from the code */
	else if (tp == &PyFrame_Type)
		bt->layout = HS_BL_FRAME;
	else if (tp == &PyGen_Type || tp == &PyCoro_Type || tp == &PyAsyncGen_Type)
		bt->layout = HS_BL_GEN;
#endif
	/* tuple, bytes, float, frames, generators, functions, instances:
	 * the generic rule (their allocators ask for exactly that) */

	bt->presize = (uint16_t)hs_hook__presize_alloc(tp);
	/* PyType_GenericAlloc: _PyObject_VAR_SIZE(type, nitems + 1). The
	 * builtin var-sized types use their own allocator with exactly
	 * nitems (PyTuple_New, _PyLong_New, PyBytes_FromStringAndSize...),
	 * their subclasses (heap types) the generic one. */
	bt->extra_item = (fl & Py_TPFLAGS_HEAPTYPE) && tp->tp_itemsize > 0 &&
	                 tp->tp_alloc == PyType_GenericAlloc;
#if PY_VERSION_HEX >= 0x030D0000
	bt->inline_values = (fl & Py_TPFLAGS_INLINE_VALUES) != 0;
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
	bt->managed_values = (fl & Py_TPFLAGS_MANAGED_DICT) && (fl & Py_TPFLAGS_HEAPTYPE) &&
	                     bt->layout != HS_BL_TYPE;
#endif

	/* A C-level __sizeof__ we do not model may count buffers we do not
	 * see: the real size is a lower bound (flag 0x08). */
	PyObject *d = c_sizeof(r, tp);
	int modeled = d == NULL;
	for (int i = 0; i < HS_SIZE_MODELED && !modeled; i++)
		modeled = d == r->modeled[i];
	if (!modeled) {
		/* frames and generators (3.11+: frame data inline, sized by the
		 * generic rule), array.array (items: a native buffer node),
		 * numpy arrays (data: a native buffer node) */
		modeled = tp == &PyFrame_Type || tp == &PyGen_Type || tp == &PyCoro_Type ||
		          tp == &PyAsyncGen_Type || bt->layout == HS_BL_NDARRAY ||
		          bt->layout == HS_BL_DEQUE || type_named(tp, "array.array");
	}
	bt->estimated = !modeled;
	bt->heap_only = (fl & Py_TPFLAGS_HEAPTYPE) && bt->layout != HS_BL_TYPE;
	/* ob_size counts the items where object.__sizeof__ says so (no own C
	 * __sizeof__), for the builtin var-sized types we model, and for heap
	 * subclasses (their items come from a var-sized base); a C type with
	 * its own __sizeof__ may keep something else there */
	bt->trust_size = tp->tp_itemsize > 0 && (d == NULL || d == r->modeled[0] || modeled ||
	                                          (fl & Py_TPFLAGS_HEAPTYPE)) &&
	                 bt->layout != HS_BL_FRAME && bt->layout != HS_BL_GEN;
#if PY_VERSION_HEX < 0x030B0000
	if (tp == &PyFrame_Type) /* PyObject_VAR_HEAD, f_localsplus items */
		bt->trust_size = 1;
#endif
}

/* ------------------------------------------------------------------ */
/* Per object                                                          */

#define USABLE_FRACTION(n) (((n) << 1) / 3)

#if PY_VERSION_HEX < 0x030B0000
/* Objects/dict-common.h, 3.8-3.10 (not installed) */
typedef struct hs_keys310 {
	Py_ssize_t dk_refcnt;
	Py_ssize_t dk_size;
	void *dk_lookup;
	Py_ssize_t dk_usable;
	Py_ssize_t dk_nentries;
} hs_keys310;
#endif

/* The block of a dict keys object (new_keys_object). */
static uint64_t keys_request(PyDictKeysObject *k)
{
#if PY_VERSION_HEX < 0x030B0000
	const hs_keys310 *dk = (const hs_keys310 *)k;
	uint64_t size = (uint64_t)dk->dk_size;
	uint64_t es = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffu ? 4 : 8;
	/* sizeof(PyDictKeysObject) + es * size + sizeof(PyDictKeyEntry) * usable */
	return sizeof(hs_keys310) + es * size + 24 * USABLE_FRACTION(size);
#else
	uint64_t size = (uint64_t)1 << k->dk_log2_size;
	uint64_t entry = k->dk_kind == DICT_KEYS_GENERAL ? sizeof(PyDictKeyEntry) : sizeof(PyDictUnicodeEntry);
	return sizeof(PyDictKeysObject) + ((uint64_t)1 << k->dk_log2_index_bytes) +
	       entry * USABLE_FRACTION(size);
#endif
}

static int keys_owned(PyDictKeysObject *k)
{
#if PY_VERSION_HEX < 0x030B0000
	return ((const hs_keys310 *)k)->dk_refcnt == 1;
#else
	return k->dk_refcnt == 1;
#endif
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* new_values(size), 3.11/3.12: a prefix of round_up(size + 2, 8) bytes,
 * whose last byte records its length, then `size` pointers, with size =
 * shared_keys_usable_size(keys) = dk_nentries + dk_usable (invariant). */
static uint64_t values_request(PyDictValues *v, PyDictKeysObject *keys)
{
	uint64_t prefix = ((const uint8_t *)v)[-1];
	uint64_t usable = keys ? (uint64_t)(keys->dk_nentries + keys->dk_usable) : 0;
	return prefix + usable * sizeof(PyObject *);
}
#endif
#if PY_VERSION_HEX >= 0x030D0000
/* values_size_from_count(), 3.13: inline (_PyInlineValuesSize) or not */
static uint64_t values_request(const PyDictValues *v)
{
	uint64_t n = v->capacity;
	return (n + 1) * sizeof(PyObject *) + ((n + 7) & ~(uint64_t)7);
}
#endif

static uint64_t dict_buffers(PyDictObject *mp, hs_blocks_acc *acc)
{
	uint64_t s = 0;
	PyDictKeysObject *k = mp->ma_keys;
	if (mp->ma_values) {
#if PY_VERSION_HEX < 0x030B0000
		/* new_values(USABLE_FRACTION(DK_SIZE(keys))): PyMem_NEW(PyObject *, n) */
		s += add_block(acc, sizeof(PyObject *) * USABLE_FRACTION((uint64_t)((hs_keys310 *)k)->dk_size));
#elif PY_VERSION_HEX < 0x030D0000
		s += add_block(acc, values_request(mp->ma_values, k));
#else
		/* embedded values live in the owner's block */
		if (!mp->ma_values->embedded)
			s += add_block(acc, values_request(mp->ma_values));
#endif
	}
	if (k && keys_owned(k))
		s += add_block(acc, keys_request(k));
	return s;
}

static uint64_t str_buffers(PyObject *op, hs_blocks_acc *acc)
{
	PyASCIIObject *a = (PyASCIIObject *)op;
	uint64_t s = 0;
	if (!a->state.compact) {
		/* a legacy or subclass string: data in a block of its own */
		PyUnicodeObject *u = (PyUnicodeObject *)op;
		if (u->data.any)
			s += add_block(acc, ((uint64_t)a->length + 1) * a->state.kind);
	}
#if PY_VERSION_HEX < 0x030C0000
	if (a->wstr && (!a->state.ready || (const void *)a->wstr != hs_hook__str_data(op))) {
		uint64_t wlen = a->state.compact && a->state.ascii ? (uint64_t)a->length
		                                                     : (uint64_t)((PyCompactUnicodeObject *)op)->wstr_length;
		s += add_block(acc, (wlen + 1) * sizeof(wchar_t));
	}
#endif
	if (!(a->state.compact && a->state.ascii)) {
		PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)op;
		if (c->utf8 && (const void *)c->utf8 != hs_hook__str_data(op))
			s += add_block(acc, (uint64_t)c->utf8_length + 1);
	}
	return s;
}

#if PY_VERSION_HEX >= 0x030B0000
static PyCodeObject *iframe_code(_PyInterpreterFrame *fr)
{
	if (!fr)
		return NULL;
#if PY_VERSION_HEX >= 0x030D0000
	return fr->f_executable && PyCode_Check(fr->f_executable) ? (PyCodeObject *)fr->f_executable : NULL;
#else
	return fr->f_code;
#endif
}
#endif

/* The number of items the object's block was allocated with. */
static uint64_t own_items(const hs_block_type *bt, PyTypeObject *tp, PyObject *op)
{
	if (tp->tp_itemsize <= 0)
		return 0;
	uint64_t n;
#if PY_VERSION_HEX >= 0x030B0000
	if (bt->layout == HS_BL_FRAME || bt->layout == HS_BL_GEN) {
		PyCodeObject *co;
		if (bt->layout == HS_BL_FRAME)
			co = iframe_code(((PyFrameObject *)op)->f_frame);
		else
#if PY_VERSION_HEX >= 0x030C0000
			co = iframe_code((_PyInterpreterFrame *)((PyGenObject *)op)->gi_iframe);
#else
			co = ((PyGenObject *)op)->gi_code;
#endif
		if (!co)
			return 0;
		return (uint64_t)co->co_nlocalsplus + (uint64_t)co->co_stacksize;
	}
#endif
	if (!bt->trust_size)
		return 0;
	if (bt->layout == HS_BL_LONG) {
#if PY_VERSION_HEX < 0x030C0000
		Py_ssize_t d = ((PyVarObject *)op)->ob_size;
		n = (uint64_t)(d < 0 ? -d : d);
#if PY_VERSION_HEX >= 0x030B0000
		if (n < 1)
			n = 1; /* _PyLong_New: ndigits = size ? size : 1 */
#endif
#else
		n = (uint64_t)(((PyLongObject *)op)->long_value.lv_tag >> _PyLong_NON_SIZE_BITS);
		if (n < 1)
			n = 1;
#endif
	} else {
		Py_ssize_t sz = ((PyVarObject *)op)->ob_size;
		n = sz > 0 ? (uint64_t)sz : 0;
	}
	return n + bt->extra_item;
}

/* The struct of a compact str (unicode_new / PyUnicode_New). */
static uint64_t str_own(PyObject *op)
{
	PyASCIIObject *a = (PyASCIIObject *)op;
	if (!a->state.compact)
		return Py_TYPE(op)->tp_basicsize;
	if (a->state.ascii)
		return sizeof(PyASCIIObject) + (uint64_t)a->length + 1;
	return sizeof(PyCompactUnicodeObject) + ((uint64_t)a->length + 1) * a->state.kind;
}

/* deque: blocks of BLOCKLEN (64) items and two links, PyMem_Malloc'd;
 * live blocks as deque_sizeof counts them (the freed-block cache of
 * 3.11+ is left out: at most 16 blocks). */
typedef struct hs_deque_head {
	PyObject_VAR_HEAD
	void *leftblock, *rightblock;
	Py_ssize_t leftindex;
} hs_deque_head;
#define DEQUE_BLOCKLEN 64

uint64_t hs_blocks_size(const hs_block_type *bt, PyTypeObject *tp, PyObject *op, hs_blocks_acc *acc,
                        int tracked)
{
	uint64_t items = own_items(bt, tp, op);
	if (bt->layout == HS_BL_TYPE && !bt->extra_item && tp->tp_itemsize > 0 &&
	    (((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))
		items++; /* type_new: metatype->tp_alloc(metatype, nslots), the generic alloc */
	uint64_t own = (uint64_t)tp->tp_basicsize + items * (uint64_t)tp->tp_itemsize;
	if (bt->layout == HS_BL_STR && Py_TYPE(op) == &PyUnicode_Type)
		own = str_own(op);
	else if (bt->layout == HS_BL_TYPE && !(((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))
		own = sizeof(PyTypeObject);
#if PY_VERSION_HEX >= 0x030D0000
	if (bt->inline_values)
		own += values_request(_PyObject_InlineValues(op));
#endif
	/* a static object is in no GC list, and no instance of a heap type
	 * (created at run time) is in a loaded image */
	if (!tracked && !bt->heap_only && is_static(op)) {
		acc->static_bytes += own;
		return own; /* no allocator block, no header; owns no buffer */
	}
	uint64_t s = add_block(acc, own + bt->presize);

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
	if (bt->managed_values) {
		PyDictKeysObject *keys = ((PyHeapTypeObject *)tp)->ht_cached_keys;
#if PY_VERSION_HEX < 0x030C0000
		PyDictValues *v = *_PyObject_ValuesPointer(op);
#else
		PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(op);
		PyDictValues *v = _PyDictOrValues_IsValues(dorv) ? _PyDictOrValues_GetValues(dorv) : NULL;
#endif
		if (v && keys)
			s += add_block(acc, values_request(v, keys));
	}
#endif

	switch (bt->layout) {
	case HS_BL_STR:
		s += str_buffers(op, acc);
		break;
	case HS_BL_LIST: {
		PyListObject *l = (PyListObject *)op;
		if (l->ob_item && l->allocated > 0)
			s += add_block(acc, (uint64_t)l->allocated * sizeof(PyObject *));
		break;
	}
	case HS_BL_DICT:
		s += dict_buffers((PyDictObject *)op, acc);
		break;
	case HS_BL_SET: {
		PySetObject *so = (PySetObject *)op;
		if (so->table && so->table != so->smalltable)
			s += add_block(acc, ((uint64_t)so->mask + 1) * sizeof(setentry));
		break;
	}
	case HS_BL_BYTEARRAY: {
		PyByteArrayObject *b = (PyByteArrayObject *)op;
		if (b->ob_bytes && b->ob_alloc > 0)
			s += add_block(acc, (uint64_t)b->ob_alloc);
		break;
	}
	case HS_BL_DEQUE: {
		const hs_deque_head *d = (const hs_deque_head *)op;
		if (tp->tp_basicsize >= (Py_ssize_t)sizeof(hs_deque_head) && d->leftindex >= 0 &&
		    d->ob_base.ob_size >= 0) {
			uint64_t blocks = ((uint64_t)d->leftindex + (uint64_t)d->ob_base.ob_size + DEQUE_BLOCKLEN - 1) /
			                  DEQUE_BLOCKLEN;
			for (uint64_t i = 0; i < blocks; i++)
				s += add_block(acc, (DEQUE_BLOCKLEN + 2) * sizeof(void *));
		}
		break;
	}
	case HS_BL_CODE: {
		PyCodeObject *co = (PyCodeObject *)op;
		if (co->co_extra) /* _PyCodeObjectExtra: ce_size, then ce_size pointers */
			s += add_block(acc, sizeof(Py_ssize_t) +
			                        (uint64_t)*(Py_ssize_t *)co->co_extra * sizeof(void *));
#if PY_VERSION_HEX < 0x030B0000
		if (co->co_cell2arg && co->co_cellvars && PyTuple_Check(co->co_cellvars))
			s += add_block(acc, (uint64_t)PyTuple_GET_SIZE(co->co_cellvars) * sizeof(Py_ssize_t));
#endif
#if PY_VERSION_HEX >= 0x030C0000
		if (co->_co_cached)
			s += add_block(acc, sizeof(_PyCoCached));
#endif
		break;
	}
	case HS_BL_TYPE: {
		PyTypeObject *t = (PyTypeObject *)op;
		if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
			break;
		PyHeapTypeObject *ht = (PyHeapTypeObject *)t;
		if (ht->ht_cached_keys)
			s += add_block(acc, keys_request(ht->ht_cached_keys));
		if (t->tp_doc) /* type_new / PyType_FromSpec copy it */
			s += add_block(acc, strlen(t->tp_doc) + 1);
		break;
	}
	case HS_BL_NDARRAY: {
		/* numpy: dimensions and strides, one block of 2 * nd npy_intp
		 * (npy_alloc_cache_dim, at least 2) from malloc */
		int nd = *(const int *)((const char *)op + sizeof(PyObject) + sizeof(char *));
		if (nd > 0 && nd <= 64) {
			uint64_t n = 2 * (uint64_t)nd * sizeof(Py_ssize_t);
			uint64_t b = (n + 8 + 15) & ~(uint64_t)15;
			b = b < 32 ? 32 : b;
			acc->malloc += b;
			s += b;
		}
		break;
	}
	default:
		break;
	}
	return s;
}
