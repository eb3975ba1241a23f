/*
 * render/plot_draw.c: the plot's layout and drawing.
 *
 *   title, subtitle (metric, processes, span, start, tree peak, warnings)
 *   marker labels (rows above the panels, each over its vertical line)
 *   ┌ memory panel ─────────────────────────┐  legend: swatch, command [pid], peak
 *   │ lines or stacked areas, peak, ▲ snaps │
 *   └───────────────────────────────────────┘
 *   ┌ Python types panel (when recorded) ───┐  legend: type, peak
 *   └───────────────────────────────────────┘
 *   time axis
 *
 * Long series are thinned per pixel column to its first, lowest, highest
 * and last sample, so every spike still shows and the SVG stays small.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "heapsnap/render.h"
#include "render/plot_internal.h"
#include "util/alloc.h"

#define MARGIN 16.0
#define FONT 12.0          /* ticks, legend, subtitle, labels: readable in a bug report */
#define FONT_SMALL 11.0
#define FONT_TITLE 17.0
#define FONT_PANEL 13.0
#define ROW 18.0           /* a legend row */
#define STRIP_ROW 15.0     /* a row of marker labels */
#define MAX_STRIP_ROWS 3
#define SWATCH 22.0

#define INK 0x222222
#define MUTED 0x5a5a5a
#define GRID 0xe4e4e4
#define AXIS 0x6a6a6a
#define MARKER 0x6b6b6b
#define WARN 0xa64d00

typedef struct panel {
	double x, y, w, h;
	hs_plot__ticks yt;
} panel;

typedef struct layout {
	double plot_x, plot_w;
	double legend_x, legend_w, label_w, value_w;
	hs_plot__ticks xt;
	panel mem, types;
	int has_types;
	double strip_y;
	int strip_rows;
	double axis_title_y;
} layout;

static double px(const layout *L, const hs_plot__model *m, double t)
{
	return L->plot_x + (t - m->from) / (m->to - m->from) * L->plot_w;
}

static double py(const panel *p, double v)
{
	double top = p->yt.hi > 0 ? p->yt.hi : 1;
	return p->y + p->h - v / top * p->h;
}

/* Cut `buf` until it fits `max_w` pixels. */
static void fit(hs_plot__canvas *cv, char *buf, size_t size, double max_w, double font, int bold)
{
	size_t n = hs_plot__utf8_len(buf);
	while (n > 1 && hs_plot__text_width(cv, buf, font, bold) > max_w)
		hs_plot__utf8_cut(buf, size, --n);
}

/* Cut the head of `buf` (its first `cut` bytes) until head + tail fit
 * `max_w` pixels; the tail (pid, exit) stays whole. */
static void fit_head(hs_plot__canvas *cv, char *buf, size_t size, size_t cut, double max_w,
                     double font, int bold)
{
	if (!cut || cut >= strlen(buf) || hs_plot__text_width(cv, buf, font, bold) <= max_w) {
		fit(cv, buf, size, max_w, font, bold);
		return;
	}
	char head[HS_PLOT_LABEL * 2], tail[HS_PLOT_LABEL * 2];
	snprintf(tail, sizeof(tail), "%s", buf + cut);
	snprintf(head, sizeof(head), "%.*s", (int)cut, buf);
	double room = max_w - hs_plot__text_width(cv, tail, font, bold);
	if (room < 3 * font) {
		fit(cv, buf, size, max_w, font, bold);
		return;
	}
	fit(cv, head, sizeof(head), room, font, bold);
	size_t hl = strlen(head), tl = strlen(tail);
	if (hl + tl + 1 > size) {
		fit(cv, buf, size, max_w, font, bold);
		return;
	}
	memcpy(buf, head, hl);
	memcpy(buf + hl, tail, tl + 1);
}

static void size_text(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		hs_render_size(buf, size, (uint64_t)v);
}

static void attr_escaped(char *buf, size_t size, const char *name, const char *value)
{
	hs_buf b = HS_BUF_INIT;
	if (hs_plot__xml_escape(&b, value) < 0 || hs_buf_put(&b, "", 1) < 0) {
		hs_buf_release(&b);
		snprintf(buf, size, "%s=\"\"", name);
		return;
	}
	snprintf(buf, size, "%s=\"%s\"", name, (const char *)b.data);
	hs_buf_release(&b);
}

/* first index with t > x */
static size_t upper_bound_t(const double *t, size_t n, double x)
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

/* ------------------------------------------------------------------ */
/* polylines                                                           */

typedef int64_t (*sample_fn)(const void *ctx, size_t j, double *t);

static int64_t proc_sample(const void *ctx, size_t j, double *t)
{
	const hs_plot__proc *ps = ctx;
	*t = ps->main.t[j];
	return hs_plot__value(ps, j);
}

typedef struct type_ctx {
	const hs_rec_process *p;
	const char *name;
} type_ctx;

static int64_t type_sample(const void *ctx, size_t j, double *t)
{
	const type_ctx *tc = ctx;
	const hs_rec_types *ts = hs_rec_process_types(tc->p, j);
	*t = ts->t;
	return hs_plot__type_bytes(ts, tc->name);
}

typedef struct polyline {
	hs_plot__canvas *cv;
	const layout *L;
	const hs_plot__model *m;
	const panel *pn;
	sample_fn get;
	const void *ctx;
	int pen;
	size_t points;
} polyline;

static void emit(polyline *pl, size_t j)
{
	double t;
	int64_t v = pl->get(pl->ctx, j, &t);
	double x = px(pl->L, pl->m, t), y = py(pl->pn, (double)v);
	if (!pl->pen)
		hs_plot__move(pl->cv, x, y);
	else
		hs_plot__line(pl->cv, x, y);
	pl->pen = 1;
	pl->points++;
}

static void flush_bucket(polyline *pl, size_t *idx, size_t n)
{
	/* the bucket's samples in time order, each once */
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
			size_t x = idx[b];
			idx[b] = idx[b - 1];
			idx[b - 1] = x;
		}
	for (size_t a = 0; a < n; a++)
		if (!a || idx[a] != idx[a - 1])
			emit(pl, idx[a]);
}

/* Trace samples [j0, j1) as one path (broken where a value is missing). */
static size_t trace(polyline *pl, size_t j0, size_t j1)
{
	long long col = LLONG_MIN;
	size_t first = 0, lo = 0, hi = 0, last = 0;
	int64_t vlo = 0, vhi = 0;
	int open = 0;
	for (size_t j = j0; j < j1; j++) {
		double t;
		int64_t v = pl->get(pl->ctx, j, &t);
		if (v < 0) {
			if (open) {
				size_t idx[4] = { first, lo, hi, last };
				flush_bucket(pl, idx, 4);
			}
			open = 0;
			pl->pen = 0;
			continue;
		}
		long long c = (long long)floor(px(pl->L, pl->m, t));
		if (!open || c != col) {
			if (open) {
				size_t idx[4] = { first, lo, hi, last };
				flush_bucket(pl, idx, 4);
			}
			open = 1;
			col = c;
			first = lo = hi = last = j;
			vlo = vhi = v;
			continue;
		}
		if (v < vlo)
			vlo = v, lo = j;
		if (v > vhi)
			vhi = v, hi = j;
		last = j;
	}
	if (open) {
		size_t idx[4] = { first, lo, hi, last };
		flush_bucket(pl, idx, 4);
	}
	return pl->points;
}

/* ------------------------------------------------------------------ */
/* layout                                                              */

static double legend_value_width(hs_plot__canvas *cv, int64_t v)
{
	char s[32];
	size_text(s, sizeof(s), v);
	return hs_plot__text_width(cv, s, FONT, 0);
}

static void more_label(char *buf, size_t size, size_t n)
{
	snprintf(buf, size, "%zu more process%s", n, n == 1 ? "" : "es");
}

static int64_t others_peak(const hs_plot__model *m)
{
	int64_t best = -1;
	for (size_t k = 0; k < m->np; k++)
		if (m->procs[k].band == (int)m->drawn && m->procs[k].peak > best)
			best = m->procs[k].peak;
	return best;
}

static void snapshot_label(const hs_plot__model *m, char *buf, size_t size)
{
	const hs_rec_snapshot *one = NULL;
	for (size_t i = 0; i < hs_recording_snapshot_count(m->r); i++) {
		const hs_rec_snapshot *s = hs_recording_snapshot(m->r, i);
		if (s->t >= m->from && s->t <= m->to)
			one = s;
	}
	if (m->snapshots == 1 && one) {
		char f[160];
		hs_plot__clean_text(f, sizeof(f), one->file ? one->file : "");
		snprintf(buf, size, "snapshot %s", one->error ? "failed" : f);
	} else {
		snprintf(buf, size, "%zu snapshots", m->snapshots);
	}
}

static void horizontal_layout(hs_plot__canvas *cv, const hs_plot__model *m, layout *L)
{
	double W = m->width;
	/* the widest label a byte axis can have */
	double gutter = 18 + hs_plot__text_width(cv, "1023.5 MiB", FONT, 0) + 8;
	double label_w = 0, value_w = hs_plot__text_width(cv, "peak", FONT_SMALL, 0);
	for (size_t k = 0; k < m->np; k++) {
		const hs_plot__proc *ps = &m->procs[k];
		if (ps->band < 0 || ps->band >= (int)m->drawn)
			continue;
		double w = hs_plot__text_width(cv, ps->label, FONT, 0);
		label_w = w > label_w ? w : label_w;
		w = legend_value_width(cv, ps->peak);
		value_w = w > value_w ? w : value_w;
	}
	char buf[HS_PLOT_LABEL];
	if (m->others) {
		more_label(buf, sizeof(buf), m->others);
		double w = hs_plot__text_width(cv, buf, FONT, 0);
		label_w = w > label_w ? w : label_w;
		w = legend_value_width(cv, others_peak(m));
		value_w = w > value_w ? w : value_w;
	}
	if (m->snapshots) {
		snapshot_label(m, buf, sizeof(buf));
		double w = hs_plot__text_width(cv, buf, FONT, 0);
		label_w = w > label_w ? w : label_w;
	}
	for (size_t i = 0; m->types_proc && i < m->ntypes; i++) {
		char name[HS_PLOT_LABEL];
		hs_plot__clean_text(name, sizeof(name), m->types[i].name);
		double w = hs_plot__text_width(cv, name, FONT, 0);
		label_w = w > label_w ? w : label_w;
		w = legend_value_width(cv, m->types[i].peak);
		value_w = w > value_w ? w : value_w;
	}
	/* the legend takes what its labels need, up to about a third of the width */
	double fixed = SWATCH + 6 + 14 + value_w;
	double max_label = W * 0.3 - fixed;
	if (max_label < 60)
		max_label = 60;
	if (label_w > max_label)
		label_w = max_label;
	L->label_w = label_w;
	L->value_w = value_w;
	L->legend_w = fixed + label_w;
	L->legend_x = W - MARGIN - L->legend_w;
	L->plot_x = MARGIN + gutter;
	L->plot_w = L->legend_x - 24 - L->plot_x;
	if (L->plot_w < 60)
		L->plot_w = 60;
	hs_plot__time_ticks(&L->xt, m->from, m->to, (int)(L->plot_w / 110));
}

/* marker label rows: greedy, each label in the first row where it fits */
typedef struct marker_place {
	size_t index;
	double x;      /* the line */
	double lx;     /* the label's left edge */
	int row;       /* -1: no room (the tooltip still names it) */
	char text[HS_PLOT_LABEL];
} marker_place;

typedef struct marker_order {
	double t;
	size_t index;
} marker_order;

static int by_time(const void *a, const void *b)
{
	const marker_order *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The markers of the window in time order (the file's order is the order
 * they were received), each label in the first row where it fits; *out
 * (hs_free) has m->markers entries. */
static int place_markers(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L,
                         marker_place **out, size_t *count, int *rows)
{
	double row_end[MAX_STRIP_ROWS];
	for (int r = 0; r < MAX_STRIP_ROWS; r++)
		row_end[r] = -INFINITY;
	*rows = 0;
	*count = 0;
	*out = NULL;
	if (!m->markers)
		return 0;
	size_t all = hs_recording_marker_count(m->r), n = 0;
	marker_order *order = hs_calloc(m->markers, sizeof(*order));
	marker_place *mp = hs_calloc(m->markers, sizeof(*mp));
	if (!order || !mp) {
		hs_free(order);
		hs_free(mp);
		return hs_error_set(HS_ENOMEM, "cannot plot: out of memory");
	}
	for (size_t i = 0; i < all && n < m->markers; i++) {
		const hs_rec_marker *mk = hs_recording_marker(m->r, i);
		if (mk->t >= m->from && mk->t <= m->to)
			order[n++] = (marker_order){ mk->t, i };
	}
	qsort(order, n, sizeof(*order), by_time);
	for (size_t k = 0; k < n; k++) {
		const hs_rec_marker *mk = hs_recording_marker(m->r, order[k].index);
		marker_place *p = &mp[k];
		p->index = order[k].index;
		p->x = px(L, m, mk->t);
		hs_plot__clean_text(p->text, sizeof(p->text), mk->label ? mk->label : "");
		hs_plot__utf8_cut(p->text, sizeof(p->text), 40);
		double w = hs_plot__text_width(cv, p->text, FONT, 0);
		p->lx = p->x + 3;
		if (p->lx + w > m->width - MARGIN)
			p->lx = p->x - 3 - w;
		p->row = -1;
		for (int r = 0; r < MAX_STRIP_ROWS; r++)
			if (p->lx >= row_end[r] + 8) {
				p->row = r;
				row_end[r] = p->lx + w;
				if (r + 1 > *rows)
					*rows = r + 1;
				break;
			}
	}
	hs_free(order);
	*out = mp;
	*count = n;
	return 0;
}

static void vertical_layout(const hs_plot__model *m, layout *L, double top)
{
	double H = m->height;
	double bottom = H - MARGIN - 34; /* tick labels and the axis title under the last panel */
	L->strip_y = top;
	top += L->strip_rows * STRIP_ROW + (L->strip_rows ? 4 : 0);
	double avail = bottom - top;
	L->has_types = m->types_proc != NULL;
	L->mem.x = L->types.x = L->plot_x;
	L->mem.w = L->types.w = L->plot_w;
	L->mem.y = top;
	if (L->has_types) {
		double gap = 22 + 24; /* the memory panel's tick labels, the types panel's title */
		L->mem.h = (avail - gap) * 0.6;
		L->types.y = L->mem.y + L->mem.h + gap;
		L->types.h = bottom - L->types.y;
	} else {
		L->mem.h = avail;
	}
	if (L->mem.h < 40)
		L->mem.h = 40;
	if (L->types.h < 30)
		L->types.h = 30;
	double mem_hi = (double)(m->stacked ? m->tree_peak : m->peak);
	hs_plot__size_ticks(&L->mem.yt, mem_hi * 1.12, (int)(L->mem.h / 55));
	if (L->has_types)
		hs_plot__size_ticks(&L->types.yt, (double)m->types_max * 1.08, (int)(L->types.h / 45));
	L->axis_title_y = H - MARGIN - 2;
}

/* ------------------------------------------------------------------ */
/* pieces                                                              */

static void draw_axes(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L,
                      const panel *pn, const char *id, const char *ytitle, int last)
{
	char gid[64], label[64];
	/* grid */
	snprintf(gid, sizeof(gid), "%s-grid", id);
	hs_plot__group(cv, "grid", gid, NULL);
	for (size_t i = 0; i < pn->yt.count; i++) {
		double y = py(pn, pn->yt.v[i]);
		hs_plot__move(cv, pn->x, y);
		hs_plot__line(cv, pn->x + pn->w, y);
	}
	for (size_t i = 0; i < L->xt.count; i++) {
		double x = px(L, m, L->xt.v[i]);
		hs_plot__move(cv, x, pn->y);
		hs_plot__line(cv, x, pn->y + pn->h);
	}
	hs_plot__stroke(cv, GRID, 1, 1, HS_PLOT_SOLID, "gridline", NULL, NULL);
	hs_plot__group_end(cv);
	/* y */
	snprintf(gid, sizeof(gid), "%s-y", id);
	hs_plot__group(cv, "axis y", gid, NULL);
	hs_plot__move(cv, pn->x, pn->y);
	hs_plot__line(cv, pn->x, pn->y + pn->h);
	hs_plot__stroke(cv, AXIS, 1, 1, HS_PLOT_SOLID, "axis-line", NULL, NULL);
	for (size_t i = 0; i < pn->yt.count; i++) {
		hs_plot__tick_label(label, sizeof(label), &pn->yt, pn->yt.v[i]);
		hs_plot__text(cv, pn->x - 6, py(pn, pn->yt.v[i]) + 4, label, FONT, 0, HS_PLOT_RIGHT,
		              MUTED, 0, "tick");
	}
	hs_plot__text(cv, MARGIN + 10, pn->y + pn->h / 2, ytitle, FONT, 1, HS_PLOT_CENTER, INK, 1,
	              "axis-title");
	hs_plot__group_end(cv);
	/* x */
	snprintf(gid, sizeof(gid), "%s-x", id);
	hs_plot__group(cv, "axis x", gid, NULL);
	hs_plot__move(cv, pn->x, pn->y + pn->h);
	hs_plot__line(cv, pn->x + pn->w, pn->y + pn->h);
	hs_plot__stroke(cv, AXIS, 1, 1, HS_PLOT_SOLID, "axis-line", NULL, NULL);
	for (size_t i = 0; i < L->xt.count; i++) {
		double x = px(L, m, L->xt.v[i]);
		hs_plot__move(cv, x, pn->y + pn->h);
		hs_plot__line(cv, x, pn->y + pn->h + 4);
	}
	hs_plot__stroke(cv, AXIS, 1, 1, HS_PLOT_SOLID, "tick-mark", NULL, NULL);
	for (size_t i = 0; i < L->xt.count; i++) {
		hs_plot__tick_label(label, sizeof(label), &L->xt, L->xt.v[i]);
		double x = px(L, m, L->xt.v[i]);
		double w = hs_plot__text_width(cv, label, FONT, 0);
		if (x + w / 2 > m->width - 4)
			x = m->width - 4 - w / 2;
		hs_plot__text(cv, x, pn->y + pn->h + 17, label, FONT, 0, HS_PLOT_CENTER, MUTED, 0, "tick");
	}
	if (last)
		hs_plot__text(cv, pn->x + pn->w / 2, L->axis_title_y, "time since the start of the "
		              "recording", FONT, 0, HS_PLOT_CENTER, MUTED, 0, "axis-title");
	hs_plot__group_end(cv);
}

static void legend_row(hs_plot__canvas *cv, const layout *L, double y, const char *label,
                       size_t cut, const char *value, const char *tooltip,
                       void (*swatch)(hs_plot__canvas *, double, double, const void *),
                       const void *swatch_ctx, const char *cls)
{
	hs_plot__group(cv, cls, NULL, tooltip);
	swatch(cv, L->legend_x, y - 4, swatch_ctx);
	char text[HS_PLOT_LABEL];
	snprintf(text, sizeof(text), "%s", label);
	fit_head(cv, text, sizeof(text), cut, L->label_w, FONT, 0);
	hs_plot__text(cv, L->legend_x + SWATCH + 6, y, text, FONT, 0, HS_PLOT_LEFT, INK, 0,
	              "legend-label");
	if (value)
		hs_plot__text(cv, L->legend_x + L->legend_w, y, value, FONT, 0, HS_PLOT_RIGHT, MUTED, 0,
		              "legend-value");
	hs_plot__group_end(cv);
}

typedef struct swatch_style {
	uint32_t colour;
	hs_plot__dash dash;
	int area;
	const char *attrs;
} swatch_style;

static void line_swatch(hs_plot__canvas *cv, double x, double y, const void *ctx)
{
	const swatch_style *s = ctx;
	if (s->area) {
		hs_plot__rect(cv, x + 2, y - 6, SWATCH - 4, 12);
		hs_plot__fill(cv, s->colour, 0.8, "swatch", s->attrs, NULL);
		return;
	}
	hs_plot__move(cv, x, y);
	hs_plot__line(cv, x + SWATCH, y);
	hs_plot__stroke(cv, s->colour, 1, s->colour == 0x9a9a9a ? 1.5 : 2.5, s->dash, "swatch",
	                s->attrs, NULL);
}

static void triangle(hs_plot__canvas *cv, double x, double base)
{
	hs_plot__move(cv, x - 5, base);
	hs_plot__line(cv, x + 5, base);
	hs_plot__line(cv, x, base - 9);
	hs_plot__close(cv);
}

static void triangle_swatch(hs_plot__canvas *cv, double x, double y, const void *ctx)
{
	(void)ctx;
	triangle(cv, x + SWATCH / 2, y + 5);
	hs_plot__fill(cv, 0x333333, 1, "swatch", NULL, NULL);
}

static void draw_memory_legend(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	hs_plot__group(cv, "legend", "memory-legend", NULL);
	double y = L->mem.y + 10;
	char header[64];
	snprintf(header, sizeof(header), "%s", m->stacked ? "processes (top of the stack first)"
	                                                  : "processes");
	fit(cv, header, sizeof(header), L->label_w - 8, FONT_SMALL, 0);
	hs_plot__text(cv, L->legend_x + SWATCH + 6, y, header, FONT_SMALL, 0, HS_PLOT_LEFT, MUTED, 0,
	              "legend-header");
	hs_plot__text(cv, L->legend_x + L->legend_w, y, "peak", FONT_SMALL, 0, HS_PLOT_RIGHT, MUTED,
	              0, "legend-header");
	y += ROW;
	size_t max_rows = (size_t)((L->mem.h + (L->has_types ? 30 : 0)) / ROW);
	if (max_rows < 2)
		max_rows = 2;
	size_t rows = 0, total = m->drawn + (m->others ? 1 : 0) + (m->snapshots ? 1 : 0);
	char value[32], attrs[64], label[HS_PLOT_LABEL];
	/* stacked: the legend reads like the stack, top first */
	for (size_t i = 0; i < m->drawn + (m->others ? 1 : 0); i++) {
		size_t b = m->stacked ? m->bands - 1 - i : (i < m->drawn ? i : m->drawn);
		if (rows + 1 == max_rows && rows + 1 < total) {
			snprintf(label, sizeof(label), "\xe2\x80\xa6 %zu more entries", total - rows);
			hs_plot__text(cv, L->legend_x + SWATCH + 6, y, label, FONT, 0, HS_PLOT_LEFT, MUTED, 0,
			              "legend-label");
			hs_plot__group_end(cv);
			return;
		}
		if (b == m->drawn) {
			more_label(label, sizeof(label), m->others);
			size_text(value, sizeof(value), others_peak(m));
			swatch_style st = { 0x9a9a9a, HS_PLOT_SOLID, m->stacked, "data-pid=\"more\"" };
			legend_row(cv, L, y, label, 0, value, "the processes with smaller peaks, as one "
			           "series", line_swatch, &st, "legend-entry");
		} else {
			for (size_t k = 0; k < m->np; k++) {
				const hs_plot__proc *ps = &m->procs[k];
				if (ps->band != (int)b)
					continue;
				size_text(value, sizeof(value), ps->peak);
				snprintf(attrs, sizeof(attrs), "data-pid=\"%d\"", ps->p->pid);
				swatch_style st = { ps->colour, ps->dash, m->stacked, attrs };
				legend_row(cv, L, y, ps->label, ps->label_cut, value, ps->tooltip, line_swatch, &st,
				           "legend-entry");
			}
		}
		y += ROW;
		rows++;
	}
	if (m->snapshots) {
		snapshot_label(m, label, sizeof(label));
		legend_row(cv, L, y, label, 0, NULL, "snapshots taken during the recording (heapsnap "
		           "timeline lists them)", triangle_swatch, NULL, "legend-entry snapshots");
	}
	hs_plot__group_end(cv);
}

static void draw_lines(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	char attrs[64];
	/* the grouped processes first, under the others */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < m->np; k++) {
			const hs_plot__proc *ps = &m->procs[k];
			int grouped = ps->band == (int)m->drawn;
			if (ps->band < 0 || grouped != (pass == 0))
				continue;
			polyline pl = { cv, L, m, &L->mem, proc_sample, ps, 0, 0 };
			trace(&pl, ps->i0, ps->i1);
			snprintf(attrs, sizeof(attrs), "data-pid=\"%d\"", ps->p->pid);
			hs_plot__stroke(cv, ps->colour, grouped ? 0.8 : 1, grouped ? 1.2 : 2, ps->dash,
			                grouped ? "series more" : "series", attrs, ps->tooltip);
		}
	}
}

static void draw_stacked(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	char attrs[64];
	for (size_t b = 0; b < m->bands; b++) {
		const hs_plot__proc *ps = NULL;
		for (size_t k = 0; k < m->np && !ps; k++)
			if (m->procs[k].band == (int)b)
				ps = &m->procs[k];
		if (!ps || !m->kcount)
			continue;
		int grouped = b == m->drawn;
		/* the band: its top left to right, then its bottom back */
		for (size_t i = 0; i < m->kcount; i++) {
			int64_t cum = 0;
			for (size_t c = 0; c <= b; c++)
				cum += m->kv[i * m->bands + c];
			double x = px(L, m, m->kt[i]), y = py(&L->mem, (double)cum);
			if (!i)
				hs_plot__move(cv, x, y);
			else
				hs_plot__line(cv, x, y);
		}
		for (size_t i = m->kcount; i-- > 0;) {
			int64_t cum = 0;
			for (size_t c = 0; c < b; c++)
				cum += m->kv[i * m->bands + c];
			hs_plot__line(cv, px(L, m, m->kt[i]), py(&L->mem, (double)cum));
		}
		hs_plot__close(cv);
		if (grouped)
			snprintf(attrs, sizeof(attrs), "data-pid=\"more\"");
		else
			snprintf(attrs, sizeof(attrs), "data-pid=\"%d\"", ps->p->pid);
		hs_plot__fill(cv, ps->colour, 0.8, grouped ? "band more" : "band", attrs,
		              grouped ? "the processes with smaller peaks" : ps->tooltip);
		/* its top edge, crisp */
		for (size_t i = 0; i < m->kcount; i++) {
			int64_t cum = 0;
			for (size_t c = 0; c <= b; c++)
				cum += m->kv[i * m->bands + c];
			double x = px(L, m, m->kt[i]), y = py(&L->mem, (double)cum);
			if (!i)
				hs_plot__move(cv, x, y);
			else
				hs_plot__line(cv, x, y);
		}
		hs_plot__stroke(cv, ps->colour, 1, 1.2, HS_PLOT_SOLID, "band-edge", NULL, NULL);
	}
}

/* short-lived or sparsely sampled processes: a dot at their peak; killed
 * ones: a cross where they ended */
static void draw_process_marks(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	char attrs[64], tip[HS_PLOT_LABEL * 2 + 64];
	for (size_t k = 0; k < m->np; k++) {
		const hs_plot__proc *ps = &m->procs[k];
		if (ps->band < 0 || ps->band == (int)m->drawn || ps->peak < 0)
			continue;
		snprintf(attrs, sizeof(attrs), "data-pid=\"%d\"", ps->p->pid);
		double span = 0;
		if (ps->inside >= 2) {
			size_t a = ps->i0 + (ps->main.t[ps->i0] < m->from ? 1 : 0);
			span = px(L, m, ps->main.t[a + ps->inside - 1]) - px(L, m, ps->main.t[a]);
		}
		if (!m->stacked && (ps->inside <= 2 || span < 4)) {
			hs_plot__circle(cv, px(L, m, ps->peak_t), py(&L->mem, (double)ps->peak), 3.5);
			hs_plot__fill(cv, ps->colour, 1, "process-peak", attrs, ps->tooltip);
		}
		const hs_rec_exit *e = &ps->p->exit;
		if (e->how != HS_REC_SIGNALED || ps->p->end < m->from || ps->p->end > m->to)
			continue;
		/* where its line ends, or on the time axis under a stack */
		double x = px(L, m, ps->p->end), y = L->mem.y + L->mem.h - 7;
		if (!m->stacked && ps->main.count) {
			size_t j = upper_bound_t(ps->main.t, ps->main.count, ps->p->end);
			if (j > 0 && hs_plot__value(ps, j - 1) >= 0) {
				x = px(L, m, ps->main.t[j - 1]);
				y = py(&L->mem, (double)hs_plot__value(ps, j - 1));
			}
		}
		hs_plot__move(cv, x - 4, y - 4);
		hs_plot__line(cv, x + 4, y + 4);
		hs_plot__move(cv, x - 4, y + 4);
		hs_plot__line(cv, x + 4, y - 4);
		char ex[64], at[32];
		const char *sig = sigabbrev_np(e->signal);
		hs_plot__time_text(at, sizeof(at), ps->p->end);
		snprintf(ex, sizeof(ex), "SIG%s%s", sig ? sig : "?",
		         (e->flags & (HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL)) ?
		         " by the OOM killer" : "");
		snprintf(tip, sizeof(tip), "[%d] killed (%s) at %s", ps->p->pid, ex, at);
		hs_plot__stroke(cv, ps->colour == 0x000000 ? 0xd55e00 : ps->colour, 1, 2.2, HS_PLOT_SOLID,
		                "killed", attrs, tip);
	}
}

static void draw_markers(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L,
                         const marker_place *mp, size_t n)
{
	if (!n)
		return;
	hs_plot__group(cv, "markers", NULL, NULL);
	char tip[HS_PLOT_LABEL * 2], at[32], cmd[128];
	for (size_t i = 0; i < n; i++) {
		const hs_rec_marker *mk = hs_recording_marker(m->r, mp[i].index);
		const hs_rec_process *p = hs_recording_process(m->r, mk->process);
		char label[128];
		hs_plot__clean_text(label, sizeof(label), mk->label ? mk->label : "");
		hs_plot__time_text(at, sizeof(at), mk->t);
		if (p)
			hs_plot__short_command(cmd, sizeof(cmd), p, 60);
		if (p)
			snprintf(tip, sizeof(tip), "marker \"%s\" at %s from %s [%d]", label, at, cmd, p->pid);
		else
			snprintf(tip, sizeof(tip), "marker \"%s\" at %s", label, at);
		hs_plot__group(cv, "marker", NULL, tip);
		double x = mp[i].x;
		double top = mp[i].row >= 0 ? L->strip_y + mp[i].row * STRIP_ROW + 2 : L->mem.y;
		hs_plot__move(cv, x, top);
		hs_plot__line(cv, x, L->mem.y + L->mem.h);
		if (L->has_types) {
			hs_plot__move(cv, x, L->types.y);
			hs_plot__line(cv, x, L->types.y + L->types.h);
		}
		hs_plot__stroke(cv, MARKER, 1, 1.2, HS_PLOT_DASHED, "marker-line", NULL, NULL);
		if (mp[i].row >= 0)
			hs_plot__text(cv, mp[i].lx, L->strip_y + mp[i].row * STRIP_ROW + 12, mp[i].text, FONT,
			              0, HS_PLOT_LEFT, INK, 0, "marker-label");
		hs_plot__group_end(cv);
	}
	hs_plot__group_end(cv);
}

static void draw_snapshots(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	if (!m->snapshots)
		return;
	hs_plot__group(cv, "snapshots", NULL, NULL);
	double base = L->mem.y + L->mem.h;
	for (size_t i = 0; i < hs_recording_snapshot_count(m->r); i++) {
		const hs_rec_snapshot *s = hs_recording_snapshot(m->r, i);
		if (s->t < m->from || s->t > m->to)
			continue;
		const hs_rec_process *p = hs_recording_process(m->r, s->process);
		char tip[HS_PLOT_LABEL * 2], at[32], file[HS_PLOT_LABEL], size[32], objs[32];
		hs_plot__time_text(at, sizeof(at), s->t);
		hs_plot__clean_text(file, sizeof(file), s->error ? s->error : s->file ? s->file : "");
		if (s->error) {
			snprintf(tip, sizeof(tip), "snapshot of [%d] at %s failed: %s", p ? p->pid : 0, at,
			         file);
		} else {
			size_text(size, sizeof(size), s->bytes);
			if (s->objects >= 0)
				hs_render_count(objs, sizeof(objs), (uint64_t)s->objects);
			else
				snprintf(objs, sizeof(objs), "?");
			snprintf(tip, sizeof(tip), "snapshot %s of [%d] at %s (%s; %s objects, %s)", file,
			         p ? p->pid : 0, at, s->trigger == HS_REC_SNAP_GROWTH ? "growth" :
			         s->trigger == HS_REC_SNAP_END ? "end" : "schedule", objs, size);
		}
		triangle(cv, px(L, m, s->t), base);
		if (s->error)
			hs_plot__stroke(cv, 0x333333, 1, 1.2, HS_PLOT_SOLID, "snapshot failed", NULL, tip);
		else
			hs_plot__fill(cv, 0x333333, 1, "snapshot", NULL, tip);
	}
	hs_plot__group_end(cv);
}

static void draw_peak(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	if (m->peak < 0)
		return;
	char size[32], at[32], text[HS_PLOT_LABEL];
	size_text(size, sizeof(size), m->peak);
	hs_plot__time_text(at, sizeof(at), m->peak_t);
	if (m->peak_proc >= 0)
		snprintf(text, sizeof(text), "peak %s at %s [%d]", size, at,
		         m->procs[m->peak_proc].p->pid);
	else
		snprintf(text, sizeof(text), "tree peak %s at %s", size, at);
	hs_plot__group(cv, "peak", NULL, NULL);
	double x = px(L, m, m->peak_t), y = py(&L->mem, (double)m->peak);
	double w = hs_plot__text_width(cv, text, FONT, 1);
	double lx = x - w / 2;
	if (lx + w > L->plot_x + L->plot_w - 4)
		lx = L->plot_x + L->plot_w - 4 - w;
	if (lx < L->plot_x + 4)
		lx = L->plot_x + 4;
	double ly = y - 11;
	if (ly - 12 < L->mem.y)
		ly = y + 22;
	hs_plot__rect(cv, lx - 3, ly - 12, w + 6, 16);
	hs_plot__fill(cv, 0xffffff, 0.85, "peak-box", NULL, NULL);
	hs_plot__circle(cv, x, y, 4.5);
	hs_plot__fill(cv, 0xffffff, 1, "peak-dot-fill", NULL, NULL);
	hs_plot__circle(cv, x, y, 4.5);
	hs_plot__stroke(cv, INK, 1, 1.8, HS_PLOT_SOLID, "peak-dot", NULL, NULL);
	hs_plot__text(cv, lx, ly, text, FONT, 1, HS_PLOT_LEFT, INK, 0, "peak-label");
	hs_plot__group_end(cv);
}

static void draw_types(hs_plot__canvas *cv, const hs_plot__model *m, const layout *L)
{
	const panel *pn = &L->types;
	char title[HS_PLOT_LABEL * 2], cmd[HS_PLOT_LABEL], attrs[HS_PLOT_LABEL + 32];
	hs_plot__group(cv, "panel", "types", NULL);
	hs_plot__short_command(cmd, sizeof(cmd), m->types_proc, 60);
	int head = snprintf(title, sizeof(title), "Python objects by type, top %zu by bytes: ",
	                    m->ntypes);
	snprintf(title + head, sizeof(title) - (size_t)head, "%s [%d]", cmd, m->types_proc->pid);
	/* cut the command, keep the pid */
	char *open = strrchr(title, '[');
	size_t keep = open ? (size_t)(open - title) : 0;
	if (keep && keep > 1 && title[keep - 1] == ' ')
		keep--;
	fit_head(cv, title, sizeof(title), keep, L->plot_w, FONT_PANEL, 1);
	hs_plot__text(cv, pn->x, pn->y - 8, title, FONT_PANEL, 1, HS_PLOT_LEFT, INK, 0, "panel-title");
	draw_axes(cv, m, L, pn, "types", "bytes", 1);
	hs_plot__clip(cv, "clip-types", pn->x, pn->y - 6, pn->w, pn->h + 6);
	hs_plot__group(cv, "series", "types-series", NULL);
	size_t samples = 0;
	for (size_t j = m->types_j0; j < m->types_j1; j++) {
		double t = hs_rec_process_types(m->types_proc, j)->t;
		samples += t >= m->from && t <= m->to;
	}
	for (size_t i = 0; i < m->ntypes; i++) {
		const hs_plot__type_line *tl = &m->types[i];
		char name[HS_PLOT_LABEL], peak[32], at[32], tip[HS_PLOT_LABEL * 2];
		hs_plot__clean_text(name, sizeof(name), tl->name);
		size_text(peak, sizeof(peak), tl->peak);
		hs_plot__time_text(at, sizeof(at), tl->peak_t);
		snprintf(tip, sizeof(tip), "%s: peak %s at %s", name, peak, at);
		attr_escaped(attrs, sizeof(attrs), "data-type", name);
		type_ctx tc = { m->types_proc, tl->name };
		polyline pl = { cv, L, m, pn, type_sample, &tc, 0, 0 };
		trace(&pl, m->types_j0, m->types_j1);
		hs_plot__stroke(cv, tl->colour, 1, 2, HS_PLOT_SOLID, "series type", attrs, tip);
		/* few samples (the agent answers every --heap-every): show each */
		if (samples <= 60) {
			for (size_t j = m->types_j0; j < m->types_j1; j++) {
				double t;
				int64_t v = type_sample(&tc, j, &t);
				if (v >= 0 && t >= m->from && t <= m->to)
					hs_plot__circle(cv, px(L, m, t), py(pn, (double)v), 2.6);
			}
			hs_plot__fill(cv, tl->colour, 1, "sample", attrs, NULL);
		}
	}
	hs_plot__group_end(cv);
	hs_plot__clip_end(cv);
	/* legend */
	hs_plot__group(cv, "legend", "types-legend", NULL);
	double y = pn->y + 10;
	hs_plot__text(cv, L->legend_x + SWATCH + 6, y, "types", FONT_SMALL, 0, HS_PLOT_LEFT, MUTED, 0,
	              "legend-header");
	hs_plot__text(cv, L->legend_x + L->legend_w, y, "peak", FONT_SMALL, 0, HS_PLOT_RIGHT, MUTED,
	              0, "legend-header");
	y += ROW;
	for (size_t i = 0; i < m->ntypes && y < pn->y + pn->h + 20; i++) {
		char name[HS_PLOT_LABEL], peak[32];
		hs_plot__clean_text(name, sizeof(name), m->types[i].name);
		size_text(peak, sizeof(peak), m->types[i].peak);
		attr_escaped(attrs, sizeof(attrs), "data-type", name);
		swatch_style st = { m->types[i].colour, HS_PLOT_SOLID, 0, attrs };
		legend_row(cv, L, y, name, 0, peak, name, line_swatch, &st, "legend-entry");
		y += ROW;
	}
	hs_plot__group_end(cv);
	hs_plot__group_end(cv);
}

static void draw_title(hs_plot__canvas *cv, const hs_plot__model *m)
{
	const hs_rec_info *info = hs_recording_info(m->r);
	double W = m->width;
	char title[HS_PLOT_LABEL], sub[1024], part[256];
	hs_plot__group(cv, "heading", "heading", NULL);
	snprintf(title, sizeof(title), "%s", m->title);
	fit(cv, title, sizeof(title), W - 2 * MARGIN, FONT_TITLE, 1);
	hs_plot__text(cv, MARGIN, MARGIN + 15, title, FONT_TITLE, 1, HS_PLOT_LEFT, INK, 0, "title");
	/* what is drawn, in one line */
	size_t n = 0;
	if (m->metric == HS_REC_PSS_EST)
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, "PSS (estimated between smaps_rollup "
		                      "samples)");
	else if (m->metric == HS_REC_USS_EST)
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, "USS (estimated between smaps_rollup "
		                      "samples)");
	else
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, "RSS");
	n += (size_t)snprintf(sub + n, sizeof(sub) - n, "%s \xc2\xb7 %zu process%s",
	                      m->stacked ? ", stacked" : "", m->visible, m->visible == 1 ? "" : "es");
	char a[32], b[32], span[32];
	if (m->from > m->rec_lo || m->to < m->rec_hi) {
		hs_plot__time_text(a, sizeof(a), m->from);
		hs_plot__time_text(b, sizeof(b), m->to);
		hs_plot__span_text(span, sizeof(span), m->rec_hi - m->rec_lo);
		snprintf(part, sizeof(part), " \xc2\xb7 %s to %s of %s", a, b, span);
	} else {
		hs_plot__span_text(span, sizeof(span), m->to - m->from);
		snprintf(part, sizeof(part), " \xc2\xb7 %s", span);
	}
	n += (size_t)snprintf(sub + n, sizeof(sub) - n, "%s", part);
	if (info->wall_start > 0) {
		time_t tt = (time_t)info->wall_start;
		struct tm tm;
		char when[64];
		localtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, " \xc2\xb7 started %s", when);
	}
	if (!m->stacked && m->tree_peak >= 0 && m->drawn + m->others > 1) {
		char sz[32];
		size_text(sz, sizeof(sz), m->tree_peak);
		hs_plot__time_text(a, sizeof(a), m->tree_peak_t);
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, " \xc2\xb7 tree peak %s at %s", sz, a);
	}
	if (m->fallback)
		n += (size_t)snprintf(sub + n, sizeof(sub) - n, " \xc2\xb7 %zu process%s without %s "
		                      "samples: RSS drawn", m->fallback, m->fallback == 1 ? "" : "es",
		                      m->metric_name);
	(void)n;
	char clean[1024];
	hs_plot__clean_text(clean, sizeof(clean), sub);
	fit(cv, clean, sizeof(clean), W - 2 * MARGIN, FONT, 0);
	hs_plot__text(cv, MARGIN, MARGIN + 35, clean, FONT, 0, HS_PLOT_LEFT, MUTED, 0, "subtitle");
	if (info->warning) {
		hs_plot__clean_text(clean, sizeof(clean), info->warning);
		fit(cv, clean, sizeof(clean), W - 2 * MARGIN, FONT, 0);
		hs_plot__text(cv, MARGIN, MARGIN + 52, clean, FONT, 0, HS_PLOT_LEFT, WARN, 0, "warning");
	}
	hs_plot__group_end(cv);
}

int hs_plot__draw(hs_plot__canvas *cv, hs_plot__model *m)
{
	layout L;
	memset(&L, 0, sizeof(L));
	horizontal_layout(cv, m, &L);
	if (m->stacked)
		HS_TRY(hs_plot__stack_keep(m, L.plot_w / (m->to - m->from)));
	marker_place *places;
	size_t nplaces;
	HS_TRY(place_markers(cv, m, &L, &places, &nplaces, &L.strip_rows));
	double top = MARGIN + 48 + (hs_recording_info(m->r)->warning ? 17 : 0);
	vertical_layout(m, &L, top);

	draw_title(cv, m);
	hs_plot__group(cv, "panel", "memory", NULL);
	draw_axes(cv, m, &L, &L.mem, "memory", m->metric_name, !L.has_types);
	/* series may not spill out of the panel (the peak dot may, a little) */
	hs_plot__clip(cv, "clip-memory", L.mem.x, L.mem.y - 6, L.mem.w, L.mem.h + 6);
	hs_plot__group(cv, "series", "memory-series", NULL);
	if (m->stacked)
		draw_stacked(cv, m, &L);
	else
		draw_lines(cv, m, &L);
	draw_process_marks(cv, m, &L);
	hs_plot__group_end(cv);
	hs_plot__clip_end(cv);
	draw_snapshots(cv, m, &L);
	draw_memory_legend(cv, m, &L);
	hs_plot__group_end(cv);
	if (L.has_types)
		draw_types(cv, m, &L);
	draw_markers(cv, m, &L, places, nplaces);
	/* the peak last: nothing may cover its label */
	draw_peak(cv, m, &L);
	hs_free(places);
	return cv->failed < 0 ? cv->failed : 0;
}
