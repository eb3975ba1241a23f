/*
 * heapsnap/plot.h: memory over time, drawn from a recording (`heapsnap
 * plot`), in-process with cairo: PNG (cairo image surface), PDF (cairo PDF
 * surface) and SVG.
 *
 * The picture: one line per process (or stacked areas, the top of the
 * stack being the whole tree at each instant), a legend naming each
 * process by its command and pid with its peak, markers as labelled
 * vertical lines, snapshots as triangles on the time axis, the peak
 * annotated with its value and time (stacked: the tree's combined peak at
 * one instant, as `heapsnap timeline` computes it), and, when the recording
 * has them, a second panel with the top Python types over time.
 *
 * SVG is written by heapsnap itself rather than by cairo's SVG surface,
 * which draws text as glyph outlines: here labels stay <text> (searchable,
 * copyable from a bug report, readable by tests), elements carry classes
 * and <title> tooltips, and the output is byte-for-byte the same for the
 * same input. Text is measured with cairo in every format, so the three
 * share one layout.
 */
#ifndef HEAPSNAP_PLOT_H
#define HEAPSNAP_PLOT_H

#include <math.h>
#include "common.h"
#include "errors.h"
#include "recording.h"

typedef enum hs_plot_format {
	HS_PLOT_AUTO = 0, /* from the output file's extension */
	HS_PLOT_PNG = 1,
	HS_PLOT_SVG = 2,
	HS_PLOT_PDF = 3,
} hs_plot_format;

/** The format named by a file's extension (".png", ".svg", ".pdf", any
 *  case), or HS_PLOT_AUTO (0) when it names none of them. */
HS_EXTERN(hs_plot_format) hs_plot_format_of(const char *path);
/** "png", "svg", "pdf"; "" for HS_PLOT_AUTO. Never NULL. */
HS_EXTERN(const char *) hs_plot_format_name(hs_plot_format f);

typedef struct hs_plot_options {
	unsigned version;
	hs_plot_format format; /* HS_PLOT_AUTO: from the path's extension */
	int metric;            /* HS_REC_RSS, HS_REC_PSS or HS_REC_USS (PSS and USS are drawn
	                          from their estimated series, HS_REC_PSS_EST/_USS_EST, which
	                          are also accepted); -1: PSS when the recording has PSS
	                          samples, else RSS */
	int stacked;           /* 1: stacked areas instead of one line per process */
	double from, to;       /* the window, seconds from the start; NAN: from the start,
	                          to the end */
	unsigned width, height;/* pixels (points in PDF); 0: 1200 wide, 600 high (800 with
	                          the Python types panel) */
	const char *title;     /* NULL: "Memory of <command>" */
	size_t top;            /* processes drawn on their own, by peak; the others are drawn
	                          as one grey "N more processes" series; 0: 10 */
	size_t types;          /* types in the second panel; 0: 6; SIZE_MAX: no panel */
} hs_plot_options;

#define HS_PLOT_OPTIONS_VERSION 1
#define HS_PLOT_OPTIONS_INIT { HS_PLOT_OPTIONS_VERSION, HS_PLOT_AUTO, -1, 0, NAN, NAN, 0, 0, \
                               NULL, 0, 0 }

/* What was drawn. */
typedef struct hs_plot_stats {
	hs_plot_format format;
	unsigned width, height;
	hs_rec_metric metric;   /* as drawn: HS_REC_RSS, HS_REC_PSS_EST or HS_REC_USS_EST */
	int stacked;
	double from, to;        /* the window drawn, seconds */
	size_t processes;       /* processes alive in the window */
	size_t drawn;           /* drawn on their own (the others as one "more" series) */
	size_t fallback;        /* drawn with RSS for lack of any PSS/USS sample */
	size_t markers;         /* in the window */
	size_t snapshots;       /* in the window */
	size_t types;           /* lines in the Python types panel (0: no panel) */
	int types_pid;          /* the process whose types are drawn, 0 if none */
	int64_t peak;           /* the annotated peak, bytes (-1 when nothing was measured) */
	double peak_t;          /* its time, seconds */
	int peak_pid;           /* its process; 0 for the tree's total (stacked) */
	uint64_t bytes;         /* size of the file written */
} hs_plot_stats;

/**
 * Draw `r` into the file `path` (written under a temporary name in the same
 * directory and renamed at the end: a failed plot leaves no partial file).
 * Errors: HS_EINVAL for bad options (unknown format, a width or height out
 * of 200..20000, an unknown metric, an empty window: the message says
 * which), HS_ENOTFOUND when the window holds no sample, HS_EIO when the file
 * cannot be written, HS_ENOMEM.
 * @param stats optional; filled on success.
 * @return 0 or a negative hs_error_code.
 */
HS_EXTERN(int) hs_plot_render(const hs_recording *r, const char *path,
                              const hs_plot_options *opts, hs_plot_stats *stats);

/**
 * Parse a time offset as given to --from/--to: a number of seconds ("90",
 * "1.5"), or a number with a unit ("500ms", "90s", "2min", "2m", "1.5h"),
 * or several of them ("1m30s", "1h 5min").
 * @return 0, or HS_EINVAL (message set) for text that is none of these or
 *         a negative time.
 */
HS_EXTERN(int) hs_plot_parse_time(double *out, const char *text);

#endif
