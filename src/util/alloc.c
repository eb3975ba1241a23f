/*
 * util/alloc.c: counted, overflow-checked allocation with a failure hook.
 *
 * The size of each block is kept in a 16-byte prefix so that current and
 * peak usage are exact; the counters are atomics because the writer
 * compresses on a second thread.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "util/alloc.h"
#include "heapsnap/errors.h"

#define PREFIX 16

static _Atomic uint64_t fail_countdown;
static _Atomic size_t current_bytes;
static _Atomic size_t peak_bytes;

void hs_alloc_fail_after(uint64_t n) { atomic_store(&fail_countdown, n); }
size_t hs_alloc_current(void) { return atomic_load(&current_bytes); }
size_t hs_alloc_peak(void) { return atomic_load(&peak_bytes); }
void hs_alloc_peak_reset(void) { atomic_store(&peak_bytes, atomic_load(&current_bytes)); }

static int should_fail(void)
{
	uint64_t n = atomic_load(&fail_countdown);
	while (n > 0) {
		if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
			return n == 1;
	}
	return 0;
}

static void account(size_t add, size_t sub)
{
	size_t now = atomic_fetch_add(&current_bytes, add) + add;
	atomic_fetch_sub(&current_bytes, sub);
	now -= sub;
	size_t peak = atomic_load(&peak_bytes);
	while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now))
		;
}

static void *fail(size_t size)
{
	hs_error_set(HS_ENOMEM, "out of memory (allocating %zu bytes)", size);
	return NULL;
}

void *hs_malloc(size_t size)
{
	if (should_fail() || size > SIZE_MAX - PREFIX)
		return fail(size);
	unsigned char *p = malloc(size + PREFIX);
	if (!p)
		return fail(size);
	memcpy(p, &size, sizeof(size));
	account(size, 0);
	return p + PREFIX;
}

void *hs_calloc(size_t count, size_t size)
{
	if (size && count > (SIZE_MAX - PREFIX) / size)
		return fail(SIZE_MAX);
	void *p = hs_malloc(count * size);
	if (p)
		memset(p, 0, count * size);
	return p;
}

void *hs_reallocarray(void *ptr, size_t count, size_t size)
{
	if (size && count > (SIZE_MAX - PREFIX) / size)
		return fail(SIZE_MAX);
	size_t total = count * size;
	if (!ptr)
		return hs_malloc(total);
	if (should_fail())
		return fail(total);
	unsigned char *base = (unsigned char *)ptr - PREFIX;
	size_t old;
	memcpy(&old, base, sizeof(old));
	unsigned char *p = realloc(base, total + PREFIX);
	if (!p)
		return fail(total);
	memcpy(p, &total, sizeof(total));
	account(total, old);
	return p + PREFIX;
}

char *hs_strndup(const char *s, size_t n)
{
	char *p = hs_malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *hs_strdup(const char *s) { return hs_strndup(s, strlen(s)); }

void hs_free(void *ptr)
{
	if (!ptr)
		return;
	unsigned char *base = (unsigned char *)ptr - PREFIX;
	size_t old;
	memcpy(&old, base, sizeof(old));
	atomic_fetch_sub(&current_bytes, old);
	free(base);
}
