/*
 * hook/track_export.h: allocation sites in snapshots (track_export.c).
 *
 * While the tracker runs, dump() stores its live set (each tracked block:
 * address, stack, size, time) with the stacks and locations it names in the
 * SITES and ALLOCS sections (formats/snapshot-v1.md). Two steps:
 *   - hs_hook__sites_prepare, before the pause, may call Python: it asks the
 *     tracker whether it is recording and in which mode, and gathers the
 *     library prefixes (stdlib, site-packages, heapsnap) that mark frames to
 *     fold into the calling user line;
 *   - hs_hook__sites_write, after the walk, allocates no Python object and
 *     runs no Python code: it copies the live set under the tracker's lock
 *     and writes the sections. It writes nothing when tracking is off.
 */
#ifndef HS_HOOK_TRACK_EXPORT_H
#define HS_HOOK_TRACK_EXPORT_H

#include "hook_internal.h"

typedef struct hs_sites_ctx {
	int active;            /* tracking was on when the dump started */
	uint64_t sample_bytes; /* 0: exact mode */
	char **prefixes;       /* library path prefixes ("/usr/lib/python3.11/") */
	size_t nprefixes;
} hs_sites_ctx;

typedef struct hs_sites_result {
	uint64_t blocks;    /* tracked blocks written */
	uint64_t stacks, locations;
	double seconds;
} hs_sites_result;

/* Fill *ctx (zeroed when tracking is off). `module` is the extension
 * module (its _track_status function). Never fails: an error while asking
 * Python leaves the prefixes empty (only the built-in rules apply). */
void hs_hook__sites_prepare(hs_sites_ctx *ctx, PyObject *module);
/* Write SITES and ALLOCS sections when ctx->active; 0 or a negative
 * hs_error_code. The GIL is held; no Python object is allocated. */
int hs_hook__sites_write(hs_writer *w, const hs_sites_ctx *ctx, hs_sites_result *res);
void hs_hook__sites_release(hs_sites_ctx *ctx);

#endif
