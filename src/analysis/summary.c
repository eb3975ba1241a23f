/*
 * analysis/summary.c: objects and bytes per type or module.
 *
 * One pass over the node arrays accumulates per type id (dense, cache
 * friendly); types are then folded into named groups (types sharing a name,
 * or a module) and sorted.
 */
#include <stdlib.h>
#include <string.h>
#include "analysis/names_internal.h"
#include "util/alloc.h"

typedef struct summary_impl {
	hs_summary pub; /* first: hs_summary_free casts back */
	hs_names names;
} summary_impl;

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
	hs_free(sum->rows);
	hs_names__release(&impl->names);
	hs_free(impl);
}
