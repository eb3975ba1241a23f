/*
 * hook/track_sites.c: the tracker's tables. Every function runs with
 * hs_tk_lock held (see track_internal.h for the rules).
 *
 *   codes   code object -> index; holds a strong reference, so the address
 *           of an interned code object is not reused while tracking;
 *   locs    (code index, line) -> index;
 *   stacks  (kind, thread, locations innermost first, truncated) -> index;
 *           frames live in one uint32 pool;
 *   threads (ident, gettid) -> index, with the Python name when known;
 *   live    address -> entry (size, stack, session generation, time), open
 *           addressing with linear probing and backward-shift deletion (no
 *           tombstones), plus a counting filter readable without the lock.
 *
 * Open-addressing slot arrays hold index + 1 (0 = empty). Tables grow by
 * doubling with libc realloc; a failed growth returns HS_TK_NONE and the
 * caller drops the sample.
 */
#include "track_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

hs_tk_tables hs_tk_t;

/* The detached entries' indices, newest last: the lookup scans only them. */
static uint32_t *dlist;
static uint32_t ndlist, capdlist;

_Atomic uint8_t hs_tk_filter[1u << HS_TK_FILTER_BITS];
_Atomic uint64_t hs_tk_filter_bits[(1u << HS_TK_FILTER_BITS) / 64];

static int grow(void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
	if (need <= *cap)
		return 0;
	uint32_t nc = *cap ? *cap : 64;
	while (nc < need) {
		if (nc > UINT32_MAX / 2)
			return -1;
		nc *= 2;
	}
	void *p = realloc(*arr, (size_t)nc * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

/* Rebuild an index+1 slot array of 2*n slots (power of two) from `count`
 * items hashed by `hash(i)`. */
static int rehash(uint32_t **slots, uint32_t *mask, uint32_t count, uint32_t (*hash)(uint32_t))
{
	uint32_t size = 64;
	while (size < count * 2 + 2) {
		if (size > UINT32_MAX / 4)
			return -1;
		size *= 2;
	}
	uint32_t *s = calloc(size, sizeof(uint32_t));
	if (!s)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t j = hash(i) & (size - 1);
		while (s[j])
			j = (j + 1) & (size - 1);
		s[j] = i + 1;
	}
	free(*slots);
	*slots = s;
	*mask = size - 1;
	return 0;
}

static uint32_t code_hash_of(const void *p) { return (uint32_t)hs_hash_u64((uint64_t)(uintptr_t)p); }
static uint32_t code_hash(uint32_t i) { return code_hash_of(hs_tk_t.codes[i].code); }
static uint32_t loc_hash_of(uint32_t code, int line)
{
	return (uint32_t)hs_hash_u64(((uint64_t)code << 32) ^ (uint32_t)line);
}
static uint32_t loc_hash(uint32_t i) { return loc_hash_of(hs_tk_t.locs[i].code, hs_tk_t.locs[i].line); }
static uint32_t stack_hash(uint32_t i) { return hs_tk_t.stacks[i].hash; }

int hs_tk_tables_init(void)
{
	memset(&hs_tk_t, 0, sizeof(hs_tk_t));
	for (size_t i = 0; i < (1u << HS_TK_FILTER_BITS); i++)
		atomic_store_explicit(&hs_tk_filter[i], 0, memory_order_relaxed);
	for (size_t i = 0; i < (1u << HS_TK_FILTER_BITS) / 64; i++)
		atomic_store_explicit(&hs_tk_filter_bits[i], 0, memory_order_relaxed);
	hs_tk_t.live_mask = 1023;
	hs_tk_t.live = calloc(hs_tk_t.live_mask + 1, sizeof(hs_tk_entry));
	if (!hs_tk_t.live || rehash(&hs_tk_t.code_slots, &hs_tk_t.code_mask, 0, code_hash) < 0 ||
	    rehash(&hs_tk_t.loc_slots, &hs_tk_t.loc_mask, 0, loc_hash) < 0 ||
	    rehash(&hs_tk_t.stack_slots, &hs_tk_t.stack_mask, 0, stack_hash) < 0) {
		PyObject **c;
		uint32_t n;
		hs_tk_tables_release(&c, &n);
		free(c);
		return -1;
	}
	return 0;
}

void hs_tk_tables_release(PyObject ***codes, uint32_t *ncodes)
{
	PyObject **c = NULL;
	uint32_t n = hs_tk_t.ncodes;
	if (n) {
		c = malloc(n * sizeof(PyObject *));
		if (c) {
			for (uint32_t i = 0; i < n; i++)
				c[i] = hs_tk_t.codes[i].code;
		} else {
			n = 0; /* cannot hand them back: leak the references, never crash */
		}
	}
	*codes = c;
	*ncodes = n;
	for (uint32_t i = 0; i < hs_tk_t.nthreads; i++)
		free(hs_tk_t.threads[i].name);
	for (uint32_t i = 0; i < hs_tk_t.ncodes; i++) {
		free(hs_tk_t.codes[i].file);
		free(hs_tk_t.codes[i].name);
	}
	free(hs_tk_t.codes);
	free(dlist);
	dlist = NULL;
	ndlist = capdlist = 0;
	free(hs_tk_t.code_slots);
	free(hs_tk_t.locs);
	free(hs_tk_t.loc_slots);
	free(hs_tk_t.stacks);
	free(hs_tk_t.stack_slots);
	free(hs_tk_t.frames);
	free(hs_tk_t.threads);
	free(hs_tk_t.live);
	free(hs_tk_t.big);
	memset(&hs_tk_t, 0, sizeof(hs_tk_t));
}

size_t hs_tk_tables_bytes(void)
{
	const hs_tk_tables *t = &hs_tk_t;
	return (size_t)t->capcodes * sizeof(hs_tk_code) + ((size_t)t->code_mask + 1) * 4 +
	       (size_t)t->caplocs * sizeof(hs_tk_loc) + ((size_t)t->loc_mask + 1) * 4 +
	       (size_t)t->capstacks * sizeof(hs_tk_stack) + ((size_t)t->stack_mask + 1) * 4 +
	       (size_t)t->capframes * 4 + (size_t)t->capthreads * sizeof(hs_tk_thread) +
	       (t->live ? (t->live_mask + 1) * sizeof(hs_tk_entry) : 0) + t->capbig * 16;
}

uint32_t hs_tk_code_find(PyObject *code)
{
	hs_tk_tables *t = &hs_tk_t;
	for (uint32_t j = code_hash_of(code) & t->code_mask; t->code_slots[j]; j = (j + 1) & t->code_mask)
		if (t->codes[t->code_slots[j] - 1].code == code)
			return t->code_slots[j] - 1;
	return HS_TK_NONE;
}

uint32_t hs_tk_code_intern(PyObject *code)
{
	hs_tk_tables *t = &hs_tk_t;
	uint32_t j = code_hash_of(code) & t->code_mask;
	for (; t->code_slots[j]; j = (j + 1) & t->code_mask)
		if (t->codes[t->code_slots[j] - 1].code == code)
			return t->code_slots[j] - 1;
	if (grow((void **)&t->codes, &t->capcodes, sizeof(hs_tk_code), t->ncodes + 1) < 0)
		return HS_TK_NONE;
	uint32_t i = t->ncodes++;
	memset(&t->codes[i], 0, sizeof(t->codes[i]));
	t->codes[i].code = code;
	Py_INCREF(code); /* the GIL is held: hs_tk_capture reads frames only then */
	if ((t->ncodes + 1) * 2 > t->code_mask + 1) {
		if (rehash(&t->code_slots, &t->code_mask, t->ncodes, code_hash) < 0) {
			/* keep the old slots: still valid for the first ncodes-1 */
			t->ncodes--;
			Py_DECREF(code);
			return HS_TK_NONE;
		}
	} else {
		t->code_slots[j] = i + 1;
	}
	return i;
}

uint32_t hs_tk_loc_intern(uint32_t code, int line)
{
	hs_tk_tables *t = &hs_tk_t;
	uint32_t j = loc_hash_of(code, line) & t->loc_mask;
	for (; t->loc_slots[j]; j = (j + 1) & t->loc_mask) {
		hs_tk_loc *l = &t->locs[t->loc_slots[j] - 1];
		if (l->code == code && l->line == line)
			return t->loc_slots[j] - 1;
	}
	if (grow((void **)&t->locs, &t->caplocs, sizeof(hs_tk_loc), t->nlocs + 1) < 0)
		return HS_TK_NONE;
	uint32_t i = t->nlocs++;
	t->locs[i].code = code;
	t->locs[i].line = line;
	if ((t->nlocs + 1) * 2 > t->loc_mask + 1) {
		if (rehash(&t->loc_slots, &t->loc_mask, t->nlocs, loc_hash) < 0) {
			t->nlocs--;
			return HS_TK_NONE;
		}
	} else {
		t->loc_slots[j] = i + 1;
	}
	return i;
}

uint32_t hs_tk_stack_intern(int kind, uint32_t thread, const uint32_t *locs, unsigned n, int truncated)
{
	hs_tk_tables *t = &hs_tk_t;
	uint64_t h = hs_hash_u64(((uint64_t)thread << 16) ^ ((uint64_t)kind << 8) ^ (uint64_t)truncated ^
	                         ((uint64_t)n << 40));
	for (unsigned i = 0; i < n; i++)
		h = hs_hash_u64(h ^ locs[i]);
	uint32_t hash = (uint32_t)h;
	uint32_t j = hash & t->stack_mask;
	for (; t->stack_slots[j]; j = (j + 1) & t->stack_mask) {
		hs_tk_stack *s = &t->stacks[t->stack_slots[j] - 1];
		if (s->hash == hash && s->thread == thread && s->n == n && s->kind == kind &&
		    s->truncated == truncated && memcmp(t->frames + s->off, locs, n * sizeof(uint32_t)) == 0)
			return t->stack_slots[j] - 1;
	}
	if (grow((void **)&t->stacks, &t->capstacks, sizeof(hs_tk_stack), t->nstacks + 1) < 0 ||
	    grow((void **)&t->frames, &t->capframes, sizeof(uint32_t), t->nframes + n) < 0)
		return HS_TK_NONE;
	uint32_t i = t->nstacks++;
	hs_tk_stack *s = &t->stacks[i];
	s->hash = hash;
	s->thread = thread;
	s->off = t->nframes;
	s->n = (uint16_t)n;
	s->kind = (uint8_t)kind;
	s->truncated = (uint8_t)truncated;
	memcpy(t->frames + t->nframes, locs, n * sizeof(uint32_t));
	t->nframes += n;
	if ((t->nstacks + 1) * 2 > t->stack_mask + 1) {
		if (rehash(&t->stack_slots, &t->stack_mask, t->nstacks, stack_hash) < 0) {
			t->nstacks--;
			t->nframes -= n;
			return HS_TK_NONE;
		}
	} else {
		t->stack_slots[j] = i + 1;
	}
	return i;
}

static uint32_t thread_find(unsigned long ident, long tid)
{
	/* Newest first: an ident reused by a later thread (pthread_t values
	 * are) matches its own entry, which has the newer tid anyway. */
	for (uint32_t i = hs_tk_t.nthreads; i-- > 0;)
		if (hs_tk_t.threads[i].ident == ident && hs_tk_t.threads[i].tid == tid)
			return i;
	return HS_TK_NONE;
}

uint32_t hs_tk_thread_get(unsigned long ident, long tid)
{
	hs_tk_tables *t = &hs_tk_t;
	uint32_t i = thread_find(ident, tid);
	if (i != HS_TK_NONE)
		return i;
	if (grow((void **)&t->threads, &t->capthreads, sizeof(hs_tk_thread), t->nthreads + 1) < 0)
		return HS_TK_NONE;
	i = t->nthreads++;
	t->threads[i].ident = ident;
	t->threads[i].tid = tid;
	t->threads[i].name = NULL;
	return i;
}

void hs_tk_thread_name(unsigned long ident, long tid, const char *name, size_t len)
{
	uint32_t i = hs_tk_thread_get(ident, tid);
	if (i == HS_TK_NONE)
		return;
	char *copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, name, len);
	copy[len] = '\0';
	free(hs_tk_t.threads[i].name);
	hs_tk_t.threads[i].name = copy;
}

/* ---- live set ---- */

static inline size_t live_slot(uintptr_t p, size_t mask)
{
	return (size_t)(hs_hash_u64((uint64_t)p) & mask);
}

static void filter_add(uintptr_t p)
{
	size_t i = hs_tk_filter_slot(p);
	_Atomic uint8_t *c = &hs_tk_filter[i];
	uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
	if (v == 0)
		atomic_fetch_or_explicit(&hs_tk_filter_bits[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
	if (v < 255) /* a saturated counter stays: "maybe" for ever */
		atomic_store_explicit(c, (uint8_t)(v + 1), memory_order_release);
}

static void filter_del(uintptr_t p)
{
	size_t i = hs_tk_filter_slot(p);
	_Atomic uint8_t *c = &hs_tk_filter[i];
	uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
	if (v > 0 && v < 255) {
		atomic_store_explicit(c, (uint8_t)(v - 1), memory_order_release);
		if (v == 1)
			atomic_fetch_and_explicit(&hs_tk_filter_bits[i >> 6], ~((uint64_t)1 << (i & 63)),
			                          memory_order_release);
	}
}

static int live_grow(void)
{
	hs_tk_tables *t = &hs_tk_t;
	size_t nsize = (t->live_mask + 1) * 2;
	hs_tk_entry *n = calloc(nsize, sizeof(hs_tk_entry));
	if (!n)
		return -1;
	for (size_t i = 0; i <= t->live_mask; i++) {
		if (!t->live[i].ptr)
			continue;
		size_t j = live_slot(t->live[i].ptr, nsize - 1);
		while (n[j].ptr)
			j = (j + 1) & (nsize - 1);
		n[j] = t->live[i];
	}
	free(t->live);
	t->live = n;
	t->live_mask = nsize - 1;
	return 0;
}

static uint64_t big_take(uintptr_t p)
{
	hs_tk_tables *t = &hs_tk_t;
	for (size_t i = 0; i < t->nbig; i++) {
		if (t->big[i].ptr == p) {
			uint64_t s = t->big[i].size;
			t->big[i] = t->big[--t->nbig];
			return s;
		}
	}
	return UINT32_MAX;
}

static int big_put(uintptr_t p, uint64_t size)
{
	hs_tk_tables *t = &hs_tk_t;
	if (t->nbig == t->capbig) {
		size_t nc = t->capbig ? t->capbig * 2 : 16;
		void *n = realloc(t->big, nc * sizeof(*t->big));
		if (!n)
			return -1;
		t->big = n;
		t->capbig = nc;
	}
	t->big[t->nbig].ptr = p;
	t->big[t->nbig].size = size;
	t->nbig++;
	return 0;
}

/* Remove slot i, shifting later members of its probe run back. */
static void live_delete_slot(size_t i)
{
	hs_tk_tables *t = &hs_tk_t;
	size_t mask = t->live_mask;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!t->live[j].ptr)
			break;
		size_t home = live_slot(t->live[j].ptr, mask);
		/* can the entry at j move to i? yes unless home lies in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->live[i] = t->live[j];
			i = j;
		}
	}
	t->live[i].ptr = 0;
	t->nlive--;
}

int hs_tk_live_take(uintptr_t p, hs_tk_entry *out, uint64_t *size)
{
	hs_tk_tables *t = &hs_tk_t;
	if (!t->live)
		return 0;
	size_t i = live_slot(p, t->live_mask);
	for (; t->live[i].ptr; i = (i + 1) & t->live_mask) {
		if (t->live[i].ptr == p) {
			*out = t->live[i];
			*size = out->size == UINT32_MAX ? big_take(p) : out->size;
			live_delete_slot(i);
			filter_del(p);
			return 1;
		}
	}
	return 0;
}

int hs_tk_live_put(const hs_tk_entry *e, uint64_t size)
{
	hs_tk_tables *t = &hs_tk_t;
	if ((t->nlive + 1) * 10 > (t->live_mask + 1) * 7 && live_grow() < 0)
		return -1;
	hs_tk_entry n = *e;
	if (size >= UINT32_MAX) {
		if (big_put(e->ptr, size) < 0)
			return -1;
		n.size = UINT32_MAX;
	} else {
		n.size = (uint32_t)size;
	}
	size_t i = live_slot(e->ptr, t->live_mask);
	while (t->live[i].ptr)
		i = (i + 1) & t->live_mask;
	t->live[i] = n;
	t->nlive++;
	filter_add(e->ptr);
	return 0;
}

/*
 * Detached code entries: a code object met without the GIL (a thread in C
 * with the GIL released: torch's CPU allocator, numpy's loops) that was
 * never interned. No reference can be taken then (refcounts belong to the
 * GIL's holder), so its names are copied instead; the object is alive
 * while we look (the thread's own frame holds it), but its address may be
 * reused once it dies, so an entry matches by its contents (first line,
 * file and name), never by the address alone: a match names the same
 * function whatever object it was. Entries hold no reference and are
 * never in code_slots.
 */
uint32_t hs_tk_code_detached(const void *key, int first, const char *file, size_t flen, const char *name,
                             size_t nlen)
{
	hs_tk_tables *t = &hs_tk_t;
	if (!t->ncodes)
		ndlist = 0; /* the tables were released and made again */
	for (uint32_t k = ndlist; k-- > 0;) {
		uint32_t i = dlist[k];
		if (i >= t->ncodes)
			continue;
		const hs_tk_code *c = &t->codes[i];
		if (c->code || c->key != key || c->first != first)
			continue;
		if (strlen(c->file) == flen && !memcmp(c->file, file, flen) && strlen(c->name) == nlen &&
		    !memcmp(c->name, name, nlen))
			return i;
	}
	if (grow((void **)&t->codes, &t->capcodes, sizeof(hs_tk_code), t->ncodes + 1) < 0 ||
	    grow((void **)&dlist, &capdlist, sizeof(uint32_t), ndlist + 1) < 0)
		return HS_TK_NONE;
	char *f = malloc(flen + 1), *n = malloc(nlen + 1);
	if (!f || !n) {
		free(f);
		free(n);
		return HS_TK_NONE;
	}
	memcpy(f, file, flen);
	f[flen] = 0;
	memcpy(n, name, nlen);
	n[nlen] = 0;
	uint32_t i = t->ncodes++;
	hs_tk_code *c = &t->codes[i];
	c->code = NULL;
	c->key = key;
	c->file = f;
	c->name = n;
	c->first = first;
	dlist[ndlist++] = i;
	/* code_slots stay as they are: rehash (on a later intern) hashes a NULL
	 * code for this entry, which no lookup ever compares equal to */
	return i;
}
