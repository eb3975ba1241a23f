/*
 * render/plot_internal.h: shared by the files of the plot renderer:
 *   plot.c         the model (series per process, window, stacking, peaks),
 *                  layout and drawing;
 *   plot_axis.c    nice ticks and their labels, times, command names;
 *   plot_canvas.c  the drawing surface: cairo (PNG, PDF) or SVG text.
 */
#ifndef HS_RENDER_PLOT_INTERNAL_H
#define HS_RENDER_PLOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <cairo.h>
#include "heapsnap/plot.h"
#include "util/buf.h"

/* ------------------------------------------------------------------ */
/* ticks and labels (plot_axis.c)                                      */

#define HS_PLOT_MAX_TICKS 32

typedef enum hs_plot__axis_kind {
	HS_PLOT_AXIS_BYTES = 0,
	HS_PLOT_AXIS_TIME = 1,
} hs_plot__axis_kind;

typedef struct hs_plot__ticks {
	hs_plot__axis_kind kind;
	double lo, hi;       /* the axis range (bytes: from 0 up to a whole step above the data) */
	double step;         /* between ticks, in data units (bytes or seconds) */
	size_t count;
	double v[HS_PLOT_MAX_TICKS];
	double unit;         /* bytes axis: 1, 1024, 1024^2...: the unit of every label */
	const char *unit_name;
	int decimals;        /* digits after the point the labels need */
} hs_plot__ticks;

/*
 * A byte axis from 0 to at least `hi` with `target` to 1.4 x `target`
 * intervals (target: 2 to HS_PLOT_MAX_TICKS / 1.4): a step of 1, 2, 2.5 or 5 times a
 * power of ten of one binary unit (the largest unit not above the range),
 * so every label reads in one unit: "0", "0.5 GiB", "1 GiB", "1.5 GiB".
 * hi <= 0 gives 0..1 KiB.
 */
void hs_plot__size_ticks(hs_plot__ticks *out, double hi, int target);
/*
 * A time axis over [lo, hi] seconds (not widened: the window is the one
 * asked for), ticks at multiples of a step from 1 ms ... 500 ms, 1, 2, 5,
 * 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, days.
 */
void hs_plot__time_ticks(hs_plot__ticks *out, double lo, double hi, int target);
/* The label of tick value v: "0", "512 KiB", "1.5 GiB"; "0", "250 ms",
 * "1.5 s", "30 s", "2 min", "1 min 30 s", "1 h 30 min", "2 d". */
size_t hs_plot__tick_label(char *buf, size_t size, const hs_plot__ticks *t, double v);
/* An instant for people, as `heapsnap timeline` writes it: "3.99 s" below
 * 100 s, "2:05.3", "1:02:03". */
size_t hs_plot__time_text(char *buf, size_t size, double seconds);
/* A span: "10 s", "2.5 min", "1.2 h". */
size_t hs_plot__span_text(char *buf, size_t size, double seconds);

/*
 * A process's command shortened for a legend: the program's base name,
 * arguments that are long paths cut to their base name, multiprocessing's
 * helper command lines named for what they are ("python3 (multiprocessing
 * spawn)"); then cut to `max_chars` characters with "…". UTF-8 safe.
 */
size_t hs_plot__short_command(char *buf, size_t size, const hs_rec_process *p,
                              size_t max_chars);
/* Copy `in` as valid UTF-8 without control characters (invalid bytes and
 * controls become "?"), at most size-1 bytes, never cutting a character. */
size_t hs_plot__clean_text(char *buf, size_t size, const char *in);
/* Characters (code points) in a UTF-8 string. */
size_t hs_plot__utf8_len(const char *s);
/* Cut the string in buf (size bytes) to at most `max_chars` characters, the
 * last one "…" when cut. */
void hs_plot__utf8_cut(char *buf, size_t size, size_t max_chars);

/* ------------------------------------------------------------------ */
/* canvas (plot_canvas.c)                                              */

typedef enum hs_plot__anchor {
	HS_PLOT_LEFT = 0,
	HS_PLOT_CENTER = 1,
	HS_PLOT_RIGHT = 2,
} hs_plot__anchor;

typedef enum hs_plot__dash {
	HS_PLOT_SOLID = 0,
	HS_PLOT_DASHED = 1,
	HS_PLOT_DOTTED = 2,
} hs_plot__dash;

typedef struct hs_plot__canvas {
	hs_plot_format format;
	double width, height;
	cairo_surface_t *surface; /* PNG/PDF: where we draw; SVG: a 1x1 image to measure text */
	cairo_t *cr;
	hs_buf svg;               /* SVG: the document */
	hs_buf path;              /* SVG: the current path's "d" */
	double cx, cy;            /* cairo and SVG: current point, for relative moves */
	int path_points;
	int failed;               /* first error (negative hs_error_code); drawing stops */
	int indent;
} hs_plot__canvas;

/* A canvas of width x height for `format`; for PDF and PNG, `stream` is
 * where cairo writes (PDF as it goes, PNG at hs_plot__canvas_finish). */
int hs_plot__canvas_open(hs_plot__canvas *cv, hs_plot_format format, double width,
                         double height, cairo_write_func_t stream, void *closure,
                         const char *title);
/* Finish: PNG written to the stream, PDF closed, SVG completed into cv->svg.
 * @return 0 or a negative hs_error_code. */
int hs_plot__canvas_finish(hs_plot__canvas *cv, cairo_write_func_t stream, void *closure);
void hs_plot__canvas_release(hs_plot__canvas *cv);

/* Groups: SVG <g class id>, with an optional <title> tooltip; nothing in cairo. */
void hs_plot__group(hs_plot__canvas *cv, const char *cls, const char *id, const char *tooltip);
void hs_plot__group_end(hs_plot__canvas *cv);
/* Clip what follows to a rectangle until hs_plot__clip_end. */
void hs_plot__clip(hs_plot__canvas *cv, const char *id, double x, double y, double w, double h);
void hs_plot__clip_end(hs_plot__canvas *cv);

/* Paths */
void hs_plot__move(hs_plot__canvas *cv, double x, double y);
void hs_plot__line(hs_plot__canvas *cv, double x, double y);
void hs_plot__close(hs_plot__canvas *cv);
void hs_plot__rect(hs_plot__canvas *cv, double x, double y, double w, double h);
void hs_plot__circle(hs_plot__canvas *cv, double x, double y, double r);
/* Paint the current path and clear it. `cls` and `attrs` (raw SVG
 * attributes, already escaped, or NULL) and `tooltip` are for SVG. */
void hs_plot__stroke(hs_plot__canvas *cv, uint32_t rgb, double alpha, double width,
                     hs_plot__dash dash, const char *cls, const char *attrs, const char *tooltip);
void hs_plot__fill(hs_plot__canvas *cv, uint32_t rgb, double alpha, const char *cls,
                   const char *attrs, const char *tooltip);

/* Text at baseline y; `text` must be clean (hs_plot__clean_text). */
void hs_plot__text(hs_plot__canvas *cv, double x, double y, const char *text, double size,
                   int bold, hs_plot__anchor anchor, uint32_t rgb, int vertical,
                   const char *cls);
/* The advance width of `text` at that size, as drawn. */
double hs_plot__text_width(hs_plot__canvas *cv, const char *text, double size, int bold);

/* Append XML-escaped text to an SVG buffer. */
int hs_plot__xml_escape(hs_buf *b, const char *text);

/* ------------------------------------------------------------------ */
/* the model (plot.c) and its drawing (plot_draw.c)                    */

#define HS_PLOT_MAX_TYPES 10
#define HS_PLOT_LABEL 192

typedef struct hs_plot__proc {
	const hs_rec_process *p;
	hs_rec_series main;   /* the metric's series */
	hs_rec_series rss;    /* RSS: where `main` (an estimate on the RSS timestamps) has no
	                         value, the RSS sample stands in, as in `heapsnap timeline` */
	int paired;           /* main and rss share their timestamps */
	int fallback;         /* no PSS/USS sample at all: RSS drawn */
	size_t i0, i1;        /* [i0, i1): samples drawn: the window's and one on each side */
	size_t inside;        /* samples inside the window */
	int visible;          /* alive and sampled in the window */
	int64_t peak;         /* highest value in the window (-1: none) */
	double peak_t;
	int band;             /* -1 not drawn; 0..drawn-1 on its own; `drawn`: the "more" group */
	uint32_t colour;
	hs_plot__dash dash;
	char label[HS_PLOT_LABEL];   /* legend: short command, pid, exit */
	size_t label_cut;            /* where the command ends in label: a legend too narrow
	                                cuts the command, never the pid and exit after it */
	char tooltip[HS_PLOT_LABEL * 2];
} hs_plot__proc;

typedef struct hs_plot__type_line {
	const char *name;
	int64_t peak;
	double peak_t;
	uint32_t colour;
} hs_plot__type_line;

typedef struct hs_plot__model {
	const hs_recording *r;
	const char *path;           /* the output, for messages */
	hs_plot_format format;
	unsigned width, height;
	int stacked;
	char title[HS_PLOT_LABEL];
	hs_rec_metric metric;       /* as drawn */
	const char *metric_name;    /* "PSS", "RSS", "USS" */
	double from, to;            /* the window */
	double rec_lo, rec_hi;      /* what the recording covers */
	double half;                /* half the sampling interval: samples of one tick */
	size_t np;
	hs_plot__proc *procs;
	size_t visible, drawn, others, fallback;
	size_t bands;               /* stacked: drawn + 1 when there are others */
	/* the tree's total at each instant of the window (samples grouped by tick) */
	size_t tcount;
	double *tt;
	int64_t *tv;
	int64_t tree_peak;
	double tree_peak_t;
	/* the stacked picture: kept instants and each band's value there */
	size_t kcount;
	double *kt;
	int64_t *kv;                /* kcount x bands */
	/* the annotated peak */
	int64_t peak;
	double peak_t;
	ptrdiff_t peak_proc;        /* index of its process, -1 for the tree's total */
	/* the Python types panel */
	const hs_rec_process *types_proc;
	size_t types_j0, types_j1;  /* the type samples drawn */
	size_t ntypes;
	hs_plot__type_line types[HS_PLOT_MAX_TYPES];
	int64_t types_max;
	size_t markers, snapshots;  /* in the window */
} hs_plot__model;

/* The value of sample j of a process (-1: none). */
int64_t hs_plot__value(const hs_plot__proc *ps, size_t j);
/* Keep the instants that draw the stacked areas at `px_per_s` pixels per
 * second: per pixel column the instants of its lowest and highest total,
 * with each band's value there (fills kt/kv). */
int hs_plot__stack_keep(hs_plot__model *m, double px_per_s);
/* The bytes of type `name` in a types sample, -1 when it is not among its rows. */
int64_t hs_plot__type_bytes(const hs_rec_types *ts, const char *name);

/* Lay out and draw the model onto the canvas. */
int hs_plot__draw(hs_plot__canvas *cv, hs_plot__model *m);

#endif
