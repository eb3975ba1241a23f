/*
 * render/summary.c: `heapsnap summary`: what the process holds physically
 * (RSS/PSS/USS) next to what Python objects account for, then objects and
 * bytes per type.
 */
#include <string.h>
#include "render/render_internal.h"
#include "render/rss_internal.h"

static size_t top_of(const hs_render_options *o, size_t rows)
{
	size_t top = o ? o->top : 25;
	return top && top < rows ? top : rows;
}

static void pct(char *buf, size_t size, uint64_t part, uint64_t whole)
{
	if (!whole)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.1f%%", 100.0 * (double)part / (double)whole);
}

static int memory_table(FILE *f, const hs_snapshot *s, const hs_summary *sum)
{
	static const struct { const char *key, *label, *what; } figs[] = {
		{ "process.rss", "RSS", "resident: physical memory of the process" },
		{ "process.pss", "PSS", "resident, shared pages divided among the processes sharing them" },
		{ "process.uss", "USS", "resident and private: freed if the process exits" },
		{ "process.swap", "swap", "swapped out" },
	};
	hs_table *t;
	HS_TRY(hs_table_new(&t, 3));
	int rc = 0;
	char h[32], line[256];
	uint64_t rss = 0, v;
	int have_rss = hs_render__meta_u64(s, "process.rss", &rss);
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]) && rc == 0; i++) {
		if (!hs_render__meta_u64(s, figs[i].key, &v))
			continue;
		hs_render_size(h, sizeof(h), v);
		const char *cells[3] = { figs[i].label, h, figs[i].what };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0) {
		char c[32], p[32];
		uint64_t tb = sum->total_bytes, tc = sum->total_count;
		if (sum->by == HS_GROUP_SITE) {
			tb = sum->sites.tracked_bytes + sum->sites.untracked_bytes;
			tc = sum->sites.tracked_objects + sum->sites.untracked_objects;
		}
		/* native buffers are nodes too, but not Python objects: shown on
		 * their own line (device memory is never part of the RSS) */
		const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
		uint64_t nb = sum->by == HS_GROUP_SITE ? 0 : st->native_bytes;
		uint64_t db = sum->by == HS_GROUP_SITE ? 0 : st->device_bytes;
		if (nb + db <= tb)
			tb -= nb + db;
		hs_render_size(h, sizeof(h), tb);
		hs_render_count(c, sizeof(c), tc);
		pct(p, sizeof(p), tb, rss);
		if (have_rss)
			snprintf(line, sizeof(line), "%s of RSS: %s objects", p, c);
		else
			snprintf(line, sizeof(line), "%s objects", c);
		const char *cells[3] = { "Python objects", h, line };
		rc = hs_table_row(t, cells);
		if (rc == 0 && nb) {
			hs_render_size(h, sizeof(h), nb);
			pct(p, sizeof(p), nb, rss);
			if (have_rss)
				snprintf(line, sizeof(line), "%s of RSS: owned by objects (numpy data, torch storages, ...)", p);
			else
				snprintf(line, sizeof(line), "owned by objects (numpy data, torch storages, ...)");
			const char *nc[3] = { "native buffers", h, line };
			rc = hs_table_row(t, nc);
		}
		if (rc == 0 && db) {
			hs_render_size(h, sizeof(h), db);
			const char *dc[3] = { "device memory", h, "tensor storages on a device: not in the RSS" };
			rc = hs_table_row(t, dc);
		}
	}
	if (rc == 0 && hs_render__meta_u64(s, "pymalloc.allocated_blocks", &v)) {
		char c[32];
		hs_render_count(c, sizeof(c), v);
		uint64_t arenas;
		if (hs_render__meta_u64(s, "pymalloc.bytes_in_arenas", &arenas)) {
			hs_render_size(h, sizeof(h), arenas);
			snprintf(line, sizeof(line), "%s blocks allocated (small objects); bytes held in arenas", c);
		} else {
			snprintf(h, sizeof(h), "-");
			snprintf(line, sizeof(line), "%s blocks allocated (small objects)", c);
		}
		const char *cells[3] = { "pymalloc", h, line };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0) {
		hs_table_column(t, 0, "memory", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "bytes", HS_ALIGN_RIGHT);
		hs_table_column(t, 2, "", HS_ALIGN_LEFT);
		rc = hs_table_print(t, f, 0);
	}
	hs_table_free(t);
	return rc;
}

static const char *by_name(hs_group_by by)
{
	return by == HS_GROUP_MODULE ? "module" : by == HS_GROUP_SITE ? "site" : "type";
}

/* "Thing 1,000, dict 500" (at most 3 types, then "+N") */
static void types_cell(char *buf, size_t size, const hs_summary_row *r)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < r->type_count && i < 3 && n < size; i++) {
		char c[32];
		hs_render_count(c, sizeof(c), r->types[i].count);
		n += (size_t)snprintf(buf + n, size - n, "%s%s %s", i ? ", " : "", r->types[i].name, c);
	}
	if (r->type_count > 3 && n < size)
		snprintf(buf + n, size - n, ", +%zu", r->type_count - 3);
}

static int site_table(FILE *f, const hs_summary *sum, const hs_render_options *opts)
{
	const hs_summary_sites *st = &sum->sites;
	char a[64], b[64], c[64], d[512];
	hs_table *t;
	HS_TRY(hs_table_new(&t, 5));
	int rc = 0;
	hs_table_column(t, 0, "allocation site", HS_ALIGN_LEFT);
	hs_table_column(t, 1, st->sample_bytes ? "objects~" : "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, st->sample_bytes ? "bytes~" : "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 3, "share", HS_ALIGN_RIGHT);
	hs_table_column(t, 4, "types", HS_ALIGN_LEFT);
	size_t top = top_of(opts, sum->row_count);
	for (size_t i = 0; i < top && rc == 0; i++) {
		const hs_summary_row *r = &sum->rows[i];
		hs_render_count(a, sizeof(a), r->count);
		hs_render_size(b, sizeof(b), r->bytes);
		pct(c, sizeof(c), r->bytes, sum->total_bytes);
		types_cell(d, sizeof(d), r);
		const char *cells[5] = { r->name, a, b, c, d };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && top < sum->row_count) {
		uint64_t oc = 0, ob = 0;
		for (size_t i = top; i < sum->row_count; i++) {
			oc += sum->rows[i].count;
			ob += sum->rows[i].bytes;
		}
		char name[64];
		snprintf(name, sizeof(name), "(%zu more sites)", sum->row_count - top);
		hs_render_count(a, sizeof(a), oc);
		hs_render_size(b, sizeof(b), ob);
		pct(c, sizeof(c), ob, sum->total_bytes);
		const char *cells[5] = { name, a, b, c, "" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		hs_render_count(a, sizeof(a), sum->total_count);
		hs_render_size(b, sizeof(b), sum->total_bytes);
		const char *cells[5] = { "total", a, b, sum->total_bytes ? "100.0%" : "-", "" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	if (rc < 0)
		return rc;
	if (st->sample_bytes) {
		hs_render_size(b, sizeof(b), st->sample_bytes);
		hs_render_count(a, sizeof(a), st->tracked_objects);
		fprintf(f, "\n~ sampled: estimates from %s recorded objects (one sample per %s allocated "
		           "on average; blocks of that size or more always recorded)\n", a, b);
	}
	hs_render_count(a, sizeof(a), st->untracked_objects);
	hs_render_size(b, sizeof(b), st->untracked_bytes);
	fprintf(f, "%s%s objects (%s) have no recorded allocation: allocated before tracking "
	           "started%s\n", st->sample_bytes ? "" : "\n", a, b,
	        st->sample_bytes ? " or not sampled" : "");
	return 0;
}

int hs_render_summary_text(FILE *f, const hs_snapshot *s, const hs_summary *sum,
                           const hs_render_options *opts)
{
	char a[64], b[64], c[64], line[512];
	const hs_snapshot_stats *ss = hs_snapshot_stats_get(s);
	hs_render_count(a, sizeof(a), sum->by == HS_GROUP_SITE ? ss->nodes : sum->total_count);
	hs_render_size(b, sizeof(b), sum->by == HS_GROUP_SITE ? ss->total_bytes : sum->total_bytes);
	snprintf(line, sizeof(line), "%s: %s objects, %s", hs_snapshot_path(s), a, b);
	const cJSON *pid = hs_render__meta(s, "pid"), *py = hs_render__meta(s, "python.version");
	const cJSON *when = hs_render__meta(s, "time_iso");
	size_t n = strlen(line);
	if (cJSON_IsNumber(pid))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; pid %.0f", pid->valuedouble);
	if (cJSON_IsString(py) && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", python %s", py->valuestring);
	if (cJSON_IsString(when) && n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, ", %s", when->valuestring);
	fprintf(f, "%s\n\n", line);
	HS_TRY(memory_table(f, s, sum));
	HS_TRY(hs_render__memory_text(f, s, sum));
	fputc('\n', f);
	if (sum->by == HS_GROUP_SITE)
		return site_table(f, sum, opts);
	if (sum->by == HS_GROUP_MODULE)
		fprintf(f, "objects by the module that defines their type (what importing a package "
		           "costs: `heapsnap retained --by package`)\n\n");

	hs_table *t;
	HS_TRY(hs_table_new(&t, 4));
	int rc = 0;
	hs_table_column(t, 0, sum->by == HS_GROUP_MODULE ? "module" : "type", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 3, "share", HS_ALIGN_RIGHT);
	size_t top = top_of(opts, sum->row_count);
	for (size_t i = 0; i < top && rc == 0; i++) {
		const hs_summary_row *r = &sum->rows[i];
		hs_render_count(a, sizeof(a), r->count);
		hs_render_size(b, sizeof(b), r->bytes);
		pct(c, sizeof(c), r->bytes, sum->total_bytes);
		const char *cells[4] = { r->name, a, b, c };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && top < sum->row_count) {
		uint64_t oc = 0, ob = 0;
		for (size_t i = top; i < sum->row_count; i++) {
			oc += sum->rows[i].count;
			ob += sum->rows[i].bytes;
		}
		char name[64];
		snprintf(name, sizeof(name), "(%zu more %s)", sum->row_count - top,
		         sum->by == HS_GROUP_MODULE ? "modules" : "types");
		hs_render_count(a, sizeof(a), oc);
		hs_render_size(b, sizeof(b), ob);
		pct(c, sizeof(c), ob, sum->total_bytes);
		const char *cells[4] = { name, a, b, c };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		hs_render_count(a, sizeof(a), sum->total_count);
		hs_render_size(b, sizeof(b), sum->total_bytes);
		const char *cells[4] = { "total", a, b, sum->total_bytes ? "100.0%" : "-" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	return rc;
}

static int site_row_json(cJSON *r, const hs_snapshot *s, const hs_summary_row *row)
{
	int ok = 1;
	if (row->site == HS_NO_SITE) {
		ok &= cJSON_AddNullToObject(r, "site") != NULL;
	} else {
		hs_site si;
		cJSON *o = cJSON_AddObjectToObject(r, "site");
		ok &= o != NULL && hs_snapshot_site(s, row->site, &si) == 0;
		if (ok) {
			ok &= cJSON_AddStringToObject(o, "file", si.file) != NULL;
			ok &= cJSON_AddItemToObject(o, "line", hs_render__num(si.line));
			ok &= cJSON_AddStringToObject(o, "function", si.function) != NULL;
		}
	}
	ok &= cJSON_AddBoolToObject(r, "estimate", row->estimate) != NULL;
	ok &= cJSON_AddItemToObject(r, "samples", hs_render__num(row->samples));
	cJSON *types = cJSON_AddArrayToObject(r, "types");
	ok &= types != NULL;
	for (size_t i = 0; ok && i < row->type_count; i++) {
		cJSON *t = cJSON_CreateObject();
		ok &= t != NULL && cJSON_AddItemToArray(types, t);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(t, "name", row->types[i].name) != NULL;
		ok &= cJSON_AddItemToObject(t, "count", hs_render__num(row->types[i].count));
		ok &= cJSON_AddItemToObject(t, "bytes", hs_render__num(row->types[i].bytes));
	}
	return ok;
}

int hs_render_summary_json(cJSON **out, const hs_snapshot *s, const hs_summary *sum,
                           const hs_render_options *opts)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = 1;
	ok &= cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= cJSON_AddStringToObject(o, "by", by_name(sum->by)) != NULL;
	ok &= cJSON_AddItemToObject(o, "top", hs_render__num(opts ? opts->top : 25));
	cJSON *mem = cJSON_AddObjectToObject(o, "memory");
	ok &= mem != NULL;
	static const char *const figs[] = { "rss", "pss", "uss", "vms", "swap" };
	for (size_t i = 0; ok && i < sizeof(figs) / sizeof(figs[0]); i++) {
		char path[32];
		uint64_t v;
		snprintf(path, sizeof(path), "process.%s", figs[i]);
		if (hs_render__meta_u64(s, path, &v))
			ok &= cJSON_AddItemToObject(mem, figs[i], hs_render__num(v));
	}
	uint64_t v;
	if (ok)
		ok &= cJSON_AddItemToObject(mem, "python_objects",
		                            hs_render__num(sum->by == HS_GROUP_SITE
		                                           ? hs_snapshot_stats_get(s)->total_bytes
		                                           : sum->total_bytes));
	if (ok && hs_render__meta_u64(s, "pymalloc.allocated_blocks", &v))
		ok &= cJSON_AddItemToObject(mem, "pymalloc_allocated_blocks", hs_render__num(v));
	if (ok && hs_render__meta_u64(s, "pymalloc.bytes_in_arenas", &v))
		ok &= cJSON_AddItemToObject(mem, "pymalloc_bytes_in_arenas", hs_render__num(v));
	if (ok)
		ok &= hs_render__memory_json(mem, s, sum);

	cJSON *total = cJSON_AddObjectToObject(o, "total");
	ok &= total != NULL;
	if (ok) {
		ok &= cJSON_AddItemToObject(total, "count", hs_render__num(sum->total_count));
		ok &= cJSON_AddItemToObject(total, "bytes", hs_render__num(sum->total_bytes));
		ok &= cJSON_AddItemToObject(total, "groups", hs_render__num(sum->row_count));
	}
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	ok &= rows != NULL;
	size_t top = top_of(opts, sum->row_count);
	for (size_t i = 0; ok && i < top; i++) {
		cJSON *r = cJSON_CreateObject();
		ok &= r != NULL && cJSON_AddItemToArray(rows, r);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(r, "name", sum->rows[i].name) != NULL;
		ok &= cJSON_AddItemToObject(r, "count", hs_render__num(sum->rows[i].count));
		ok &= cJSON_AddItemToObject(r, "bytes", hs_render__num(sum->rows[i].bytes));
		if (ok && sum->by == HS_GROUP_SITE)
			ok &= site_row_json(r, s, &sum->rows[i]);
	}
	cJSON *other = cJSON_AddObjectToObject(o, "other");
	ok &= other != NULL;
	if (ok) {
		uint64_t oc = 0, ob = 0;
		for (size_t i = top; i < sum->row_count; i++) {
			oc += sum->rows[i].count;
			ob += sum->rows[i].bytes;
		}
		ok &= cJSON_AddItemToObject(other, "count", hs_render__num(oc));
		ok &= cJSON_AddItemToObject(other, "bytes", hs_render__num(ob));
		ok &= cJSON_AddItemToObject(other, "groups", hs_render__num(sum->row_count - top));
	}
	if (ok && sum->by == HS_GROUP_SITE) {
		const hs_summary_sites *st = &sum->sites;
		cJSON *si = cJSON_AddObjectToObject(o, "sites");
		ok &= si != NULL;
		if (ok) {
			ok &= cJSON_AddBoolToObject(si, "sampled", st->sample_bytes != 0) != NULL;
			ok &= cJSON_AddItemToObject(si, "sample_bytes", hs_render__num(st->sample_bytes));
			ok &= cJSON_AddItemToObject(si, "tracked_objects", hs_render__num(st->tracked_objects));
			ok &= cJSON_AddItemToObject(si, "tracked_bytes", hs_render__num(st->tracked_bytes));
			ok &= cJSON_AddItemToObject(si, "untracked_objects", hs_render__num(st->untracked_objects));
			ok &= cJSON_AddItemToObject(si, "untracked_bytes", hs_render__num(st->untracked_bytes));
			ok &= cJSON_AddItemToObject(si, "unmatched_blocks", hs_render__num(st->unmatched_blocks));
		}
	}
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
