/*
 * heapsnap/attach.h: snapshots of a running CPython process that never
 * imported heapsnap (`heapsnap dump <pid>`), Linux x86-64 only.
 *
 * The injector (src/attach/) stops the target's main thread with ptrace,
 * finds the interpreter's exported functions in the ELF .dynsym of the
 * mapped interpreter, waits for a safe point, loads the hook build for the
 * target's Python minor version with a remote dlopen() and calls
 * heapsnap_attach_dump() in it; then it restores every register and
 * detaches. The design is described at the top of src/attach/attach.c.
 * A process that runs heapsnap's agent is asked through its socket instead
 * (heapsnap/agent.h).
 */
#ifndef HEAPSNAP_ATTACH_H
#define HEAPSNAP_ATTACH_H

#include "common.h"

/*
 * The block shared between the injector and the hook, written by the
 * injector into a page it maps in the target, read back after the call.
 * Fixed layout: the hook checks `magic` and `size` before using it.
 */
#define HS_ATTACH_MAGIC 0x74617368u /* "hsat" */
#define HS_ATTACH_PATH_MAX 4096
#define HS_ATTACH_MESSAGE_MAX 1024

enum {
	HS_ATTACH_STATE_NEW = 0,     /* not started */
	HS_ATTACH_STATE_RUNNING = 1, /* the hook holds the GIL and dumps */
	HS_ATTACH_STATE_DONE = 2,    /* the file is written (renamed in place) */
	HS_ATTACH_STATE_FAILED = 3,  /* see message, errnum */
};

typedef struct hs_attach_shared {
	uint32_t magic;
	uint32_t size;     /* sizeof(hs_attach_shared) */
	int32_t cancel;    /* set by the injector when it gives up: the queued
	                      safe-point stub then returns without trapping */
	int32_t state;     /* HS_ATTACH_STATE_* */
	int32_t errnum;    /* errno of an I/O failure, else 0 */
	int32_t flags;     /* HS_ATTACH_FLAG_* */
	uint64_t objects, edges, bytes;
	double pause_seconds; /* GIL held by the dump */
	double seconds;       /* the whole dump() call */
	double fork_timeout;  /* fork mode: the child's watchdog, seconds */
	int32_t child_pid;    /* fork mode: the child writing the file */
	int32_t reserved;
	char path[HS_ATTACH_PATH_MAX];       /* absolute, NUL-terminated */
	char message[HS_ATTACH_MESSAGE_MAX]; /* on failure */
} hs_attach_shared;

/* hs_attach_shared.flags */
#define HS_ATTACH_FLAG_FORK 1 /* dump(path, fork=True): the target only forks */

/*
 * Fork mode: the forked child cannot write into the shared block (its copy
 * is private), so it writes its outcome into "<path>" HS_ATTACH_STATUS_SUFFIX
 * as "key value" lines (pid first, then ok, objects, edges, bytes,
 * walk_seconds, child_private_dirty_bytes, or errno and message), created
 * like every output (util/file.h: 0600, never through a link) and renamed
 * into place when complete; the injector waits for the one whose pid is its
 * child's, reads it and removes it (a stale one is never taken for it).
 */
#define HS_ATTACH_STATUS_SUFFIX ".hsfork-status"

/** How the safe point was reached (hs_attach_result.mode). */
typedef enum hs_attach_mode {
	HS_ATTACH_MODE_PENDING_CALL = 1, /* Py_AddPendingCall: between bytecodes */
	HS_ATTACH_MODE_BLOCKED = 2,      /* main thread blocked in a system call
	                                    with the GIL released: GIL taken there */
	HS_ATTACH_MODE_AGENT = 3,        /* the process's agent wrote it (no ptrace) */
} hs_attach_mode;

/** hs_attach_options.agent: whether to use the process's agent
 *  (heapsnap.agent, heapsnap/agent.h) instead of injecting. */
typedef enum hs_attach_agent {
	HS_ATTACH_AGENT_AUTO = 0,  /* the agent when the process has one, else inject */
	HS_ATTACH_AGENT_NEVER = 1, /* always inject with ptrace */
	HS_ATTACH_AGENT_ONLY = 2,  /* the agent, or fail (HS_ENOTFOUND) when there is none */
} hs_attach_agent;

typedef struct hs_attach_options {
	unsigned version;
	double timeout;        /* seconds to reach a safe point; <= 0: 10 */
	const char *hook_dir;  /* directory holding _heapsnap.cpython-3XY-*.so */
	int fork;              /* the target forks; a child walks and writes */
	double fork_timeout;   /* fork mode: the child's watchdog; <= 0: 300 */
	int agent;             /* hs_attach_agent; 0 (AUTO) by default */
} hs_attach_options;

#define HS_ATTACH_OPTIONS_VERSION 1
#define HS_ATTACH_OPTIONS_INIT { HS_ATTACH_OPTIONS_VERSION, 10.0, NULL, 0, 300.0, HS_ATTACH_AGENT_AUTO }

typedef struct hs_attach_result {
	int python_major, python_minor;
	uint32_t python_hexversion;  /* 0 when only the minor is known (< 3.11) */
	hs_attach_mode mode;
	uint64_t objects, edges, bytes;
	double pause_seconds;        /* the target's GIL pause for the dump */
	double stopped_seconds;      /* the main thread held in ptrace stops */
	double seconds;              /* attach to detach */
	char hook[HS_ATTACH_PATH_MAX]; /* the hook build loaded */
	/* fork mode (pause_seconds is then the target's pause: the fork) */
	int child_pid;
	double child_seconds;          /* the child's walk and write */
	long long child_private_dirty; /* bytes, -1 unknown */
	/* through the agent (mode HS_ATTACH_MODE_AGENT): no ptrace, no hook
	 * loaded (hook is ""), stopped_seconds 0. On failure, 1 when an agent
	 * answered (or was found) and failed: nothing was injected then. */
	int via_agent;
	char agent_socket[HS_ATTACH_PATH_MAX]; /* the socket used, "" otherwise */
} hs_attach_result;

/**
 * Take a snapshot of the running Python process `pid` into `path` (made
 * absolute here; the target writes it, atomically, with its own
 * credentials). When the process runs heapsnap's agent (and opts->agent is
 * not HS_ATTACH_AGENT_NEVER) the agent is asked over its socket (DUMP, in
 * fork mode too): no ptrace; out->via_agent is then 1. An agent that
 * exists but fails (refuses, does not answer within the timeout, cannot
 * write) is an error, not a reason to inject: HS_ATTACH_AGENT_NEVER does
 * that. Otherwise the hook is injected: whatever happens to heapsnap
 * meanwhile, even SIGKILL, the target continues where it was (see
 * src/attach/inject.c); when no safe point is reached within the
 * timeout nothing is written, and the safe-point request left queued in the
 * target is cancelled (it returns at once when it runs). With opts->fork
 * the target forks at the safe point and resumes; the call returns when the
 * child has written the file (or failed, or was killed by its watchdog).
 * @return 0 or a negative hs_error_code: HS_ENOTFOUND (no such process, no
 *         hook build for its version), HS_EINVAL (not a Python process,
 *         bad argument), HS_EVERSION (unsupported Python), HS_EIO
 *         (permission, ptrace, the target died, the dump failed, the
 *         agent failed). With HS_ATTACH_AGENT_ONLY, HS_ENOTFOUND also
 *         when the process has no agent; HS_EUSER when heapsnap caught a
 *         signal (hs_attach_catch_signals) and let go of the target.
 *         `out` may be NULL; the hook directory may be NULL with
 *         HS_ATTACH_AGENT_ONLY.
 */
HS_EXTERN(int) hs_attach_dump(hs_attach_result *out, int pid, const char *path,
                              const hs_attach_options *opts);

/**
 * Catch SIGTERM, SIGINT, SIGHUP, SIGPIPE and SIGQUIT (those not ignored):
 * a dump in progress then lets go of its target (which continues where it
 * was), removes what it started to write, and returns HS_EUSER; the caller
 * exits with 128 + hs_attach_interrupted().
 */
HS_EXTERN(void) hs_attach_catch_signals(void);
/** The signal caught since hs_attach_catch_signals(), or 0. */
HS_EXTERN(int) hs_attach_interrupted(void);

#endif
