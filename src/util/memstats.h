/*
 * util/memstats.h: parsers for the process memory figures behind the META
 * `memory` object (formats/snapshot-v1.md "memory"): the text CPython's
 * _PyObject_DebugMallocStats prints, and /proc/PID/smaps.
 *
 * Pure C over text, no Python and no /proc access of their own, so that the
 * unit tests run them on canned text (tests/unit/test_memstats.c) and the
 * hook (src/hook/memory.c) feeds them what it reads.
 */
#ifndef HS_UTIL_MEMSTATS_H
#define HS_UTIL_MEMSTATS_H

#include <stddef.h>
#include <stdint.h>
#include "heapsnap/common.h"

/* pymalloc's arenas, from the "Total" block of _PyObject_DebugMallocStats.
 * Every figure is -1 when its line was not found. arena_bytes ==
 * allocated_bytes + available_bytes + free_pool_bytes + pool_overhead_bytes
 * (pymalloc prints that identity as its "Total" line). */
typedef struct hs_pymalloc_stats {
	int64_t arenas;              /* "# arenas allocated current" */
	int64_t arena_bytes;         /* "N arenas * S bytes/arena = T": T */
	int64_t allocated_bytes;     /* "# bytes in allocated blocks" */
	int64_t available_bytes;     /* "# bytes in available blocks": free blocks of used pools */
	int64_t free_pool_bytes;     /* "N unused pools * S bytes = T": T */
	int64_t pool_overhead_bytes; /* pool headers + quantization + arena alignment */
} hs_pymalloc_stats;

/** Parse the text of _PyObject_DebugMallocStats (3.8-3.13 layouts).
 *  @return 0 when the arena figures were found, -1 otherwise (the fields
 *  found are still filled). */
HS_EXTERN(int) hs_memstats_pymalloc_parse(hs_pymalloc_stats *out, const char *text);

/* Resident bytes of one file, summed over its mappings. */
typedef struct hs_smaps_file {
	char *path; /* owned */
	uint64_t rss;
} hs_smaps_file;

/* Mapping kinds, by path and shape (see memstats.c). */
enum {
	HS_MAP_FILE = 0,   /* a path: the program, shared libraries, mapped files */
	HS_MAP_ANON,       /* anonymous: malloc, pymalloc arenas, other allocators */
	HS_MAP_HEAP,       /* [heap]: the brk heap (glibc's main malloc arena) */
	HS_MAP_STACK,      /* [stack]: the main thread's stack */
	HS_MAP_THREAD_STACK, /* anonymous rw directly above a PROT_NONE guard */
	HS_MAP_SPECIAL,    /* [vdso], [vvar], ... */
	HS_MAP_KINDS
};

/* /proc/PID/smaps, fed one line at a time. */
typedef struct hs_smaps {
	uint64_t rss;               /* sum of every mapping's Rss */
	uint64_t kind_rss[HS_MAP_KINDS];
	uint64_t mappings;
	uint64_t thread_stacks;     /* mappings counted as thread stacks */
	uint64_t file_anon;         /* "Anonymous" of file mappings: their copied-on-write pages */
	hs_smaps_file *files;       /* after hs_smaps_finish: by rss desc, then path */
	size_t file_count, file_cap;
	/* parser state */
	int cur_kind;               /* kind of the mapping whose fields come next, -1 none */
	int cur_seen;               /* 1: its Rss was added, 2: its Anonymous */
	size_t cur_file;            /* its files[] slot (HS_MAP_FILE) */
	uint64_t prev_end;          /* end of the previous mapping */
	uint64_t prev_size;
	int prev_guard;             /* the previous mapping was anonymous PROT_NONE */
	int oom;
} hs_smaps;

HS_EXTERN(void) hs_smaps_init(hs_smaps *m);
/** Feed one line of smaps (with or without its newline).
 *  @return 0, or HS_ENOMEM (the figures stay usable, the file list may lack
 *  entries). */
HS_EXTERN(int) hs_smaps_feed(hs_smaps *m, const char *line);
/** Sort the file list, biggest first. */
HS_EXTERN(void) hs_smaps_finish(hs_smaps *m);
HS_EXTERN(void) hs_smaps_release(hs_smaps *m);

#endif
