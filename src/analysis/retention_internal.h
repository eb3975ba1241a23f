/*
 * analysis/retention_internal.h: helpers shared by the retention analyses
 * (reach.c, dominators.c, paths.c, garbage.c).
 */
#ifndef HS_ANALYSIS_RETENTION_INTERNAL_H
#define HS_ANALYSIS_RETENTION_INTERNAL_H

#include "heapsnap/retention.h"

/* Parent-edge marker of a root object in hs_reach (edge indexes stay below
 * it: hs_retention__check_graph rejects larger graphs). */
#define HS_REACH__ROOT (UINT32_MAX - 1)

struct hs_reach {
	uint32_t node_count;
	uint32_t *parent;       /* per node: edge, HS_REACH__ROOT, or HS_NO_EDGE */
	uint32_t *order;        /* reached nodes in BFS order (parents first) */
	uint32_t order_len;
	/* root objects sorted by node, with the first root index naming each */
	uint32_t root_count;
	uint32_t *root_node, *root_first;
	const hs_graph *g;      /* borrowed, for hs_reach_parent */
	hs_reach_stats stats;
};

/* The distinct objects named by roots, in root order (first occurrence),
 * and the index of the first root naming each. Both arrays hs_free'd by
 * the caller. */
int hs_retention__root_nodes(uint32_t **nodes, uint32_t **first, uint32_t *count,
                             const hs_snapshot *s);

/* The dominator tree of a graph built for one analysis (a contracted
 * copy of a snapshot's graph: hs_packages_compute), from `roots` (distinct
 * nodes, in order), without type sizes. Reads edge_start, edge_target,
 * edge_kind and sizes (size32, big_*) of `g` only. */
int hs_dominators__compute_graph(hs_dominators **out, const hs_graph *g, const uint32_t *roots,
                                 uint32_t nroots);

/* Reject graphs whose indexes would collide with the markers above. */
int hs_retention__check_graph(const hs_graph *g, const char *what);

/* Source node of forward edge `e`: the last node whose edge_start <= e. */
static inline uint32_t hs_retention__edge_source(const hs_graph *g, uint32_t e)
{
	uint32_t lo = 0, hi = g->node_count; /* answer in [lo, hi) */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->edge_start[mid] <= e)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Root i (in range), by value: hs_snapshot_root_get fills a copy. */
static inline hs_snapshot_root hs_retention__root(const hs_snapshot *s, uint32_t i)
{
	hs_snapshot_root r = { 0, HS_NO_NODE, HS_NO_STRING, HS_NO_STRING, 0 };
	if (hs_snapshot_root_get(s, i, &r) < 0)
		HS_BUG("root index out of range");
	return r;
}

static inline int hs_retention__strong(const hs_graph *g, uint32_t e)
{
	return HS_EDGE_KIND(g->edge_kind[e]) != HS_EDGE_WEAK;
}

#endif
