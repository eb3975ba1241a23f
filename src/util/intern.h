/*
 * util/intern.h: a string interning table (open addressing over a pool of
 * the strings' bytes), used by the snapshot and recording writers to give
 * each distinct string one id.
 */
#ifndef HS_UTIL_INTERN_H
#define HS_UTIL_INTERN_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

typedef struct hs_intern_slot {
	uint64_t hash;
	uint32_t id;     /* UINT32_MAX: empty */
	uint32_t len;
	uint64_t offset; /* into pool */
} hs_intern_slot;

typedef struct hs_intern {
	hs_intern_slot *slots;
	size_t mask;     /* slots - 1, a power of two minus one */
	size_t count;
	hs_buf pool;     /* every interned string, for comparisons */
} hs_intern;

/* Set up an empty table of `slots` slots (a power of two). 0 or HS_ENOMEM. */
int hs_intern_init(hs_intern *t, size_t slots);
void hs_intern_release(hs_intern *t);

/*
 * The id of s[0..len): when already interned, *out is its id and the result
 * is 0; else it is added with id `new_id` and the result is 1. With new_id
 * UINT32_MAX nothing is added: HS_ELIMIT (no message) when absent, for a
 * caller whose ids are used up. HS_ENOMEM on failure. The caller owns the
 * numbering.
 */
int hs_intern_get(hs_intern *t, uint32_t *out, const char *s, size_t len, uint32_t new_id);

/* Bytes held (capacities), for memory accounting. */
size_t hs_intern_memory(const hs_intern *t);

#endif
