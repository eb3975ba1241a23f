/*
 * hook/visited.c: the walker's visited set, a paged bitmap keyed by address
 * (see hook_internal.h for why it beats a hash set of pointers: one bit per
 * object, and consecutive lookups hit the same cached page).
 */
#include "hook_internal.h"

#include <string.h>

int hs_vset_init(hs_vset *s)
{
	memset(s, 0, sizeof(*s));
	s->mask = 1023;
	s->slots = hs_calloc(s->mask + 1, sizeof(*s->slots));
	s->last_key = UINTPTR_MAX;
	return s->slots ? 0 : HS_ENOMEM;
}

void hs_vset_release(hs_vset *s)
{
	if (s->slots) {
		for (size_t i = 0; i <= s->mask; i++)
			hs_free(s->slots[i].bits);
		hs_free(s->slots);
	}
	memset(s, 0, sizeof(*s));
	s->last_key = UINTPTR_MAX;
}

static inline size_t slot_of(uintptr_t key, size_t mask)
{
	uint64_t x = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
	return (size_t)(x >> 20) & mask;
}

static int grow(hs_vset *s)
{
	size_t cap = (s->mask + 1) * 2;
	hs_vset_slot *slots = hs_calloc(cap, sizeof(*slots));
	if (!slots)
		return HS_ENOMEM;
	for (size_t i = 0; i <= s->mask; i++) {
		if (!s->slots[i].key)
			continue;
		size_t j = slot_of(s->slots[i].key, cap - 1);
		while (slots[j].key)
			j = (j + 1) & (cap - 1);
		slots[j] = s->slots[i];
	}
	hs_free(s->slots);
	s->slots = slots;
	s->mask = cap - 1;
	return 0;
}

uint64_t *hs_vset__page(hs_vset *s, uintptr_t page)
{
	uintptr_t key = page + 1;
	size_t i = slot_of(key, s->mask);
	while (s->slots[i].key) {
		if (s->slots[i].key == key)
			return s->slots[i].bits;
		i = (i + 1) & s->mask;
	}
	if ((s->pages + 1) * 2 > s->mask + 1) {
		if (grow(s) < 0)
			return NULL;
		i = slot_of(key, s->mask);
		while (s->slots[i].key)
			i = (i + 1) & s->mask;
	}
	uint64_t *bits = hs_calloc(HS_VSET_PAGE_WORDS, sizeof(uint64_t));
	if (!bits)
		return NULL;
	s->slots[i].key = key;
	s->slots[i].bits = bits;
	s->pages++;
	return bits;
}
