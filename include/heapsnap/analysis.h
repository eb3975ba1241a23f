/*
 * heapsnap/analysis.h: analyses over loaded snapshots.
 *
 * summary: objects and bytes per type (or per module), largest first.
 * diff: per type change between two snapshots, and the objects new in the
 * second. Results are plain structs owned by the caller (`_free`); names in
 * them are owned by the result, not borrowed from the snapshots.
 */
#ifndef HEAPSNAP_ANALYSIS_H
#define HEAPSNAP_ANALYSIS_H

#include "common.h"
#include "errors.h"
#include "snapshot.h"

typedef enum hs_group_by {
	HS_GROUP_TYPE = 0,   /* the full type name, "module.QualName" */
	HS_GROUP_MODULE = 1, /* the part before the last dot; bare names -> "builtins" */
	HS_GROUP_SITE = 2,   /* allocation site (summary only; needs a snapshot with sites) */
} hs_group_by;

/** Module of a type name: "a.b.C" -> "a.b", "dict" -> "builtins". Writes at
 *  most `size` bytes (NUL included) and returns the full length. */
HS_EXTERN(size_t) hs_analysis_module_of(const char *type_name, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* summary                                                             */

/* A type allocated at a site (HS_GROUP_SITE rows). */
typedef struct hs_summary_type {
	const char *name;
	uint64_t count, bytes; /* estimates when the row is */
} hs_summary_type;

typedef struct hs_summary_row {
	const char *name;  /* type or module name; by site "file:line (function)" */
	uint64_t count;    /* objects */
	uint64_t bytes;    /* sum of their sizes */
	/* HS_GROUP_SITE only: */
	uint32_t site;     /* location id (hs_snapshot_site), HS_NO_SITE: no Python frame */
	int estimate;      /* count and bytes are sampled estimates (unbiased) */
	uint64_t samples;  /* objects recorded (= count in exact mode) */
	size_t type_count;
	hs_summary_type *types; /* largest first */
} hs_summary_row;

/* HS_GROUP_SITE: the objects with and without a recorded allocation. */
typedef struct hs_summary_sites {
	uint64_t sample_bytes;   /* 0: exact mode */
	uint64_t tracked_objects, tracked_bytes;     /* recorded (samples) */
	uint64_t untracked_objects, untracked_bytes; /* allocated before tracking, or not sampled */
	uint64_t unmatched_blocks; /* tracked blocks holding no object of the snapshot */
} hs_summary_sites;

/* ------------------------------------------------------------------ */
/* where the RSS goes (the META `memory` object, formats/snapshot-v1.md) */

#define HS_MEMORY_PARTS 12

/* One share of the RSS. `name` is static: python_objects, garbage,
 * native_buffers, interpreter, pymalloc_free, native_heap, native_free,
 * libraries, stacks, other (formats/summary.schema.json). */
typedef struct hs_memory_part {
	const char *name;
	uint64_t bytes;
} hs_memory_part;

typedef struct hs_memory_breakdown {
	int available;              /* 0: see `unavailable` */
	const char *unavailable;    /* static: why there is no breakdown */
	uint64_t rss;               /* the RSS split: memory.rss (smaps) */
	size_t part_count;
	hs_memory_part parts[HS_MEMORY_PARTS]; /* fixed order, `other` last */
	uint64_t excess;            /* the parts before `other` exceed the RSS by this (other = 0) */
	uint64_t untouched;         /* allocators' free space never touched (not resident): taken
	                               off native_free and pymalloc_free (allocator size model) */
	int split_estimated;        /* no dump.bytes_pymalloc/bytes_malloc: objects' bytes
	                               in pymalloc vs malloc estimated */
	uint64_t pymalloc_claimed;  /* objects claim more pymalloc than in use by this */
	uint64_t malloc_claimed;    /* objects and buffers claim more malloc than in use by this */
	uint64_t object_bytes;      /* all Python objects (reachable + garbage), native buffers excluded */
	uint64_t pymalloc_arena_bytes, pymalloc_free_bytes; /* for the explanation */
	uint64_t thread_stacks;
	int have_malloc;            /* mallinfo2 figures were there */
} hs_memory_breakdown;

/**
 * Split the RSS recorded in the snapshot's META `memory` object between
 * Python objects (reachable and not), native buffers, the allocators' free
 * space, mapped files and stacks; `other` is what remains. Reachability is
 * computed here (hs_reach_compute). A snapshot without `memory` (older hook)
 * gives available = 0, not an error.
 * @return 0 or a negative hs_error_code (HS_ENOMEM).
 */
HS_EXTERN(int) hs_analysis_memory(hs_memory_breakdown *out, const hs_snapshot *s);
/** The bytes of the part named `name`, 0 if absent. */
HS_EXTERN(uint64_t) hs_memory_part_bytes(const hs_memory_breakdown *m, const char *name);

typedef struct hs_summary {
	hs_group_by by;
	size_t row_count;
	hs_summary_row *rows; /* sorted by bytes desc, then count desc, then name */
	uint64_t total_count;
	uint64_t total_bytes;
	hs_summary_sites sites; /* HS_GROUP_SITE only */
	hs_memory_breakdown memory; /* where the RSS goes (hs_analysis_memory) */
} hs_summary;

typedef struct hs_summary_options {
	unsigned version;
	hs_group_by by;
} hs_summary_options;

#define HS_SUMMARY_OPTIONS_VERSION 1
#define HS_SUMMARY_OPTIONS_INIT { HS_SUMMARY_OPTIONS_VERSION, HS_GROUP_TYPE }

/**
 * Count objects and bytes per type (or module). Types with the same name
 * (a class defined twice) form one row.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_summary_free).
 */
HS_EXTERN(int) hs_analysis_summary(hs_summary **out, const hs_snapshot *s,
                                   const hs_summary_options *opts);
HS_EXTERN(void) hs_summary_free(hs_summary *sum);
/* With HS_GROUP_SITE, hs_analysis_summary groups the objects whose
 * allocation was recorded by site (hs_snapshot_node_alloc); total_* are
 * the figures of those rows; it fails with HS_EINVAL when the snapshot has
 * no allocation sites. At most HS_SUMMARY_SITE_TYPES types per row. */
#define HS_SUMMARY_SITE_TYPES 5

/* ------------------------------------------------------------------ */
/* diff                                                                */

typedef struct hs_diff_row {
	const char *name;
	uint64_t count_a, bytes_a;
	uint64_t count_b, bytes_b;
	int64_t count_delta, bytes_delta; /* B - A */
	uint64_t new_count, new_bytes;    /* objects of B not in A */
} hs_diff_row;

typedef struct hs_diff {
	hs_group_by by;
	size_t row_count;
	hs_diff_row *rows;      /* every name in A or B, by bytes_delta desc,
	                           then count_delta desc, then name */
	size_t new_row_count;
	hs_diff_row *new_rows;  /* rows with new_count > 0, by new_bytes desc */
	hs_diff_row total;      /* name "total" */
	int grew;               /* some row has count_delta > 0 or bytes_delta > 0 */
} hs_diff;

typedef struct hs_diff_options {
	unsigned version;
	hs_group_by by;
} hs_diff_options;

#define HS_DIFF_OPTIONS_VERSION 1
#define HS_DIFF_OPTIONS_INIT { HS_DIFF_OPTIONS_VERSION, HS_GROUP_TYPE }

/**
 * Compare snapshot `a` (before) with `b` (after). An object of B is new when
 * A has no object at its address with the same type name (an address reused
 * by an object of the same type counts as the same object: a snapshot holds
 * no identity beyond address and type). Linear time: one hash lookup per
 * object of B.
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_diff_free).
 */
HS_EXTERN(int) hs_analysis_diff(hs_diff **out, const hs_snapshot *a, const hs_snapshot *b,
                                const hs_diff_options *opts);
HS_EXTERN(void) hs_diff_free(hs_diff *d);

#endif
