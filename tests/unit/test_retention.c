/*
 * Unit tests: reachability, retention paths and garbage
 * (include/heapsnap/retention.h: reach.c, paths.c, garbage.c).
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

/* module app -> __dict__ -> ['_sessions'] -> dict of n sessions keyed
 * 'user_<i>', each SessionState.__dict__['history'] -> list (100 bytes). */
typedef struct sessions {
	uint32_t module, moddict, sessions, first_list, first_state;
} sessions;

static sessions build_sessions(tgraph *g, uint32_t n)
{
	sessions x;
	x.module = tg_node(g, "module", 72);
	x.moddict = tg_node(g, "dict", 1000);
	x.sessions = tg_node(g, "dict", 40000);
	tg_name(g, x.module, x.moddict, "__dict__");
	tg_key(g, x.moddict, tg_str(g, "_sessions"), x.sessions);
	uint32_t hist = tg_str(g, "history");
	static char keys[4096][16];
	for (uint32_t i = 0; i < n; i++) {
		snprintf(keys[i % 4096], 16, "user_%u", i);
		uint32_t key = tg_str(g, keys[i % 4096]);
		uint32_t st = tg_node(g, "app.SessionState", 56);
		uint32_t d = tg_node(g, "dict", 200);
		uint32_t l = tg_node(g, "list", 100);
		if (i == 0) {
			x.first_list = l;
			x.first_state = st;
		}
		tg_key(g, x.sessions, key, st);
		tg_name(g, st, d, "__dict__");
		tg_key(g, d, hist, l);
	}
	tg_root(g, HS_ROOT_MODULE, x.module, "app", NULL);
	return x;
}

static hs_paths *paths_of_type(hs_snapshot *s, const char *type, const hs_paths_options *o)
{
	uint32_t *sel;
	size_t n;
	cr_assert_eq(hs_retention_select_type(&sel, &n, s, type), 0, "%s", hs_error_last());
	hs_paths *p;
	cr_assert_eq(hs_paths_find(&p, s, NULL, sel, n, o), 0, "%s", hs_error_last());
	hs_free(sel);
	return p;
}

static const char *fmt(hs_snapshot *s, const hs_path *p)
{
	static char buf[1024];
	size_t n = hs_paths_format(buf, sizeof(buf), s, p);
	cr_assert_lt(n, sizeof(buf));
	cr_assert_eq(strlen(buf), n);
	return buf;
}

/* ---- reach ------------------------------------------------------- */

Test(reach, bfs_from_roots_over_strong_edges)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2), b = tg_node(&g, "B", 4);
	uint32_t c = tg_node(&g, "C", 8), w = tg_node(&g, "W", 16), ref = tg_node(&g, "weakref", 32);
	uint32_t junk = tg_node(&g, "J", 64);
	tg_edge(&g, r, a);
	tg_edge(&g, a, b);
	tg_edge(&g, b, c);
	tg_edge(&g, r, c); /* shorter way to c: found first by the BFS? no: r's edges come first */
	tg_edge(&g, r, ref);
	tg_weak(&g, ref, w);
	tg_edge(&g, junk, junk);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	tg_root(&g, HS_ROOT_MODULE, r, "again", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_reach *re;
	cr_assert_eq(hs_reach_compute(&re, s, NULL), 0);
	const hs_reach_stats *st = hs_reach_stats_get(re);
	cr_assert_eq(st->root_objects, 1);
	cr_assert_eq(st->reachable_count, 5);
	cr_assert_eq(st->reachable_bytes, 1 + 2 + 4 + 8 + 32);
	cr_assert_eq(st->unreachable_count, 2);
	cr_assert_eq(st->unreachable_bytes, 80);
	cr_assert_eq(st->max_depth, 2);
	cr_assert(hs_reach_reachable(re, c));
	cr_assert_not(hs_reach_reachable(re, w));
	cr_assert_not(hs_reach_reachable(re, junk));
	cr_assert_not(hs_reach_reachable(re, 999));
	cr_assert_eq(hs_reach_parent(re, c), r);
	cr_assert_eq(hs_reach_parent(re, b), a);
	cr_assert_eq(hs_reach_parent(re, r), HS_NO_NODE);
	cr_assert_eq(hs_reach_parent_edge(re, r), HS_NO_EDGE);
	cr_assert_eq(hs_reach_parent(re, w), HS_NO_NODE);
	cr_assert_eq(hs_snapshot_graph(s)->edge_target[hs_reach_parent_edge(re, c)], c);
	cr_assert_eq(hs_reach_root_index(re, r), 0);
	cr_assert_eq(hs_reach_root_index(re, a), HS_NO_NODE);
	hs_reach_free(re);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(reach, held_from_c_objects_are_roots)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), h = tg_node(&g, "Cache", 2), x = tg_node(&g, "X", 4);
	tg_edge(&g, h, x);
	g.extra[h] = 3;
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_reach *re;
	cr_assert_eq(hs_reach_compute(&re, s, NULL), 0);
	cr_assert(hs_reach_reachable(re, x));
	cr_assert_eq(hs_reach_root_index(re, h), 1);
	hs_snapshot_root rt;
	cr_assert_eq(hs_snapshot_root_get(s, 1, &rt), 0);
	cr_assert_eq(rt.kind, HS_ROOT_HELD);
	cr_assert_eq(rt.excess, 3);
	hs_reach_free(re);
	hs_snapshot_free(s);
	tg_free(&g);
}

/* ---- paths ------------------------------------------------------- */

Test(paths, thousand_sessions_in_a_dict_are_one_path)
{
	tgraph g = { 0 };
	build_sessions(&g, 1000);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "list", NULL);
	cr_assert_eq(p->target_count, 1000);
	cr_assert_eq(p->target_bytes, 100000);
	cr_assert_eq(p->garbage_count, 0);
	cr_assert_eq(p->group_count, 1);
	cr_assert_eq(p->path_count, 1);
	const hs_path *path = &p->paths[0];
	cr_assert_eq(path->count, 1000);
	cr_assert_eq(path->bytes, 100000);
	cr_assert_eq(path->root, 0);
	cr_assert_eq(path->step_count, 6);
	cr_assert_eq(path->steps[2].distinct, 1);
	cr_assert_eq(path->steps[3].distinct, 1000);
	cr_assert_eq(path->steps[3].label_kind, HS_LABEL_KEY);
	cr_assert(path->steps[3].collapsed);
	cr_assert_not(path->steps[2].collapsed); /* '_sessions' is the same for all */
	cr_assert_not(path->steps[5].collapsed); /* 'history' too */
	cr_assert_str_eq(fmt(s, path), "module app → dict['_sessions'] → dict['<key>'] (x1000) → "
	                                "app.SessionState.__dict__['history'] → list");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, one_object_keeps_its_concrete_key)
{
	tgraph g = { 0 };
	sessions x = build_sessions(&g, 3);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &x.first_list, 1, NULL), 0);
	cr_assert_eq(p->path_count, 1);
	cr_assert_eq(p->paths[0].example, x.first_list);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module app → dict['_sessions'] → dict['user_0'] → "
	                                       "app.SessionState.__dict__['history'] → list");
	hs_paths_free(p);
	/* the instance itself: its path ends at the SessionState */
	cr_assert_eq(hs_paths_find(&p, s, NULL, &x.first_state, 1, NULL), 0);
	cr_assert_str_eq(fmt(s, &p->paths[0]),
	                 "module app → dict['_sessions'] → dict['user_0'] → app.SessionState");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, shortest_path_wins)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 1), b = tg_node(&g, "B", 1);
	uint32_t t = tg_node(&g, "T", 1);
	tg_edge(&g, r, a);
	tg_edge(&g, a, b);
	tg_edge(&g, b, t);
	tg_name(&g, r, t, "shortcut");
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &t, 1, NULL), 0);
	cr_assert_eq(p->paths[0].step_count, 2);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module m.shortcut → T");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

/* module big: list of 3 big Items; a frame local: list of 10 small Items */
static tgraph two_groups(void)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 1), md = tg_node(&g, "dict", 1);
	uint32_t big = tg_node(&g, "list", 1), small = tg_node(&g, "list", 1);
	tg_name(&g, m, md, "__dict__");
	tg_key(&g, md, tg_str(&g, "BIG"), big);
	for (int i = 0; i < 3; i++)
		tg_index(&g, big, tg_node(&g, "Item", 1000), (uint64_t)i);
	for (int i = 0; i < 10; i++)
		tg_index(&g, small, tg_node(&g, "Item", 10), (uint64_t)i);
	tg_root(&g, HS_ROOT_MODULE, m, "big", NULL);
	tg_root(&g, HS_ROOT_LOCAL, small, "thread 'MainThread' frame run (app.py:3)", "items");
	return g;
}

Test(paths, groups_sorted_by_bytes_with_root_identity)
{
	tgraph g = two_groups();
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "Item", NULL);
	cr_assert_eq(p->path_count, 2);
	cr_assert_eq(p->paths[0].count, 3);
	cr_assert_eq(p->paths[0].bytes, 3000);
	cr_assert_eq(p->paths[1].count, 10);
	cr_assert_eq(p->paths[1].bytes, 100);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module big → dict['BIG'] → list[<i>] (x3) → Item");
	cr_assert_str_eq(fmt(s, &p->paths[1]),
	                 "local items of thread 'MainThread' frame run (app.py:3): list[<i>] (x10) → Item");
	hs_paths_free(p);

	hs_paths_options o = HS_PATHS_OPTIONS_INIT;
	o.limit = 1;
	p = paths_of_type(s, "Item", &o);
	cr_assert_eq(p->path_count, 1);
	cr_assert_eq(p->group_count, 2);
	cr_assert_eq(p->omitted_count, 10);
	cr_assert_eq(p->omitted_bytes, 100);
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, same_index_everywhere_is_not_collapsed)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 1);
	for (int i = 0; i < 4; i++) {
		uint32_t t = tg_node(&g, "tuple", 10);
		tg_index(&g, m, t, (uint64_t)i);
		tg_index(&g, t, tg_node(&g, "Leaf", 5), 0);
	}
	tg_root(&g, HS_ROOT_MODULE, m, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "Leaf", NULL);
	cr_assert_eq(p->path_count, 1);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module m[<i>] (x4) → tuple[0] → Leaf");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, different_attribute_names_are_different_paths)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 1), o = tg_node(&g, "Obj", 1);
	tg_edge(&g, m, o);
	tg_edge_full(&g, o, tg_node(&g, "Leaf", 7), HS_EDGE_STRONG, HS_LABEL_ATTR_NAME, 0, "left");
	tg_edge_full(&g, o, tg_node(&g, "Leaf", 5), HS_EDGE_STRONG, HS_LABEL_ATTR_NAME, 0, "right");
	tg_edge_full(&g, o, tg_node(&g, "Leaf", 5), HS_EDGE_STRONG, HS_LABEL_ATTR, tg_str(&g, "right"), NULL);
	tg_root(&g, HS_ROOT_MODULE, m, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "Leaf", NULL);
	/* .right as a string id and .right as a str object are different label kinds */
	cr_assert_eq(p->path_count, 3);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module m → Obj.left → Leaf");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, held_roots_render_and_aggregate)
{
	tgraph g = { 0 };
	tg_root(&g, HS_ROOT_MODULE, tg_node(&g, "module", 1), "m", NULL);
	uint32_t h = tg_node(&g, "Cache", 2), d = tg_node(&g, "dict", 3);
	g.extra[h] = 1;
	tg_edge_full(&g, h, d, HS_EDGE_STRONG, HS_LABEL_ATTR_NAME, 0, "entries");
	tg_key(&g, d, tg_str(&g, "a"), tg_node(&g, "Item", 10));
	tg_key(&g, d, tg_str(&g, "b"), tg_node(&g, "Item", 10));
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "Item", NULL);
	cr_assert_eq(p->path_count, 1);
	cr_assert_eq(p->paths[0].count, 2);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "held from C: Cache.entries → dict['<key>'] (x2) → Item");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, garbage_targets_have_no_path)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 1), l = tg_node(&g, "list", 10);
	uint32_t gl = tg_node(&g, "list", 20), cyc = tg_node(&g, "Cyc", 1);
	tg_edge(&g, m, l);
	tg_edge(&g, cyc, gl);
	tg_edge(&g, gl, cyc);
	tg_weak(&g, m, gl); /* a weakref does not keep it */
	tg_root(&g, HS_ROOT_MODULE, m, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "list", NULL);
	cr_assert_eq(p->target_count, 2);
	cr_assert_eq(p->garbage_count, 1);
	cr_assert_eq(p->garbage_bytes, 20);
	cr_assert_eq(p->path_count, 1);
	cr_assert_eq(p->paths[0].count, 1);
	cr_assert_eq(p->paths[0].example, l);
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, max_depth_elides_the_middle)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 1), a = tg_node(&g, "A", 1), b = tg_node(&g, "B", 1);
	uint32_t c = tg_node(&g, "C", 1), d = tg_node(&g, "D", 1);
	tg_edge(&g, m, a);
	tg_edge(&g, a, b);
	tg_edge(&g, b, c);
	tg_edge(&g, c, d);
	tg_root(&g, HS_ROOT_MODULE, m, "m", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths_options o = HS_PATHS_OPTIONS_INIT;
	o.max_depth = 2;
	hs_paths *p;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &d, 1, &o), 0);
	cr_assert_eq(p->paths[0].step_count, 4);
	cr_assert(p->paths[0].steps[3].elided);
	cr_assert_eq(p->paths[0].steps[3].example, d);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module m → A → B → … → D");
	hs_paths_free(p);
	o.max_depth = 4;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &d, 1, &o), 0);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module m → A → B → C → D");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, a_root_object_is_its_own_path)
{
	tgraph g = { 0 };
	uint32_t m = tg_node(&g, "module", 5);
	tg_root(&g, HS_ROOT_MODULE, m, "solo", NULL);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &m, 1, NULL), 0);
	cr_assert_eq(p->paths[0].step_count, 1);
	cr_assert_str_eq(fmt(s, &p->paths[0]), "module solo");
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, formatting_truncates_like_snprintf)
{
	tgraph g = { 0 };
	build_sessions(&g, 2);
	hs_snapshot *s = tg_open(&g);
	hs_paths *p = paths_of_type(s, "list", NULL);
	char small[10];
	size_t full = hs_paths_format(small, sizeof(small), s, &p->paths[0]);
	cr_assert_gt(full, sizeof(small));
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	cr_assert_eq(hs_paths_format(NULL, 0, s, &p->paths[0]), full);
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, rejects_bad_selection)
{
	tgraph g = { 0 };
	build_sessions(&g, 2);
	hs_snapshot *s = tg_open(&g);
	uint32_t bad = 12345;
	hs_paths *p = (hs_paths *)1;
	cr_assert_eq(hs_paths_find(&p, s, NULL, &bad, 1, NULL), HS_EINVAL);
	cr_assert_null(p);
	uint32_t *sel = (uint32_t *)1;
	size_t n = 7;
	cr_assert_eq(hs_retention_select_type(&sel, &n, s, "NoSuchType"), HS_ENOTFOUND);
	cr_assert_null(sel);
	cr_assert_eq(n, 0);
	cr_assert(strstr(hs_error_last(), "NoSuchType"));
	/* an empty selection is fine */
	cr_assert_eq(hs_paths_find(&p, s, NULL, NULL, 0, NULL), 0);
	cr_assert_eq(p->path_count, 0);
	hs_paths_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(paths, reuses_a_given_reach_and_survives_oom)
{
	tgraph g = { 0 };
	build_sessions(&g, 50);
	hs_snapshot *s = tg_open(&g);
	hs_reach *re;
	cr_assert_eq(hs_reach_compute(&re, s, NULL), 0);
	uint32_t *sel;
	size_t n;
	cr_assert_eq(hs_retention_select_type(&sel, &n, s, "list"), 0);
	int ok = 0;
	for (uint64_t k = 1; k < 200 && !ok; k++) {
		hs_paths *p = (hs_paths *)1;
		hs_alloc_fail_after(k);
		int rc = hs_paths_find(&p, s, re, sel, n, NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			ok = 1;
			cr_assert_eq(p->paths[0].count, 50);
			hs_paths_free(p);
		} else {
			cr_assert_eq(rc, HS_ENOMEM);
			cr_assert_null(p);
		}
	}
	cr_assert(ok);
	hs_free(sel);
	hs_reach_free(re);
	hs_snapshot_free(s);
	tg_free(&g);
}

/* ---- garbage ----------------------------------------------------- */

Test(garbage, unreachable_objects_by_type_and_their_cycles)
{
	tgraph g = { 0 };
	uint32_t r = tg_node(&g, "module", 1), a = tg_node(&g, "A", 2);
	tg_edge(&g, r, a);
	tg_root(&g, HS_ROOT_MODULE, r, "m", NULL);
	/* a 3-cycle holding an acyclic leaf */
	uint32_t c1 = tg_node(&g, "Node", 10), c2 = tg_node(&g, "Node", 10), c3 = tg_node(&g, "Frame", 30);
	uint32_t leaf = tg_node(&g, "bytes", 500);
	tg_edge(&g, c1, c2);
	tg_edge(&g, c2, c3);
	tg_edge(&g, c3, c1);
	tg_edge(&g, c2, leaf);
	tg_weak(&g, r, c1); /* a weakref keeps nothing alive */
	/* a self-loop, an acyclic single, a big 2-cycle */
	uint32_t self = tg_node(&g, "Self", 5), single = tg_node(&g, "X", 7);
	tg_edge(&g, self, self);
	uint32_t d1 = tg_node(&g, "Y", 1000), d2 = tg_node(&g, "Y", 2000);
	tg_edge(&g, d1, d2);
	tg_edge(&g, d2, d1);
	tg_edge(&g, d1, a); /* garbage may point at live objects */
	(void)single;
	hs_snapshot *s = tg_open(&g);
	hs_garbage *gb;
	cr_assert_eq(hs_garbage_compute(&gb, s, NULL, NULL), 0, "%s", hs_error_last());
	cr_assert_eq(gb->count, 8);
	cr_assert_eq(gb->bytes, 10 + 10 + 30 + 500 + 5 + 7 + 1000 + 2000);
	cr_assert_eq(gb->type_count, 6);
	cr_assert_eq(gb->types[0].type, g.type[d1]);
	cr_assert_eq(gb->types[0].count, 2);
	cr_assert_eq(gb->types[0].bytes, 3000);
	cr_assert_eq(gb->types[1].type, g.type[leaf]);
	cr_assert_eq(gb->cycle_count, 3);
	cr_assert_eq(gb->cyclic_count, 6);
	cr_assert_eq(gb->cyclic_bytes, 3055);
	cr_assert_eq(gb->shown_cycles, 3);
	cr_assert_eq(gb->cycles[0].count, 2);
	cr_assert_eq(gb->cycles[0].bytes, 3000);
	cr_assert_eq(gb->cycles[0].example, d1);
	cr_assert_eq(gb->cycles[0].type_count, 1);
	cr_assert_eq(gb->cycles[1].count, 3);
	cr_assert_eq(gb->cycles[1].bytes, 50);
	cr_assert_eq(gb->cycles[1].example, c1);
	cr_assert_eq(gb->cycles[1].type_count, 2);
	cr_assert_eq(gb->cycles[1].types[0].type, g.type[c3]); /* Frame: 30 bytes */
	cr_assert_eq(gb->cycles[1].types[1].type, g.type[c1]);
	cr_assert_eq(gb->cycles[1].types[1].count, 2);
	cr_assert_eq(gb->cycles[2].count, 1);
	cr_assert_eq(gb->cycles[2].example, self);
	hs_garbage_free(gb);

	hs_garbage_options o = HS_GARBAGE_OPTIONS_INIT;
	o.cycle_limit = 1;
	hs_reach *re;
	cr_assert_eq(hs_reach_compute(&re, s, NULL), 0);
	cr_assert_eq(hs_garbage_compute(&gb, s, re, &o), 0);
	cr_assert_eq(gb->cycle_count, 3);
	cr_assert_eq(gb->shown_cycles, 1);
	hs_garbage_free(gb);
	hs_reach_free(re);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(garbage, none_when_everything_is_reachable)
{
	tgraph g = { 0 };
	build_sessions(&g, 10);
	hs_snapshot *s = tg_open(&g);
	hs_garbage *gb;
	cr_assert_eq(hs_garbage_compute(&gb, s, NULL, NULL), 0);
	cr_assert_eq(gb->count, 0);
	cr_assert_eq(gb->type_count, 0);
	cr_assert_eq(gb->cycle_count, 0);
	cr_assert_eq(gb->shown_cycles, 0);
	hs_garbage_free(gb);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(garbage, long_garbage_cycle_needs_no_recursion_and_survives_oom)
{
	tgraph g = { 0 };
	tg_root(&g, HS_ROOT_MODULE, tg_node(&g, "module", 1), "m", NULL);
	const uint32_t N = 100000;
	uint32_t first = g.n;
	for (uint32_t i = 0; i < N; i++) {
		uint32_t v = tg_node(&g, "Node", 1);
		if (i)
			tg_edge(&g, v - 1, v);
	}
	tg_edge(&g, first + N - 1, first);
	hs_snapshot *s = tg_open(&g);
	hs_garbage *gb;
	cr_assert_eq(hs_garbage_compute(&gb, s, NULL, NULL), 0);
	cr_assert_eq(gb->cycle_count, 1);
	cr_assert_eq(gb->cycles[0].count, N);
	cr_assert_eq(gb->cycles[0].example, first);
	hs_garbage_free(gb);
	int ok = 0;
	for (uint64_t k = 1; k < 100 && !ok; k++) {
		gb = (hs_garbage *)1;
		hs_alloc_fail_after(k);
		int rc = hs_garbage_compute(&gb, s, NULL, NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			ok = 1;
			hs_garbage_free(gb);
		} else {
			cr_assert_eq(rc, HS_ENOMEM);
			cr_assert_null(gb);
		}
	}
	cr_assert(ok);
	hs_snapshot_free(s);
	tg_free(&g);
}
