/*
 * hook/stats_internal.h: what the agent's C helpers share inside the hook:
 * cheap process and interpreter figures (meta.c, stats.c), the GC lists
 * (walk.c, the one file reading interpreter internals) and the signal
 * trigger (trigger.c). The Python side is heapsnap/agent.py.
 */
#ifndef HS_HOOK_STATS_INTERNAL_H
#define HS_HOOK_STATS_INTERNAL_H

#include "hook_internal.h"

/* ------------------------------------------------------------------ */
/* walk.c                                                              */

/*
 * Call `fn` on every object of the GC generation lists 0..2, then of the
 * permanent generation (generation 3), in list order. GIL held, no
 * collection running (hs_hook__gc_collecting() == 0), and `fn` must not
 * create or free GC objects. Stops at the first non-zero return of `fn`.
 * @return 0, or what `fn` returned.
 */
int hs_hook__gc_foreach(int (*fn)(PyObject *op, int generation, void *arg), void *arg);

/*
 * Call `fn` on the frames of every thread as a dump roots them: the frame
 * objects before 3.11 (a running frame is not on the GC lists), what each
 * frame holds from 3.11 (locals, cells, the function, the code, f_locals,
 * the frame object: a running frame is no object there). Same rules as
 * above. @return 0, or what `fn` returned.
 */
int hs_hook__frames_foreach(int (*fn)(PyObject *op, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* meta.c: /proc/self and pymalloc figures, -1 where unknown.          */

typedef struct hs_proc_figures {
	long long rss, vms, swap;    /* /proc/self/status VmRSS, VmSize, VmSwap */
	long long threads;           /* /proc/self/status Threads (OS threads) */
	long long uss, pss;          /* smaps_rollup: Private_Clean + Private_Dirty, Pss */
	long long swap_rollup;       /* smaps_rollup Swap */
} hs_proc_figures;

/* Read /proc/self/status, and /proc/self/smaps_rollup when `smaps` (its
 * cost grows with the RSS: about 20 ms per GiB). */
void hs_hook__proc_read(hs_proc_figures *out, int smaps);

typedef struct hs_pymalloc_figures {
	long long arenas_allocated;       /* "# arenas allocated current" */
	long long arenas_allocated_total; /* "# arenas allocated total" (ever) */
	long long arenas_reclaimed;
	long long arenas_highwater;
	long long bytes_in_use;           /* "# bytes in allocated blocks" */
	long long bytes_available;        /* "# bytes in available blocks" */
	long long bytes_in_arenas;        /* the first "Total" line */
	long long blocks_in_use;          /* sum of the size classes' "blocks in use" */
} hs_pymalloc_figures;

/* pymalloc's statistics (_PyObject_DebugMallocStats into memory; it walks
 * the arenas' pool headers, not the blocks). GIL held. All -1 when pymalloc
 * is not in use (PYTHONMALLOC=malloc). @return 0, or -1 when nothing was
 * printed or out of memory (figures -1, no exception set). */
int hs_hook__pymalloc_read(hs_pymalloc_figures *out);

/* ------------------------------------------------------------------ */
/* stats.c and trigger.c: functions of heapsnap._heapsnap (module.c's  */
/* method table).                                                      */

extern const char hs_hook__stats_doc[];
PyObject *hs_hook__stats(PyObject *self, PyObject *args, PyObject *kwargs);
extern const char hs_hook__types_doc[];
PyObject *hs_hook__types(PyObject *self, PyObject *args, PyObject *kwargs);

extern const char hs_hook__signal_install_doc[];
PyObject *hs_hook__signal_install(PyObject *self, PyObject *args);
extern const char hs_hook__signal_set_fd_doc[];
PyObject *hs_hook__signal_set_fd(PyObject *self, PyObject *args);
extern const char hs_hook__signal_restore_doc[];
PyObject *hs_hook__signal_restore(PyObject *self, PyObject *args);

#endif
