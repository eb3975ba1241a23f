/*
 * heapsnap/timeline.h: what a recording says (`heapsnap timeline`):
 * per process its peaks and memory at exit, for the whole tree the
 * combined peak taken at one instant, and the phases of the main series
 * (growth, plateau, decline, with their rates). Rendered as text or JSON
 * (formats/timeline.schema.json).
 */
#ifndef HEAPSNAP_TIMELINE_H
#define HEAPSNAP_TIMELINE_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "common.h"
#include "errors.h"
#include "recording.h"

typedef struct hs_tl_peak {
	int64_t bytes;  /* -1 when the metric was never measured */
	double t;       /* seconds from the start */
} hs_tl_peak;

typedef struct hs_tl_process {
	const hs_rec_process *process; /* borrowed from the recording */
	hs_tl_peak rss, uss, pss, swap; /* uss and pss: the estimated series (see recording.h) */
	int64_t exit_rss, exit_uss, exit_pss, exit_swap; /* last values, -1 if unknown */
	double rate[HS_REC_SERIES_KIND_MAX + 1]; /* samples/s achieved per series kind */
} hs_tl_process;

typedef enum hs_tl_phase_kind {
	HS_TL_GROWTH = 1,
	HS_TL_PLATEAU = 2,
	HS_TL_DECLINE = 3,
} hs_tl_phase_kind;

typedef struct hs_tl_phase {
	hs_tl_phase_kind kind;
	double start, end;   /* seconds */
	int64_t from, to;    /* bytes at start and end */
	double rate;         /* bytes per second (to - from) / (end - start) */
} hs_tl_phase;

typedef struct hs_tl_total {
	size_t count;
	double *t;      /* one instant per tick */
	int64_t *rss;   /* sum of the RSS of every process alive at t */
	int64_t *pss;   /* sum of (estimated) PSS; -1 when some process has no PSS */
	int64_t *uss;
} hs_tl_total;

typedef struct hs_timeline {
	size_t process_count;
	hs_tl_process *processes;   /* in recording order */
	hs_tl_total total;
	hs_rec_metric main_metric;  /* HS_REC_PSS_EST, or HS_REC_RSS when PSS is missing */
	hs_tl_peak peak_pss, peak_rss, peak_uss; /* of the total, each at one instant */
	int64_t *peak_breakdown;    /* per process: its PSS (or RSS) at the peak_pss (peak_rss)
	                               instant of the main metric; -1 when not alive */
	int64_t sum_of_peaks_rss;   /* what summing per-process peaks would claim */
	size_t phase_count;
	hs_tl_phase *phases;
} hs_timeline;

typedef struct hs_timeline_options {
	unsigned version;
	double plateau_fraction; /* a change below this fraction of the range is flat (and below
	                            2% of the peak level: allocator noise); default 0.05 */
	int64_t plateau_bytes;   /* ...or below this many bytes; default 1 MiB */
	double min_phase_fraction; /* a phase shorter than this fraction of the whole, between
	                              two phases of one kind, joins them (the steps of a staircase
	                              are one growth); default 0.05 */
} hs_timeline_options;

#define HS_TIMELINE_OPTIONS_VERSION 1
#define HS_TIMELINE_OPTIONS_INIT { HS_TIMELINE_OPTIONS_VERSION, 0.05, 1048576, 0.05 }

/**
 * Analyse a recording.
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_timeline_free) and borrows from `r`, which must outlive it.
 */
HS_EXTERN(int) hs_timeline_build(hs_timeline **out, const hs_recording *r,
                                 const hs_timeline_options *opts);
HS_EXTERN(void) hs_timeline_free(hs_timeline *t);

/**
 * Phases of any series (t ascending, v in bytes; negative values are
 * skipped): piecewise-linear segmentation (Douglas-Peucker on bucket
 * means), each segment classed growth, plateau or decline, neighbours of
 * the same class merged, short interruptions of one kind of phase absorbed.
 * @return 0 or HS_ENOMEM; *out (hs_free'd by the caller with hs_timeline_phases_free).
 */
HS_EXTERN(int) hs_timeline_phases(hs_tl_phase **out, size_t *count, const double *t,
                                  const int64_t *v, size_t n, const hs_timeline_options *opts);
HS_EXTERN(void) hs_timeline_phases_free(hs_tl_phase *phases);

/** Name of a phase kind: "growth", "plateau", "decline". */
HS_EXTERN(const char *) hs_tl_phase_name(hs_tl_phase_kind k);

typedef struct hs_timeline_render_options {
	unsigned version;
	int samples;          /* text: list the samples too */
	size_t max_samples;   /* JSON/text samples per process; 0 = all (thinned by keeping each
	                         bucket's highest RSS) */
} hs_timeline_render_options;

#define HS_TIMELINE_RENDER_OPTIONS_VERSION 1
#define HS_TIMELINE_RENDER_OPTIONS_INIT { HS_TIMELINE_RENDER_OPTIONS_VERSION, 0, 0 }

/** `heapsnap timeline` as text. */
HS_EXTERN(int) hs_render_timeline_text(FILE *f, const hs_recording *r, const hs_timeline *t,
                                       const hs_timeline_render_options *opts);
/** As JSON (formats/timeline.schema.json); *out belongs to the caller (cJSON_Delete). */
HS_EXTERN(int) hs_render_timeline_json(cJSON **out, const hs_recording *r, const hs_timeline *t,
                                       const hs_timeline_render_options *opts);
/** `heapsnap info REC` / `summary REC`: the recording's overview (formats/info-recording.schema.json). */
HS_EXTERN(int) hs_render_recording_info_text(FILE *f, const hs_recording *r, const hs_timeline *t);
HS_EXTERN(int) hs_render_recording_info_json(cJSON **out, const hs_recording *r,
                                             const hs_timeline *t);

#endif
