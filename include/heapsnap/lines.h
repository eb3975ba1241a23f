/*
 * heapsnap/lines.h: which line allocated the memory, from a recording made
 * with `heapsnap record --lines` (blocks TRACK, SITES, SITE_DELTA, PEAK of
 * formats/recording-v1.md). Used by `heapsnap lines` and `heapsnap
 * flamegraph`.
 *
 * Self figures go to the innermost frame in the user's code: frames of the
 * standard library, site-packages and dist-packages (flagged by the agent
 * when it defined the location) are folded into the calling user line,
 * unless the recording was made with --all-frames. Total (inclusive)
 * figures count every shown line of a stack once.
 */
#ifndef HEAPSNAP_LINES_H
#define HEAPSNAP_LINES_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "common.h"
#include "errors.h"
#include "recording.h"

typedef enum hs_lines_by {
	HS_LINES_BY_LIVE = 0,      /* live at the end of the recording */
	HS_LINES_BY_PEAK = 1,      /* live at the high-water mark */
	HS_LINES_BY_ALLOCATED = 2, /* allocated over the whole run */
} hs_lines_by;

typedef struct hs_line_row {
	const char *file;        /* "<native>" for allocations without a Python frame */
	int line;                /* 0 for those */
	const char *function;    /* qualified name, or "native, thread NAME" */
	const char *source;      /* the line's text (stripped), "" when unreadable */
	int64_t allocated_bytes, allocations, live_bytes, peak_bytes;
	int64_t total_allocated_bytes, total_allocations, total_live_bytes, total_peak_bytes;
} hs_line_row;

typedef struct hs_lines_sampling {
	int exact;               /* every process tracked exactly */
	int64_t sample_bytes;    /* the mean interval of sampled processes (0 if exact) */
	int seeded;
	uint64_t seed;
	int native;
	int all_frames;
	int from_now;            /* --pid: growth since tracking started */
	const char *peak_basis;
} hs_lines_sampling;

typedef struct hs_lines_totals {
	int64_t allocated_bytes, allocations, live_bytes, peak_bytes; /* sums of the self figures */
	int64_t peak_total_bytes; /* sum over processes of each one's high-water mark */
	size_t peak_at_end;       /* processes whose high-water mark is their end (see lines.c) */
	size_t processes;         /* tracked processes taken */
	size_t rows;              /* lines before --top */
	size_t stacks;
} hs_lines_totals;

typedef struct hs_lines_options {
	unsigned version;
	hs_lines_by by;
	size_t top;              /* 0: all */
	const char *file;        /* substring of the file path, or NULL */
	const char *function;    /* substring of the function name, or NULL */
	int pid;                 /* 0: every tracked process */
	int source;              /* read the source text of the rows kept */
} hs_lines_options;

#define HS_LINES_OPTIONS_VERSION 1
#define HS_LINES_OPTIONS_INIT { HS_LINES_OPTIONS_VERSION, HS_LINES_BY_LIVE, 0, NULL, NULL, 0, 1 }

typedef struct hs_lines {
	hs_line_row *rows;       /* sorted by the figure asked for, largest first */
	size_t count;
	hs_lines_totals totals;
	hs_lines_sampling sampling;
	char **owned;            /* source strings */
	size_t owned_count;
} hs_lines;

/**
 * One row per source line. HS_ENOTFOUND when the recording has no line data
 * (made without --lines) or no tracked process matches --pid.
 */
HS_EXTERN(int) hs_lines_build(hs_lines **out, const hs_recording *r, const hs_lines_options *o);
HS_EXTERN(void) hs_lines_free(hs_lines *l);

/** The table (`heapsnap lines`): by, the figure sorted on, for the header. */
HS_EXTERN(int) hs_render_lines_text(FILE *f, const hs_lines *l, hs_lines_by by);
/** As JSON (formats/lines.schema.json); *out belongs to the caller (cJSON_Delete). */
HS_EXTERN(int) hs_render_lines_json(cJSON **out, const hs_lines *l, hs_lines_by by);
HS_EXTERN(const char *) hs_lines_by_name(hs_lines_by by);

/* ---- flame graphs ---- */

typedef struct hs_flame_options {
	unsigned version;
	hs_lines_by by;
	int pid;                 /* 0: every tracked process */
	const char *title;       /* NULL: a default */
	int width;               /* pixels, default 1200 */
} hs_flame_options;

#define HS_FLAME_OPTIONS_VERSION 1
#define HS_FLAME_OPTIONS_INIT { HS_FLAME_OPTIONS_VERSION, HS_LINES_BY_LIVE, 0, NULL, 1200 }

/** Write the stacks as an SVG flame graph (deterministic). HS_ENOTFOUND as hs_lines_build. */
HS_EXTERN(int) hs_flamegraph_svg(FILE *out, const hs_recording *r, const hs_flame_options *o);

#endif
