/*
 * analysis/reach.c: reachability from the roots, as a breadth-first search.
 *
 * One multi-source BFS over strong edges gives, for every reachable object,
 * the edge by which the search first reached it: a shortest-path tree that
 * hs_paths_find() reads retention paths from. The queue holds the roots in
 * root order (first occurrence), then objects in the order they are
 * reached; edges are scanned in file order, so the tree is deterministic.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/retention_internal.h"
#include "util/alloc.h"

int hs_retention__check_graph(const hs_graph *g, const char *what)
{
	/* node indexes stay below HS_DOM_SUPERROOT, edge indexes below
	 * HS_REACH__ROOT: both markers live in u32 arrays */
	if (g->node_count >= HS_DOM_SUPERROOT || g->edge_count >= HS_REACH__ROOT)
		return hs_error_set(HS_ELIMIT, "cannot compute %s: the graph is too large "
		                    "(%u objects, %u references)", what, g->node_count, g->edge_count);
	return 0;
}

int hs_retention__root_nodes(uint32_t **nodes, uint32_t **first, uint32_t *count,
                             const hs_snapshot *s)
{
	const hs_graph *g = hs_snapshot_graph(s);
	uint32_t nr = hs_snapshot_root_count(s);
	uint32_t *out = hs_reallocarray(NULL, nr ? nr : 1, sizeof(uint32_t));
	uint32_t *idx = hs_reallocarray(NULL, nr ? nr : 1, sizeof(uint32_t));
	uint64_t *seen = hs_calloc(((size_t)g->node_count + 63) / 64 + 1, sizeof(uint64_t));
	if (!out || !idx || !seen) {
		hs_free(out);
		hs_free(idx);
		hs_free(seen);
		return HS_ENOMEM;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t v = hs_retention__root(s, i).node;
		if (v >= g->node_count || (seen[v >> 6] >> (v & 63) & 1))
			continue;
		seen[v >> 6] |= 1ull << (v & 63);
		out[k] = v;
		idx[k++] = i;
	}
	hs_free(seen);
	*nodes = out;
	*first = idx;
	*count = k;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int hs_reach_compute(hs_reach **out, const hs_snapshot *s, const hs_reach_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_REACH_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_reach_compute: unknown options version %u",
		                    opts->version);
	const hs_graph *g = hs_snapshot_graph(s);
	HS_TRY(hs_retention__check_graph(g, "reachability"));
	uint32_t n = g->node_count;
	int rc = HS_ENOMEM;
	uint32_t *queue = NULL, *roots = NULL, *first = NULL;
	uint64_t *pairs = NULL;
	uint32_t nroots = 0;
	hs_reach *r = hs_calloc(1, sizeof(*r));
	if (!r)
		goto done;
	r->node_count = n;
	r->g = g;
	r->parent = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	queue = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	if (!r->parent || !queue)
		goto done;
	if ((rc = hs_retention__root_nodes(&roots, &first, &nroots, s)) < 0)
		goto done;
	rc = HS_ENOMEM;
	memset(r->parent, 0xff, (size_t)n * sizeof(uint32_t)); /* HS_NO_EDGE */

	/*
	 * BFS, level by level to record the depth. Two phases: first from the
	 * roots the file names (modules, frames, locals, interpreter), then
	 * from the derived held-from-C roots for what is still unreached. A
	 * module's dict is usually "held from C" too (frames hold f_globals):
	 * in one phase it would be reached at depth 0 through that root, and
	 * every path to a global would start at "held from C" instead of at
	 * `module NAME`, the answer people look for.
	 */
	uint32_t nfile = 0;
	while (nfile < nroots && hs_retention__root(s, first[nfile]).kind != HS_ROOT_HELD)
		nfile++;
	uint32_t head = 0, tail = 0;
	const uint32_t *es = g->edge_start, *et = g->edge_target;
	const uint8_t *ek = g->edge_kind;
	uint32_t *parent = r->parent;
	uint32_t depth = 0;
	for (int phase = 0; phase < 2; phase++) {
		uint32_t from = phase ? nfile : 0, to = phase ? nroots : nfile;
		for (uint32_t i = from; i < to; i++) {
			if (parent[roots[i]] != HS_NO_EDGE)
				continue;
			parent[roots[i]] = HS_REACH__ROOT;
			queue[tail++] = roots[i];
		}
		uint32_t level = 0, level_end = tail;
		while (head < tail) {
			uint32_t v = queue[head++];
			for (uint32_t e = es[v], end = es[v + 1]; e < end; e++) {
				uint32_t w = et[e];
				if (parent[w] != HS_NO_EDGE || HS_EDGE_KIND(ek[e]) == HS_EDGE_WEAK)
					continue;
				parent[w] = e;
				queue[tail++] = w;
			}
			if (head == level_end && head < tail) {
				level++;
				level_end = tail;
			}
		}
		if (level > depth)
			depth = level;
	}
	r->stats.root_objects = nroots;
	r->stats.max_depth = depth;
	for (uint32_t v = 0; v < n; v++) {
		uint64_t sz = hs_graph_node_size(g, v);
		if (parent[v] != HS_NO_EDGE) {
			r->stats.reachable_count++;
			r->stats.reachable_bytes += sz;
		} else {
			r->stats.unreachable_count++;
			r->stats.unreachable_bytes += sz;
		}
	}

	/* root objects sorted by node, for hs_reach_root_index */
	pairs = hs_reallocarray(NULL, nroots ? nroots : 1, sizeof(uint64_t));
	r->root_node = hs_reallocarray(NULL, nroots ? nroots : 1, sizeof(uint32_t));
	r->root_first = hs_reallocarray(NULL, nroots ? nroots : 1, sizeof(uint32_t));
	if (!pairs || !r->root_node || !r->root_first)
		goto done;
	for (uint32_t i = 0; i < nroots; i++)
		pairs[i] = (uint64_t)roots[i] << 32 | first[i];
	qsort(pairs, nroots, sizeof(uint64_t), cmp_pair);
	for (uint32_t i = 0; i < nroots; i++) {
		r->root_node[i] = (uint32_t)(pairs[i] >> 32);
		r->root_first[i] = (uint32_t)pairs[i];
	}
	r->root_count = nroots;
	/* keep the BFS order: paths use it to find deep ancestors in linear time */
	r->order = queue;
	r->order_len = tail;
	queue = NULL;
	*out = r;
	r = NULL;
	rc = 0;
done:
	hs_free(queue);
	hs_free(roots);
	hs_free(first);
	hs_free(pairs);
	hs_reach_free(r);
	return rc;
}

void hs_reach_free(hs_reach *r)
{
	if (!r)
		return;
	hs_free(r->parent);
	hs_free(r->order);
	hs_free(r->root_node);
	hs_free(r->root_first);
	hs_free(r);
}

const hs_reach_stats *hs_reach_stats_get(const hs_reach *r)
{
	return &r->stats;
}

int hs_reach_reachable(const hs_reach *r, uint32_t node)
{
	return node < r->node_count && r->parent[node] != HS_NO_EDGE;
}

uint32_t hs_reach_parent_edge(const hs_reach *r, uint32_t node)
{
	if (node >= r->node_count || r->parent[node] == HS_REACH__ROOT)
		return HS_NO_EDGE;
	return r->parent[node];
}

uint32_t hs_reach_parent(const hs_reach *r, uint32_t node)
{
	uint32_t e = hs_reach_parent_edge(r, node);
	return e == HS_NO_EDGE ? HS_NO_NODE : hs_retention__edge_source(r->g, e);
}

uint32_t hs_reach_root_index(const hs_reach *r, uint32_t node)
{
	uint32_t lo = 0, hi = r->root_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->root_node[mid] < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->root_count && r->root_node[lo] == node ? r->root_first[lo] : HS_NO_NODE;
}
