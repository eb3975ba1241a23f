/*
 * analysis/freeable.c: what dropping objects would free, weakref callbacks
 * included.
 *
 * The dominator tree gives the retained set of X: the objects every path
 * from a root to which passes through X. Weak-valued owners free more than
 * that when X dies: an identity map holds each row's state strongly and the
 * row only through a weakref whose callback removes the state from the map
 * (SQLAlchemy: state.obj = weakref.ref(row, state._cleanup));
 * WeakValueDictionary's KeyedRef entries are removed by their callback;
 * weakref.finalize's registry entry goes when its referent dies.
 *
 * The model, as CPython runs it: when a referent dies, every weakref W to
 * it that is still alive and has a callback C gets C called once, and
 * CPython drops W's reference to C (clear_weakref). What C does is not in
 * the snapshot; we model the cleanup all these libraries do: C removes one
 * container entry that belongs to it.
 *  - The owners of the entry are the objects C is bound to: a bound
 *    method's __self__ (a method's references after __func__), what a
 *    closure's cells hold, or C itself for a callable instance (finalize);
 *    an owner counts when it holds W (W within 3 strong references of it,
 *    or of the value it keys in a dict).
 *  - With owners, each owner H that has exactly one live holder is
 *    released: that reference is dropped, with its dict entry's other half
 *    (key and value go together). An owner held twice (by the map and by a
 *    root elsewhere) is not released: we cannot know which reference the
 *    callback removes, so we keep both and under-count, never over-count.
 *  - Without owners (WeakValueDictionary's remove function holds only a
 *    weakref to its dict), W itself is the entry: released the same way.
 * Then reachability from the roots, without X and the dropped references,
 * is computed again: what became unreachable is freed, which may kill more
 * referents, so this repeats until no callback is left to run.
 *
 * Cost: nothing unless a weakref with a callback points into X's retained
 * set (then freeable == retained, answered from the dominator tree). Else
 * one BFS over the reachable graph per round (typically 3: X dropped,
 * callbacks dropped, entries removed) and one pass over the edges per
 * release round. Memory: 8 bytes per object (dominator-tree preorder
 * interval), 1 bit per object and per edge, 4 bytes per object for the BFS
 * queue, while a context exists.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/retention_internal.h"
#include "util/alloc.h"

/* How far an owner may be from the weakref it holds (owner -> __dict__ ->
 * attribute; owner -> dict value -> attribute) and how many objects that
 * small search may look at. */
#define OWNER_DEPTH 3
#define OWNER_VISIT 512
/* Owners considered per callback (a closure's cells). */
#define MAX_OWNERS 8

typedef struct wref {
	uint32_t node;        /* the weakref object */
	uint32_t referent;
	uint32_t cb_edge;     /* its strong __callback__ edge */
} wref;

struct hs_freeable {
	const hs_snapshot *s;
	const hs_graph *g;
	const hs_dominators *d;
	uint32_t n;
	wref *wr;             /* reachable weakrefs with a callback and a reachable referent */
	uint32_t nwr;
	uint32_t *tin, *tout; /* dominator-tree preorder interval; NULL until needed */
	uint32_t *ref_tin;    /* sorted tin of the referents */
	uint32_t *roots;
	uint32_t nroots;
	/* per computation */
	uint64_t *reach, *blocked, *dropped;
	uint32_t *queue;
	uint32_t *drop_list;
	size_t ndrop, cap_drop;
	uint8_t *fired;
};

static inline int bit(const uint64_t *b, uint32_t i)
{
	return (int)(b[i >> 6] >> (i & 63) & 1);
}

static inline void set_bit(uint64_t *b, uint32_t i)
{
	b[i >> 6] |= 1ull << (i & 63);
}

static int is_name(const hs_snapshot *s, const hs_graph *g, uint32_t e, const char *name)
{
	if (HS_EDGE_LABEL(g->edge_kind[e]) != HS_LABEL_NAME)
		return 0;
	const char *t = hs_snapshot_string(s, g->edge_label[e], NULL);
	return t && !strcmp(t, name);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

int hs_freeable_new(hs_freeable **out, const hs_snapshot *s, const hs_dominators *d)
{
	*out = NULL;
	const hs_graph *g = hs_snapshot_graph(s);
	HS_TRY(hs_retention__check_graph(g, "freeable sizes"));
	hs_freeable *f = hs_calloc(1, sizeof(*f));
	if (!f)
		return HS_ENOMEM;
	f->s = s;
	f->g = g;
	f->d = d;
	f->n = g->node_count;
	const uint32_t *idom = hs_dominators_idom_array(d);
	size_t cap = 0;
	/* weakrefs: the only objects with weak edges */
	for (uint32_t v = 0; v < f->n; v++) {
		uint32_t ref = HS_NO_NODE, cb = HS_NO_EDGE;
		for (uint32_t e = g->edge_start[v]; e < g->edge_start[v + 1]; e++)
			if (HS_EDGE_KIND(g->edge_kind[e]) == HS_EDGE_WEAK)
				ref = g->edge_target[e];
		if (ref == HS_NO_NODE)
			continue; /* not a weakref: no label text compared */
		for (uint32_t e = g->edge_start[v]; e < g->edge_start[v + 1] && cb == HS_NO_EDGE; e++)
			if (HS_EDGE_KIND(g->edge_kind[e]) != HS_EDGE_WEAK && is_name(s, g, e, "__callback__"))
				cb = e;
		if (cb == HS_NO_EDGE || idom[v] == HS_NO_NODE ||
		    idom[ref] == HS_NO_NODE)
			continue;
		if (f->nwr == cap) {
			cap = cap ? 2 * cap : 64;
			wref *nw = hs_reallocarray(f->wr, cap, sizeof(wref));
			if (!nw) {
				hs_freeable_free(f);
				return HS_ENOMEM;
			}
			f->wr = nw;
		}
		f->wr[f->nwr++] = (wref){ v, ref, cb };
	}
	*out = f;
	return 0;
}

void hs_freeable_free(hs_freeable *f)
{
	if (!f)
		return;
	hs_free(f->wr);
	hs_free(f->tin);
	hs_free(f->tout);
	hs_free(f->ref_tin);
	hs_free(f->roots);
	hs_free(f->reach);
	hs_free(f->blocked);
	hs_free(f->dropped);
	hs_free(f->queue);
	hs_free(f->drop_list);
	hs_free(f->fired);
	hs_free(f);
}

uint32_t hs_freeable_callbacks(const hs_freeable *f)
{
	return f->nwr;
}

/* Preorder intervals of the dominator tree: v dominates w iff
 * tin[v] <= tin[w] < tout[v]. */
static int intervals(hs_freeable *f)
{
	if (f->tin)
		return 0;
	uint32_t n = f->n;
	f->tin = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	f->tout = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	uint32_t *st = hs_reallocarray(NULL, (size_t)n + 1, sizeof(uint32_t));
	uint32_t *cur = hs_reallocarray(NULL, (size_t)n + 1, sizeof(uint32_t));
	f->ref_tin = hs_reallocarray(NULL, f->nwr ? f->nwr : 1, sizeof(uint32_t));
	if (!f->tin || !f->tout || !st || !cur || !f->ref_tin) {
		hs_free(st);
		hs_free(cur);
		hs_free(f->tin);
		f->tin = NULL;
		return HS_ENOMEM;
	}
	uint32_t t = 0, sp = 0;
	size_t nc;
	const uint32_t *kids = hs_dominators_children(f->d, HS_DOM_SUPERROOT, &nc);
	/* stack of (node, next child index); the super-root is HS_DOM_SUPERROOT */
	st[sp] = HS_DOM_SUPERROOT;
	cur[sp++] = 0;
	while (sp) {
		uint32_t v = st[sp - 1];
		kids = hs_dominators_children(f->d, v, &nc);
		if (cur[sp - 1] == nc) {
			if (v != HS_DOM_SUPERROOT)
				f->tout[v] = t;
			sp--;
			continue;
		}
		uint32_t c = kids[cur[sp - 1]++];
		f->tin[c] = t++;
		st[sp] = c;
		cur[sp++] = 0;
	}
	hs_free(st);
	hs_free(cur);
	for (uint32_t i = 0; i < f->nwr; i++)
		f->ref_tin[i] = f->tin[f->wr[i].referent];
	qsort(f->ref_tin, f->nwr, sizeof(uint32_t), cmp_u32);
	return 0;
}

/* Some referent r with lo <= tin[r] < hi. */
static int referent_in(const hs_freeable *f, uint32_t lo, uint32_t hi)
{
	size_t a = 0, b = f->nwr;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (f->ref_tin[m] < lo)
			a = m + 1;
		else
			b = m;
	}
	return a < f->nwr && f->ref_tin[a] < hi;
}

static int drop(hs_freeable *f, uint32_t e)
{
	if (bit(f->dropped, e))
		return 0;
	if (f->ndrop == f->cap_drop) {
		size_t c = f->cap_drop ? 2 * f->cap_drop : 256;
		uint32_t *nl = hs_reallocarray(f->drop_list, c, sizeof(uint32_t));
		if (!nl)
			return HS_ENOMEM;
		f->drop_list = nl;
		f->cap_drop = c;
	}
	set_bit(f->dropped, e);
	f->drop_list[f->ndrop++] = e;
	return 0;
}

/* Reachability from the roots over strong, not dropped edges, never
 * entering a blocked object. */
static void bfs(hs_freeable *f)
{
	const hs_graph *g = f->g;
	const uint32_t *es = g->edge_start, *et = g->edge_target;
	const uint8_t *ek = g->edge_kind;
	uint64_t *reach = f->reach;
	memset(reach, 0, ((size_t)f->n / 64 + 1) * sizeof(uint64_t));
	uint32_t head = 0, tail = 0;
	for (uint32_t k = 0; k < f->nroots; k++) {
		uint32_t r = f->roots[k];
		if (bit(reach, r) || bit(f->blocked, r))
			continue;
		set_bit(reach, r);
		f->queue[tail++] = r;
	}
	while (head < tail) {
		uint32_t v = f->queue[head++];
		for (uint32_t e = es[v]; e < es[v + 1]; e++) {
			uint32_t w = et[e];
			if (bit(reach, w) || HS_EDGE_KIND(ek[e]) == HS_EDGE_WEAK || bit(f->blocked, w) ||
			    bit(f->dropped, e))
				continue;
			set_bit(reach, w);
			f->queue[tail++] = w;
		}
	}
}

static inline int freed(const hs_freeable *f, const uint32_t *idom, uint32_t v)
{
	return idom[v] != HS_NO_NODE && !bit(f->reach, v);
}

/* The other half of dict entry edge e (value <-> key), or HS_NO_EDGE. */
static uint32_t partner(const hs_graph *g, uint32_t src, uint32_t e)
{
	unsigned lk = HS_EDGE_LABEL(g->edge_kind[e]);
	if (lk == HS_LABEL_KEY && e > g->edge_start[src] &&
	    HS_EDGE_LABEL(g->edge_kind[e - 1]) == HS_LABEL_DICT_KEY &&
	    g->edge_target[e - 1] == g->edge_label[e])
		return e - 1;
	if (lk == HS_LABEL_DICT_KEY && e + 1 < g->edge_start[src + 1] &&
	    HS_EDGE_LABEL(g->edge_kind[e + 1]) == HS_LABEL_KEY &&
	    g->edge_label[e + 1] == g->edge_target[e])
		return e + 1;
	return HS_NO_EDGE;
}

/* W within OWNER_DEPTH strong references of `from`. */
static int holds(const hs_freeable *f, uint32_t from, uint32_t w)
{
	const hs_graph *g = f->g;
	uint32_t seen[OWNER_VISIT];
	uint32_t nseen = 0, lo = 0;
	seen[nseen++] = from;
	for (int depth = 0; depth < OWNER_DEPTH; depth++) {
		uint32_t hi = nseen;
		for (uint32_t i = lo; i < hi; i++) {
			uint32_t v = seen[i];
			for (uint32_t e = g->edge_start[v]; e < g->edge_start[v + 1]; e++) {
				if (HS_EDGE_KIND(g->edge_kind[e]) == HS_EDGE_WEAK)
					continue;
				uint32_t t = g->edge_target[e];
				if (t == w)
					return 1;
				if (nseen == OWNER_VISIT)
					return 0;
				int dup = 0;
				for (uint32_t k = 0; k < nseen && !dup; k++)
					dup = seen[k] == t;
				if (!dup)
					seen[nseen++] = t;
			}
		}
		lo = hi;
	}
	return 0;
}

/* What a callback is bound to: up to MAX_OWNERS candidates. */
static uint32_t bound_to(const hs_freeable *f, uint32_t cb, uint32_t *out)
{
	const hs_graph *g = f->g;
	const char *tn = hs_snapshot_node_type_name(f->s, cb);
	uint32_t k = 0, es = g->edge_start[cb], ee = g->edge_start[cb + 1];
	if (!strcmp(tn, "method") || !strcmp(tn, "builtin_function_or_method")) {
		/* method_traverse visits __func__ then __self__; a builtin its
		 * __self__ then its module */
		for (uint32_t e = es + (tn[0] == 'm'); e < ee && k < MAX_OWNERS; e++)
			if (HS_EDGE_KIND(g->edge_kind[e]) != HS_EDGE_WEAK)
				out[k++] = g->edge_target[e];
	} else if (!strcmp(tn, "function")) {
		for (uint32_t e = es; e < ee; e++) {
			if (!is_name(f->s, g, e, "__closure__"))
				continue;
			uint32_t tup = g->edge_target[e];
			for (uint32_t ce = g->edge_start[tup]; ce < g->edge_start[tup + 1]; ce++) {
				uint32_t cell = g->edge_target[ce];
				for (uint32_t x = g->edge_start[cell]; x < g->edge_start[cell + 1] && k < MAX_OWNERS; x++)
					if (HS_EDGE_KIND(g->edge_kind[x]) != HS_EDGE_WEAK)
						out[k++] = g->edge_target[x];
			}
		}
	} else {
		out[k++] = cb; /* a callable instance: weakref.finalize */
	}
	return k;
}

/* Candidates whose entries the fired callbacks remove; for each, its live
 * holders are counted in one pass over the edges. */
typedef struct cand {
	uint32_t node;
	uint32_t holders;
	uint32_t edge;       /* the holder's edge when there is one */
	uint32_t src;
} cand;

static int cmp_cand(const void *a, const void *b)
{
	return cmp_u32(&((const cand *)a)->node, &((const cand *)b)->node);
}

static cand *find_cand(cand *c, size_t n, uint32_t node)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (c[m].node < node)
			a = m + 1;
		else
			b = m;
	}
	return a < n && c[a].node == node ? &c[a] : NULL;
}

/* Release the entry of `c` (one holder): drop its reference and the other
 * half of its dict entry. */
static int release(hs_freeable *f, const cand *c, uint64_t *entries)
{
	if (c->holders != 1 || c->edge == HS_NO_EDGE)
		return 0;
	HS_TRY(drop(f, c->edge));
	uint32_t p = partner(f->g, c->src, c->edge);
	if (p != HS_NO_EDGE)
		HS_TRY(drop(f, p));
	(*entries)++;
	return 0;
}

static int release_round(hs_freeable *f, const uint32_t *pending, size_t np, uint64_t *entries)
{
	const hs_graph *g = f->g;
	int rc = HS_ENOMEM;
	size_t cap = np * (MAX_OWNERS + 1), nc = 0;
	cand *c = hs_reallocarray(NULL, cap ? cap : 1, sizeof(cand));
	uint64_t *mark = hs_calloc((size_t)f->n / 64 + 1, sizeof(uint64_t));
	if (!c || !mark)
		goto done;
	uint32_t own[MAX_OWNERS];
	for (size_t i = 0; i < np; i++) {
		const wref *w = &f->wr[pending[i]];
		uint32_t no = bound_to(f, g->edge_target[w->cb_edge], own);
		c[nc++] = (cand){ w->node, 0, HS_NO_EDGE, 0 };
		for (uint32_t k = 0; k < no; k++)
			if (bit(f->reach, own[k]))
				c[nc++] = (cand){ own[k], 0, HS_NO_EDGE, 0 };
	}
	qsort(c, nc, sizeof(cand), cmp_cand);
	size_t u = 0;
	for (size_t i = 0; i < nc; i++)
		if (!u || c[u - 1].node != c[i].node)
			c[u++] = c[i];
	nc = u;
	for (size_t i = 0; i < nc; i++)
		set_bit(mark, c[i].node);
	/* holders: live sources' strong edges not dropped, and roots */
	for (uint32_t k = 0; k < f->nroots; k++)
		if (bit(mark, f->roots[k]))
			find_cand(c, nc, f->roots[k])->holders += 2; /* never released */
	for (uint32_t v = 0; v < f->n; v++) {
		if (!bit(f->reach, v))
			continue;
		for (uint32_t e = g->edge_start[v]; e < g->edge_start[v + 1]; e++) {
			uint32_t t = g->edge_target[e];
			if (!bit(mark, t) || HS_EDGE_KIND(g->edge_kind[e]) == HS_EDGE_WEAK ||
			    bit(f->dropped, e))
				continue;
			cand *x = find_cand(c, nc, t);
			if (x->holders++ == 0) {
				x->edge = e;
				x->src = v;
			}
		}
	}
	for (size_t i = 0; i < np; i++) {
		const wref *w = &f->wr[pending[i]];
		uint32_t no = bound_to(f, g->edge_target[w->cb_edge], own);
		int owned = 0;
		for (uint32_t k = 0; k < no; k++) {
			cand *h = bit(f->reach, own[k]) ? find_cand(c, nc, own[k]) : NULL;
			if (!h || h->node == w->node)
				continue;
			/* the owner holds W, or the value it keys in a dict does */
			uint32_t pe = h->holders == 1 ? partner(g, h->src, h->edge) : HS_NO_EDGE;
			int has = holds(f, h->node, w->node) ||
			          (pe != HS_NO_EDGE && pe > h->edge && holds(f, g->edge_target[pe], w->node));
			if (!has)
				continue;
			owned = 1;
			if ((rc = release(f, h, entries)) < 0)
				goto done;
		}
		if (!owned && (rc = release(f, find_cand(c, nc, w->node), entries)) < 0)
			goto done;
	}
	rc = 0;
done:
	hs_free(c);
	hs_free(mark);
	return rc;
}

static int prepare(hs_freeable *f)
{
	if (f->reach)
		return 0;
	uint32_t *first = NULL;
	HS_TRY(hs_retention__root_nodes(&f->roots, &first, &f->nroots, f->s));
	hs_free(first);
	size_t words = (size_t)f->n / 64 + 1;
	f->reach = hs_calloc(words, sizeof(uint64_t));
	f->blocked = hs_calloc(words, sizeof(uint64_t));
	f->dropped = hs_calloc((size_t)f->g->edge_count / 64 + 1, sizeof(uint64_t));
	f->queue = hs_reallocarray(NULL, f->n ? f->n : 1, sizeof(uint32_t));
	f->fired = hs_calloc(f->nwr ? f->nwr : 1, 1);
	if (!f->blocked || !f->dropped || !f->queue || !f->fired) {
		hs_free(f->reach);
		f->reach = NULL;
		return HS_ENOMEM;
	}
	return 0;
}

static int cmp_tin(const void *a, const void *b, void *tin)
{
	const uint32_t *t = tin;
	return cmp_u32(&t[*(const uint32_t *)a], &t[*(const uint32_t *)b]);
}

int hs_freeable_compute(hs_freeable_result *out, hs_freeable *f, const uint32_t *nodes,
                        size_t count)
{
	memset(out, 0, sizeof(*out));
	const uint32_t *idom = hs_dominators_idom_array(f->d);
	for (size_t i = 0; i < count; i++)
		HS_RETURN_IF(nodes[i] >= f->n, HS_EINVAL, "hs_freeable_compute: object %u out of range",
		             nodes[i]);
	if (count == 1) {
		out->retained = hs_dominators_retained(f->d, nodes[0]);
		if (!f->nwr || idom[nodes[0]] == HS_NO_NODE) {
			out->freeable = out->retained;
			return 0;
		}
	}
	HS_TRY(intervals(f));
	/* the set's retained size: members not below another member; and
	 * whether a callback's referent is inside */
	uint32_t *sorted = hs_reallocarray(NULL, count ? count : 1, sizeof(uint32_t));
	if (!sorted)
		return HS_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < count; i++)
		if (idom[nodes[i]] != HS_NO_NODE)
			sorted[k++] = nodes[i];
	qsort_r(sorted, k, sizeof(uint32_t), cmp_tin, f->tin);
	uint64_t retained = 0;
	int need = 0;
	uint32_t end = 0;
	for (size_t i = 0; i < k; i++) {
		uint32_t v = sorted[i];
		if (i && f->tin[v] < end)
			continue; /* inside the previous kept member (or the same one) */
		end = f->tout[v];
		retained += hs_dominators_retained(f->d, v);
		need |= referent_in(f, f->tin[v], f->tout[v]);
	}
	out->retained = retained;
	out->freeable = retained;
	if (!need) {
		hs_free(sorted);
		return 0;
	}
	int rc = prepare(f);
	if (rc < 0) {
		hs_free(sorted);
		return rc;
	}
	for (size_t i = 0; i < k; i++)
		set_bit(f->blocked, sorted[i]);
	memset(f->fired, 0, f->nwr);
	uint32_t *pending = hs_reallocarray(NULL, f->nwr, sizeof(uint32_t));
	size_t np = 0;
	if (!pending) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (;;) {
		bfs(f);
		out->rounds++;
		if (np) {
			size_t before = f->ndrop;
			if ((rc = release_round(f, pending, np, &out->entries)) < 0)
				goto done;
			np = 0;
			if (f->ndrop != before)
				continue;
		}
		for (uint32_t i = 0; i < f->nwr; i++) {
			const wref *w = &f->wr[i];
			if (f->fired[i] || !bit(f->reach, w->node) || !freed(f, idom, w->referent))
				continue;
			f->fired[i] = 1;
			out->callbacks++;
			if ((rc = drop(f, w->cb_edge)) < 0)
				goto done;
			pending[np++] = i;
		}
		if (!np)
			break;
	}
	uint64_t bytes = 0;
	for (uint32_t v = 0; v < f->n; v++)
		if (freed(f, idom, v))
			bytes += hs_graph_node_size(f->g, v);
	out->freeable = bytes;
	rc = 0;
done:
	for (size_t i = 0; i < k; i++)
		f->blocked[sorted[i] >> 6] = 0;
	for (size_t i = 0; i < f->ndrop; i++)
		f->dropped[f->drop_list[i] >> 6] = 0;
	f->ndrop = 0;
	hs_free(pending);
	hs_free(sorted);
	return rc;
}
