/*
 * render/plot.c: `heapsnap plot`: what to draw from a recording (the
 * window, each process's series of the chosen metric, which processes get
 * a line of their own, the tree's total at each instant, the peak, the
 * Python types worth a line), and writing the file. Layout and drawing are
 * in plot_draw.c, the surfaces in plot_canvas.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "heapsnap/plot.h"
#include "heapsnap/render.h"
#include "render/plot_internal.h"
#include "util/alloc.h"
#include "util/file.h"

#define DEFAULT_WIDTH 1200
#define DEFAULT_HEIGHT 600
#define DEFAULT_HEIGHT_TYPES 800
#define DEFAULT_TOP 10
#define DEFAULT_TYPES 6
#define MIN_SIZE 200
#define MAX_SIZE 20000
#define MAX_PNG_PIXELS 64000000 /* 256 MB of image */

hs_plot_format hs_plot_format_of(const char *path)
{
	const char *dot = path ? strrchr(path, '.') : NULL;
	if (!dot || strchr(dot, '/'))
		return HS_PLOT_AUTO;
	if (!strcasecmp(dot + 1, "png"))
		return HS_PLOT_PNG;
	if (!strcasecmp(dot + 1, "svg"))
		return HS_PLOT_SVG;
	if (!strcasecmp(dot + 1, "pdf"))
		return HS_PLOT_PDF;
	return HS_PLOT_AUTO;
}

const char *hs_plot_format_name(hs_plot_format f)
{
	switch (f) {
	case HS_PLOT_PNG: return "png";
	case HS_PLOT_SVG: return "svg";
	case HS_PLOT_PDF: return "pdf";
	default: return "";
	}
}

/* ------------------------------------------------------------------ */
/* series                                                              */

int64_t hs_plot__value(const hs_plot__proc *ps, size_t j)
{
	int64_t v = ps->main.v[j];
	if (v < 0 && ps->paired)
		v = ps->rss.v[j];
	return v;
}

static int has_values(const hs_rec_series *s)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->v[i] >= 0)
			return 1;
	return 0;
}

/* The series drawn for a process: the estimate on the RSS timestamps, else
 * the measured samples, else RSS itself (flagged). */
static void pick_series(hs_plot__proc *ps, hs_rec_metric want)
{
	const hs_rec_process *p = ps->p;
	hs_rec_process_series(&ps->rss, p, HS_REC_RSS);
	if (want == HS_REC_RSS) {
		ps->main = ps->rss;
		return;
	}
	hs_rec_metric est = want == HS_REC_PSS_EST ? HS_REC_PSS_EST : HS_REC_USS_EST;
	hs_rec_metric measured = want == HS_REC_PSS_EST ? HS_REC_PSS : HS_REC_USS;
	if (hs_rec_process_series(&ps->main, p, est) == 0 && has_values(&ps->main)) {
		ps->paired = ps->main.count == ps->rss.count;
		return;
	}
	if (hs_rec_process_series(&ps->main, p, measured) == 0 && has_values(&ps->main))
		return;
	ps->main = ps->rss;
	ps->fallback = ps->rss.count > 0;
}

/* first index with t >= x */
static size_t lower_bound(const double *t, size_t n, double x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* first index with t > x */
static size_t upper_bound(const double *t, size_t n, double x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void window_of(hs_plot__proc *ps, double from, double to)
{
	const hs_rec_series *s = &ps->main;
	ps->peak = -1;
	ps->visible = 0;
	if (!s->count)
		return;
	size_t a = lower_bound(s->t, s->count, from), b = upper_bound(s->t, s->count, to);
	ps->inside = b > a ? b - a : 0;
	ps->i0 = a > 0 ? a - 1 : 0;
	ps->i1 = b < s->count ? b + 1 : s->count;
	for (size_t j = a; j < b; j++) {
		int64_t v = hs_plot__value(ps, j);
		if (v > ps->peak) {
			ps->peak = v;
			ps->peak_t = s->t[j];
		}
	}
	if (ps->inside) {
		ps->visible = ps->peak >= 0;
	} else if (a > 0 && b < s->count) {
		/* sampled before and after the window: its line crosses it */
		int64_t v = hs_plot__value(ps, a - 1);
		ps->visible = v >= 0;
		ps->peak = v;
		ps->peak_t = from;
	}
}

/* ------------------------------------------------------------------ */
/* the tree's total at each instant                                    */

typedef struct cursor {
	size_t i;
	int have;
} cursor;

/*
 * Walk the instants of the window: samples of all processes grouped by
 * tick (a sample belongs to the instant of the earliest sample less than
 * half an interval before it), as `heapsnap timeline` groups them, so the
 * stacked total and its peak are the timeline's. For each instant in
 * [from, to] (and the last one before, the first one after) `visit` gets
 * the time and each band's value.
 */
typedef int (*instant_fn)(hs_plot__model *m, size_t n, double t, const int64_t *bands,
                          int64_t total, void *payload);

static int walk_instants(hs_plot__model *m, instant_fn visit, void *payload)
{
	size_t nb = m->bands ? m->bands : 1;
	cursor *cur = hs_calloc(m->np ? m->np : 1, sizeof(cursor));
	int64_t *vals = hs_calloc(nb, sizeof(int64_t));
	int rc = 0;
	if (!cur || !vals) {
		rc = hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
		goto done;
	}
	size_t n = 0;
	int before = 0; /* an instant before the window was seen: visit the last one first */
	double bt = 0;
	int64_t *bvals = hs_calloc(nb, sizeof(int64_t)), btotal = 0;
	if (!bvals) {
		rc = hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
		goto done;
	}
	for (;;) {
		double tmin = INFINITY;
		for (size_t k = 0; k < m->np; k++) {
			const hs_plot__proc *ps = &m->procs[k];
			if (ps->band >= 0 && cur[k].i < ps->main.count && ps->main.t[cur[k].i] < tmin)
				tmin = ps->main.t[cur[k].i];
		}
		if (tmin == INFINITY)
			break;
		double tend = tmin + m->half;
		int64_t total = 0;
		int any = 0;
		memset(vals, 0, nb * sizeof(int64_t));
		for (size_t k = 0; k < m->np; k++) {
			const hs_plot__proc *ps = &m->procs[k];
			cursor *c = &cur[k];
			if (ps->band < 0)
				continue;
			while (c->i < ps->main.count && ps->main.t[c->i] < tend) {
				c->i++;
				c->have = 1;
			}
			if (!c->have || tmin > ps->p->end + m->half)
				continue;
			int64_t v = hs_plot__value(ps, c->i - 1);
			if (v < 0)
				continue;
			vals[m->stacked ? (size_t)ps->band : 0] += v;
			total += v;
			any = 1;
		}
		if (!any)
			continue;
		if (tmin < m->from) {
			before = 1;
			bt = tmin;
			btotal = total;
			memcpy(bvals, vals, nb * sizeof(int64_t));
			continue;
		}
		if (before) {
			if ((rc = visit(m, n++, bt, bvals, btotal, payload)) < 0)
				break;
			before = 0;
		}
		if ((rc = visit(m, n++, tmin, vals, total, payload)) < 0)
			break;
		if (tmin > m->to)
			break; /* the first one after the window closes it */
	}
	hs_free(bvals);
done:
	hs_free(cur);
	hs_free(vals);
	return rc;
}

static int count_instant(hs_plot__model *m, size_t n, double t, const int64_t *bands,
                         int64_t total, void *payload)
{
	(void)m, (void)n, (void)t, (void)bands, (void)total;
	(*(size_t *)payload)++;
	return 0;
}

static int store_total(hs_plot__model *m, size_t n, double t, const int64_t *bands,
                       int64_t total, void *payload)
{
	(void)bands, (void)payload;
	m->tt[n] = t;
	m->tv[n] = total;
	if (t >= m->from && t <= m->to && total > m->tree_peak) {
		m->tree_peak = total;
		m->tree_peak_t = t;
	}
	return 0;
}

static int build_total(hs_plot__model *m)
{
	size_t n = 0;
	HS_TRY(walk_instants(m, count_instant, &n));
	m->tt = hs_malloc((n ? n : 1) * sizeof(double));
	m->tv = hs_malloc((n ? n : 1) * sizeof(int64_t));
	if (!m->tt || !m->tv)
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	m->tree_peak = -1;
	HS_TRY(walk_instants(m, store_total, NULL));
	m->tcount = n;
	return 0;
}

typedef struct keep_state {
	unsigned char *keep;
	size_t next;
} keep_state;

static int store_kept(hs_plot__model *m, size_t n, double t, const int64_t *bands,
                      int64_t total, void *payload)
{
	keep_state *ks = payload;
	(void)total;
	if (n >= m->tcount || !ks->keep[n])
		return 0;
	m->kt[ks->next] = t;
	memcpy(m->kv + ks->next * m->bands, bands, m->bands * sizeof(int64_t));
	ks->next++;
	return 0;
}

int hs_plot__stack_keep(hs_plot__model *m, double px_per_s)
{
	if (!m->tcount || !m->bands)
		return 0;
	unsigned char *keep = hs_calloc(m->tcount, 1);
	if (!keep)
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	/* per pixel column its lowest and highest total (in time order), and the first and
	 * last instants: what a 1-pixel column can show, at most 2 points a column */
	size_t kept = 0;
	for (size_t a = 0; a < m->tcount;) {
		long long col = (long long)floor((m->tt[a] - m->from) * px_per_s);
		size_t b = a, lo = a, hi = a;
		while (b < m->tcount && (long long)floor((m->tt[b] - m->from) * px_per_s) == col) {
			if (m->tv[b] < m->tv[lo])
				lo = b;
			if (m->tv[b] > m->tv[hi])
				hi = b;
			b++;
		}
		keep[lo] = keep[hi] = 1;
		a = b;
	}
	keep[0] = keep[m->tcount - 1] = 1;
	for (size_t i = 0; i < m->tcount; i++)
		kept += keep[i];
	m->kt = hs_malloc((kept ? kept : 1) * sizeof(double));
	m->kv = hs_reallocarray(NULL, kept ? kept : 1, m->bands * sizeof(int64_t));
	if (!m->kt || !m->kv) {
		hs_free(keep);
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	}
	keep_state ks = { keep, 0 };
	int rc = walk_instants(m, store_kept, &ks);
	m->kcount = ks.next;
	hs_free(keep);
	return rc;
}

/* ------------------------------------------------------------------ */
/* legend words                                                        */

static int same_argv(const hs_rec_process *a, const hs_rec_process *b)
{
	if (a->argc != b->argc)
		return 0;
	for (size_t i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i] ? a->argv[i] : "", b->argv[i] ? b->argv[i] : ""))
			return 0;
	return 1;
}

static void exit_words(char *buf, size_t size, const hs_rec_process *p)
{
	const hs_rec_exit *e = &p->exit;
	buf[0] = '\0';
	if (e->how == HS_REC_EXITED && e->code != 0) {
		snprintf(buf, size, "exit %d", e->code);
	} else if (e->how == HS_REC_SIGNALED) {
		if (e->flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)) {
			snprintf(buf, size, "OOM-killed");
		} else {
			const char *n = sigabbrev_np(e->signal);
			snprintf(buf, size, "SIG%s%s", n ? n : "?", (e->flags & HS_REC_EXIT_CORE) ?
			         ", core dumped" : "");
		}
	}
}

static void label_process(hs_plot__model *m, hs_plot__proc *ps)
{
	const hs_rec_process *p = ps->p;
	char cmd[128], ex[48], full[HS_PLOT_LABEL], peak[32], at[32];
	hs_plot__short_command(cmd, sizeof(cmd), p, 0);
	const hs_rec_process *parent = p->parent >= 0 ? hs_recording_process(m->r, (size_t)p->parent)
	                                              : NULL;
	int fork = parent && !p->execs && (p->flags & HS_REC_PROC_FROM_BIRTH) && same_argv(p, parent);
	exit_words(ex, sizeof(ex), p);
	snprintf(ps->label, sizeof(ps->label), "%s%s [%d]%s%s%s", cmd, fork ? " (fork)" : "",
	         p->pid, ex[0] ? " \xc2\xb7 " : "", ex, ps->fallback ? " \xc2\xb7 RSS" : "");
	ps->label_cut = strlen(cmd) < sizeof(ps->label) ? strlen(cmd) : 0;
	hs_plot__clean_text(full, sizeof(full), p->command && p->command[0] ? p->command : cmd);
	hs_render_size(peak, sizeof(peak), (uint64_t)(ps->peak > 0 ? ps->peak : 0));
	hs_plot__time_text(at, sizeof(at), ps->peak_t);
	snprintf(ps->tooltip, sizeof(ps->tooltip), "%s [pid %d]: peak %s %s at %s%s%s%s", full,
	         p->pid, m->metric_name, peak, at, ex[0] ? ", " : "", ex,
	         ps->fallback ? " (RSS: no PSS/USS sample)" : "");
}

/* ------------------------------------------------------------------ */
/* processes and types                                                 */

static int by_peak(const void *a, const void *b)
{
	const hs_plot__proc *x = *(const hs_plot__proc *const *)a;
	const hs_plot__proc *y = *(const hs_plot__proc *const *)b;
	if (x->peak != y->peak)
		return x->peak > y->peak ? -1 : 1;
	return x->p->index < y->p->index ? -1 : x->p->index > y->p->index;
}

static const uint32_t palette[] = {
	0x0072b2, /* blue (Okabe-Ito: distinguishable with the common colour-vision deficiencies) */
	0xd55e00, /* vermillion */
	0x009e73, /* bluish green */
	0xcc79a7, /* reddish purple */
	0xe69f00, /* orange */
	0x56b4e9, /* sky blue */
	0x000000, /* black */
	0x882255, /* wine (Paul Tol's muted) */
	0x117733, /* green */
	0x999933, /* olive */
};
#define PALETTE (sizeof(palette) / sizeof(palette[0]))
#define GROUP_GREY 0x9a9a9a

static int choose_processes(hs_plot__model *m, size_t top)
{
	hs_plot__proc **order = hs_calloc(m->np ? m->np : 1, sizeof(*order));
	if (!order)
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	size_t n = 0;
	for (size_t k = 0; k < m->np; k++) {
		m->procs[k].band = -1;
		if (m->procs[k].visible)
			order[n++] = &m->procs[k];
	}
	m->visible = n;
	qsort(order, n, sizeof(*order), by_peak);
	/* grouping one process alone saves nothing; areas have no dashes to tell two of one
	 * colour apart, so a stack has at most one band per colour */
	size_t own = n <= top + 1 ? n : top;
	if (m->stacked && own > PALETTE)
		own = PALETTE;
	for (size_t i = 0; i < n; i++)
		order[i]->band = i < own ? 0 : -2;
	hs_free(order);
	/* bands and colours in recording order (the root first, at the bottom of a stack) */
	size_t b = 0;
	for (size_t k = 0; k < m->np; k++) {
		hs_plot__proc *ps = &m->procs[k];
		if (ps->band == 0) {
			ps->band = (int)b;
			ps->colour = palette[b % PALETTE];
			ps->dash = b < PALETTE ? HS_PLOT_SOLID : HS_PLOT_DASHED;
			b++;
		}
		if (ps->fallback && ps->band != -1)
			m->fallback++;
	}
	m->drawn = b;
	m->others = n - own;
	for (size_t k = 0; k < m->np; k++) {
		hs_plot__proc *ps = &m->procs[k];
		if (ps->band == -2) {
			ps->band = (int)b;
			ps->colour = GROUP_GREY;
			ps->dash = HS_PLOT_SOLID;
		}
		if (ps->band >= 0)
			label_process(m, ps);
	}
	m->bands = b + (m->others ? 1 : 0);
	return 0;
}

int64_t hs_plot__type_bytes(const hs_rec_types *ts, const char *name)
{
	for (size_t i = 0; i < ts->count; i++)
		if (ts->rows[i].name && !strcmp(ts->rows[i].name, name))
			return ts->rows[i].bytes;
	return -1;
}

typedef struct type_peak {
	const char *name;
	int64_t bytes;
	double t;
} type_peak;

static int by_type_peak(const void *a, const void *b)
{
	const type_peak *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The process whose types are drawn: the one with the most bytes in typed
 * objects in the window; its top types by their peak in the window. */
static int choose_types(hs_plot__model *m, size_t want)
{
	if (want == SIZE_MAX)
		return 0;
	if (!want)
		want = DEFAULT_TYPES;
	if (want > HS_PLOT_MAX_TYPES)
		want = HS_PLOT_MAX_TYPES;
	int64_t best = -1;
	for (size_t k = 0; k < m->np; k++) {
		const hs_rec_process *p = m->procs[k].p;
		size_t n = hs_rec_process_types_count(p);
		for (size_t j = 0; j < n; j++) {
			const hs_rec_types *ts = hs_rec_process_types(p, j);
			if (ts->t >= m->from && ts->t <= m->to && ts->count && ts->bytes > best) {
				best = ts->bytes;
				m->types_proc = p;
			}
		}
	}
	if (!m->types_proc)
		return 0;
	const hs_rec_process *p = m->types_proc;
	size_t n = hs_rec_process_types_count(p), a = n, b = 0;
	for (size_t j = 0; j < n; j++) {
		double t = hs_rec_process_types(p, j)->t;
		if (t >= m->from && t <= m->to) {
			if (a == n)
				a = j;
			b = j + 1;
		}
	}
	m->types_j0 = a > 0 ? a - 1 : 0;
	m->types_j1 = b < n ? b + 1 : n;
	/* distinct names in the window, each with its peak */
	size_t cap = 0, count = 0;
	type_peak *tp = NULL;
	for (size_t j = a; j < b; j++) {
		const hs_rec_types *ts = hs_rec_process_types(p, j);
		for (size_t i = 0; i < ts->count; i++) {
			const hs_rec_type_row *row = &ts->rows[i];
			if (!row->name)
				continue;
			size_t x = 0;
			while (x < count && strcmp(tp[x].name, row->name))
				x++;
			if (x == count) {
				if (count == cap) {
					size_t nc = cap ? cap * 2 : 32;
					type_peak *g = hs_reallocarray(tp, nc, sizeof(*tp));
					if (!g) {
						hs_free(tp);
						return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
					}
					tp = g;
					cap = nc;
				}
				tp[count++] = (type_peak){ row->name, -1, 0 };
			}
			if (row->bytes > tp[x].bytes) {
				tp[x].bytes = row->bytes;
				tp[x].t = ts->t;
			}
		}
	}
	qsort(tp, count, sizeof(*tp), by_type_peak);
	m->ntypes = count < want ? count : want;
	m->types_max = 0;
	for (size_t i = 0; i < m->ntypes; i++) {
		m->types[i] = (hs_plot__type_line){ tp[i].name, tp[i].bytes, tp[i].t, palette[i % PALETTE] };
		if (tp[i].bytes > m->types_max)
			m->types_max = tp[i].bytes;
	}
	hs_free(tp);
	if (!m->ntypes)
		m->types_proc = NULL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the model                                                           */

static void model_release(hs_plot__model *m)
{
	hs_free(m->procs);
	hs_free(m->tt);
	hs_free(m->tv);
	hs_free(m->kt);
	hs_free(m->kv);
}

static int build_model(hs_plot__model *m, const hs_recording *r, const hs_plot_options *o)
{
	const hs_rec_info *info = hs_recording_info(r);
	const char *name = hs_recording_name(r);
	m->np = hs_recording_process_count(r);
	m->procs = hs_calloc(m->np ? m->np : 1, sizeof(hs_plot__proc));
	if (!m->procs)
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	/* the metric: PSS where the recording measured it */
	int any_pss = 0;
	for (size_t k = 0; k < m->np; k++) {
		const double *t;
		if (hs_rec_process_samples(hs_recording_process(r, k), HS_REC_SERIES_SMAPS, &t))
			any_pss = 1;
	}
	int want = o->metric;
	if (want < 0)
		want = any_pss ? HS_REC_PSS_EST : HS_REC_RSS;
	else if (want == HS_REC_PSS)
		want = HS_REC_PSS_EST;
	else if (want == HS_REC_USS)
		want = HS_REC_USS_EST;
	if (want != HS_REC_RSS && want != HS_REC_PSS_EST && want != HS_REC_USS_EST)
		return hs_error_set(HS_EINVAL, "cannot plot '%s': metric '%s' cannot be plotted; use "
		                    "rss, uss or pss", name, hs_rec_metric_name((hs_rec_metric)want));
	if (want != HS_REC_RSS && !any_pss)
		return hs_error_set(HS_EINVAL, "cannot plot %s of '%s': the recording has no PSS/USS "
		                    "sample (smaps_rollup was never read); use --metric rss", want ==
		                    HS_REC_PSS_EST ? "PSS" : "USS", name);
	m->metric = (hs_rec_metric)want;
	m->metric_name = want == HS_REC_RSS ? "RSS" : want == HS_REC_PSS_EST ? "PSS" : "USS";
	m->half = info->interval > 0 ? info->interval / 2 : 0.005;
	/* what the recording covers */
	m->rec_lo = 0;
	m->rec_hi = info->duration > 0 ? info->duration : 0;
	size_t samples = 0;
	for (size_t k = 0; k < m->np; k++) {
		hs_plot__proc *ps = &m->procs[k];
		ps->p = hs_recording_process(r, k);
		pick_series(ps, m->metric);
		if (ps->main.count) {
			samples += ps->main.count;
			if (ps->main.t[0] < m->rec_lo)
				m->rec_lo = ps->main.t[0];
			if (ps->main.t[ps->main.count - 1] > m->rec_hi)
				m->rec_hi = ps->main.t[ps->main.count - 1];
		}
	}
	if (!samples)
		return hs_error_set(HS_ENOTFOUND, "cannot plot '%s': the recording has no memory "
		                    "sample", name);
	/* the window */
	char a[32], b[32], lo[32], hi[32];
	double from = isnan(o->from) ? m->rec_lo : o->from;
	double to = isnan(o->to) ? m->rec_hi : o->to;
	hs_plot__time_text(a, sizeof(a), from);
	hs_plot__time_text(b, sizeof(b), to);
	hs_plot__time_text(lo, sizeof(lo), m->rec_lo);
	hs_plot__time_text(hi, sizeof(hi), m->rec_hi);
	if (!isnan(o->from) && !isnan(o->to) && !(from < to))
		return hs_error_set(HS_EINVAL, "cannot plot '%s': the window from %s to %s is empty; "
		                    "--from must come before --to", name, a, b);
	char win[80];
	if (!isnan(o->from) && !isnan(o->to))
		snprintf(win, sizeof(win), "from %s to %s", a, b);
	else if (!isnan(o->from))
		snprintf(win, sizeof(win), "from %s on", a);
	else
		snprintf(win, sizeof(win), "up to %s", b);
	if ((!isnan(o->from) && from >= m->rec_hi) || (!isnan(o->to) && to <= m->rec_lo))
		return hs_error_set(HS_ENOTFOUND, "cannot plot '%s': the window %s is empty; the "
		                    "recording covers %s to %s", name, win, lo, hi);
	m->from = from > m->rec_lo ? from : m->rec_lo;
	m->to = to < m->rec_hi ? to : m->rec_hi;
	if (!(m->from < m->to)) /* a recording of one instant */
		m->to = m->from + 1;
	for (size_t k = 0; k < m->np; k++)
		window_of(&m->procs[k], m->from, m->to);
	HS_TRY(choose_processes(m, o->top ? o->top : DEFAULT_TOP));
	if (!m->visible)
		return hs_error_set(HS_ENOTFOUND, "cannot plot '%s': no process has a memory sample%s%s",
		                    name, isnan(o->from) && isnan(o->to) ? "" : " in the window ",
		                    isnan(o->from) && isnan(o->to) ? "" : win);
	HS_TRY(build_total(m));
	/* the annotated peak: the tree's at one instant when stacked, else the highest line's */
	m->peak = -1;
	m->peak_proc = -1;
	if (m->stacked) {
		m->peak = m->tree_peak;
		m->peak_t = m->tree_peak_t;
	} else {
		for (size_t k = 0; k < m->np; k++) {
			const hs_plot__proc *ps = &m->procs[k];
			if (ps->band >= 0 && ps->peak > m->peak) {
				m->peak = ps->peak;
				m->peak_t = ps->peak_t;
				m->peak_proc = (ptrdiff_t)k;
			}
		}
	}
	HS_TRY(choose_types(m, o->types));
	for (size_t i = 0; i < hs_recording_marker_count(r); i++) {
		double t = hs_recording_marker(r, i)->t;
		m->markers += t >= m->from && t <= m->to;
	}
	for (size_t i = 0; i < hs_recording_snapshot_count(r); i++) {
		double t = hs_recording_snapshot(r, i)->t;
		m->snapshots += t >= m->from && t <= m->to;
	}
	/* the title */
	if (o->title) {
		hs_plot__clean_text(m->title, sizeof(m->title), o->title);
	} else {
		const hs_rec_process *root = hs_recording_root(r);
		char cmd[160];
		if (root)
			hs_plot__short_command(cmd, sizeof(cmd), root, 70);
		else
			hs_plot__clean_text(cmd, sizeof(cmd), name);
		snprintf(m->title, sizeof(m->title), "Memory of %s", cmd);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

typedef struct out_file {
	FILE *f;
	uint64_t bytes;
} out_file;

static cairo_status_t write_stream(void *closure, const unsigned char *data, unsigned int len)
{
	out_file *of = closure;
	if (fwrite(data, 1, len, of->f) != len)
		return CAIRO_STATUS_WRITE_ERROR;
	of->bytes += len;
	return CAIRO_STATUS_SUCCESS;
}

int hs_plot_render(const hs_recording *r, const char *path, const hs_plot_options *opts,
                   hs_plot_stats *stats)
{
	hs_plot_options defaults = HS_PLOT_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	HS_RETURN_IF(opts->version != HS_PLOT_OPTIONS_VERSION, HS_EINVAL,
	             "plot options version %u is not %u", opts->version, HS_PLOT_OPTIONS_VERSION);
	HS_RETURN_IF(!r || !path, HS_EINVAL, "cannot plot: no recording or no output path");
	hs_plot_format format = opts->format ? opts->format : hs_plot_format_of(path);
	HS_RETURN_IF(format != HS_PLOT_PNG && format != HS_PLOT_SVG && format != HS_PLOT_PDF,
	             HS_EINVAL, "cannot plot to '%s': unknown format; name a .png, .svg or .pdf file",
	             path);
	HS_RETURN_IF((opts->width && (opts->width < MIN_SIZE || opts->width > MAX_SIZE)) ||
	             (opts->height && (opts->height < MIN_SIZE || opts->height > MAX_SIZE)),
	             HS_EINVAL, "cannot plot to '%s': width and height must be from %d to %d pixels",
	             path, MIN_SIZE, MAX_SIZE);
	HS_RETURN_IF(format == HS_PLOT_PNG && (double)(opts->width ? opts->width : DEFAULT_WIDTH) *
	             (opts->height ? opts->height : DEFAULT_HEIGHT_TYPES) > MAX_PNG_PIXELS, HS_EINVAL,
	             "cannot plot to '%s': %ux%u is too large for a PNG (at most %d million pixels); "
	             "draw an svg or pdf", path, opts->width ? opts->width : DEFAULT_WIDTH,
	             opts->height ? opts->height : DEFAULT_HEIGHT_TYPES, MAX_PNG_PIXELS / 1000000);
	HS_RETURN_IF(!isnan(opts->from) && !(opts->from >= 0 && isfinite(opts->from)), HS_EINVAL,
	             "cannot plot: the window cannot start before the recording (--from %g)",
	             opts->from);
	HS_RETURN_IF(!isnan(opts->to) && !(opts->to >= 0 && isfinite(opts->to)), HS_EINVAL,
	             "cannot plot: the window cannot end before the recording (--to %g)", opts->to);

	hs_plot__model m;
	memset(&m, 0, sizeof(m));
	m.r = r;
	m.path = path;
	m.format = format;
	m.stacked = opts->stacked;
	hs_plot__canvas cv;
	memset(&cv, 0, sizeof(cv));
	hs_file_out file = HS_FILE_OUT_INIT;
	out_file of = { NULL, 0 };
	int rc = build_model(&m, r, opts);
	if (rc < 0)
		goto done;
	m.width = opts->width ? opts->width : DEFAULT_WIDTH;
	m.height = opts->height ? opts->height : m.types_proc ? DEFAULT_HEIGHT_TYPES : DEFAULT_HEIGHT;

	/* a temporary file next to the output (0600, O_EXCL|O_NOFOLLOW),
	 * renamed once complete (util/file.h) */
	if ((rc = hs_file_out_open(&file, path)) < 0)
		goto done;
	if (!(of.f = hs_file_out_stream(&file, "wb"))) {
		rc = HS_EIO;
		goto done;
	}
	if ((rc = hs_plot__canvas_open(&cv, format, m.width, m.height, write_stream, &of,
	                               m.title)) < 0)
		goto done;
	if ((rc = hs_plot__draw(&cv, &m)) < 0)
		goto done;
	if ((rc = hs_plot__canvas_finish(&cv, write_stream, &of)) < 0)
		goto done;
	if (format == HS_PLOT_SVG && write_stream(&of, cv.svg.data, (unsigned)cv.svg.len) !=
	    CAIRO_STATUS_SUCCESS) {
		rc = hs_error_set(HS_EIO, "cannot write '%s': %s", path, strerror(errno));
		goto done;
	}
	hs_plot__canvas_release(&cv);
	FILE *f = of.f;
	of.f = NULL;
	if ((rc = hs_file_out_commit_stream(&file, f, 0)) < 0)
		goto done;
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->format = format;
		stats->width = m.width;
		stats->height = m.height;
		stats->metric = m.metric;
		stats->stacked = m.stacked;
		stats->from = m.from;
		stats->to = m.to;
		stats->processes = m.visible;
		stats->drawn = m.drawn;
		stats->fallback = m.fallback;
		stats->markers = m.markers;
		stats->snapshots = m.snapshots;
		stats->types = m.types_proc ? m.ntypes : 0;
		stats->types_pid = m.types_proc ? m.types_proc->pid : 0;
		stats->peak = m.peak;
		stats->peak_t = m.peak_t;
		stats->peak_pid = m.peak_proc >= 0 ? m.procs[m.peak_proc].p->pid : 0;
		stats->bytes = of.bytes;
	}
done:
	hs_plot__canvas_release(&cv);
	if (of.f)
		fclose(of.f);
	hs_file_out_release(&file); /* removes the temporary file unless committed */
	model_release(&m);
	return rc;
}
