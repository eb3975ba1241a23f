/*
 * render/procset.c: `heapsnap summary INDEX` and `heapsnap diff INDEX_A
 * INDEX_B`: per process, totals, then the types summed over the processes.
 *
 * Physical memory of a set is totalled with PSS: a page shared by n
 * processes (copy-on-write after a fork, shared libraries) counts 1/n in
 * each, so the sum counts it once; the sum of RSS would count it n times.
 * USS (private pages) adds up without that caveat. Both are said in the
 * output, since the difference is the point of the figures.
 */
#include <stdlib.h>
#include <string.h>
#include "heapsnap/procset.h"
#include "render/render_internal.h"
#include "util/alloc.h"

#define COMMAND_WIDTH 40 /* commands are cut in the tables (JSON has them whole) */
#define WHERE_MAX 3      /* processes named per type row in text */

static size_t top_of(const hs_render_options *o, size_t rows)
{
	size_t top = o ? o->top : 25;
	return top && top < rows ? top : rows;
}

static void mem_cell(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		hs_render_size(buf, size, (uint64_t)v);
}

static void mem_delta_cell(char *buf, size_t size, int64_t a, int64_t b)
{
	if (a < 0 || b < 0)
		snprintf(buf, size, "-");
	else
		hs_render_size_delta(buf, size, b - a);
}

static void total_cell(char *buf, size_t size, uint64_t v, size_t known, size_t n)
{
	if (!known) {
		snprintf(buf, size, "-");
	} else if (known < n) {
		char h[32];
		hs_render_size(h, sizeof(h), v);
		snprintf(buf, size, "%.31s (%zu of %zu)", h, known, n);
	} else {
		hs_render_size(buf, size, v);
	}
}

static int io_check(FILE *f)
{
	return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
}

/* The processes without a snapshot: one line each. */
static int not_snapshotted_text(FILE *f, const hs_procset *set)
{
	size_t n = 0;
	for (size_t i = 0; i < set->count; i++)
		n += set->procs[i].status != HS_PROC_OK;
	if (!n)
		return 0;
	fprintf(f, "\nnot snapshotted:\n");
	hs_table *t;
	HS_TRY(hs_table_new(&t, 4));
	int rc = 0;
	for (size_t i = 0; i < set->count && rc == 0; i++) {
		const hs_procset_proc *p = &set->procs[i];
		if (p->status == HS_PROC_OK)
			continue;
		char pid[16], cmd[COMMAND_WIDTH * 4 + 8], why[1200];
		snprintf(pid, sizeof(pid), "%d", p->pid);
		hs_procset_proc_label(p, cmd, sizeof(cmd), COMMAND_WIDTH);
		snprintf(why, sizeof(why), "%s: %s", hs_procset_status_name(p->status),
		         p->error && p->error[0] ? p->error : "no reason recorded");
		const char *cells[4] = { pid, cmd, why, NULL };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 2);
	hs_table_free(t);
	return rc;
}

typedef struct where_item {
	int pid;
	int64_t key;     /* ordering: |bytes| */
	int64_t count;   /* shown */
} where_item;

static int cmp_where(const void *pa, const void *pb)
{
	const where_item *a = pa, *b = pb;
	int64_t ka = a->key < 0 ? -a->key : a->key, kb = b->key < 0 ? -b->key : b->key;
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* "1235: 1,000, 1236: 20 (+2 more)" — the processes holding most of a row. */
static int where_text(char *buf, size_t size, where_item *items, size_t n, int signed_counts)
{
	qsort(items, n, sizeof(*items), cmp_where);
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && i < WHERE_MAX && len < size; i++) {
		char c[32];
		if (signed_counts)
			hs_render_count_delta(c, sizeof(c), items[i].count);
		else
			hs_render_count(c, sizeof(c), (uint64_t)items[i].count);
		len += (size_t)snprintf(buf + len, size - len, "%s%d: %s", i ? ", " : "", items[i].pid, c);
	}
	if (n > WHERE_MAX && len < size)
		snprintf(buf + len, size - len, " (+%zu more)", n - WHERE_MAX);
	return 0;
}

/* ------------------------------------------------------------------ */
/* summary                                                             */

int hs_render_procset_summary_text(FILE *f, const hs_procset_summary *sum,
                                   const hs_render_options *opts)
{
	const hs_procset *set = sum->set;
	char a[96], b[96], c[96], d[96], e[96], line[1024];
	size_t skipped = set->count - sum->proc_count;
	int n = snprintf(line, sizeof(line), "%s: %zu process%s snapshotted from root %d",
	                 set->path ? set->path : "index", sum->proc_count,
	                 sum->proc_count == 1 ? "" : "es", set->root_pid);
	if (set->time_iso && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", %s", set->time_iso);
	if (set->fork && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", fork mode");
	if (skipped && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "; %zu not snapshotted (below)", skipped);
	fprintf(f, "%s\n\n", line);

	hs_table *t;
	HS_TRY(hs_table_new(&t, 9));
	static const char *const heads[9] = { "pid", "ppid", "command", "python", "objects",
	                                      "Python", "RSS", "USS", "PSS" };
	for (size_t k = 0; k < 9; k++)
		hs_table_column(t, k, heads[k], k == 2 || k == 3 ? HS_ALIGN_LEFT : HS_ALIGN_RIGHT);
	int rc = 0;
	for (size_t i = 0; i < sum->proc_count && rc == 0; i++) {
		const hs_procset_summary_proc *sp = &sum->procs[i];
		const hs_procset_proc *p = sp->proc;
		char pid[16], ppid[16], cmd[COMMAND_WIDTH * 4 + 8], py[32];
		snprintf(pid, sizeof(pid), "%d", p->pid);
		snprintf(ppid, sizeof(ppid), "%d", p->ppid);
		hs_procset_proc_label(p, cmd, sizeof(cmd), COMMAND_WIDTH);
		if (sp->python)
			snprintf(py, sizeof(py), "%s", sp->python);
		else if (p->python_minor)
			snprintf(py, sizeof(py), "3.%d", p->python_minor);
		else
			snprintf(py, sizeof(py), "-");
		hs_render_count(a, sizeof(a), sp->objects);
		hs_render_size(b, sizeof(b), sp->bytes);
		mem_cell(c, sizeof(c), p->mem.rss);
		mem_cell(d, sizeof(d), p->mem.uss);
		mem_cell(e, sizeof(e), p->mem.pss);
		const char *cells[9] = { pid, ppid, cmd, py, a, b, c, d, e };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		char label[64];
		snprintf(label, sizeof(label), "total (%zu)", sum->proc_count);
		hs_render_count(a, sizeof(a), sum->total_count);
		hs_render_size(b, sizeof(b), sum->total_bytes);
		total_cell(c, sizeof(c), sum->mem.rss, sum->mem.rss_known, sum->proc_count);
		total_cell(d, sizeof(d), sum->mem.uss, sum->mem.uss_known, sum->proc_count);
		total_cell(e, sizeof(e), sum->mem.pss, sum->mem.pss_known, sum->proc_count);
		const char *cells[9] = { NULL, NULL, label, NULL, a, b, c, d, e };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	HS_TRY(rc);

	if (sum->mem.pss_known) {
		hs_render_size(a, sizeof(a), sum->mem.pss);
		hs_render_size(b, sizeof(b), sum->mem.uss);
		hs_render_size(c, sizeof(c), sum->mem.rss);
		fprintf(f, "\nphysical memory: %s (PSS total: pages shared copy-on-write or by libraries are "
		        "counted once, split among the processes sharing them)\n"
		        "private to the processes: %s (USS total: freed if they all exit)\n"
		        "the RSS sum, %s, counts every shared page once per process\n", a, b, c);
	} else {
		fprintf(f, "\nno memory figures recorded (smaps_rollup could not be read)\n");
	}
	HS_TRY(not_snapshotted_text(f, set));

	fprintf(f, "\n%s summed over the %zu process%s:\n",
	        sum->by == HS_GROUP_MODULE ? "modules" : "types", sum->proc_count,
	        sum->proc_count == 1 ? "" : "es");
	HS_TRY(hs_table_new(&t, 5));
	hs_table_column(t, 0, sum->by == HS_GROUP_MODULE ? "module" : "type", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 3, "share", HS_ALIGN_RIGHT);
	hs_table_column(t, 4, "objects per process (pid: count)", HS_ALIGN_LEFT);
	size_t top = top_of(opts, sum->row_count);
	where_item *items = hs_calloc(sum->proc_count ? sum->proc_count : 1, sizeof(*items));
	if (!items) {
		hs_table_free(t);
		return HS_ENOMEM;
	}
	for (size_t i = 0; i < top && rc == 0; i++) {
		const hs_procset_summary_row *r = &sum->rows[i];
		hs_render_count(a, sizeof(a), r->count);
		hs_render_size(b, sizeof(b), r->bytes);
		if (sum->total_bytes)
			snprintf(c, sizeof(c), "%.1f%%", 100.0 * (double)r->bytes / (double)sum->total_bytes);
		else
			snprintf(c, sizeof(c), "-");
		for (size_t k = 0; k < r->part_count; k++) {
			items[k].pid = sum->procs[r->parts[k].proc].proc->pid;
			items[k].key = (int64_t)r->parts[k].bytes;
			items[k].count = (int64_t)r->parts[k].count;
		}
		char where[256];
		where_text(where, sizeof(where), items, r->part_count, 0);
		const char *cells[5] = { r->name, a, b, c, where };
		rc = hs_table_row(t, cells);
	}
	hs_free(items);
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
		if (sum->total_bytes)
			snprintf(c, sizeof(c), "%.1f%%", 100.0 * (double)ob / (double)sum->total_bytes);
		else
			snprintf(c, sizeof(c), "-");
		const char *cells[5] = { name, a, b, c, NULL };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		hs_render_count(a, sizeof(a), sum->total_count);
		hs_render_size(b, sizeof(b), sum->total_bytes);
		const char *cells[5] = { "total", a, b, sum->total_bytes ? "100.0%" : "-", NULL };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	HS_TRY(rc);
	return io_check(f);
}

static int mem_json(cJSON *o, const char *key, const hs_proc_memory *m)
{
	cJSON *j = cJSON_AddObjectToObject(o, key);
	if (!j)
		return 0;
	int ok = 1;
	if (m->rss >= 0)
		ok &= cJSON_AddItemToObject(j, "rss", hs_render__num((uint64_t)m->rss));
	if (m->pss >= 0)
		ok &= cJSON_AddItemToObject(j, "pss", hs_render__num((uint64_t)m->pss));
	if (m->uss >= 0)
		ok &= cJSON_AddItemToObject(j, "uss", hs_render__num((uint64_t)m->uss));
	if (m->swap >= 0)
		ok &= cJSON_AddItemToObject(j, "swap", hs_render__num((uint64_t)m->swap));
	return ok;
}

static int mem_total_json(cJSON *o, const char *key, const hs_procset_mem_total *t)
{
	cJSON *j = cJSON_AddObjectToObject(o, key);
	if (!j)
		return 0;
	int ok = 1;
	if (t->rss_known)
		ok &= cJSON_AddItemToObject(j, "rss", hs_render__num(t->rss));
	if (t->pss_known)
		ok &= cJSON_AddItemToObject(j, "pss", hs_render__num(t->pss));
	if (t->uss_known)
		ok &= cJSON_AddItemToObject(j, "uss", hs_render__num(t->uss));
	if (t->swap_known)
		ok &= cJSON_AddItemToObject(j, "swap", hs_render__num(t->swap));
	ok &= cJSON_AddItemToObject(j, "measured", hs_render__num(t->pss_known));
	return ok;
}

static int argv_json(cJSON *o, const hs_procset_proc *p)
{
	cJSON *av = cJSON_AddArrayToObject(o, "argv");
	int ok = av != NULL;
	for (size_t i = 0; ok && i < p->argc; i++)
		ok &= cJSON_AddItemToArray(av, cJSON_CreateString(p->argv[i]));
	return ok;
}

static int not_snapshotted_json(cJSON *o, const hs_procset *set, const char *key)
{
	cJSON *arr = cJSON_AddArrayToObject(o, key);
	int ok = arr != NULL;
	for (size_t i = 0; ok && i < set->count; i++) {
		const hs_procset_proc *p = &set->procs[i];
		if (p->status == HS_PROC_OK)
			continue;
		cJSON *j = cJSON_CreateObject();
		ok &= j && cJSON_AddItemToArray(arr, j);
		ok &= ok && cJSON_AddItemToObject(j, "pid", hs_render__num((uint64_t)p->pid));
		ok &= ok && cJSON_AddItemToObject(j, "ppid", hs_render__num((uint64_t)p->ppid));
		ok &= ok && cJSON_AddStringToObject(j, "command", p->command ? p->command : "") != NULL;
		ok &= ok && argv_json(j, p);
		ok &= ok && cJSON_AddStringToObject(j, "status", hs_procset_status_name(p->status)) != NULL;
		ok &= ok && cJSON_AddStringToObject(j, "error", p->error ? p->error : "") != NULL;
	}
	return ok;
}

int hs_render_procset_summary_json(cJSON **out, const hs_procset_summary *sum,
                                   const hs_render_options *opts)
{
	*out = NULL;
	const hs_procset *set = sum->set;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "index", set->path ? set->path : "") != NULL;
	ok &= cJSON_AddStringToObject(o, "by", sum->by == HS_GROUP_MODULE ? "module" : "type") != NULL;
	ok &= cJSON_AddItemToObject(o, "top", hs_render__num(opts ? opts->top : 25));
	ok &= cJSON_AddItemToObject(o, "root_pid", hs_render__num((uint64_t)set->root_pid));
	if (set->time_iso)
		ok &= cJSON_AddStringToObject(o, "time_iso", set->time_iso) != NULL;
	ok &= cJSON_AddBoolToObject(o, "fork", set->fork) != NULL;
	cJSON *procs = cJSON_AddArrayToObject(o, "processes");
	ok &= procs != NULL;
	for (size_t i = 0; ok && i < sum->proc_count; i++) {
		const hs_procset_summary_proc *sp = &sum->procs[i];
		const hs_procset_proc *p = sp->proc;
		cJSON *j = cJSON_CreateObject();
		ok &= j && cJSON_AddItemToArray(procs, j);
		ok &= ok && cJSON_AddItemToObject(j, "pid", hs_render__num((uint64_t)p->pid));
		ok &= ok && cJSON_AddItemToObject(j, "ppid", hs_render__num((uint64_t)p->ppid));
		ok &= ok && cJSON_AddStringToObject(j, "command", p->command ? p->command : "") != NULL;
		ok &= ok && argv_json(j, p);
		ok &= ok && cJSON_AddStringToObject(j, "file", p->file ? p->file : "") != NULL;
		if (ok && sp->python)
			ok &= cJSON_AddStringToObject(j, "python", sp->python) != NULL;
		ok &= ok && cJSON_AddItemToObject(j, "count", hs_render__num(sp->objects));
		ok &= ok && cJSON_AddItemToObject(j, "bytes", hs_render__num(sp->bytes));
		ok &= ok && mem_json(j, "memory", &p->mem);
	}
	ok &= ok && not_snapshotted_json(o, set, "not_snapshotted");
	cJSON *total = cJSON_AddObjectToObject(o, "total");
	ok &= total != NULL;
	ok &= ok && cJSON_AddItemToObject(total, "processes", hs_render__num(sum->proc_count));
	ok &= ok && cJSON_AddItemToObject(total, "count", hs_render__num(sum->total_count));
	ok &= ok && cJSON_AddItemToObject(total, "bytes", hs_render__num(sum->total_bytes));
	ok &= ok && cJSON_AddItemToObject(total, "groups", hs_render__num(sum->row_count));
	ok &= ok && mem_total_json(total, "memory", &sum->mem);

	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	ok &= rows != NULL;
	size_t top = top_of(opts, sum->row_count);
	for (size_t i = 0; ok && i < top; i++) {
		const hs_procset_summary_row *r = &sum->rows[i];
		cJSON *j = cJSON_CreateObject();
		ok &= j && cJSON_AddItemToArray(rows, j);
		ok &= ok && cJSON_AddStringToObject(j, "name", r->name) != NULL;
		ok &= ok && cJSON_AddItemToObject(j, "count", hs_render__num(r->count));
		ok &= ok && cJSON_AddItemToObject(j, "bytes", hs_render__num(r->bytes));
		cJSON *parts = ok ? cJSON_AddArrayToObject(j, "processes") : NULL;
		ok &= parts != NULL;
		for (size_t k = 0; ok && k < r->part_count; k++) {
			cJSON *pj = cJSON_CreateObject();
			ok &= pj && cJSON_AddItemToArray(parts, pj);
			ok &= ok && cJSON_AddItemToObject(pj, "pid",
			                                  hs_render__num((uint64_t)sum->procs[r->parts[k].proc].proc->pid));
			ok &= ok && cJSON_AddItemToObject(pj, "count", hs_render__num(r->parts[k].count));
			ok &= ok && cJSON_AddItemToObject(pj, "bytes", hs_render__num(r->parts[k].bytes));
		}
	}
	cJSON *other = ok ? cJSON_AddObjectToObject(o, "other") : NULL;
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
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}

/* ------------------------------------------------------------------ */
/* diff                                                                */

static int changed(const hs_diff_row *r)
{
	return r->count_delta || r->bytes_delta || r->new_count;
}

static int proc_change_row(hs_table *t, const hs_procset_diff_proc *e)
{
	char pid[16], cmd[COMMAND_WIDTH * 4 + 8], ca[32], cb[32], cd[32], ba[32], bb[32], bd[32], ud[32],
	     pd[32];
	snprintf(pid, sizeof(pid), "%d", e->a->pid);
	hs_procset_proc_label(e->b, cmd, sizeof(cmd), COMMAND_WIDTH);
	hs_render_count(ca, sizeof(ca), e->total.count_a);
	hs_render_count(cb, sizeof(cb), e->total.count_b);
	hs_render_count_delta(cd, sizeof(cd), e->total.count_delta);
	hs_render_size(ba, sizeof(ba), e->total.bytes_a);
	hs_render_size(bb, sizeof(bb), e->total.bytes_b);
	hs_render_size_delta(bd, sizeof(bd), e->total.bytes_delta);
	mem_delta_cell(ud, sizeof(ud), e->a->mem.uss, e->b->mem.uss);
	mem_delta_cell(pd, sizeof(pd), e->a->mem.pss, e->b->mem.pss);
	const char *cells[10] = { pid, cmd, ca, cb, cd, ba, bb, bd, ud, pd };
	return hs_table_row(t, cells);
}

static void total_delta_cell(char *buf, size_t size, uint64_t a, size_t ka, uint64_t b, size_t kb,
                             size_t n)
{
	if (!ka || ka != n || kb != n)
		snprintf(buf, size, "-");
	else
		hs_render_size_delta(buf, size, (int64_t)(b - a));
}

static int unmatched_text(FILE *f, const hs_procset_diff *d, hs_procset_match which)
{
	size_t n = which == HS_MATCH_ENDED ? d->ended : d->started;
	if (!n)
		return 0;
	fprintf(f, "\n%s (a snapshot in %s only):\n", which == HS_MATCH_ENDED ? "ended" : "started",
	        which == HS_MATCH_ENDED ? "A" : "B");
	hs_table *t;
	HS_TRY(hs_table_new(&t, 6));
	int rc = 0;
	for (size_t i = 0; i < d->proc_count && rc == 0; i++) {
		const hs_procset_diff_proc *e = &d->procs[i];
		if (e->match != which)
			continue;
		const hs_procset_proc *p = which == HS_MATCH_ENDED ? e->a : e->b;
		char pid[16], cmd[COMMAND_WIDTH * 4 + 8], obj[48], by[32], uss[48];
		snprintf(pid, sizeof(pid), "%d", p->pid);
		hs_procset_proc_label(p, cmd, sizeof(cmd), COMMAND_WIDTH);
		char c[32];
		hs_render_count(c, sizeof(c), e->a ? e->total.count_a : e->total.count_b);
		snprintf(obj, sizeof(obj), "%s objects", c);
		hs_render_size(by, sizeof(by), e->a ? e->total.bytes_a : e->total.bytes_b);
		if (p->mem.uss >= 0) {
			hs_render_size(c, sizeof(c), (uint64_t)p->mem.uss);
			snprintf(uss, sizeof(uss), "USS %s", c);
		} else {
			snprintf(uss, sizeof(uss), "USS -");
		}
		const char *cells[6] = { pid, cmd, obj, by, uss, e->note ? e->note : "" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 2);
	hs_table_free(t);
	return rc;
}

static int type_change_row(hs_table *t, const char *name, const hs_diff_row *r, const char *where)
{
	char ca[32], cb[32], cd[32], ba[32], bb[32], bd[32];
	hs_render_count(ca, sizeof(ca), r->count_a);
	hs_render_count(cb, sizeof(cb), r->count_b);
	hs_render_count_delta(cd, sizeof(cd), r->count_delta);
	hs_render_size(ba, sizeof(ba), r->bytes_a);
	hs_render_size(bb, sizeof(bb), r->bytes_b);
	hs_render_size_delta(bd, sizeof(bd), r->bytes_delta);
	const char *cells[8] = { name, ca, cb, cd, ba, bb, bd, where };
	return hs_table_row(t, cells);
}

static void sum_into(hs_diff_row *acc, const hs_diff_row *r)
{
	acc->count_a += r->count_a;
	acc->bytes_a += r->bytes_a;
	acc->count_b += r->count_b;
	acc->bytes_b += r->bytes_b;
	acc->new_count += r->new_count;
	acc->new_bytes += r->new_bytes;
	acc->count_delta = (int64_t)(acc->count_b - acc->count_a);
	acc->bytes_delta = (int64_t)(acc->bytes_b - acc->bytes_a);
}

int hs_render_procset_diff_text(FILE *f, const hs_procset_diff *d, const hs_render_options *opts)
{
	const char *kind = d->by == HS_GROUP_MODULE ? "module" : "type";
	const char *kinds = d->by == HS_GROUP_MODULE ? "modules" : "types";
	fprintf(f, "A %s (%s)\nB %s (%s)\n", d->a->path ? d->a->path : "?",
	        d->a->time_iso ? d->a->time_iso : "time unknown", d->b->path ? d->b->path : "?",
	        d->b->time_iso ? d->b->time_iso : "time unknown");
	fprintf(f, "%zu process%s compared (matched by pid), %zu ended, %zu started\n\n", d->matched,
	        d->matched == 1 ? "" : "es", d->ended, d->started);

	hs_table *t;
	HS_TRY(hs_table_new(&t, 10));
	static const char *const heads[10] = { "pid", "command", "objects A", "objects B", "change",
	                                       "bytes A", "bytes B", "change", "USS change",
	                                       "PSS change" };
	for (size_t k = 0; k < 10; k++)
		hs_table_column(t, k, heads[k], k == 1 ? HS_ALIGN_LEFT : HS_ALIGN_RIGHT);
	int rc = 0;
	for (size_t i = 0; i < d->proc_count && rc == 0; i++)
		if (d->procs[i].match == HS_MATCH_BOTH)
			rc = proc_change_row(t, &d->procs[i]);
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		char label[64], ca[32], cb[32], cd[32], ba[32], bb[32], bd[32], ud[32], pd[32];
		snprintf(label, sizeof(label), "total (%zu)", d->matched);
		hs_render_count(ca, sizeof(ca), d->total.count_a);
		hs_render_count(cb, sizeof(cb), d->total.count_b);
		hs_render_count_delta(cd, sizeof(cd), d->total.count_delta);
		hs_render_size(ba, sizeof(ba), d->total.bytes_a);
		hs_render_size(bb, sizeof(bb), d->total.bytes_b);
		hs_render_size_delta(bd, sizeof(bd), d->total.bytes_delta);
		total_delta_cell(ud, sizeof(ud), d->mem_a.uss, d->mem_a.uss_known, d->mem_b.uss,
		                 d->mem_b.uss_known, d->matched);
		total_delta_cell(pd, sizeof(pd), d->mem_a.pss, d->mem_a.pss_known, d->mem_b.pss,
		                 d->mem_b.pss_known, d->matched);
		const char *cells[10] = { NULL, label, ca, cb, cd, ba, bb, bd, ud, pd };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	HS_TRY(rc);
	if (d->matched)
		fprintf(f, "(memory totals use USS and PSS: shared copy-on-write pages are counted once)\n");
	HS_TRY(unmatched_text(f, d, HS_MATCH_ENDED));
	HS_TRY(unmatched_text(f, d, HS_MATCH_STARTED));

	fprintf(f, "\n%s, changes summed over the %zu compared process%s:\n", kinds, d->matched,
	        d->matched == 1 ? "" : "es");
	HS_TRY(hs_table_new(&t, 8));
	static const char *const theads[8] = { NULL, "objects A", "objects B", "change", "bytes A",
	                                       "bytes B", "change", "change per process (pid: objects)" };
	hs_table_column(t, 0, kind, HS_ALIGN_LEFT);
	for (size_t k = 1; k < 8; k++)
		hs_table_column(t, k, theads[k], k == 7 ? HS_ALIGN_LEFT : HS_ALIGN_RIGHT);
	size_t nchanged = 0;
	for (size_t i = 0; i < d->row_count; i++)
		nchanged += changed(&d->rows[i].r) != 0;
	size_t top = top_of(opts, nchanged), shown = 0;
	where_item *items = hs_calloc(d->proc_count ? d->proc_count : 1, sizeof(*items));
	if (!items) {
		hs_table_free(t);
		return HS_ENOMEM;
	}
	hs_diff_row rest, same;
	memset(&rest, 0, sizeof(rest));
	memset(&same, 0, sizeof(same));
	for (size_t i = 0; i < d->row_count && rc == 0; i++) {
		const hs_procset_diff_row *r = &d->rows[i];
		if (!changed(&r->r)) {
			sum_into(&same, &r->r);
			continue;
		}
		if (shown++ >= top) {
			sum_into(&rest, &r->r);
			continue;
		}
		for (size_t k = 0; k < r->part_count; k++) {
			items[k].pid = d->procs[r->parts[k].proc].a->pid;
			items[k].key = r->parts[k].bytes_delta ? r->parts[k].bytes_delta
			                                       : (int64_t)r->parts[k].new_bytes;
			items[k].count = r->parts[k].count_delta;
		}
		char where[256];
		where_text(where, sizeof(where), items, r->part_count, 1);
		rc = type_change_row(t, r->r.name, &r->r, where);
	}
	hs_free(items);
	if (rc == 0 && top < nchanged) {
		char name[64];
		snprintf(name, sizeof(name), "(%zu more changed %s)", nchanged - top, kinds);
		rc = type_change_row(t, name, &rest, NULL);
	}
	if (rc == 0 && nchanged < d->row_count) {
		char name[64];
		snprintf(name, sizeof(name), "(%zu unchanged %s)", d->row_count - nchanged, kinds);
		rc = type_change_row(t, name, &same, NULL);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0)
		rc = type_change_row(t, "total", &d->total, NULL);
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	HS_TRY(rc);
	char x[32], y[32];
	hs_render_count(x, sizeof(x), d->total.new_count);
	hs_render_size(y, sizeof(y), d->total.new_bytes);
	fprintf(f, "\nnew in B (no object of the same type at that address in A, per process): "
	        "%s objects, %s\n", x, y);
	return io_check(f);
}

static int change_fields(cJSON *o, const hs_diff_row *r)
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

/* memory {rss_a, rss_b, rss_delta, ...} of a matched pair: figures known on both sides */
static int mem_change_json(cJSON *o, const hs_proc_memory *a, const hs_proc_memory *b)
{
	cJSON *j = cJSON_AddObjectToObject(o, "memory");
	if (!j)
		return 0;
	static const char *const names[4] = { "rss", "pss", "uss", "swap" };
	const int64_t va[4] = { a->rss, a->pss, a->uss, a->swap };
	const int64_t vb[4] = { b->rss, b->pss, b->uss, b->swap };
	int ok = 1;
	for (int k = 0; k < 4 && ok; k++) {
		if (va[k] < 0 || vb[k] < 0)
			continue;
		char key[16];
		snprintf(key, sizeof(key), "%s_a", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__num((uint64_t)va[k]));
		snprintf(key, sizeof(key), "%s_b", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__num((uint64_t)vb[k]));
		snprintf(key, sizeof(key), "%s_delta", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__snum(vb[k] - va[k]));
	}
	return ok;
}

static int mem_total_change_json(cJSON *o, const hs_procset_diff *d)
{
	cJSON *j = cJSON_AddObjectToObject(o, "memory");
	if (!j)
		return 0;
	static const char *const names[4] = { "rss", "pss", "uss", "swap" };
	const uint64_t va[4] = { d->mem_a.rss, d->mem_a.pss, d->mem_a.uss, d->mem_a.swap };
	const uint64_t vb[4] = { d->mem_b.rss, d->mem_b.pss, d->mem_b.uss, d->mem_b.swap };
	const size_t ka[4] = { d->mem_a.rss_known, d->mem_a.pss_known, d->mem_a.uss_known,
	                       d->mem_a.swap_known };
	const size_t kb[4] = { d->mem_b.rss_known, d->mem_b.pss_known, d->mem_b.uss_known,
	                       d->mem_b.swap_known };
	int ok = 1;
	for (int k = 0; k < 4 && ok; k++) {
		/* a total only where every compared process had the figure on both sides */
		if (!d->matched || ka[k] != d->matched || kb[k] != d->matched)
			continue;
		char key[16];
		snprintf(key, sizeof(key), "%s_a", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__num(va[k]));
		snprintf(key, sizeof(key), "%s_b", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__num(vb[k]));
		snprintf(key, sizeof(key), "%s_delta", names[k]);
		ok &= cJSON_AddItemToObject(j, key, hs_render__snum((int64_t)(vb[k] - va[k])));
	}
	return ok;
}

int hs_render_procset_diff_json(cJSON **out, const hs_procset_diff *d, const hs_render_options *opts)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "a", d->a->path ? d->a->path : "") != NULL;
	ok &= cJSON_AddStringToObject(o, "b", d->b->path ? d->b->path : "") != NULL;
	ok &= cJSON_AddStringToObject(o, "by", d->by == HS_GROUP_MODULE ? "module" : "type") != NULL;
	ok &= cJSON_AddItemToObject(o, "top", hs_render__num(opts ? opts->top : 25));
	ok &= cJSON_AddBoolToObject(o, "grew", d->grew) != NULL;
	static const char *const match_names[3] = { "both", "ended", "started" };
	cJSON *procs = cJSON_AddArrayToObject(o, "processes");
	ok &= procs != NULL;
	for (size_t i = 0; ok && i < d->proc_count; i++) {
		const hs_procset_diff_proc *e = &d->procs[i];
		const hs_procset_proc *p = e->a ? e->a : e->b;
		cJSON *j = cJSON_CreateObject();
		ok &= j && cJSON_AddItemToArray(procs, j);
		ok &= ok && cJSON_AddItemToObject(j, "pid", hs_render__num((uint64_t)p->pid));
		ok &= ok && cJSON_AddStringToObject(j, "command", p->command ? p->command : "") != NULL;
		ok &= ok && cJSON_AddStringToObject(j, "match", match_names[e->match]) != NULL;
		if (e->match == HS_MATCH_BOTH) {
			ok &= ok && change_fields(j, &e->total);
			ok &= ok && mem_change_json(j, &e->a->mem, &e->b->mem);
		} else {
			ok &= ok && cJSON_AddStringToObject(j, "note", e->note ? e->note : "") != NULL;
			ok &= ok && cJSON_AddItemToObject(j, "count", hs_render__num(e->a ? e->total.count_a
			                                                                   : e->total.count_b));
			ok &= ok && cJSON_AddItemToObject(j, "bytes", hs_render__num(e->a ? e->total.bytes_a
			                                                                   : e->total.bytes_b));
			ok &= ok && mem_json(j, "memory", &p->mem);
		}
	}
	cJSON *total = ok ? cJSON_AddObjectToObject(o, "total") : NULL;
	ok &= total != NULL;
	ok &= ok && change_fields(total, &d->total);
	ok &= ok && cJSON_AddItemToObject(total, "groups", hs_render__num(d->row_count));
	ok &= ok && cJSON_AddItemToObject(total, "compared", hs_render__num(d->matched));
	ok &= ok && cJSON_AddItemToObject(total, "ended", hs_render__num(d->ended));
	ok &= ok && cJSON_AddItemToObject(total, "started", hs_render__num(d->started));
	ok &= ok && mem_total_change_json(total, d);

	size_t nchanged = 0;
	for (size_t i = 0; i < d->row_count; i++)
		nchanged += changed(&d->rows[i].r) != 0;
	size_t top = top_of(opts, nchanged), shown = 0;
	cJSON *rows = ok ? cJSON_AddArrayToObject(o, "rows") : NULL;
	ok &= rows != NULL;
	hs_diff_row other;
	memset(&other, 0, sizeof(other));
	size_t other_groups = 0;
	for (size_t i = 0; ok && i < d->row_count; i++) {
		const hs_procset_diff_row *r = &d->rows[i];
		if (!changed(&r->r) || shown >= top) {
			sum_into(&other, &r->r);
			other_groups++;
			continue;
		}
		shown++;
		cJSON *j = cJSON_CreateObject();
		ok &= j && cJSON_AddItemToArray(rows, j);
		ok &= ok && cJSON_AddStringToObject(j, "name", r->r.name) != NULL;
		ok &= ok && change_fields(j, &r->r);
		cJSON *parts = ok ? cJSON_AddArrayToObject(j, "processes") : NULL;
		ok &= parts != NULL;
		for (size_t k = 0; ok && k < r->part_count; k++) {
			const hs_procset_part *pt = &r->parts[k];
			cJSON *pj = cJSON_CreateObject();
			ok &= pj && cJSON_AddItemToArray(parts, pj);
			ok &= ok && cJSON_AddItemToObject(pj, "pid", hs_render__num((uint64_t)d->procs[pt->proc].a->pid));
			ok &= ok && cJSON_AddItemToObject(pj, "count_delta", hs_render__snum(pt->count_delta));
			ok &= ok && cJSON_AddItemToObject(pj, "bytes_delta", hs_render__snum(pt->bytes_delta));
			ok &= ok && cJSON_AddItemToObject(pj, "new_count", hs_render__num(pt->new_count));
			ok &= ok && cJSON_AddItemToObject(pj, "new_bytes", hs_render__num(pt->new_bytes));
		}
	}
	cJSON *oth = ok ? cJSON_AddObjectToObject(o, "other") : NULL;
	ok &= oth != NULL;
	ok &= ok && change_fields(oth, &other);
	ok &= ok && cJSON_AddItemToObject(oth, "groups", hs_render__num(other_groups));
	ok &= ok && not_snapshotted_json(o, d->b, "not_snapshotted_b");
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
