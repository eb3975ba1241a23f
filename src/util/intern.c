/*
 * util/intern.c: string interning (util/intern.h).
 */
#include <string.h>
#include "heapsnap/errors.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/intern.h"

static hs_intern_slot *new_slots(size_t n)
{
	hs_intern_slot *s = hs_reallocarray(NULL, n, sizeof(*s));
	if (s)
		for (size_t i = 0; i < n; i++)
			s[i].id = UINT32_MAX;
	return s;
}

int hs_intern_init(hs_intern *t, size_t slots)
{
	memset(t, 0, sizeof(*t));
	t->slots = new_slots(slots);
	if (!t->slots)
		return HS_ENOMEM;
	t->mask = slots - 1;
	return 0;
}

void hs_intern_release(hs_intern *t)
{
	hs_free(t->slots);
	hs_buf_release(&t->pool);
	memset(t, 0, sizeof(*t));
}

static int grow(hs_intern *t)
{
	size_t cap = (t->mask + 1) * 2;
	hs_intern_slot *s = new_slots(cap);
	if (!s)
		return HS_ENOMEM;
	for (size_t i = 0; i <= t->mask; i++) {
		if (t->slots[i].id == UINT32_MAX)
			continue;
		size_t j = t->slots[i].hash & (cap - 1);
		while (s[j].id != UINT32_MAX)
			j = (j + 1) & (cap - 1);
		s[j] = t->slots[i];
	}
	hs_free(t->slots);
	t->slots = s;
	t->mask = cap - 1;
	return 0;
}

int hs_intern_get(hs_intern *t, uint32_t *out, const char *s, size_t len, uint32_t new_id)
{
	uint64_t h = hs_hash_bytes(s, len);
	size_t i = h & t->mask;
	while (t->slots[i].id != UINT32_MAX) {
		const hs_intern_slot *e = &t->slots[i];
		if (e->hash == h && e->len == len && !memcmp(t->pool.data + e->offset, s, len)) {
			*out = e->id;
			return 0;
		}
		i = (i + 1) & t->mask;
	}
	if (new_id == UINT32_MAX)
		return HS_ELIMIT;
	uint64_t offset = t->pool.len;
	int rc = hs_buf_put(&t->pool, s, len);
	if (rc < 0)
		return rc;
	t->slots[i].hash = h;
	t->slots[i].len = (uint32_t)len;
	t->slots[i].offset = offset;
	t->slots[i].id = new_id;
	*out = new_id;
	if (++t->count * 2 > t->mask && grow(t) < 0)
		return HS_ENOMEM;
	return 1;
}

size_t hs_intern_memory(const hs_intern *t)
{
	return t->pool.cap + (t->mask + 1) * sizeof(hs_intern_slot);
}
