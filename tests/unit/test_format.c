/* Unit tests: the snapshot writer and reader (formats/snapshot-v1.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include "heapsnap/format.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "../../src/format/format_internal.h"
#include "testutil.h"

/* What a read reported, for comparison. */
typedef struct seen {
	hs_totals totals;
	uint32_t pyver;
	char meta[256];
	size_t meta_len;
	char strings[64][64];
	uint64_t nstrings;
	hs_type_record types[16];
	uint64_t ntypes;
	hs_node_record nodes[8];
	char values[8][300];
	uint64_t nnodes;
	hs_edge_record edges[16];
	uint64_t nedges;
	uint64_t edges_of[8];
	hs_root_record roots[8];
	uint64_t nroots;
} seen;

static int on_totals(const hs_totals *t, uint32_t pv, void *p)
{
	seen *s = p;
	s->totals = *t;
	s->pyver = pv;
	return 0;
}
static int on_meta(const char *j, size_t n, void *p)
{
	seen *s = p;
	s->meta_len = n;
	memcpy(s->meta, j, n < 255 ? n : 255);
	return 0;
}
static int on_string(uint32_t id, const char *str, size_t n, void *p)
{
	seen *s = p;
	cr_assert_eq(id, s->nstrings);
	if (s->nstrings < 64)
		snprintf(s->strings[s->nstrings], 64, "%.*s", (int)n, str);
	s->nstrings++;
	return 0;
}
static int on_type(uint32_t id, const hs_type_record *t, void *p)
{
	seen *s = p;
	cr_assert_eq(id, s->ntypes);
	if (s->ntypes < 16)
		s->types[s->ntypes] = *t;
	s->ntypes++;
	return 0;
}
static int on_node(const hs_node_record *n, void *p)
{
	seen *s = p;
	if (s->nnodes < 8) {
		s->nodes[s->nnodes] = *n;
		if (n->value) {
			memcpy(s->values[s->nnodes], n->value, n->value_len);
			s->values[s->nnodes][n->value_len] = 0;
		}
	}
	s->nnodes++;
	return 0;
}
static int on_edge(const hs_edge_record *e, void *p)
{
	seen *s = p;
	if (s->nedges < 16)
		s->edges[s->nedges] = *e;
	if (s->nnodes > 0 && s->nnodes <= 8)
		s->edges_of[s->nnodes - 1]++;
	s->nedges++;
	return 0;
}
static int on_root(const hs_root_record *r, void *p)
{
	seen *s = p;
	if (s->nroots < 8)
		s->roots[s->nroots] = *r;
	s->nroots++;
	return 0;
}

static const hs_read_visitor visitor = { HS_READ_VISITOR_VERSION, on_totals, on_meta, on_string,
	                                     on_type, on_node, on_edge, on_root };

/* dict {'k': 'v'} held by module m; a list [dict] with a weakref. */
static void write_small(const char *path, int threaded)
{
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.python_version = 0x030b07f0;
	o.threaded = threaded;
	cr_assert_eq(hs_writer_open(&w, path, &o), 0, "%s", hs_error_last());
	const char *meta = "{\"format\":\"heapsnap-snapshot\",\"pid\":42}";
	cr_assert_eq(hs_writer_meta(w, meta, strlen(meta)), 0);
	uint32_t s_dict, s_str, s_list, s_mod, s_name, s_name2, s_dictattr;
	cr_assert_eq(hs_writer_string(w, &s_dict, "dict", 4), 0);
	cr_assert_eq(hs_writer_string(w, &s_str, "str", 3), 0);
	cr_assert_eq(hs_writer_string(w, &s_list, "list", 4), 0);
	cr_assert_eq(hs_writer_string(w, &s_mod, "app", 3), 0);
	cr_assert_eq(hs_writer_string(w, &s_name, "__dict__", 8), 0);
	cr_assert_eq(hs_writer_string(w, &s_name2, "dict", 4), 0); /* interned */
	cr_assert_eq(s_name2, s_dict);
	cr_assert_eq(hs_writer_string(w, &s_dictattr, "", 0), 0);
	uint32_t t_dict, t_str, t_list;
	hs_type_record td = { 0x1000, s_dict, HS_TYPE_GC, 48 };
	hs_type_record ts = { 0x2000, s_str, 0, 40 };
	hs_type_record tl = { 0x3000, s_list, HS_TYPE_GC, 40 };
	cr_assert_eq(hs_writer_type(w, &t_dict, &td), 0);
	cr_assert_eq(hs_writer_type(w, &t_str, &ts), 0);
	cr_assert_eq(hs_writer_type(w, &t_list, &tl), 0);
	cr_assert_eq(t_list, 2);

	hs_node_record d = { 0x7f0000001000, t_dict, HS_NODE_GC_TRACKED, 232, 2, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &d), 0);
	hs_edge_record e1 = { 0x7f0000002000, HS_EDGE_STRONG, HS_LABEL_DICT_KEY, 0 };
	hs_edge_record e2 = { 0x7f0000002040, HS_EDGE_STRONG, HS_LABEL_KEY, 0x7f0000002000 };
	cr_assert_eq(hs_writer_edge(w, &e1), 0);
	cr_assert_eq(hs_writer_edge(w, &e2), 0);
	hs_node_record k = { 0x7f0000002000, t_str, HS_NODE_HAS_VALUE, 50, 3, "k", 1, 0 };
	hs_node_record v = { 0x7f0000002040, t_str, HS_NODE_HAS_VALUE | HS_NODE_VALUE_TRUNCATED, 90, 1,
	                     "vvvvvvvvvv", 10, 0 };
	cr_assert_eq(hs_writer_node(w, &k), 0);
	cr_assert_eq(hs_writer_node(w, &v), 0);
	hs_node_record l = { 0x7f0000000800, t_list, HS_NODE_GC_TRACKED, 64, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &l), 0);
	hs_edge_record e3 = { 0x7f0000001000, HS_EDGE_STRONG, HS_LABEL_INDEX, 0 };
	hs_edge_record e4 = { 0x7f0000001000, HS_EDGE_WEAK, HS_LABEL_NAME, s_name };
	cr_assert_eq(hs_writer_edge(w, &e3), 0);
	cr_assert_eq(hs_writer_edge(w, &e4), 0);
	hs_root_record r = { HS_ROOT_MODULE, 0x7f0000000800, s_mod, HS_NO_STRING };
	cr_assert_eq(hs_writer_root(w, &r), 0);
	hs_write_stats st;
	cr_assert_eq(hs_writer_commit(w, &st), 0, "%s", hs_error_last());
	cr_assert_eq(st.nodes, 4);
	cr_assert_eq(st.edges, 4);
	cr_assert_eq(st.types, 3);
	cr_assert_eq(st.roots, 1);
	hs_writer_free(w);
}

static void check_small(const seen *s)
{
	cr_assert_eq(s->pyver, 0x030b07f0);
	cr_assert_eq(s->totals.nodes, 4);
	cr_assert_eq(s->totals.edges, 4);
	cr_assert_eq(s->nnodes, 4);
	cr_assert_eq(s->nedges, 4);
	cr_assert_eq(s->nroots, 1);
	cr_assert_eq(s->ntypes, 3);
	cr_assert_str_eq(s->strings[4], "__dict__");
	cr_assert(strstr(s->meta, "\"pid\":42") != NULL);
	cr_assert_eq(s->nodes[0].address, 0x7f0000001000);
	cr_assert_eq(s->nodes[0].size, 232);
	cr_assert_eq(s->nodes[0].refcount, 2);
	cr_assert_eq(s->nodes[0].flags, HS_NODE_GC_TRACKED);
	cr_assert_eq(s->nodes[0].edge_count, 2);
	cr_assert_eq(s->edges_of[0], 2);
	cr_assert_str_eq(s->values[1], "k");
	cr_assert_str_eq(s->values[2], "vvvvvvvvvv");
	cr_assert_eq(s->nodes[2].flags, HS_NODE_HAS_VALUE | HS_NODE_VALUE_TRUNCATED);
	cr_assert_eq(s->nodes[3].address, 0x7f0000000800); /* negative delta */
	cr_assert_eq(s->edges[0].label_kind, HS_LABEL_DICT_KEY);
	cr_assert_eq(s->edges[1].label_kind, HS_LABEL_KEY);
	cr_assert_eq(s->edges[1].label, 0x7f0000002000);
	cr_assert_eq(s->edges[1].target, 0x7f0000002040);
	cr_assert_eq(s->edges[2].label_kind, HS_LABEL_INDEX);
	cr_assert_eq(s->edges[3].kind, HS_EDGE_WEAK);
	cr_assert_eq(s->edges[3].label, 4);
	cr_assert_eq(s->roots[0].kind, HS_ROOT_MODULE);
	cr_assert_eq(s->roots[0].name, 3);
	cr_assert_eq(s->roots[0].detail, HS_NO_STRING);
	cr_assert_eq(s->types[2].basic_size, 40);
	cr_assert_eq(s->types[0].flags, HS_TYPE_GC);
}

Test(format_write, round_trips_every_record_kind)
{
	const char *path = hs_test_tmppath("small.hsnap");
	write_small(path, 1);
	seen *s = calloc(1, sizeof(*s));
	cr_assert_eq(hs_format_read(path, &visitor, s), 0, "%s", hs_error_last());
	check_small(s);
	free(s);
}

Test(format_write, inline_and_threaded_writers_write_identical_files)
{
	const char *a = hs_test_tmppath("a.hsnap"), *b = hs_test_tmppath("b.hsnap");
	write_small(a, 1);
	write_small(b, 0);
	size_t la, lb;
	void *da = hs_test_read_file(a, &la), *db = hs_test_read_file(b, &lb);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(da, db, la), 0);
	free(da);
	free(db);
}

Test(format_write, file_is_private_and_no_temporary_left)
{
	const char *path = hs_test_tmppath("mode.hsnap");
	write_small(path, 1);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		cr_assert(strstr(de->d_name, ".tmp.") == NULL, "left %s", de->d_name);
	closedir(d);
}

Test(format_write, abandoned_writer_leaves_nothing)
{
	const char *path = hs_test_tmppath("abandon.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "int", 3);
	hs_type_record t = { 1, sid, 0, 28 };
	hs_writer_type(w, &tid, &t);
	for (int i = 0; i < 200000; i++) {
		hs_node_record n = { 0x1000 + 16 * (uint64_t)i, tid, 0, 28, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &n), 0);
	}
	hs_writer_free(w);
	struct stat st;
	cr_assert_neq(stat(path, &st), 0);
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		cr_assert(strstr(de->d_name, "abandon") == NULL, "left %s", de->d_name);
	closedir(d);
}

Test(format_write, rejects_undefined_ids)
{
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, hs_test_tmppath("bad.hsnap"), NULL), 0);
	hs_node_record n = { 0x10, 5, 0, 1, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &n), HS_EINVAL);
	hs_edge_record e = { 0x10, 0, 0, 0 };
	cr_assert_eq(hs_writer_edge(w, &e), HS_EINVAL);
	hs_root_record r = { HS_ROOT_HELD, 0x10, HS_NO_STRING, HS_NO_STRING };
	cr_assert_eq(hs_writer_root(w, &r), HS_EINVAL);
	hs_writer_free(w);
}

Test(format_write, cannot_create_in_missing_directory)
{
	hs_writer *w = NULL;
	cr_assert_eq(hs_writer_open(&w, "/nonexistent-dir/x.hsnap", NULL), HS_EIO);
	cr_assert_null(w);
	cr_assert(strstr(hs_error_last(), "/nonexistent-dir/x.hsnap") != NULL);
}

/* Many nodes over several chunks, a node with more edges than a chunk
 * holds (continuation records), values at the limit. */
static int count_node(const hs_node_record *n, void *p)
{
	uint64_t *c = p;
	if (n->address != 0x100000 + 16 * c[0])
		return hs_error_set(HS_EUSER, "node %llu at 0x%llx", (unsigned long long)c[0],
		                    (unsigned long long)n->address);
	if (n->size != c[0] % 1000)
		return hs_error_set(HS_EUSER, "size");
	c[0]++;
	return 0;
}
static int count_edge(const hs_edge_record *e, void *p)
{
	uint64_t *c = p;
	if (c[0] == 1 && e->label != c[2]) /* node 0's edges are indexed 0.. */
		return hs_error_set(HS_EUSER, "index %llu != %llu", (unsigned long long)e->label,
		                    (unsigned long long)c[2]);
	if (c[0] == 1)
		c[2]++;
	c[1]++;
	return 0;
}

Test(format_write, big_container_spans_sections)
{
	const char *path = hs_test_tmppath("big.hsnap");
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.chunk_nodes = 1000;
	cr_assert_eq(hs_writer_open(&w, path, &o), 0);
	uint32_t sid, tid;
	cr_assert_eq(hs_writer_string(w, &sid, "list", 4), 0);
	hs_type_record t = { 1, sid, 0, 28 };
	cr_assert_eq(hs_writer_type(w, &tid, &t), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	const uint64_t n = 5000, big = 2500000;
	for (uint64_t i = 0; i < n; i++) {
		hs_node_record rec = { 0x100000 + 16 * i, tid, 0, i % 1000, 1, NULL, 0, 0 };
		cr_assert_eq(hs_writer_node(w, &rec), 0);
		uint64_t edges = i == 0 ? big : 1;
		for (uint64_t k = 0; k < edges; k++) {
			hs_edge_record e = { 0x100000 + 16 * ((i + k) % n), 0, HS_LABEL_INDEX, k };
			cr_assert_eq(hs_writer_edge(w, &e), 0);
		}
	}
	hs_write_stats st;
	cr_assert_eq(hs_writer_commit(w, &st), 0, "%s", hs_error_last());
	hs_writer_free(w);
	cr_assert_eq(st.edges, big + n - 1);
	uint64_t c[3] = { 0, 0, 0 };
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, count_node, count_edge, 0 };
	cr_assert_eq(hs_format_read(path, &v, c), 0, "%s", hs_error_last());
	cr_assert_eq(c[0], n);
	cr_assert_eq(c[1], big + n - 1);
	cr_assert_eq(c[2], big);
	/* under 2 bytes per edge for sequential targets: compression works */
	cr_assert_lt(st.file_bytes, (big + n) * 2);
}

Test(format_write, long_values_are_cut_and_flagged)
{
	const char *path = hs_test_tmppath("long.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	hs_writer_meta(w, "{}", 2);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "str", 3);
	hs_type_record t = { 1, sid, 0, 40 };
	hs_writer_type(w, &tid, &t);
	char v[1000];
	memset(v, 'x', sizeof(v));
	hs_node_record rec = { 0x10, tid, HS_NODE_HAS_VALUE, 1040, 1, v, 1000, 0 };
	cr_assert_eq(hs_writer_node(w, &rec), 0);
	cr_assert_eq(hs_writer_commit(w, NULL), 0);
	hs_writer_free(w);
	seen *s = calloc(1, sizeof(*s));
	cr_assert_eq(hs_format_read(path, &visitor, s), 0, "%s", hs_error_last());
	cr_assert_eq(s->nodes[0].value_len, 256);
	cr_assert(s->nodes[0].flags & HS_NODE_VALUE_TRUNCATED);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Reader validation.                                                  */

static int read_mem(const void *d, size_t n)
{
	seen *s = calloc(1, sizeof(*s));
	int rc = hs_format_read_memory(d, n, "t.hsnap", &visitor, s);
	free(s);
	return rc;
}

static uint8_t *small_file(size_t *len)
{
	const char *path = hs_test_tmppath("base.hsnap");
	write_small(path, 1);
	return hs_test_read_file(path, len);
}

Test(format_read, rejects_missing_file)
{
	cr_assert_eq(hs_format_read("/nonexistent/x.hsnap", NULL, NULL), HS_EIO);
	cr_assert_str_eq(hs_error_last(), "cannot read '/nonexistent/x.hsnap': no such file");
}

Test(format_read, rejects_text_file)
{
	const char *t = "hello, this is not a snapshot\n";
	cr_assert_eq(read_mem(t, strlen(t)), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "not a heapsnap snapshot") != NULL, "%s", hs_error_last());
	cr_assert_eq(read_mem("", 0), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "empty file") != NULL);
}

Test(format_read, rejects_truncated_footer)
{
	size_t n;
	uint8_t *d = small_file(&n);
	for (size_t cut = 0; cut < n; cut++) {
		int rc = read_mem(d, cut);
		cr_assert_lt(rc, 0, "cut at %zu accepted", cut);
		if (cut >= HS_HEADER_SIZE)
			cr_assert(strstr(hs_error_last(), "truncated") != NULL, "cut %zu: %s", cut, hs_error_last());
	}
	cr_assert_eq(read_mem(d, n), 0);
	free(d);
}

Test(format_read, rejects_every_single_bit_flip)
{
	size_t n;
	uint8_t *d = small_file(&n);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			d[i] ^= (uint8_t)(1 << bit);
			int rc = read_mem(d, n);
			cr_assert_lt(rc, 0, "flip of bit %d at %zu accepted", bit, i);
			cr_assert(strstr(hs_error_last(), "t.hsnap") != NULL);
			d[i] ^= (uint8_t)(1 << bit);
		}
	}
	free(d);
}

Test(format_read, rejects_newer_major_version)
{
	size_t n;
	uint8_t *d = small_file(&n);
	hs_put_le16(d + 8, 2);
	hs_put_le16(d + 10, 0);
	hs_put_le32(d + 28, hs_crc32(0, d, 28));
	cr_assert_eq(read_mem(d, n), HS_EVERSION);
	cr_assert(strstr(hs_error_last(), "version 2.0 is not supported") != NULL, "%s", hs_error_last());
	free(d);
}

Test(format_read, accepts_newer_minor_version)
{
	size_t n;
	uint8_t *d = small_file(&n);
	hs_put_le16(d + 10, 7);
	hs_put_le32(d + 28, hs_crc32(0, d, 28));
	cr_assert_eq(read_mem(d, n), 0, "%s", hs_error_last());
	free(d);
}

Test(format_read, reports_text_mode_damage)
{
	size_t n;
	uint8_t *d = small_file(&n);
	d[4] = '\n'; /* CR LF became LF LF-ish */
	cr_assert_eq(read_mem(d, n), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "binary mode") != NULL);
	free(d);
}

/* Rewrite a section's payload (uncompressed) with valid checksums, so the
 * semantic checks behind the checksums are exercised. */
static uint8_t *forge_with_totals(size_t *len, uint64_t nodes)
{
	/* header | META | INDEX | footer, with a forged total */
	hs_buf b = HS_BUF_INIT;
	uint8_t hdr[32] = {0};
	memcpy(hdr, HS_MAGIC, 8);
	hs_put_le16(hdr + 8, 1);
	hs_put_le16(hdr + 12, 1);
	hdr[14] = 8;
	hdr[15] = 1;
	hs_put_le32(hdr + 28, hs_crc32(0, hdr, 28));
	hs_buf_put(&b, hdr, 32);
	const char *meta = "{}";
	uint8_t sh[24];
	hs_put_le32(sh, HS_SECTION_META);
	hs_put_le32(sh + 4, 0);
	hs_put_le32(sh + 8, 2);
	hs_put_le32(sh + 12, 2);
	hs_put_le32(sh + 16, hs_crc32(0, meta, 2));
	hs_put_le32(sh + 20, hs_crc32(0, sh, 20));
	hs_buf_put(&b, sh, 24);
	hs_buf_put(&b, meta, 2);
	uint64_t index_offset = b.len;
	hs_buf idx = HS_BUF_INIT;
	hs_buf_put_varint(&idx, nodes);
	for (int i = 0; i < 4; i++)
		hs_buf_put_varint(&idx, 0);
	hs_buf_put_varint(&idx, 1);
	hs_buf_put_varint(&idx, HS_SECTION_META);
	hs_buf_put_varint(&idx, 32);
	hs_buf_put_varint(&idx, 2);
	hs_buf_put_varint(&idx, 2);
	hs_put_le32(sh, HS_SECTION_INDEX);
	hs_put_le32(sh + 8, (uint32_t)idx.len);
	hs_put_le32(sh + 12, (uint32_t)idx.len);
	hs_put_le32(sh + 16, hs_crc32(0, idx.data, idx.len));
	hs_put_le32(sh + 20, hs_crc32(0, sh, 20));
	hs_buf_put(&b, sh, 24);
	hs_buf_put(&b, idx.data, idx.len);
	uint8_t foot[24];
	hs_put_le64(foot, index_offset);
	hs_put_le32(foot + 8, 1);
	hs_put_le32(foot + 12, hs_crc32(0, foot, 12));
	memcpy(foot + 16, HS_END_MAGIC, 8);
	hs_buf_put(&b, foot, 24);
	hs_buf_release(&idx);
	*len = b.len;
	return b.data;
}

Test(format_read, rejects_absurd_totals_before_allocating)
{
	size_t n;
	uint8_t *d = forge_with_totals(&n, 1ull << 40);
	cr_assert_eq(read_mem(d, n), HS_ELIMIT);
	cr_assert(strstr(hs_error_last(), "absurd totals") != NULL, "%s", hs_error_last());
	hs_free(d);
	d = forge_with_totals(&n, 0);
	cr_assert_eq(read_mem(d, n), 0, "%s", hs_error_last());
	hs_free(d);
}

Test(format_read, callback_error_stops_the_read)
{
	size_t n;
	uint8_t *d = small_file(&n);
	uint64_t c[3] = { 0, 0, 0 };
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, count_node, 0, 0 };
	cr_assert_eq(hs_format_read_memory(d, n, "x", &v, c), HS_EUSER);
	free(d);
}

Test(format_read, survives_allocation_failures)
{
	size_t n;
	uint8_t *d = small_file(&n);
	for (uint64_t k = 1; k < 20; k++) {
		hs_alloc_fail_after(k);
		int rc = read_mem(d, n);
		hs_alloc_fail_after(0);
		cr_assert(rc == 0 || rc == HS_ENOMEM, "rc %d at %llu", rc, (unsigned long long)k);
	}
	free(d);
}

Test(format_write, survives_allocation_failures)
{
	for (uint64_t k = 1; k < 40; k++) {
		hs_writer *w = NULL;
		hs_alloc_fail_after(k);
		int rc = hs_writer_open(&w, hs_test_tmppath("oom.hsnap"), NULL);
		uint32_t id;
		if (rc == 0)
			rc = hs_writer_string(w, &id, "x", 1);
		if (rc == 0)
			rc = hs_writer_meta(w, "{}", 2);
		if (rc == 0)
			rc = hs_writer_commit(w, NULL);
		hs_alloc_fail_after(0);
		cr_assert(rc == 0 || rc == HS_ENOMEM, "rc %d (%s) at %llu", rc, hs_error_last(),
		          (unsigned long long)k);
		hs_writer_free(w);
	}
}

static int on_meta_end(const char *j, size_t n, void *p)
{
	char *out = p;
	snprintf(out, 128, "%.*s", (int)n, j);
	return 0;
}

Test(format_write, closing_metadata_is_reported_after_everything)
{
	const char *path = hs_test_tmppath("metaend.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	cr_assert_eq(hs_writer_meta(w, "{\"a\":1}", 7), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "int", 3);
	hs_type_record t = { 1, sid, 0, 28 };
	hs_writer_type(w, &tid, &t);
	hs_node_record n = { 0x10, tid, 0, 28, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &n), 0);
	cr_assert_eq(hs_writer_meta_end(w, "{\"dump\":{\"pause_seconds\":0.5}}", 30), 0);
	cr_assert_eq(hs_writer_meta_end(w, "{}", 2), HS_EINVAL);
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	char got[128] = "";
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, 0, 0, 0, on_meta_end };
	cr_assert_eq(hs_format_read(path, &v, got), 0, "%s", hs_error_last());
	cr_assert_str_eq(got, "{\"dump\":{\"pause_seconds\":0.5}}");
}

static int on_size_fix(uint64_t address, uint64_t size, void *p)
{
	uint64_t *got = p;
	got[got[0] * 2 + 1] = address;
	got[got[0] * 2 + 2] = size;
	got[0]++;
	return 0;
}

Test(format_write, size_corrections_follow_their_nodes)
{
	const char *path = hs_test_tmppath("sizes.hsnap");
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "app.Sized", 9);
	hs_type_record t = { 1, sid, HS_TYPE_SIZEOF_PY, 48 };
	hs_writer_type(w, &tid, &t);
	hs_node_record a = { 0x1000, tid, HS_NODE_SIZE_ESTIMATED, 48, 1, NULL, 0, 0 };
	hs_node_record b = { 0x0800, tid, HS_NODE_SIZE_ESTIMATED, 48, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_node(w, &a), 0);
	cr_assert_eq(hs_writer_node(w, &b), 0);
	cr_assert_eq(hs_writer_size(w, 0x1000, 1234), 0);
	cr_assert_eq(hs_writer_size(w, 0x0800, 77), 0);
	cr_assert_eq(hs_writer_meta_end(w, "{}", 2), 0);
	cr_assert_eq(hs_writer_size(w, 0x0800, 78), HS_EINVAL);
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	uint64_t got[5] = { 0 };
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, on_size_fix };
	cr_assert_eq(hs_format_read(path, &v, got), 0, "%s", hs_error_last());
	cr_assert_eq(got[0], 2);
	cr_assert_eq(got[1], 0x1000);
	cr_assert_eq(got[2], 1234);
	cr_assert_eq(got[3], 0x0800);
	cr_assert_eq(got[4], 77);
}

/* Format 1.1: REPORTED sections carry what sys.getsizeof reports,
 * positionally (one entry per record of the NODES section before). */
static int on_reported_fix(uint64_t node, uint64_t address, uint64_t size, void *p)
{
	uint64_t *got = p;
	if (got[0] < 4) {
		got[1 + 3 * got[0]] = node;
		got[2 + 3 * got[0]] = address;
		got[3 + 3 * got[0]] = size;
	}
	got[0]++;
	return 0;
}

static const char *write_reported(const char *name, int chunk_nodes)
{
	const char *path = hs_test_tmppath(name);
	hs_writer *w;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.chunk_nodes = (uint32_t)chunk_nodes;
	cr_assert_eq(hs_writer_open(&w, path, &o), 0);
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	uint32_t sid, tid;
	hs_writer_string(w, &sid, "list", 4);
	hs_type_record t = { 1, sid, HS_TYPE_GC, 40 };
	hs_writer_type(w, &tid, &t);
	hs_node_record a = { 0x1000, tid, 0, 96, 1, NULL, 0, 0 };
	hs_node_record b = { 0x0800, tid, 0, 64, 1, NULL, 0, 0 };
	hs_node_record c = { 0x2000, tid, 0, 100, 1, NULL, 0, 0 };
	hs_node_record d = { 0x3000, tid, 0, 1000, 1, NULL, 0, 0 };
	cr_assert_eq(hs_writer_reported(w, 0x1000, 1), HS_EINVAL); /* before its node */
	cr_assert_eq(hs_writer_node(w, &a), 0);
	cr_assert_eq(hs_writer_reported(w, 0x0800, 88), HS_EINVAL); /* not the node just written */
	cr_assert_eq(hs_writer_reported(w, 0x1000, 88), 0);          /* 8 less: one byte */
	cr_assert_eq(hs_writer_node(w, &b), 0);                      /* b: unknown */
	cr_assert_eq(hs_writer_node(w, &c), 0);
	cr_assert_eq(hs_writer_reported(w, 0x2000, 100), 0);         /* equal is not unknown */
	cr_assert_eq(hs_writer_node(w, &d), 0);
	cr_assert_eq(hs_writer_reported(w, 0x3000, 5000), 0);        /* several bytes */
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	return path;
}

Test(format_write, reported_sizes_follow_their_nodes)
{
	for (int chunk = 1; chunk <= 4; chunk++) {
		char name[32];
		snprintf(name, sizeof(name), "rep%d.hsnap", chunk);
		const char *path = write_reported(name, chunk);
		uint64_t got[13] = { 0 };
		hs_read_visitor v = { .version = HS_READ_VISITOR_VERSION, .reported = on_reported_fix };
		cr_assert_eq(hs_format_read(path, &v, got), 0, "%s", hs_error_last());
		cr_assert_eq(got[0], 3, "chunk %d: %llu entries", chunk, (unsigned long long)got[0]);
		const uint64_t want[9] = { 0, 0x1000, 88, 2, 0x2000, 100, 3, 0x3000, 5000 };
		for (int i = 0; i < 9; i++)
			cr_assert_eq(got[1 + i], want[i], "chunk %d, field %d: %llu", chunk, i,
			             (unsigned long long)got[1 + i]);
		/* the header says 1.1 */
		FILE *f = fopen(path, "rb");
		uint8_t h[32];
		cr_assert_eq(fread(h, 1, 32, f), 32);
		fclose(f);
		cr_assert_eq(hs_get_le16(h + 10), 1);
	}
}
