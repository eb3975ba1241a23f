/*
 * render/graphviz.c: reference graphs drawn with libgvc/cgraph
 * (include/heapsnap/graphviz.h).
 *
 * A graph is first built as a small model of our own (nodes standing for
 * one or several objects, edges with an example label and a count), with
 * every label computed while the snapshot is at hand; cgraph only sees the
 * finished model when rendering. That keeps the building logic testable
 * without Graphviz, and the `.dot` output stable: node names are n0, n1, …
 * in the order nodes were discovered, attributes are set in a fixed order,
 * and "dot" output is cgraph's agwrite of the unlaid graph.
 *
 * Collapsing happens twice. While expanding one object, new neighbours are
 * grouped by type; a group larger than `fanin` becomes one node (not
 * followed further). After the search, nodes of one type with exactly the
 * same neighbours (same nodes, same directions) are merged when there are
 * more than `fanin` of them: the selection of 1000 sessions all held by one
 * dict becomes one "1,000 × Session" node.
 */
#include <stdlib.h>
#include <string.h>
#include "heapsnap/graphviz.h"
#include "heapsnap/render.h"
#include "render/graphviz_internal.h"
#include "render/render_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

void hs_graphviz_free(hs_graphviz *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nn; i++) {
		hs_free(g->n[i].label);
		hs_free(g->n[i].extra);
	}
	for (size_t i = 0; i < g->ne; i++)
		hs_free(g->e[i].label);
	hs_free(g->n);
	hs_free(g->e);
	hs_free(g);
}

const hs_graphviz_stats *hs_graphviz_stats_get(const hs_graphviz *g) { return &g->stats; }

int hs_graphviz__add_node(hs_graphviz *g, uint32_t *out, uint32_t obj, uint32_t type)
{
	if (g->nn == g->ncap) {
		size_t cap = g->ncap ? g->ncap * 2 : 64;
		gnode *nn = hs_reallocarray(g->n, cap, sizeof(gnode));
		if (!nn)
			return HS_ENOMEM;
		g->n = nn;
		g->ncap = cap;
	}
	gnode *x = &g->n[g->nn];
	memset(x, 0, sizeof(*x));
	x->obj = obj;
	x->type = type;
	x->count = 1;
	x->root = HS_NO_NODE;
	*out = (uint32_t)g->nn++;
	return 0;
}

int hs_graphviz__add_edge(hs_graphviz *g, uint32_t from, uint32_t to, uint32_t edge, uint64_t count,
                           int weak)
{
	if (g->ne == g->ecap) {
		size_t cap = g->ecap ? g->ecap * 2 : 64;
		gedge *ne = hs_reallocarray(g->e, cap, sizeof(gedge));
		if (!ne)
			return HS_ENOMEM;
		g->e = ne;
		g->ecap = cap;
	}
	gedge *x = &g->e[g->ne++];
	memset(x, 0, sizeof(*x));
	x->from = from;
	x->to = to;
	x->edge = edge;
	x->count = count;
	x->weak = (uint8_t)weak;
	return 0;
}

/* label text for DOT: backslashes doubled (Graphviz reads escapes), control
 * characters shown as '?'; lines joined with "\n" (centered line breaks) */
void hs_graphviz__put_esc(char *buf, size_t size, size_t *len, const char *s)
{
	for (; *s && *len + 2 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = '\\';
		} else {
			buf[(*len)++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
	}
	buf[*len] = '\0';
}

void hs_graphviz__put_line(char *buf, size_t size, size_t *len, const char *s)
{
	if (*len && *len + 2 < size) {
		buf[(*len)++] = '\\';
		buf[(*len)++] = 'n';
		buf[*len] = '\0';
	}
	hs_graphviz__put_esc(buf, size, len, s);
}

/* ------------------------------------------------------------------ */
/* neighbourhood graphs                                                */

typedef struct cand {
	uint32_t obj, edge, type;
	uint32_t order;
} cand;

static int cmp_cand(const void *pa, const void *pb)
{
	const cand *a = pa, *b = pb;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return (a->order > b->order) - (a->order < b->order);
}

typedef struct nbr {
	uint32_t other;
	uint32_t dir; /* 0: other -> me, 1: me -> other */
} nbr;

static int cmp_nbr(const void *pa, const void *pb)
{
	const nbr *a = pa, *b = pb;
	if (a->other != b->other)
		return a->other < b->other ? -1 : 1;
	return (a->dir > b->dir) - (a->dir < b->dir);
}

typedef struct sig {
	uint64_t hash;
	uint32_t node;
	uint32_t off, len; /* neighbours in the nbr arena */
} sig;

static int cmp_sig(const void *pa, const void *pb)
{
	const sig *a = pa, *b = pb;
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return (a->node > b->node) - (a->node < b->node);
}

static int same_label(const hs_graph *gr, uint32_t a, uint32_t b)
{
	if (a == HS_NO_EDGE || b == HS_NO_EDGE)
		return a == b;
	return gr->edge_kind[a] == gr->edge_kind[b] && gr->edge_label[a] == gr->edge_label[b];
}

/* Merge nodes of one type with identical neighbour sets (see the top). */
static int merge_equivalent(hs_graphviz *g, const hs_graph *gr, size_t fanin)
{
	size_t nn = g->nn;
	nbr *arena = hs_reallocarray(NULL, g->ne * 2 + 1, sizeof(nbr));
	uint32_t *deg = hs_calloc(nn + 1, sizeof(uint32_t));
	sig *sg = hs_reallocarray(NULL, nn + 1, sizeof(sig));
	uint32_t *rep = hs_reallocarray(NULL, nn + 1, sizeof(uint32_t));
	int rc = HS_ENOMEM;
	if (!arena || !deg || !sg || !rep)
		goto done;
	for (size_t i = 0; i < g->ne; i++) {
		deg[g->e[i].from + 1]++;
		deg[g->e[i].to + 1]++;
	}
	for (size_t i = 0; i < nn; i++)
		deg[i + 1] += deg[i];
	uint32_t *fill = rep; /* reuse as a cursor */
	memcpy(fill, deg, nn * sizeof(uint32_t));
	for (size_t i = 0; i < g->ne; i++) {
		const gedge *e = &g->e[i];
		arena[fill[e->from]++] = (nbr){ e->to, 1 };
		arena[fill[e->to]++] = (nbr){ e->from, 0 };
	}
	size_t ns = 0;
	for (size_t i = 0; i < nn; i++) {
		const gnode *x = &g->n[i];
		uint32_t off = deg[i], len = deg[i + 1] - deg[i];
		if (x->flags & (GN_ROOT | GN_COLLAPSED | GN_DEAD) || !len)
			continue;
		qsort(arena + off, len, sizeof(nbr), cmp_nbr);
		uint64_t h = hs_hash_u64(((uint64_t)x->type << 8) ^ (x->flags & GN_SELECTED));
		for (uint32_t k = 0; k < len; k++)
			h = hs_hash_u64(h ^ (((uint64_t)arena[off + k].other << 1) | arena[off + k].dir));
		sg[ns++] = (sig){ h, (uint32_t)i, off, len };
	}
	qsort(sg, ns, sizeof(sig), cmp_sig);
	for (size_t i = 0; i < nn; i++)
		rep[i] = (uint32_t)i;
	for (size_t a = 0; a < ns;) {
		size_t b = a + 1;
		while (b < ns && sg[b].hash == sg[a].hash)
			b++;
		/* within a run of equal hashes, members equal to the first */
		size_t members = 0;
		for (size_t k = a; k < b; k++) {
			const sig *x = &sg[k], *y = &sg[a];
			if (x->len == y->len && g->n[x->node].type == g->n[y->node].type &&
			    !memcmp(arena + x->off, arena + y->off, x->len * sizeof(nbr)))
				members++;
		}
		if (members > fanin) {
			gnode *first = &g->n[sg[a].node];
			first->flags |= GN_COLLAPSED;
			for (size_t k = a + 1; k < b; k++) {
				const sig *x = &sg[k], *y = &sg[a];
				if (!(x->len == y->len && g->n[x->node].type == g->n[y->node].type &&
				      !memcmp(arena + x->off, arena + y->off, x->len * sizeof(nbr))))
					continue;
				gnode *m = &g->n[x->node];
				first->count += m->count;
				first->bytes += m->bytes;
				m->flags |= GN_DEAD;
				rep[x->node] = sg[a].node;
			}
		}
		a = b;
	}
	/* redirect edges to representatives; merge parallel ones */
	size_t w = 0;
	for (size_t i = 0; i < g->ne; i++) {
		gedge e = g->e[i];
		int moved = rep[e.from] != e.from || rep[e.to] != e.to;
		e.from = rep[e.from];
		e.to = rep[e.to];
		if (moved) {
			/* find the edge it merges into: same ends (they are few) */
			size_t j;
			for (j = w; j-- > 0;)
				if (g->e[j].from == e.from && g->e[j].to == e.to && g->e[j].weak == e.weak)
					break;
			if (j != (size_t)-1 && j < w) {
				g->e[j].count += e.count;
				if (!same_label(gr, g->e[j].edge, e.edge))
					g->e[j].varies = 1;
				continue;
			}
		}
		g->e[w++] = e;
	}
	g->ne = w;
	rc = 0;
done:
	hs_free(arena);
	hs_free(deg);
	hs_free(sg);
	hs_free(rep);
	return rc;
}

/* Drop dead nodes, keep the first max_nodes, renumber. */
static int compact(hs_graphviz *g, size_t max_nodes)
{
	uint32_t *map = hs_reallocarray(NULL, g->nn + 1, sizeof(uint32_t));
	if (!map)
		return HS_ENOMEM;
	size_t w = 0;
	for (size_t i = 0; i < g->nn; i++) {
		if (g->n[i].flags & GN_DEAD || (max_nodes && w >= max_nodes)) {
			if (!(g->n[i].flags & GN_DEAD))
				g->stats.truncated = 1;
			map[i] = UINT32_MAX;
			continue;
		}
		map[i] = (uint32_t)w;
		g->n[w++] = g->n[i];
	}
	g->nn = w;
	size_t we = 0;
	for (size_t i = 0; i < g->ne; i++) {
		gedge e = g->e[i];
		if (map[e.from] == UINT32_MAX || map[e.to] == UINT32_MAX)
			continue;
		e.from = map[e.from];
		e.to = map[e.to];
		g->e[we++] = e;
	}
	g->ne = we;
	hs_free(map);
	return 0;
}

static void size_line(char *buf, size_t size, uint64_t bytes, uint64_t retained)
{
	char a[32], b[32];
	hs_render_size(a, sizeof(a), bytes);
	if (retained == UINT64_MAX || retained == bytes) {
		snprintf(buf, size, "%s", a);
	} else {
		hs_render_size(b, sizeof(b), retained);
		snprintf(buf, size, "%s, retains %s", a, b);
	}
}

int hs_graphviz__finish_labels(hs_graphviz *g, const hs_snapshot *s, const hs_dominators *d)
{
	const hs_graph *gr = hs_snapshot_graph(s);
	char buf[1024], tmp[512];
	for (size_t i = 0; i < g->nn; i++) {
		gnode *x = &g->n[i];
		size_t len = 0;
		buf[0] = '\0';
		const hs_snapshot_type *ty = hs_snapshot_type_get(s, x->type);
		const char *tn = ty ? ty->name : "?";
		if (x->flags & GN_COLLAPSED) {
			char c[32];
			hs_render_count(c, sizeof(c), x->count);
			snprintf(tmp, sizeof(tmp), "%s × %s", c, tn);
			hs_graphviz__put_line(buf, sizeof(buf), &len, tmp);
			hs_render_size(c, sizeof(c), x->bytes);
			hs_graphviz__put_line(buf, sizeof(buf), &len, c);
		} else {
			if (x->root != HS_NO_NODE) {
				hs_render_root_text(tmp, sizeof(tmp), s, x->root);
				if (strlen(tmp) > 60)
					strcpy(tmp + 57, "...");
				hs_graphviz__put_line(buf, sizeof(buf), &len, tmp);
			}
			hs_graphviz__put_line(buf, sizeof(buf), &len, tn);
			if (gr->value[x->obj] != HS_NO_VALUE) {
				size_t n = hs_snapshot_node_value_repr(s, x->obj, tmp, 40);
				if (n >= 40)
					strcpy(tmp + 36, "...");
				hs_graphviz__put_line(buf, sizeof(buf), &len, tmp);
			}
			size_line(tmp, sizeof(tmp), x->bytes,
			          d ? hs_dominators_retained(d, x->obj) : UINT64_MAX);
			hs_graphviz__put_line(buf, sizeof(buf), &len, tmp);
		}
		if (x->extra)
			hs_graphviz__put_line(buf, sizeof(buf), &len, x->extra);
		x->label = hs_strdup(buf);
		if (!x->label)
			return HS_ENOMEM;
	}
	for (size_t i = 0; i < g->ne; i++) {
		gedge *e = &g->e[i];
		if (e->label)
			continue;
		size_t len = 0;
		buf[0] = '\0';
		if (e->edge != HS_NO_EDGE) {
			unsigned k = HS_EDGE_LABEL(gr->edge_kind[e->edge]);
			if (e->varies && (k == HS_LABEL_KEY || k == HS_LABEL_INDEX))
				snprintf(tmp, sizeof(tmp), "%s", k == HS_LABEL_KEY ? "['<key>']" : "[<i>]");
			else
				hs_snapshot_edge_label(s, e->edge, tmp, 60);
			hs_graphviz__put_esc(buf, sizeof(buf), &len, tmp);
		}
		if (e->count > 1) {
			char c[32];
			hs_render_count(c, sizeof(c), e->count);
			snprintf(tmp, sizeof(tmp), "%s×%s", len ? " " : "", c);
			hs_graphviz__put_esc(buf, sizeof(buf), &len, tmp);
		}
		e->label = hs_strdup(buf);
		if (!e->label)
			return HS_ENOMEM;
	}
	g->stats.nodes = g->nn;
	g->stats.edges = g->ne;
	for (size_t i = 0; i < g->nn; i++) {
		g->stats.selected += !!(g->n[i].flags & GN_SELECTED);
		g->stats.roots += g->n[i].root != HS_NO_NODE;
		g->stats.collapsed += !!(g->n[i].flags & GN_COLLAPSED);
		g->stats.objects += g->n[i].count;
	}
	return 0;
}

int hs_graphviz_build(hs_graphviz **out, hs_snapshot *s, const uint32_t *sel, size_t count,
                      const hs_graphviz_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_GRAPHVIZ_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_graphviz_build: unknown options version %u",
		                    opts->version);
	hs_graphviz_options o = HS_GRAPHVIZ_OPTIONS_INIT;
	if (opts)
		o = *opts;
	const hs_graph *gr = hs_snapshot_graph(s);
	HS_RETURN_IF(!count, HS_EINVAL, "nothing selected to draw");
	for (size_t i = 0; i < count; i++)
		HS_RETURN_IF(sel[i] >= gr->node_count, HS_EINVAL,
		             "hs_graphviz_build: object %u out of range", sel[i]);
	int back = o.direction == HS_GRAPHVIZ_BACKREFS;
	if (back)
		HS_TRY(hs_snapshot_build_reverse(s));
	gr = hs_snapshot_graph(s);

	int rc = HS_ENOMEM;
	uint32_t *at = NULL, *root_of = NULL;
	cand *cs = NULL;
	size_t ccap = 0;
	hs_graphviz *g = hs_calloc(1, sizeof(*g));
	at = hs_reallocarray(NULL, gr->node_count ? gr->node_count : 1, sizeof(uint32_t));
	root_of = hs_reallocarray(NULL, gr->node_count ? gr->node_count : 1, sizeof(uint32_t));
	if (!g || !at || !root_of)
		goto done;
	memset(at, 0xff, (size_t)gr->node_count * sizeof(uint32_t));
	memset(root_of, 0xff, (size_t)gr->node_count * sizeof(uint32_t));
	for (uint32_t i = hs_snapshot_root_count(s); i-- > 0;) {
		hs_snapshot_root r;
		if (hs_snapshot_root_get(s, i, &r) == 0 && r.node < gr->node_count)
			root_of[r.node] = i; /* descending: the first root wins */
	}
	size_t raw_cap = count + (o.max_nodes ? o.max_nodes : 100) * 4;
	for (size_t i = 0; i < count; i++) {
		uint32_t v = sel[i], id;
		if (at[v] != UINT32_MAX)
			continue;
		if ((rc = hs_graphviz__add_node(g, &id, v, gr->type[v])) < 0)
			goto done;
		rc = HS_ENOMEM;
		at[v] = id;
		g->n[id].flags |= GN_SELECTED;
		g->n[id].bytes = hs_graph_node_size(gr, v);
		g->n[id].root = root_of[v];
		if (root_of[v] != HS_NO_NODE)
			g->n[id].flags |= GN_ROOT;
	}
	/* breadth first: nodes are appended in discovery order, so the node
	 * array itself is the queue */
	for (size_t qi = 0; qi < g->nn; qi++) {
		gnode x = g->n[qi];
		if (x.flags & GN_COLLAPSED || x.depth >= o.depth || (back && (x.flags & GN_ROOT)))
			continue;
		uint32_t v = x.obj;
		size_t nc = 0;
		uint32_t lo = back ? gr->rev_start[v] : gr->edge_start[v];
		uint32_t hi = back ? gr->rev_start[v + 1] : gr->edge_start[v + 1];
		if (hi - lo > ccap) {
			cand *ncs = hs_reallocarray(cs, hi - lo, sizeof(cand));
			if (!ncs)
				goto done;
			cs = ncs;
			ccap = hi - lo;
		}
		for (uint32_t k = lo; k < hi; k++) {
			uint32_t e = back ? gr->rev_edge[k] : k;
			uint32_t w = back ? gr->rev_source[k] : gr->edge_target[k];
			if (at[w] != UINT32_MAX) {
				/* already drawn: just the edge */
				uint32_t wi = at[w];
				if ((rc = hs_graphviz__add_edge(g, back ? wi : (uint32_t)qi, back ? (uint32_t)qi : wi, e, 1,
				                   HS_EDGE_KIND(gr->edge_kind[e]) == HS_EDGE_WEAK)) < 0)
					goto done;
				rc = HS_ENOMEM;
				continue;
			}
			if (!hs_graphviz_filter_match(o.filter, hs_snapshot_node_type_name(s, w)))
				continue;
			cs[nc++] = (cand){ w, e, gr->type[w], k };
		}
		qsort(cs, nc, sizeof(cand), cmp_cand);
		for (size_t a = 0; a < nc;) {
			size_t b = a + 1;
			while (b < nc && cs[b].type == cs[a].type)
				b++;
			/* distinct objects in the group (one object may be reached twice) */
			size_t distinct = 0;
			for (size_t k = a; k < b; k++) {
				int dup = 0;
				for (size_t j = a; j < k && !dup && k - a < 64; j++)
					dup = cs[j].obj == cs[k].obj;
				distinct += !dup;
			}
			if (distinct > o.fanin) {
				uint32_t id;
				if ((rc = hs_graphviz__add_node(g, &id, cs[a].obj, cs[a].type)) < 0)
					goto done;
				gnode *c = &g->n[id];
				c->flags |= GN_COLLAPSED;
				c->count = 0;
				c->depth = x.depth + 1;
				int varies = 0;
				for (size_t k = a; k < b; k++) {
					c->count++;
					c->bytes += hs_graph_node_size(gr, cs[k].obj);
					varies |= !same_label(gr, cs[k].edge, cs[a].edge);
				}
				if ((rc = hs_graphviz__add_edge(g, back ? id : (uint32_t)qi, back ? (uint32_t)qi : id,
				                   cs[a].edge, b - a, 0)) < 0)
					goto done;
				g->e[g->ne - 1].varies = (uint8_t)varies;
				rc = HS_ENOMEM;
			} else {
				for (size_t k = a; k < b; k++) {
					uint32_t w = cs[k].obj, wi = at[w];
					if (wi == UINT32_MAX) {
						if (g->nn >= raw_cap) {
							g->stats.truncated = 1;
							continue;
						}
						if ((rc = hs_graphviz__add_node(g, &wi, w, cs[k].type)) < 0)
							goto done;
						at[w] = wi;
						g->n[wi].depth = x.depth + 1;
						g->n[wi].bytes = hs_graph_node_size(gr, w);
						g->n[wi].root = root_of[w];
						if (root_of[w] != HS_NO_NODE)
							g->n[wi].flags |= GN_ROOT;
					}
					if ((rc = hs_graphviz__add_edge(g, back ? wi : (uint32_t)qi, back ? (uint32_t)qi : wi,
					                   cs[k].edge, 1,
					                   HS_EDGE_KIND(gr->edge_kind[cs[k].edge]) == HS_EDGE_WEAK)) < 0)
						goto done;
					rc = HS_ENOMEM;
				}
			}
			a = b;
		}
	}
	if ((rc = merge_equivalent(g, gr, o.fanin)) < 0 ||
	    (rc = compact(g, o.max_nodes)) < 0 ||
	    (rc = hs_graphviz__finish_labels(g, s, o.dominators)) < 0)
		goto done;
	*out = g;
	g = NULL;
	rc = 0;
done:
	hs_free(at);
	hs_free(root_of);
	hs_free(cs);
	hs_graphviz_free(g);
	return rc;
}
