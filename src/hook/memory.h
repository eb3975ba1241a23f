/*
 * hook/memory.h: the META `memory` object (formats/snapshot-v1.md
 * "memory"): where the process's resident memory is, as the allocators and
 * the kernel see it. Read with libc calls and /proc only: no Python code,
 * nothing written into the heap; every figure that cannot be read is left
 * out.
 */
#ifndef HS_HOOK_MEMORY_H
#define HS_HOOK_MEMORY_H

#include "hook_internal.h"

/**
 * Write the "memory" member into the JSON object open in `j`.
 * @param pymalloc_text what _PyObject_DebugMallocStats printed, or NULL.
 * @param with_maps 1: also /proc/self/smaps (in-process dumps). 0 (fork
 *        mode, in the parent just before fork()): only the allocators'
 *        figures and RssFile, which cost microseconds; an atfork handler
 *        then reads the mappings in the child, off the parent's pause, for
 *        hs_hook__memory_end_json.
 */
void hs_hook__memory_json(hs_json *j, const char *pymalloc_text, int with_maps);

/**
 * Fork mode, in the child, for META_END: a "memory" member with the
 * mappings read when the child started (rss, maps_pid, maps, files),
 * merged by readers over META's "memory". Writes nothing when they were not
 * read (not a fork-mode child, or /proc unreadable).
 */
void hs_hook__memory_end_json(hs_json *j);

#endif
