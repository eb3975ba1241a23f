/*
 * analysis/garbage.c: what the cyclic GC has yet to collect.
 *
 * Garbage is every object no root reaches over strong edges (hs_reach).
 * Reference counting alone frees anything not in a cycle, so garbage seen
 * in a snapshot is made of cycles and what they hold: the strongly
 * connected components of the garbage subgraph show them. Tarjan's
 * algorithm, iterative (call stack of objects with an edge cursor each),
 * over the garbage objects renumbered densely: 4 bytes per object of the
 * snapshot plus 28 per garbage object while running.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/retention_internal.h"
#include "util/alloc.h"

#define NONE UINT32_MAX

typedef struct comp {
	uint64_t count, bytes;
	uint32_t example; /* smallest node */
	uint32_t id;
	int cyclic;
} comp;

static int cmp_comp(const void *pa, const void *pb)
{
	const comp *a = pa, *b = pb;
	if (a->cyclic != b->cyclic)
		return a->cyclic ? -1 : 1;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return (a->example > b->example) - (a->example < b->example);
}

static int cmp_gtype(const void *pa, const void *pb)
{
	const hs_garbage_type *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return (a->type > b->type) - (a->type < b->type);
}

/* (cycle rank, type, size) of one member of a described cycle */
typedef struct member {
	uint32_t rank, type;
	uint64_t size;
} member;

static int cmp_member(const void *pa, const void *pb)
{
	const member *a = pa, *b = pb;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return (a->type > b->type) - (a->type < b->type);
}

void hs_garbage_free(hs_garbage *gb)
{
	if (!gb)
		return;
	for (size_t i = 0; i < gb->shown_cycles; i++)
		hs_free(gb->cycles[i].types);
	hs_free(gb->cycles);
	hs_free(gb->types);
	hs_free(gb);
}

int hs_garbage_compute(hs_garbage **out, const hs_snapshot *s, const hs_reach *reach,
                       const hs_garbage_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_GARBAGE_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_garbage_compute: unknown options version %u",
		                    opts->version);
	size_t limit = opts ? opts->cycle_limit : 20;
	const hs_graph *g = hs_snapshot_graph(s);
	uint32_t n = g->node_count, nt = hs_snapshot_type_count(s);
	int rc = HS_ENOMEM;
	hs_reach *own = NULL;
	uint32_t *dense = NULL, *nodes = NULL, *idx = NULL, *low = NULL, *cur = NULL;
	uint32_t *cs = NULL, *ss = NULL, *cid = NULL, *rank = NULL;
	comp *comps = NULL;
	member *mem = NULL;
	hs_garbage *gb = hs_calloc(1, sizeof(*gb));
	if (!gb)
		goto done;
	if (!reach) {
		if ((rc = hs_reach_compute(&own, s, NULL)) < 0)
			goto done;
		rc = HS_ENOMEM;
		reach = own;
	}

	/* per type, and dense numbering of the garbage */
	gb->types = hs_calloc(nt ? nt : 1, sizeof(hs_garbage_type));
	dense = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	if (!gb->types || !dense)
		goto done;
	uint32_t U = 0;
	for (uint32_t v = 0; v < n; v++) {
		if (hs_reach_reachable(reach, v)) {
			dense[v] = NONE;
			continue;
		}
		dense[v] = U++;
		uint64_t sz = hs_graph_node_size(g, v);
		hs_garbage_type *t = &gb->types[g->type[v]];
		t->count++;
		t->bytes += sz;
		gb->count++;
		gb->bytes += sz;
	}
	for (uint32_t t = 0; t < nt; t++)
		gb->types[t].type = t;
	for (uint32_t t = 0; t < nt; t++)
		if (gb->types[t].count)
			gb->types[gb->type_count++] = gb->types[t];
	qsort(gb->types, gb->type_count, sizeof(hs_garbage_type), cmp_gtype);

	size_t u1 = U ? U : 1;
	nodes = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	idx = hs_calloc(u1, sizeof(uint32_t));
	low = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	cur = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	cs = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	ss = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	cid = hs_reallocarray(NULL, u1, sizeof(uint32_t));
	comps = hs_reallocarray(NULL, u1, sizeof(comp));
	if (!nodes || !idx || !low || !cur || !cs || !ss || !cid || !comps)
		goto done;
	for (uint32_t v = 0, k = 0; v < n; v++)
		if (dense[v] != NONE)
			nodes[k++] = v;

	/* Tarjan: idx 0 = unvisited; on the SCC stack while cid == NONE */
	const uint32_t *es = g->edge_start, *et = g->edge_target;
	const uint8_t *ek = g->edge_kind;
	uint32_t counter = 0, ncomp = 0;
	for (uint32_t root = 0; root < U; root++) {
		if (idx[root])
			continue;
		uint32_t csp = 0;
		idx[root] = low[root] = ++counter;
		cur[root] = es[nodes[root]];
		cid[root] = NONE;
		cs[csp++] = root;
		ss[0] = root;
		uint32_t ssp = 1;
		while (csp) {
			uint32_t v = cs[csp - 1];
			uint32_t end = es[nodes[v] + 1];
			if (cur[v] < end) {
				uint32_t e = cur[v]++;
				uint32_t w = dense[et[e]];
				if (w == NONE || HS_EDGE_KIND(ek[e]) == HS_EDGE_WEAK)
					continue;
				if (!idx[w]) {
					idx[w] = low[w] = ++counter;
					cur[w] = es[nodes[w]];
					cid[w] = NONE;
					cs[csp++] = w;
					ss[ssp++] = w;
				} else if (cid[w] == NONE && idx[w] < low[v]) {
					low[v] = idx[w];
				}
				continue;
			}
			csp--;
			if (csp && low[v] < low[cs[csp - 1]])
				low[cs[csp - 1]] = low[v];
			if (low[v] != idx[v])
				continue;
			comp *c = &comps[ncomp];
			memset(c, 0, sizeof(*c));
			c->id = ncomp;
			c->example = NONE;
			uint32_t x;
			do {
				x = ss[--ssp];
				cid[x] = ncomp;
				c->count++;
				c->bytes += hs_graph_node_size(g, nodes[x]);
				if (nodes[x] < c->example)
					c->example = nodes[x];
			} while (x != v);
			if (c->count > 1) {
				c->cyclic = 1;
			} else {
				uint32_t node = nodes[v];
				for (uint32_t e = es[node]; e < es[node + 1]; e++)
					if (et[e] == node && HS_EDGE_KIND(ek[e]) != HS_EDGE_WEAK)
						c->cyclic = 1;
			}
			if (c->cyclic) {
				gb->cycle_count++;
				gb->cyclic_count += c->count;
				gb->cyclic_bytes += c->bytes;
			}
			ncomp++;
		}
	}

	/* describe the largest cycles */
	qsort(comps, ncomp, sizeof(comp), cmp_comp);
	size_t shown = gb->cycle_count;
	if (limit && shown > limit)
		shown = limit;
	gb->cycles = hs_calloc(shown ? shown : 1, sizeof(hs_garbage_cycle));
	rank = hs_reallocarray(NULL, ncomp ? ncomp : 1, sizeof(uint32_t));
	if (!gb->cycles || !rank)
		goto done;
	memset(rank, 0xff, (size_t)ncomp * sizeof(uint32_t));
	uint64_t nmem = 0;
	for (size_t k = 0; k < shown; k++) {
		rank[comps[k].id] = (uint32_t)k;
		nmem += comps[k].count;
		gb->cycles[k].count = comps[k].count;
		gb->cycles[k].bytes = comps[k].bytes;
		gb->cycles[k].example = comps[k].example;
	}
	gb->shown_cycles = shown;
	mem = hs_reallocarray(NULL, nmem ? nmem : 1, sizeof(member));
	if (!mem)
		goto done;
	size_t m = 0;
	for (uint32_t x = 0; x < U; x++)
		if (rank[cid[x]] != NONE)
			mem[m++] = (member){ rank[cid[x]], g->type[nodes[x]], hs_graph_node_size(g, nodes[x]) };
	qsort(mem, m, sizeof(member), cmp_member);
	for (size_t a = 0; a < m;) {
		hs_garbage_cycle *cy = &gb->cycles[mem[a].rank];
		size_t b = a, ntypes = 0;
		while (b < m && mem[b].rank == mem[a].rank) {
			if (b == a || mem[b].type != mem[b - 1].type)
				ntypes++;
			b++;
		}
		cy->types = hs_calloc(ntypes, sizeof(hs_garbage_type));
		if (!cy->types)
			goto done;
		for (size_t i = a; i < b; i++) {
			if (i == a || mem[i].type != mem[i - 1].type)
				cy->types[cy->type_count++].type = mem[i].type;
			hs_garbage_type *t = &cy->types[cy->type_count - 1];
			t->count++;
			t->bytes += mem[i].size;
		}
		qsort(cy->types, cy->type_count, sizeof(hs_garbage_type), cmp_gtype);
		a = b;
	}
	*out = gb;
	gb = NULL;
	rc = 0;
done:
	hs_reach_free(own);
	hs_free(dense);
	hs_free(nodes);
	hs_free(idx);
	hs_free(low);
	hs_free(cur);
	hs_free(cs);
	hs_free(ss);
	hs_free(cid);
	hs_free(comps);
	hs_free(rank);
	hs_free(mem);
	hs_garbage_free(gb);
	return rc;
}
