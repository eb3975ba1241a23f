/*
 * render/lines.c: `heapsnap lines` as a table and as JSON
 * (formats/lines.schema.json).
 */
#include <stdio.h>
#include <string.h>

#include "heapsnap/lines.h"
#include "heapsnap/render.h"

const char *hs_lines_by_name(hs_lines_by by)
{
	return by == HS_LINES_BY_PEAK ? "peak" : by == HS_LINES_BY_ALLOCATED ? "allocated" : "live";
}

static void size_cell(char *buf, size_t n, int64_t v, int est)
{
	char s[24];
	if (v < 0)
		hs_render_size_delta(s, sizeof(s), v);
	else
		hs_render_size(s, sizeof(s), (uint64_t)v);
	snprintf(buf, n, "%s%s", est && v ? "~" : "", s);
}

int hs_render_lines_text(FILE *f, const hs_lines *l, hs_lines_by by)
{
	const hs_lines_sampling *sm = &l->sampling;
	int est = !sm->exact;
	char a[32], b[32], c[32];
	if (sm->exact)
		fprintf(f, "allocation tracking: exact (every allocation)%s%s\n",
		        sm->native ? ", native allocations included" : "",
		        sm->from_now ? ", growth since tracking started (--pid)" : "");
	else
		fprintf(f, "allocation tracking: sampled, one sample per %lld bytes on average%s%s%s; "
		        "figures marked ~ are estimates\n", (long long)sm->sample_bytes,
		        sm->seeded ? " (fixed seed)" : "", sm->native ? ", native allocations included" : "",
		        sm->from_now ? ", growth since tracking started (--pid)" : "");
	size_cell(a, sizeof(a), l->totals.allocated_bytes, est);
	size_cell(b, sizeof(b), l->totals.live_bytes, est);
	/* a peak taken from the end's figures is an estimate when they are */
	size_cell(c, sizeof(c), l->totals.peak_total_bytes > 0 ? l->totals.peak_total_bytes : 0,
	          est && l->totals.peak_at_end);
	fprintf(f, "%zu process%s: allocated %s in %lld allocations, live at the end %s, peak %s%s%s\n",
	        l->totals.processes, l->totals.processes == 1 ? "" : "es", a,
	        (long long)l->totals.allocations, b, c,
	        l->totals.peak_at_end == l->totals.processes ? " (at the end)"
	        : l->totals.peak_at_end ? " (at the end in some processes)" : "",
	        sm->all_frames ? "" : "; library frames folded into the calling line");
	/* the tracker counts large native blocks (mappings, big mallocs, BLAS
	 * buffers, thread stacks) at their resident pages (hook/track_resident.c) */
	if (sm->native)
		fprintf(f, "native blocks of 128 KiB or more count their resident pages in live and peak, "
		        "not the address space they reserve\n");
	fprintf(f, "%zu line%s by %s bytes%s\n\n", l->totals.rows, l->totals.rows == 1 ? "" : "s",
	        hs_lines_by_name(by), l->count < l->totals.rows ? " (top shown)" : "");
	hs_table *t;
	if (hs_table_new(&t, 10) < 0)
		return HS_ENOMEM;
	const char *hdr[10] = { "live", "peak", "allocated", "count", "total live", "total peak",
	                        "total alloc", "line", "function", "source" };
	for (int i = 0; i < 10; i++)
		hs_table_column(t, (size_t)i, hdr[i], i < 7 ? HS_ALIGN_RIGHT : HS_ALIGN_LEFT);
	int rc = 0;
	for (size_t i = 0; i < l->count && rc == 0; i++) {
		const hs_line_row *r = &l->rows[i];
		char live[32], peak[32], al[32], cnt[32], tl[32], tp[32], ta[32], where[4200], src[204];
		size_cell(live, sizeof(live), r->live_bytes, est);
		size_cell(peak, sizeof(peak), r->peak_bytes, est);
		size_cell(al, sizeof(al), r->allocated_bytes, est);
		snprintf(cnt, sizeof(cnt), "%s%lld", est && r->allocations ? "~" : "", (long long)r->allocations);
		size_cell(tl, sizeof(tl), r->total_live_bytes, est);
		size_cell(tp, sizeof(tp), r->total_peak_bytes, est);
		size_cell(ta, sizeof(ta), r->total_allocated_bytes, est);
		if (r->line > 0)
			snprintf(where, sizeof(where), "%s:%d", r->file, r->line);
		else
			snprintf(where, sizeof(where), "%s", r->file);
		snprintf(src, sizeof(src), "%.200s", r->source ? r->source : "");
		const char *cells[10] = { live, peak, al, cnt, tl, tp, ta, where, r->function, src };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	return rc;
}

int hs_render_lines_json(cJSON **out, const hs_lines *l, hs_lines_by by)
{
	cJSON *j = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(j, "lines");
	if (!j || !rows) {
		cJSON_Delete(j);
		return HS_ENOMEM;
	}
	for (size_t i = 0; i < l->count; i++) {
		const hs_line_row *r = &l->rows[i];
		cJSON *o = cJSON_CreateObject();
		if (!o)
			goto oom;
		cJSON_AddItemToArray(rows, o);
		cJSON_AddStringToObject(o, "file", r->file);
		cJSON_AddNumberToObject(o, "line", r->line);
		cJSON_AddStringToObject(o, "function", r->function);
		cJSON_AddStringToObject(o, "source", r->source ? r->source : "");
		cJSON_AddNumberToObject(o, "allocated_bytes", (double)r->allocated_bytes);
		cJSON_AddNumberToObject(o, "allocations", (double)r->allocations);
		cJSON_AddNumberToObject(o, "live_bytes", (double)r->live_bytes);
		cJSON_AddNumberToObject(o, "peak_bytes", (double)r->peak_bytes);
		cJSON_AddNumberToObject(o, "total_allocated_bytes", (double)r->total_allocated_bytes);
		cJSON_AddNumberToObject(o, "total_allocations", (double)r->total_allocations);
		cJSON_AddNumberToObject(o, "total_live_bytes", (double)r->total_live_bytes);
		if (!cJSON_AddNumberToObject(o, "total_peak_bytes", (double)r->total_peak_bytes))
			goto oom;
	}
	cJSON *t = cJSON_AddObjectToObject(j, "totals");
	if (!t)
		goto oom;
	cJSON_AddNumberToObject(t, "allocated_bytes", (double)l->totals.allocated_bytes);
	cJSON_AddNumberToObject(t, "allocations", (double)l->totals.allocations);
	cJSON_AddNumberToObject(t, "live_bytes", (double)l->totals.live_bytes);
	cJSON_AddNumberToObject(t, "peak_bytes", (double)l->totals.peak_bytes);
	cJSON_AddNumberToObject(t, "peak_total_bytes", (double)l->totals.peak_total_bytes);
	cJSON_AddNumberToObject(t, "processes", (double)l->totals.processes);
	cJSON_AddNumberToObject(t, "lines", (double)l->totals.rows);
	cJSON_AddNumberToObject(t, "stacks", (double)l->totals.stacks);
	cJSON_AddStringToObject(t, "by", hs_lines_by_name(by));
	cJSON *s = cJSON_AddObjectToObject(j, "sampling");
	if (!s)
		goto oom;
	const hs_lines_sampling *sm = &l->sampling;
	cJSON_AddBoolToObject(s, "exact", sm->exact);
	cJSON_AddBoolToObject(s, "estimates", !sm->exact);
	cJSON_AddNumberToObject(s, "sample_bytes", (double)(sm->exact ? 0 : sm->sample_bytes));
	if (sm->seeded)
		cJSON_AddNumberToObject(s, "seed", (double)sm->seed);
	else
		cJSON_AddNullToObject(s, "seed");
	cJSON_AddBoolToObject(s, "native", sm->native);
	cJSON_AddBoolToObject(s, "all_frames", sm->all_frames);
	cJSON_AddBoolToObject(s, "from_now", sm->from_now);
	if (!cJSON_AddStringToObject(s, "peak_basis", sm->peak_basis ? sm->peak_basis : ""))
		goto oom;
	*out = j;
	return 0;
oom:
	cJSON_Delete(j);
	return HS_ENOMEM;
}
