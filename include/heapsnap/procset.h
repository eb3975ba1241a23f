/*
 * heapsnap/procset.h: snapshot sets: the snapshots of a process and its
 * Python descendants taken together (`heapsnap dump PID --children`),
 * described by an index file (formats/index-v1.md, `.hsidx`), and the
 * summary and diff of such sets.
 *
 * An index is JSON: for each process of the tree its pid, parent, command
 * line, what happened to it (snapshot written, failed, exited meanwhile,
 * skipped because it is not Python), its snapshot file (relative to the
 * index) and its memory (RSS, PSS, USS, swap) measured when the set was
 * taken. hs_procset_open() reads and validates one; hs_procset_write()
 * writes one atomically. Member snapshots are opened one (summary) or two
 * (diff) at a time, so a set of many large processes needs no more memory
 * than its largest member.
 */
#ifndef HEAPSNAP_PROCSET_H
#define HEAPSNAP_PROCSET_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "common.h"
#include "errors.h"
#include "analysis.h"
#include "render.h"

#define HS_PROCSET_FORMAT "heapsnap-index"
#define HS_PROCSET_VERSION 1
#define HS_PROCSET_SUFFIX ".hsidx"

/** What happened to a process of the tree. */
typedef enum hs_procset_status {
	HS_PROC_OK = 0,      /* its snapshot is `file` */
	HS_PROC_FAILED = 1,  /* the dump failed: `error` */
	HS_PROC_EXITED = 2,  /* it exited before or during its dump */
	HS_PROC_SKIPPED = 3, /* not dumped: `error` says why (not a Python process...) */
} hs_procset_status;

/** Memory of a process in bytes, from /proc/PID/smaps_rollup; -1 unknown. */
typedef struct hs_proc_memory {
	int64_t rss;  /* resident */
	int64_t pss;  /* resident, each shared page divided among its sharers */
	int64_t uss;  /* resident and private (Private_Clean + Private_Dirty) */
	int64_t swap;
} hs_proc_memory;

#define HS_PROC_MEMORY_UNKNOWN { -1, -1, -1, -1 }

/** One process of a set. Strings are owned by the set. */
typedef struct hs_procset_proc {
	int pid, ppid;
	uint64_t start_ticks;   /* /proc/PID/stat starttime (clock ticks after boot); 0 unknown */
	char **argv;            /* argc strings; argc may be 0 (a kernel-cleared cmdline) */
	size_t argc;
	char *command;          /* argv joined with spaces (control characters as spaces: one
	                           line), or "[name]"; never NULL once loaded */
	hs_procset_status status;
	char *error;            /* why it is not HS_PROC_OK; NULL when it is */
	char *file;             /* the snapshot as recorded (relative to the index); NULL unless OK */
	char *path;             /* hs_procset_open: `file` resolved against the index's directory */
	hs_proc_memory mem;
	int python_minor;       /* 3.x of the process; 0 unknown */
	uint64_t objects;       /* as the dump reported them */
	uint64_t file_bytes;    /* the snapshot file's size */
	double pause_seconds;   /* the process's pause (fork mode: the fork) */
	double seconds;         /* attach to detach */
	const char *mode;       /* "blocked", "pending_call", "agent" or NULL; static */
	int child_pid;          /* fork mode: the child that wrote the file; 0 otherwise */
	double child_seconds;
	int64_t child_private_dirty; /* -1 unknown */
} hs_procset_proc;

typedef struct hs_procset {
	char *path;            /* the index file, as given */
	int root_pid;
	double time;           /* when the set was taken, Unix seconds */
	char *time_iso;        /* the same, local time ISO 8601; may be NULL */
	char *boot_id;         /* /proc/sys/kernel/random/boot_id; may be NULL */
	char *created_by;      /* "heapsnap X.Y.Z"; may be NULL */
	int fork;              /* taken in fork mode */
	double seconds;        /* the whole `dump --children` */
	double memory_seconds; /* reading every process's memory (one pass, before the dumps) */
	size_t count;
	hs_procset_proc *procs; /* the root first, then its descendants (depth first, by pid) */
	size_t cap;
} hs_procset;

/** Lower-case name of a status: "ok", "failed", "exited", "skipped". */
HS_EXTERN(const char *) hs_procset_status_name(hs_procset_status s);

/** A new empty set. @return 0 or HS_ENOMEM; *out belongs to the caller (hs_procset_free). */
HS_EXTERN(int) hs_procset_new(hs_procset **out);

/**
 * Append a zeroed process (memory unknown) and return it through *out,
 * borrowed from the set (valid until the next append). Fill its strings
 * with hs_strdup'd copies: the set frees them.
 * @return 0 or HS_ENOMEM.
 */
HS_EXTERN(int) hs_procset_add(hs_procset *set, hs_procset_proc **out);

/** Set argv (copied) and command (joined) of `p`. @return 0 or HS_ENOMEM. */
HS_EXTERN(int) hs_procset_proc_set_argv(hs_procset_proc *p, const char *const *argv, size_t argc,
                                        const char *name);

/**
 * `p`'s command for a table: the program's base name and its arguments
 * ("python3 -m gunicorn ..."; "[name]" without argv), control characters as
 * spaces, cut to `width` characters (UTF-8 aware) ending in "..." when
 * longer; 0: no limit. Writes at most `size` bytes including the NUL.
 * @return buf.
 */
HS_EXTERN(const char *) hs_procset_proc_label(const hs_procset_proc *p, char *buf, size_t size,
                                              size_t width);

/**
 * Whether `path` looks like an index rather than a snapshot: its name ends
 * in ".hsidx", or its first non-blank byte is '{' (snapshots start with a
 * binary magic). A file that cannot be read is no index (the snapshot
 * reader then reports why).
 */
HS_EXTERN(int) hs_procset_sniff(const char *path);

/**
 * Read and validate the index at `path`: JSON, format and version,
 * every field's type, and that every snapshot it names exists (a member
 * is opened only when analysed).
 * @return 0 or a negative hs_error_code (HS_EIO, HS_EFORMAT, HS_EVERSION,
 *         HS_ENOTFOUND for a missing snapshot file, HS_ENOMEM); the message
 *         names the index. *out belongs to the caller (hs_procset_free).
 */
HS_EXTERN(int) hs_procset_open(hs_procset **out, const char *path);

/**
 * Write `set` as an index to `path`: a temporary file beside it (mode 0600),
 * flushed and renamed into place, so no half-written index ever carries the
 * final name.
 * @return 0 or HS_EIO / HS_ENOMEM.
 */
HS_EXTERN(int) hs_procset_write(const hs_procset *set, const char *path);

/** The index as JSON (formats/index.schema.json). *out: cJSON_Delete. */
HS_EXTERN(int) hs_procset_to_json(cJSON **out, const hs_procset *set);

HS_EXTERN(void) hs_procset_free(hs_procset *set);

/* ------------------------------------------------------------------ */
/* summary of a set                                                    */

/** One process's part of a row. */
typedef struct hs_procset_part {
	size_t proc;             /* index into the summary's/diff's procs */
	uint64_t count, bytes;   /* summary: its objects of the row */
	int64_t count_delta, bytes_delta; /* diff */
	uint64_t new_count, new_bytes;    /* diff */
} hs_procset_part;

typedef struct hs_procset_summary_proc {
	const hs_procset_proc *proc; /* borrowed from the set */
	uint64_t objects, bytes;     /* from its snapshot */
	char *python;                /* python.version from its metadata; may be NULL */
} hs_procset_summary_proc;

typedef struct hs_procset_summary_row {
	const char *name;            /* owned by the summary */
	uint64_t count, bytes;       /* summed over the processes */
	size_t part_count;
	hs_procset_part *parts;      /* per process that has the row, in process order */
} hs_procset_summary_row;

/** Sums of a memory figure: `known` processes had it. */
typedef struct hs_procset_mem_total {
	uint64_t rss, pss, uss, swap;
	size_t rss_known, pss_known, uss_known, swap_known;
} hs_procset_mem_total;

typedef struct hs_procset_summary {
	hs_group_by by;
	const hs_procset *set;        /* borrowed */
	size_t proc_count;
	hs_procset_summary_proc *procs; /* the processes with a snapshot, in index order */
	uint64_t total_count, total_bytes;
	hs_procset_mem_total mem;     /* over the processes with a snapshot */
	size_t row_count;
	hs_procset_summary_row *rows; /* by bytes desc, then count desc, then name */
} hs_procset_summary;

/**
 * Summarise every snapshot of `set` (hs_analysis_summary with `opts`, one
 * snapshot loaded at a time) and merge the rows by name across processes.
 * @return 0 or a negative hs_error_code; a damaged member's message names
 *         the member and the index. *out belongs to the caller
 *         (hs_procset_summary_free) and borrows `set`.
 */
HS_EXTERN(int) hs_procset_summary_build(hs_procset_summary **out, const hs_procset *set,
                                        const hs_summary_options *opts);
HS_EXTERN(void) hs_procset_summary_free(hs_procset_summary *sum);

/* ------------------------------------------------------------------ */
/* diff of two sets                                                    */

typedef enum hs_procset_match {
	HS_MATCH_BOTH = 0,    /* a snapshot in A and in B: compared */
	HS_MATCH_ENDED = 1,   /* a snapshot in A only (ended, or no snapshot in B) */
	HS_MATCH_STARTED = 2, /* a snapshot in B only (started, or no snapshot in A) */
} hs_procset_match;

typedef struct hs_procset_diff_proc {
	hs_procset_match match;
	const hs_procset_proc *a, *b; /* borrowed; a NULL when started, b NULL when ended */
	const char *note;      /* why unmatched: "not in A", "pid reused", ...; static */
	hs_diff_row total;     /* matched: objects and bytes A -> B, new in B */
} hs_procset_diff_proc;

typedef struct hs_procset_diff_row {
	hs_diff_row r;         /* summed over the matched processes; r.name owned by the diff */
	size_t part_count;
	hs_procset_part *parts; /* matched processes where the row changed */
} hs_procset_diff_row;

typedef struct hs_procset_diff {
	hs_group_by by;
	const hs_procset *a, *b;
	size_t proc_count;
	hs_procset_diff_proc *procs; /* matched (in A's order), ended, then started */
	size_t matched, ended, started;
	hs_diff_row total;           /* over matched processes */
	hs_procset_mem_total mem_a, mem_b; /* over matched processes */
	size_t row_count;
	hs_procset_diff_row *rows;   /* by bytes_delta desc, count_delta desc, name */
	int grew;                    /* some row grew in objects or bytes */
} hs_procset_diff;

/**
 * Compare set `a` (before) with set `b` (after): processes are matched by
 * pid (and, when both indexes know it, by start time: a reused pid is two
 * processes); each matched pair is compared with hs_analysis_diff (two
 * snapshots loaded at a time) and the rows are summed by name.
 * @return 0 or a negative hs_error_code. *out belongs to the caller
 *         (hs_procset_diff_free) and borrows both sets.
 */
HS_EXTERN(int) hs_procset_diff_build(hs_procset_diff **out, const hs_procset *a,
                                     const hs_procset *b, const hs_diff_options *opts);
HS_EXTERN(void) hs_procset_diff_free(hs_procset_diff *d);

/* ------------------------------------------------------------------ */
/* renderings                                                          */

/** `heapsnap summary INDEX` (formats/summary-set.schema.json). */
HS_EXTERN(int) hs_render_procset_summary_text(FILE *f, const hs_procset_summary *sum,
                                              const hs_render_options *opts);
HS_EXTERN(int) hs_render_procset_summary_json(cJSON **out, const hs_procset_summary *sum,
                                              const hs_render_options *opts);

/** `heapsnap diff INDEX_A INDEX_B` (formats/diff-set.schema.json). */
HS_EXTERN(int) hs_render_procset_diff_text(FILE *f, const hs_procset_diff *d,
                                           const hs_render_options *opts);
HS_EXTERN(int) hs_render_procset_diff_json(cJSON **out, const hs_procset_diff *d,
                                           const hs_render_options *opts);

#endif
