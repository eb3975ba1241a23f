/*
 * record/record_internal.h: the pieces of `heapsnap record` (the sampler
 * lives in the heapsnap process and reads /proc; nothing runs in the target
 * except, for Python, the agent the target starts itself).
 */
#ifndef HS_RECORD_INTERNAL_H
#define HS_RECORD_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include "heapsnap/recording.h"

/* ------------------------------------------------------------------ */
/* procfs.c: /proc readers. Files read every tick stay open (pread from
 * offset 0 regenerates them); an open fd names one process instance, so a
 * reused pid is never confused with the process that had it. */

typedef struct hs_procfs {
	int pid;
	int statm_fd, status_fd, stat_fd, smaps_fd;
} hs_procfs;

typedef struct hs_proc_stat {
	char state;          /* 'R', 'S', 'Z'... */
	int ppid;
	int threads;
	uint64_t utime_ms, stime_ms;
	uint64_t starttime;  /* clock ticks since boot */
	int exit_code;       /* wait status of a zombie, -1 when not available */
} hs_proc_stat;

typedef struct hs_proc_smaps {
	int64_t pss, uss, pss_anon, pss_file, pss_shmem, swap, swap_pss; /* KiB, -1 absent */
} hs_proc_smaps;

/* Open the per-process files (statm at once, the others on first use).
 * @return 0, or -errno (ENOENT/ESRCH: the process is gone). */
int hs_procfs_open(hs_procfs *p, int pid);
void hs_procfs_close(hs_procfs *p);
/* RSS, VMS and resident shared (file + shmem) in KiB. */
int hs_procfs_statm(hs_procfs *p, int64_t *rss, int64_t *vms, int64_t *shared);
/* RssAnon, RssFile, RssShmem, VmSwap in KiB (-1 when absent). */
int hs_procfs_status(hs_procfs *p, int64_t *anon, int64_t *file, int64_t *shmem, int64_t *swap);
int hs_procfs_stat(hs_procfs *p, hs_proc_stat *out);
int hs_procfs_smaps(hs_procfs *p, hs_proc_smaps *out);
/* /proc/PID/stat without keeping it open. */
int hs_procfs_stat_pid(int pid, hs_proc_stat *out);
/* argv from /proc/PID/cmdline (*argv and its strings one allocation,
 * hs_free(*argv)); exe from /proc/PID/exe into buf ("" if unreadable). */
int hs_procfs_cmdline(int pid, char ***argv, size_t *argc);
void hs_procfs_exe(int pid, char *buf, size_t size);
/* Microseconds per clock tick (/proc/PID/stat times). */
int64_t hs_procfs_tick_us(void);

/* ------------------------------------------------------------------ */
/* discover.c: finding descendants. The kernel's proc connector (netlink,
 * needs CAP_NET_ADMIN in the initial namespaces) reports fork, exec and
 * exit as they happen; otherwise /proc is scanned for new pids. */

typedef enum hs_proc_event_kind {
	HS_PEV_FORK = 1, /* pid = child, ppid = parent */
	HS_PEV_EXEC = 2,
	HS_PEV_EXIT = 3, /* status = wait status */
} hs_proc_event_kind;

typedef struct hs_proc_event {
	hs_proc_event_kind kind;
	int pid, ppid;
	int status;
	uint64_t mono_ns;  /* CLOCK_MONOTONIC time of the event */
} hs_proc_event;

typedef struct hs_connector hs_connector;

/* @return 0 with *out set, or a negative code (message set) when the
 * connector is not available here. */
int hs_connector_open(hs_connector **out);
int hs_connector_fd(const hs_connector *c);
/* Read pending events (non-blocking); calls fn for each.
 * @return 0, or 1 when events were lost (the caller should rescan /proc). */
int hs_connector_drain(hs_connector *c, void (*fn)(const hs_proc_event *e, void *payload),
                       void *payload);
void hs_connector_free(hs_connector *c);

typedef struct hs_proc_scan hs_proc_scan;
int hs_proc_scan_new(hs_proc_scan **out);
/* Report every process not reported before (pid + instance) with what
 * /proc/PID/stat says of it: fn(pid, stat, payload). Cost: one getdents
 * pass over /proc and a stat read per new process. */
int hs_proc_scan_run(hs_proc_scan *s, void (*fn)(int pid, const hs_proc_stat *st, void *payload),
                     void *payload);
void hs_proc_scan_free(hs_proc_scan *s);

/* ------------------------------------------------------------------ */
/* oom.c: was a SIGKILL the OOM killer? */

typedef struct hs_oom_watch hs_oom_watch;
int hs_oom_watch_new(hs_oom_watch **out);
/* Remember the oom_kill count of pid's memory cgroup. */
void hs_oom_watch_track(hs_oom_watch *w, int pid);
/* After pid died of SIGKILL: HS_REC_EXIT_OOM_* flags that apply. */
unsigned hs_oom_watch_check(hs_oom_watch *w, int pid);
void hs_oom_watch_forget(hs_oom_watch *w, int pid);
void hs_oom_watch_free(hs_oom_watch *w);

/* ------------------------------------------------------------------ */
/* recorder.c: the recording loop (the CLI's `record`). */

typedef struct hs_record_options {
	const char *output;        /* the .hsrec path */
	const char *const *argv;   /* command to run, or NULL with pid */
	int pid;                   /* --pid */
	int64_t interval_us;
	int children;
	int64_t heap_every_us;     /* Python figures; 0 = off */
	int64_t snapshot_every_us; /* 0 = off */
	double snapshot_growth;    /* fraction (0.2 for 20%); 0 = off */
	int64_t duration_us;       /* 0 = until the target exits */
	int types;                 /* TYPES N */
	int agent;                 /* start/use the Python agent */
	const char *package_dir;   /* heapsnap Python package dir (for the bootstrap), or NULL */
	int quiet;
	/* --lines: allocation tracking in each Python process (agent TRACK commands) */
	int lines;
	const char *track_opts;    /* HEAPSNAP_TRACK / TRACK START options: "exact",
	                              "sample=N,seed=S,all_frames" */
	const char *preload;       /* --native: libheapsnap_preload.so for LD_PRELOAD, or NULL */
} hs_record_options;

typedef struct hs_record_result {
	int root_status;      /* wait status of the command, -1 if unknown / --pid */
	int exec_errno;       /* the command could not be started */
	hs_rec_stop stop;
	hs_rec_write_stats stats;
	double seconds;
	size_t processes;
	double sampler_cpu;   /* seconds */
} hs_record_result;

/* @return 0 or a negative hs_error_code (message set). */
int hs_record_run(const hs_record_options *o, hs_record_result *res);

#endif
