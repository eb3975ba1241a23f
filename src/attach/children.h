/*
 * attach/children.h: `heapsnap dump PID --children`: a process and its
 * Python descendants, one snapshot each, described by a snapshot set
 * (heapsnap/procset.h). Part of the CLI (like the rest of src/attach), not
 * of libheapsnap.
 */
#ifndef HS_ATTACH_CHILDREN_H
#define HS_ATTACH_CHILDREN_H

#include <sys/types.h>
#include "heapsnap/attach.h"
#include "heapsnap/procset.h"

/** One process of a tree, from /proc/PID/stat and cmdline. */
typedef struct hs_tree_proc {
	int pid, ppid;
	int depth;               /* 0 for the root */
	uint64_t start_ticks;    /* starttime: tells a reused pid apart */
	char state;              /* R S D Z T ... */
	char name[32];           /* comm */
} hs_tree_proc;

/**
 * The process `root` and all its descendants, found by following parent
 * links through every /proc/PID/stat (no /proc/PID/task/TID/children
 * needed): the root first, then depth first, children by pid.
 * @return 0, HS_ENOTFOUND (no process `root`), HS_EIO, HS_ENOMEM; *out
 *         is hs_free'd by the caller.
 */
int hs_attach_tree(hs_tree_proc **out, size_t *count, int root);

/**
 * Whether `pid` runs a CPython 3 interpreter heapsnap can attach to (its
 * exported API found in the mapped libpython or executable): 1 yes, 0 no
 * (`why` says what it is instead), or a negative hs_error_code when it
 * cannot be told (gone: HS_ENOTFOUND; `why` says so too).
 */
int hs_attach_is_python(int pid, char *why, size_t why_size);

/** Memory of `pid` from /proc/PID/smaps_rollup (RSS from status when that
 *  cannot be read); fields it could not read stay -1. @return 0 or HS_ENOTFOUND. */
int hs_attach_memory(hs_proc_memory *out, int pid);

typedef struct hs_tree_dump_options {
	unsigned version;
	const hs_attach_options *attach; /* applied to each process (timeout, fork...) */
	int jobs;                        /* processes dumped at once; <= 0: 1 */
	const char *dir;                 /* absolute directory of the snapshots */
	const char *stem;                /* snapshot names: <stem>-<pid>.hsnap */
	const char *created_by;          /* recorded in the index */
} hs_tree_dump_options;

#define HS_TREE_DUMP_OPTIONS_VERSION 1
#define HS_TREE_DUMP_OPTIONS_INIT { HS_TREE_DUMP_OPTIONS_VERSION, NULL, 1, NULL, NULL, NULL }

/**
 * Snapshot `root` and its Python descendants: list the tree, tell Python
 * processes from others (skipped, with the reason), measure every
 * process's memory in one pass (so PSS figures describe one moment and add
 * up), then dump each Python process with hs_attach_dump, `jobs` at a time,
 * each paused only for its own dump. A process that fails or exits
 * meanwhile is recorded with its error; the others go on.
 * @return 0 when the tree was walked (whatever each dump did: see the
 *         statuses), or a negative hs_error_code when `root` does not exist
 *         or nothing could be done. *out belongs to the caller
 *         (hs_procset_free); the index itself is not written here.
 */
int hs_attach_dump_tree(hs_procset **out, int root, const hs_tree_dump_options *opts);

#endif
