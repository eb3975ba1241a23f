/*
 * heapsnap/retention.h: why objects are alive.
 *
 * Everything starts from the roots of the snapshot (hs_snapshot_root_get:
 * modules, thread frames and locals, interpreter state, and the derived
 * "held from C" roots). Only strong edges retain: an HS_EDGE_WEAK edge is
 * never followed. Objects reachable from no root are garbage waiting for
 * the cyclic GC; they are reported as such (hs_garbage_compute) and never
 * get a retention path or a dominator.
 *
 * Four analyses, each a result owned by the caller:
 *  - reach:      multi-source BFS from the roots (root order, then edge
 *                order: deterministic). Reachability and, for every
 *                reachable object, the edge of one shortest path to it.
 *  - dominators: the dominator tree of the whole graph under a virtual
 *                super-root linked to every root object (semi-NCA, explicit
 *                stacks); retained size of every object, of every type (the
 *                set of its instances), dominator chains.
 *  - paths:      shortest retention paths of selected objects, aggregated
 *                (same root, same types and labels, varying dict keys and
 *                indexes collapsed) with counts and bytes.
 *  - garbage:    unreachable objects by type and their cycles (strongly
 *                connected components).
 *
 * Results name types by type id (hs_snapshot_type_get) and objects by node
 * index; they borrow nothing from the snapshot, but the ids only make sense
 * with the snapshot they were computed from.
 *
 * Memory, per object of the snapshot (see tests/bench/README-retention.md
 * for measured figures): reach 4 bytes kept + 4 while running; dominators
 * 20 bytes kept (idom, retained size, tree children) + 28 while running,
 * + 4 per strong edge while running.
 */
#ifndef HEAPSNAP_RETENTION_H
#define HEAPSNAP_RETENTION_H

#include "common.h"
#include "errors.h"
#include "snapshot.h"

/* "No edge" (a root object or an unreachable one has no parent edge). */
#define HS_NO_EDGE UINT32_MAX
/* The idom of an object dominated only by the virtual super-root (a root
 * object, or one reachable from several roots through disjoint paths). */
#define HS_DOM_SUPERROOT (UINT32_MAX - 1)

/* ------------------------------------------------------------------ */
/* reach                                                               */

typedef struct hs_reach hs_reach;

typedef struct hs_reach_options {
	unsigned version;
} hs_reach_options;

#define HS_REACH_OPTIONS_VERSION 1
#define HS_REACH_OPTIONS_INIT { HS_REACH_OPTIONS_VERSION }

typedef struct hs_reach_stats {
	uint64_t root_objects;       /* distinct objects named by roots */
	uint64_t reachable_count, reachable_bytes;
	uint64_t unreachable_count, unreachable_bytes; /* garbage */
	uint32_t max_depth;          /* longest shortest path (edges) */
} hs_reach_stats;

/**
 * Breadth-first search from every root over strong edges. Roots are
 * visited in root order, edges in file order, so the parent of each object
 * (the edge of its shortest path found first) is deterministic.
 * Time O(objects + edges); memory 4 bytes per object kept, 4 more while
 * running.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_ENOMEM, HS_ELIMIT, HS_EINVAL);
 *         *out belongs to the caller (hs_reach_free).
 */
HS_EXTERN(int) hs_reach_compute(hs_reach **out, const hs_snapshot *s,
                                const hs_reach_options *opts);
HS_EXTERN(void) hs_reach_free(hs_reach *r);

/** Counts; borrowed from `r`, never NULL. */
HS_EXTERN(const hs_reach_stats *) hs_reach_stats_get(const hs_reach *r);

/** 1 if `node` is reachable from a root over strong edges, else 0 (also 0
 *  for an index out of range). */
HS_EXTERN(int) hs_reach_reachable(const hs_reach *r, uint32_t node);

/** The edge that reaches `node` on its shortest path (its source is
 *  hs_reach_parent), or HS_NO_EDGE for a root object or an unreachable one. */
HS_EXTERN(uint32_t) hs_reach_parent_edge(const hs_reach *r, uint32_t node);

/** The object before `node` on its shortest path, or HS_NO_NODE. */
HS_EXTERN(uint32_t) hs_reach_parent(const hs_reach *r, uint32_t node);

/** For a root object: the index of the first root naming it (the one the
 *  search started from); HS_NO_NODE for any other object. */
HS_EXTERN(uint32_t) hs_reach_root_index(const hs_reach *r, uint32_t node);

/* ------------------------------------------------------------------ */
/* dominators                                                          */

typedef struct hs_dominators hs_dominators;

typedef struct hs_dominators_options {
	unsigned version;
	/* Compute retained sizes per type (hs_dominators_types); default 1. */
	int type_sizes;
} hs_dominators_options;

#define HS_DOMINATORS_OPTIONS_VERSION 1
#define HS_DOMINATORS_OPTIONS_INIT { HS_DOMINATORS_OPTIONS_VERSION, 1 }

/** Retained size of all the instances of one type name (types sharing a
 *  name, such as a class defined twice, form one row). */
typedef struct hs_retained_type {
	uint32_t type;      /* first type id with this name */
	uint64_t count;     /* reachable instances */
	uint64_t bytes;     /* their own sizes */
	uint64_t retained;  /* bytes of every object dominated by some instance
	                       (instances included), each counted once */
} hs_retained_type;

typedef struct hs_dominators_stats {
	uint64_t reachable_count, reachable_bytes; /* = retained size of the super-root */
	uint64_t unreachable_count;
	uint64_t superroot_children;               /* objects with idom HS_DOM_SUPERROOT */
	uint32_t max_depth;                        /* of the dominator tree */
} hs_dominators_stats;

/**
 * The dominator tree of the objects reachable from the roots, over strong
 * edges, under a virtual super-root with an edge to every root object.
 * Object d dominates v when every path from the super-root to v passes
 * through d; the retained size of d is the total size of the objects it
 * dominates (itself included): what freeing d would free.
 *
 * Semi-NCA (Georgiadis' variant of Lengauer-Tarjan): an iterative DFS,
 * semidominators by path-compressed evaluation in reverse preorder, then
 * nearest common ancestors. Nothing recurses. Builds its own predecessor
 * lists for the run (4 bytes per object and per strong edge): the
 * snapshot's reverse edges are not needed.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_ENOMEM, HS_ELIMIT, HS_EINVAL);
 *         *out belongs to the caller (hs_dominators_free).
 */
HS_EXTERN(int) hs_dominators_compute(hs_dominators **out, const hs_snapshot *s,
                                     const hs_dominators_options *opts);
HS_EXTERN(void) hs_dominators_free(hs_dominators *d);

/** Counts; borrowed from `d`, never NULL. */
HS_EXTERN(const hs_dominators_stats *) hs_dominators_stats_get(const hs_dominators *d);

/** Immediate dominator of `node`: a node index, HS_DOM_SUPERROOT, or
 *  HS_NO_NODE when `node` is unreachable (or out of range). */
HS_EXTERN(uint32_t) hs_dominators_idom(const hs_dominators *d, uint32_t node);

/** The idom array itself, one entry per object; borrowed from `d`. */
HS_EXTERN(const uint32_t *) hs_dominators_idom_array(const hs_dominators *d);

/** Retained size of `node` in bytes (0 when unreachable). */
HS_EXTERN(uint64_t) hs_dominators_retained(const hs_dominators *d, uint32_t node);

/** The retained sizes, one per object; borrowed from `d`. */
HS_EXTERN(const uint64_t *) hs_dominators_retained_array(const hs_dominators *d);

/**
 * The objects `node` immediately dominates, in node order; pass
 * HS_DOM_SUPERROOT for the children of the super-root.
 * @return a borrowed array of *count node indexes (NULL and 0 when none).
 */
HS_EXTERN(const uint32_t *) hs_dominators_children(const hs_dominators *d, uint32_t node,
                                                   size_t *count);

/**
 * The `limit` objects with the largest retained size, largest first (ties:
 * smaller node index first).
 * @param parent HS_NO_NODE for the whole graph, or a node (or
 *        HS_DOM_SUPERROOT) to rank only the objects it immediately dominates.
 * @return 0 or a negative hs_error_code; *out (an array of *count node
 *         indexes, at most `limit`) belongs to the caller (hs_free). NULL
 *         and 0 when there is nothing to list.
 */
HS_EXTERN(int) hs_dominators_top(uint32_t **out, size_t *count, const hs_dominators *d,
                                 uint32_t parent, size_t limit);

/**
 * The dominator chain of `node`: node itself first, then its idom, and so
 * on up to the object just below the super-root (a root object).
 * @return 0, HS_ENOTFOUND when `node` is unreachable (no chain), or another
 *         negative hs_error_code; *out (an array of *count node indexes)
 *         belongs to the caller (hs_free).
 */
HS_EXTERN(int) hs_dominators_chain(uint32_t **out, size_t *count, const hs_dominators *d,
                                   uint32_t node);

/**
 * Retained size per type name, largest retained first (then name order);
 * only types with reachable instances. Computed in one walk over the tree:
 * an instance counts when no dominator above it is of the same type, so
 * nested instances (a list dominating lists) are counted once.
 * @return a borrowed array of *count rows (NULL and 0 when computed with
 *         type_sizes = 0).
 */
HS_EXTERN(const hs_retained_type *) hs_dominators_types(const hs_dominators *d, size_t *count);

/* ------------------------------------------------------------------ */
/* freeable: what dropping objects frees, weakref callbacks included   */

/*
 * The retained size (dominator tree) counts the objects reachable only
 * through X. Weak-valued owners free more when X dies: an identity map
 * holding each row's state strongly and the row through a weakref whose
 * callback removes the state (SQLAlchemy), WeakValueDictionary entries,
 * weakref.finalize registrations. The freeable size models those callbacks
 * (src/analysis/freeable.c has the rules): when X's retained set holds the
 * referent of a live weakref with a callback, the entry the callback
 * removes (its bound __self__, closure cell or callable instance when that
 * holds the weakref, else the weakref itself) is released if it has exactly
 * one holder, and reachability is computed again, until no callback is
 * left. An entry held twice is never released: freeable is a lower bound
 * of what dies, and never less than retained.
 */
typedef struct hs_freeable hs_freeable;

typedef struct hs_freeable_result {
	uint64_t retained;    /* dominator figure: bytes reachable only through the set */
	uint64_t freeable;    /* bytes freed when the set is dropped, weakref callbacks run */
	uint64_t callbacks;   /* weakref callbacks that would run */
	uint64_t entries;     /* container entries those callbacks remove */
	uint32_t rounds;      /* reachability passes (0: freeable == retained, no callback) */
} hs_freeable_result;

/**
 * A context for freeable sizes over dominator tree `d` of `s` (both
 * borrowed, they must outlive it): one pass over the objects finds the
 * weakrefs with a callback.
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_freeable_free).
 */
HS_EXTERN(int) hs_freeable_new(hs_freeable **out, const hs_snapshot *s, const hs_dominators *d);
HS_EXTERN(void) hs_freeable_free(hs_freeable *f);

/** Reachable weakrefs with a callback and a reachable referent: 0 means
 *  freeable == retained for every object. */
HS_EXTERN(uint32_t) hs_freeable_callbacks(const hs_freeable *f);

/**
 * Retained and freeable sizes of dropping the `count` objects `nodes` at
 * once (duplicates and nested members counted once; unreachable ones add
 * nothing). Answered from the dominator tree unless a weakref with a
 * callback points into the retained set; then one BFS per round.
 * @return 0 or a negative hs_error_code (HS_EINVAL for a node out of range).
 */
HS_EXTERN(int) hs_freeable_compute(hs_freeable_result *out, hs_freeable *f,
                                   const uint32_t *nodes, size_t count);

/* ------------------------------------------------------------------ */
/* paths                                                               */

typedef struct hs_paths_options {
	unsigned version;
	size_t limit;        /* aggregated paths to keep, largest first; 0: all */
	uint32_t max_depth;  /* edges kept from the root side; the rest of a
	                        longer path is elided; 0: no limit */
} hs_paths_options;

#define HS_PATHS_OPTIONS_VERSION 1
#define HS_PATHS_OPTIONS_INIT { HS_PATHS_OPTIONS_VERSION, 20, 0 }

/** One step of an aggregated path: an object and the edge that leads to it. */
typedef struct hs_path_step {
	uint32_t type;        /* type id of the objects at this step */
	uint32_t edge;        /* an example edge into them; HS_NO_EDGE at the root
	                         step and after an elision */
	uint8_t label_kind;   /* hs_label_kind of that edge */
	uint8_t collapsed;    /* the key or index varies among the members:
	                         render ['<key>'] or [<i>] */
	uint8_t elided;       /* steps were cut (max_depth) before this one */
	uint32_t example;     /* an example object at this step */
	uint64_t distinct;    /* distinct objects at this step over all members */
	uint64_t bytes;       /* their own sizes, each object counted once */
} hs_path_step;

/** Targets retained the same way. */
typedef struct hs_path {
	uint32_t root;        /* index of the root of the example (hs_snapshot_root_get) */
	uint64_t count;       /* targets */
	uint64_t bytes;       /* their own sizes */
	uint32_t example;     /* an example target */
	size_t step_count;    /* >= 1 */
	hs_path_step *steps;  /* steps[0] is the root object, the last the target */
} hs_path;

typedef struct hs_paths {
	size_t path_count;
	hs_path *paths;               /* by bytes desc, then count desc */
	uint64_t target_count, target_bytes;
	uint64_t garbage_count, garbage_bytes; /* unreachable targets: no path */
	uint64_t group_count;         /* aggregated paths before the limit */
	uint64_t omitted_count, omitted_bytes; /* targets of paths past the limit */
} hs_paths;

/**
 * Shortest retention paths of the objects `targets` (count of them;
 * duplicates count once each time they appear), aggregated. Each target's
 * path is the chain of BFS parents from `reach` (hs_reach_compute); two
 * targets share an aggregated path when they have the same root (kind,
 * name, detail and type of the root object; for held roots kind and type),
 * the same types at every step and the same labels, where dict keys and
 * indexes are compared as classes (any key, any index).
 * @param reach NULL to compute one for this call.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_EINVAL for a target out of
 *         range); *out belongs to the caller (hs_paths_free).
 */
HS_EXTERN(int) hs_paths_find(hs_paths **out, const hs_snapshot *s, const hs_reach *reach,
                             const uint32_t *targets, size_t count,
                             const hs_paths_options *opts);
HS_EXTERN(void) hs_paths_free(hs_paths *p);

/**
 * Render path `p` as one line, e.g.
 * `module app → dict['_sessions'] → dict['<key>'] (x1000) → SessionState.__dict__['history'] → list`:
 * the root's kind and name, then each object's type followed by the label
 * of the edge it holds the next one by (a collapsed key as ['<key>'], a
 * collapsed index as [<i>]); an instance's __dict__ is folded into it;
 * ` (xN)` marks where the path fans out to N distinct objects; `…` marks
 * elided steps. Writes at most `size` bytes including the NUL.
 * @return the length of the full text (like snprintf).
 */
HS_EXTERN(size_t) hs_paths_format(char *buf, size_t size, const hs_snapshot *s,
                                  const hs_path *p);

/**
 * Every object whose type is named `type_name` (all type ids sharing the
 * name), in node order: a selection for hs_paths_find.
 * @return 0, HS_ENOTFOUND when no type has that name, or another negative
 *         hs_error_code; *out (an array of *count node indexes) belongs to
 *         the caller (hs_free).
 */
HS_EXTERN(int) hs_retention_select_type(uint32_t **out, size_t *count, const hs_snapshot *s,
                                        const char *type_name);

/* ------------------------------------------------------------------ */
/* garbage                                                             */

typedef struct hs_garbage_options {
	unsigned version;
	size_t cycle_limit;  /* cycles to describe, largest first; 0: all */
} hs_garbage_options;

#define HS_GARBAGE_OPTIONS_VERSION 1
#define HS_GARBAGE_OPTIONS_INIT { HS_GARBAGE_OPTIONS_VERSION, 20 }

typedef struct hs_garbage_type {
	uint32_t type;       /* type id */
	uint64_t count, bytes;
} hs_garbage_type;

/** A strongly connected component of garbage: a cycle the GC must break. */
typedef struct hs_garbage_cycle {
	uint64_t count, bytes;       /* objects in the component */
	uint32_t example;            /* its smallest node index */
	size_t type_count;
	hs_garbage_type *types;      /* member types, by bytes desc */
} hs_garbage_cycle;

typedef struct hs_garbage {
	uint64_t count, bytes;       /* unreachable objects */
	size_t type_count;
	hs_garbage_type *types;      /* per type id, by bytes desc, then count */
	uint64_t cycle_count;        /* components of 2+ objects or with a self-loop */
	uint64_t cyclic_count, cyclic_bytes; /* objects in those components */
	size_t shown_cycles;
	hs_garbage_cycle *cycles;    /* the largest by bytes (cycle_limit) */
} hs_garbage;

/**
 * Unreachable objects by type, and the cycles among them: the strongly
 * connected components of the garbage over strong edges (iterative Tarjan).
 * @param reach NULL to compute one for this call.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_garbage_free).
 */
HS_EXTERN(int) hs_garbage_compute(hs_garbage **out, const hs_snapshot *s, const hs_reach *reach,
                                  const hs_garbage_options *opts);
HS_EXTERN(void) hs_garbage_free(hs_garbage *g);

#endif
