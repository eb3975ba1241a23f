/*
 * Unit tests: the dominator tree and retained sizes
 * (include/heapsnap/retention.h, src/analysis/dominators.c).
 *
 * Hand-made graphs with known dominators, then random graphs checked
 * against brute force: v dominates w exactly when removing v makes w
 * unreachable.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"
#include "heapsnap/retention.h"
#include "util/alloc.h"
#include "testutil.h"
#include "testgraph.h"

static hs_dominators *dom_of(hs_snapshot *s)
{
	hs_dominators *d;
	cr_assert_eq(hs_dominators_compute(&d, s, NULL), 0, "%s", hs_error_last());
	return d;
}

#define SR HS_DOM_SUPERROOT

Test(dominators, diamond)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 10), b = tg_node(&g, "B", 100);
	uint32_t c = tg_node(&g, "C", 1000), d = tg_node(&g, "D", 10000);
	tg_edge(&g, r, a);
	tg_edge(&g, r, b);
	tg_edge(&g, a, c);
	tg_edge(&g, b, c);
	tg_edge(&g, c, d);
	tg_root(&g, HS_ROOT_MODULE, r, "app", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, r), SR);
	cr_assert_eq(hs_dominators_idom(dm, a), r);
	cr_assert_eq(hs_dominators_idom(dm, b), r);
	cr_assert_eq(hs_dominators_idom(dm, c), r);
	cr_assert_eq(hs_dominators_idom(dm, d), c);
	cr_assert_eq(hs_dominators_retained(dm, r), 11111);
	cr_assert_eq(hs_dominators_retained(dm, a), 10);
	cr_assert_eq(hs_dominators_retained(dm, b), 100);
	cr_assert_eq(hs_dominators_retained(dm, c), 11000);
	cr_assert_eq(hs_dominators_retained(dm, d), 10000);
	size_t n;
	const uint32_t *ch = hs_dominators_children(dm, r, &n);
	cr_assert_eq(n, 3);
	cr_assert_eq(ch[0], a);
	cr_assert_eq(ch[1], b);
	cr_assert_eq(ch[2], c);
	ch = hs_dominators_children(dm, SR, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(ch[0], r);
	cr_assert_null(hs_dominators_children(dm, d, &n));
	cr_assert_eq(n, 0);
	const hs_dominators_stats *st = hs_dominators_stats_get(dm);
	cr_assert_eq(st->reachable_count, 5);
	cr_assert_eq(st->reachable_bytes, 11111);
	cr_assert_eq(st->superroot_children, 1);
	cr_assert_eq(st->max_depth, 3);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, chain_and_dominator_chain)
{
	tgraph g = { 0 };
	uint32_t v[6];
	for (int i = 0; i < 6; i++) {
		v[i] = tg_node(&g, "list", (uint64_t)1 << i);
		if (i)
			tg_edge(&g, v[i - 1], v[i]);
	}
	tg_root(&g, HS_ROOT_MODULE, v[0], "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(hs_dominators_idom(dm, v[i]), i ? v[i - 1] : SR);
		cr_assert_eq(hs_dominators_retained(dm, v[i]), 63u - ((1u << i) - 1));
	}
	uint32_t *chain;
	size_t n;
	cr_assert_eq(hs_dominators_chain(&chain, &n, dm, v[4]), 0);
	cr_assert_eq(n, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(chain[i], v[4 - i]);
	hs_free(chain);
	cr_assert_eq(hs_dominators_stats_get(dm)->max_depth, 6);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, cycle_through_root)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2), b = tg_node(&g, "B", 4);
	uint32_t c = tg_node(&g, "C", 8);
	tg_edge(&g, r, a);
	tg_edge(&g, a, b);
	tg_edge(&g, b, r);
	tg_edge(&g, b, c);
	tg_edge(&g, c, a);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, r), SR);
	cr_assert_eq(hs_dominators_idom(dm, a), r);
	cr_assert_eq(hs_dominators_idom(dm, b), a);
	cr_assert_eq(hs_dominators_idom(dm, c), b);
	cr_assert_eq(hs_dominators_retained(dm, r), 15);
	cr_assert_eq(hs_dominators_retained(dm, a), 14);
	cr_assert_eq(hs_dominators_retained(dm, b), 12);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, two_roots_share_an_object)
{
	tgraph g = { 0 };
	uint32_t r1 = tg_node(&g, "module", 1), r2 = tg_node(&g, "module", 2);
	uint32_t x = tg_node(&g, "X", 100), y = tg_node(&g, "Y", 1000), z = tg_node(&g, "Z", 7);
	tg_edge(&g, r1, x);
	tg_edge(&g, r2, x);
	tg_edge(&g, x, y);
	tg_edge(&g, r2, z);
	tg_root(&g, HS_ROOT_MODULE, r1, "one", NULL);
	tg_root(&g, HS_ROOT_MODULE, r2, "two", NULL);
	tg_root(&g, HS_ROOT_MODULE, r1, "one_again", NULL); /* duplicate root object */
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, x), SR);
	cr_assert_eq(hs_dominators_idom(dm, y), x);
	cr_assert_eq(hs_dominators_idom(dm, z), r2);
	cr_assert_eq(hs_dominators_retained(dm, r1), 1);
	cr_assert_eq(hs_dominators_retained(dm, r2), 9);
	cr_assert_eq(hs_dominators_retained(dm, x), 1100);
	cr_assert_eq(hs_dominators_stats_get(dm)->superroot_children, 3);
	uint32_t *chain;
	size_t n;
	cr_assert_eq(hs_dominators_chain(&chain, &n, dm, y), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(chain[0], y);
	cr_assert_eq(chain[1], x);
	hs_free(chain);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, root_reached_from_another_root_keeps_superroot)
{
	/* r2 is a root, but the DFS reaches it first from r1: it must still
	 * be dominated by the super-root only */
	tgraph g = { 0 };
	uint32_t r1 = tg_node(&g, "module", 1), r2 = tg_node(&g, "module", 2), x = tg_node(&g, "X", 4);
	tg_edge(&g, r1, r2);
	tg_edge(&g, r2, x);
	tg_root(&g, HS_ROOT_MODULE, r1, "a", NULL);
	tg_root(&g, HS_ROOT_MODULE, r2, "b", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, r1), SR);
	cr_assert_eq(hs_dominators_idom(dm, r2), SR);
	cr_assert_eq(hs_dominators_idom(dm, x), r2);
	cr_assert_eq(hs_dominators_retained(dm, r1), 1);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, weak_edges_never_retain)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2), b = tg_node(&g, "B", 4);
	uint32_t w = tg_node(&g, "W", 8), ref = tg_node(&g, "weakref.ReferenceType", 16);
	tg_edge(&g, r, a);
	tg_edge(&g, a, b);
	tg_weak(&g, r, b);    /* does not make r a second way to b */
	tg_edge(&g, r, ref);
	tg_weak(&g, ref, w);  /* w only reachable through a weakref: garbage */
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, b), a);
	cr_assert_eq(hs_dominators_idom(dm, w), HS_NO_NODE);
	cr_assert_eq(hs_dominators_retained(dm, w), 0);
	cr_assert_eq(hs_dominators_retained(dm, ref), 16);
	cr_assert_eq(hs_dominators_retained(dm, r), 23);
	cr_assert_eq(hs_dominators_stats_get(dm)->unreachable_count, 1);
	uint32_t *chain = (uint32_t *)1;
	size_t n = 9;
	cr_assert_eq(hs_dominators_chain(&chain, &n, dm, w), HS_ENOTFOUND);
	cr_assert_null(chain);
	cr_assert_eq(n, 0);
	cr_assert(strstr(hs_error_last(), "garbage"));
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, unreachable_cycle_is_not_dominated)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2), b = tg_node(&g, "B", 4);
	uint32_t c = tg_node(&g, "C", 8);
	tg_edge(&g, a, b);
	tg_edge(&g, b, a);
	tg_edge(&g, b, c);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, a), HS_NO_NODE);
	cr_assert_eq(hs_dominators_idom(dm, b), HS_NO_NODE);
	cr_assert_eq(hs_dominators_idom(dm, c), HS_NO_NODE);
	cr_assert_eq(hs_dominators_retained(dm, r), 1);
	cr_assert_eq(hs_dominators_stats_get(dm)->unreachable_count, 3);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, held_from_c_objects_are_roots)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), h = tg_node(&g, "Cache", 2), x = tg_node(&g, "X", 4);
	tg_edge(&g, h, x);
	g.extra[h] = 1; /* one reference the graph does not explain */
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	cr_assert_eq(hs_snapshot_root_count(s), 2);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, h), SR);
	cr_assert_eq(hs_dominators_idom(dm, x), h);
	cr_assert_eq(hs_dominators_retained(dm, h), 6);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

static const hs_retained_type *find_type(const hs_snapshot *s, const hs_dominators *d,
                                         const char *name)
{
	size_t n;
	const hs_retained_type *t = hs_dominators_types(d, &n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(hs_snapshot_type_get(s, t[i].type)->name, name))
			return &t[i];
	return NULL;
}

Test(dominators, per_type_retained_counts_nested_instances_once)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1);
	uint32_t a1 = tg_node(&g, "A", 10), b1 = tg_node(&g, "B", 100);
	uint32_t a2 = tg_node(&g, "A", 20), a3 = tg_node(&g, "A", 30), b2 = tg_node(&g, "B", 200);
	uint32_t a4 = tg_node(&g, "A", 40), a5 = tg_node(&g, "A", 50), x = tg_node(&g, "X", 1000);
	tg_edge(&g, r, a1);
	tg_edge(&g, a1, b1);
	tg_edge(&g, r, a2);
	tg_edge(&g, a2, a3); /* nested instance: its bytes are in a2's already */
	tg_edge(&g, a3, b2);
	tg_edge(&g, r, a4);
	tg_edge(&g, r, a5);
	tg_edge(&g, a4, x); /* shared by two instances: dominated by none (by r) */
	tg_edge(&g, a5, x);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	const hs_retained_type *ta = find_type(s, dm, "A"), *tb = find_type(s, dm, "B");
	const hs_retained_type *tm = find_type(s, dm, "module"), *tx = find_type(s, dm, "X");
	cr_assert(ta && tb && tm && tx);
	cr_assert_eq(ta->count, 5);
	cr_assert_eq(ta->bytes, 150);
	cr_assert_eq(ta->retained, 10 + 100 + 20 + 30 + 200 + 40 + 50);
	cr_assert_eq(tb->count, 2);
	cr_assert_eq(tb->retained, 300);
	cr_assert_eq(tm->retained, 1451);
	cr_assert_eq(tx->retained, 1000);
	size_t n;
	const hs_retained_type *t = hs_dominators_types(dm, &n);
	cr_assert_eq(n, 4);
	cr_assert_eq(t[0].type, tm->type); /* largest retained first */
	cr_assert_eq(t[1].type, tx->type);
	cr_assert_eq(t[2].type, ta->type);
	cr_assert_eq(t[3].type, tb->type);
	hs_dominators_free(dm);

	hs_dominators_options o = HS_DOMINATORS_OPTIONS_INIT;
	o.type_sizes = 0;
	cr_assert_eq(hs_dominators_compute(&dm, s, &o), 0);
	cr_assert_null(hs_dominators_types(dm, &n));
	cr_assert_eq(n, 0);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, types_sharing_a_name_are_one_row)
{
	/* the builder names types uniquely, so write two same-named types by
	 * hand through the writer */
	const char *path = hs_test_tmppath("twotypes.hsnap");
	hs_writer_options wo = HS_WRITER_OPTIONS_INIT;
	wo.threaded = 0;
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, &wo), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	uint32_t sm, sc, t0, t1, t2, name;
	cr_assert_eq(hs_writer_string(w, &sm, "module", 6), 0);
	cr_assert_eq(hs_writer_string(w, &sc, "app.C", 5), 0);
	cr_assert_eq(hs_writer_string(w, &name, "app", 3), 0);
	hs_type_record tm = { 0x9000, sm, 0, 16 }, tc1 = { 0x9100, sc, 0, 16 }, tc2 = { 0x9200, sc, 0, 16 };
	cr_assert_eq(hs_writer_type(w, &t0, &tm), 0);
	cr_assert_eq(hs_writer_type(w, &t1, &tc1), 0);
	cr_assert_eq(hs_writer_type(w, &t2, &tc2), 0);
	hs_node_record n0 = { 0x100, t0, 0, 1, 1, NULL, 0, 0 };
	hs_node_record n1 = { 0x200, t1, 0, 10, 1, NULL, 0, 0 };
	hs_node_record n2 = { 0x300, t2, 0, 20, 1, NULL, 0, 0 };
	hs_edge_record e1 = { 0x200, HS_EDGE_STRONG, HS_LABEL_NONE, 0 };
	hs_edge_record e2 = { 0x300, HS_EDGE_STRONG, HS_LABEL_NONE, 0 };
	cr_assert_eq(hs_writer_node(w, &n0), 0);
	cr_assert_eq(hs_writer_edge(w, &e1), 0);
	cr_assert_eq(hs_writer_node(w, &n1), 0);
	cr_assert_eq(hs_writer_edge(w, &e2), 0);
	cr_assert_eq(hs_writer_node(w, &n2), 0);
	hs_root_record rr = { HS_ROOT_MODULE, 0x100, name, HS_NO_STRING };
	n0.refcount = 0;
	cr_assert_eq(hs_writer_root(w, &rr), 0);
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	hs_dominators *dm = dom_of(s);
	const hs_retained_type *tc = find_type(s, dm, "app.C");
	cr_assert_not_null(tc);
	cr_assert_eq(tc->type, t1);
	cr_assert_eq(tc->count, 2);
	cr_assert_eq(tc->retained, 30); /* the second instance is inside the first */
	size_t n;
	hs_dominators_types(dm, &n);
	cr_assert_eq(n, 2);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
}

Test(dominators, top_by_retained_size)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1);
	uint32_t a = tg_node(&g, "A", 50), b = tg_node(&g, "B", 30), c = tg_node(&g, "C", 30);
	uint32_t d = tg_node(&g, "D", 5);
	tg_edge(&g, r, a);
	tg_edge(&g, r, b);
	tg_edge(&g, r, c);
	tg_edge(&g, b, d);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	uint32_t *top;
	size_t n;
	cr_assert_eq(hs_dominators_top(&top, &n, dm, HS_NO_NODE, 3), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(top[0], r); /* 116 */
	cr_assert_eq(top[1], a); /* 50 */
	cr_assert_eq(top[2], b); /* 35 */
	hs_free(top);
	cr_assert_eq(hs_dominators_top(&top, &n, dm, r, 10), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(top[0], a);
	cr_assert_eq(top[1], b);
	cr_assert_eq(top[2], c); /* tie on 30 with... no: b is 35; c 30 */
	hs_free(top);
	cr_assert_eq(hs_dominators_top(&top, &n, dm, d, 10), 0);
	cr_assert_null(top);
	cr_assert_eq(n, 0);
	cr_assert_eq(hs_dominators_top(&top, &n, dm, 99, 10), HS_EINVAL);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, long_chain_needs_no_recursion)
{
	tgraph g = { 0 };
	const uint32_t N = 200000;
	for (uint32_t i = 0; i < N; i++) {
		tg_node(&g, "Node", 1);
		if (i)
			tg_edge(&g, i - 1, i);
	}
	tg_edge(&g, N - 1, 0); /* and back: one big cycle through the root */
	tg_root(&g, HS_ROOT_MODULE, 0, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_idom(dm, N - 1), N - 2);
	cr_assert_eq(hs_dominators_retained(dm, 0), N);
	cr_assert_eq(hs_dominators_retained(dm, N / 2), N - N / 2);
	cr_assert_eq(hs_dominators_stats_get(dm)->max_depth, N);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, rejects_unknown_options_version)
{
	tgraph g = { 0 };
	tg_root(&g, HS_ROOT_MODULE, tg_node(&g, "module", 1), "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_dominators_options o = HS_DOMINATORS_OPTIONS_INIT;
	o.version = 99;
	hs_dominators *dm = (hs_dominators *)1;
	cr_assert_eq(hs_dominators_compute(&dm, s, &o), HS_EINVAL);
	cr_assert_null(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, empty_snapshot)
{
	tgraph g = { 0 };
	hs_snapshot *s = tg_open(&g);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_dominators_stats_get(dm)->reachable_count, 0);
	size_t n;
	cr_assert_null(hs_dominators_children(dm, SR, &n));
	uint32_t *top;
	cr_assert_eq(hs_dominators_top(&top, &n, dm, HS_NO_NODE, 5), 0);
	cr_assert_eq(n, 0);
	hs_dominators_free(dm);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, out_of_memory_fails_cleanly)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2), b = tg_node(&g, "B", 4);
	tg_edge(&g, r, a);
	tg_edge(&g, a, b);
	tg_edge(&g, r, b);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	int ok = 0;
	for (uint64_t k = 1; k < 100 && !ok; k++) {
		hs_dominators *dm = (hs_dominators *)1;
		hs_alloc_fail_after(k);
		int rc = hs_dominators_compute(&dm, s, NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			ok = 1;
			cr_assert_eq(hs_dominators_idom(dm, b), r);
			hs_dominators_free(dm);
		} else {
			cr_assert_eq(rc, HS_ENOMEM);
			cr_assert_null(dm);
		}
	}
	cr_assert(ok);
	hs_snapshot_free(s);
	tg_free(&g);
}

/* ---- brute force ------------------------------------------------- */

/* Reachable set from the roots over strong edges, skipping `removed`. */
static void brute_reach(const hs_snapshot *s, uint32_t removed, uint8_t *seen, uint32_t *queue)
{
	const hs_graph *gr = hs_snapshot_graph(s);
	memset(seen, 0, gr->node_count);
	uint32_t head = 0, tail = 0;
	for (uint32_t i = 0; i < hs_snapshot_root_count(s); i++) {
		hs_snapshot_root rt;
		cr_assert_eq(hs_snapshot_root_get(s, i, &rt), 0);
		if (rt.node != removed && !seen[rt.node]) {
			seen[rt.node] = 1;
			queue[tail++] = rt.node;
		}
	}
	while (head < tail) {
		uint32_t v = queue[head++];
		for (uint32_t e = gr->edge_start[v]; e < gr->edge_start[v + 1]; e++) {
			uint32_t w = gr->edge_target[e];
			if (HS_EDGE_KIND(gr->edge_kind[e]) == HS_EDGE_WEAK || w == removed || seen[w])
				continue;
			seen[w] = 1;
			queue[tail++] = w;
		}
	}
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((rng_state >> 33) % n);
}

static void check_random_graph(uint64_t seed, uint32_t n, uint32_t m, uint32_t nroots)
{
	rng_state = seed;
	tgraph g = { 0 };
	static const char *names[] = { "A", "B", "C", "D", "E" };
	for (uint32_t i = 0; i < n; i++)
		tg_node(&g, names[rnd(5)], 1 + rnd(1000));
	for (uint32_t k = 0; k < m; k++) {
		/* mostly forward-ish edges for deep graphs, some back edges */
		uint32_t a = rnd(n), b = rnd(4) ? (a + 1 + rnd(8)) % n : rnd(n);
		if (rnd(15) == 0)
			tg_weak(&g, a, b);
		else
			tg_edge(&g, a, b);
	}
	for (uint32_t k = 0; k < nroots; k++)
		tg_root(&g, HS_ROOT_MODULE, rnd(n), "r", NULL);
	if (rnd(2))
		g.extra[rnd(n)] = 2; /* a held-from-C root */
	hs_snapshot *s = tg_open(&g);
	const hs_graph *gr = hs_snapshot_graph(s);
	hs_dominators *dm = dom_of(s);
	cr_assert_eq(hs_snapshot_build_reverse(s), 0);
	hs_dominators *dr = dom_of(s); /* reverse edges present: same answers */

	uint8_t *base = malloc(n), *seen = malloc(n);
	uint8_t *dom = calloc((size_t)n * n, 1); /* dom[v*n+w]: v dominates w */
	uint32_t *queue = malloc(n * sizeof(uint32_t));
	brute_reach(s, HS_NO_NODE, base, queue);
	for (uint32_t v = 0; v < n; v++) {
		cr_assert_eq(hs_dominators_idom(dm, v), hs_dominators_idom(dr, v));
		cr_assert_eq(hs_dominators_retained(dm, v), hs_dominators_retained(dr, v));
		if (!base[v]) {
			cr_assert_eq(hs_dominators_idom(dm, v), HS_NO_NODE, "seed %llu node %u",
			             (unsigned long long)seed, v);
			cr_assert_eq(hs_dominators_retained(dm, v), 0);
			continue;
		}
		brute_reach(s, v, seen, queue);
		uint64_t freed = hs_graph_node_size(gr, v);
		dom[(size_t)v * n + v] = 1;
		for (uint32_t w = 0; w < n; w++) {
			if (w == v || !base[w])
				continue;
			int lost = !seen[w];
			/* v dominates w iff v is on w's idom chain */
			int on_chain = 0;
			for (uint32_t u = hs_dominators_idom(dm, w); u != HS_DOM_SUPERROOT;
			     u = hs_dominators_idom(dm, u))
				if (u == v) {
					on_chain = 1;
					break;
				}
			cr_assert_eq(lost, on_chain, "seed %llu: removing %u %s %u", (unsigned long long)seed,
			             v, lost ? "frees" : "keeps", w);
			if (lost) {
				freed += hs_graph_node_size(gr, w);
				dom[(size_t)v * n + w] = 1;
			}
		}
		cr_assert_eq(hs_dominators_retained(dm, v), freed, "seed %llu node %u",
		             (unsigned long long)seed, v);
	}
	/* per type: objects dominated by some instance, counted once */
	size_t nt;
	const hs_retained_type *rows = hs_dominators_types(dm, &nt);
	for (size_t i = 0; i < nt; i++) {
		uint64_t want = 0, count = 0;
		for (uint32_t w = 0; w < n; w++) {
			if (!base[w])
				continue;
			if (gr->type[w] == rows[i].type)
				count++;
			for (uint32_t v = 0; v < n; v++)
				if (gr->type[v] == rows[i].type && dom[(size_t)v * n + w]) {
					want += hs_graph_node_size(gr, w);
					break;
				}
		}
		cr_assert_eq(rows[i].count, count);
		cr_assert_eq(rows[i].retained, want, "seed %llu type %s", (unsigned long long)seed,
		             hs_snapshot_type_get(s, rows[i].type)->name);
	}
	free(base);
	free(seen);
	free(dom);
	free(queue);
	hs_dominators_free(dm);
	hs_dominators_free(dr);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(dominators, random_graphs_match_brute_force)
{
	for (uint64_t seed = 1; seed <= 40; seed++) {
		uint32_t n = 150 + (uint32_t)(seed * 7 % 100);
		uint32_t m = n * (1 + (uint32_t)(seed % 4));
		check_random_graph(seed, n, m, 1 + (uint32_t)(seed % 5));
	}
}
