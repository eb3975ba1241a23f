/*
 * graph/snapshot.c: a loaded snapshot: freeing it and reading it (strings,
 * types, roots, metadata, lookups by address). Loading is graph/load.c.
 */
#include <string.h>
#include <cjson/cJSON.h>
#include "graph/meta.h"
#include "graph/snapshot_internal.h"
#include "util/alloc.h"

void hs_snapshot_free(hs_snapshot *s)
{
	if (!s)
		return;
	hs_free(s->path);
	hs_free(s->address);
	hs_free(s->type);
	hs_free(s->size32);
	hs_free(s->refcount);
	hs_free(s->flags);
	hs_free(s->value);
	hs_free(s->edge_start);
	hs_buf_release(&s->values);
	hs_free(s->edge_target);
	hs_free(s->edge_kind);
	hs_free(s->edge_label);
	hs_free(s->big_node);
	hs_free(s->big_size);
	hs_free(s->getsizeof32);
	hs_free(s->gs_big_node);
	hs_free(s->gs_big_size);
	hs_free(s->rev_start);
	hs_free(s->rev_edge);
	hs_free(s->rev_source);
	hs_buf_release(&s->strings);
	hs_free(s->string_off);
	hs_free(s->types);
	hs_free(s->roots);
	hs_free(s->root_addr);
	hs_free(s->held_node);
	hs_free(s->held_excess);
	hs_free(s->meta_json);
	cJSON_Delete(s->meta);
	hs_snapshot__sites_release(s);
	hs_addrmap__release(&s->map);
	hs_free(s);
}

const hs_graph *hs_snapshot_graph(const hs_snapshot *s) { return &s->g; }
const hs_snapshot_stats *hs_snapshot_stats_get(const hs_snapshot *s) { return &s->stats; }
const char *hs_snapshot_path(const hs_snapshot *s) { return s->path; }
uint32_t hs_snapshot_string_count(const hs_snapshot *s) { return s->string_count; }
uint32_t hs_snapshot_type_count(const hs_snapshot *s) { return s->type_count; }
uint32_t hs_snapshot_root_count(const hs_snapshot *s) { return s->root_count + s->held_count; }

const char *hs_snapshot_string(const hs_snapshot *s, uint32_t id, size_t *len)
{
	if (id >= s->string_count) {
		if (len)
			*len = 0;
		return "";
	}
	if (len)
		*len = (size_t)(s->string_off[id + 1] - s->string_off[id] - 1);
	return (const char *)s->strings.data + s->string_off[id];
}

const hs_snapshot_type *hs_snapshot_type_get(const hs_snapshot *s, uint32_t id)
{
	return id < s->type_count ? &s->types[id] : NULL;
}

const char *hs_snapshot_node_type_name(const hs_snapshot *s, uint32_t node)
{
	if (node >= s->g.node_count)
		return "?";
	return s->types[s->type[node]].name;
}

int hs_snapshot_root_get(const hs_snapshot *s, uint32_t i, hs_snapshot_root *out)
{
	if (i < s->root_count) {
		*out = s->roots[i];
		return 0;
	}
	uint32_t h = i - s->root_count;
	if (h >= s->held_count)
		return hs_error_set(HS_ENOTFOUND, "no root %u (the snapshot has %u)", i,
		                    s->root_count + s->held_count);
	hs_snapshot_root r = { HS_ROOT_HELD, s->held_node[h], HS_NO_STRING, HS_NO_STRING,
	                       s->held_excess[h] };
	*out = r;
	return 0;
}

const char *hs_root_kind_name(unsigned kind)
{
	switch (kind) {
	case HS_ROOT_MODULE: return "module";
	case HS_ROOT_FRAME: return "frame";
	case HS_ROOT_LOCAL: return "local";
	case HS_ROOT_HELD: return "held";
	case HS_ROOT_INTERPRETER: return "interpreter";
	default: return "unknown";
	}
}

uint32_t hs_snapshot_find(const hs_snapshot *s, uint64_t address)
{
	return hs_addrmap__find(&s->map, s->address, address);
}

const char *hs_snapshot_meta_json(const hs_snapshot *s, size_t *len)
{
	if (len)
		*len = s->meta_len;
	return s->meta_json;
}

const void *hs_snapshot_meta(const hs_snapshot *s) { return s->meta; }

uint64_t hs_graph__big_size(const hs_graph *g, uint32_t node)
{
	uint32_t lo = 0, hi = g->big_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->big_node[mid] < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->big_count && g->big_node[lo] == node ? g->big_size[lo] : 0;
}

size_t hs_snapshot_memory(const hs_snapshot *s)
{
	size_t n = s->node_cap, e = (size_t)s->edge_cap;
	size_t b = n * (8 + 4 + 4 + 4 + 1 + 4 + 4) + 4 + s->values.cap;
	b += e * (4 + 1 + 4);
	b += (size_t)s->map.size * 4;
	b += s->strings.cap + (size_t)s->string_cap * 8;
	b += (size_t)s->type_cap * sizeof(hs_snapshot_type);
	b += (size_t)s->root_cap * sizeof(hs_snapshot_root) + (size_t)s->held_count * 8;
	b += (size_t)s->big_cap * 12 + s->meta_len;
	if (s->rev_start)
		b += (n + 1) * 4 + (size_t)s->g.edge_count * 8;
	/* allocation sites: locations, stacks (offsets, self site, frames),
	 * per node its block, per block stack + size + time */
	b += (size_t)s->site_loc_cap * sizeof(hs_site_loc) + (size_t)s->stack_cap * 8 +
	     (size_t)s->stack_frame_cap * 4 + (s->node_alloc ? n * 4 : 0) +
	     (size_t)s->alloc_cap * 20;
	return b;
}

const cJSON *hs_meta_at(const cJSON *o, const char *path)
{
	char key[64];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
		path += n + (dot ? 1 : 0);
	}
	return o;
}
