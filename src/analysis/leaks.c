/*
 * analysis/leaks.c: growth that never stops, across 3+ snapshots, and its
 * root cause (include/heapsnap/leaks.h).
 *
 * Types are matched across files by name (hs_names: one dense id per name
 * over all snapshots), objects by address and type name. Every snapshot
 * gets its dominator tree: reachability (garbage is never a leak), retained
 * sizes of surviving objects, and, in the last one, the holder of each
 * leaking type's new instances.
 *
 * The holder is found without walking each instance's dominator chain
 * (quadratic on a long chain of new objects): the targets are counted at
 * their immediate dominators, then summed bottom-up over the tree in one
 * post-order pass, so acc[v] is the number of targets strictly below v.
 * Objects with acc[v] > half the targets form a chain from the top of the
 * tree down; the first of them in post-order is the deepest.
 */
#include <stdlib.h>
#include <string.h>
#include "heapsnap/leaks.h"
#include "analysis/names_internal.h"
#include "util/alloc.h"

typedef struct run {
	const hs_snapshot *const *s;
	size_t n;
	hs_leaks_options o;
	hs_dominators **dom;
	uint32_t **group;   /* per snapshot: type id -> name id */
	hs_names names;
	uint32_t ng;
	uint64_t *cnt, *byt; /* [n * ng] reachable instances per snapshot and name */
	hs_reach *reach;     /* of the last snapshot */
	hs_freeable *fr;     /* of the last snapshot, made for the first holder */
	uint32_t *post;      /* post-order of the last snapshot's dominator tree */
	size_t npost;
} run;

static uint32_t group_of(const run *r, size_t i, uint32_t node)
{
	return r->group[i][hs_snapshot_graph(r->s[i])->type[node]];
}

/* The node of snapshot i at `address` with the same type name as group g,
 * or HS_NO_NODE. */
static uint32_t match(const run *r, size_t i, uint64_t address, uint32_t g)
{
	uint32_t j = hs_snapshot_find(r->s[i], address);
	if (j == HS_NO_NODE || group_of(r, i, j) != g)
		return HS_NO_NODE;
	return j;
}

static int reachable(const run *r, size_t i, uint32_t node)
{
	return hs_dominators_idom(r->dom[i], node) != HS_NO_NODE;
}

static uint64_t strong_degree(const hs_graph *g, uint32_t v)
{
	uint64_t k = 0;
	for (uint32_t e = g->edge_start[v]; e < g->edge_start[v + 1]; e++)
		k += HS_EDGE_KIND(g->edge_kind[e]) != HS_EDGE_WEAK;
	return k;
}

/* Post-order of the dominator tree of the last snapshot (explicit stack). */
static int build_post(run *r)
{
	const hs_dominators *d = r->dom[r->n - 1];
	const hs_dominators_stats *st = hs_dominators_stats_get(d);
	size_t total = (size_t)st->reachable_count;
	r->post = hs_reallocarray(NULL, total ? total : 1, sizeof(uint32_t));
	uint32_t *stk = hs_reallocarray(NULL, total + 1, sizeof(uint32_t));
	size_t *pos = hs_reallocarray(NULL, total + 1, sizeof(size_t));
	if (!r->post || !stk || !pos) {
		hs_free(stk);
		hs_free(pos);
		return HS_ENOMEM;
	}
	size_t sp = 0;
	stk[sp] = HS_DOM_SUPERROOT;
	pos[sp++] = 0;
	while (sp) {
		uint32_t v = stk[sp - 1];
		size_t nc;
		const uint32_t *ch = hs_dominators_children(d, v, &nc);
		if (pos[sp - 1] < nc && sp <= total) {
			stk[sp] = ch[pos[sp - 1]++];
			pos[sp++] = 0;
			continue;
		}
		sp--;
		if (v != HS_DOM_SUPERROOT && r->npost < total)
			r->post[r->npost++] = v;
	}
	hs_free(stk);
	hs_free(pos);
	return 0;
}

/* during the sort, count[] and bytes[] hold only the first and last figures */
static int cmp_type(const void *pa, const void *pb)
{
	const hs_leak_type *a = pa, *b = pb;
	int64_t ba = (int64_t)(a->bytes[1] - a->bytes[0]), bb = (int64_t)(b->bytes[1] - b->bytes[0]);
	if (ba != bb)
		return ba > bb ? -1 : 1;
	int64_t ca = (int64_t)(a->count[1] - a->count[0]), cb = (int64_t)(b->count[1] - b->count[0]);
	if (ca != cb)
		return ca > cb ? -1 : 1;
	return strcmp(a->name, b->name);
}

typedef struct obj_cand {
	uint32_t node;
	unsigned grows;
	uint64_t address;
	int64_t deg_growth, ret_growth;
} obj_cand;

static int cmp_obj(const void *pa, const void *pb)
{
	const obj_cand *a = pa, *b = pb;
	int ra = !!(a->grows & HS_LEAK_REFERENTS), rb = !!(b->grows & HS_LEAK_REFERENTS);
	if (ra != rb)
		return ra ? -1 : 1;
	if (ra && a->deg_growth != b->deg_growth)
		return a->deg_growth > b->deg_growth ? -1 : 1;
	if (a->ret_growth != b->ret_growth)
		return a->ret_growth > b->ret_growth ? -1 : 1;
	return (a->address > b->address) - (a->address < b->address);
}

/* Root cause of leaking type `t` (name id g) in the last snapshot. */
static int root_cause(run *r, hs_leak_type *t, uint32_t g, uint64_t *acc, uint64_t *accb)
{
	const hs_snapshot *L = r->s[r->n - 1];
	const hs_graph *gl = hs_snapshot_graph(L);
	const hs_dominators *d = r->dom[r->n - 1];
	size_t k = 0, cap = 64;
	uint32_t *tg = hs_reallocarray(NULL, cap, sizeof(uint32_t));
	if (!tg)
		return HS_ENOMEM;
	int rc = HS_ENOMEM;
	/* targets: the new instances; for a type growing in bytes only, the
	 * instances that grew in place first (a dict that keeps growing), the
	 * new ones only when none grew */
	int order[2] = { 0, 1 };
	if (!(t->grows & HS_LEAK_COUNT))
		order[0] = 1, order[1] = 0;
	for (int oi = 0; oi < 2 && !k; oi++) {
		int pass = order[oi];
		for (uint32_t v = 0; v < gl->node_count; v++) {
			if (group_of(r, r->n - 1, v) != g || !reachable(r, r->n - 1, v))
				continue;
			uint32_t j = match(r, r->n - 2, gl->address[v], g);
			int pick = pass == 0 ? j == HS_NO_NODE
			                     : j != HS_NO_NODE && hs_graph_node_size(gl, v) >
			                             hs_graph_node_size(hs_snapshot_graph(r->s[r->n - 2]), j);
			if (!pick)
				continue;
			if (k == cap) {
				uint32_t *nt = hs_reallocarray(tg, cap * 2, sizeof(uint32_t));
				if (!nt)
					goto done;
				tg = nt;
				cap *= 2;
			}
			tg[k++] = v;
			if (pass == 0) {
				t->new_count++;
				t->new_bytes += hs_graph_node_size(gl, v);
			}
		}
	}
	hs_paths_options po = HS_PATHS_OPTIONS_INIT;
	po.limit = r->o.path_limit;
	if ((rc = hs_paths_find(&t->paths, L, r->reach, tg, k, &po)) < 0)
		goto done;

	/* the holder */
	t->holder.node = HS_NO_NODE;
	if (k) {
		for (size_t i = 0; i < r->npost; i++)
			acc[r->post[i]] = accb[r->post[i]] = 0;
		/* targets counted at their idom; then children into parents */
		/* new instances count at their idom (the holder is above them);
		 * instances that grew in place count at themselves (a growing
		 * list is its own holder) */
		int in_place = t->new_count == 0;
		for (size_t i = 0; i < k; i++) {
			uint32_t p = in_place ? tg[i] : hs_dominators_idom(d, tg[i]);
			if (p == HS_DOM_SUPERROOT || p == HS_NO_NODE)
				continue;
			acc[p]++;
			accb[p] += hs_graph_node_size(gl, tg[i]);
		}
		uint32_t best = HS_NO_NODE;
		for (size_t i = 0; i < r->npost; i++) {
			uint32_t v = r->post[i];
			if (best == HS_NO_NODE && acc[v] * 2 > k)
				best = v;
			uint32_t p = hs_dominators_idom(d, v);
			if (p != HS_DOM_SUPERROOT && p != HS_NO_NODE) {
				acc[p] += acc[v];
				accb[p] += accb[v];
			}
		}
		if (best != HS_NO_NODE) {
			hs_leak_holder *h = &t->holder;
			h->node = best;
			h->address = gl->address[best];
			h->type = gl->type[best];
			h->held_count = acc[best];
			h->held_bytes = accb[best];
			h->retained_at = hs_calloc(r->n, sizeof(uint64_t));
			if (!h->retained_at) {
				rc = HS_ENOMEM;
				goto done;
			}
			uint32_t hg = group_of(r, r->n - 1, best);
			for (size_t i = 0; i < r->n; i++) {
				uint32_t j = i == r->n - 1 ? best : match(r, i, h->address, hg);
				h->retained_at[i] = j == HS_NO_NODE || !reachable(r, i, j)
				                    ? HS_LEAK_ABSENT : hs_dominators_retained(r->dom[i], j);
			}
			hs_freeable_result fres;
			if ((!r->fr && (rc = hs_freeable_new(&r->fr, L, d)) < 0) ||
			    (rc = hs_freeable_compute(&fres, r->fr, &best, 1)) < 0)
				goto done;
			h->freeable = fres.freeable;
			po.limit = 1;
			if ((rc = hs_paths_find(&h->path, L, r->reach, &best, 1, &po)) < 0)
				goto done;
		}
	}
	rc = 0;
done:
	hs_free(tg);
	return rc;
}

static int growing_objects(run *r, hs_leaks *l)
{
	const size_t n = r->n;
	const hs_graph *gl = hs_snapshot_graph(r->s[n - 1]);
	size_t k = 0, cap = 16;
	obj_cand *c = hs_reallocarray(NULL, cap, sizeof(obj_cand));
	uint64_t *deg = hs_calloc(n, sizeof(uint64_t)), *ret = hs_calloc(n, sizeof(uint64_t));
	int rc = HS_ENOMEM;
	if (!c || !deg || !ret)
		goto done;
	uint64_t minb = r->o.min_bytes ? r->o.min_bytes : 1;
	for (uint32_t v = 0; v < gl->node_count; v++) {
		if (!reachable(r, n - 1, v))
			continue;
		uint32_t g = group_of(r, n - 1, v);
		unsigned grows = HS_LEAK_REFERENTS | HS_LEAK_RETAINED;
		uint32_t j = v;
		/* newest first: most objects fail at the last interval */
		for (size_t i = n; i-- > 0 && grows;) {
			if (i != n - 1 && ((j = match(r, i, gl->address[v], g)) == HS_NO_NODE ||
			                   !reachable(r, i, j))) {
				grows = 0;
				break;
			}
			deg[i] = strong_degree(hs_snapshot_graph(r->s[i]), j);
			ret[i] = hs_dominators_retained(r->dom[i], j);
			if (i != n - 1) {
				if (!(deg[i + 1] > deg[i]))
					grows &= ~HS_LEAK_REFERENTS;
				if (!(ret[i + 1] >= ret[i] + minb))
					grows &= ~HS_LEAK_RETAINED;
			}
		}
		if (!grows)
			continue;
		if (k == cap) {
			obj_cand *nc = hs_reallocarray(c, cap * 2, sizeof(obj_cand));
			if (!nc)
				goto done;
			c = nc;
			cap *= 2;
		}
		c[k].node = v;
		c[k].grows = grows;
		c[k].address = gl->address[v];
		c[k].deg_growth = (int64_t)(deg[n - 1] - deg[0]);
		c[k].ret_growth = (int64_t)(ret[n - 1] - ret[0]);
		k++;
	}
	qsort(c, k, sizeof(*c), cmp_obj);
	l->growing_objects = k;
	size_t keep = r->o.top_objects && k > r->o.top_objects ? r->o.top_objects : k;
	l->objects = hs_calloc(keep ? keep : 1, sizeof(hs_leak_object));
	if (!l->objects)
		goto done;
	for (size_t x = 0; x < keep; x++) {
		hs_leak_object *o = &l->objects[l->object_count++];
		uint32_t v = c[x].node;
		o->address = c[x].address;
		o->node = v;
		o->grows = c[x].grows;
		o->type = hs_strdup(hs_snapshot_node_type_name(r->s[n - 1], v));
		o->out_degree = hs_calloc(n, sizeof(uint64_t));
		o->retained = hs_calloc(n, sizeof(uint64_t));
		if (!o->type || !o->out_degree || !o->retained)
			goto done;
		uint32_t g = group_of(r, n - 1, v);
		for (size_t i = 0; i < n; i++) {
			uint32_t j = i == n - 1 ? v : match(r, i, o->address, g);
			o->out_degree[i] = strong_degree(hs_snapshot_graph(r->s[i]), j);
			o->retained[i] = hs_dominators_retained(r->dom[i], j);
		}
		hs_paths_options po = HS_PATHS_OPTIONS_INIT;
		po.limit = 1;
		if ((rc = hs_paths_find(&o->path, r->s[n - 1], r->reach, &v, 1, &po)) < 0)
			goto done;
		rc = HS_ENOMEM;
	}
	rc = 0;
done:
	hs_free(c);
	hs_free(deg);
	hs_free(ret);
	return rc;
}

int hs_leaks_find(hs_leaks **out, const hs_snapshot *const *snaps, size_t n,
                  const hs_leaks_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_LEAKS_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_leaks_find: unknown options version %u",
		                    opts->version);
	HS_RETURN_IF(n < 3, HS_EINVAL,
	             "finding leaks needs 3 or more snapshots of one process (%zu given): "
	             "growth in every interval needs 2 intervals at least", n);
	run r;
	memset(&r, 0, sizeof(r));
	r.s = snaps;
	r.n = n;
	hs_leaks_options defaults = HS_LEAKS_OPTIONS_INIT;
	r.o = opts ? *opts : defaults;
	int rc = HS_ENOMEM;
	uint64_t *acc = NULL, *accb = NULL;
	hs_leaks *l = hs_calloc(1, sizeof(*l));
	r.dom = hs_calloc(n, sizeof(*r.dom));
	r.group = hs_calloc(n, sizeof(*r.group));
	if (!l || !r.dom || !r.group)
		goto done;
	l->snapshot_count = n;
	l->reachable_count = hs_calloc(n, sizeof(uint64_t));
	l->reachable_bytes = hs_calloc(n, sizeof(uint64_t));
	if (!l->reachable_count || !l->reachable_bytes)
		goto done;

	hs_dominators_options dopt = HS_DOMINATORS_OPTIONS_INIT;
	dopt.type_sizes = 0;
	for (size_t i = 0; i < n; i++) {
		if ((rc = hs_dominators_compute(&r.dom[i], snaps[i], &dopt)) < 0 ||
		    (rc = hs_names__map_types(&r.group[i], &r.names, snaps[i], HS_GROUP_TYPE)) < 0)
			goto done;
		const hs_dominators_stats *st = hs_dominators_stats_get(r.dom[i]);
		l->reachable_count[i] = st->reachable_count;
		l->reachable_bytes[i] = st->reachable_bytes;
	}
	rc = HS_ENOMEM;
	r.ng = r.names.count;
	r.cnt = hs_calloc(n * (r.ng ? r.ng : 1), sizeof(uint64_t));
	r.byt = hs_calloc(n * (r.ng ? r.ng : 1), sizeof(uint64_t));
	if (!r.cnt || !r.byt)
		goto done;
	for (size_t i = 0; i < n; i++) {
		const hs_graph *g = hs_snapshot_graph(snaps[i]);
		for (uint32_t v = 0; v < g->node_count; v++) {
			if (!reachable(&r, i, v))
				continue;
			uint32_t gi = r.group[i][g->type[v]];
			r.cnt[i * r.ng + gi]++;
			r.byt[i * r.ng + gi] += hs_graph_node_size(g, v);
		}
	}

	/* leaking types */
	uint64_t minc = r.o.min_count ? r.o.min_count : 1, minb = r.o.min_bytes ? r.o.min_bytes : 1;
	uint32_t *leak = hs_reallocarray(NULL, r.ng ? r.ng : 1, sizeof(uint32_t));
	unsigned *how = hs_reallocarray(NULL, r.ng ? r.ng : 1, sizeof(unsigned));
	hs_leak_type *all = NULL;
	size_t nl = 0;
	if (!leak || !how) {
		hs_free(leak);
		hs_free(how);
		goto done;
	}
	for (uint32_t gi = 0; gi < r.ng; gi++) {
		unsigned grows = HS_LEAK_COUNT | HS_LEAK_BYTES;
		for (size_t i = 0; i + 1 < n; i++) {
			uint64_t c0 = r.cnt[i * r.ng + gi], c1 = r.cnt[(i + 1) * r.ng + gi];
			uint64_t b0 = r.byt[i * r.ng + gi], b1 = r.byt[(i + 1) * r.ng + gi];
			if (!(c1 >= c0 + minc))
				grows &= ~HS_LEAK_COUNT;
			if (!(b1 >= b0 + minb))
				grows &= ~HS_LEAK_BYTES;
		}
		if (grows) {
			how[nl] = grows;
			leak[nl++] = gi;
		}
	}
	/* sort on first/last figures, then describe the top ones */
	all = hs_calloc(nl ? nl : 1, sizeof(hs_leak_type));
	uint64_t *fl = hs_calloc(4 * (nl ? nl : 1), sizeof(uint64_t));
	if (!all || !fl) {
		hs_free(leak);
		hs_free(how);
		hs_free(all);
		hs_free(fl);
		goto done;
	}
	for (size_t x = 0; x < nl; x++) {
		uint32_t gi = leak[x];
		/* temporary 2-entry arrays: first and last, for cmp_type */
		all[x].count = &fl[4 * x];
		all[x].bytes = &fl[4 * x + 2];
		all[x].count[0] = r.cnt[gi];
		all[x].count[1] = r.cnt[(n - 1) * r.ng + gi];
		all[x].bytes[0] = r.byt[gi];
		all[x].bytes[1] = r.byt[(n - 1) * r.ng + gi];
		all[x].name = (char *)hs_names__get(&r.names, gi);
		all[x].grows = how[x];
		all[x].new_count = gi; /* carries the name id through the sort */
	}
	qsort(all, nl, sizeof(*all), cmp_type);
	l->leaking_types = nl;
	size_t keep = r.o.top_types && nl > r.o.top_types ? r.o.top_types : nl;
	l->types = hs_calloc(keep ? keep : 1, sizeof(hs_leak_type));
	if (!l->types) {
		hs_free(leak);
		hs_free(how);
		hs_free(all);
		hs_free(fl);
		goto done;
	}
	for (size_t x = 0; x < keep; x++) {
		hs_leak_type *t = &l->types[l->type_count];
		uint32_t gi = (uint32_t)all[x].new_count;
		t->grows = all[x].grows;
		t->name = hs_strdup(all[x].name);
		t->count = hs_calloc(n, sizeof(uint64_t));
		t->bytes = hs_calloc(n, sizeof(uint64_t));
		t->holder.node = HS_NO_NODE;
		l->type_count++;
		if (!t->name || !t->count || !t->bytes)
			break;
		for (size_t i = 0; i < n; i++) {
			t->count[i] = r.cnt[i * r.ng + gi];
			t->bytes[i] = r.byt[i * r.ng + gi];
		}
	}
	hs_free(leak);
	hs_free(how);
	/* name ids again, in the kept order */
	uint32_t *kept_gi = hs_reallocarray(NULL, keep ? keep : 1, sizeof(uint32_t));
	for (size_t x = 0; kept_gi && x < keep; x++)
		kept_gi[x] = (uint32_t)all[x].new_count;
	hs_free(all);
	hs_free(fl);
	if (!kept_gi)
		goto done;
	for (size_t x = 0; x < l->type_count; x++)
		if (!l->types[x].name || !l->types[x].count || !l->types[x].bytes) {
			hs_free(kept_gi);
			goto done;
		}

	if ((rc = hs_reach_compute(&r.reach, snaps[n - 1], NULL)) < 0 ||
	    (keep && (rc = build_post(&r)) < 0)) {
		hs_free(kept_gi);
		goto done;
	}
	rc = HS_ENOMEM;
	if (keep) {
		uint32_t nn = hs_snapshot_graph(snaps[n - 1])->node_count;
		acc = hs_calloc(nn ? nn : 1, sizeof(uint64_t));
		accb = hs_calloc(nn ? nn : 1, sizeof(uint64_t));
		if (!acc || !accb) {
			hs_free(kept_gi);
			goto done;
		}
	}
	for (size_t x = 0; x < l->type_count; x++)
		if ((rc = root_cause(&r, &l->types[x], kept_gi[x], acc, accb)) < 0) {
			hs_free(kept_gi);
			goto done;
		}
	hs_free(kept_gi);
	if ((rc = growing_objects(&r, l)) < 0)
		goto done;
	l->found = l->leaking_types > 0 || l->growing_objects > 0;
	rc = 0;
done:
	for (size_t i = 0; r.dom && i < n; i++)
		hs_dominators_free(r.dom[i]);
	for (size_t i = 0; r.group && i < n; i++)
		hs_free(r.group[i]);
	hs_free(r.dom);
	hs_free(r.group);
	hs_names__release(&r.names);
	hs_free(r.cnt);
	hs_free(r.byt);
	hs_reach_free(r.reach);
	hs_freeable_free(r.fr);
	hs_free(r.post);
	hs_free(acc);
	hs_free(accb);
	if (rc < 0) {
		hs_leaks_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void hs_leaks_free(hs_leaks *l)
{
	if (!l)
		return;
	for (size_t i = 0; l->types && i < l->type_count; i++) {
		hs_leak_type *t = &l->types[i];
		hs_free(t->name);
		hs_free(t->count);
		hs_free(t->bytes);
		hs_paths_free(t->paths);
		hs_free(t->holder.retained_at);
		hs_paths_free(t->holder.path);
	}
	for (size_t i = 0; l->objects && i < l->object_count; i++) {
		hs_leak_object *o = &l->objects[i];
		hs_free(o->type);
		hs_free(o->out_degree);
		hs_free(o->retained);
		hs_paths_free(o->path);
	}
	hs_free(l->types);
	hs_free(l->objects);
	hs_free(l->reachable_count);
	hs_free(l->reachable_bytes);
	hs_free(l);
}
