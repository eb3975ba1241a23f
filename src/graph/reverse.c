/*
 * graph/reverse.c: reverse edges, built on demand (a counting sort of the
 * forward edges by target: rev_start is CSR by target, rev_edge names the
 * forward edge, rev_source its source, so labels stay reachable).
 * Cost: 4 bytes per node + 8 per edge, only for analyses that walk
 * referrers.
 */
#include <string.h>
#include "graph/snapshot_internal.h"
#include "util/alloc.h"

int hs_snapshot_build_reverse(hs_snapshot *s)
{
	if (s->rev_start)
		return 0;
	uint32_t n = s->g.node_count, m = s->g.edge_count;
	uint32_t *start = hs_calloc((size_t)n + 1, sizeof(uint32_t));
	uint32_t *redge = hs_reallocarray(NULL, m ? m : 1, sizeof(uint32_t));
	uint32_t *rsrc = hs_reallocarray(NULL, m ? m : 1, sizeof(uint32_t));
	if (!start || !redge || !rsrc) {
		hs_free(start);
		hs_free(redge);
		hs_free(rsrc);
		return HS_ENOMEM;
	}
	const uint32_t *tg = s->g.edge_target;
	for (uint32_t e = 0; e < m; e++)
		start[tg[e] + 1]++;
	for (uint32_t i = 0; i < n; i++)
		start[i + 1] += start[i];
	/* fill using start[t] as a cursor, then shift back */
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t e = s->g.edge_start[i]; e < s->g.edge_start[i + 1]; e++) {
			uint32_t pos = start[tg[e]]++;
			redge[pos] = e;
			rsrc[pos] = i;
		}
	}
	memmove(start + 1, start, (size_t)n * sizeof(uint32_t));
	start[0] = 0;
	s->rev_start = start;
	s->rev_edge = redge;
	s->rev_source = rsrc;
	s->g.rev_start = start;
	s->g.rev_edge = redge;
	s->g.rev_source = rsrc;
	return 0;
}
