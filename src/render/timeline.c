/*
 * render/timeline.c: `heapsnap timeline` (text and JSON, the contract in
 * formats/timeline.schema.json) and the overview of a recording that
 * `heapsnap info` and `heapsnap summary` print (formats/info-recording.schema.json).
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "heapsnap/timeline.h"
#include "render/render_internal.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* words                                                               */

static const char *sig_name(int sig)
{
	const char *n = sigabbrev_np(sig);
	return n ? n : "?";
}

/* "12.34 s", "2:05.3", "1:02:03" */
static void fmt_time(char *buf, size_t size, double s)
{
	if (fabs(s) < 100) {
		snprintf(buf, size, "%.2f s", s);
		return;
	}
	const char *sign = s < 0 ? "-" : "";
	s = fabs(s);
	long h = (long)(s / 3600);
	long m = (long)((s - (double)h * 3600) / 60);
	double sec = s - (double)h * 3600 - (double)m * 60;
	if (h)
		snprintf(buf, size, "%s%ld:%02ld:%02.0f", sign, h, m, floor(sec));
	else
		snprintf(buf, size, "%s%ld:%04.1f", sign, m, sec);
}

static void fmt_size(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		hs_render_size(buf, size, (uint64_t)v);
}

/* "+42.0 MiB/min": per second from 1 MiB/s, per hour below 1 KiB/min */
static void fmt_rate(char *buf, size_t size, double bps)
{
	double a = fabs(bps), v = a;
	const char *per = "s";
	if (a < 1024.0 * 1024.0) {
		per = a * 60 >= 1024 ? "min" : "h";
		v = a * 60 >= 1024 ? a * 60 : a * 3600;
	}
	char s[32];
	hs_render_size(s, sizeof(s), (uint64_t)(v + 0.5));
	snprintf(buf, size, "%s%s/%s", bps < 0 ? "-" : "+", s, per);
}

static const char *exit_status_word(hs_rec_exit_how how)
{
	switch (how) {
	case HS_REC_RUNNING: return "running";
	case HS_REC_EXITED: return "exited";
	case HS_REC_SIGNALED: return "signaled";
	case HS_REC_VANISHED: return "vanished";
	}
	return "unknown";
}

static void fmt_exit(char *buf, size_t size, const hs_rec_process *p)
{
	const hs_rec_exit *e = &p->exit;
	switch (e->how) {
	case HS_REC_RUNNING:
		snprintf(buf, size, "running");
		break;
	case HS_REC_EXITED:
		snprintf(buf, size, "exit %d", e->code);
		break;
	case HS_REC_SIGNALED:
		snprintf(buf, size, "SIG%s%s%s", sig_name(e->signal),
		         (e->flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)) ? " (OOM killer)" : "",
		         (e->flags & HS_REC_EXIT_CORE) ? " (core dumped)" : "");
		break;
	case HS_REC_VANISHED:
		snprintf(buf, size, "gone (status unknown)");
		break;
	}
}

static const char *stop_word(hs_rec_stop s)
{
	switch (s) {
	case HS_REC_STOP_EXITED: return "exited";
	case HS_REC_STOP_DURATION: return "duration";
	case HS_REC_STOP_SIGNAL: return "signal";
	case HS_REC_STOP_ERROR: return "error";
	default: return "unknown";
	}
}

static const char *trigger_word(hs_rec_snapshot_trigger t)
{
	switch (t) {
	case HS_REC_SNAP_SCHEDULE: return "schedule";
	case HS_REC_SNAP_GROWTH: return "growth";
	case HS_REC_SNAP_END: return "end";
	}
	return "?";
}

/* The META JSON of the recording, parsed (NULL if unparsable). */
static cJSON *meta_of(const hs_recording *r)
{
	const hs_rec_info *i = hs_recording_info(r);
	return i->meta ? cJSON_Parse(i->meta) : NULL;
}

static const char *meta_str(const cJSON *m, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ------------------------------------------------------------------ */
/* samples (held values on the RSS timestamps)                         */

typedef struct held {
	hs_rec_series s;
	size_t i;
} held;

/* The value of a slower series at t: its last sample at or before t, the
 * first one before that; -1 when it has none. */
static int64_t held_at(held *h, double t)
{
	if (!h->s.count)
		return -1;
	while (h->i + 1 < h->s.count && h->s.t[h->i + 1] <= t)
		h->i++;
	return h->s.v[h->i];
}

/* Indices of the samples to show: all, or per bucket the highest RSS. */
static size_t *pick(const hs_rec_series *rss, size_t max, size_t *count)
{
	size_t n = rss->count;
	size_t want = max && n > max ? max : n;
	size_t *idx = hs_malloc((want ? want : 1) * sizeof(size_t));
	if (!idx)
		return NULL;
	if (want == n) {
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
	} else {
		for (size_t b = 0; b < want; b++) {
			size_t lo = b * n / want, hi = (b + 1) * n / want;
			size_t best = lo;
			for (size_t i = lo; i < hi; i++)
				if (rss->v[i] > rss->v[best])
					best = i;
			idx[b] = best;
		}
	}
	*count = want;
	return idx;
}

static cJSON *num_or_null(int64_t v) { return v < 0 ? cJSON_CreateNull() : hs_render__snum(v); }

static cJSON *samples_json(const hs_rec_process *p, size_t max)
{
	hs_rec_series rss, vms;
	hs_rec_process_series(&rss, p, HS_REC_RSS);
	hs_rec_process_series(&vms, p, HS_REC_VMS);
	held h[8];
	hs_rec_metric m[8] = { HS_REC_ANON, HS_REC_FILE, HS_REC_SHMEM, HS_REC_SWAP, HS_REC_THREADS,
	                       HS_REC_CPU, HS_REC_PSS_EST, HS_REC_USS_EST };
	const char *names[8] = { "anon", "file", "shmem", "swap", "threads", "cpu", "pss", "uss" };
	for (int k = 0; k < 8; k++) {
		hs_rec_process_series(&h[k].s, p, m[k]);
		h[k].i = 0;
	}
	cJSON *a = cJSON_CreateArray();
	size_t n;
	size_t *idx = pick(&rss, max, &n);
	if (!a || !idx) {
		cJSON_Delete(a);
		hs_free(idx);
		return NULL;
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = idx[j];
		cJSON *s = cJSON_CreateObject();
		if (!s)
			break;
		cJSON_AddItemToArray(a, s);
		double t = rss.t[i];
		cJSON_AddNumberToObject(s, "t", t);
		cJSON_AddItemToObject(s, "rss", num_or_null(rss.v[i]));
		cJSON_AddItemToObject(s, "vms", num_or_null(vms.v[i]));
		for (int k = 0; k < 8; k++) {
			int64_t v = k >= 6 ? (h[k].s.count ? h[k].s.v[i] : -1) : held_at(&h[k], t);
			if (k == 5 && v >= 0)
				cJSON_AddNumberToObject(s, names[k], (double)v / 1e9);
			else
				cJSON_AddItemToObject(s, names[k], num_or_null(v));
		}
	}
	hs_free(idx);
	return a;
}

static cJSON *peak_json(const hs_tl_peak *pk)
{
	if (pk->bytes < 0)
		return cJSON_CreateNull();
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddItemToObject(o, "bytes", hs_render__snum(pk->bytes));
		cJSON_AddNumberToObject(o, "t", pk->t);
	}
	return o;
}

static cJSON *exit_json(const hs_rec_process *p)
{
	const hs_rec_exit *e = &p->exit;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "status", exit_status_word(e->how));
	cJSON_AddItemToObject(o, "code", e->how == HS_REC_EXITED ? cJSON_CreateNumber(e->code)
	                                                          : cJSON_CreateNull());
	if (e->how == HS_REC_SIGNALED) {
		cJSON_AddNumberToObject(o, "signal", e->signal);
		char n[32];
		snprintf(n, sizeof(n), "SIG%s", sig_name(e->signal));
		cJSON_AddStringToObject(o, "signal_name", n);
	} else {
		cJSON_AddNullToObject(o, "signal");
		cJSON_AddNullToObject(o, "signal_name");
	}
	cJSON_AddBoolToObject(o, "core_dumped", (e->flags & HS_REC_EXIT_CORE) != 0);
	cJSON_AddBoolToObject(o, "oom_killed",
	                      (e->flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)) != 0);
	cJSON *ev = cJSON_AddArrayToObject(o, "oom_evidence");
	if (ev && (e->flags & HS_REC_EXIT_OOM_CGROUP))
		cJSON_AddItemToArray(ev, cJSON_CreateString("cgroup"));
	if (ev && (e->flags & HS_REC_EXIT_OOM_KERNEL))
		cJSON_AddItemToArray(ev, cJSON_CreateString("kernel-log"));
	const char *src = (e->flags & HS_REC_EXIT_FROM_WAIT) ? "wait"
	                  : (e->flags & HS_REC_EXIT_FROM_CONNECTOR) ? "connector"
	                  : (e->flags & HS_REC_EXIT_FROM_PROC) ? "proc" : NULL;
	cJSON_AddItemToObject(o, "source", src ? cJSON_CreateString(src) : cJSON_CreateNull());
	return o;
}

static cJSON *python_json(const hs_rec_process *p, size_t max)
{
	const double *t;
	size_t n = hs_rec_process_samples(p, HS_REC_SERIES_PY, &t);
	size_t nt = hs_rec_process_types_count(p);
	if (!n && !nt)
		return cJSON_CreateNull();
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON *a = cJSON_AddArrayToObject(o, "samples");
	hs_rec_series s[6];
	hs_rec_metric m[6] = { HS_REC_PY_OBJECTS, HS_REC_PY_PYMALLOC, HS_REC_PY_ARENAS, HS_REC_PY_BLOCKS,
	                       HS_REC_PY_GC_COLLECTIONS, HS_REC_PY_GC_PAUSE };
	const char *names[6] = { "objects", "pymalloc_bytes", "arenas", "blocks", "gc_collections",
	                         "gc_pause" };
	for (int k = 0; k < 6; k++)
		hs_rec_process_series(&s[k], p, m[k]);
	size_t step = max && n > max ? (n + max - 1) / max : 1;
	for (size_t i = 0; a && i < n; i += step) {
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(a, e);
		cJSON_AddNumberToObject(e, "t", t[i]);
		for (int k = 0; k < 6; k++) {
			if (k == 5 && s[k].v[i] >= 0)
				cJSON_AddNumberToObject(e, names[k], (double)s[k].v[i] / 1e9);
			else
				cJSON_AddItemToObject(e, names[k], num_or_null(s[k].v[i]));
		}
	}
	cJSON *ty = cJSON_AddArrayToObject(o, "types");
	for (size_t i = 0; ty && i < nt; i++) {
		const hs_rec_types *x = hs_rec_process_types(p, i);
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(ty, e);
		cJSON_AddNumberToObject(e, "t", x->t);
		cJSON_AddItemToObject(e, "objects", num_or_null(x->objects));
		cJSON_AddItemToObject(e, "bytes", num_or_null(x->bytes));
		cJSON_AddNumberToObject(e, "seconds", x->seconds);
		cJSON *top = cJSON_AddArrayToObject(e, "top");
		for (size_t k = 0; top && k < x->count; k++) {
			cJSON *row = cJSON_CreateObject();
			if (!row)
				break;
			cJSON_AddItemToArray(top, row);
			cJSON_AddStringToObject(row, "name", x->rows[k].name);
			cJSON_AddItemToObject(row, "count", hs_render__snum(x->rows[k].count));
			cJSON_AddItemToObject(row, "bytes", hs_render__snum(x->rows[k].bytes));
		}
	}
	return o;
}

static cJSON *recording_json(const hs_recording *r, const cJSON *meta)
{
	const hs_rec_info *i = hs_recording_info(r);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "file", hs_recording_name(r));
	cJSON_AddBoolToObject(o, "complete", i->complete);
	cJSON_AddItemToObject(o, "warning", i->warning ? cJSON_CreateString(i->warning)
	                                               : cJSON_CreateNull());
	cJSON_AddStringToObject(o, "stop", stop_word(i->stop));
	cJSON_AddNumberToObject(o, "start_time", i->wall_start);
	cJSON_AddNumberToObject(o, "duration", i->duration);
	cJSON_AddNumberToObject(o, "interval", i->interval);
	cJSON_AddBoolToObject(o, "children", (i->flags & HS_REC_FLAG_CHILDREN) != 0);
	cJSON_AddStringToObject(o, "mode", (i->flags & HS_REC_FLAG_PID_MODE) ? "pid" : "command");
	const char *disc = meta_str(meta, "sampling", "discovery");
	cJSON_AddItemToObject(o, "discovery", disc ? cJSON_CreateString(disc) : cJSON_CreateNull());
	const char *fig = meta_str(meta, "python", "figures");
	cJSON_AddStringToObject(o, "python_figures", fig ? fig : ((i->flags & HS_REC_FLAG_AGENT)
	                                                          ? "agent" : "off"));
	cJSON_AddItemToObject(o, "chunks", hs_render__num(i->chunks));
	cJSON_AddItemToObject(o, "file_bytes", hs_render__num(i->file_bytes));
	cJSON_AddItemToObject(o, "samples", hs_render__num(i->samples));
	cJSON_AddNumberToObject(o, "bytes_per_sample",
	                        i->samples ? (double)i->file_bytes / (double)i->samples : 0.0);
	cJSON_AddNumberToObject(o, "sampler_cpu_seconds", i->sampler_cpu);
	cJSON_AddNumberToObject(o, "sampler_cpu_fraction",
	                        i->duration > 0 ? i->sampler_cpu / i->duration : 0.0);
	return o;
}

static cJSON *process_json(const hs_tl_process *q, int samples, size_t max)
{
	const hs_rec_process *p = q->process;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "index", (double)p->index);
	cJSON_AddNumberToObject(o, "pid", p->pid);
	cJSON_AddNumberToObject(o, "ppid", p->ppid);
	cJSON_AddItemToObject(o, "parent", p->parent >= 0 ? cJSON_CreateNumber((double)p->parent)
	                                                  : cJSON_CreateNull());
	cJSON *argv = cJSON_AddArrayToObject(o, "argv");
	for (size_t k = 0; argv && k < p->argc; k++)
		cJSON_AddItemToArray(argv, cJSON_CreateString(p->argv[k]));
	cJSON_AddStringToObject(o, "command", p->command);
	cJSON_AddStringToObject(o, "exe", p->exe);
	cJSON_AddNumberToObject(o, "start", p->start);
	cJSON_AddNumberToObject(o, "end", p->end);
	cJSON_AddBoolToObject(o, "root", (p->flags & HS_REC_PROC_ROOT) != 0);
	cJSON_AddBoolToObject(o, "from_birth", (p->flags & HS_REC_PROC_FROM_BIRTH) != 0);
	cJSON_AddBoolToObject(o, "python", (p->flags & HS_REC_PROC_PYTHON) != 0);
	cJSON_AddBoolToObject(o, "agent", (p->flags & HS_REC_PROC_AGENT) != 0);
	cJSON_AddNumberToObject(o, "execs", (double)p->execs);
	cJSON_AddItemToObject(o, "exit", exit_json(p));
	cJSON *pk = cJSON_AddObjectToObject(o, "peak");
	if (pk) {
		cJSON_AddItemToObject(pk, "rss", peak_json(&q->rss));
		cJSON_AddItemToObject(pk, "uss", peak_json(&q->uss));
		cJSON_AddItemToObject(pk, "pss", peak_json(&q->pss));
		cJSON_AddItemToObject(pk, "swap", peak_json(&q->swap));
	}
	cJSON *ae = cJSON_AddObjectToObject(o, "at_exit");
	if (ae) {
		cJSON_AddItemToObject(ae, "rss", num_or_null(q->exit_rss));
		cJSON_AddItemToObject(ae, "uss", num_or_null(q->exit_uss));
		cJSON_AddItemToObject(ae, "pss", num_or_null(q->exit_pss));
		cJSON_AddItemToObject(ae, "swap", num_or_null(q->exit_swap));
	}
	cJSON *rt = cJSON_AddObjectToObject(o, "rates");
	if (rt) {
		cJSON_AddNumberToObject(rt, "rss", q->rate[HS_REC_SERIES_MEM]);
		cJSON_AddNumberToObject(rt, "status", q->rate[HS_REC_SERIES_STATUS]);
		cJSON_AddNumberToObject(rt, "pss", q->rate[HS_REC_SERIES_SMAPS]);
		cJSON_AddNumberToObject(rt, "python", q->rate[HS_REC_SERIES_PY]);
	}
	if (samples) {
		cJSON_AddItemToObject(o, "samples", samples_json(p, max));
		/* PSS and USS as measured, at their own times */
		const double *t;
		size_t n = hs_rec_process_samples(p, HS_REC_SERIES_SMAPS, &t);
		hs_rec_series pss, uss, sp;
		hs_rec_process_series(&pss, p, HS_REC_PSS);
		hs_rec_process_series(&uss, p, HS_REC_USS);
		hs_rec_process_series(&sp, p, HS_REC_SWAP_PSS);
		cJSON *a = cJSON_AddArrayToObject(o, "pss_samples");
		for (size_t i = 0; a && i < n; i++) {
			cJSON *e = cJSON_CreateObject();
			if (!e)
				break;
			cJSON_AddItemToArray(a, e);
			cJSON_AddNumberToObject(e, "t", t[i]);
			cJSON_AddItemToObject(e, "pss", num_or_null(pss.v[i]));
			cJSON_AddItemToObject(e, "uss", num_or_null(uss.v[i]));
			cJSON_AddItemToObject(e, "swap_pss", num_or_null(sp.v[i]));
		}
	}
	cJSON_AddItemToObject(o, "python_heap", python_json(p, max));
	return o;
}

int hs_render_timeline_json(cJSON **out, const hs_recording *r, const hs_timeline *t,
                            const hs_timeline_render_options *opts)
{
	hs_timeline_render_options defaults = HS_TIMELINE_RENDER_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	*out = NULL;
	cJSON *meta = meta_of(r);
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		cJSON_Delete(meta);
		return hs_render__oom();
	}
	cJSON_AddItemToObject(o, "recording", recording_json(r, meta));
	cJSON_Delete(meta);
	cJSON *procs = cJSON_AddArrayToObject(o, "processes");
	for (size_t k = 0; procs && k < t->process_count; k++)
		cJSON_AddItemToArray(procs, process_json(&t->processes[k], 1, opts->max_samples));

	cJSON *total = cJSON_AddObjectToObject(o, "total");
	if (total) {
		cJSON_AddStringToObject(total, "metric", t->main_metric == HS_REC_PSS_EST ? "pss" : "rss");
		cJSON *pk = cJSON_AddObjectToObject(total, "peak");
		if (pk) {
			cJSON *pp = peak_json(&t->peak_pss);
			cJSON_AddItemToObject(pk, "pss", pp);
			cJSON_AddItemToObject(pk, "rss", peak_json(&t->peak_rss));
			cJSON_AddItemToObject(pk, "uss", peak_json(&t->peak_uss));
			cJSON *main = cJSON_GetObjectItem(pk, t->main_metric == HS_REC_PSS_EST ? "pss" : "rss");
			cJSON *by = cJSON_IsObject(main) ? cJSON_AddArrayToObject(main, "by_process") : NULL;
			for (size_t k = 0; by && k < t->process_count; k++) {
				if (t->peak_breakdown[k] < 0)
					continue;
				cJSON *e = cJSON_CreateObject();
				if (!e)
					break;
				cJSON_AddItemToArray(by, e);
				cJSON_AddNumberToObject(e, "pid", t->processes[k].process->pid);
				cJSON_AddItemToObject(e, "bytes", hs_render__snum(t->peak_breakdown[k]));
			}
		}
		cJSON_AddItemToObject(total, "sum_of_process_peaks_rss",
		                      hs_render__snum(t->sum_of_peaks_rss));
		cJSON *a = cJSON_AddArrayToObject(total, "samples");
		hs_rec_series rs = { t->total.count, t->total.t, t->total.rss };
		size_t n;
		size_t *idx = pick(&rs, opts->max_samples, &n);
		for (size_t j = 0; a && idx && j < n; j++) {
			size_t i = idx[j];
			cJSON *e = cJSON_CreateObject();
			if (!e)
				break;
			cJSON_AddItemToArray(a, e);
			cJSON_AddNumberToObject(e, "t", t->total.t[i]);
			cJSON_AddItemToObject(e, "rss", hs_render__snum(t->total.rss[i]));
			cJSON_AddItemToObject(e, "pss", hs_render__snum(t->total.pss[i]));
			cJSON_AddItemToObject(e, "uss", hs_render__snum(t->total.uss[i]));
		}
		hs_free(idx);
	}
	cJSON *ph = cJSON_AddArrayToObject(o, "phases");
	for (size_t k = 0; ph && k < t->phase_count; k++) {
		const hs_tl_phase *p = &t->phases[k];
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(ph, e);
		cJSON_AddStringToObject(e, "kind", hs_tl_phase_name(p->kind));
		cJSON_AddNumberToObject(e, "start", p->start);
		cJSON_AddNumberToObject(e, "end", p->end);
		cJSON_AddItemToObject(e, "from", hs_render__snum(p->from));
		cJSON_AddItemToObject(e, "to", hs_render__snum(p->to));
		cJSON_AddNumberToObject(e, "rate", p->rate);
	}
	cJSON *mk = cJSON_AddArrayToObject(o, "markers");
	for (size_t k = 0; mk && k < hs_recording_marker_count(r); k++) {
		const hs_rec_marker *m = hs_recording_marker(r, k);
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(mk, e);
		cJSON_AddNumberToObject(e, "t", m->t);
		cJSON_AddNumberToObject(e, "pid", hs_recording_process(r, m->process)->pid);
		cJSON_AddStringToObject(e, "label", m->label);
	}
	cJSON *sn = cJSON_AddArrayToObject(o, "snapshots");
	for (size_t k = 0; sn && k < hs_recording_snapshot_count(r); k++) {
		const hs_rec_snapshot *s = hs_recording_snapshot(r, k);
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(sn, e);
		cJSON_AddNumberToObject(e, "t", s->t);
		cJSON_AddNumberToObject(e, "pid", hs_recording_process(r, s->process)->pid);
		cJSON_AddStringToObject(e, "trigger", trigger_word(s->trigger));
		cJSON_AddItemToObject(e, "file", s->file ? cJSON_CreateString(s->file) : cJSON_CreateNull());
		cJSON_AddItemToObject(e, "path", s->path ? cJSON_CreateString(s->path) : cJSON_CreateNull());
		cJSON_AddItemToObject(e, "objects", num_or_null(s->objects));
		cJSON_AddItemToObject(e, "bytes", num_or_null(s->bytes));
		cJSON_AddNumberToObject(e, "pause", s->pause);
		cJSON_AddItemToObject(e, "error", s->error ? cJSON_CreateString(s->error)
		                                           : cJSON_CreateNull());
	}
	cJSON *no = cJSON_AddArrayToObject(o, "notes");
	for (size_t k = 0; no && k < hs_recording_note_count(r); k++) {
		const hs_rec_note *n = hs_recording_note(r, k);
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		cJSON_AddItemToArray(no, e);
		cJSON_AddNumberToObject(e, "t", n->t);
		cJSON_AddItemToObject(e, "pid", n->process >= 0
		                      ? cJSON_CreateNumber(hs_recording_process(r, (size_t)n->process)->pid)
		                      : cJSON_CreateNull());
		cJSON_AddStringToObject(e, "level", n->warning ? "warning" : "info");
		cJSON_AddStringToObject(e, "text", n->text);
	}
	/* cJSON add functions fail silently: verify the shape once */
	if (cJSON_GetArraySize(o) != 7 || !cJSON_IsObject(cJSON_GetObjectItem(o, "recording")) ||
	    cJSON_GetArraySize(procs) != (int)t->process_count) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}

/* ------------------------------------------------------------------ */
/* text                                                                */

static int put_row(hs_table *t, const char *const *cells) { return hs_table_row(t, cells); }

static void wall_clock(char *buf, size_t size, double wall)
{
	time_t tt = (time_t)wall;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(buf, size, "%H:%M:%S", &tm);
}

static int header_text(FILE *f, const hs_recording *r, const hs_timeline *t)
{
	const hs_rec_info *i = hs_recording_info(r);
	const hs_rec_process *root = hs_recording_root(r);
	cJSON *meta = meta_of(r);
	hs_table *kv;
	HS_TRY(hs_table_new(&kv, 2));
	char line[1024], a[64], b[64];
	int rc = 0;
#define KV(k, v) do { const char *c__[2] = { (k), (v) }; if (rc == 0) rc = put_row(kv, c__); } while (0)
	KV("recording", hs_recording_name(r));
	if (root) {
		snprintf(line, sizeof(line), "%s%s (pid %d)", (i->flags & HS_REC_FLAG_PID_MODE)
		         ? "attached to " : "", root->command[0] ? root->command : root->exe, root->pid);
		KV("command", line);
	}
	{
		time_t tt = (time_t)i->wall_start;
		struct tm tm;
		localtime_r(&tt, &tm);
		char when[64];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
		fmt_time(a, sizeof(a), i->duration);
		const char *how;
		char st[128] = "";
		if (!i->complete) {
			how = "ended abruptly";
		} else {
			switch (i->stop) {
			case HS_REC_STOP_EXITED: how = "complete"; break;
			case HS_REC_STOP_DURATION: how = "complete (--duration reached)"; break;
			case HS_REC_STOP_SIGNAL: how = "complete (stopped by a signal)"; break;
			case HS_REC_STOP_ERROR: how = "stopped on an error"; break;
			default: how = "complete"; break;
			}
		}
		if (root && root->exit.how != HS_REC_RUNNING) {
			char e[64];
			fmt_exit(e, sizeof(e), root);
			snprintf(st, sizeof(st), ", %s", e);
		}
		snprintf(line, sizeof(line), "%s, %s, %s%s", when, a, how, st);
		KV("time", line);
	}
	{
		const char *disc = meta_str(meta, "sampling", "discovery");
		const char *fig = meta_str(meta, "python", "figures");
		snprintf(line, sizeof(line), "RSS every %.0f ms%s%s%s, Python figures %s",
		         i->interval * 1e3, (i->flags & HS_REC_FLAG_CHILDREN) ? ", children followed" : "",
		         disc ? " by " : "", disc ? disc : "", fig ? fig : "off");
		KV("sampling", line);
	}
	{
		hs_render_size(a, sizeof(a), i->file_bytes);
		hs_render_count(b, sizeof(b), i->samples);
		snprintf(line, sizeof(line), "%s, %s samples, %.2f bytes/sample, %zu chunks; recorder "
		         "CPU %.2f%%", a, b, i->samples ? (double)i->file_bytes / (double)i->samples : 0.0,
		         i->chunks, i->duration > 0 ? 100.0 * i->sampler_cpu / i->duration : 0.0);
		KV("file", line);
	}
	if (i->warning)
		KV("warning", i->warning);
	(void)t;
#undef KV
	if (rc == 0)
		rc = hs_table_print(kv, f, 0);
	hs_table_free(kv);
	cJSON_Delete(meta);
	return rc;
}

static int processes_text(FILE *f, const hs_timeline *t)
{
	hs_table *tb;
	HS_TRY(hs_table_new(&tb, 9));
	const char *heads[9] = { "pid", "ppid", "command", "start", "end", "exit", "peak RSS",
	                         "peak PSS", "PSS at exit" };
	int rc = 0;
	for (size_t c = 0; c < 9 && rc == 0; c++)
		rc = hs_table_column(tb, c, heads[c], c == 2 || c == 5 ? HS_ALIGN_LEFT : HS_ALIGN_RIGHT);
	for (size_t k = 0; k < t->process_count && rc == 0; k++) {
		const hs_tl_process *q = &t->processes[k];
		const hs_rec_process *p = q->process;
		char pid[16], ppid[16], cmd[96], st[32], en[32], ex[64], prss[96], ppss[96], xpss[32];
		snprintf(pid, sizeof(pid), "%d", p->pid);
		snprintf(ppid, sizeof(ppid), "%d", p->ppid);
		const char *c = p->command[0] ? p->command : p->exe;
		if (strlen(c) > 60)
			snprintf(cmd, sizeof(cmd), "%.57s...", c);
		else
			snprintf(cmd, sizeof(cmd), "%s", c);
		fmt_time(st, sizeof(st), p->start);
		fmt_time(en, sizeof(en), p->end);
		fmt_exit(ex, sizeof(ex), p);
		char s1[32], s2[32];
		fmt_size(s1, sizeof(s1), q->rss.bytes);
		fmt_time(s2, sizeof(s2), q->rss.t);
		if (q->rss.bytes >= 0)
			snprintf(prss, sizeof(prss), "%s at %s", s1, s2);
		else
			snprintf(prss, sizeof(prss), "-");
		fmt_size(s1, sizeof(s1), q->pss.bytes);
		fmt_time(s2, sizeof(s2), q->pss.t);
		if (q->pss.bytes >= 0)
			snprintf(ppss, sizeof(ppss), "%s at %s", s1, s2);
		else
			snprintf(ppss, sizeof(ppss), "-");
		fmt_size(xpss, sizeof(xpss), q->exit_pss);
		const char *cells[9] = { pid, ppid, cmd, st, en, ex, prss, ppss, xpss };
		rc = hs_table_row(tb, cells);
	}
	if (rc == 0)
		rc = hs_table_print(tb, f, 2);
	hs_table_free(tb);
	return rc;
}

static int samples_text(FILE *f, const hs_tl_process *q, size_t max)
{
	const hs_rec_process *p = q->process;
	hs_rec_series rss, pss, uss;
	hs_rec_process_series(&rss, p, HS_REC_RSS);
	hs_rec_process_series(&pss, p, HS_REC_PSS_EST);
	hs_rec_process_series(&uss, p, HS_REC_USS_EST);
	held sw;
	hs_rec_process_series(&sw.s, p, HS_REC_SWAP);
	sw.i = 0;
	size_t n;
	size_t *idx = pick(&rss, max, &n);
	if (!idx)
		return HS_ENOMEM;
	fprintf(f, "\nsamples of %d (%s)\n", p->pid, p->command);
	hs_table *tb;
	int rc = hs_table_new(&tb, 5);
	const char *heads[5] = { "t", "RSS", "PSS", "USS", "swap" };
	for (size_t c = 0; c < 5 && rc == 0; c++)
		rc = hs_table_column(tb, c, heads[c], HS_ALIGN_RIGHT);
	for (size_t j = 0; j < n && rc == 0; j++) {
		size_t i = idx[j];
		char tt[32], a[32], b[32], c[32], d[32];
		fmt_time(tt, sizeof(tt), rss.t[i]);
		fmt_size(a, sizeof(a), rss.v[i]);
		fmt_size(b, sizeof(b), pss.count ? pss.v[i] : -1);
		fmt_size(c, sizeof(c), uss.count ? uss.v[i] : -1);
		fmt_size(d, sizeof(d), held_at(&sw, rss.t[i]));
		const char *cells[5] = { tt, a, b, c, d };
		rc = hs_table_row(tb, cells);
	}
	if (rc == 0)
		rc = hs_table_print(tb, f, 2);
	hs_table_free(tb);
	hs_free(idx);
	return rc;
}

int hs_render_timeline_text(FILE *f, const hs_recording *r, const hs_timeline *t,
                            const hs_timeline_render_options *opts)
{
	hs_timeline_render_options defaults = HS_TIMELINE_RENDER_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	const hs_rec_info *info = hs_recording_info(r);
	HS_TRY(header_text(f, r, t));
	fprintf(f, "\nprocesses (%zu)\n", t->process_count);
	if (t->process_count)
		HS_TRY(processes_text(f, t));
	for (size_t k = 0; k < t->process_count; k++) {
		const hs_rec_exit *e = &t->processes[k].process->exit;
		if (e->how == HS_REC_SIGNALED && (e->flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)))
			fprintf(f, "  process %d was killed by the OOM killer (%s%s%s)\n",
			        t->processes[k].process->pid,
			        (e->flags & HS_REC_EXIT_OOM_CGROUP) ? "its cgroup's oom_kill count rose" : "",
			        (e->flags & HS_REC_EXIT_OOM_CGROUP) && (e->flags & HS_REC_EXIT_OOM_KERNEL) ? "; " : "",
			        (e->flags & HS_REC_EXIT_OOM_KERNEL) ? "the kernel log names it" : "");
	}

	char a[64], b[64], c[64];
	fprintf(f, "\ntree (all processes at one instant)\n");
	const hs_tl_peak *main = t->main_metric == HS_REC_PSS_EST ? &t->peak_pss : &t->peak_rss;
	if (main->bytes >= 0) {
		fmt_size(a, sizeof(a), main->bytes);
		fmt_time(b, sizeof(b), main->t);
		fprintf(f, "  peak %s  %s at %s", t->main_metric == HS_REC_PSS_EST ? "PSS" : "RSS", a, b);
		const char *sep = ": ";
		for (size_t k = 0; k < t->process_count; k++) {
			if (t->peak_breakdown[k] < 0)
				continue;
			fmt_size(c, sizeof(c), t->peak_breakdown[k]);
			fprintf(f, "%s%d %s", sep, t->processes[k].process->pid, c);
			sep = ", ";
		}
		fputc('\n', f);
	}
	if (t->peak_rss.bytes >= 0) {
		fmt_size(a, sizeof(a), t->peak_rss.bytes);
		fmt_time(b, sizeof(b), t->peak_rss.t);
		fmt_size(c, sizeof(c), t->sum_of_peaks_rss);
		fprintf(f, "  peak RSS  %s at %s (summing each process's own peak would claim %s)\n", a,
		        b, c);
	}
	if (t->phase_count) {
		fprintf(f, "\nphases (tree %s)\n", t->main_metric == HS_REC_PSS_EST ? "PSS" : "RSS");
		hs_table *tb;
		HS_TRY(hs_table_new(&tb, 4));
		int rc = 0;
		int clock = info->duration >= 60;
		for (size_t k = 0; k < t->phase_count && rc == 0; k++) {
			const hs_tl_phase *p = &t->phases[k];
			char span[160], s1[32], s2[32], rate[48], range[96], w1[16], w2[16];
			fmt_time(s1, sizeof(s1), p->start);
			fmt_time(s2, sizeof(s2), p->end);
			if (clock) {
				wall_clock(w1, sizeof(w1), info->wall_start + p->start);
				wall_clock(w2, sizeof(w2), info->wall_start + p->end);
				snprintf(span, sizeof(span), "%s - %s (%s to %s)", s1, s2, w1, w2);
			} else {
				snprintf(span, sizeof(span), "%s - %s", s1, s2);
			}
			if (p->kind == HS_TL_PLATEAU)
				snprintf(rate, sizeof(rate), "flat");
			else
				fmt_rate(rate, sizeof(rate), p->rate);
			fmt_size(s1, sizeof(s1), p->from);
			fmt_size(s2, sizeof(s2), p->to);
			snprintf(range, sizeof(range), "%s -> %s", s1, s2);
			const char *cells[4] = { span, hs_tl_phase_name(p->kind), rate, range };
			rc = hs_table_row(tb, cells);
		}
		if (rc == 0)
			rc = hs_table_print(tb, f, 2);
		hs_table_free(tb);
		HS_TRY(rc);
	}
	if (hs_recording_marker_count(r)) {
		fprintf(f, "\nmarkers\n");
		for (size_t k = 0; k < hs_recording_marker_count(r); k++) {
			const hs_rec_marker *m = hs_recording_marker(r, k);
			fmt_time(a, sizeof(a), m->t);
			fprintf(f, "  %10s  %d  %s\n", a, hs_recording_process(r, m->process)->pid, m->label);
		}
	}
	if (hs_recording_snapshot_count(r)) {
		fprintf(f, "\nsnapshots\n");
		for (size_t k = 0; k < hs_recording_snapshot_count(r); k++) {
			const hs_rec_snapshot *s = hs_recording_snapshot(r, k);
			fmt_time(a, sizeof(a), s->t);
			if (s->error) {
				fprintf(f, "  %10s  %d  failed (%s): %s\n", a,
				        hs_recording_process(r, s->process)->pid, trigger_word(s->trigger),
				        s->error);
				continue;
			}
			fmt_size(b, sizeof(b), s->bytes);
			hs_render_count(c, sizeof(c), s->objects >= 0 ? (uint64_t)s->objects : 0);
			fprintf(f, "  %10s  %d  %s (%s; %s objects, %s; pause %.0f ms)\n", a,
			        hs_recording_process(r, s->process)->pid, s->file, trigger_word(s->trigger), c,
			        b, s->pause * 1e3);
		}
	}
	if (hs_recording_note_count(r)) {
		fprintf(f, "\nnotes\n");
		for (size_t k = 0; k < hs_recording_note_count(r); k++) {
			const hs_rec_note *n = hs_recording_note(r, k);
			fmt_time(a, sizeof(a), n->t);
			char who[32] = "";
			if (n->process >= 0)
				snprintf(who, sizeof(who), "%d  ", hs_recording_process(r, (size_t)n->process)->pid);
			fprintf(f, "  %10s  %s%s%s\n", a, who, n->warning ? "warning: " : "", n->text);
		}
	}
	if (t->process_count) {
		fprintf(f, "\nsamples per second\n");
		hs_table *tb;
		HS_TRY(hs_table_new(&tb, 5));
		const char *heads[5] = { "pid", "RSS", "RSS split", "PSS", "Python" };
		int rc = 0;
		for (size_t c2 = 0; c2 < 5 && rc == 0; c2++)
			rc = hs_table_column(tb, c2, heads[c2], HS_ALIGN_RIGHT);
		for (size_t k = 0; k < t->process_count && rc == 0; k++) {
			const hs_tl_process *q = &t->processes[k];
			char pid[16], r1[16], r2[16], r3[16], r4[16];
			snprintf(pid, sizeof(pid), "%d", q->process->pid);
			snprintf(r1, sizeof(r1), "%.1f", q->rate[HS_REC_SERIES_MEM]);
			snprintf(r2, sizeof(r2), "%.1f", q->rate[HS_REC_SERIES_STATUS]);
			snprintf(r3, sizeof(r3), "%.2f", q->rate[HS_REC_SERIES_SMAPS]);
			if (q->rate[HS_REC_SERIES_PY] > 0)
				snprintf(r4, sizeof(r4), "%.2f", q->rate[HS_REC_SERIES_PY]);
			else
				snprintf(r4, sizeof(r4), "-");
			const char *cells[5] = { pid, r1, r2, r3, r4 };
			rc = hs_table_row(tb, cells);
		}
		if (rc == 0)
			rc = hs_table_print(tb, f, 2);
		hs_table_free(tb);
		HS_TRY(rc);
	}
	if (opts->samples)
		for (size_t k = 0; k < t->process_count; k++)
			HS_TRY(samples_text(f, &t->processes[k], opts->max_samples));
	return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
}

/* ------------------------------------------------------------------ */
/* overview (info / summary of a recording)                            */

int hs_render_recording_info_text(FILE *f, const hs_recording *r, const hs_timeline *t)
{
	HS_TRY(header_text(f, r, t));
	hs_table *kv;
	HS_TRY(hs_table_new(&kv, 2));
	char line[1024], a[64], b[64];
	int rc = 0;
	size_t py = 0, agents = 0, exited = 0, oom = 0;
	for (size_t k = 0; k < t->process_count; k++) {
		const hs_rec_process *p = t->processes[k].process;
		py += (p->flags & HS_REC_PROC_PYTHON) != 0;
		agents += (p->flags & HS_REC_PROC_AGENT) != 0;
		exited += p->exit.how != HS_REC_RUNNING;
		oom += (p->exit.flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)) != 0;
	}
	snprintf(line, sizeof(line), "%zu (%zu Python, %zu with the agent), %zu ended%s", t->process_count,
	         py, agents, exited, oom ? ", some by the OOM killer" : "");
	const char *c1[2] = { "processes", line };
	rc = hs_table_row(kv, c1);
	const hs_tl_peak *main = t->main_metric == HS_REC_PSS_EST ? &t->peak_pss : &t->peak_rss;
	if (rc == 0 && main->bytes >= 0) {
		fmt_size(a, sizeof(a), main->bytes);
		fmt_time(b, sizeof(b), main->t);
		snprintf(line, sizeof(line), "%s %s at %s (the whole tree at one instant)",
		         t->main_metric == HS_REC_PSS_EST ? "PSS" : "RSS", a, b);
		const char *c2[2] = { "peak", line };
		rc = hs_table_row(kv, c2);
	}
	size_t nm = hs_recording_marker_count(r), ns = hs_recording_snapshot_count(r),
	       nn = hs_recording_note_count(r);
	snprintf(line, sizeof(line), "%zu marker%s, %zu snapshot%s, %zu note%s", nm, nm == 1 ? "" : "s",
	         ns, ns == 1 ? "" : "s", nn, nn == 1 ? "" : "s");
	const char *c3[2] = { "events", line };
	if (rc == 0)
		rc = hs_table_row(kv, c3);
	if (rc == 0)
		rc = hs_table_print(kv, f, 0);
	hs_table_free(kv);
	HS_TRY(rc);
	fprintf(f, "\nprocesses (%zu)\n", t->process_count);
	if (t->process_count)
		HS_TRY(processes_text(f, t));
	return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
}

int hs_render_recording_info_json(cJSON **out, const hs_recording *r, const hs_timeline *t)
{
	*out = NULL;
	cJSON *meta = meta_of(r);
	cJSON *o = cJSON_CreateObject();
	if (!o) {
		cJSON_Delete(meta);
		return hs_render__oom();
	}
	cJSON_AddStringToObject(o, "kind", "recording");
	cJSON_AddItemToObject(o, "recording", recording_json(r, meta));
	cJSON *procs = cJSON_AddArrayToObject(o, "processes");
	for (size_t k = 0; procs && k < t->process_count; k++)
		cJSON_AddItemToArray(procs, process_json(&t->processes[k], 0, 0));
	cJSON *pk = cJSON_AddObjectToObject(o, "peak");
	if (pk) {
		cJSON_AddStringToObject(pk, "metric", t->main_metric == HS_REC_PSS_EST ? "pss" : "rss");
		cJSON_AddItemToObject(pk, "pss", peak_json(&t->peak_pss));
		cJSON_AddItemToObject(pk, "rss", peak_json(&t->peak_rss));
	}
	cJSON *counts = cJSON_AddObjectToObject(o, "counts");
	if (counts) {
		cJSON_AddNumberToObject(counts, "markers", (double)hs_recording_marker_count(r));
		cJSON_AddNumberToObject(counts, "snapshots", (double)hs_recording_snapshot_count(r));
		cJSON_AddNumberToObject(counts, "notes", (double)hs_recording_note_count(r));
	}
	cJSON_AddItemToObject(o, "meta", meta ? meta : cJSON_CreateObject());
	const hs_rec_info *i = hs_recording_info(r);
	cJSON *me = i->meta_end ? cJSON_Parse(i->meta_end) : NULL;
	cJSON_AddItemToObject(o, "meta_end", me ? me : cJSON_CreateNull());
	if (cJSON_GetArraySize(o) != 7 || cJSON_GetArraySize(procs) != (int)t->process_count) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
