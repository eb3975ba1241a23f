/*
 * graph/load.c: load a snapshot into flat arrays (hs_snapshot_open).
 *
 * The format reader reports records through a visitor; this file appends
 * them to struct-of-arrays storage presized from the totals, then
 * finish() resolves addresses to node indexes.
 *
 * The CSR layout: edges arrive node by node, so edge_start[i] is simply the
 * number of edges seen before node i. Targets (and key labels) arrive as
 * 64-bit addresses and can only be resolved once every node is known, so
 * while loading targets sit in a u64 array and key/attr label addresses in
 * a side u64 array (other labels are u32 from the start). Resolution maps
 * both arrays to node indexes in place (batched, hs_addrmap__resolve), then
 * walks the edges once, drops the dangling ones and writes the 32-bit node
 * index of each kept edge into the same buffer at a lower or equal position
 * (byte 4*w from byte 8*e, w <= e), then shrinks the buffer. The load peak
 * is 13 bytes per edge (+8 per key edge) and the resident cost 9.
 */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "graph/snapshot_internal.h"
#include "util/alloc.h"

#define MAX_INDEX (UINT32_MAX - 1u) /* counts must fit u32 indexes, HS_NO_NODE excluded */

/* ------------------------------------------------------------------ */
/* growth helpers                                                      */

static uint64_t presize_bound(const hs_snapshot *s, uint64_t per_byte, uint64_t floor)
{
	/* Totals come from the file: trust them to size arrays only up to a
	 * bound derived from the file size, then grow as records arrive. */
	return floor + s->input_bytes * per_byte;
}

static int grow_nodes(hs_snapshot *s, uint64_t want)
{
	if (want <= s->node_cap)
		return 0;
	uint64_t cap = s->node_cap ? (uint64_t)s->node_cap * 2 : 1024;
	if (cap < want)
		cap = want;
	if (cap > MAX_INDEX)
		cap = MAX_INDEX;
	size_t c = (size_t)cap;
	void *p;
#define GROW(field, elem) \
	if (!(p = hs_reallocarray(s->field, c, elem))) return HS_ENOMEM; \
	s->field = p;
	GROW(address, sizeof(uint64_t));
	GROW(type, sizeof(uint32_t));
	GROW(size32, sizeof(uint32_t));
	GROW(refcount, sizeof(uint32_t));
	GROW(flags, 1);
	GROW(value, sizeof(uint32_t));
	if (!(p = hs_reallocarray(s->edge_start, c + 1, sizeof(uint32_t))))
		return HS_ENOMEM;
	s->edge_start = p;
	s->node_cap = (uint32_t)cap;
	return 0;
}

static int grow_edges(hs_snapshot *s, uint64_t want)
{
	if (want <= s->edge_cap)
		return 0;
	uint64_t cap = s->edge_cap ? s->edge_cap * 2 : 4096;
	if (cap < want)
		cap = want;
	if (cap > MAX_INDEX)
		cap = MAX_INDEX;
	size_t c = (size_t)cap;
	void *p;
	GROW(edge_target, sizeof(uint32_t));
	GROW(edge_kind, 1);
	GROW(edge_label, sizeof(uint32_t));
#undef GROW
	s->edge_cap = cap;
	return 0;
}


#define FAIL(code, ...) do { \
	char msg_[512]; \
	snprintf(msg_, sizeof(msg_), __VA_ARGS__); \
	return hs_error_set((code), "cannot read '%s': %s", s->path, msg_); \
} while (0)

/* ------------------------------------------------------------------ */
/* visitor                                                             */

/* A native buffer (format 1.1): never a held-from-C root, whatever its
 * refcount field says. */
static inline int is_native(const hs_snapshot *s, uint32_t i)
{
	uint32_t t = s->type[i];
	return t < s->type_count && (s->types[t].flags & HS_TYPE_NATIVE);
}

static int on_totals(const hs_totals *t, uint32_t python_version, void *payload)
{
	hs_snapshot *s = payload;
	if (t->nodes > MAX_INDEX || (s->max_nodes && t->nodes > s->max_nodes))
		FAIL(HS_ELIMIT, "the file claims %llu objects, more than this reader handles",
		     (unsigned long long)t->nodes);
	if (t->edges > MAX_INDEX)
		FAIL(HS_ELIMIT, "the file claims %llu references, more than this reader handles",
		     (unsigned long long)t->edges);
	if (t->strings > MAX_INDEX || t->types > MAX_INDEX || t->roots > MAX_INDEX)
		FAIL(HS_ELIMIT, "the file claims absurd table sizes (%llu strings, %llu types, %llu roots)",
		     (unsigned long long)t->strings, (unsigned long long)t->types,
		     (unsigned long long)t->roots);
	s->have_totals = 1;
	s->totals = *t;
	s->stats.python_version = python_version;
	uint64_t n = t->nodes, e = t->edges;
	uint64_t nb = presize_bound(s, 8, 1u << 20), eb = presize_bound(s, 16, 1u << 21);
	HS_TRY(grow_nodes(s, n < nb ? n : nb));
	HS_TRY(grow_edges(s, e < eb ? e : eb));
	return 0;
}

static int on_meta(const char *json, size_t len, void *payload)
{
	hs_snapshot *s = payload;
	if (s->meta_json)
		FAIL(HS_EFORMAT, "more than one metadata section");
	s->meta_json = hs_strndup(json, len);
	if (!s->meta_json)
		return HS_ENOMEM;
	s->meta_len = len;
	cJSON *m = cJSON_ParseWithLength(json, len);
	if (!m || !cJSON_IsObject(m)) {
		cJSON_Delete(m);
		FAIL(HS_EFORMAT, "the metadata section is not a JSON object");
	}
	s->meta = m;
	return 0;
}

/* META_END: figures known after the walk, merged over META (objects one
 * level deep, other keys replaced), then the text regenerated. */
static int on_meta_end(const char *json, size_t len, void *payload)
{
	hs_snapshot *s = payload;
	if (!s->meta)
		FAIL(HS_EFORMAT, "closing metadata without metadata");
	cJSON *end = cJSON_ParseWithLength(json, len);
	if (!end || !cJSON_IsObject(end)) {
		cJSON_Delete(end);
		FAIL(HS_EFORMAT, "the closing metadata section is not a JSON object");
	}
	cJSON *item = end->child;
	while (item) {
		cJSON *next = item->next;
		cJSON *mine = cJSON_GetObjectItemCaseSensitive(s->meta, item->string);
		cJSON_DetachItemViaPointer(end, item);
		if (mine && cJSON_IsObject(mine) && cJSON_IsObject(item)) {
			cJSON *sub = item->child;
			while (sub) {
				cJSON *subnext = sub->next;
				cJSON_DetachItemViaPointer(item, sub);
				/* cJSON's replace frees the replacement's own name
				 * before copying the one passed: never pass sub->string */
				cJSON_DeleteItemFromObjectCaseSensitive(mine, sub->string);
				cJSON_AddItemToObject(mine, sub->string, sub);
				sub = subnext;
			}
			cJSON_Delete(item);
		} else {
			cJSON_DeleteItemFromObjectCaseSensitive(s->meta, item->string);
			cJSON_AddItemToObject(s->meta, item->string, item);
		}
		item = next;
	}
	cJSON_Delete(end);
	char *text = cJSON_PrintUnformatted(s->meta);
	if (!text)
		return hs_error_set(HS_ENOMEM, "out of memory (metadata)");
	char *copy = hs_strdup(text);
	cJSON_free(text);
	if (!copy)
		return HS_ENOMEM;
	hs_free(s->meta_json);
	s->meta_json = copy;
	s->meta_len = strlen(copy);
	return 0;
}

static int on_string(uint32_t id, const char *str, size_t len, void *payload)
{
	hs_snapshot *s = payload;
	if (id != s->string_count)
		FAIL(HS_EFORMAT, "string id %u out of sequence (expected %u)", id, s->string_count);
	if (s->string_count >= MAX_INDEX)
		FAIL(HS_ELIMIT, "too many strings");
	if (s->string_count + 1 >= s->string_cap) {
		uint32_t cap = s->string_cap ? s->string_cap * 2 : 1024;
		if (s->have_totals && s->totals.strings + 1 > cap &&
		    s->totals.strings < presize_bound(s, 1, 1u << 16))
			cap = (uint32_t)s->totals.strings + 1;
		uint64_t *p = hs_reallocarray(s->string_off, (size_t)cap + 1, sizeof(uint64_t));
		if (!p)
			return HS_ENOMEM;
		s->string_off = p;
		s->string_cap = cap;
	}
	s->string_off[s->string_count] = s->strings.len;
	HS_TRY(hs_buf_put(&s->strings, str, len));
	HS_TRY(hs_buf_put_u8(&s->strings, 0));
	s->string_count++;
	s->string_off[s->string_count] = s->strings.len;
	return 0;
}

static int check_string_ref(hs_snapshot *s, uint32_t id, const char *what)
{
	if (id != HS_NO_STRING && id >= s->string_count)
		FAIL(HS_EFORMAT, "%s names string %u, but only %u strings are defined before it",
		     what, id, s->string_count);
	return 0;
}

static int on_type(uint32_t id, const hs_type_record *t, void *payload)
{
	hs_snapshot *s = payload;
	if (id != s->type_count)
		FAIL(HS_EFORMAT, "type id %u out of sequence (expected %u)", id, s->type_count);
	if (s->type_count >= MAX_INDEX)
		FAIL(HS_ELIMIT, "too many types");
	HS_TRY(check_string_ref(s, t->name, "a type"));
	if (s->type_count == s->type_cap) {
		uint32_t cap = s->type_cap ? s->type_cap * 2 : 256;
		hs_snapshot_type *p = hs_reallocarray(s->types, cap, sizeof(*p));
		if (!p)
			return HS_ENOMEM;
		s->types = p;
		s->type_cap = cap;
	}
	hs_snapshot_type *ty = &s->types[s->type_count++];
	ty->address = t->address;
	/* the string pool may still move: keep the id, resolve in finish */
	ty->name = (const char *)(uintptr_t)t->name;
	ty->flags = t->flags;
	ty->basic_size = t->basic_size;
	return 0;
}

static int on_node(const hs_node_record *n, void *payload)
{
	hs_snapshot *s = payload;
	uint32_t i = s->g.node_count;
	if (i >= MAX_INDEX || (s->max_nodes && i >= s->max_nodes))
		FAIL(HS_ELIMIT, "too many objects");
	if (n->type >= s->type_count)
		FAIL(HS_EFORMAT, "object %u (0x%llx) has type id %u, but only %u types are defined",
		     i, (unsigned long long)n->address, n->type, s->type_count);
	if (n->flags & ~HS_NODE_FLAGS_KNOWN)
		FAIL(HS_EFORMAT, "object %u (0x%llx) has unknown flags 0x%x",
		     i, (unsigned long long)n->address, n->flags);
	if (i >= s->pass1_nodes || s->address[i] != n->address)
		FAIL(HS_EFORMAT, "the file changed while it was being read (object %u)", i);
	s->type[i] = n->type;
	s->flags[i] = (uint8_t)n->flags;
	s->refcount[i] = n->refcount > UINT32_MAX ? UINT32_MAX : (uint32_t)n->refcount;
	if (n->size >= HS_SIZE_BIG) {
		if (s->g.big_count == s->big_cap) {
			uint32_t cap = s->big_cap ? s->big_cap * 2 : 16;
			uint32_t *bn = hs_reallocarray(s->big_node, cap, sizeof(uint32_t));
			if (!bn)
				return HS_ENOMEM;
			s->big_node = bn;
			uint64_t *bs = hs_reallocarray(s->big_size, cap, sizeof(uint64_t));
			if (!bs)
				return HS_ENOMEM;
			s->big_size = bs;
			s->big_cap = cap;
		}
		s->big_node[s->g.big_count] = i;
		s->big_size[s->g.big_count++] = n->size;
		s->size32[i] = HS_SIZE_BIG;
	} else {
		s->size32[i] = (uint32_t)n->size;
	}
	uint64_t tb = s->stats.total_bytes + n->size;
	s->stats.total_bytes = tb < n->size ? UINT64_MAX : tb;
	if (n->flags & HS_NODE_HAS_VALUE) {
		if (n->value_len > 256 || (n->value_len && !n->value))
			FAIL(HS_EFORMAT, "object %u (0x%llx) has a value of %u bytes (at most 256)",
			     i, (unsigned long long)n->address, n->value_len);
		if (s->values.len + 2 + n->value_len >= HS_NO_VALUE)
			FAIL(HS_ELIMIT, "more than 4 GiB of object values");
		s->value[i] = (uint32_t)s->values.len;
		uint8_t len[2] = { (uint8_t)n->value_len, (uint8_t)(n->value_len >> 8) };
		HS_TRY(hs_buf_put(&s->values, len, 2));
		HS_TRY(hs_buf_put(&s->values, n->value, n->value_len));
	} else {
		s->value[i] = HS_NO_VALUE;
	}
	s->edge_start[i] = (uint32_t)s->edge_len;
	/* Edges follow their node; a node's list may continue in the next
	 * section (continuation records), so edge_count is not a promise. */
	s->g.node_count = i + 1;
	return 0;
}

/* Resolve the pending addresses of a batch together (prefetched) and store
 * the node indexes where they belong: an edge target or a key label. */
static void flush_pending(hs_snapshot *s)
{
	hs_addrmap__resolve(&s->map, s->address, s->pend_addr, s->pend_len);
	for (uint32_t j = 0; j < s->pend_len; j++) {
		uint64_t where = s->pend_where[j];
		uint32_t node = (uint32_t)s->pend_addr[j];
		if (where & 1)
			s->edge_label[where >> 1] = node;
		else
			s->edge_target[where >> 1] = node;
	}
	s->pend_len = 0;
}

static inline void pend(hs_snapshot *s, uint64_t address, uint64_t where)
{
	s->pend_addr[s->pend_len] = address;
	s->pend_where[s->pend_len] = where;
	if (++s->pend_len == HS_PEND_BATCH)
		flush_pending(s);
}

static int on_edge(const hs_edge_record *e, void *payload)
{
	hs_snapshot *s = payload;
	if (s->g.node_count == 0)
		FAIL(HS_EFORMAT, "a reference that belongs to no object");
	uint32_t src = s->g.node_count - 1;
	if (s->edge_len >= MAX_INDEX)
		FAIL(HS_ELIMIT, "too many references");
	if (e->kind > HS_EDGE_WEAK)
		FAIL(HS_EFORMAT, "object %u: reference with unknown kind %u", src, e->kind);
	if (e->label_kind >= HS_LABEL_KIND_COUNT)
		FAIL(HS_EFORMAT, "object %u: reference with unknown label kind %u", src, e->label_kind);
	uint32_t label = 0;
	switch (e->label_kind) {
	case HS_LABEL_INDEX:
		if (e->label > UINT32_MAX)
			FAIL(HS_ELIMIT, "object %u: index label %llu beyond 2^32", src,
			     (unsigned long long)e->label);
		label = (uint32_t)e->label;
		break;
	case HS_LABEL_NAME: case HS_LABEL_ATTR_NAME: case HS_LABEL_LOCAL:
		if (e->label > UINT32_MAX)
			FAIL(HS_EFORMAT, "object %u: label string id out of range", src);
		HS_TRY(check_string_ref(s, (uint32_t)e->label, "a reference label"));
		label = (uint32_t)e->label;
		break;
	default:
		break;
	}
	HS_TRY(grow_edges(s, s->edge_len + 1));
	uint64_t k = s->edge_len++;
	s->edge_label[k] = label;
	s->edge_kind[k] = (uint8_t)(e->kind | (e->label_kind << 2));
	pend(s, e->target, k << 1);
	if (e->label_kind == HS_LABEL_KEY || e->label_kind == HS_LABEL_ATTR)
		pend(s, e->label, k << 1 | 1); /* the key object, by address */
	return 0;
}

static int on_root(const hs_root_record *r, void *payload)
{
	hs_snapshot *s = payload;
	if (r->kind < HS_ROOT_MODULE || r->kind > HS_ROOT_KIND_MAX || r->kind == HS_ROOT_HELD)
		FAIL(HS_EFORMAT, "root %u has %s kind %u", s->root_count,
		     r->kind == HS_ROOT_HELD ? "the derived-only" : "unknown", r->kind);
	HS_TRY(check_string_ref(s, r->name, "a root"));
	HS_TRY(check_string_ref(s, r->detail, "a root"));
	if (s->root_count >= MAX_INDEX)
		FAIL(HS_ELIMIT, "too many roots");
	if (s->root_count == s->root_cap) {
		uint32_t cap = s->root_cap ? s->root_cap * 2 : 256;
		hs_snapshot_root *p = hs_reallocarray(s->roots, cap, sizeof(*p));
		if (!p)
			return HS_ENOMEM;
		s->roots = p;
		uint64_t *a = hs_reallocarray(s->root_addr, cap, sizeof(*a));
		if (!a)
			return HS_ENOMEM;
		s->root_addr = a;
		s->root_cap = cap;
	}
	hs_snapshot_root *root = &s->roots[s->root_count];
	root->kind = r->kind;
	root->node = HS_NO_NODE;
	root->name = r->name;
	root->detail = r->detail;
	root->excess = 0;
	s->root_addr[s->root_count++] = r->target;
	return 0;
}

/* ------------------------------------------------------------------ */
/* finish                                                              */

/* Drop edges whose target is no node (counted), keeping CSR order. */
static int resolve_edges(hs_snapshot *s)
{
	uint32_t n = s->g.node_count;
	flush_pending(s);
	uint64_t w = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t from = s->edge_start[i];
		uint64_t to = i + 1 < n ? s->edge_start[i + 1] : s->edge_len;
		s->edge_start[i] = (uint32_t)w;
		for (uint64_t e = from; e < to; e++) {
			uint8_t kind = s->edge_kind[e];
			unsigned lk = HS_EDGE_LABEL(kind);
			uint32_t t = s->edge_target[e];
			if (t == HS_NO_NODE) {
				s->stats.dangling_edges++;
				continue;
			}
			if ((lk == HS_LABEL_KEY || lk == HS_LABEL_ATTR) && s->edge_label[e] == HS_NO_NODE)
				s->stats.dangling_keys++;
			s->edge_target[w] = t;
			s->edge_label[w] = s->edge_label[e];
			s->edge_kind[w] = kind;
			w++;
		}
	}
	s->edge_start[n] = (uint32_t)w;
	s->g.edge_count = (uint32_t)w;
	if (w < s->edge_len) {
		size_t keep = w ? (size_t)w : 1;
		void *p;
		if ((p = hs_reallocarray(s->edge_target, keep, sizeof(uint32_t))))
			s->edge_target = p;
		if ((p = hs_reallocarray(s->edge_label, keep, sizeof(uint32_t))))
			s->edge_label = p;
		if ((p = hs_reallocarray(s->edge_kind, keep, 1)))
			s->edge_kind = p;
		hs_error_clear(); /* a failed shrink is harmless */
		s->edge_cap = keep;
	}
	return 0;
}

static int resolve_roots(hs_snapshot *s)
{
	uint32_t w = 0;
	for (uint32_t i = 0; i < s->root_count; i++) {
		uint32_t node = hs_addrmap__find(&s->map, s->address, s->root_addr[i]);
		if (node == HS_NO_NODE) {
			s->stats.dangling_roots++;
			continue;
		}
		s->roots[w] = s->roots[i];
		s->roots[w].node = node;
		s->stats.roots_by_kind[s->roots[w].kind]++;
		w++;
	}
	s->root_count = w;
	hs_free(s->root_addr);
	s->root_addr = NULL;

	/* Held from C: the refcount counts every reference; the strong edges
	 * into a node are the ones the graph explains. The rest is held by C
	 * code (extension statics, the interpreter, the stack of a running
	 * C function). Immortal objects (3.12+) carry no meaningful refcount
	 * and are never freed: they are roots too, with excess 0 ("immortal"),
	 * so that they are never garbage nor retained by what points at them. */
	uint32_t n = s->g.node_count;
	/* The in-degree array would be the load's peak on top of everything
	 * else: the address map (no longer needed until the load is over) makes
	 * room for it and is rebuilt afterwards (~30 ms per million objects). */
	hs_addrmap__release(&s->map);
	uint32_t *in = hs_calloc(n ? n : 1, sizeof(uint32_t));
	if (!in)
		return HS_ENOMEM;
	const uint32_t *tg = s->edge_target;
	for (uint32_t e = 0; e < s->g.edge_count; e++)
		if (HS_EDGE_KIND(s->edge_kind[e]) == HS_EDGE_STRONG && in[tg[e]] != UINT32_MAX)
			in[tg[e]]++;
	/* two passes (count, fill) so the arrays are sized exactly */
	uint32_t held = 0;
	for (uint32_t i = 0; i < n; i++)
		held += !is_native(s, i) && ((s->flags[i] & HS_NODE_IMMORTAL) || s->refcount[i] > in[i]);
	if ((uint64_t)s->root_count + held > MAX_INDEX) {
		hs_free(in);
		FAIL(HS_ELIMIT, "too many roots");
	}
	s->held_node = hs_reallocarray(NULL, held ? held : 1, sizeof(uint32_t));
	s->held_excess = hs_reallocarray(NULL, held ? held : 1, sizeof(uint32_t));
	if (!s->held_node || !s->held_excess) {
		hs_free(in);
		return HS_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		int immortal = (s->flags[i] & HS_NODE_IMMORTAL) != 0;
		if ((!immortal && s->refcount[i] <= in[i]) || is_native(s, i))
			continue;
		s->held_node[s->held_count] = i;
		s->held_excess[s->held_count++] = immortal ? 0 : s->refcount[i] - in[i];
	}
	hs_free(in);
	s->stats.held_roots = held;
	s->stats.roots_by_kind[HS_ROOT_HELD] = held;
	uint32_t dup;
	return hs_addrmap__build(&s->map, s->address, n, &dup);
}

static void sort_gs_big(hs_snapshot *s);
static void size_stats(hs_snapshot *s);

static int finish(hs_snapshot *s)
{
	if (!s->meta)
		FAIL(HS_EFORMAT, "no metadata section");
	s->stats.nodes = s->g.node_count;
	s->stats.edges = s->edge_len;
	s->stats.strings = s->string_count;
	s->stats.types = s->type_count;
	s->stats.roots = s->root_count;
	if (s->have_totals &&
	    (s->totals.nodes != s->stats.nodes || s->totals.edges != s->stats.edges ||
	     s->totals.strings != s->stats.strings || s->totals.types != s->stats.types ||
	     s->totals.roots != s->stats.roots))
		FAIL(HS_EFORMAT, "the index totals (%llu objects, %llu references) do not match "
		     "the records (%llu objects, %llu references)",
		     (unsigned long long)s->totals.nodes, (unsigned long long)s->totals.edges,
		     (unsigned long long)s->stats.nodes, (unsigned long long)s->stats.edges);
	if (!s->node_cap)
		HS_TRY(grow_nodes(s, 1));
	s->edge_start[s->g.node_count] = (uint32_t)s->edge_len;

	if (s->g.node_count != s->pass1_nodes)
		FAIL(HS_EFORMAT, "the file changed while it was being read (%u objects, then %u)",
		     s->pass1_nodes, s->g.node_count);
	HS_TRY(resolve_edges(s));
	HS_TRY(resolve_roots(s));

	for (uint32_t t = 0; t < s->type_count; t++) {
		uint32_t id = (uint32_t)(uintptr_t)s->types[t].name;
		s->types[t].name = id == HS_NO_STRING ? "?"
			: (const char *)s->strings.data + s->string_off[id];
	}

	hs_graph *g = &s->g;
	g->address = s->address;
	g->type = s->type;
	g->size32 = s->size32;
	g->refcount = s->refcount;
	g->flags = s->flags;
	g->value = s->value;
	g->value_pool = s->values.data;
	g->edge_start = s->edge_start;
	g->edge_target = s->edge_target;
	g->edge_kind = s->edge_kind;
	g->edge_label = s->edge_label;
	g->big_node = s->big_node;
	g->big_size = s->big_size;
	sort_gs_big(s);
	size_stats(s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* public                                                              */

/* Pass 1: node addresses only (the reader skips the edge streams). */
static int on_node_address(const hs_node_record *n, void *payload)
{
	hs_snapshot *s = payload;
	uint32_t i = s->g.node_count;
	if (i >= MAX_INDEX || (s->max_nodes && i >= s->max_nodes))
		FAIL(HS_ELIMIT, "too many objects");
	HS_TRY(grow_nodes(s, (uint64_t)i + 1));
	s->address[i] = n->address;
	if ((n->flags & HS_NODE_HAS_VALUE) && n->value_len <= 256)
		s->pass1_value_bytes += 2 + (uint64_t)n->value_len;
	s->g.node_count = i + 1;
	return 0;
}

static const hs_read_visitor address_visitor = {
	HS_READ_VISITOR_VERSION, on_totals, NULL, NULL, NULL, on_node_address, NULL, NULL, NULL,
};

static int build_map(hs_snapshot *s)
{
	uint32_t dup;
	s->pass1_nodes = s->g.node_count;
	HS_TRY(hs_addrmap__build(&s->map, s->address, s->g.node_count, &dup));
	if (dup != HS_NO_NODE)
		FAIL(HS_EFORMAT, "two objects at address 0x%llx (object %u and an earlier one)",
		     (unsigned long long)s->address[dup], dup);
	s->g.node_count = 0;
	s->pass = 2;
	/* exact size: a doubling buffer would hold up to twice the bytes */
	if (s->pass1_value_bytes > s->values.cap && s->pass1_value_bytes < HS_NO_VALUE) {
		uint8_t *p = hs_reallocarray(s->values.data, (size_t)s->pass1_value_bytes, 1);
		if (!p)
			return HS_ENOMEM;
		s->values.data = p;
		s->values.cap = (size_t)s->pass1_value_bytes;
	}
	return 0;
}

/* A size measured after the walk replaces the estimate written with the node. */
static int on_size(uint64_t address, uint64_t size, void *payload)
{
	hs_snapshot *s = payload;
	uint32_t i = hs_addrmap__find(&s->map, s->address, address);
	if (i == HS_NO_NODE || i >= s->g.node_count)
		return 0; /* names no object (read so far): ignored, as the spec says */
	uint64_t old = s->size32[i];
	if (size >= HS_SIZE_BIG || s->size32[i] == HS_SIZE_BIG)
		return 0; /* 4 GiB and more from a Python __sizeof__: keep the estimate */
	s->size32[i] = (uint32_t)size;
	s->flags[i] &= (uint8_t)~HS_NODE_SIZE_ESTIMATED;
	s->stats.total_bytes = s->stats.total_bytes - old + size;
	s->stats.size_fixes++;
	return 0;
}


/* What sys.getsizeof reports for a node (REPORTED, format 1.1). */
#define GS_UNKNOWN UINT32_MAX
#define GS_BIG (UINT32_MAX - 1) /* in the big table */
static int on_reported(uint64_t node, uint64_t address, uint64_t size, void *payload)
{
	hs_snapshot *s = payload;
	/* positional: the node-th object, as read (the reader checked it) */
	if (node >= s->g.node_count || node >= s->pass1_nodes || s->address[node] != address)
		return 0;
	uint32_t i = (uint32_t)node;
	if (!s->getsizeof32) {
		uint32_t n = s->pass1_nodes ? s->pass1_nodes : 1;
		if (!(s->getsizeof32 = hs_reallocarray(NULL, n, sizeof(uint32_t))))
			return HS_ENOMEM;
		memset(s->getsizeof32, 0xff, (size_t)n * sizeof(uint32_t));
	}
	if (i >= s->pass1_nodes)
		return 0;
	if (size < GS_BIG) {
		s->getsizeof32[i] = (uint32_t)size;
		return 0;
	}
	if (s->gs_big_count == s->gs_big_cap) {
		uint32_t cap = s->gs_big_cap ? s->gs_big_cap * 2 : 16;
		uint32_t *bn = hs_reallocarray(s->gs_big_node, cap, sizeof(uint32_t));
		if (!bn)
			return HS_ENOMEM;
		s->gs_big_node = bn;
		uint64_t *bs = hs_reallocarray(s->gs_big_size, cap, sizeof(uint64_t));
		if (!bs)
			return HS_ENOMEM;
		s->gs_big_size = bs;
		s->gs_big_cap = cap;
	}
	s->getsizeof32[i] = GS_BIG;
	s->gs_big_node[s->gs_big_count] = i;
	s->gs_big_size[s->gs_big_count++] = size;
	return 0;
}

/* The big getsizeof table sorted by node, a repeated node keeping its last
 * value (insertion sort on indexes: the table is small and mostly sorted). */
static void sort_gs_big(hs_snapshot *s)
{
	for (uint32_t i = 1; i < s->gs_big_count; i++) {
		uint32_t n = s->gs_big_node[i];
		uint64_t v = s->gs_big_size[i];
		uint32_t j = i;
		while (j > 0 && s->gs_big_node[j - 1] > n) {
			s->gs_big_node[j] = s->gs_big_node[j - 1];
			s->gs_big_size[j] = s->gs_big_size[j - 1];
			j--;
		}
		s->gs_big_node[j] = n;
		s->gs_big_size[j] = v;
	}
}

uint64_t hs_snapshot_node_getsizeof(const hs_snapshot *s, uint32_t node)
{
	if (!s->getsizeof32 || node >= s->g.node_count)
		return UINT64_MAX;
	uint32_t v = s->getsizeof32[node];
	if (v == GS_UNKNOWN)
		return UINT64_MAX;
	if (v != GS_BIG)
		return v;
	uint64_t found = UINT64_MAX;
	uint32_t lo = 0, hi = s->gs_big_count;
	while (lo < hi) { /* the last entry for the node: upper bound - 1 */
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->gs_big_node[mid] <= node)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && s->gs_big_node[lo - 1] == node)
		found = s->gs_big_size[lo - 1];
	return found;
}

/* Size model and native-buffer totals (format 1.1). */
static void size_stats(hs_snapshot *s)
{
	s->stats.size_model_allocator = s->totals.minor >= 1;
	const cJSON *dump = s->meta ? cJSON_GetObjectItemCaseSensitive((const cJSON *)s->meta, "dump") : NULL;
	const cJSON *model = dump ? cJSON_GetObjectItemCaseSensitive(dump, "size_model") : NULL;
	if (cJSON_IsString(model) && model->valuestring)
		s->stats.size_model_allocator = !strcmp(model->valuestring, "allocator");
	int any = 0;
	for (uint32_t t = 0; t < s->type_count; t++)
		any |= (s->types[t].flags & HS_TYPE_NATIVE) != 0;
	if (!any)
		return;
	for (uint32_t i = 0; i < s->g.node_count; i++) {
		uint32_t t = s->type[i];
		if (t >= s->type_count || !(s->types[t].flags & HS_TYPE_NATIVE))
			continue;
		uint64_t b = hs_graph_node_size(&s->g, i);
		if (s->types[t].flags & HS_TYPE_DEVICE)
			s->stats.device_bytes += b;
		else
			s->stats.native_bytes += b;
	}
}

/* ------------------------------------------------------------------ */
/* allocation sites                                                    */

static int grow_u32(uint32_t **a, uint32_t *cap, uint64_t want, size_t elem)
{
	if (want <= *cap)
		return 0;
	if (want > MAX_INDEX)
		return HS_ELIMIT;
	uint64_t nc = *cap ? *cap : 64;
	while (nc < want)
		nc *= 2;
	if (nc > MAX_INDEX)
		nc = MAX_INDEX;
	void *p = hs_reallocarray(*a, (size_t)nc, elem);
	if (!p)
		return HS_ENOMEM;
	*a = p;
	*cap = (uint32_t)nc;
	return 0;
}

static int on_sites(uint64_t sample_bytes, void *payload)
{
	hs_snapshot *s = payload;
	if (s->have_sites && s->sample_bytes != sample_bytes)
		FAIL(HS_EFORMAT, "two allocation-site sections with different sampling intervals");
	s->have_sites = 1;
	s->sample_bytes = sample_bytes;
	return 0;
}

static int on_site_loc(uint32_t id, const hs_site_loc *l, void *payload)
{
	hs_snapshot *s = payload;
	if (id != s->site_loc_count)
		FAIL(HS_EFORMAT, "allocation-site location %u out of order", id);
	HS_TRY(check_string_ref(s, l->file, "site location file"));
	HS_TRY(check_string_ref(s, l->function, "site location function"));
	uint32_t cap = s->site_loc_cap;
	void *p = s->site_locs;
	int rc = grow_u32((uint32_t **)&p, &cap, (uint64_t)id + 1, sizeof(hs_site_loc));
	if (rc == HS_ELIMIT)
		FAIL(HS_ELIMIT, "too many allocation-site locations");
	HS_TRY(rc);
	s->site_locs = p;
	s->site_loc_cap = cap;
	s->site_locs[s->site_loc_count++] = *l;
	return 0;
}

static int on_site_stack(uint32_t id, const uint32_t *locs, uint32_t n, void *payload)
{
	hs_snapshot *s = payload;
	if (id != s->stack_count)
		FAIL(HS_EFORMAT, "allocation stack %u out of order", id);
	uint32_t cap = s->stack_cap;
	int rc = grow_u32(&s->stack_site, &cap, (uint64_t)id + 2, sizeof(uint32_t));
	if (rc == 0) {
		cap = s->stack_cap;
		rc = grow_u32(&s->stack_off, &cap, (uint64_t)id + 2, sizeof(uint32_t));
	}
	if (rc == HS_ELIMIT)
		FAIL(HS_ELIMIT, "too many allocation stacks");
	HS_TRY(rc);
	s->stack_cap = cap;
	uint32_t fcap = (uint32_t)s->stack_frame_cap;
	rc = grow_u32(&s->stack_frames, &fcap, s->stack_frame_len + n + 1, sizeof(uint32_t));
	if (rc == HS_ELIMIT)
		FAIL(HS_ELIMIT, "too many allocation stack frames");
	HS_TRY(rc);
	s->stack_frame_cap = fcap;
	if (id == 0)
		s->stack_off[0] = 0;
	uint32_t self = n ? locs[0] : HS_NO_SITE;
	for (uint32_t k = 0; k < n; k++) {
		s->stack_frames[s->stack_frame_len + k] = locs[k];
		if (!(s->site_locs[locs[k]].flags & HS_SITE_LIBRARY) && self == locs[0] &&
		    (s->site_locs[locs[0]].flags & HS_SITE_LIBRARY))
			self = locs[k];
	}
	s->stack_frame_len += n;
	s->stack_off[id + 1] = (uint32_t)s->stack_frame_len;
	s->stack_site[id] = self;
	s->stack_count++;
	return 0;
}

/* The object a tracked block holds starts at the block or after the
 * interpreter's pre-header: the GC header (16 bytes), and on 3.11+ the
 * managed dict and weakref pointers (16 more). */
static const uint64_t preheader[] = { 0, 16, 32 };

static int on_alloc(const hs_alloc_record *a, void *payload)
{
	hs_snapshot *s = payload;
	uint32_t node = HS_NO_NODE;
	for (size_t k = 0; k < sizeof(preheader) / sizeof(preheader[0]) && node == HS_NO_NODE; k++) {
		if (k && preheader[k] >= a->size)
			break;
		node = hs_addrmap__find(&s->map, s->address, a->address + preheader[k]);
	}
	if (node == HS_NO_NODE || node >= s->pass1_nodes) {
		s->alloc_unmatched++;
		return 0;
	}
	if (!s->node_alloc) {
		s->node_alloc = hs_reallocarray(NULL, s->pass1_nodes ? s->pass1_nodes : 1, sizeof(uint32_t));
		if (!s->node_alloc)
			return HS_ENOMEM;
		memset(s->node_alloc, 0xff, (size_t)(s->pass1_nodes ? s->pass1_nodes : 1) * sizeof(uint32_t));
	}
	if (s->node_alloc[node] != HS_NO_NODE) {
		s->alloc_unmatched++; /* a second block for one object: keep the first */
		return 0;
	}
	uint32_t i = s->alloc_count;
	if (i >= s->alloc_cap) {
		uint32_t c1 = s->alloc_cap, c2 = s->alloc_cap, c3 = s->alloc_cap;
		int rc = grow_u32(&s->alloc_stack, &c1, (uint64_t)i + 1, sizeof(uint32_t));
		if (rc == 0)
			rc = grow_u32((uint32_t **)&s->alloc_size, &c2, (uint64_t)i + 1, sizeof(uint64_t));
		if (rc == 0)
			rc = grow_u32((uint32_t **)&s->alloc_time, &c3, (uint64_t)i + 1, sizeof(uint64_t));
		if (rc == HS_ELIMIT)
			FAIL(HS_ELIMIT, "too many tracked blocks");
		HS_TRY(rc);
		s->alloc_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
	}
	s->alloc_stack[i] = a->stack;
	s->alloc_size[i] = a->size;
	s->alloc_time[i] = a->time_ms;
	s->node_alloc[node] = i;
	s->alloc_count++;
	return 0;
}

void hs_snapshot__sites_release(hs_snapshot *s)
{
	hs_free(s->site_locs);
	hs_free(s->stack_off);
	hs_free(s->stack_site);
	hs_free(s->stack_frames);
	hs_free(s->node_alloc);
	hs_free(s->alloc_stack);
	hs_free(s->alloc_size);
	hs_free(s->alloc_time);
	s->site_locs = NULL;
	s->stack_off = s->stack_site = s->stack_frames = s->node_alloc = s->alloc_stack = NULL;
	s->alloc_size = s->alloc_time = NULL;
	s->site_loc_count = s->stack_count = s->alloc_count = 0;
}

int hs_snapshot_has_sites(const hs_snapshot *s) { return s->have_sites; }
uint64_t hs_snapshot_sample_bytes(const hs_snapshot *s) { return s->sample_bytes; }
uint32_t hs_snapshot_site_count(const hs_snapshot *s) { return s->site_loc_count; }
uint64_t hs_snapshot_unmatched_blocks(const hs_snapshot *s) { return s->alloc_unmatched; }

int hs_snapshot_site(const hs_snapshot *s, uint32_t id, hs_site *out)
{
	if (id >= s->site_loc_count)
		return HS_EINVAL;
	const hs_site_loc *l = &s->site_locs[id];
	out->file = l->file == HS_NO_STRING ? "?" : (const char *)s->strings.data + s->string_off[l->file];
	out->function = l->function == HS_NO_STRING ? "?"
		: (const char *)s->strings.data + s->string_off[l->function];
	out->line = l->line;
	out->flags = l->flags;
	return 0;
}

uint32_t hs_snapshot_stack(const hs_snapshot *s, uint32_t id, const uint32_t **frames)
{
	if (id >= s->stack_count) {
		*frames = NULL;
		return 0;
	}
	*frames = s->stack_frames + s->stack_off[id];
	return s->stack_off[id + 1] - s->stack_off[id];
}

int hs_snapshot_node_alloc(const hs_snapshot *s, uint32_t node, hs_node_alloc *out)
{
	if (!s->node_alloc || node >= s->g.node_count || s->node_alloc[node] == HS_NO_NODE)
		return 0;
	uint32_t i = s->node_alloc[node];
	out->stack = s->alloc_stack[i];
	out->site = s->stack_site[out->stack];
	out->block_size = s->alloc_size[i];
	out->time_ms = s->alloc_time[i];
	out->weight = 1.0;
	if (s->sample_bytes && out->block_size < s->sample_bytes) {
		double p = -expm1(-(double)out->block_size / (double)s->sample_bytes);
		out->weight = p > 0 ? 1.0 / p : 1.0;
	}
	return 1;
}

static const hs_read_visitor visitor = {
	HS_READ_VISITOR_VERSION, on_totals, on_meta, on_string, on_type, on_node, on_edge, on_root,
	on_meta_end, on_size, on_sites, on_site_loc, on_site_stack, on_alloc, on_reported,
};

static int open_common(hs_snapshot **out, const char *name, const void *data, size_t len,
                       const hs_snapshot_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_SNAPSHOT_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_snapshot_open: unknown options version %u",
		                    opts->version);
	hs_snapshot *s = hs_calloc(1, sizeof(*s));
	if (!s)
		return HS_ENOMEM;
	int rc;
	if (!(s->path = hs_strdup(name))) {
		rc = HS_ENOMEM;
		goto done;
	}
	s->max_nodes = opts ? opts->max_nodes : 0;
	s->pass = 1;
	if (data) {
		s->input_bytes = len;
		rc = hs_format_read_memory(data, len, name, &address_visitor, s);
		if (rc == 0)
			rc = build_map(s);
		if (rc == 0)
			rc = hs_format_read_memory(data, len, name, &visitor, s);
	} else {
		struct stat st;
		if (stat(name, &st) == 0 && st.st_size > 0)
			s->input_bytes = (uint64_t)st.st_size;
		rc = hs_format_read(name, &address_visitor, s);
		if (rc == 0)
			rc = build_map(s);
		if (rc == 0)
			rc = hs_format_read(name, &visitor, s);
	}
	if (rc == 0)
		rc = finish(s);
done:
	if (rc < 0) {
		hs_snapshot_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int hs_snapshot_open(hs_snapshot **out, const char *path, const hs_snapshot_options *opts)
{
	return open_common(out, path, NULL, 0, opts);
}

int hs_snapshot_open_memory(hs_snapshot **out, const void *data, size_t len, const char *name,
                            const hs_snapshot_options *opts)
{
	return open_common(out, name ? name : "<memory>", data ? data : "", len, opts);
}
