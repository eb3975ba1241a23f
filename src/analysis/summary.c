/*
 * analysis/summary.c: objects and bytes per type or module.
 *
 * One pass over the node arrays accumulates per type id (dense, cache
 * friendly); types are then folded into named groups (types sharing a name,
 * or a module) and sorted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analysis/names_internal.h"
#include "util/alloc.h"

typedef struct summary_impl {
	hs_summary pub; /* first: hs_summary_free casts back */
	hs_names names;
	char **site_names; /* HS_GROUP_SITE: row names, owned */
	size_t site_name_count;
} summary_impl;

static int cmp_rows(const void *pa, const void *pb);

/* ---- by allocation site ---- */

typedef struct site_obj {
	uint32_t site, type;
	uint64_t size;
	double weight;
} site_obj;

static int cmp_site_obj(const void *pa, const void *pb)
{
	const site_obj *a = pa, *b = pb;
	if (a->site != b->site)
		return a->site < b->site ? -1 : 1;
	return a->type < b->type ? -1 : a->type > b->type;
}

static int cmp_types(const void *pa, const void *pb)
{
	const hs_summary_type *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->name, b->name);
}

static uint64_t round_u64(double v) { return v <= 0 ? 0 : (uint64_t)llround(v); }

static int summary_by_site(summary_impl *impl, const hs_snapshot *s)
{
	if (!hs_snapshot_has_sites(s))
		return hs_error_set(HS_EINVAL, "cannot group '%s' by allocation site: it has no "
		                    "allocation sites; dump it while heapsnap.track() is on",
		                    hs_snapshot_path(s));
	const hs_graph *g = hs_snapshot_graph(s);
	hs_summary_sites *st = &impl->pub.sites;
	st->sample_bytes = hs_snapshot_sample_bytes(s);
	st->unmatched_blocks = hs_snapshot_unmatched_blocks(s);
	int sampled = st->sample_bytes != 0;
	size_t n = 0;
	for (uint32_t i = 0; i < g->node_count; i++) {
		hs_node_alloc a;
		if (hs_snapshot_node_alloc(s, i, &a))
			n++;
	}
	site_obj *objs = hs_calloc(n ? n : 1, sizeof(*objs));
	if (!objs)
		return HS_ENOMEM;
	size_t k = 0;
	for (uint32_t i = 0; i < g->node_count; i++) {
		uint64_t size = g->size32[i] != HS_SIZE_BIG ? g->size32[i] : hs_graph__big_size(g, i);
		hs_node_alloc a;
		if (!hs_snapshot_node_alloc(s, i, &a)) {
			st->untracked_objects++;
			st->untracked_bytes += size;
			continue;
		}
		st->tracked_objects++;
		st->tracked_bytes += size;
		objs[k].site = a.site;
		objs[k].type = g->type[i];
		objs[k].size = size;
		objs[k].weight = a.weight;
		k++;
	}
	qsort(objs, n, sizeof(*objs), cmp_site_obj);
	size_t nrows = 0;
	for (size_t i = 0; i < n; i++)
		nrows += i == 0 || objs[i].site != objs[i - 1].site;
	hs_summary_row *rows = hs_calloc(nrows ? nrows : 1, sizeof(*rows));
	impl->site_names = hs_calloc(nrows ? nrows : 1, sizeof(char *));
	impl->pub.rows = rows;
	if (!rows || !impl->site_names) {
		hs_free(objs);
		return HS_ENOMEM;
	}
	int rc = 0;
	size_t r = 0;
	for (size_t i = 0; i < n && rc == 0;) {
		size_t j = i;
		size_t ntypes = 0;
		while (j < n && objs[j].site == objs[i].site) {
			ntypes += j == i || objs[j].type != objs[j - 1].type;
			j++;
		}
		hs_summary_row *row = &rows[r];
		row->site = objs[i].site;
		row->estimate = sampled;
		hs_summary_type *types = hs_calloc(ntypes, sizeof(*types));
		if (!types) {
			rc = HS_ENOMEM;
			break;
		}
		double cnt = 0, byt = 0, tc = 0, tb = 0;
		size_t t = 0;
		for (size_t q = i; q < j; q++) {
			cnt += objs[q].weight;
			byt += (double)objs[q].size * objs[q].weight;
			tc += objs[q].weight;
			tb += (double)objs[q].size * objs[q].weight;
			row->samples++;
			if (q + 1 == j || objs[q + 1].type != objs[q].type) {
				const hs_snapshot_type *ty = hs_snapshot_type_get(s, objs[q].type);
				types[t].name = ty ? ty->name : "?";
				types[t].count = round_u64(tc);
				types[t].bytes = round_u64(tb);
				t++;
				tc = tb = 0;
			}
		}
		qsort(types, ntypes, sizeof(*types), cmp_types);
		row->types = types;
		row->type_count = ntypes < HS_SUMMARY_SITE_TYPES ? ntypes : HS_SUMMARY_SITE_TYPES;
		row->count = round_u64(cnt);
		row->bytes = round_u64(byt);
		char buf[1024];
		if (row->site == HS_NO_SITE) {
			snprintf(buf, sizeof(buf), "(no Python frame: native or without the GIL)");
		} else {
			hs_site si;
			if (hs_snapshot_site(s, row->site, &si) < 0)
				si.file = si.function = "?", si.line = 0;
			snprintf(buf, sizeof(buf), "%s:%u (%s)", si.file, si.line, si.function);
		}
		impl->site_names[r] = hs_strdup(buf);
		impl->site_name_count = r + 1;
		if (!impl->site_names[r]) {
			rc = HS_ENOMEM;
			r++;
			break;
		}
		row->name = impl->site_names[r];
		impl->pub.total_count += row->count;
		impl->pub.total_bytes += row->bytes;
		r++;
		i = j;
	}
	impl->pub.row_count = r;
	hs_free(objs);
	if (rc < 0)
		return rc;
	qsort(rows, r, sizeof(*rows), cmp_rows);
	return 0;
}

static int cmp_rows(const void *pa, const void *pb)
{
	const hs_summary_row *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Per type id: objects and bytes. */
int hs_analysis__per_type(uint64_t **count, uint64_t **bytes, const hs_snapshot *s)
{
	uint32_t nt = hs_snapshot_type_count(s);
	uint64_t *c = hs_calloc(nt ? nt : 1, sizeof(uint64_t));
	uint64_t *b = hs_calloc(nt ? nt : 1, sizeof(uint64_t));
	if (!c || !b) {
		hs_free(c);
		hs_free(b);
		return HS_ENOMEM;
	}
	const hs_graph *g = hs_snapshot_graph(s);
	const uint32_t *type = g->type, *size = g->size32;
	for (uint32_t i = 0; i < g->node_count; i++) {
		uint32_t t = type[i];
		c[t]++;
		b[t] += size[i] != HS_SIZE_BIG ? size[i] : hs_graph__big_size(g, i);
	}
	*count = c;
	*bytes = b;
	return 0;
}

int hs_analysis_summary(hs_summary **out, const hs_snapshot *s, const hs_summary_options *opts)
{
	*out = NULL;
	if (opts && opts->version != HS_SUMMARY_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "hs_analysis_summary: unknown options version %u",
		                    opts->version);
	hs_group_by by = opts ? opts->by : HS_GROUP_TYPE;
	summary_impl *impl = hs_calloc(1, sizeof(*impl));
	if (!impl)
		return HS_ENOMEM;
	impl->pub.by = by;
	int mrc = hs_analysis_memory(&impl->pub.memory, s);
	if (mrc < 0) {
		hs_free(impl);
		return mrc;
	}
	if (by == HS_GROUP_SITE) {
		int src = summary_by_site(impl, s);
		if (src < 0) {
			hs_summary_free(&impl->pub);
			return src;
		}
		*out = &impl->pub;
		return 0;
	}
	uint64_t *tc = NULL, *tb = NULL;
	uint32_t *group = NULL;
	int rc;
	if ((rc = hs_analysis__per_type(&tc, &tb, s)) < 0 ||
	    (rc = hs_names__map_types(&group, &impl->names, s, by)) < 0)
		goto done;
	uint32_t ng = impl->names.count;
	hs_summary_row *rows = hs_calloc(ng ? ng : 1, sizeof(*rows));
	if (!rows) {
		rc = HS_ENOMEM;
		goto done;
	}
	impl->pub.rows = rows;
	for (uint32_t gi = 0; gi < ng; gi++)
		rows[gi].name = hs_names__get(&impl->names, gi);
	for (uint32_t t = 0; t < hs_snapshot_type_count(s); t++) {
		rows[group[t]].count += tc[t];
		rows[group[t]].bytes += tb[t];
		impl->pub.total_count += tc[t];
		impl->pub.total_bytes += tb[t];
	}
	/* drop groups without objects (types defined but not instantiated) */
	size_t w = 0;
	for (uint32_t gi = 0; gi < ng; gi++)
		if (rows[gi].count)
			rows[w++] = rows[gi];
	impl->pub.row_count = w;
	qsort(rows, w, sizeof(*rows), cmp_rows);
	rc = 0;
done:
	hs_free(tc);
	hs_free(tb);
	hs_free(group);
	if (rc < 0) {
		hs_summary_free(&impl->pub);
		return rc;
	}
	*out = &impl->pub;
	return 0;
}

void hs_summary_free(hs_summary *sum)
{
	if (!sum)
		return;
	summary_impl *impl = (summary_impl *)sum;
	if (sum->by == HS_GROUP_SITE && sum->rows)
		for (size_t i = 0; i < sum->row_count; i++)
			hs_free(sum->rows[i].types);
	for (size_t i = 0; i < impl->site_name_count; i++)
		hs_free(impl->site_names[i]);
	hs_free(impl->site_names);
	hs_free(sum->rows);
	hs_names__release(&impl->names);
	hs_free(impl);
}
