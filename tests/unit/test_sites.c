/* tests/unit/test_sites.c: allocation sites in snapshots (SITES / ALLOCS
 * sections, formats/snapshot-v1.md): writer, reader, loader accessors,
 * `summary --by site`, old-reader compatibility. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "heapsnap.h"
#include "testutil.h"

/* Four objects: a Thing at 0x1010 (block 0x1000: GC header), a Thing at
 * 0x2020 (block 0x2000: 3.11+ pre-header), a dict at 0x3000 (block at the
 * object), a str at 0x4000 with no recorded allocation; plus a block at
 * 0x5000 that holds no object. Locations: 0 app.py:10 build, 1 lib
 * (library) inside, 2 app.py:20 main. Stacks: 0 [1, 0] (library frame
 * innermost: folded into app.py:10), 1 [2], 2 [] (native). */
static hs_snapshot *make(const char *name, uint64_t sample_bytes, int sites)
{
	const char *p = hs_test_tmppath(name);
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	cr_assert_eq(hs_writer_open(&w, p, &o), 0, "%s", hs_error_last());
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	static const char *const tn[] = { "app.Thing", "dict", "str" };
	uint32_t tid[3];
	for (int i = 0; i < 3; i++) {
		hs_type_record t = { 0x100 + (uint64_t)i, 0, 0, 16 };
		cr_assert_eq(hs_writer_string(w, &t.name, tn[i], strlen(tn[i])), 0);
		cr_assert_eq(hs_writer_type(w, &tid[i], &t), 0);
	}
	static const struct { uint64_t a; int t; uint64_t size; } objs[] = {
		{ 0x1010, 0, 48 }, { 0x2020, 0, 48 }, { 0x3000, 1, 1000 }, { 0x4000, 2, 60 },
	};
	for (size_t i = 0; i < 4; i++) {
		hs_node_record n = { objs[i].a, tid[objs[i].t], 0, objs[i].size, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &n), 0, "%s", hs_error_last());
	}
	if (sites) {
		uint32_t f_app, f_lib, fn_build, fn_inside, fn_main;
		cr_assert_eq(hs_writer_string(w, &f_app, "app.py", 6), 0);
		cr_assert_eq(hs_writer_string(w, &f_lib, "/usr/lib/python3.11/json.py", 27), 0);
		cr_assert_eq(hs_writer_string(w, &fn_build, "build", 5), 0);
		cr_assert_eq(hs_writer_string(w, &fn_inside, "inside", 6), 0);
		cr_assert_eq(hs_writer_string(w, &fn_main, "main", 4), 0);
		hs_site_loc locs[3] = {
			{ f_app, fn_build, 10, 0 },
			{ f_lib, fn_inside, 99, HS_SITE_LIBRARY },
			{ f_app, fn_main, 20, 0 },
		};
		uint32_t frames[] = { 1, 0, 2 };
		uint32_t lens[] = { 2, 1, 0 };
		cr_assert_eq(hs_writer_sites(w, sample_bytes, locs, 3, frames, lens, 3), 0, "%s",
		             hs_error_last());
		hs_alloc_record a[] = {
			{ 0x1000, 0, 64, 5 },        /* Thing, GC header */
			{ 0x2000, 0, 80, 6 },        /* Thing, 32-byte pre-header */
			{ 0x3000, 1, 1 << 20, 7 },   /* dict, at the block */
			{ 0x5000, 2, 4096, 8 },      /* no object */
		};
		for (size_t i = 0; i < 4; i++)
			cr_assert_eq(hs_writer_alloc(w, &a[i]), 0, "%s", hs_error_last());
		hs_alloc_record bad = { 0x6000, 9, 1, 1 };
		cr_assert_eq(hs_writer_alloc(w, &bad), HS_EINVAL, "undefined stack refused");
	}
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, p, NULL), 0, "%s", hs_error_last());
	return s;
}

Test(sites, exact_mode_joins_blocks_to_objects)
{
	hs_snapshot *s = make("exact.hsnap", 0, 1);
	cr_assert_eq(hs_snapshot_has_sites(s), 1);
	cr_assert_eq(hs_snapshot_sample_bytes(s), 0);
	cr_assert_eq(hs_snapshot_site_count(s), 3);
	cr_assert_eq(hs_snapshot_unmatched_blocks(s), 1);
	hs_node_alloc a;
	uint32_t n1 = hs_snapshot_find(s, 0x1010), n2 = hs_snapshot_find(s, 0x2020);
	uint32_t n3 = hs_snapshot_find(s, 0x3000), n4 = hs_snapshot_find(s, 0x4000);
	cr_assert_eq(hs_snapshot_node_alloc(s, n1, &a), 1);
	cr_assert_eq(a.site, 0, "library frame folded into the calling user line");
	cr_assert_eq(a.stack, 0);
	cr_assert_eq(a.time_ms, 5);
	cr_assert_eq(a.block_size, 64);
	cr_assert_float_eq(a.weight, 1.0, 1e-12);
	cr_assert_eq(hs_snapshot_node_alloc(s, n2, &a), 1);
	cr_assert_eq(a.time_ms, 6);
	cr_assert_eq(hs_snapshot_node_alloc(s, n3, &a), 1);
	cr_assert_eq(a.site, 2);
	cr_assert_eq(hs_snapshot_node_alloc(s, n4, &a), 0);
	hs_site si;
	cr_assert_eq(hs_snapshot_site(s, 0, &si), 0);
	cr_assert_str_eq(si.file, "app.py");
	cr_assert_str_eq(si.function, "build");
	cr_assert_eq(si.line, 10);
	cr_assert_eq(hs_snapshot_site(s, 3, &si), HS_EINVAL);
	const uint32_t *fr;
	cr_assert_eq(hs_snapshot_stack(s, 0, &fr), 2);
	cr_assert_eq(fr[0], 1);
	cr_assert_eq(fr[1], 0);
	cr_assert_eq(hs_snapshot_stack(s, 2, &fr), 0);

	hs_summary_options so = HS_SUMMARY_OPTIONS_INIT;
	so.by = HS_GROUP_SITE;
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, &so), 0, "%s", hs_error_last());
	cr_assert_eq(sum->row_count, 2);
	cr_assert_str_eq(sum->rows[0].name, "app.py:20 (main)");
	cr_assert_eq(sum->rows[0].count, 1);
	cr_assert_eq(sum->rows[0].bytes, 1000);
	cr_assert_str_eq(sum->rows[1].name, "app.py:10 (build)");
	cr_assert_eq(sum->rows[1].count, 2);
	cr_assert_eq(sum->rows[1].bytes, 96);
	cr_assert_eq(sum->rows[1].estimate, 0);
	cr_assert_eq(sum->rows[1].type_count, 1);
	cr_assert_str_eq(sum->rows[1].types[0].name, "app.Thing");
	cr_assert_eq(sum->sites.tracked_objects, 3);
	cr_assert_eq(sum->sites.untracked_objects, 1);
	cr_assert_eq(sum->sites.untracked_bytes, 60);
	cr_assert_eq(sum->total_bytes, 1096);
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

Test(sites, sampled_mode_reweights_small_blocks)
{
	hs_snapshot *s = make("sampled.hsnap", 512 * 1024, 1);
	cr_assert_eq(hs_snapshot_sample_bytes(s), 512 * 1024);
	hs_node_alloc a;
	cr_assert_eq(hs_snapshot_node_alloc(s, hs_snapshot_find(s, 0x1010), &a), 1);
	double p = 1.0 - exp(-64.0 / (512.0 * 1024.0));
	cr_assert_float_eq(a.weight, 1.0 / p, 1e-6);
	/* a block at or above the mean is always taken: weight 1 */
	cr_assert_eq(hs_snapshot_node_alloc(s, hs_snapshot_find(s, 0x3000), &a), 1);
	cr_assert_float_eq(a.weight, 1.0, 1e-12);
	hs_summary_options so = HS_SUMMARY_OPTIONS_INIT;
	so.by = HS_GROUP_SITE;
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, &so), 0, "%s", hs_error_last());
	cr_assert_eq(sum->row_count, 2);
	cr_assert_str_eq(sum->rows[0].name, "app.py:10 (build)", "estimates sort first: %s", sum->rows[0].name);
	cr_assert_eq(sum->rows[0].estimate, 1);
	cr_assert_eq(sum->rows[0].samples, 2);
	double w64 = 1.0 / (1.0 - exp(-64.0 / 524288.0)), w80 = 1.0 / (1.0 - exp(-80.0 / 524288.0));
	cr_assert_eq(sum->rows[0].count, (uint64_t)llround(w64 + w80));
	cr_assert_eq(sum->rows[0].bytes, (uint64_t)llround(48 * w64 + 48 * w80));
	cr_assert_eq(sum->rows[1].count, 1);
	cr_assert_eq(sum->rows[1].bytes, 1000);
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

Test(sites, no_sites_without_tracking)
{
	hs_snapshot *s = make("plain.hsnap", 0, 0);
	cr_assert_eq(hs_snapshot_has_sites(s), 0);
	hs_node_alloc a;
	cr_assert_eq(hs_snapshot_node_alloc(s, 0, &a), 0);
	hs_summary_options so = HS_SUMMARY_OPTIONS_INIT;
	so.by = HS_GROUP_SITE;
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, &so), HS_EINVAL);
	cr_assert(strstr(hs_error_last(), "no allocation sites"), "%s", hs_error_last());
	hs_snapshot_free(s);
}

/* An old reader: a visitor that knows nothing of the site sections (no
 * callbacks) reads the same nodes and totals, the sections skipped. */
static int count_node(const hs_node_record *n, void *p)
{
	(void)n;
	(*(int *)p)++;
	return 0;
}

Test(sites, readers_without_site_callbacks_skip_the_sections)
{
	hs_snapshot *s = make("old.hsnap", 0, 1);
	hs_snapshot_free(s);
	int nodes = 0;
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, count_node, 0, 0, 0, 0, 0, 0, 0, 0 };
	cr_assert_eq(hs_format_read(hs_test_tmppath("old.hsnap"), &v, &nodes), 0, "%s", hs_error_last());
	cr_assert_eq(nodes, 4);
}

Test(sites, writer_refuses_bad_tables)
{
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	cr_assert_eq(hs_writer_open(&w, hs_test_tmppath("bad.hsnap"), &o), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	hs_site_loc l = { 7, HS_NO_STRING, 1, 0 };
	uint32_t f = 0, len = 1;
	cr_assert_eq(hs_writer_sites(w, 0, &l, 1, &f, &len, 1), HS_EINVAL, "undefined string");
	l.file = HS_NO_STRING;
	f = 3;
	cr_assert_eq(hs_writer_sites(w, 0, &l, 1, &f, &len, 1), HS_EINVAL, "undefined location");
	hs_alloc_record a = { 0x10, 0, 1, 0 };
	cr_assert_eq(hs_writer_alloc(w, &a), HS_EINVAL, "no sites yet");
	hs_writer_free(w);
}
