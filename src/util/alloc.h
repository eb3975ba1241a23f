/*
 * util/alloc.h: the counted, overflow-checked allocator every module uses.
 *
 * All heap allocations go through these so that out-of-memory paths can be
 * tested: hs_alloc_fail_after(n) makes the n-th following allocation fail.
 * On failure they return NULL and set the last error (HS_ENOMEM).
 */
#ifndef HS_UTIL_ALLOC_H
#define HS_UTIL_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include "heapsnap/common.h"

HS_EXTERN(void *) hs_malloc(size_t size);
HS_EXTERN(void *) hs_calloc(size_t count, size_t size);
/* realloc of count*size bytes with overflow check; ptr unchanged on failure */
HS_EXTERN(void *) hs_reallocarray(void *ptr, size_t count, size_t size);
HS_EXTERN(char *) hs_strdup(const char *s);
HS_EXTERN(char *) hs_strndup(const char *s, size_t n);
HS_EXTERN(void) hs_free(void *ptr);

/* Test hook: fail the n-th allocation from now (1 = next); 0 disables. */
HS_EXTERN(void) hs_alloc_fail_after(uint64_t n);
/* Bytes currently allocated through hs_* (approximate: tracked by size). */
HS_EXTERN(size_t) hs_alloc_current(void);
HS_EXTERN(size_t) hs_alloc_peak(void);
/* Start measuring a new peak from the current usage. */
HS_EXTERN(void) hs_alloc_peak_reset(void);

#endif
