/* render/diff.c: `heapsnap diff`: growth per type, and objects new in B. */
#include <string.h>
#include "render/render_internal.h"
#include "util/alloc.h"

static size_t top_of(const hs_render_options *o, size_t rows)
{
	size_t top = o ? o->top : 25;
	return top && top < rows ? top : rows;
}

static void sum_rows(hs_diff_row *acc, const hs_diff_row *rows, size_t from, size_t to)
{
	memset(acc, 0, sizeof(*acc));
	for (size_t i = from; i < to; i++) {
		acc->count_a += rows[i].count_a;
		acc->bytes_a += rows[i].bytes_a;
		acc->count_b += rows[i].count_b;
		acc->bytes_b += rows[i].bytes_b;
		acc->new_count += rows[i].new_count;
		acc->new_bytes += rows[i].new_bytes;
	}
	acc->count_delta = (int64_t)(acc->count_b - acc->count_a);
	acc->bytes_delta = (int64_t)(acc->bytes_b - acc->bytes_a);
}

static int changed(const hs_diff_row *r)
{
	return r->count_delta || r->bytes_delta || r->new_count;
}

/* The rows worth listing: those that changed (in order: growth first,
 * shrinkage last), so unchanged types never push shrinking ones out of
 * the top N. *out is hs_free'd by the caller. */
static int changed_rows(const hs_diff *d, hs_diff_row **out, size_t *n)
{
	*n = 0;
	*out = hs_reallocarray(NULL, d->row_count ? d->row_count : 1, sizeof(hs_diff_row));
	if (!*out)
		return HS_ENOMEM;
	for (size_t i = 0; i < d->row_count; i++)
		if (changed(&d->rows[i]))
			(*out)[(*n)++] = d->rows[i];
	return 0;
}

static int change_row(hs_table *t, const char *name, const hs_diff_row *r)
{
	char ca[32], cb[32], cd[32], ba[32], bb[32], bd[32];
	hs_render_count(ca, sizeof(ca), r->count_a);
	hs_render_count(cb, sizeof(cb), r->count_b);
	hs_render_count_delta(cd, sizeof(cd), r->count_delta);
	hs_render_size(ba, sizeof(ba), r->bytes_a);
	hs_render_size(bb, sizeof(bb), r->bytes_b);
	hs_render_size_delta(bd, sizeof(bd), r->bytes_delta);
	const char *cells[7] = { name, ca, cb, cd, ba, bb, bd };
	return hs_table_row(t, cells);
}

int hs_render_diff_text(FILE *f, const hs_snapshot *a, const hs_snapshot *b, const hs_diff *d,
                        const hs_render_options *opts)
{
	const char *kind = d->by == HS_GROUP_MODULE ? "module" : "type";
	const char *kinds = d->by == HS_GROUP_MODULE ? "modules" : "types";
	char x[32], y[32], z[32], u[32], v[32], w[32];
	hs_render_count(x, sizeof(x), d->total.count_a);
	hs_render_count(y, sizeof(y), d->total.count_b);
	hs_render_count_delta(z, sizeof(z), d->total.count_delta);
	hs_render_size(u, sizeof(u), d->total.bytes_a);
	hs_render_size(v, sizeof(v), d->total.bytes_b);
	hs_render_size_delta(w, sizeof(w), d->total.bytes_delta);
	fprintf(f, "A %s\nB %s\nobjects %s -> %s (%s), bytes %s -> %s (%s)\n\n",
	        hs_snapshot_path(a), hs_snapshot_path(b), x, y, z, u, v, w);

	hs_table *t;
	HS_TRY(hs_table_new(&t, 7));
	static const char *const heads[7] = { NULL, "objects A", "objects B", "change",
	                                      "bytes A", "bytes B", "change" };
	hs_table_column(t, 0, kind, HS_ALIGN_LEFT);
	for (size_t c = 1; c < 7; c++)
		hs_table_column(t, c, heads[c], HS_ALIGN_RIGHT);
	hs_diff_row *rows;
	size_t nrows;
	int rc = changed_rows(d, &rows, &nrows);
	size_t top = top_of(opts, nrows);
	for (size_t i = 0; i < top && rc == 0; i++)
		rc = change_row(t, rows[i].name, &rows[i]);
	if (rc == 0 && top < nrows) {
		hs_diff_row other;
		char name[64];
		sum_rows(&other, rows, top, nrows);
		snprintf(name, sizeof(name), "(%zu more changed %s)", nrows - top, kinds);
		rc = change_row(t, name, &other);
	}
	if (rc == 0 && nrows < d->row_count) {
		/* unchanged rows: their totals, so the table still adds up */
		hs_diff_row same;
		memset(&same, 0, sizeof(same));
		for (size_t i = 0; i < d->row_count; i++)
			if (!changed(&d->rows[i])) {
				same.count_a += d->rows[i].count_a;
				same.count_b += d->rows[i].count_b;
				same.bytes_a += d->rows[i].bytes_a;
				same.bytes_b += d->rows[i].bytes_b;
			}
		char name[64];
		snprintf(name, sizeof(name), "(%zu unchanged %s)", d->row_count - nrows, kinds);
		rc = change_row(t, name, &same);
	}
	hs_free(rows);
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0)
		rc = change_row(t, "total", &d->total);
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	HS_TRY(rc);

	fputc('\n', f);
	if (!d->new_row_count) {
		fprintf(f, "no objects new in B\n");
		return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
	}
	hs_render_count(x, sizeof(x), d->total.new_count);
	hs_render_size(y, sizeof(y), d->total.new_bytes);
	fprintf(f, "new in B (no object of the same type at that address in A): %s objects, %s\n",
	        x, y);
	HS_TRY(hs_table_new(&t, 3));
	hs_table_column(t, 0, kind, HS_ALIGN_LEFT);
	hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
	top = top_of(opts, d->new_row_count);
	for (size_t i = 0; i < top && rc == 0; i++) {
		hs_render_count(x, sizeof(x), d->new_rows[i].new_count);
		hs_render_size(y, sizeof(y), d->new_rows[i].new_bytes);
		const char *cells[3] = { d->new_rows[i].name, x, y };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && top < d->new_row_count) {
		hs_diff_row other;
		char name[64];
		sum_rows(&other, d->new_rows, top, d->new_row_count);
		snprintf(name, sizeof(name), "(%zu more %s)", d->new_row_count - top, kinds);
		hs_render_count(x, sizeof(x), other.new_count);
		hs_render_size(y, sizeof(y), other.new_bytes);
		const char *cells[3] = { name, x, y };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	return rc;
}

static int add_fields(cJSON *o, const hs_diff_row *r)
{
	int ok = 1;
	ok &= cJSON_AddItemToObject(o, "count_a", hs_render__num(r->count_a));
	ok &= cJSON_AddItemToObject(o, "count_b", hs_render__num(r->count_b));
	ok &= cJSON_AddItemToObject(o, "count_delta", hs_render__snum(r->count_delta));
	ok &= cJSON_AddItemToObject(o, "bytes_a", hs_render__num(r->bytes_a));
	ok &= cJSON_AddItemToObject(o, "bytes_b", hs_render__num(r->bytes_b));
	ok &= cJSON_AddItemToObject(o, "bytes_delta", hs_render__snum(r->bytes_delta));
	ok &= cJSON_AddItemToObject(o, "new_count", hs_render__num(r->new_count));
	ok &= cJSON_AddItemToObject(o, "new_bytes", hs_render__num(r->new_bytes));
	return ok;
}

int hs_render_diff_json(cJSON **out, const hs_snapshot *a, const hs_snapshot *b, const hs_diff *d,
                        const hs_render_options *opts)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = 1;
	ok &= cJSON_AddStringToObject(o, "a", hs_snapshot_path(a)) != NULL;
	ok &= cJSON_AddStringToObject(o, "b", hs_snapshot_path(b)) != NULL;
	ok &= cJSON_AddStringToObject(o, "by", d->by == HS_GROUP_MODULE ? "module" : "type") != NULL;
	ok &= cJSON_AddItemToObject(o, "top", hs_render__num(opts ? opts->top : 25));
	ok &= cJSON_AddBoolToObject(o, "grew", d->grew) != NULL;
	cJSON *total = cJSON_AddObjectToObject(o, "total");
	ok &= total && add_fields(total, &d->total);
	ok &= total && cJSON_AddItemToObject(total, "groups", hs_render__num(d->row_count));

	hs_diff_row *changed_list;
	size_t nrows;
	if (changed_rows(d, &changed_list, &nrows) < 0) {
		cJSON_Delete(o);
		return HS_ENOMEM;
	}
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	ok &= rows != NULL;
	size_t top = top_of(opts, nrows);
	for (size_t i = 0; ok && i < top; i++) {
		cJSON *r = cJSON_CreateObject();
		ok &= r && cJSON_AddItemToArray(rows, r);
		ok &= ok && cJSON_AddStringToObject(r, "name", changed_list[i].name) != NULL;
		ok &= ok && add_fields(r, &changed_list[i]);
	}
	/* other: everything not listed, unchanged rows included */
	hs_diff_row other, listed;
	sum_rows(&listed, changed_list, 0, top);
	hs_free(changed_list);
	sum_rows(&other, d->rows, 0, d->row_count);
	other.count_a -= listed.count_a;
	other.count_b -= listed.count_b;
	other.bytes_a -= listed.bytes_a;
	other.bytes_b -= listed.bytes_b;
	other.new_count -= listed.new_count;
	other.new_bytes -= listed.new_bytes;
	other.count_delta = (int64_t)(other.count_b - other.count_a);
	other.bytes_delta = (int64_t)(other.bytes_b - other.bytes_a);
	cJSON *oth = cJSON_AddObjectToObject(o, "other");
	ok &= oth && add_fields(oth, &other);
	ok &= oth && cJSON_AddItemToObject(oth, "groups", hs_render__num(d->row_count - top));

	cJSON *nw = cJSON_AddArrayToObject(o, "new");
	ok &= nw != NULL;
	size_t ntop = top_of(opts, d->new_row_count);
	for (size_t i = 0; ok && i < ntop; i++) {
		cJSON *r = cJSON_CreateObject();
		ok &= r && cJSON_AddItemToArray(nw, r);
		ok &= ok && cJSON_AddStringToObject(r, "name", d->new_rows[i].name) != NULL;
		ok &= ok && cJSON_AddItemToObject(r, "count", hs_render__num(d->new_rows[i].new_count));
		ok &= ok && cJSON_AddItemToObject(r, "bytes", hs_render__num(d->new_rows[i].new_bytes));
	}
	sum_rows(&other, d->new_rows, ntop, d->new_row_count);
	cJSON *nother = cJSON_AddObjectToObject(o, "new_other");
	ok &= nother != NULL;
	ok &= ok && cJSON_AddItemToObject(nother, "count", hs_render__num(other.new_count));
	ok &= ok && cJSON_AddItemToObject(nother, "bytes", hs_render__num(other.new_bytes));
	ok &= ok && cJSON_AddItemToObject(nother, "groups", hs_render__num(d->new_row_count - ntop));
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
