/* tests/unit/test_graph.c: the snapshot loader (src/graph). */
#include <criterion/criterion.h>
#include <string.h>
#include "heapsnap.h"
#include "util/alloc.h"
#include "testutil.h"

/* ---- a tiny snapshot builder over the writer ---------------------- */

static hs_writer *begin(const char *path, const char *const *types, uint32_t ntypes)
{
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	cr_assert_eq(hs_writer_open(&w, path, &o), 0, "%s", hs_error_last());
	const char *meta = "{\"format\":\"heapsnap-snapshot\",\"pid\":1}";
	cr_assert_eq(hs_writer_meta(w, meta, strlen(meta)), 0);
	for (uint32_t i = 0; i < ntypes; i++) {
		hs_type_record t = { 0x100 + i, 0, 0, 16 };
		uint32_t id;
		cr_assert_eq(hs_writer_string(w, &t.name, types[i], strlen(types[i])), 0);
		cr_assert_eq(hs_writer_type(w, &id, &t), 0);
		cr_assert_eq(id, i);
	}
	return w;
}

static void node(hs_writer *w, uint64_t addr, uint32_t type, uint64_t size, uint64_t rc,
                 uint32_t flags, const char *value)
{
	hs_node_record n = { addr, type, flags, size, rc, value, value ? (uint32_t)strlen(value) : 0, 0 };
	if (value)
		n.flags |= HS_NODE_HAS_VALUE;
	cr_assert_eq(hs_writer_node(w, &n), 0, "%s", hs_error_last());
}

static void edge(hs_writer *w, uint64_t target, uint8_t kind, uint8_t lk, uint64_t label)
{
	hs_edge_record e = { target, kind, lk, label };
	cr_assert_eq(hs_writer_edge(w, &e), 0, "%s", hs_error_last());
}

static uint32_t str(hs_writer *w, const char *s)
{
	uint32_t id;
	cr_assert_eq(hs_writer_string(w, &id, s, strlen(s)), 0);
	return id;
}

static hs_snapshot *finish(hs_writer *w, const char *path)
{
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	return s;
}

static const char *const T[] = { "dict", "list", "str", "int", "app.User" };
enum { DICT, LIST, STR, INT, USER };

/* ---- tests -------------------------------------------------------- */

Test(graph, csr_edges_and_address_map)
{
	const char *p = hs_test_tmppath("csr.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x3000, LIST, 88, 1, HS_NODE_GC_TRACKED, NULL);
	edge(w, 0x1000, HS_EDGE_STRONG, HS_LABEL_INDEX, 0);
	edge(w, 0x2000, HS_EDGE_STRONG, HS_LABEL_INDEX, 1);
	node(w, 0x1000, INT, 28, 1, 0, "5");
	node(w, 0x2000, USER, 48, 1, HS_NODE_GC_TRACKED, NULL);
	edge(w, 0x3000, HS_EDGE_WEAK, HS_LABEL_NONE, 0);
	edge(w, 0x1000, HS_EDGE_STRONG, HS_LABEL_NONE, 0);
	edge(w, 0x2000, HS_EDGE_STRONG, HS_LABEL_NONE, 0);
	hs_snapshot *s = finish(w, p);
	const hs_graph *g = hs_snapshot_graph(s);
	cr_assert_eq(g->node_count, 3);
	cr_assert_eq(g->edge_count, 5);
	uint32_t starts[4] = { 0, 2, 2, 5 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(g->edge_start[i], starts[i], "edge_start[%d]", i);
	uint32_t targets[5] = { 1, 2, 0, 1, 2 };
	for (int e = 0; e < 5; e++)
		cr_assert_eq(g->edge_target[e], targets[e], "edge %d", e);
	cr_assert_eq(HS_EDGE_KIND(g->edge_kind[2]), HS_EDGE_WEAK);
	cr_assert_eq(HS_EDGE_LABEL(g->edge_kind[1]), HS_LABEL_INDEX);
	cr_assert_eq(g->edge_label[1], 1);
	cr_assert_eq(hs_snapshot_find(s, 0x3000), 0);
	cr_assert_eq(hs_snapshot_find(s, 0x1000), 1);
	cr_assert_eq(hs_snapshot_find(s, 0x2000), 2);
	cr_assert_eq(hs_snapshot_find(s, 0x2001), HS_NO_NODE);
	cr_assert_str_eq(hs_snapshot_node_type_name(s, 2), "app.User");
	cr_assert_eq(hs_graph_node_size(g, 0), 88);
	size_t len;
	const char *v = hs_graph_node_value(g, 1, &len);
	cr_assert(v && len == 1 && v[0] == '5');
	cr_assert_null(hs_graph_node_value(g, 0, &len));
	hs_snapshot_free(s);
}

Test(graph, address_map_finds_every_node_of_a_large_heap)
{
	const char *p = hs_test_tmppath("many.hsnap");
	hs_writer *w = begin(p, T, 5);
	/* addresses with a common stride: a poor hash would cluster them */
	for (uint64_t i = 0; i < 100000; i++)
		node(w, 0x7f0000000000ULL + i * 4096, INT, 28, 1, 0, NULL);
	hs_snapshot *s = finish(w, p);
	for (uint64_t i = 0; i < 100000; i++)
		cr_assert_eq(hs_snapshot_find(s, 0x7f0000000000ULL + i * 4096), (uint32_t)i);
	cr_assert_eq(hs_snapshot_find(s, 0x7f0000000000ULL + 8), HS_NO_NODE);
	hs_snapshot_free(s);
}

Test(graph, dangling_edges_roots_and_keys_are_dropped_and_counted)
{
	const char *p = hs_test_tmppath("dangling.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, DICT, 232, 1, HS_NODE_GC_TRACKED, NULL);
	edge(w, 0xdead, HS_EDGE_STRONG, HS_LABEL_NONE, 0);           /* dangling target */
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0xbeef);          /* dangling key */
	edge(w, 0xdead2, HS_EDGE_STRONG, HS_LABEL_INDEX, 4);          /* dangling target */
	node(w, 0x20, INT, 28, 1, 0, "1");
	hs_root_record r = { HS_ROOT_MODULE, 0x999, str(w, "gone"), HS_NO_STRING };
	cr_assert_eq(hs_writer_root(w, &r), 0);
	r.target = 0x10;
	cr_assert_eq(hs_writer_root(w, &r), 0);
	hs_snapshot *s = finish(w, p);
	const hs_graph *g = hs_snapshot_graph(s);
	const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
	cr_assert_eq(st->edges, 3);
	cr_assert_eq(g->edge_count, 1);
	cr_assert_eq(st->dangling_edges, 2);
	cr_assert_eq(st->dangling_keys, 1);
	cr_assert_eq(st->dangling_roots, 1);
	cr_assert_eq(g->edge_start[1], 1);
	cr_assert_eq(g->edge_start[2], 1);
	cr_assert_eq(g->edge_target[0], 1);
	cr_assert_eq(g->edge_label[0], HS_NO_NODE);
	char buf[64];
	hs_snapshot_edge_label(s, 0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[?]");
	cr_assert_eq(st->roots_by_kind[HS_ROOT_MODULE], 1);
	hs_snapshot_free(s);
}

Test(graph, held_from_c_roots_are_refcount_minus_strong_incoming)
{
	const char *p = hs_test_tmppath("held.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, LIST, 88, 1, HS_NODE_GC_TRACKED, NULL);     /* rc 1, 0 in: held 1 */
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_INDEX, 0);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_INDEX, 1);
	edge(w, 0x30, HS_EDGE_WEAK, HS_LABEL_NONE, 0);
	edge(w, 0x40, HS_EDGE_STRONG, HS_LABEL_INDEX, 2);
	node(w, 0x20, USER, 48, 5, HS_NODE_GC_TRACKED, NULL);     /* rc 5, 2 in: held 3 */
	node(w, 0x30, USER, 48, 1, HS_NODE_GC_TRACKED, NULL);     /* only weak in: held 1 */
	node(w, 0x40, INT, 28, 0, HS_NODE_IMMORTAL, "7");         /* immortal: a root, excess 0 */
	node(w, 0x50, INT, 28, 0, 0, "8");                        /* rc 0 < in 0: not held */
	hs_snapshot *s = finish(w, p);
	const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
	cr_assert_eq(st->held_roots, 4);
	cr_assert_eq(hs_snapshot_root_count(s), 4);
	uint32_t nodes[4] = { 0, 1, 2, 3 };
	uint64_t excess[4] = { 1, 3, 1, 0 };
	for (uint32_t i = 0; i < 4; i++) {
		hs_snapshot_root r;
		cr_assert_eq(hs_snapshot_root_get(s, i, &r), 0);
		cr_assert_eq(r.kind, HS_ROOT_HELD);
		cr_assert_eq(r.node, nodes[i]);
		cr_assert_eq(r.excess, excess[i], "root %u excess %u", i, r.excess);
	}
	hs_snapshot_root r;
	cr_assert_eq(hs_snapshot_root_get(s, 4, &r), HS_ENOTFOUND);
	hs_snapshot_free(s);
}

Test(graph, file_roots_keep_kind_name_detail_and_come_first)
{
	const char *p = hs_test_tmppath("roots.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, DICT, 232, 1, HS_NODE_GC_TRACKED, NULL);
	node(w, 0x20, LIST, 88, 2, HS_NODE_GC_TRACKED, NULL);
	hs_root_record r = { HS_ROOT_LOCAL, 0x20, str(w, "thread 'MainThread' frame run (a.py:3)"),
	                     str(w, "buf") };
	cr_assert_eq(hs_writer_root(w, &r), 0);
	hs_snapshot *s = finish(w, p);
	cr_assert_eq(hs_snapshot_root_count(s), 3);
	hs_snapshot_root rt;
	const hs_snapshot_root *root = &rt;
	cr_assert_eq(hs_snapshot_root_get(s, 0, &rt), 0);
	cr_assert_eq(root->kind, HS_ROOT_LOCAL);
	cr_assert_eq(root->node, 1);
	cr_assert_str_eq(hs_snapshot_string(s, root->name, NULL), "thread 'MainThread' frame run (a.py:3)");
	cr_assert_str_eq(hs_snapshot_string(s, root->detail, NULL), "buf");
	cr_assert_eq(hs_snapshot_root_get(s, 1, &rt), 0);
	cr_assert_eq(root->kind, HS_ROOT_HELD);
	cr_assert_eq(root->node, 0);
	cr_assert_eq(root->excess, 1);
	cr_assert_eq(hs_snapshot_root_get(s, 2, &rt), 0);
	cr_assert_eq(root->node, 1);
	cr_assert_eq(root->excess, 2);
	cr_assert_str_eq(hs_root_kind_name(HS_ROOT_HELD), "held");
	hs_snapshot_free(s);
}

Test(graph, labels_render_as_python_reads_them)
{
	const char *p = hs_test_tmppath("labels.hsnap");
	hs_writer *w = begin(p, T, 5);
	uint32_t dict_s = str(w, "__dict__"), name_s = str(w, "name"), buf_s = str(w, "buf");
	node(w, 0x10, DICT, 232, 1, HS_NODE_GC_TRACKED, NULL);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_INDEX, 3);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0x30);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0x40);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_ATTR, 0x50);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_NAME, dict_s);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_ATTR_NAME, name_s);
	edge(w, 0x30, HS_EDGE_STRONG, HS_LABEL_DICT_KEY, 0);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_LOCAL, buf_s);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_NONE, 0);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0x60);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0x10);
	node(w, 0x20, LIST, 88, 1, HS_NODE_GC_TRACKED, NULL);
	node(w, 0x30, STR, 56, 1, 0, "user_42");
	node(w, 0x40, INT, 28, 1, 0, "42");
	node(w, 0x50, STR, 53, 1, 0, "name");
	node(w, 0x60, STR, 60, 1, HS_NODE_VALUE_TRUNCATED, "it's\n");
	hs_snapshot *s = finish(w, p);
	const char *want[] = { "[3]", "['user_42']", "[42]", ".name", "__dict__", ".name", "<key>",
	                       "local buf", "", "[\"it's\\n\"\xe2\x80\xa6]", "[<dict at 0x10>]" };
	char buf[64];
	for (uint32_t e = 0; e < 11; e++) {
		size_t n = hs_snapshot_edge_label(s, e, buf, sizeof(buf));
		cr_assert_str_eq(buf, want[e], "edge %u", e);
		cr_assert_eq(n, strlen(want[e]));
	}
	/* truncation like snprintf: the full length is returned */
	char small[5];
	cr_assert_eq(hs_snapshot_edge_label(s, 1, small, sizeof(small)), 11);
	cr_assert_str_eq(small, "['us");
	hs_snapshot_node_value_repr(s, 2, buf, sizeof(buf));
	cr_assert_str_eq(buf, "'user_42'");
	hs_snapshot_node_value_repr(s, 3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "42");
	hs_snapshot_free(s);
}

Test(graph, sizes_beyond_32_bits_are_exact)
{
	const char *p = hs_test_tmppath("big.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, LIST, 5ULL << 30, 1, 0, NULL);
	node(w, 0x20, LIST, 0xffffffffULL, 1, 0, NULL);
	node(w, 0x30, LIST, 0xfffffffeULL, 1, 0, NULL);
	hs_snapshot *s = finish(w, p);
	const hs_graph *g = hs_snapshot_graph(s);
	cr_assert_eq(hs_graph_node_size(g, 0), 5ULL << 30);
	cr_assert_eq(hs_graph_node_size(g, 1), 0xffffffffULL);
	cr_assert_eq(hs_graph_node_size(g, 2), 0xfffffffeULL);
	cr_assert_eq(hs_snapshot_stats_get(s)->total_bytes, (5ULL << 30) + 0xffffffffULL + 0xfffffffeULL);
	hs_snapshot_free(s);
}

Test(graph, reverse_edges_list_referrers_with_their_edge)
{
	const char *p = hs_test_tmppath("rev.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, LIST, 88, 1, 0, NULL);
	edge(w, 0x30, HS_EDGE_STRONG, HS_LABEL_INDEX, 0);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_INDEX, 1);
	node(w, 0x20, LIST, 88, 1, 0, NULL);
	edge(w, 0x30, HS_EDGE_STRONG, HS_LABEL_INDEX, 0);
	node(w, 0x30, INT, 28, 2, 0, "1");
	hs_snapshot *s = finish(w, p);
	cr_assert_eq(hs_snapshot_build_reverse(s), 0);
	cr_assert_eq(hs_snapshot_build_reverse(s), 0);
	const hs_graph *g = hs_snapshot_graph(s);
	cr_assert_eq(g->rev_start[0], 0);
	cr_assert_eq(g->rev_start[1], 0);
	cr_assert_eq(g->rev_start[2], 1);
	cr_assert_eq(g->rev_start[3], 3);
	cr_assert_eq(g->rev_source[0], 0);
	cr_assert_eq(g->rev_edge[0], 1);
	cr_assert_eq(g->rev_source[1], 0);
	cr_assert_eq(g->rev_edge[1], 0);
	cr_assert_eq(g->rev_source[2], 1);
	cr_assert_eq(g->rev_edge[2], 2);
	hs_snapshot_free(s);
}

Test(graph, duplicate_addresses_are_a_format_error)
{
	const char *p = hs_test_tmppath("dup.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, LIST, 88, 1, 0, NULL);
	node(w, 0x10, INT, 28, 1, 0, NULL);
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	hs_snapshot *s = (hs_snapshot *)1;
	cr_assert_eq(hs_snapshot_open(&s, p, NULL), HS_EFORMAT);
	cr_assert_null(s);
	cr_assert(strstr(hs_error_last(), "dup.hsnap"), "%s", hs_error_last());
	cr_assert(strstr(hs_error_last(), "0x10"), "%s", hs_error_last());
}

Test(graph, bad_input_is_one_error_naming_the_file)
{
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, "/nonexistent/x.hsnap", NULL), HS_EIO);
	cr_assert(strstr(hs_error_last(), "'/nonexistent/x.hsnap'"), "%s", hs_error_last());
	const char *p = hs_test_tmppath("trunc.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, LIST, 88, 1, 0, NULL);
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	size_t len;
	void *data = hs_test_read_file(p, &len);
	for (size_t cut = 0; cut < len; cut += 7) {
		cr_assert_lt(hs_snapshot_open_memory(&s, data, cut, "cut.hsnap", NULL), 0);
		cr_assert(strstr(hs_error_last(), "cut.hsnap"), "%s", hs_error_last());
	}
	cr_assert_eq(hs_snapshot_open_memory(&s, data, len, "whole.hsnap", NULL), 0);
	cr_assert_str_eq(hs_snapshot_path(s), "whole.hsnap");
	hs_snapshot_free(s);
	free(data);
	hs_snapshot_free(NULL);
}

Test(graph, max_nodes_option_limits_what_is_loaded)
{
	const char *p = hs_test_tmppath("limit.hsnap");
	hs_writer *w = begin(p, T, 5);
	for (int i = 0; i < 10; i++)
		node(w, 0x10 + (uint64_t)i * 16, INT, 28, 1, 0, NULL);
	hs_snapshot *s = finish(w, p);
	hs_snapshot_free(s);
	hs_snapshot_options o = HS_SNAPSHOT_OPTIONS_INIT;
	o.max_nodes = 9;
	cr_assert_eq(hs_snapshot_open(&s, p, &o), HS_ELIMIT);
	o.max_nodes = 10;
	cr_assert_eq(hs_snapshot_open(&s, p, &o), 0);
	hs_snapshot_free(s);
}

Test(graph, out_of_memory_at_every_allocation_fails_cleanly)
{
	const char *p = hs_test_tmppath("oom.hsnap");
	hs_writer *w = begin(p, T, 5);
	node(w, 0x10, DICT, 232, 1, 0, NULL);
	edge(w, 0x20, HS_EDGE_STRONG, HS_LABEL_KEY, 0x20);
	node(w, 0x20, STR, 50, 2, 0, "k");
	hs_root_record r = { HS_ROOT_MODULE, 0x10, str(w, "m"), HS_NO_STRING };
	cr_assert_eq(hs_writer_root(w, &r), 0);
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	size_t before = hs_alloc_current();
	int ok = 0;
	for (uint64_t n = 1; n < 500 && !ok; n++) {
		hs_snapshot *s;
		hs_alloc_fail_after(n);
		int rc = hs_snapshot_open(&s, p, NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			ok = 1;
			hs_snapshot_free(s);
		} else {
			cr_assert_eq(rc, HS_ENOMEM, "allocation %llu: %s", (unsigned long long)n,
			             hs_error_last());
		}
		cr_assert_eq(hs_alloc_current(), before, "leak after failing allocation %llu",
		             (unsigned long long)n);
	}
	cr_assert(ok);
}

/* Regression: a container with more references than one NODES section
 * holds is continued in the next section; the loader must give the node all
 * of them (it used to fail with "a reference that belongs to no object"). */
Test(graph, container_spanning_sections_keeps_all_its_edges)
{
	const char *path = hs_test_tmppath("span.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "list", 4);
	hs_type_record t = { 1, sid, HS_TYPE_GC, 56 };
	hs_writer_type(w, &tid, &t);
	const uint32_t items = (1u << 20) + 5000, n = 3000;
	/* a few small nodes first, then the big list, then its items */
	for (uint32_t i = 0; i < 10; i++) {
		hs_node_record rec = { 0x10000 + 16ull * i, tid, 0, 56, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &rec), 0);
		hs_edge_record e = { 0x100000, 0, HS_LABEL_NONE, 0 };
		cr_assert_eq(hs_writer_edge(w, &e), 0);
	}
	hs_node_record big = { 0x100000, tid, 0, 8u * items, 11, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &big), 0);
	for (uint32_t k = 0; k < items; k++) {
		hs_edge_record e = { 0x200000 + 16ull * (k % n), 0, HS_LABEL_INDEX, k };
		cr_assert_eq(hs_writer_edge(w, &e), 0);
	}
	for (uint32_t i = 0; i < n; i++) {
		hs_node_record rec = { 0x200000 + 16ull * i, tid, 0, 56, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &rec), 0);
	}
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);

	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	const hs_graph *g = hs_snapshot_graph(s);
	cr_assert_eq(g->node_count, 10 + 1 + n);
	uint32_t b = hs_snapshot_find(s, 0x100000);
	cr_assert_eq(b, 10);
	cr_assert_eq(g->edge_start[b + 1] - g->edge_start[b], items);
	cr_assert_eq(g->edge_label[g->edge_start[b + 1] - 1], items - 1);
	cr_assert_eq(g->edge_target[g->edge_start[b] + n], hs_snapshot_find(s, 0x200000));
	hs_snapshot_free(s);
}

Test(graph, size_corrections_replace_estimates)
{
	const char *path = hs_test_tmppath("fix.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "app.Sized", 9);
	hs_type_record t = { 1, sid, HS_TYPE_SIZEOF_PY, 48 };
	hs_writer_type(w, &tid, &t);
	hs_node_record a = { 0x1000, tid, HS_NODE_SIZE_ESTIMATED, 48, 1, NULL, 0, 0 };
	hs_node_record b = { 0x2000, tid, HS_NODE_SIZE_ESTIMATED, 48, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &a), 0);
	cr_assert_eq(hs_writer_node(w, &b), 0);
	cr_assert_eq(hs_writer_size(w, 0x1000, 1234), 0);
	cr_assert_eq(hs_writer_size(w, 0x9999, 5), 0); /* no such object: ignored */
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	const hs_graph *g = hs_snapshot_graph(s);
	uint32_t ia = hs_snapshot_find(s, 0x1000), ib = hs_snapshot_find(s, 0x2000);
	cr_assert_eq(hs_graph_node_size(g, ia), 1234);
	cr_assert_eq(g->flags[ia] & HS_NODE_SIZE_ESTIMATED, 0);
	cr_assert_eq(hs_graph_node_size(g, ib), 48);
	cr_assert_neq(g->flags[ib] & HS_NODE_SIZE_ESTIMATED, 0);
	cr_assert_eq(hs_snapshot_stats_get(s)->total_bytes, 1234 + 48);
	cr_assert_eq(hs_snapshot_stats_get(s)->size_fixes, 1);
	hs_snapshot_free(s);
}

/* Regression: META_END keys that META already has are replaced (cJSON's
 * replace used to free the key it was given: pause_seconds stayed null). */
Test(graph, closing_metadata_replaces_and_adds_keys)
{
	const char *path = hs_test_tmppath("metaend.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	const char *meta = "{\"pid\":7,\"dump\":{\"pause_seconds\":null,\"collect\":false,\"notes\":[]},\"x\":1}";
	cr_assert_eq(hs_writer_meta(w, meta, strlen(meta)), 0);
	const char *end = "{\"dump\":{\"pause_seconds\":0.25,\"notes\":[\"n\"],\"objects\":3},\"x\":2,\"y\":3}";
	cr_assert_eq(hs_writer_meta_end(w, end, strlen(end)), 0);
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	const char *j = hs_snapshot_meta_json(s, NULL);
	cr_assert(strstr(j, "\"pause_seconds\":0.25"), "%s", j);
	cr_assert(strstr(j, "\"collect\":false"), "%s", j);
	cr_assert(strstr(j, "\"notes\":[\"n\"]"), "%s", j);
	cr_assert(strstr(j, "\"objects\":3"), "%s", j);
	cr_assert(strstr(j, "\"x\":2"), "%s", j);
	cr_assert(strstr(j, "\"y\":3"), "%s", j);
	cr_assert(strstr(j, "\"pid\":7"), "%s", j);
	hs_snapshot_free(s);
}
