/* analysis/names.c: name interning for grouping types across snapshots. */
#include <string.h>
#include "analysis/names_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

static int rehash(hs_names *n)
{
	uint32_t ns = n->nslots ? n->nslots * 2 : 256;
	uint32_t *slots = hs_reallocarray(NULL, ns, sizeof(uint32_t));
	if (!slots)
		return HS_ENOMEM;
	memset(slots, 0xff, (size_t)ns * sizeof(uint32_t));
	for (uint32_t id = 0; id < n->count; id++) {
		const char *s = hs_names__get(n, id);
		uint32_t h = (uint32_t)hs_hash_bytes(s, strlen(s)) & (ns - 1);
		while (slots[h] != UINT32_MAX)
			h = (h + 1) & (ns - 1);
		slots[h] = id;
	}
	hs_free(n->slots);
	n->slots = slots;
	n->nslots = ns;
	return 0;
}

int hs_names__intern(hs_names *n, uint32_t *out, const char *name, size_t len)
{
	if ((uint64_t)(n->count + 1) * 2 > n->nslots)
		HS_TRY(rehash(n));
	uint32_t h = (uint32_t)hs_hash_bytes(name, len) & (n->nslots - 1);
	for (;;) {
		uint32_t id = n->slots[h];
		if (id == UINT32_MAX)
			break;
		const char *s = hs_names__get(n, id);
		if (strlen(s) == len && !memcmp(s, name, len)) {
			*out = id;
			return 0;
		}
		h = (h + 1) & (n->nslots - 1);
	}
	if (n->count == n->cap) {
		uint32_t cap = n->cap ? n->cap * 2 : 64;
		size_t *p = hs_reallocarray(n->off, cap, sizeof(size_t));
		if (!p)
			return HS_ENOMEM;
		n->off = p;
		n->cap = cap;
	}
	n->off[n->count] = n->pool.len;
	HS_TRY(hs_buf_put(&n->pool, name, len));
	HS_TRY(hs_buf_put_u8(&n->pool, 0));
	n->slots[h] = n->count;
	*out = n->count++;
	return 0;
}

void hs_names__release(hs_names *n)
{
	hs_buf_release(&n->pool);
	hs_free(n->off);
	hs_free(n->slots);
	memset(n, 0, sizeof(*n));
}

size_t hs_analysis_module_of(const char *type_name, char *buf, size_t size)
{
	const char *dot = strrchr(type_name, '.');
	const char *m = dot ? type_name : "builtins";
	size_t len = dot ? (size_t)(dot - type_name) : strlen(m);
	if (size) {
		size_t c = len < size - 1 ? len : size - 1;
		memcpy(buf, m, c);
		buf[c] = '\0';
	}
	return len;
}

int hs_names__map_types(uint32_t **out, hs_names *n, const hs_snapshot *s, hs_group_by by)
{
	uint32_t nt = hs_snapshot_type_count(s);
	uint32_t *map = hs_reallocarray(NULL, nt ? nt : 1, sizeof(uint32_t));
	if (!map)
		return HS_ENOMEM;
	for (uint32_t t = 0; t < nt; t++) {
		const char *name = hs_snapshot_type_get(s, t)->name;
		size_t len = strlen(name);
		if (by == HS_GROUP_MODULE) {
			const char *dot = strrchr(name, '.');
			if (dot)
				len = (size_t)(dot - name);
			else
				name = "builtins", len = 8;
		}
		int rc = hs_names__intern(n, &map[t], name, len);
		if (rc < 0) {
			hs_free(map);
			return rc;
		}
	}
	*out = map;
	return 0;
}
