/*
 * analysis/diff.c: compare two snapshots per type, and find the objects new
 * in the second.
 *
 * Types are matched by name (type ids are per file); names of both files
 * are interned into one table, so "same type" is an integer comparison. An
 * object of B is new unless A has an object at the same address whose type
 * has the same name: one lookup in A's address map per object of B, so the
 * whole diff is linear in the two heaps.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/names_internal.h"
#include "util/alloc.h"

typedef struct diff_impl {
	hs_diff pub; /* first: hs_diff_free casts back */
	hs_names names;
} diff_impl;

static int cmp_growth(const void *pa, const void *pb)
{
	const hs_diff_row *a = pa, *b = pb;
	if (a->bytes_delta != b->bytes_delta)
		return a->bytes_delta > b->bytes_delta ? -1 : 1;
	if (a->count_delta != b->count_delta)
		return a->count_delta > b->count_delta ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int cmp_new(const void *pa, const void *pb)
{
	const hs_diff_row *a = pa, *b = pb;
	if (a->new_bytes != b->new_bytes)
		return a->new_bytes > b->new_bytes ? -1 : 1;
	if (a->new_count != b->new_count)
		return a->new_count > b->new_count ? -1 : 1;
	return strcmp(a->name, b->name);
}

int hs_analysis_diff(hs_diff **out, const hs_snapshot *a, const hs_snapshot *b,
                     const hs_diff_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_DIFF_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_analysis_diff: unknown options version %u",
		                    opts->version);
	hs_group_by by = opts ? opts->by : HS_GROUP_TYPE;
	diff_impl *impl = hs_calloc(1, sizeof(*impl));
	if (!impl)
		return HS_ENOMEM;
	hs_diff *d = &impl->pub;
	d->by = by;
	uint64_t *ca = NULL, *ba = NULL, *cb = NULL, *bb = NULL;
	uint32_t *ga = NULL, *gb = NULL;
	int rc;
	if ((rc = hs_analysis__per_type(&ca, &ba, a)) < 0 ||
	    (rc = hs_analysis__per_type(&cb, &bb, b)) < 0 ||
	    (rc = hs_names__map_types(&ga, &impl->names, a, by)) < 0 ||
	    (rc = hs_names__map_types(&gb, &impl->names, b, by)) < 0)
		goto done;
	uint32_t ng = impl->names.count;
	hs_diff_row *rows = hs_calloc(ng ? ng : 1, sizeof(*rows));
	if (!rows) {
		rc = HS_ENOMEM;
		goto done;
	}
	d->rows = rows;
	for (uint32_t gi = 0; gi < ng; gi++)
		rows[gi].name = hs_names__get(&impl->names, gi);
	for (uint32_t t = 0; t < hs_snapshot_type_count(a); t++) {
		rows[ga[t]].count_a += ca[t];
		rows[ga[t]].bytes_a += ba[t];
	}
	for (uint32_t t = 0; t < hs_snapshot_type_count(b); t++) {
		rows[gb[t]].count_b += cb[t];
		rows[gb[t]].bytes_b += bb[t];
	}

	/* new objects: group of B's type vs group of A's type at that address
	 * (compared by full type name even when grouping by module) */
	uint32_t *na = ga, *nb = gb;
	hs_names tnames = { 0 };
	uint32_t *ta = NULL, *tb = NULL;
	if (by != HS_GROUP_TYPE) {
		if ((rc = hs_names__map_types(&ta, &tnames, a, HS_GROUP_TYPE)) < 0 ||
		    (rc = hs_names__map_types(&tb, &tnames, b, HS_GROUP_TYPE)) < 0) {
			hs_free(ta);
			hs_free(tb);
			hs_names__release(&tnames);
			goto done;
		}
		na = ta;
		nb = tb;
	}
	const hs_graph *gA = hs_snapshot_graph(a), *gB = hs_snapshot_graph(b);
	for (uint32_t i = 0; i < gB->node_count; i++) {
		uint32_t j = hs_snapshot_find(a, gB->address[i]);
		uint32_t tbi = gB->type[i];
		if (j != HS_NO_NODE && na[gA->type[j]] == nb[tbi])
			continue;
		hs_diff_row *r = &rows[gb[tbi]];
		r->new_count++;
		r->new_bytes += hs_graph_node_size(gB, i);
	}
	hs_free(ta);
	hs_free(tb);
	hs_names__release(&tnames);

	size_t w = 0, nnew = 0;
	hs_diff_row *t = &d->total;
	t->name = "total";
	for (uint32_t gi = 0; gi < ng; gi++) {
		hs_diff_row r = rows[gi];
		if (!r.count_a && !r.count_b)
			continue;
		r.count_delta = (int64_t)(r.count_b - r.count_a);
		r.bytes_delta = (int64_t)(r.bytes_b - r.bytes_a);
		if (r.count_delta > 0 || r.bytes_delta > 0)
			d->grew = 1;
		t->count_a += r.count_a;
		t->bytes_a += r.bytes_a;
		t->count_b += r.count_b;
		t->bytes_b += r.bytes_b;
		t->new_count += r.new_count;
		t->new_bytes += r.new_bytes;
		nnew += r.new_count > 0;
		rows[w++] = r;
	}
	t->count_delta = (int64_t)(t->count_b - t->count_a);
	t->bytes_delta = (int64_t)(t->bytes_b - t->bytes_a);
	d->row_count = w;
	qsort(rows, w, sizeof(*rows), cmp_growth);
	d->new_rows = hs_calloc(nnew ? nnew : 1, sizeof(hs_diff_row));
	if (!d->new_rows) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < w; i++)
		if (rows[i].new_count)
			d->new_rows[d->new_row_count++] = rows[i];
	qsort(d->new_rows, d->new_row_count, sizeof(hs_diff_row), cmp_new);
	rc = 0;
done:
	hs_free(ca);
	hs_free(ba);
	hs_free(cb);
	hs_free(bb);
	hs_free(ga);
	hs_free(gb);
	if (rc < 0) {
		hs_diff_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void hs_diff_free(hs_diff *d)
{
	if (!d)
		return;
	diff_impl *impl = (diff_impl *)d;
	hs_free(d->rows);
	hs_free(d->new_rows);
	hs_names__release(&impl->names);
	hs_free(impl);
}
