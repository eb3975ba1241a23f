/* tests/unit/test_analysis.c: summary and diff (src/analysis). */
#include <criterion/criterion.h>
#include <string.h>
#include "heapsnap.h"
#include "testutil.h"

/* Build a snapshot from (address, type index, size) triples over `types`. */
typedef struct obj { uint64_t addr; uint32_t type; uint64_t size; } obj;

static hs_snapshot *make(const char *name, const char *const *types, uint32_t nt,
                         const obj *objs, size_t n)
{
	const char *p = hs_test_tmppath(name);
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	cr_assert_eq(hs_writer_open(&w, p, &o), 0, "%s", hs_error_last());
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	for (uint32_t i = 0; i < nt; i++) {
		hs_type_record t = { 0x100 + i, 0, 0, 16 };
		uint32_t id;
		cr_assert_eq(hs_writer_string(w, &t.name, types[i], strlen(types[i])), 0);
		cr_assert_eq(hs_writer_type(w, &id, &t), 0);
	}
	for (size_t i = 0; i < n; i++) {
		hs_node_record r = { objs[i].addr, objs[i].type, 0, objs[i].size, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &r), 0);
	}
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, p, NULL), 0, "%s", hs_error_last());
	return s;
}

static const char *const TA[] = { "dict", "str", "app.models.User", "app.models.Order", "list",
                                  "app.cache.Entry", "dict" /* same name, second type object */ };

static const obj A[] = {
	{ 0x10, 0, 232 }, { 0x20, 0, 232 }, { 0x30, 1, 50 }, { 0x40, 1, 60 }, { 0x50, 1, 70 },
	{ 0x60, 2, 48 }, { 0x70, 2, 48 }, { 0x80, 3, 200 }, { 0x90, 4, 88 }, { 0xa0, 5, 300 },
	{ 0xb0, 6, 100 },
};

Test(analysis, summary_counts_and_sorts_by_bytes_then_count_then_name)
{
	hs_snapshot *s = make("sum.hsnap", TA, 7, A, sizeof(A) / sizeof(A[0]));
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, NULL), 0);
	cr_assert_eq(sum->by, HS_GROUP_TYPE);
	cr_assert_eq(sum->total_count, 11);
	cr_assert_eq(sum->total_bytes, 232 * 2 + 180 + 96 + 200 + 88 + 300 + 100);
	/* dict rows merge both type objects named "dict" */
	struct { const char *name; uint64_t count, bytes; } want[] = {
		{ "dict", 3, 564 }, { "app.cache.Entry", 1, 300 }, { "app.models.Order", 1, 200 },
		{ "str", 3, 180 }, { "app.models.User", 2, 96 }, { "list", 1, 88 },
	};
	cr_assert_eq(sum->row_count, 6);
	for (size_t i = 0; i < 6; i++) {
		cr_assert_str_eq(sum->rows[i].name, want[i].name, "row %zu", i);
		cr_assert_eq(sum->rows[i].count, want[i].count, "row %zu", i);
		cr_assert_eq(sum->rows[i].bytes, want[i].bytes, "row %zu", i);
	}
	hs_summary_free(sum);
	hs_summary_free(NULL);
	hs_snapshot_free(s);
}

Test(analysis, summary_ties_break_by_count_then_name)
{
	static const char *const t[] = { "b", "a", "c" };
	static const obj o[] = { { 0x10, 0, 100 }, { 0x20, 1, 100 }, { 0x30, 2, 50 }, { 0x40, 2, 50 } };
	hs_snapshot *s = make("ties.hsnap", t, 3, o, 4);
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, NULL), 0);
	cr_assert_str_eq(sum->rows[0].name, "c");
	cr_assert_str_eq(sum->rows[1].name, "a");
	cr_assert_str_eq(sum->rows[2].name, "b");
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

Test(analysis, summary_by_module_groups_before_the_last_dot)
{
	hs_snapshot *s = make("mod.hsnap", TA, 7, A, sizeof(A) / sizeof(A[0]));
	hs_summary_options o = HS_SUMMARY_OPTIONS_INIT;
	o.by = HS_GROUP_MODULE;
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, &o), 0);
	cr_assert_eq(sum->row_count, 3);
	cr_assert_str_eq(sum->rows[0].name, "builtins");
	cr_assert_eq(sum->rows[0].count, 7);
	cr_assert_eq(sum->rows[0].bytes, 564 + 180 + 88);
	cr_assert_str_eq(sum->rows[1].name, "app.cache");
	cr_assert_str_eq(sum->rows[2].name, "app.models");
	cr_assert_eq(sum->rows[2].count, 3);
	cr_assert_eq(sum->rows[2].bytes, 296);
	char buf[32];
	cr_assert_eq(hs_analysis_module_of("a.b.C", buf, sizeof(buf)), 3);
	cr_assert_str_eq(buf, "a.b");
	hs_analysis_module_of("int", buf, sizeof(buf));
	cr_assert_str_eq(buf, "builtins");
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

Test(analysis, summary_of_an_empty_snapshot_is_empty)
{
	hs_snapshot *s = make("empty.hsnap", TA, 0, NULL, 0);
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, NULL), 0);
	cr_assert_eq(sum->row_count, 0);
	cr_assert_eq(sum->total_count, 0);
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

/* B: one dict freed, a str grew, two Users new, Order's address reused by a
 * User (new), an Entry at a new address, a Session type new. Types are
 * declared in another order than in A, so matching is by name. */
static const char *const TB[] = { "app.models.User", "str", "dict", "list", "app.cache.Entry",
                                  "app.models.Session" };
static const obj B[] = {
	{ 0x10, 2, 232 }, { 0x30, 1, 50 }, { 0x40, 1, 60 }, { 0x50, 1, 90 },
	{ 0x60, 0, 48 }, { 0x70, 0, 48 }, { 0x80, 0, 48 }, { 0xc0, 0, 48 }, { 0x90, 3, 88 },
	{ 0xa8, 4, 300 }, { 0xd0, 5, 64 },
};

Test(analysis, diff_deltas_and_new_objects_are_exact)
{
	hs_snapshot *a = make("a.hsnap", TA, 7, A, sizeof(A) / sizeof(A[0]));
	hs_snapshot *b = make("b.hsnap", TB, 6, B, sizeof(B) / sizeof(B[0]));
	hs_diff *d;
	cr_assert_eq(hs_analysis_diff(&d, a, b, NULL), 0);
	struct { const char *name; uint64_t ca, ba, cb, bb; int64_t dc, db; uint64_t nc, nb; } want[] = {
		{ "app.models.User", 2, 96, 4, 192, 2, 96, 2, 96 },
		{ "app.models.Session", 0, 0, 1, 64, 1, 64, 1, 64 },
		{ "str", 3, 180, 3, 200, 0, 20, 0, 0 },
		{ "app.cache.Entry", 1, 300, 1, 300, 0, 0, 1, 300 },
		{ "list", 1, 88, 1, 88, 0, 0, 0, 0 },
		{ "app.models.Order", 1, 200, 0, 0, -1, -200, 0, 0 },
		{ "dict", 3, 564, 1, 232, -2, -332, 0, 0 },
	};
	cr_assert_eq(d->row_count, 7);
	for (size_t i = 0; i < 7; i++) {
		const hs_diff_row *r = &d->rows[i];
		cr_assert_str_eq(r->name, want[i].name, "row %zu", i);
		cr_assert_eq(r->count_a, want[i].ca, "%s", r->name);
		cr_assert_eq(r->bytes_a, want[i].ba, "%s", r->name);
		cr_assert_eq(r->count_b, want[i].cb, "%s", r->name);
		cr_assert_eq(r->bytes_b, want[i].bb, "%s", r->name);
		cr_assert_eq(r->count_delta, want[i].dc, "%s", r->name);
		cr_assert_eq(r->bytes_delta, want[i].db, "%s", r->name);
		cr_assert_eq(r->new_count, want[i].nc, "%s", r->name);
		cr_assert_eq(r->new_bytes, want[i].nb, "%s", r->name);
	}
	cr_assert_eq(d->new_row_count, 3);
	cr_assert_str_eq(d->new_rows[0].name, "app.cache.Entry");
	cr_assert_str_eq(d->new_rows[1].name, "app.models.User");
	cr_assert_str_eq(d->new_rows[2].name, "app.models.Session");
	cr_assert_eq(d->total.count_a, 11);
	cr_assert_eq(d->total.count_b, 11);
	cr_assert_eq(d->total.count_delta, 0);
	cr_assert_eq(d->total.bytes_delta, -352);
	cr_assert_eq(d->total.new_count, 4);
	cr_assert_eq(d->total.new_bytes, 460);
	cr_assert(d->grew);
	hs_diff_free(d);
	hs_diff_free(NULL);
	hs_snapshot_free(a);
	hs_snapshot_free(b);
}

Test(analysis, diff_of_a_snapshot_with_itself_finds_nothing)
{
	hs_snapshot *a = make("self.hsnap", TA, 7, A, sizeof(A) / sizeof(A[0]));
	hs_diff *d;
	cr_assert_eq(hs_analysis_diff(&d, a, a, NULL), 0);
	cr_assert_not(d->grew);
	cr_assert_eq(d->new_row_count, 0);
	cr_assert_eq(d->total.new_count, 0);
	for (size_t i = 0; i < d->row_count; i++)
		cr_assert_eq(d->rows[i].bytes_delta, 0);
	hs_diff_free(d);
	hs_snapshot_free(a);
}

Test(analysis, diff_by_module_still_matches_objects_by_type)
{
	hs_snapshot *a = make("ma.hsnap", TA, 7, A, sizeof(A) / sizeof(A[0]));
	hs_snapshot *b = make("mb.hsnap", TB, 6, B, sizeof(B) / sizeof(B[0]));
	hs_diff_options o = HS_DIFF_OPTIONS_INIT;
	o.by = HS_GROUP_MODULE;
	hs_diff *d;
	cr_assert_eq(hs_analysis_diff(&d, a, b, &o), 0);
	/* Order at 0x80 became a User: same module, still a new object */
	const hs_diff_row *m = NULL;
	for (size_t i = 0; i < d->row_count; i++)
		if (!strcmp(d->rows[i].name, "app.models"))
			m = &d->rows[i];
	cr_assert_not_null(m);
	cr_assert_eq(m->count_a, 3);
	cr_assert_eq(m->count_b, 5);
	cr_assert_eq(m->new_count, 3);
	cr_assert_eq(m->new_bytes, 160);
	hs_diff_free(d);
	hs_snapshot_free(a);
	hs_snapshot_free(b);
}
