/*
 * heapsnap/leaks.h: leak finding across three or more snapshots of one
 * process.
 *
 * A leak is growth that never stops. Given snapshots S0 .. Sn-1 (n >= 3,
 * oldest first), hs_leaks_find reports:
 *
 *  - leaking types: types whose reachable instances grow in count (by at
 *    least min_count) in every interval, or in bytes (by at least
 *    min_bytes) in every interval. A type whose count goes up and down
 *    (churn), or whose instances are replaced at a steady count, is not a
 *    leak. Garbage (objects reachable from no root) is never counted: it
 *    waits for the cyclic GC and is reported by hs_garbage_compute.
 *  - growing objects: objects present in every snapshot (same address and
 *    type name) that keep gaining referents (their strong out-degree grows
 *    in every interval) or keep retaining more (their retained size grows
 *    by at least min_bytes in every interval).
 *  - for each leaking type, its root cause in the last snapshot: the
 *    aggregated retention paths of its NEW instances (those with no
 *    object of the same address and type name in the snapshot before),
 *    and the holder: the deepest object of the dominator tree that
 *    dominates a strict majority of those new instances (the smallest
 *    object whose removal frees most of the growth). Majority holders form
 *    a chain, so the deepest one is unique. A type that grows in bytes
 *    only (its count does not grow: a list that keeps growing) is traced
 *    through its instances that grew since the snapshot before (or, when
 *    none grew, its new ones), and such an instance may be its own holder.
 *
 * Objects are matched across snapshots by address and type name, as in
 * hs_analysis_diff: a snapshot records no other identity.
 */
#ifndef HEAPSNAP_LEAKS_H
#define HEAPSNAP_LEAKS_H

#include "common.h"
#include "errors.h"
#include "snapshot.h"
#include "retention.h"

/* hs_leak_type.grows / hs_leak_object.grows */
#define HS_LEAK_COUNT     0x1u /* instances grew in every interval */
#define HS_LEAK_BYTES     0x2u /* bytes of the instances grew in every interval */
#define HS_LEAK_REFERENTS 0x4u /* an object's strong out-degree grew every time */
#define HS_LEAK_RETAINED  0x8u /* an object's retained size grew every time */

/* Retained size of a holder in a snapshot where it did not exist. */
#define HS_LEAK_ABSENT UINT64_MAX

typedef struct hs_leaks_options {
	unsigned version;
	size_t top_types;     /* leaking types to describe, largest growth first; 0: all */
	size_t top_objects;   /* growing objects to list; 0: all */
	uint64_t min_count;   /* least count growth per interval (default 1) */
	uint64_t min_bytes;   /* least bytes growth per interval, for types growing in
	                         bytes only and for retained sizes (default 4096) */
	size_t path_limit;    /* aggregated paths per leaking type (default 3) */
} hs_leaks_options;

#define HS_LEAKS_OPTIONS_VERSION 1
#define HS_LEAKS_OPTIONS_INIT { HS_LEAKS_OPTIONS_VERSION, 10, 10, 1, 4096, 3 }

/** The object of the last snapshot holding most of a type's growth. */
typedef struct hs_leak_holder {
	uint32_t node;          /* in the last snapshot; HS_NO_NODE when no single
	                           object dominates a majority of the new instances */
	uint64_t address;
	uint32_t type;          /* type id in the last snapshot */
	uint64_t held_count;    /* new instances it dominates */
	uint64_t held_bytes;    /* their own sizes */
	uint64_t *retained_at;  /* per snapshot: its retained size, HS_LEAK_ABSENT
	                           where no object of that address and type existed */
	uint64_t freeable;      /* in the last snapshot: what dropping it frees with
	                           weakref callbacks run (>= its retained size;
	                           hs_freeable_compute) */
	hs_paths *path;         /* its own retention path in the last snapshot */
} hs_leak_holder;

typedef struct hs_leak_type {
	char *name;                 /* type name */
	unsigned grows;             /* HS_LEAK_COUNT and/or HS_LEAK_BYTES */
	uint64_t *count, *bytes;    /* per snapshot: reachable instances, their bytes */
	uint64_t new_count, new_bytes; /* instances of the last snapshot new since
	                                  the one before (reachable ones); 0 when
	                                  the paths are those of instances that
	                                  grew in place (see above) */
	hs_paths *paths;            /* retention paths of those instances */
	hs_leak_holder holder;
} hs_leak_type;

typedef struct hs_leak_object {
	uint64_t address;
	char *type;                 /* type name */
	uint32_t node;              /* in the last snapshot */
	unsigned grows;             /* HS_LEAK_REFERENTS and/or HS_LEAK_RETAINED */
	uint64_t *out_degree;       /* per snapshot: strong references it holds */
	uint64_t *retained;         /* per snapshot: retained size */
	hs_paths *path;             /* its retention path in the last snapshot */
} hs_leak_object;

typedef struct hs_leaks {
	size_t snapshot_count;
	uint64_t *reachable_count, *reachable_bytes; /* per snapshot */
	uint64_t leaking_types;     /* before top_types */
	size_t type_count;
	hs_leak_type *types;        /* by bytes growth (last - first) desc, then
	                               count growth desc, then name */
	uint64_t growing_objects;   /* before top_objects */
	size_t object_count;
	hs_leak_object *objects;    /* gaining referents first (by out-degree growth
	                               desc), then by retained growth desc, then
	                               address */
	int found;                  /* leaking_types or growing_objects */
} hs_leaks;

/**
 * Find what grows in every interval across `n` snapshots of one process,
 * oldest first, and the root cause of each leaking type (see above).
 * Computes the dominator tree of every snapshot: time and memory are those
 * of hs_dominators_compute, n times, plus one address lookup per object
 * and earlier snapshot.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_EINVAL when n < 3, HS_ENOMEM);
 *         *out belongs to the caller (hs_leaks_free). Node indexes in the
 *         result refer to the last snapshot.
 */
HS_EXTERN(int) hs_leaks_find(hs_leaks **out, const hs_snapshot *const *snaps, size_t n,
                             const hs_leaks_options *opts);
HS_EXTERN(void) hs_leaks_free(hs_leaks *l);

#endif
