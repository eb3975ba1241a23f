/*
 * hook/track_internal.h: the allocation tracker (track.c: allocator wrapping,
 * sampler, running total and peak, sessions, Python functions;
 * track_stack.c: stack capture per CPython version; track_sites.c: interned
 * code objects, locations, stacks, threads, the live set and the per-session
 * figures).
 *
 * Everything here runs inside allocator hooks, so it follows three rules:
 *   - no Python code and no Python allocation: tables grow with libc
 *     malloc/realloc (not hs_malloc, whose error path writes the hook's
 *     thread-local message: the hook's TLS must not be touched from the
 *     interposer's callbacks, see preload.h);
 *   - one lock (hs_tk_lock) guards every table; it is never held while a
 *     Python allocator or the allocator below a hook is called;
 *   - a table that cannot grow drops the sample (counted), it never fails
 *     the program's allocation.
 */
#ifndef HS_HOOK_TRACK_INTERNAL_H
#define HS_HOOK_TRACK_INTERNAL_H

#include "hook_internal.h"

#include <stdatomic.h>
#include <stdint.h>

#include "track/preload.h"

#define HS_TK_MAX_FRAMES 64
#define HS_TK_MAX_SESSIONS 8
#define HS_TK_NONE UINT32_MAX

/* Stack kinds: where the block came from. */
enum {
	HS_TK_KIND_PYTHON = 0, /* PyMem/PyObject allocator, GIL held: Python frames */
	HS_TK_KIND_NATIVE = 1, /* the interposer (malloc family) */
	HS_TK_KIND_MMAP = 2,   /* the interposer (mmap) */
	HS_TK_KIND_NOGIL = 3,  /* PyMem_RawMalloc without the GIL: no frames */
};

/* ------------------------------------------------------------------ */
/* Lock (track.c)                                                      */

void hs_tk_lock(void);
void hs_tk_unlock(void);

/* ------------------------------------------------------------------ */
/* Tables (track_sites.c). All calls with the lock held.               */

typedef struct hs_tk_code {
	PyObject *code; /* strong reference, dropped by hs_tk_tables_release;
	                 * NULL: a detached entry (hs_tk_code_detached) */
	const void *key; /* detached: the object's address when copied */
	char *file, *name; /* detached: UTF-8 copies (libc) */
	int first;       /* detached: co_firstlineno */
} hs_tk_code;

typedef struct hs_tk_loc {
	uint32_t code;
	int32_t line;
} hs_tk_loc;

typedef struct hs_tk_stack {
	uint32_t hash;
	uint32_t thread;
	uint32_t off;   /* first frame in the frame pool */
	uint16_t n;     /* frames, innermost first */
	uint8_t kind;
	uint8_t truncated;
} hs_tk_stack;

typedef struct hs_tk_thread {
	unsigned long ident;
	long tid;
	char *name; /* UTF-8, libc-allocated; NULL unknown */
} hs_tk_thread;

/* A tracked live block. Sizes of 4 GiB and more are kept in `big`. */
typedef struct hs_tk_entry {
	uintptr_t ptr;   /* 0 = empty slot */
	uint32_t size;   /* UINT32_MAX: see the big-size side table */
	uint32_t stack;
	uint32_t gen;    /* session generation when allocated */
	uint32_t tick;   /* ms since the tracker started (coarse clock) */
} hs_tk_entry;

/* Figures of one stack in one session. *_n are allocation counts, *_b bytes
 * (estimates in sampled mode: each sample weighs 1/p). */
typedef struct hs_tk_fig {
	double a_n, a_b;   /* allocated */
	double l_n, l_b;   /* live now */
	double p_n, p_b;   /* live at the session's last high-water mark */
	uint32_t a_samples;
	uint32_t l_samples;
	uint32_t snap;     /* epoch p_* belongs to (lazy copy, see track.c) */
	uint32_t pad;
	double r_b;        /* live now, reserved: large native blocks at their size
	                    * (l_b counts their resident pages, track_resident.c) */
} hs_tk_fig;

typedef struct hs_tk_tables {
	hs_tk_code *codes; uint32_t ncodes, capcodes;
	uint32_t *code_slots; uint32_t code_mask;      /* open addressing: code index + 1 */
	hs_tk_loc *locs; uint32_t nlocs, caplocs;
	uint32_t *loc_slots; uint32_t loc_mask;
	hs_tk_stack *stacks; uint32_t nstacks, capstacks;
	uint32_t *stack_slots; uint32_t stack_mask;
	uint32_t *frames; uint32_t nframes, capframes;
	hs_tk_thread *threads; uint32_t nthreads, capthreads;
	hs_tk_entry *live; size_t live_mask, nlive;
	struct { uintptr_t ptr; uint64_t size; } *big; size_t nbig, capbig;
	uint64_t dropped; /* samples lost to a table that could not grow */
} hs_tk_tables;

extern hs_tk_tables hs_tk_t;

int hs_tk_tables_init(void);
/* Free every table; the code objects are returned in *codes (libc array,
 * *ncodes entries) for the caller to DECREF with the GIL held and free(). */
void hs_tk_tables_release(PyObject ***codes, uint32_t *ncodes);
size_t hs_tk_tables_bytes(void);

/* Interning. Each returns an index or HS_TK_NONE (no memory). */
uint32_t hs_tk_code_intern(PyObject *code);
uint32_t hs_tk_code_find(PyObject *code); /* lookup only: no reference taken */
/* Without the GIL: the entry of a code object by copied names (see track_sites.c). */
uint32_t hs_tk_code_detached(const void *key, int first, const char *file, size_t flen, const char *name,
                             size_t nlen);
uint32_t hs_tk_loc_intern(uint32_t code, int line);
uint32_t hs_tk_stack_intern(int kind, uint32_t thread, const uint32_t *locs, unsigned n, int truncated);
uint32_t hs_tk_thread_get(unsigned long ident, long tid);
/* Name a thread (creates its entry). */
void hs_tk_thread_name(unsigned long ident, long tid, const char *name, size_t len);

/* Live set. put (the address must not be in the set: take it first):
 * 0, or -1 no memory. take: 1 found (*out, *size), 0 not. */
int hs_tk_live_put(const hs_tk_entry *e, uint64_t size);
int hs_tk_live_take(uintptr_t ptr, hs_tk_entry *out, uint64_t *size);

/* Counting filter over the live set's addresses, read without the lock:
 * 0 means "certainly not tracked". */
#define HS_TK_FILTER_BITS 16
extern _Atomic uint8_t hs_tk_filter[1u << HS_TK_FILTER_BITS];
static inline size_t hs_tk_filter_slot(uintptr_t p)
{
	uint64_t x = (uint64_t)p * 0x9E3779B97F4A7C15ULL;
	return (size_t)(x >> (64 - HS_TK_FILTER_BITS));
}
/* One bit per counter, set while the counter is nonzero: what the free path
 * reads (8 KiB, stays in L1; the 64 KiB of counters did not, and the load
 * missed on most frees - over half of w_free's time when measured). Written
 * with the lock held, together with the counter. */
extern _Atomic uint64_t hs_tk_filter_bits[(1u << HS_TK_FILTER_BITS) / 64];
static inline int hs_tk_maybe_tracked(const void *p)
{
	size_t i = hs_tk_filter_slot((uintptr_t)p);
	return (atomic_load_explicit(&hs_tk_filter_bits[i >> 6], memory_order_relaxed) >> (i & 63)) & 1;
}

/* ------------------------------------------------------------------ */
/* Stack capture (track_stack.c)                                       */

/*
 * Fill `locs` (innermost first, at most HS_TK_MAX_FRAMES) with interned
 * locations of the current thread's Python frames. Called with the lock
 * held. Returns the number of frames; *truncated is set when the stack is
 * deeper. Returns -1 when the thread has no Python thread state. Without
 * the GIL the thread's own frames are read too (see track_stack.c).
 */
int hs_tk_capture(uint32_t *locs, int *truncated);
/* The frame cache maps (code, instruction) to a location; cleared when the
 * tables are (its entries name interned code objects). */
void hs_tk_capture_reset(void);
/* ------------------------------------------------------------------ */
/* Blocks reported with PyTraceMalloc_Track (track_traced.c)           */

/* Point the Track/Untrack GOT slots of loaded extension modules (and of
 * those loaded later) at the recorder. GIL held. Returns the slots patched. */
int hs_tk_traced_start(void);
/* Restore the slots. GIL held. */
void hs_tk_traced_stop(void);
void hs_tk_traced_stats(uint64_t *patched, uint64_t *foreign);
/* The recorder (track.c): a reported block, from any thread, GIL or not. */
void hs_tk__traced_alloc(uintptr_t ptr, size_t size);
void hs_tk__traced_free(uintptr_t ptr);
/* Sizes of reported blocks (lock held). put: 0 or -1 (no memory), *old the
 * size of a block at the same address not untracked (0 none). take: 1 found. */
int hs_tk_traced_put(uintptr_t p, uint64_t size, uint64_t *old);
int hs_tk_traced_take(uintptr_t p, uint64_t *size);
void hs_tk_traced_release(void);
size_t hs_tk_traced_bytes(void);

/* ------------------------------------------------------------------ */
/* Resident bytes of large native blocks (track_resident.c)            */

/* Bytes of [p, p + size) on resident pages (mincore). */
uint64_t hs_tk_resident_of(uintptr_t p, uint64_t size);
typedef struct hs_tk_res {
	uintptr_t ptr;      /* 0 = empty slot */
	uint64_t size;
	uint64_t charged;   /* resident bytes counted now (figures and total) */
	uint32_t stack, gen;
} hs_tk_res;
/* The table of such blocks (lock held). put: 0 or -1; take: 1 found. */
int hs_tk_res_put(const hs_tk_res *r);
int hs_tk_res_take(uintptr_t p, hs_tk_res *out);
size_t hs_tk_res_count(void);
hs_tk_res *hs_tk_res_slots(size_t *nslots); /* for the refresh: ptr 0 = empty */
void hs_tk_res_release(void);
size_t hs_tk_res_bytes(void);

/* This thread's Python thread state if it holds the GIL, else NULL. */
PyThreadState *hs_tk_gil_tstate(void);

#endif
