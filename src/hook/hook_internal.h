/*
 * hook/hook_internal.h: declarations shared by the files of the hook (the
 * `heapsnap._heapsnap` CPython extension).
 *
 * Only walk.c includes CPython's internal headers (it defines
 * Py_BUILD_CORE_MODULE before including this file); everything else here
 * uses the public C API, so internal structs are read in one place.
 */
#ifndef HS_HOOK_INTERNAL_H
#define HS_HOOK_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "heapsnap/format.h"
#include "util/alloc.h"
#include "util/buf.h"

#ifndef HS_HOOK_VERSION
#define HS_HOOK_VERSION "0.0.0"
#endif

/* ------------------------------------------------------------------ */
/* Visited set (visited.c): one bit per 16 bytes of address space.     */

/*
 * Distinct live objects are at least sizeof(PyObject) = 16 bytes apart, so
 * address >> 4 names an object uniquely even when it is only 8-byte aligned
 * (static objects). The address space is cut into 1 MiB pages, each an
 * 8 KiB bitmap found through an open-addressing table keyed by address >> 20,
 * with the last page cached: objects allocated together sit in the same
 * pymalloc arena, so most lookups never touch the table.
 */
#define HS_VSET_PAGE_SHIFT 20
#define HS_VSET_PAGE_WORDS ((1u << (HS_VSET_PAGE_SHIFT - 4)) / 64u)

typedef struct hs_vset_slot {
	uintptr_t key; /* page number + 1; 0 = empty */
	uint64_t *bits;
} hs_vset_slot;

typedef struct hs_vset {
	hs_vset_slot *slots;
	size_t mask;
	size_t pages;
	uintptr_t last_key;
	uint64_t *last_bits;
	/* direct-mapped cache of recent pages, in front of the table */
	uintptr_t cache_key[64];
	uint64_t *cache_bits[64];
} hs_vset;

int hs_vset_init(hs_vset *s);
void hs_vset_release(hs_vset *s);
/* The bitmap of page `key` (address >> 20), created zeroed; NULL on OOM. */
uint64_t *hs_vset__page(hs_vset *s, uintptr_t key);

/* 1 if `p` was not in the set (it is now), 0 if it was, HS_ENOMEM. */
static inline int hs_vset_add(hs_vset *s, const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uintptr_t key = a >> HS_VSET_PAGE_SHIFT;
	uint64_t *bits = s->last_bits;
	if (key != s->last_key || bits == NULL) {
		size_t c = key & 63;
		if (s->cache_key[c] == key + 1) {
			bits = s->cache_bits[c];
		} else {
			bits = hs_vset__page(s, key);
			if (bits == NULL)
				return HS_ENOMEM;
			s->cache_key[c] = key + 1;
			s->cache_bits[c] = bits;
		}
		s->last_key = key;
		s->last_bits = bits;
	}
	size_t bit = (a >> 4) & ((1u << (HS_VSET_PAGE_SHIFT - 4)) - 1);
	uint64_t m = (uint64_t)1 << (bit & 63);
	if (bits[bit >> 6] & m)
		return 0;
	bits[bit >> 6] |= m;
	return 1;
}

/* 1 if `p` is in the set; never adds (same hash as visited.c's pages). */
static inline int hs_vset_has(const hs_vset *s, const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uintptr_t key = (a >> HS_VSET_PAGE_SHIFT) + 1;
	if (!s->slots)
		return 0;
	size_t i = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 20) & s->mask;
	for (size_t k = 0; k <= s->mask && s->slots[i].key; k++, i = (i + 1) & s->mask) {
		if (s->slots[i].key == key) {
			size_t bit = (a >> 4) & ((1u << (HS_VSET_PAGE_SHIFT - 4)) - 1);
			return (int)((s->slots[i].bits[bit >> 6] >> (bit & 63)) & 1);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Text (text.c): UTF-8 from str without creating objects, and JSON.   */

/*
 * Append at most `max_cp` code points of `s` (a str, any subclass) as UTF-8
 * to `out`; lone surrogates are written as the six characters `\udXXX`.
 * `*truncated` is set when code points were left out.
 * @return 0, 1 if the string cannot be read without running code (a legacy
 *         string not yet "ready"), or HS_ENOMEM.
 */
int hs_hook__str_utf8(hs_buf *out, PyObject *s, Py_ssize_t max_cp, int *truncated);

/* A JSON writer into an hs_buf. Errors (OOM) are sticky in `err`. */
typedef struct hs_json {
	hs_buf b;
	int err;
	int depth;
	unsigned char first[32];
} hs_json;

void hs_json_init(hs_json *j);
void hs_json_release(hs_json *j);
/* `key` is the member name inside an object, NULL inside an array. */
void hs_json_open(hs_json *j, const char *key, char brace);   /* '{' or '[' */
void hs_json_close(hs_json *j, char brace);                   /* '}' or ']' */
void hs_json_str(hs_json *j, const char *key, const char *s, size_t len);
void hs_json_cstr(hs_json *j, const char *key, const char *s); /* NULL -> null */
void hs_json_pystr(hs_json *j, const char *key, PyObject *s);  /* non-str -> null */
void hs_json_int(hs_json *j, const char *key, long long v);
void hs_json_uint(hs_json *j, const char *key, unsigned long long v);
void hs_json_double(hs_json *j, const char *key, double v);
void hs_json_bool(hs_json *j, const char *key, int v);
void hs_json_null(hs_json *j, const char *key);

/* ------------------------------------------------------------------ */
/* Metadata (meta.c): gathered before the walk, kept in C memory.      */

typedef struct hs_thread_info {
	unsigned long ident;
	unsigned long native_id;
	int has_native_id;
	char *name; /* UTF-8, NUL-terminated, owned; NULL if unknown */
	int daemon; /* -1 unknown */
	int main;
} hs_thread_info;

typedef struct hs_meta {
	hs_thread_info *threads;
	size_t nthreads;
	int gc_enabled; /* before the dump */
} hs_meta;

/*
 * Gather everything Python-related for the META section and the thread
 * names, then write the JSON into `json`. Runs Python-level C functions
 * (gc.get_stats, ...); every object it creates is released before it
 * returns, so none of them is in the snapshot.
 * @return 0, or -1 with a Python exception set.
 */
/* The interpreter's main thread (known even when threading was never imported). */
unsigned long hs_hook__main_thread_ident(void);
int hs_hook__meta_gather(hs_meta *m, hs_json *json, int collect);
/* Set around meta_gather by fork mode: leave out the USS/PSS figures that
 * need /proc/self/smaps_rollup (its cost grows with the RSS). */
extern int hs_hook__meta_no_smaps;
void hs_hook__meta_release(hs_meta *m);
/* The name of a thread by ident, or NULL. */
const hs_thread_info *hs_hook__meta_thread(const hs_meta *m, unsigned long ident);

/* ------------------------------------------------------------------ */
/* The walk (walk.c).                                                  */

typedef struct hs_walk_result {
	uint64_t nodes, edges, roots, types;
	uint64_t sizeof_calls, sizeof_errors;
	uint64_t sizeof_skipped;    /* always 0 since format 1.1 (no deferred calls) */
	uint64_t sizeof_not_called; /* fork mode: C __sizeof__ not called, getsizeof unknown */
	/* real bytes by allocator (blocks.c) and native buffers (native.h) */
	uint64_t bytes_pymalloc, bytes_malloc, bytes_static, bytes_native, bytes_device;
	uint64_t native_buffers, native_conflicts, sizes_estimated;
	double walk_seconds;
	size_t peak_stack;
	size_t vset_pages;
	char native_notes[1024]; /* hs_native_notes() of the walk's state: "" = none */
} hs_walk_result;

/*
 * Walk the heap of the current interpreter and stream it into `w`.
 * Called with the GIL held and the GC disabled; the META section is
 * already written. Roots are written too. No Python exception is left set
 * (a failing __sizeof__ is recorded, not raised).
 * @return 0 or a negative hs_error_code (message in hs_error_last()).
 */
int hs_hook__walk(hs_writer *w, const hs_meta *m, hs_walk_result *res);

/* Before a fork-mode fork, in the parent (fork.c): probe native-buffer
 * layouts (may run Python code) and the static-object ranges, for the
 * child's walk; hs_hook__walk prepares by itself otherwise. The parent
 * calls unprepare once the child is forked. @return 0 or HS_ENOMEM. */
int hs_hook__walk_prepare(void);
void hs_hook__walk_unprepare(void);
/* The size-model figures of META_END `dump` (format 1.1), into the open
 * `dump` object of `j`. */
void hs_hook__walk_meta_end(hs_json *j, const hs_walk_result *wr);
/* The walk's own notes (a native library whose layout could not be
 * verified), as strings into the open `notes` array of `j`. */
void hs_hook__walk_notes(hs_json *j, const hs_walk_result *wr);

/* Module setup (walk.c): interned names. @return 0 or -1 with an exception. */
int hs_hook__init(void);

/* GC state (walk.c: the one place that reads interpreter internals). */
int hs_hook__gc_collecting(void);
int hs_hook__gc_enabled(void);
void hs_hook__gc_set_enabled(int on);

/*
 * Fork mode (fork.c): set in the forked child only. The walk then writes
 * nothing into the heap it reads: no __sizeof__ call (C or Python: both
 * create an int), no reference taken; such objects get their basic size and
 * HS_NODE_SIZE_ESTIMATED.
 */
extern int hs_hook__no_heap_writes;

/*
 * dump(path, fork=True): take the snapshot in a forked child (fork.c).
 * Called with the GIL held, after the optional gc.collect(). `status` is a
 * file the child writes its outcome to (NULL: none). Returns the figures
 * dict, or NULL with an exception set.
 */
PyObject *hs_hook__fork_dump(PyObject *pathobj, const char *path, int collect,
                             double collect_seconds, int wait, double timeout,
                             const char *status);

/* Monotonic clock in seconds. */
double hs_hook__now(void);

/* Raise the Python exception matching an hs_error_code (message from
 * hs_error_last()); returns -1. */
int hs_hook__raise(int code, const char *path);

/* Sizes as sys.getsizeof reports them (sizes.c), shared by the dump's walk
 * and the agent's TYPES walk. */
enum hs_size_kind {
	HS_SK_DEFAULT,   /* object.__sizeof__: basicsize + itemsize * ob_size */
	HS_SK_STR, HS_SK_LONG, HS_SK_LIST, HS_SK_DICT, HS_SK_SET, HS_SK_BYTEARRAY,
	HS_SK_CALL_C,    /* a C method descriptor: call it (no Python code runs) */
	HS_SK_CALL_PY,   /* anything else: may run Python code */
	HS_SK_NONE,      /* no __sizeof__ at all: basic size, estimated */
};
#define HS_SIZE_BUILTINS 10
#define HS_SIZE_MODELED 12
typedef struct hs_size_rules {
	PyObject *name;                             /* "__sizeof__", interned */
	PyObject *builtin_sizeof[HS_SIZE_BUILTINS]; /* borrowed descriptors */
	int builtin_kind[HS_SIZE_BUILTINS];
	/* C __sizeof__ descriptors whose hidden buffers blocks.c counts */
	PyObject *modeled[HS_SIZE_MODELED];
} hs_size_rules;
/* Look up the builtin __sizeof__ descriptors; -1 with an exception set. */
int hs_hook__size_rules_init(hs_size_rules *r);
/* The hs_size_kind of a type's __sizeof__. */
int hs_hook__size_kind(const hs_size_rules *r, PyTypeObject *tp);
/* __sizeof__ of `op` computed in C for the builtin kinds: 1 with *out set,
 * 0 for the others (HS_SK_CALL_*, HS_SK_NONE). */
int hs_hook__size_native(int kind, PyTypeObject *tp, PyObject *op, Py_ssize_t *out);
/* What sys.getsizeof adds to __sizeof__() (the GC and pre-headers). */
Py_ssize_t hs_hook__presize(PyTypeObject *tp, PyObject *op, int is_gc);
/* The GC header and pre-header allocated in front of tp's instances. */
Py_ssize_t hs_hook__presize_alloc(PyTypeObject *tp);

/* Real sizes: the allocator blocks an object owns (blocks.c). */
enum hs_block_layout {
	HS_BL_GENERIC, HS_BL_LONG, HS_BL_STR, HS_BL_LIST, HS_BL_DICT, HS_BL_TYPE, HS_BL_SET,
	HS_BL_BYTEARRAY, HS_BL_CODE, HS_BL_DEQUE, HS_BL_NDARRAY, HS_BL_FRAME, HS_BL_GEN,
};
typedef struct hs_block_type {
	uint8_t layout;         /* hs_block_layout */
	uint8_t estimated;      /* a C __sizeof__ we do not model: a lower bound */
	uint8_t extra_item;     /* PyType_GenericAlloc: nitems + 1 */
	uint8_t inline_values;  /* 3.13 Py_TPFLAGS_INLINE_VALUES */
	uint8_t managed_values; /* 3.11/3.12: a values array behind the pre-header */
	uint8_t trust_size;     /* ob_size is the item count */
	uint8_t heap_only;      /* instances of a heap type (not types): never static */
	uint16_t presize;       /* GC header + pre-header bytes */
} hs_block_type;
typedef struct hs_blocks_acc {
	uint64_t pymalloc;     /* blocks of <= 512 bytes */
	uint64_t malloc;       /* larger blocks (malloc chunks) */
	uint64_t static_bytes; /* static objects (no block) */
} hs_blocks_acc;
/* Before a dump or a TYPES walk (fork mode: in the parent before fork):
 * the address ranges of the loaded images (static objects). */
void hs_blocks_prepare(void);
void hs_blocks_type_init(const hs_size_rules *r, PyTypeObject *tp, hs_block_type *bt);
/* Real bytes of `op`, its blocks added to *acc. No Python code.
 * `tracked`: op is tracked by the GC, so it is a heap block, not a static
 * object (saves the address-range lookup); 0 when not known. */
uint64_t hs_blocks_size(const hs_block_type *bt, PyTypeObject *tp, PyObject *op, hs_blocks_acc *acc,
                        int tracked);
static inline int hs_hook__obj_is_gc(PyTypeObject *tp, PyObject *op)
{
	return PyType_IS_GC(tp) && (tp->tp_is_gc == NULL || tp->tp_is_gc(op));
}
const void *hs_hook__str_data(PyObject *op);

/* Allocation tracking (track.c): add its functions to the module.
 * Returns 0, or -1 with an exception set. */
int hs_track__register(PyObject *module);

/* The ring of garbage collections (events.c): add its functions to the
 * module. Returns 0, or -1 with an exception set. */
int hs_events__register(PyObject *module);

#endif
