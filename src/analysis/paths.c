/*
 * analysis/paths.c: shortest retention paths, aggregated.
 *
 * Each target's path is read off the BFS tree of hs_reach (parent edges,
 * roots first in root order): root object, then one edge per step. Paths
 * are grouped by a signature: the root's kind, name, detail and the type of
 * the root object, then per step the label kind, the label (string id, or
 * the attribute name's text) and the type of the object reached. Dict keys
 * and indexes are compared as classes only, so 1000 sessions held in one
 * dict under 1000 keys are one group. A 64-bit hash of the signature finds
 * the group; the member's steps are then compared with the group's first
 * member, so hash collisions never merge different paths.
 *
 * Per group and step, the number of distinct objects is counted with a
 * stamp array (one u32 per object): an object counts when its stamp is not
 * the current (group, step) stamp yet.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/retention_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

typedef struct member {
	uint32_t target;
	uint32_t root_node;  /* the root object the path starts at */
	uint32_t root;       /* root index */
	uint32_t off, len;   /* kept edges in the arena, root side first */
	uint32_t elided;     /* edges were cut (max_depth) */
	uint32_t group;
} member;

typedef struct paths_run {
	const hs_snapshot *s;
	const hs_graph *g;
	const hs_reach *reach;
	member *mem;
	size_t nmem;
	uint32_t *arena;
	size_t arena_len, arena_cap;
	uint32_t *scratch;   /* one path, target side first */
	size_t scratch_cap;
	/* with max_depth: per node, its BFS ancestor at depth max_depth (or
	 * itself when shallower), so a deep target's kept steps are found
	 * without walking its whole path: linear, even on a 1M-long chain */
	uint32_t *cut;
} paths_run;

/* Canonical label of edge e for the signature: 0 for key and index (any key,
 * any index), the hash of the attribute's text, or the string id. */
static uint64_t label_class(const hs_graph *g, uint32_t e)
{
	uint32_t lab = g->edge_label[e];
	size_t n;
	const char *v;
	switch (HS_EDGE_LABEL(g->edge_kind[e])) {
	case HS_LABEL_ATTR:
		if (lab == HS_NO_NODE || !(v = hs_graph_node_value(g, lab, &n)))
			return UINT64_MAX;
		return hs_hash_bytes(v, n);
	case HS_LABEL_NAME:
	case HS_LABEL_ATTR_NAME:
	case HS_LABEL_LOCAL:
		return lab;
	default:
		return 0;
	}
}

static int same_label_class(const hs_graph *g, uint32_t a, uint32_t b)
{
	unsigned ka = HS_EDGE_LABEL(g->edge_kind[a]), kb = HS_EDGE_LABEL(g->edge_kind[b]);
	if (ka != kb)
		return 0;
	if (ka != HS_LABEL_ATTR)
		return label_class(g, a) == label_class(g, b);
	uint32_t la = g->edge_label[a], lb = g->edge_label[b];
	if (la == lb)
		return 1;
	size_t na, nb;
	const char *va = la == HS_NO_NODE ? NULL : hs_graph_node_value(g, la, &na);
	const char *vb = lb == HS_NO_NODE ? NULL : hs_graph_node_value(g, lb, &nb);
	if (!va || !vb)
		return !va && !vb;
	return na == nb && !memcmp(va, vb, na);
}

/* Same concrete key or index (to decide whether a step is collapsed). */
static int same_label(const hs_graph *g, uint32_t a, uint32_t b)
{
	uint32_t la = g->edge_label[a], lb = g->edge_label[b];
	if (la == lb)
		return 1;
	if (HS_EDGE_LABEL(g->edge_kind[a]) != HS_LABEL_KEY || la == HS_NO_NODE || lb == HS_NO_NODE)
		return 0;
	size_t na, nb;
	const char *va = hs_graph_node_value(g, la, &na), *vb = hs_graph_node_value(g, lb, &nb);
	return va && vb && g->type[la] == g->type[lb] && na == nb && !memcmp(va, vb, na);
}

static uint64_t mix(uint64_t h, uint64_t x)
{
	return hs_hash_u64(h ^ (x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

static uint64_t signature_hash(const paths_run *r, const member *m)
{
	const hs_graph *g = r->g;
	hs_snapshot_root root = hs_retention__root(r->s, m->root);
	uint64_t h = mix(0, root.kind);
	h = mix(h, root.name);
	h = mix(h, root.detail);
	h = mix(h, g->type[m->root_node]);
	const uint32_t *p = r->arena + m->off;
	for (uint32_t k = 0; k < m->len; k++) {
		h = mix(h, HS_EDGE_LABEL(g->edge_kind[p[k]]));
		h = mix(h, label_class(g, p[k]));
		h = mix(h, g->type[g->edge_target[p[k]]]);
	}
	h = mix(h, m->elided ? 1 + (uint64_t)g->type[m->target] : 0);
	return h;
}

static int same_signature(const paths_run *r, const member *a, const member *b)
{
	const hs_graph *g = r->g;
	if (a->len != b->len || a->elided != b->elided)
		return 0;
	hs_snapshot_root ra = hs_retention__root(r->s, a->root);
	hs_snapshot_root rb = hs_retention__root(r->s, b->root);
	if (ra.kind != rb.kind || ra.name != rb.name || ra.detail != rb.detail ||
	    g->type[a->root_node] != g->type[b->root_node])
		return 0;
	if (a->elided && g->type[a->target] != g->type[b->target])
		return 0;
	const uint32_t *pa = r->arena + a->off, *pb = r->arena + b->off;
	for (uint32_t k = 0; k < a->len; k++)
		if (g->type[g->edge_target[pa[k]]] != g->type[g->edge_target[pb[k]]] ||
		    !same_label_class(g, pa[k], pb[k]))
			return 0;
	return 1;
}

/* Walk the BFS parents of member m's target into the arena. */
static int trace(paths_run *r, member *m, uint32_t max_depth)
{
	const hs_graph *g = r->g;
	size_t len = 0;
	uint32_t v = m->target;
	int cut = 0;
	if (r->cut && r->cut[v] != v) {
		v = r->cut[v]; /* at depth max_depth: the steps kept */
		cut = 1;
	}
	for (;;) {
		uint32_t e = hs_reach_parent_edge(r->reach, v);
		if (e == HS_NO_EDGE)
			break;
		if (len == r->scratch_cap) {
			size_t cap = r->scratch_cap ? r->scratch_cap * 2 : 64;
			uint32_t *p = hs_reallocarray(r->scratch, cap, sizeof(uint32_t));
			if (!p)
				return HS_ENOMEM;
			r->scratch = p;
			r->scratch_cap = cap;
		}
		r->scratch[len++] = e;
		v = hs_retention__edge_source(g, e);
	}
	m->root_node = v;
	m->root = hs_reach_root_index(r->reach, v);
	if (m->root == HS_NO_NODE)
		HS_BUG("a BFS path does not start at a root");
	size_t keep = len;
	m->elided = 0;
	if (max_depth && len > max_depth) {
		keep = max_depth;
		m->elided = 1;
	}
	if (cut) {
		/* the path goes on past the kept steps to the target */
		keep = len < max_depth ? len : max_depth;
		m->elided = 1;
	}
	if (r->arena_len + keep > r->arena_cap) {
		size_t cap = r->arena_cap ? r->arena_cap * 2 : 1024;
		while (cap < r->arena_len + keep)
			cap *= 2;
		uint32_t *p = hs_reallocarray(r->arena, cap, sizeof(uint32_t));
		if (!p)
			return HS_ENOMEM;
		r->arena = p;
		r->arena_cap = cap;
	}
	if (r->arena_len + keep >= UINT32_MAX)
		return hs_error_set(HS_ELIMIT, "the retention paths are too long to keep");
	m->off = (uint32_t)r->arena_len;
	m->len = (uint32_t)keep;
	for (size_t k = 0; k < keep; k++)
		r->arena[r->arena_len++] = r->scratch[len - 1 - k];
	return 0;
}

/* Object at step k of member m (0 = root object). */
static inline uint32_t step_node(const paths_run *r, const member *m, uint32_t k)
{
	if (k == 0)
		return m->root_node;
	if (k > m->len)
		return m->target; /* the step after an elision */
	return r->g->edge_target[r->arena[m->off + k - 1]];
}

typedef struct group_sort {
	uint64_t bytes, count;
	uint32_t first; /* first member index: ties keep selection order */
	uint32_t id;
} group_sort;

static int cmp_group(const void *pa, const void *pb)
{
	const group_sort *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return (a->first > b->first) - (a->first < b->first);
}

void hs_paths_free(hs_paths *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->path_count; i++)
		hs_free(p->paths[i].steps);
	hs_free(p->paths);
	hs_free(p);
}

int hs_paths_find(hs_paths **out, const hs_snapshot *s, const hs_reach *reach,
                  const uint32_t *targets, size_t count, const hs_paths_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_PATHS_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_paths_find: unknown options version %u",
		                    opts->version);
	hs_paths_options o = HS_PATHS_OPTIONS_INIT;
	if (opts)
		o = *opts;
	const hs_graph *g = hs_snapshot_graph(s);
	for (size_t i = 0; i < count; i++)
		HS_RETURN_IF(targets[i] >= g->node_count, HS_EINVAL,
		             "hs_paths_find: object %u out of range (the snapshot has %u)",
		             targets[i], g->node_count);
	HS_RETURN_IF(count >= UINT32_MAX, HS_ELIMIT, "too many objects selected");

	int rc = HS_ENOMEM;
	hs_reach *own = NULL;
	paths_run r;
	memset(&r, 0, sizeof(r));
	r.s = s;
	r.g = g;
	uint32_t *slots = NULL, *gfirst = NULL, *gcount = NULL, *order = NULL, *stamp = NULL;
	uint32_t *gstart = NULL;
	uint64_t *gbytes = NULL;
	group_sort *gs = NULL;
	hs_paths *res = hs_calloc(1, sizeof(*res));
	if (!res)
		goto done;
	if (!reach) {
		if ((rc = hs_reach_compute(&own, s, NULL)) < 0)
			goto done;
		rc = HS_ENOMEM;
		reach = own;
	}
	r.reach = reach;
	r.mem = hs_reallocarray(NULL, count ? count : 1, sizeof(member));
	if (!r.mem)
		goto done;
	if (o.max_depth && reach->stats.max_depth > o.max_depth) {
		/* BFS order puts parents first: depth and ancestor in one pass */
		uint32_t n = g->node_count;
		uint32_t *depth = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
		r.cut = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
		if (!depth || !r.cut) {
			hs_free(depth);
			goto done;
		}
		for (uint32_t i = 0; i < reach->order_len; i++) {
			uint32_t v = reach->order[i];
			uint32_t e = reach->parent[v];
			if (e == HS_REACH__ROOT) {
				depth[v] = 0;
				r.cut[v] = v;
				continue;
			}
			uint32_t p = hs_retention__edge_source(g, e);
			depth[v] = depth[p] + 1;
			r.cut[v] = depth[v] <= o.max_depth ? v : r.cut[p];
		}
		hs_free(depth);
	}

	/* trace every reachable target */
	for (size_t i = 0; i < count; i++) {
		uint32_t t = targets[i];
		uint64_t sz = hs_graph_node_size(g, t);
		res->target_count++;
		res->target_bytes += sz;
		if (!hs_reach_reachable(reach, t)) {
			res->garbage_count++;
			res->garbage_bytes += sz;
			continue;
		}
		member *m = &r.mem[r.nmem++];
		m->target = t;
		if ((rc = trace(&r, m, o.max_depth)) < 0)
			goto done;
		rc = HS_ENOMEM;
	}

	/* group: open addressing over group ids keyed by signature hash */
	size_t nslots = 16;
	while (nslots < r.nmem * 2)
		nslots *= 2;
	slots = hs_reallocarray(NULL, nslots, sizeof(uint32_t));
	uint64_t *hashes = NULL;
	gfirst = hs_reallocarray(NULL, r.nmem ? r.nmem : 1, sizeof(uint32_t));
	if (!slots || !gfirst)
		goto done;
	hashes = (uint64_t *)hs_reallocarray(NULL, r.nmem ? r.nmem : 1, sizeof(uint64_t));
	if (!hashes)
		goto done;
	memset(slots, 0xff, nslots * sizeof(uint32_t));
	uint32_t ngroups = 0;
	for (size_t i = 0; i < r.nmem; i++) {
		member *m = &r.mem[i];
		uint64_t h = signature_hash(&r, m);
		size_t at = (size_t)h & (nslots - 1);
		for (;;) {
			uint32_t gid = slots[at];
			if (gid == UINT32_MAX) {
				slots[at] = ngroups;
				hashes[ngroups] = h;
				gfirst[ngroups] = (uint32_t)i;
				m->group = ngroups++;
				break;
			}
			if (hashes[gid] == h && same_signature(&r, m, &r.mem[gfirst[gid]])) {
				m->group = gid;
				break;
			}
			at = (at + 1) & (nslots - 1);
		}
	}
	hs_free(hashes);
	res->group_count = ngroups;

	/* members by group (counting sort, stable) */
	gstart = hs_calloc((size_t)ngroups + 1, sizeof(uint32_t));
	gbytes = hs_calloc(ngroups ? ngroups : 1, sizeof(uint64_t));
	order = hs_reallocarray(NULL, r.nmem ? r.nmem : 1, sizeof(uint32_t));
	gs = hs_reallocarray(NULL, ngroups ? ngroups : 1, sizeof(group_sort));
	if (!gstart || !gbytes || !order || !gs)
		goto done;
	for (size_t i = 0; i < r.nmem; i++) {
		gstart[r.mem[i].group + 1]++;
		gbytes[r.mem[i].group] += hs_graph_node_size(g, r.mem[i].target);
	}
	for (uint32_t k = 0; k < ngroups; k++)
		gstart[k + 1] += gstart[k];
	gcount = hs_reallocarray(NULL, ngroups ? ngroups : 1, sizeof(uint32_t));
	if (!gcount)
		goto done;
	memcpy(gcount, gstart, (size_t)ngroups * sizeof(uint32_t));
	for (size_t i = 0; i < r.nmem; i++)
		order[gcount[r.mem[i].group]++] = (uint32_t)i;
	for (uint32_t k = 0; k < ngroups; k++) {
		gs[k].bytes = gbytes[k];
		gs[k].count = gstart[k + 1] - gstart[k];
		gs[k].first = gfirst[k];
		gs[k].id = k;
	}
	qsort(gs, ngroups, sizeof(*gs), cmp_group);
	size_t keep = ngroups;
	if (o.limit && keep > o.limit)
		keep = o.limit;
	for (size_t k = keep; k < ngroups; k++) {
		res->omitted_count += gs[k].count;
		res->omitted_bytes += gs[k].bytes;
	}

	/* build the kept paths */
	res->paths = hs_calloc(keep ? keep : 1, sizeof(hs_path));
	stamp = hs_calloc(g->node_count ? g->node_count : 1, sizeof(uint32_t));
	if (!res->paths || !stamp)
		goto done;
	uint32_t cur = 0;
	for (size_t k = 0; k < keep; k++) {
		uint32_t gid = gs[k].id;
		const member *rep = &r.mem[gfirst[gid]];
		hs_path *p = &res->paths[res->path_count];
		uint32_t nsteps = rep->len + 1 + rep->elided;
		p->steps = hs_calloc(nsteps, sizeof(hs_path_step));
		if (!p->steps)
			goto done;
		res->path_count++;
		p->root = rep->root;
		p->count = gs[k].count;
		p->bytes = gs[k].bytes;
		p->example = rep->target;
		p->step_count = nsteps;
		for (uint32_t st = 0; st < nsteps; st++) {
			hs_path_step *step = &p->steps[st];
			uint32_t node = step_node(&r, rep, st);
			uint32_t edge = st >= 1 && st <= rep->len ? r.arena[rep->off + st - 1] : HS_NO_EDGE;
			step->type = g->type[node];
			step->edge = edge;
			step->label_kind = edge == HS_NO_EDGE ? HS_LABEL_NONE
			                                      : (uint8_t)HS_EDGE_LABEL(g->edge_kind[edge]);
			step->elided = st > rep->len;
			step->example = node;
			if (++cur == UINT32_MAX) { /* stamps wrapped: start over */
				memset(stamp, 0, (size_t)g->node_count * sizeof(uint32_t));
				cur = 1;
			}
			int varies = 0;
			for (uint32_t j = gstart[gid]; j < gstart[gid + 1]; j++) {
				const member *m = &r.mem[order[j]];
				uint32_t v = step_node(&r, m, st);
				if (stamp[v] != cur) {
					stamp[v] = cur;
					step->distinct++;
					step->bytes += hs_graph_node_size(g, v);
				}
				if (edge != HS_NO_EDGE && !varies &&
				    (step->label_kind == HS_LABEL_KEY || step->label_kind == HS_LABEL_INDEX) &&
				    !same_label(g, edge, r.arena[m->off + st - 1]))
					varies = 1;
			}
			step->collapsed = (uint8_t)varies;
		}
	}
	*out = res;
	res = NULL;
	rc = 0;
done:
	hs_reach_free(own);
	hs_free(r.mem);
	hs_free(r.arena);
	hs_free(r.cut);
	hs_free(r.scratch);
	hs_free(slots);
	hs_free(gfirst);
	hs_free(gcount);
	hs_free(gstart);
	hs_free(gbytes);
	hs_free(order);
	hs_free(gs);
	hs_free(stamp);
	hs_paths_free(res);
	return rc;
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

typedef struct sink {
	char *buf;
	size_t size, len;
} sink;

static void put(sink *k, const char *s, size_t n)
{
	if (k->len < k->size) {
		size_t room = k->size - 1 - k->len;
		memcpy(k->buf + k->len, s, n < room ? n : room);
	}
	k->len += n;
}

static void puts_(sink *k, const char *s) { put(k, s, strlen(s)); }

static void put_u64(sink *k, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	put(k, tmp, (size_t)n);
}

static void put_string(sink *k, const hs_snapshot *s, uint32_t id)
{
	size_t n;
	const char *str = hs_snapshot_string(s, id, &n);
	put(k, str, n);
}

/* The label of the edge into step `st`, as the holder's suffix. */
static void put_label(sink *k, const hs_snapshot *s, const hs_path_step *st)
{
	if (st->edge == HS_NO_EDGE)
		return;
	if (st->collapsed) {
		puts_(k, st->label_kind == HS_LABEL_KEY ? "['<key>']" : "[<i>]");
		return;
	}
	char tmp[256];
	size_t n = hs_snapshot_edge_label(s, st->edge, tmp, sizeof(tmp));
	if (n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	switch (st->label_kind) {
	case HS_LABEL_NAME:
		put(k, ".", 1);
		break;
	case HS_LABEL_LOCAL:
	case HS_LABEL_DICT_KEY:
		put(k, " ", 1);
		break;
	default:
		break;
	}
	put(k, tmp, n);
}

static int is_dict_name(const hs_snapshot *s, const hs_path_step *st)
{
	if (st->label_kind != HS_LABEL_NAME)
		return 0;
	char tmp[16];
	size_t n = hs_snapshot_edge_label(s, st->edge, tmp, sizeof(tmp));
	return n == 8 && !memcmp(tmp, "__dict__", 8);
}

static void put_root(sink *k, const hs_snapshot *s, const hs_path *p)
{
	hs_snapshot_root rt;
	const hs_snapshot_root *root = &rt;
	const char *type = hs_snapshot_node_type_name(s, p->steps[0].example);
	if (hs_snapshot_root_get(s, p->root, &rt) < 0) {
		puts_(k, type);
		return;
	}
	switch (root->kind) {
	case HS_ROOT_MODULE:
		puts_(k, "module ");
		put_string(k, s, root->name);
		if (strcmp(type, "module")) {
			puts_(k, ": ");
			puts_(k, type);
		}
		return;
	case HS_ROOT_FRAME:
		put_string(k, s, root->name);
		if (root->detail != HS_NO_STRING) {
			puts_(k, " ");
			put_string(k, s, root->detail);
		}
		break;
	case HS_ROOT_LOCAL:
		puts_(k, "local ");
		put_string(k, s, root->detail);
		puts_(k, " of ");
		put_string(k, s, root->name);
		break;
	case HS_ROOT_HELD:
		puts_(k, root->excess == 0 ? "immortal" : "held from C");
		break;
	default:
		puts_(k, hs_root_kind_name(root->kind));
		if (root->name != HS_NO_STRING) {
			puts_(k, " ");
			put_string(k, s, root->name);
		}
		if (root->detail != HS_NO_STRING) {
			puts_(k, " ");
			put_string(k, s, root->detail);
		}
		break;
	}
	puts_(k, ": ");
	puts_(k, type);
}

size_t hs_paths_format(char *buf, size_t size, const hs_snapshot *s, const hs_path *p)
{
	sink k = { buf, size, 0 };
	size_t n = p->step_count;
	const hs_path_step *st = p->steps;
	hs_snapshot_root rt;
	const hs_snapshot_root *root = hs_snapshot_root_get(s, p->root, &rt) < 0 ? NULL : &rt;
	for (size_t i = 0; i < n; i++) {
		/* step i: the holder's type (or the root), then the label of the
		 * edge to step i + 1 */
		size_t next = i + 1;
		if (i == 0) {
			put_root(&k, s, p);
			/* a module's namespace is its __dict__: no label to show */
			if (!(next < n && root && root->kind == HS_ROOT_MODULE && is_dict_name(s, &st[next])))
				if (next < n && !st[next].elided)
					put_label(&k, s, &st[next]);
		} else {
			puts_(&k, hs_snapshot_node_type_name(s, st[i].example));
			if (next < n && !st[next].elided) {
				put_label(&k, s, &st[next]);
				/* fold an instance's __dict__ into it: `C.__dict__['x']` */
				if (is_dict_name(s, &st[next]) && next + 1 < n && !st[next + 1].elided &&
				    !strcmp(hs_snapshot_node_type_name(s, st[next].example), "dict")) {
					put_label(&k, s, &st[next + 1]);
					next++;
				}
			}
		}
		if (next < n && st[next].distinct > st[i].distinct) {
			puts_(&k, " (x");
			put_u64(&k, st[next].distinct);
			puts_(&k, ")");
		}
		if (next < n)
			puts_(&k, st[next].elided ? " → … → " : " → ");
		i = next - 1;
	}
	if (k.size)
		k.buf[k.len < k.size ? k.len : k.size - 1] = '\0';
	return k.len;
}

/* ------------------------------------------------------------------ */
/* selection                                                           */

int hs_retention_select_type(uint32_t **out, size_t *count, const hs_snapshot *s,
                             const char *type_name)
{
	*out = NULL;
	*count = 0;
	uint32_t nt = hs_snapshot_type_count(s);
	uint8_t *want = hs_calloc(nt ? nt : 1, 1);
	if (!want)
		return HS_ENOMEM;
	int any = 0;
	for (uint32_t t = 0; t < nt; t++)
		if (!strcmp(hs_snapshot_type_get(s, t)->name, type_name))
			want[t] = 1, any = 1;
	if (!any) {
		hs_free(want);
		return hs_error_set(HS_ENOTFOUND, "no type named '%s' in '%s'", type_name,
		                    hs_snapshot_path(s));
	}
	const hs_graph *g = hs_snapshot_graph(s);
	size_t k = 0;
	for (uint32_t v = 0; v < g->node_count; v++)
		k += want[g->type[v]];
	uint32_t *sel = hs_reallocarray(NULL, k ? k : 1, sizeof(uint32_t));
	if (!sel) {
		hs_free(want);
		return HS_ENOMEM;
	}
	k = 0;
	for (uint32_t v = 0; v < g->node_count; v++)
		if (want[g->type[v]])
			sel[k++] = v;
	hs_free(want);
	if (!k) {
		hs_free(sel);
		return 0;
	}
	*out = sel;
	*count = k;
	return 0;
}
