/*
 * render/graphviz_leak.c: the root-cause graph of one leaking type (from
 * `heapsnap leaks`): the growing objects, their common holder and the path
 * to it from a root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/graphviz.h"
#include "heapsnap/leaks.h"
#include "heapsnap/render.h"
#include "render/graphviz_internal.h"
#include "render/render_internal.h"
#include "util/alloc.h"


int hs_graphviz_build_leak(hs_graphviz **out, const hs_snapshot *last, const hs_leaks *l,
                           size_t type_index)
{
	*out = NULL;
	HS_RETURN_IF(type_index >= l->type_count, HS_EINVAL, "no leaking type to draw");
	const hs_leak_type *t = &l->types[type_index];
	const hs_graph *gr = hs_snapshot_graph(last);
	hs_graphviz *g = hs_calloc(1, sizeof(*g));
	if (!g)
		return HS_ENOMEM;
	int rc = 0;
	char tmp[512], c[32], b[32];
	size_t n = l->snapshot_count;
	for (size_t pi = 0; rc == 0 && t->paths && pi < t->paths->path_count; pi++) {
		const hs_path *p = &t->paths->paths[pi];
		/* the main ways only: paths holding a tenth of the growth or more */
		if (pi && p->count * 10 < t->paths->paths[0].count)
			continue;
		uint32_t prev = UINT32_MAX;
		for (size_t k = 0; rc == 0 && k < p->step_count; k++) {
			const hs_path_step *st = &p->steps[k];
			uint32_t id = UINT32_MAX;
			/* a single object shared with an earlier path is drawn once */
			if (st->distinct == 1)
				for (size_t j = 0; j < g->nn; j++)
					if (g->n[j].obj == st->example && g->n[j].count == 1 &&
					    !(g->n[j].flags & GN_COLLAPSED)) {
						id = (uint32_t)j;
						break;
					}
			int fresh = id == UINT32_MAX;
			if (fresh) {
				if ((rc = hs_graphviz__add_node(g, &id, st->example, st->type)) < 0)
					break;
				gnode *x = &g->n[id];
				x->count = st->distinct;
				x->bytes = st->bytes;
				if (st->distinct > 1)
					x->flags |= GN_COLLAPSED;
				if (k == 0) {
					x->root = p->root;
					x->flags |= GN_ROOT;
				}
				if (k + 1 == p->step_count) {
					x->flags |= GN_SELECTED;
					hs_render_count(c, sizeof(c), p->count);
					snprintf(tmp, sizeof(tmp), "%s new in the last snapshot", c);
					if (!(x->extra = hs_strdup(tmp)))
						rc = HS_ENOMEM;
				}
				if (st->example == t->holder.node && t->holder.node != HS_NO_NODE) {
					x->flags |= GN_HOLDER;
					hs_render_count(c, sizeof(c), t->holder.held_count);
					hs_render_size(b, sizeof(b), t->holder.retained_at[n - 1]);
					snprintf(tmp, sizeof(tmp), "holds +%s %s per snapshot, retains %s", c,
					         t->name, b);
					hs_free(x->extra);
					if (!(x->extra = hs_strdup(tmp)))
						rc = HS_ENOMEM;
				}
			}
			if (rc == 0 && prev != UINT32_MAX) {
				int dup = 0;
				for (size_t j = 0; j < g->ne && !dup; j++)
					dup = g->e[j].from == prev && g->e[j].to == id;
				if (!dup) {
					rc = hs_graphviz__add_edge(g, prev, id, st->edge, st->distinct, 0);
					if (rc == 0) {
						g->e[g->ne - 1].varies = st->collapsed;
						g->e[g->ne - 1].count = st->distinct > g->n[prev].count ? st->distinct : 1;
						if (st->elided && !(g->e[g->ne - 1].label = hs_strdup("…")))
							rc = HS_ENOMEM;
					}
				}
			}
			prev = id;
		}
	}
	(void)gr;
	if (rc == 0)
		rc = hs_graphviz__finish_labels(g, last, NULL);
	if (rc < 0) {
		hs_graphviz_free(g);
		return rc;
	}
	g->rankdir_lr = 1;
	*out = g;
	return 0;
}
