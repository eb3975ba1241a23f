/*
 * Unit tests: leak finding across snapshots (include/heapsnap/leaks.h,
 * src/analysis/leaks.c). Heaps are written with the snapshot writer; an
 * object's address is derived from its index, so an object kept at the same
 * index in every snapshot survives, and unreachable padding objects shift
 * the addresses of objects meant to be new.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"
#include "heapsnap/retention.h"
#include "heapsnap/leaks.h"
#include "util/alloc.h"
#include "testutil.h"
#include "testgraph.h"

/* ------------------------------------------------------------------ */

/*
 * One snapshot of a process: module app -> __dict__ -> ['_sessions'] ->
 * dict of `kept` sessions (indexes stable across snapshots), then `pad`
 * unreachable objects (shifting what follows), then `fresh` sessions in the
 * same dict, and `temps` app.Temp objects in module dict key '_tmp'.
 * Each session is 1000 bytes and holds a 100-byte list.
 */
typedef struct heap_spec {
	uint32_t kept, pad, fresh, temps;
	uint64_t dict_size;
} heap_spec;

static hs_snapshot *build_heap(heap_spec h)
{
	tgraph g = { 0 };
	uint32_t module = tg_node(&g, "module", 100);
	uint32_t md = tg_node(&g, "dict", 1000);
	uint32_t ks = tg_str(&g, "_sessions"), kt = tg_str(&g, "_tmp");
	uint32_t sess = tg_node(&g, "dict", h.dict_size);
	uint32_t tmp = tg_node(&g, "list", 200);
	tg_name(&g, module, md, "__dict__");
	tg_key(&g, md, ks, sess);
	tg_key(&g, md, kt, tmp);
	tg_root(&g, HS_ROOT_MODULE, module, "app", NULL);
	for (uint32_t i = 0; i < h.kept; i++) {
		uint32_t s = tg_node(&g, "app.Session", 1000), l = tg_node(&g, "list", 100);
		tg_key(&g, sess, tg_str(&g, "k"), s);
		tg_name(&g, s, l, "history");
	}
	for (uint32_t i = 0; i < h.pad; i++)
		tg_node(&g, "pad", 8); /* unreachable, nothing refers to it: garbage */
	for (uint32_t i = 0; i < h.fresh; i++) {
		uint32_t s = tg_node(&g, "app.Session", 1000), l = tg_node(&g, "list", 100);
		tg_key(&g, sess, tg_str(&g, "k"), s);
		tg_name(&g, s, l, "history");
	}
	for (uint32_t i = 0; i < h.temps; i++)
		tg_index(&g, tmp, tg_node(&g, "app.Temp", 300), i);
	hs_snapshot *s = tg_open(&g);
	tg_free(&g);
	return s;
}

static hs_leaks *find(hs_snapshot **s, size_t n)
{
	hs_leaks *l;
	cr_assert_eq(hs_leaks_find(&l, (const hs_snapshot *const *)s, n, NULL), 0, "%s",
	             hs_error_last());
	return l;
}

static void free_all(hs_snapshot **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hs_snapshot_free(s[i]);
}

static const hs_leak_type *type_named(const hs_leaks *l, const char *name)
{
	for (size_t i = 0; i < l->type_count; i++)
		if (!strcmp(l->types[i].name, name))
			return &l->types[i];
	return NULL;
}

Test(leaks, growing_sessions_are_found_with_their_holder)
{
	/* 10 sessions, then 20, then 30: every one survives */
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 10, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 20, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 30, 0, 0, 0, 500 }),
	};
	hs_leaks *l = find(s, 3);
	cr_assert(l->found);
	const hs_leak_type *t = type_named(l, "app.Session");
	cr_assert_not_null(t);
	cr_assert_eq(t->grows, HS_LEAK_COUNT | HS_LEAK_BYTES);
	cr_assert_eq(t->count[0], 10);
	cr_assert_eq(t->count[2], 30);
	cr_assert_eq(t->new_count, 10);
	cr_assert_eq(t->new_bytes, 10000);
	/* the holder is the _sessions dict (node 4), not the module above it */
	cr_assert_eq(t->holder.node, 4);
	cr_assert_eq(t->holder.held_count, 10);
	cr_assert_eq(t->holder.held_bytes, 10000);
	/* dict 500 + 30 x (session 1000 + list 100 + key str 50) */
	cr_assert_eq(t->holder.retained_at[2], 500 + 30 * 1150);
	cr_assert_eq(t->holder.retained_at[0], 500 + 10 * 1150);
	cr_assert_eq(t->paths->path_count, 1);
	cr_assert_eq(t->paths->paths[0].count, 10);
	/* the biggest growth first: sessions (10000 B per interval) */
	cr_assert_str_eq(l->types[0].name, "app.Session");
	/* the dict keeps gaining referents; it is the first growing object */
	cr_assert_geq(l->object_count, 1);
	cr_assert_eq(l->objects[0].node, 4);
	cr_assert(l->objects[0].grows & HS_LEAK_REFERENTS);
	cr_assert_eq(l->objects[0].out_degree[0], 20);
	cr_assert_eq(l->objects[0].out_degree[2], 60);
	hs_leaks_free(l);
	free_all(s, 3);
}

Test(leaks, churn_up_and_down_is_not_a_leak)
{
	/* temps 5, 2, 4: up and down; sessions steady */
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 3, 0, 0, 5, 500 }),
		build_heap((heap_spec){ 3, 0, 0, 2, 500 }),
		build_heap((heap_spec){ 3, 0, 0, 4, 500 }),
	};
	hs_leaks *l = find(s, 3);
	cr_assert_not(l->found);
	cr_assert_eq(l->leaking_types, 0);
	cr_assert_eq(l->growing_objects, 0);
	hs_leaks_free(l);
	free_all(s, 3);
}

Test(leaks, replacement_at_a_steady_count_is_not_a_leak)
{
	/* 4 sessions, all replaced by new ones (new addresses) each time */
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 0, 0, 4, 0, 500 }),
		build_heap((heap_spec){ 0, 7, 4, 0, 500 }),
		build_heap((heap_spec){ 0, 13, 4, 0, 500 }),
	};
	hs_leaks *l = find(s, 3);
	cr_assert_not(l->found, "%zu types", l->type_count);
	hs_leaks_free(l);
	free_all(s, 3);
}

Test(leaks, new_instances_are_those_missing_from_the_previous_snapshot)
{
	/* 5 kept, then 5 kept + 3 fresh behind padding, then + 6 fresh */
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 5, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 5, 50, 3, 0, 500 }),
		build_heap((heap_spec){ 5, 100, 6, 0, 500 }),
	};
	hs_leaks *l = find(s, 3);
	const hs_leak_type *t = type_named(l, "app.Session");
	cr_assert_not_null(t);
	cr_assert_eq(t->count[1], 8);
	cr_assert_eq(t->count[2], 11);
	cr_assert_eq(t->new_count, 6);
	cr_assert_eq(t->holder.held_count, 6);
	/* the padding is garbage: never counted as growth */
	cr_assert_null(type_named(l, "pad"));
	hs_leaks_free(l);
	free_all(s, 3);
}

Test(leaks, growth_in_bytes_only_is_traced_to_the_object_that_grew)
{
	/* the sessions dict grows by 8 KiB each time, nothing else changes */
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 2, 0, 0, 0, 1000 }),
		build_heap((heap_spec){ 2, 0, 0, 0, 9192 }),
		build_heap((heap_spec){ 2, 0, 0, 0, 17384 }),
	};
	hs_leaks *l = find(s, 3);
	cr_assert(l->found);
	const hs_leak_type *t = type_named(l, "dict");
	cr_assert_not_null(t);
	cr_assert_eq(t->grows, HS_LEAK_BYTES);
	cr_assert_eq(t->new_count, 0);
	cr_assert_eq(t->holder.node, 4, "a growing object is its own holder");
	hs_leaks_free(l);
	free_all(s, 3);
}

Test(leaks, needs_three_snapshots)
{
	hs_snapshot *s[2] = {
		build_heap((heap_spec){ 1, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 2, 0, 0, 0, 500 }),
	};
	hs_leaks *l = NULL;
	cr_assert_eq(hs_leaks_find(&l, (const hs_snapshot *const *)s, 2, NULL), HS_EINVAL);
	cr_assert_null(l);
	cr_assert(strstr(hs_error_last(), "3 or more snapshots"));
	free_all(s, 2);
}

Test(leaks, growth_must_hold_in_every_interval)
{
	/* 2, 6, 6, 9: grows overall but not in the second interval */
	hs_snapshot *s[4] = {
		build_heap((heap_spec){ 2, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 6, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 6, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 9, 0, 0, 0, 500 }),
	};
	hs_leaks *l = find(s, 4);
	cr_assert_null(type_named(l, "app.Session"));
	hs_leaks_free(l);
	free_all(s, 4);
}

Test(leaks, out_of_memory_is_reported_not_crashed)
{
	hs_snapshot *s[3] = {
		build_heap((heap_spec){ 10, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 20, 0, 0, 0, 500 }),
		build_heap((heap_spec){ 30, 0, 0, 0, 500 }),
	};
	int failures = 0;
	for (uint64_t n = 1; n < 400; n++) {
		hs_leaks *l = NULL;
		hs_alloc_fail_after(n);
		int rc = hs_leaks_find(&l, (const hs_snapshot *const *)s, 3, NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			hs_leaks_free(l);
			break;
		}
		cr_assert_eq(rc, HS_ENOMEM, "allocation %llu: %d", (unsigned long long)n, rc);
		cr_assert_null(l);
		failures++;
	}
	cr_assert_gt(failures, 10);
	free_all(s, 3);
}
