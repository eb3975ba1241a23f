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
 *        mode, in the parent before fork()): only the allocators' figures,
 *        which cost microseconds; the forked child adds the mappings with
 *        hs_hook__memory_end_json, off the parent's pause.
 */
void hs_hook__memory_json(hs_json *j, const char *pymalloc_text, int with_maps);

/**
 * Fork mode, in the child, for META_END: a "memory" member with the
 * parent's /proc/PPID/smaps figures (rss, maps, files), merged by readers
 * over META's "memory". Writes nothing unless this child was forked by the
 * process whose META left the maps out, and that process is still its
 * parent.
 */
void hs_hook__memory_end_json(hs_json *j);

#endif
