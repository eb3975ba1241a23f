/*
 * heapsnap/recording.h: recordings (`.hsrec`, formats/recording-v1.md):
 * memory over time of a whole process tree.
 *
 * A recording is the snapshot container (same header, section framing,
 * checksums and zstd) with file kind HS_FILE_RECORDING: a META section,
 * then append-only CHUNK sections (one about every second, each checksummed
 * and compressed on its own), and at a clean end a META_END section, the
 * index and the footer. A file cut short (the recorder killed, the disk
 * full) still reads back up to its last complete chunk.
 *
 * Two halves:
 *  - the writer (hs_rec_writer_*), used by `heapsnap record` and by the
 *    test fixture generator;
 *  - the reader, which loads a file into an in-memory model: processes
 *    (argv, pid, lifetime, exit), and per process several series, each with
 *    its own timestamps (RSS every tick from statm, the RSS split and swap
 *    less often from status, PSS/USS from smaps_rollup at a budgeted rate,
 *    Python heap figures from the in-process agent), top Python types over
 *    time, markers, snapshots taken along the way and notes.
 *
 * Times in the model are seconds from the start of the recording (double);
 * sizes are bytes; counts are counts (int64_t, -1 where a figure was not
 * available at that sample).
 */
#ifndef HEAPSNAP_RECORDING_H
#define HEAPSNAP_RECORDING_H

#include "common.h"
#include "errors.h"

/* ------------------------------------------------------------------ */
/* Series and metrics                                                  */

/* The series of a process; each has its own timestamps. The numbers are
 * the file's series kinds (formats/recording-v1.md). */
typedef enum hs_rec_series_kind {
	HS_REC_SERIES_MEM = 1,    /* /proc/PID/statm, every tick */
	HS_REC_SERIES_STATUS = 2, /* /proc/PID/status + stat: RSS split, swap, threads, CPU */
	HS_REC_SERIES_SMAPS = 3,  /* /proc/PID/smaps_rollup: PSS, USS (budgeted rate) */
	HS_REC_SERIES_PY = 4,     /* the agent's STATS: Python heap figures */
	HS_REC_SERIES_GC = 5,     /* the agent's GC events: one sample per collection */
	HS_REC_SERIES_KIND_MAX = 5
} hs_rec_series_kind;

/* Columns of each series kind as written (after the time column), and the
 * number of columns the writer expects (time included). */
#define HS_REC_MEM_COLUMNS 4    /* t, rss KiB, vms KiB, shared KiB (file + shmem resident) */
#define HS_REC_STATUS_COLUMNS 8 /* t, anon KiB, file KiB, shmem KiB, swap KiB, threads,
                                   user CPU ms, system CPU ms */
#define HS_REC_SMAPS_COLUMNS 9  /* t, pss KiB, uss KiB, pss_anon KiB, pss_file KiB,
                                   pss_shmem KiB, swap KiB, swap_pss KiB, read cost us */
#define HS_REC_PY_COLUMNS 14    /* t, gc-tracked objects, pymalloc bytes in use, arenas
                                   allocated, arenas high-water mark, pymalloc blocks in use,
                                   collections gen0/1/2, collected, uncollectable (all
                                   generations), GC pause us gen0/1/2 (totals so far) */
#define HS_REC_GC_COLUMNS 5     /* t (start), generation, duration us, collected,
                                   uncollectable */

/* What the model offers per process, in model units. */
typedef enum hs_rec_metric {
	HS_REC_RSS = 0,       /* bytes, MEM series */
	HS_REC_VMS,           /* bytes, MEM */
	HS_REC_SHARED,        /* bytes resident from files and shmem, MEM */
	HS_REC_ANON,          /* bytes, STATUS (RssAnon) */
	HS_REC_FILE,          /* bytes, STATUS (RssFile) */
	HS_REC_SHMEM,         /* bytes, STATUS (RssShmem) */
	HS_REC_SWAP,          /* bytes, STATUS (VmSwap) */
	HS_REC_THREADS,       /* count, STATUS */
	HS_REC_CPU,           /* CPU time used so far, user + system, nanoseconds, STATUS */
	HS_REC_PSS,           /* bytes, SMAPS (measured) */
	HS_REC_USS,           /* bytes, SMAPS: Private_Clean + Private_Dirty */
	HS_REC_SWAP_PSS,      /* bytes, SMAPS */
	HS_REC_PSS_EST,       /* bytes, on the MEM timestamps: PSS estimated between its
	                         samples (see hs_rec_process_series) */
	HS_REC_USS_EST,       /* bytes, on the MEM timestamps, likewise */
	HS_REC_PY_OBJECTS,    /* GC-tracked objects, PY */
	HS_REC_PY_PYMALLOC,   /* bytes in use in pymalloc blocks, PY */
	HS_REC_PY_ARENAS,     /* pymalloc arenas allocated (256 KiB or 1 MiB each), PY */
	HS_REC_PY_BLOCKS,     /* pymalloc blocks in use, PY */
	HS_REC_PY_GC_COLLECTIONS, /* collections so far, all generations, PY */
	HS_REC_PY_GC_PAUSE,   /* total GC pause so far, all generations, nanoseconds, PY */
	HS_REC_METRIC_COUNT
} hs_rec_metric;

/** The metric's name as used in JSON and on the command line ("rss", "pss"...). Never NULL. */
HS_EXTERN(const char *) hs_rec_metric_name(hs_rec_metric m);
/** The metric of that name, or -1. */
HS_EXTERN(int) hs_rec_metric_from_name(const char *name);
/** 1 when the metric is a size in bytes (plot axes in human sizes). */
HS_EXTERN(int) hs_rec_metric_is_bytes(hs_rec_metric m);

/* ------------------------------------------------------------------ */
/* Model                                                               */

typedef struct hs_recording hs_recording;

/* How a process ended. */
typedef enum hs_rec_exit_how {
	HS_REC_RUNNING = 0,  /* still running when the recording stopped */
	HS_REC_EXITED = 1,   /* exit(code) */
	HS_REC_SIGNALED = 2, /* killed by `signal` */
	HS_REC_VANISHED = 3, /* gone, status unknown (reaped by its parent between two ticks
	                        with no proc connector to tell) */
} hs_rec_exit_how;

/* Where an exit status came from and what is known about an OOM kill
 * (flags in hs_rec_exit.flags and in the file). */
#define HS_REC_EXIT_CORE        0x01u /* dumped core */
#define HS_REC_EXIT_OOM_CGROUP  0x02u /* SIGKILL while its cgroup's oom_kill count rose */
#define HS_REC_EXIT_OOM_KERNEL  0x04u /* the kernel log names it as killed by the OOM killer */
#define HS_REC_EXIT_FROM_WAIT   0x08u /* status from waitpid: the recorder reaped it */
#define HS_REC_EXIT_FROM_CONNECTOR 0x10u /* status from the kernel's proc connector */
#define HS_REC_EXIT_FROM_PROC   0x20u /* status read from /proc/PID/stat of the zombie */
#define HS_REC_EXIT_FLAGS_KNOWN 0x3fu

typedef struct hs_rec_exit {
	hs_rec_exit_how how;
	int code;         /* HS_REC_EXITED: the exit code */
	int signal;       /* HS_REC_SIGNALED: the signal number */
	unsigned flags;   /* HS_REC_EXIT_* */
} hs_rec_exit;

/* Process flags (hs_rec_process.flags and the file). */
#define HS_REC_PROC_ROOT        0x01u /* the command run, or the --pid process */
#define HS_REC_PROC_FROM_BIRTH  0x02u /* seen from its first tick (start is exact) */
#define HS_REC_PROC_PYTHON      0x04u /* a Python interpreter */
#define HS_REC_PROC_AGENT       0x08u /* the heapsnap agent answered: Python figures present */
#define HS_REC_PROC_FLAGS_KNOWN 0x0fu

typedef struct hs_rec_process {
	size_t index;        /* position in the recording, 0 = first seen */
	int pid, ppid;
	ptrdiff_t parent;    /* index of the parent process in the recording, or -1 */
	unsigned flags;      /* HS_REC_PROC_* (AGENT set once the agent answered) */
	const char *exe;     /* executable path ("" if unknown) */
	size_t argc;
	const char *const *argv; /* the command line (the last exec's) */
	const char *command; /* argv joined by spaces, control characters as spaces: for display */
	double start;        /* seconds; negative when it started before the recording */
	double end;          /* seconds: exit time, or the recording's end while running */
	hs_rec_exit exit;
	size_t execs;        /* how many times it called exec while recorded */
} hs_rec_process;

/* One series' values for one metric: borrowed from the recording, valid as
 * long as it. `t` ascends. */
typedef struct hs_rec_series {
	size_t count;
	const double *t;   /* seconds from the start */
	const int64_t *v;  /* the metric's values (-1 = not available at that sample) */
} hs_rec_series;

typedef struct hs_rec_type_row {
	const char *name;  /* "module.QualName" as in snapshots */
	int64_t count;
	int64_t bytes;
} hs_rec_type_row;

/* Top Python types of one process at one instant (the agent's TYPES N). */
typedef struct hs_rec_types {
	double t;
	int64_t objects, bytes;   /* totals over all types */
	double seconds;           /* what the request cost the target */
	size_t count;
	const hs_rec_type_row *rows; /* by bytes, largest first */
} hs_rec_types;

typedef struct hs_rec_marker {
	double t;
	size_t process;    /* index */
	const char *label;
} hs_rec_marker;

typedef enum hs_rec_snapshot_trigger {
	HS_REC_SNAP_SCHEDULE = 1, /* --snapshot-every */
	HS_REC_SNAP_GROWTH = 2,   /* --snapshot-on-growth */
	HS_REC_SNAP_END = 3,      /* at the end of the recording */
} hs_rec_snapshot_trigger;

typedef struct hs_rec_snapshot {
	double t;
	size_t process;
	hs_rec_snapshot_trigger trigger;
	const char *file;   /* as recorded: a name relative to the recording's directory */
	const char *path;   /* resolved against the recording's directory */
	int64_t objects, bytes; /* -1 if unknown */
	double pause;       /* seconds the target was paused */
	const char *error;  /* NULL, or why the snapshot failed (then no file) */
} hs_rec_snapshot;

typedef struct hs_rec_note {
	double t;
	ptrdiff_t process;  /* index, or -1 for the whole recording */
	int warning;        /* 1 warning, 0 information */
	const char *text;
} hs_rec_note;

typedef enum hs_rec_stop {
	HS_REC_STOP_UNKNOWN = 0, /* the file ended abruptly: the recorder did not finish */
	HS_REC_STOP_EXITED = 1,  /* the command (or --pid process) and its tree ended */
	HS_REC_STOP_DURATION = 2,/* --duration reached */
	HS_REC_STOP_SIGNAL = 3,  /* SIGINT/SIGTERM/SIGHUP to the recorder */
	HS_REC_STOP_ERROR = 4,   /* the recorder stopped on an error (see the notes) */
} hs_rec_stop;

typedef struct hs_rec_info {
	double wall_start;      /* Unix time of t = 0 */
	double duration;        /* seconds covered by the file */
	double interval;        /* the sampling interval asked for, seconds */
	int complete;           /* 1: the recorder closed the file cleanly */
	hs_rec_stop stop;
	int root_status;        /* wait status of the root process (as waitpid), -1 unknown */
	unsigned flags;         /* HS_REC_FLAG_* */
	size_t chunks;
	uint64_t file_bytes;    /* bytes read (the valid prefix) */
	uint64_t samples;       /* samples of every series, all processes */
	double sampler_cpu;     /* CPU seconds the recorder used, as it measured itself */
	const char *warning;    /* NULL, or e.g. "recording ended abruptly at 12.3 s" */
	const char *meta;       /* the META JSON text (NUL-terminated) */
	const char *meta_end;   /* the META_END JSON text, or NULL */
} hs_rec_info;

#define HS_REC_FLAG_CHILDREN 0x01u  /* descendants were followed */
#define HS_REC_FLAG_PID_MODE 0x02u  /* --pid: attached to a running process */
#define HS_REC_FLAG_AGENT    0x04u  /* Python figures were asked for */
#define HS_REC_FLAGS_KNOWN   0x07u

typedef struct hs_recording_options {
	unsigned version;
	int strict;   /* 1: a file that ends inside a chunk is an error, not a warning */
} hs_recording_options;

#define HS_RECORDING_OPTIONS_VERSION 1
#define HS_RECORDING_OPTIONS_INIT { HS_RECORDING_OPTIONS_VERSION, 0 }

/**
 * Load a recording. A file that ends at a chunk boundary or inside a chunk
 * (the recorder was killed) loads up to its last complete chunk, with
 * info->warning set; garbage, a wrong version, or damage before the last
 * chunk is an error naming the file and the problem.
 * @return 0 or a negative hs_error_code (HS_EIO, HS_EFORMAT, HS_EVERSION,
 *         HS_ELIMIT, HS_ENOMEM); *out belongs to the caller.
 */
HS_EXTERN(int) hs_recording_open(hs_recording **out, const char *path,
                                 const hs_recording_options *opts);
/** Same, from memory (fuzzer, tests); `name` is used in messages and to
 *  resolve snapshot paths (its directory). */
HS_EXTERN(int) hs_recording_open_memory(hs_recording **out, const void *data, size_t len,
                                        const char *name, const hs_recording_options *opts);
HS_EXTERN(void) hs_recording_free(hs_recording *r);

/**
 * What kind of heapsnap file `path` is, from its header only.
 * @return HS_FILE_SNAPSHOT (1), HS_FILE_RECORDING (2), 0 for a file that is
 *         not a heapsnap file (or too short to tell), or HS_EIO (message set)
 *         when it cannot be opened.
 */
HS_EXTERN(int) hs_file_kind_of(const char *path);

/** Borrowed; never NULL. */
HS_EXTERN(const hs_rec_info *) hs_recording_info(const hs_recording *r);
/** The path or name the recording was opened with. */
HS_EXTERN(const char *) hs_recording_name(const hs_recording *r);

HS_EXTERN(size_t) hs_recording_process_count(const hs_recording *r);
/** Borrowed; NULL when i is out of range. */
HS_EXTERN(const hs_rec_process *) hs_recording_process(const hs_recording *r, size_t i);
/** The root process (the command or --pid), or NULL for an empty recording. */
HS_EXTERN(const hs_rec_process *) hs_recording_root(const hs_recording *r);

HS_EXTERN(size_t) hs_recording_marker_count(const hs_recording *r);
HS_EXTERN(const hs_rec_marker *) hs_recording_marker(const hs_recording *r, size_t i);
HS_EXTERN(size_t) hs_recording_snapshot_count(const hs_recording *r);
HS_EXTERN(const hs_rec_snapshot *) hs_recording_snapshot(const hs_recording *r, size_t i);
HS_EXTERN(size_t) hs_recording_note_count(const hs_recording *r);
HS_EXTERN(const hs_rec_note *) hs_recording_note(const hs_recording *r, size_t i);

/**
 * The series of metric `m` for process `p` (borrowed arrays; count 0 when
 * the process has no such samples). HS_REC_PSS_EST and HS_REC_USS_EST are
 * on the MEM series' timestamps: between two smaps_rollup samples PSS is
 * estimated as PSS_anon at the previous sample plus the anonymous RSS grown
 * since (new anonymous pages are private), plus PSS_file and PSS_shmem
 * scaled by the file/shmem resident change; USS likewise. Before the first
 * smaps sample, the first one is used.
 * @return 0, or HS_EINVAL for an unknown metric.
 */
HS_EXTERN(int) hs_rec_process_series(hs_rec_series *out, const hs_rec_process *p,
                                     hs_rec_metric m);
/** Raw access to a series kind: its sample count and timestamps (borrowed). */
HS_EXTERN(size_t) hs_rec_process_samples(const hs_rec_process *p, hs_rec_series_kind kind,
                                         const double **t);
/**
 * The value of `m` for `p` at time t: the last sample at or before t (the
 * first sample when t precedes it, while the process is alive).
 * @return 0, HS_ENOTFOUND when p has no sample of `m` or was not alive at t.
 */
HS_EXTERN(int) hs_rec_process_value_at(int64_t *out, const hs_rec_process *p,
                                       hs_rec_metric m, double t);
/**
 * A column of a series kind as HS_REC_*_COLUMNS lists them, in model units:
 * sizes in bytes (the file stores KiB), the other columns as in the file
 * (counts, milliseconds, microseconds); column 0 is the time in
 * microseconds. *out is borrowed; NULL when the process has no samples of
 * that kind.
 * @return the sample count (0 also for a column the file did not have).
 */
HS_EXTERN(size_t) hs_rec_process_column(const int64_t **out, const hs_rec_process *p,
                                        hs_rec_series_kind kind, size_t column);
/** Samples per second achieved by a series (count-1 over its time span), 0 if < 2 samples. */
HS_EXTERN(double) hs_rec_process_rate(const hs_rec_process *p, hs_rec_series_kind kind);

HS_EXTERN(size_t) hs_rec_process_types_count(const hs_rec_process *p);
HS_EXTERN(const hs_rec_types *) hs_rec_process_types(const hs_rec_process *p, size_t i);

/* ------------------------------------------------------------------ */
/* Writer                                                              */

typedef struct hs_rec_writer hs_rec_writer;

typedef struct hs_rec_writer_options {
	unsigned version;
	int compression_level; /* zstd level; default 3 */
	double wall_start;     /* Unix time of t = 0 */
	uint32_t interval_us;  /* the sampling interval */
	unsigned flags;        /* HS_REC_FLAG_* */
	int sync;              /* fdatasync after every chunk (default 0: a killed recorder
	                          loses nothing once write() returned; only a power cut can) */
} hs_rec_writer_options;

#define HS_REC_WRITER_OPTIONS_VERSION 1
#define HS_REC_WRITER_OPTIONS_INIT { HS_REC_WRITER_OPTIONS_VERSION, 3, 0.0, 10000, 0, 0 }

typedef struct hs_rec_proc_start {
	int pid, ppid;
	ptrdiff_t parent;      /* writer index of the parent, or -1 */
	int64_t t_us;          /* start time in microseconds from t = 0 (may be negative) */
	unsigned flags;        /* HS_REC_PROC_* */
	const char *exe;
	size_t argc;
	const char *const *argv;
} hs_rec_proc_start;

typedef struct hs_rec_write_stats {
	uint64_t chunks;
	uint64_t samples;      /* per-series samples written */
	uint64_t raw_bytes;    /* chunk payloads before compression */
	uint64_t file_bytes;
} hs_rec_write_stats;

/**
 * Start the recording `path`: a temporary file beside it (mode 0600,
 * created with O_EXCL|O_NOFOLLOW) with the header and the META section
 * (`meta_json`, a JSON object). The file is renamed over `path` when its
 * first chunk is whole, then chunks are appended in place: every complete
 * chunk survives a crash, and `path` never holds an unreadable file. An
 * existing `path` that is a symbolic link, not a regular file, or another
 * user's file is refused (HS_EIO).
 * @return 0 or a negative hs_error_code; *out belongs to the caller.
 */
HS_EXTERN(int) hs_rec_writer_open(hs_rec_writer **out, const char *path, const char *meta_json,
                                  const hs_rec_writer_options *opts);
/** Declare a process; *out receives its index (0, 1, 2... in call order). */
HS_EXTERN(int) hs_rec_writer_process(hs_rec_writer *w, size_t *out, const hs_rec_proc_start *p);
/** The process called exec: its new command line. */
HS_EXTERN(int) hs_rec_writer_exec(hs_rec_writer *w, size_t proc, int64_t t_us, const char *exe,
                                  size_t argc, const char *const *argv);
/** Set the process flags that became known later (HS_REC_PROC_PYTHON, _AGENT). */
HS_EXTERN(int) hs_rec_writer_proc_flags(hs_rec_writer *w, size_t proc, int64_t t_us,
                                        unsigned flags);
/** The process ended at t_us. */
HS_EXTERN(int) hs_rec_writer_exit(hs_rec_writer *w, size_t proc, int64_t t_us,
                                  const hs_rec_exit *e);
/**
 * One sample of a series: `values[0]` is the time in microseconds from
 * t = 0, the others the kind's columns in file units (KiB, counts, ms, us;
 * see HS_REC_*_COLUMNS); `count` must be the kind's column count.
 */
HS_EXTERN(int) hs_rec_writer_sample(hs_rec_writer *w, size_t proc, hs_rec_series_kind kind,
                                    const int64_t *values, size_t count);
HS_EXTERN(int) hs_rec_writer_types(hs_rec_writer *w, size_t proc, int64_t t_us, int64_t objects,
                                   int64_t bytes, int64_t cost_us, const hs_rec_type_row *rows,
                                   size_t count);
HS_EXTERN(int) hs_rec_writer_mark(hs_rec_writer *w, size_t proc, int64_t t_us, const char *label);
/** A snapshot taken (file relative to the recording's directory) or failed (error). */
HS_EXTERN(int) hs_rec_writer_snapshot(hs_rec_writer *w, size_t proc, int64_t t_us,
                                      hs_rec_snapshot_trigger trigger, const char *file,
                                      int64_t objects, int64_t bytes, int64_t pause_us,
                                      const char *error);
/** A note; proc is an index or -1 for the whole recording. */
HS_EXTERN(int) hs_rec_writer_note(hs_rec_writer *w, ptrdiff_t proc, int64_t t_us, int warning,
                                  const char *text);
/** CPU microseconds the recorder itself used since its last report (summed by readers). */
HS_EXTERN(int) hs_rec_writer_sampler_cpu(hs_rec_writer *w, int64_t cpu_us);
/**
 * Write everything buffered as one chunk covering time up to t_end_us
 * (no-op when nothing is buffered and the time did not advance).
 */
HS_EXTERN(int) hs_rec_writer_flush(hs_rec_writer *w, int64_t t_end_us);
/**
 * Final chunk (with the end record), META_END (`meta_end_json`, may be
 * NULL), index and footer. `root_status` is the root's wait status or -1.
 * @param stats optional, filled on success.
 */
HS_EXTERN(int) hs_rec_writer_close(hs_rec_writer *w, int64_t t_end_us, hs_rec_stop stop,
                                   int root_status, const char *meta_end_json,
                                   hs_rec_write_stats *stats);
/** Bytes in the file so far. */
HS_EXTERN(uint64_t) hs_rec_writer_bytes(const hs_rec_writer *w);
/**
 * Whether the recording is under its final name yet: it is written as a
 * temporary file beside it and renamed into place once its first chunk is
 * whole (formats/recording-v1.md). 0 before, and when `w` is NULL.
 */
HS_EXTERN(int) hs_rec_writer_in_place(const hs_rec_writer *w);
/** Free; a writer not closed leaves the file as it is (readable up to its last chunk). */
HS_EXTERN(void) hs_rec_writer_free(hs_rec_writer *w);

/* ------------------------------------------------------------------ */
/* Allocation sites (`record --lines`, blocks TRACK, SITES, SITE_DELTA,  */
/* PEAK; formats/recording-v1.md "Allocation tracking")                */

#define HS_REC_TRACK_EXACT      0x01u /* every allocation recorded (else sampled) */
#define HS_REC_TRACK_NATIVE     0x02u /* the malloc family (LD_PRELOAD interposer) too */
#define HS_REC_TRACK_ALL_FRAMES 0x04u /* library frames kept: no folding into user lines */
#define HS_REC_TRACK_SEEDED     0x08u /* the sampler's seed is fixed */
#define HS_REC_TRACK_FROM_NOW   0x10u /* started in a running process (--pid): growth from then */

/** Sampling settings of one tracked process. */
typedef struct hs_rec_track_settings {
	unsigned flags;          /* HS_REC_TRACK_* */
	int64_t sample_bytes;    /* mean bytes between samples; 0 when exact */
	uint64_t seed;           /* when HS_REC_TRACK_SEEDED */
	const char *peak_basis;  /* what the running total counts ("requested", "footprint") */
} hs_rec_track_settings;

#define HS_REC_LOC_LIBRARY 0x01u /* standard library, site-/dist-packages, frozen, heapsnap */

/** A source location: one line of one function. */
typedef struct hs_rec_site_loc {
	uint32_t id;
	const char *file;        /* NULL: the id was never defined */
	const char *function;    /* qualified name */
	int32_t line, first_line;
	unsigned flags;          /* HS_REC_LOC_* */
} hs_rec_site_loc;

/** Stack kinds (as the tracker's). */
enum { HS_REC_STACK_PYTHON = 0, HS_REC_STACK_NATIVE = 1, HS_REC_STACK_MMAP = 2, HS_REC_STACK_NOGIL = 3 };

/** An allocation stack: locations innermost first. */
typedef struct hs_rec_site_stack {
	uint32_t id;
	int defined;             /* 0: the id was never defined */
	unsigned kind;           /* HS_REC_STACK_* */
	int64_t tid;             /* native thread id, -1 unknown */
	const char *thread;      /* thread name, or NULL */
	int truncated;           /* deeper than the 64 frames kept */
	size_t n;
	const uint32_t *locs;    /* location ids */
} hs_rec_site_stack;

/** Figures of one stack (estimates when sampled). */
typedef struct hs_rec_site_fig {
	uint32_t stack;
	int64_t alloc_n, alloc_b; /* allocated (SITE_DELTA: the change) */
	int64_t live_n, live_b;   /* live (SITE_DELTA: the change; PEAK: at the peak) */
} hs_rec_site_fig;

/** A process's allocation sites, as loaded (all arrays indexed by id). */
typedef struct hs_rec_track {
	hs_rec_track_settings settings;
	double start;            /* seconds: tracking started */
	double last;             /* seconds: the last figures */
	size_t nlocs;
	const hs_rec_site_loc *locs;
	size_t nstacks;
	const hs_rec_site_stack *stacks;
	const hs_rec_site_fig *figs;      /* per stack: cumulative allocated, live at the end */
	int64_t peak_bytes;      /* the running total's high-water mark (-1 none seen) */
	double peak_t;           /* seconds: when the recorder saw it (within its poll interval) */
	const hs_rec_site_fig *peak_figs; /* per stack: live at the peak (alloc_* 0) */
	size_t deltas;           /* SITE_DELTA blocks read */
} hs_rec_track;

/** The process's allocation sites, or NULL when it was not tracked. */
HS_EXTERN(const hs_rec_track *) hs_rec_process_track(const hs_rec_process *p);

/** Writer: tracking started in process `proc`. */
HS_EXTERN(int) hs_rec_writer_track(hs_rec_writer *w, size_t proc, int64_t t_us,
                                   const hs_rec_track_settings *s);
/** Writer: new location and stack definitions (ids stable within the process). */
HS_EXTERN(int) hs_rec_writer_sites(hs_rec_writer *w, size_t proc, const hs_rec_site_loc *locs,
                                   size_t nlocs, const hs_rec_site_stack *stacks, size_t nstacks);
/** Writer: per-stack changes since the previous SITE_DELTA of the process. */
HS_EXTERN(int) hs_rec_writer_site_delta(hs_rec_writer *w, size_t proc, int64_t t_us,
                                        const hs_rec_site_fig *rows, size_t n);
/** Writer: a new high-water mark: the total and the live figures per stack then. */
HS_EXTERN(int) hs_rec_writer_peak(hs_rec_writer *w, size_t proc, int64_t t_us, int64_t peak_bytes,
                                  const hs_rec_site_fig *rows, size_t n);

#endif
