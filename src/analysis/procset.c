/*
 * analysis/procset.c: summary and diff of snapshot sets (heapsnap/procset.h).
 *
 * Each member goes through the single-snapshot analysis (hs_analysis_summary,
 * hs_analysis_diff) with one snapshot (summary) or one pair (diff) loaded at
 * a time, and its rows are merged by name into the set's rows, interned in
 * one table (names_internal.h). The per-process breakdown of a row is kept
 * as a list of parts, in process order, only for the processes that have
 * (summary) or changed (diff) the row: sets of many processes with
 * thousands of types stay small.
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "analysis/names_internal.h"
#include "heapsnap/procset.h"
#include "util/alloc.h"

/* Rows while merging: the merged figures and the parts. */
typedef struct merge_row {
	hs_diff_row r; /* summary uses count_b/bytes_b as count/bytes */
	hs_procset_part *parts;
	size_t nparts, cap;
} merge_row;

typedef struct merger {
	hs_names names;
	merge_row *rows;
	size_t cap;
} merger;

static int merge_find(merger *m, merge_row **out, const char *name)
{
	uint32_t id;
	HS_TRY(hs_names__intern(&m->names, &id, name, strlen(name)));
	if (id >= m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		while (nc <= id)
			nc *= 2;
		merge_row *nr = hs_reallocarray(m->rows, nc, sizeof(*nr));
		if (!nr)
			return HS_ENOMEM;
		memset(nr + m->cap, 0, (nc - m->cap) * sizeof(*nr));
		m->rows = nr;
		m->cap = nc;
	}
	*out = &m->rows[id];
	return 0;
}

static int add_part(merge_row *row, const hs_procset_part *part)
{
	if (row->nparts == row->cap) {
		size_t nc = row->cap ? row->cap * 2 : 4;
		hs_procset_part *np = hs_reallocarray(row->parts, nc, sizeof(*np));
		if (!np)
			return HS_ENOMEM;
		row->parts = np;
		row->cap = nc;
	}
	row->parts[row->nparts++] = *part;
	return 0;
}

static void merger_release(merger *m)
{
	for (size_t i = 0; m->rows && i < m->names.count && i < m->cap; i++)
		hs_free(m->rows[i].parts);
	hs_free(m->rows);
	hs_names__release(&m->names);
}

/* Open a member, with the index named in the message when it fails. */
static int open_member(hs_snapshot **out, const hs_procset *set, const hs_procset_proc *p)
{
	hs_snapshot_options so = HS_SNAPSHOT_OPTIONS_INIT;
	int rc = hs_snapshot_open(out, p->path, &so);
	if (rc < 0 && rc != HS_ENOMEM) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", hs_error_last());
		rc = hs_error_set(rc, "%s (the snapshot of process %d in the index '%s')", msg, p->pid,
		                  set->path ? set->path : "?");
	}
	return rc;
}

static void mem_add(hs_procset_mem_total *t, const hs_proc_memory *m)
{
	if (m->rss >= 0) {
		t->rss += (uint64_t)m->rss;
		t->rss_known++;
	}
	if (m->pss >= 0) {
		t->pss += (uint64_t)m->pss;
		t->pss_known++;
	}
	if (m->uss >= 0) {
		t->uss += (uint64_t)m->uss;
		t->uss_known++;
	}
	if (m->swap >= 0) {
		t->swap += (uint64_t)m->swap;
		t->swap_known++;
	}
}

/* ------------------------------------------------------------------ */
/* summary                                                             */

typedef struct summary_impl {
	hs_procset_summary pub; /* first: the free casts back */
	hs_names names;
} summary_impl;

static int cmp_summary_row(const void *pa, const void *pb)
{
	const hs_procset_summary_row *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->name, b->name);
}

void hs_procset_summary_free(hs_procset_summary *sum)
{
	if (!sum)
		return;
	summary_impl *impl = (summary_impl *)sum;
	for (size_t i = 0; i < sum->proc_count; i++)
		hs_free(sum->procs[i].python);
	hs_free(sum->procs);
	for (size_t i = 0; i < sum->row_count; i++)
		hs_free(sum->rows[i].parts);
	hs_free(sum->rows);
	hs_names__release(&impl->names);
	hs_free(impl);
}

static char *meta_string(const hs_snapshot *s, const char *a, const char *b)
{
	const cJSON *m = hs_snapshot_meta(s);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? hs_strdup(v->valuestring) : NULL;
}

int hs_procset_summary_build(hs_procset_summary **out, const hs_procset *set,
                             const hs_summary_options *opts)
{
	*out = NULL;
	hs_summary_options defaults = HS_SUMMARY_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	summary_impl *impl = hs_calloc(1, sizeof(*impl));
	if (!impl)
		return HS_ENOMEM;
	hs_procset_summary *sum = &impl->pub;
	sum->by = opts->by;
	sum->set = set;
	merger m;
	memset(&m, 0, sizeof(m));
	int rc = 0;
	sum->procs = hs_calloc(set->count ? set->count : 1, sizeof(*sum->procs));
	if (!sum->procs) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < set->count && rc == 0; i++) {
		const hs_procset_proc *p = &set->procs[i];
		if (p->status != HS_PROC_OK)
			continue;
		hs_snapshot *s = NULL;
		hs_summary *ps = NULL;
		if ((rc = open_member(&s, set, p)) < 0)
			break;
		if ((rc = hs_analysis_summary(&ps, s, opts)) == 0) {
			size_t k = sum->proc_count++;
			hs_procset_summary_proc *sp = &sum->procs[k];
			sp->proc = p;
			sp->objects = ps->total_count;
			sp->bytes = ps->total_bytes;
			sp->python = meta_string(s, "python", "version");
			sum->total_count += ps->total_count;
			sum->total_bytes += ps->total_bytes;
			mem_add(&sum->mem, &p->mem);
			for (size_t r = 0; r < ps->row_count && rc == 0; r++) {
				merge_row *row;
				if ((rc = merge_find(&m, &row, ps->rows[r].name)) < 0)
					break;
				row->r.count_b += ps->rows[r].count;
				row->r.bytes_b += ps->rows[r].bytes;
				hs_procset_part part = { k, ps->rows[r].count, ps->rows[r].bytes, 0, 0, 0, 0 };
				rc = add_part(row, &part);
			}
		}
		hs_summary_free(ps);
		hs_snapshot_free(s);
	}
	if (rc < 0)
		goto done;
	size_t n = m.names.count;
	sum->rows = hs_calloc(n ? n : 1, sizeof(*sum->rows));
	if (!sum->rows) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		hs_procset_summary_row *r = &sum->rows[i];
		r->name = hs_names__get(&m.names, (uint32_t)i);
		r->count = m.rows[i].r.count_b;
		r->bytes = m.rows[i].r.bytes_b;
		r->parts = m.rows[i].parts;
		r->part_count = m.rows[i].nparts;
		m.rows[i].parts = NULL; /* moved */
	}
	sum->row_count = n;
	qsort(sum->rows, n, sizeof(*sum->rows), cmp_summary_row);
	impl->names = m.names; /* the row names live in its pool */
	memset(&m.names, 0, sizeof(m.names));
done:
	merger_release(&m);
	if (rc < 0) {
		hs_procset_summary_free(sum);
		return rc;
	}
	*out = sum;
	return 0;
}

/* ------------------------------------------------------------------ */
/* diff                                                                */

typedef struct diff_impl {
	hs_procset_diff pub;
	hs_names names;
} diff_impl;

static int cmp_diff_row(const void *pa, const void *pb)
{
	const hs_diff_row *a = &((const hs_procset_diff_row *)pa)->r;
	const hs_diff_row *b = &((const hs_procset_diff_row *)pb)->r;
	if (a->bytes_delta != b->bytes_delta)
		return a->bytes_delta > b->bytes_delta ? -1 : 1;
	if (a->count_delta != b->count_delta)
		return a->count_delta > b->count_delta ? -1 : 1;
	return strcmp(a->name, b->name);
}

void hs_procset_diff_free(hs_procset_diff *d)
{
	if (!d)
		return;
	diff_impl *impl = (diff_impl *)d;
	hs_free(d->procs);
	for (size_t i = 0; i < d->row_count; i++)
		hs_free(d->rows[i].parts);
	hs_free(d->rows);
	hs_names__release(&impl->names);
	hs_free(impl);
}

typedef struct by_pid {
	int pid;
	size_t i;
} by_pid;

static int cmp_by_pid(const void *a, const void *b)
{
	int x = ((const by_pid *)a)->pid, y = ((const by_pid *)b)->pid;
	return (x > y) - (x < y);
}

static const hs_procset_proc *find_pid(const hs_procset *set, const by_pid *idx, int pid)
{
	by_pid key = { pid, 0 };
	const by_pid *hit = bsearch(&key, idx, set->count, sizeof(*idx), cmp_by_pid);
	return hit ? &set->procs[hit->i] : NULL;
}

/* The same process in both sets: same pid, same boot, same start time
 * where both indexes know them. NULL, or why not. */
static const char *not_same(const hs_procset *a, const hs_procset *b, const hs_procset_proc *pa,
                            const hs_procset_proc *pb)
{
	if (a->boot_id && b->boot_id && strcmp(a->boot_id, b->boot_id))
		return "another boot";
	if (pa->start_ticks && pb->start_ticks && pa->start_ticks != pb->start_ticks)
		return "pid reused by another process";
	return NULL;
}

static int add_diff_proc(hs_procset_diff *d, hs_procset_match match, const hs_procset_proc *pa,
                         const hs_procset_proc *pb, const char *note)
{
	hs_procset_diff_proc *e = &d->procs[d->proc_count++];
	memset(e, 0, sizeof(*e));
	e->match = match;
	e->a = pa;
	e->b = pb;
	e->note = note;
	e->total.name = "total";
	return 0;
}

/* Compare one matched pair and merge its rows. */
static int diff_pair(hs_procset_diff *d, merger *m, size_t k, const hs_diff_options *opts)
{
	hs_procset_diff_proc *e = &d->procs[k];
	hs_snapshot *sa = NULL, *sb = NULL;
	hs_diff *pd = NULL;
	int rc;
	if ((rc = open_member(&sa, d->a, e->a)) < 0 || (rc = open_member(&sb, d->b, e->b)) < 0 ||
	    (rc = hs_analysis_diff(&pd, sa, sb, opts)) < 0)
		goto done;
	e->total = pd->total;
	e->total.name = "total";
	for (size_t r = 0; r < pd->row_count && rc == 0; r++) {
		const hs_diff_row *x = &pd->rows[r];
		merge_row *row;
		if ((rc = merge_find(m, &row, x->name)) < 0)
			break;
		row->r.count_a += x->count_a;
		row->r.bytes_a += x->bytes_a;
		row->r.count_b += x->count_b;
		row->r.bytes_b += x->bytes_b;
		row->r.new_count += x->new_count;
		row->r.new_bytes += x->new_bytes;
		if (x->count_delta || x->bytes_delta || x->new_count) {
			hs_procset_part part = { k, x->count_b, x->bytes_b, x->count_delta, x->bytes_delta,
			                         x->new_count, x->new_bytes };
			rc = add_part(row, &part);
		}
	}
done:
	hs_diff_free(pd);
	hs_snapshot_free(sa);
	hs_snapshot_free(sb);
	return rc;
}

/* An unmatched process's objects and bytes, from its snapshot. */
static int unmatched_totals(hs_procset_diff *d, hs_procset_diff_proc *e)
{
	const hs_procset *set = e->a ? d->a : d->b;
	const hs_procset_proc *p = e->a ? e->a : e->b;
	hs_snapshot *s;
	HS_TRY(open_member(&s, set, p));
	const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
	if (e->a) {
		e->total.count_a = st->nodes;
		e->total.bytes_a = st->total_bytes;
	} else {
		e->total.count_b = st->nodes;
		e->total.bytes_b = st->total_bytes;
	}
	e->total.count_delta = (int64_t)(e->total.count_b - e->total.count_a);
	e->total.bytes_delta = (int64_t)(e->total.bytes_b - e->total.bytes_a);
	hs_snapshot_free(s);
	return 0;
}

int hs_procset_diff_build(hs_procset_diff **out, const hs_procset *a, const hs_procset *b,
                          const hs_diff_options *opts)
{
	*out = NULL;
	hs_diff_options defaults = HS_DIFF_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	diff_impl *impl = hs_calloc(1, sizeof(*impl));
	if (!impl)
		return HS_ENOMEM;
	hs_procset_diff *d = &impl->pub;
	d->by = opts->by;
	d->a = a;
	d->b = b;
	d->total.name = "total";
	merger m;
	memset(&m, 0, sizeof(m));
	int rc = 0;
	by_pid *ia = hs_calloc(a->count ? a->count : 1, sizeof(*ia));
	by_pid *ib = hs_calloc(b->count ? b->count : 1, sizeof(*ib));
	char *b_used = hs_calloc(b->count ? b->count : 1, 1);
	d->procs = hs_calloc(a->count + b->count + 1, sizeof(*d->procs));
	if (!ia || !ib || !b_used || !d->procs) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < a->count; i++)
		ia[i] = (by_pid){ a->procs[i].pid, i };
	for (size_t i = 0; i < b->count; i++)
		ib[i] = (by_pid){ b->procs[i].pid, i };
	qsort(ia, a->count, sizeof(*ia), cmp_by_pid);
	qsort(ib, b->count, sizeof(*ib), cmp_by_pid);

	/* matched pairs first, in A's order */
	for (size_t i = 0; i < a->count; i++) {
		const hs_procset_proc *pa = &a->procs[i];
		const hs_procset_proc *pb = find_pid(b, ib, pa->pid);
		if (pa->status == HS_PROC_OK && pb && pb->status == HS_PROC_OK && !not_same(a, b, pa, pb)) {
			add_diff_proc(d, HS_MATCH_BOTH, pa, pb, NULL);
			b_used[pb - b->procs] = 1;
			d->matched++;
		}
	}
	for (size_t i = 0; i < a->count; i++) {
		const hs_procset_proc *pa = &a->procs[i];
		if (pa->status != HS_PROC_OK)
			continue;
		const hs_procset_proc *pb = find_pid(b, ib, pa->pid);
		if (pb && b_used[pb - b->procs])
			continue;
		const char *why = !pb ? "not in B" : pb->status != HS_PROC_OK ? "no snapshot in B"
		                                                            : not_same(a, b, pa, pb);
		add_diff_proc(d, HS_MATCH_ENDED, pa, NULL, why);
		d->ended++;
	}
	for (size_t i = 0; i < b->count; i++) {
		const hs_procset_proc *pb = &b->procs[i];
		if (pb->status != HS_PROC_OK || b_used[i])
			continue;
		const hs_procset_proc *pa = find_pid(a, ia, pb->pid);
		const char *why = !pa ? "not in A" : pa->status != HS_PROC_OK ? "no snapshot in A"
		                                                            : not_same(a, b, pa, pb);
		add_diff_proc(d, HS_MATCH_STARTED, NULL, pb, why);
		d->started++;
	}

	for (size_t k = 0; k < d->proc_count && rc == 0; k++) {
		hs_procset_diff_proc *e = &d->procs[k];
		if (e->match != HS_MATCH_BOTH) {
			rc = unmatched_totals(d, e);
			continue;
		}
		if ((rc = diff_pair(d, &m, k, opts)) < 0)
			break;
		d->total.count_a += e->total.count_a;
		d->total.bytes_a += e->total.bytes_a;
		d->total.count_b += e->total.count_b;
		d->total.bytes_b += e->total.bytes_b;
		d->total.new_count += e->total.new_count;
		d->total.new_bytes += e->total.new_bytes;
		mem_add(&d->mem_a, &e->a->mem);
		mem_add(&d->mem_b, &e->b->mem);
	}
	if (rc < 0)
		goto done;
	d->total.count_delta = (int64_t)(d->total.count_b - d->total.count_a);
	d->total.bytes_delta = (int64_t)(d->total.bytes_b - d->total.bytes_a);

	size_t n = m.names.count;
	d->rows = hs_calloc(n ? n : 1, sizeof(*d->rows));
	if (!d->rows) {
		rc = HS_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		hs_procset_diff_row *r = &d->rows[i];
		r->r = m.rows[i].r;
		r->r.name = hs_names__get(&m.names, (uint32_t)i);
		r->r.count_delta = (int64_t)(r->r.count_b - r->r.count_a);
		r->r.bytes_delta = (int64_t)(r->r.bytes_b - r->r.bytes_a);
		if (r->r.count_delta > 0 || r->r.bytes_delta > 0)
			d->grew = 1;
		r->parts = m.rows[i].parts;
		r->part_count = m.rows[i].nparts;
		m.rows[i].parts = NULL;
	}
	d->row_count = n;
	qsort(d->rows, n, sizeof(*d->rows), cmp_diff_row);
	impl->names = m.names;
	memset(&m.names, 0, sizeof(m.names));
done:
	hs_free(ia);
	hs_free(ib);
	hs_free(b_used);
	merger_release(&m);
	if (rc < 0) {
		hs_procset_diff_free(d);
		return rc;
	}
	*out = d;
	return 0;
}
