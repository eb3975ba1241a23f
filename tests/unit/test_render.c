/* tests/unit/test_render.c: human numbers, tables, JSON (src/render). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap.h"
#include "testutil.h"

static const char *size_of(uint64_t v)
{
	static char buf[64];
	hs_render_size(buf, sizeof(buf), v);
	return buf;
}

Test(render, human_sizes_use_binary_units_with_one_decimal)
{
	cr_assert_str_eq(size_of(0), "0 B");
	cr_assert_str_eq(size_of(1023), "1023 B");
	cr_assert_str_eq(size_of(1024), "1.0 KiB");
	cr_assert_str_eq(size_of(1536), "1.5 KiB");
	cr_assert_str_eq(size_of(1048575), "1.0 MiB");   /* not "1024.0 KiB" */
	cr_assert_str_eq(size_of(3327), "3.2 KiB");
	cr_assert_str_eq(size_of(52428800), "50.0 MiB");
	cr_assert_str_eq(size_of(5ULL << 30), "5.0 GiB");
	cr_assert_str_eq(size_of(3ULL << 40), "3.0 TiB");
	char buf[32];
	hs_render_size_delta(buf, sizeof(buf), -232);
	cr_assert_str_eq(buf, "-232 B");
	hs_render_size_delta(buf, sizeof(buf), 1536);
	cr_assert_str_eq(buf, "+1.5 KiB");
	hs_render_size_delta(buf, sizeof(buf), 0);
	cr_assert_str_eq(buf, "0 B");
	hs_render_size_delta(buf, sizeof(buf), INT64_MIN);
	cr_assert_str_eq(buf, "-8.0 EiB");
}

Test(render, human_counts_have_thousands_separators)
{
	char buf[32];
	hs_render_count(buf, sizeof(buf), 0);
	cr_assert_str_eq(buf, "0");
	hs_render_count(buf, sizeof(buf), 999);
	cr_assert_str_eq(buf, "999");
	hs_render_count(buf, sizeof(buf), 1000);
	cr_assert_str_eq(buf, "1,000");
	hs_render_count(buf, sizeof(buf), 1234567);
	cr_assert_str_eq(buf, "1,234,567");
	hs_render_count(buf, sizeof(buf), UINT64_MAX);
	cr_assert_str_eq(buf, "18,446,744,073,709,551,615");
	hs_render_count_delta(buf, sizeof(buf), -1234);
	cr_assert_str_eq(buf, "-1,234");
	hs_render_count_delta(buf, sizeof(buf), 5);
	cr_assert_str_eq(buf, "+5");
	char small[4];
	cr_assert_eq(hs_render_count(small, sizeof(small), 1234567), 9);
	cr_assert_str_eq(small, "1,2");
}

static char *print_table(const hs_table *t, int indent)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	cr_assert_eq(hs_table_print(t, f, indent), 0);
	fclose(f);
	return out;
}

Test(render, tables_align_numbers_right_and_grow_columns)
{
	hs_table *t;
	cr_assert_eq(hs_table_new(&t, 3), 0);
	hs_table_column(t, 0, "type", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
	const char *r1[] = { "dict", "12", "1.9 KiB" };
	const char *r2[] = { "app.models.VeryLongTypeName", "1,234", "8 B" };
	const char *r3[] = { "caf\xc3\xa9", "1", NULL };
	cr_assert_eq(hs_table_row(t, r1), 0);
	cr_assert_eq(hs_table_row(t, r2), 0);
	cr_assert_eq(hs_table_row(t, r3), 0);
	cr_assert_eq(hs_table_rule(t), 0);
	char *out = print_table(t, 2);
	cr_assert_str_eq(out,
		"  type                         objects    bytes\n"
		"  dict                              12  1.9 KiB\n"
		"  app.models.VeryLongTypeName    1,234      8 B\n"
		"  caf\xc3\xa9                               1\n"
		"  ---------------------------  -------  -------\n");
	free(out);
	hs_table_free(t);
	hs_table_free(NULL);
}

Test(render, tables_without_headers_print_no_header_line)
{
	hs_table *t;
	cr_assert_eq(hs_table_new(&t, 2), 0);
	const char *r[] = { "pid", "42" };
	cr_assert_eq(hs_table_row(t, r), 0);
	char *out = print_table(t, 0);
	cr_assert_str_eq(out, "pid  42\n");
	free(out);
	hs_table_free(t);
}

static hs_snapshot *tiny(void)
{
	const char *p = hs_test_tmppath("render.hsnap");
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	cr_assert_eq(hs_writer_open(&w, p, &o), 0);
	const char *meta = "{\"format\":\"heapsnap-snapshot\",\"pid\":42,"
	                   "\"process\":{\"rss\":1048576,\"uss\":524288},"
	                   "\"pymalloc\":{\"allocated_blocks\":10}}";
	cr_assert_eq(hs_writer_meta(w, meta, strlen(meta)), 0);
	const char *names[] = { "dict", "str", "app.User" };
	for (uint32_t i = 0; i < 3; i++) {
		hs_type_record t = { 0x100 + i, 0, 0, 16 };
		uint32_t id;
		cr_assert_eq(hs_writer_string(w, &t.name, names[i], strlen(names[i])), 0);
		cr_assert_eq(hs_writer_type(w, &id, &t), 0);
	}
	uint64_t sizes[] = { 232, 50, 48, 48 };
	uint32_t types[] = { 0, 1, 2, 2 };
	for (int i = 0; i < 4; i++) {
		hs_node_record r = { 0x10 + (uint64_t)i * 16, types[i], 0, sizes[i], 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &r), 0);
	}
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, p, NULL), 0, "%s", hs_error_last());
	return s;
}

Test(render, summary_json_has_rows_other_and_memory)
{
	hs_snapshot *s = tiny();
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, NULL), 0);
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = 2;
	cJSON *j;
	cr_assert_eq(hs_render_summary_json(&j, s, sum, &ro), 0);
	char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "rows"));
	cr_assert_str_eq(text, "[{\"name\":\"dict\",\"count\":1,\"bytes\":232},"
	                       "{\"name\":\"app.User\",\"count\":2,\"bytes\":96}]");
	cJSON_free(text);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "other"));
	cr_assert_str_eq(text, "{\"count\":1,\"bytes\":50,\"groups\":1}");
	cJSON_free(text);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "memory"));
	cr_assert_str_eq(text, "{\"rss\":1048576,\"uss\":524288,\"python_objects\":378,"
	                       "\"pymalloc_allocated_blocks\":10,\"size_model\":\"getsizeof\","
	                       "\"warnings\":[],\"breakdown_unavailable\":\"snapshot taken by an "
	                       "older hook\"}");
	cJSON_free(text);
	cJSON_Delete(j);
	hs_summary_free(sum);
	hs_snapshot_free(s);
}

Test(render, summary_text_shows_memory_side_by_side_and_totals)
{
	hs_snapshot *s = tiny();
	hs_summary *sum;
	cr_assert_eq(hs_analysis_summary(&sum, s, NULL), 0);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = 1;
	cr_assert_eq(hs_render_summary_text(f, s, sum, &ro), 0);
	fclose(f);
	cr_assert(strstr(out, "\nRSS               1.0 MiB  resident"), "%s", out);
	cr_assert(strstr(out, "\nUSS             512.0 KiB  resident and private"), "%s", out);
	cr_assert(strstr(out, "\nPython objects      378 B  0.0% of RSS: 4 objects"), "%s", out);
	cr_assert(strstr(out, "\ntype            objects  bytes   share\n"), "%s", out);
	cr_assert(strstr(out, "\ndict                  1  232 B   61.4%\n"), "%s", out);
	cr_assert(strstr(out, "\n(2 more types)        3  146 B   38.6%\n"), "%s", out);
	cr_assert(strstr(out, "\ntotal                 4  378 B  100.0%\n"), "%s", out);
	free(out);
	hs_summary_free(sum);
	hs_snapshot_free(s);
}
