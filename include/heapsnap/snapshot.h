/*
 * heapsnap/snapshot.h: load a snapshot file into memory for analysis.
 *
 * hs_snapshot_open() reads a .hsnap file (formats/snapshot-v1.md) through
 * the format reader into flat arrays (heapsnap/graph.h), resolves every
 * edge target and key address to a node index, drops and counts dangling
 * references, and derives the "held from C" roots. Everything it returns
 * is read-only and borrowed from the snapshot unless stated otherwise.
 */
#ifndef HEAPSNAP_SNAPSHOT_H
#define HEAPSNAP_SNAPSHOT_H

#include <stdio.h>
#include "common.h"
#include "errors.h"
#include "format.h"
#include "graph.h"

typedef struct hs_snapshot hs_snapshot;

typedef struct hs_snapshot_options {
	unsigned version;
	/* Reject files claiming more objects than this (0: no limit beyond
	 * 2^32 - 2, the node index range). */
	uint64_t max_nodes;
} hs_snapshot_options;

#define HS_SNAPSHOT_OPTIONS_VERSION 1
#define HS_SNAPSHOT_OPTIONS_INIT { HS_SNAPSHOT_OPTIONS_VERSION, 0 }

/** A type of the type table. */
typedef struct hs_snapshot_type {
	uint64_t address;    /* the type object */
	const char *name;    /* "module.QualName" (builtins bare); never NULL */
	uint32_t flags;      /* HS_TYPE_* */
	uint64_t basic_size; /* tp_basicsize */
} hs_snapshot_type;

/** A root: why an object is alive. */
typedef struct hs_snapshot_root {
	uint8_t kind;     /* hs_root_kind */
	uint32_t node;    /* the rooted object */
	uint32_t name;    /* string id or HS_NO_STRING */
	uint32_t detail;  /* string id or HS_NO_STRING */
	uint32_t excess;  /* HS_ROOT_HELD: refcount minus the strong references found
	                     in the graph, i.e. references held by C code (refcounts
	                     are kept saturated at UINT32_MAX) */
} hs_snapshot_root;

/** Counts gathered while loading. */
typedef struct hs_snapshot_stats {
	uint64_t nodes, edges, strings, types, roots; /* as in the file */
	uint64_t dangling_edges;  /* edges to an address that is no node: dropped */
	uint64_t dangling_keys;   /* key/attr labels naming no node: label kept as [?] */
	uint64_t dangling_roots;  /* roots naming no node: dropped */
	uint64_t size_fixes;      /* sizes corrected by SIZES sections */
	uint64_t held_roots;      /* derived HS_ROOT_HELD roots */
	uint64_t roots_by_kind[HS_ROOT_KIND_MAX + 1];
	uint64_t total_bytes;     /* sum of all node sizes (1.1: real bytes, native buffers included) */
	uint32_t python_version;  /* PY_VERSION_HEX from the header */
	int size_model_allocator; /* 1: sizes are real bytes (format 1.1, META dump.size_model
	                             "allocator"); 0: sizes as sys.getsizeof reports (1.0) */
	uint64_t native_bytes;    /* nodes of HS_TYPE_NATIVE types on the host */
	uint64_t device_bytes;    /* ... of HS_TYPE_NATIVE | HS_TYPE_DEVICE types (never RSS) */
} hs_snapshot_stats;

/**
 * Load the snapshot at `path`.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_EIO, HS_EFORMAT, HS_EVERSION,
 *         HS_ELIMIT, HS_ENOMEM); the message names `path` and the problem.
 *         On success *out belongs to the caller (hs_snapshot_free).
 */
HS_EXTERN(int) hs_snapshot_open(hs_snapshot **out, const char *path,
                                const hs_snapshot_options *opts);

/** Same, from a snapshot image in memory; `name` is used in messages. */
HS_EXTERN(int) hs_snapshot_open_memory(hs_snapshot **out, const void *data, size_t len,
                                       const char *name, const hs_snapshot_options *opts);

/** Free a snapshot and everything borrowed from it. NULL is a no-op. */
HS_EXTERN(void) hs_snapshot_free(hs_snapshot *s);

/** The graph arrays; borrowed, never NULL. */
HS_EXTERN(const hs_graph *) hs_snapshot_graph(const hs_snapshot *s);

/** Load statistics; borrowed, never NULL. */
HS_EXTERN(const hs_snapshot_stats *) hs_snapshot_stats_get(const hs_snapshot *s);

/** The path or name the snapshot was opened from; borrowed. */
HS_EXTERN(const char *) hs_snapshot_path(const hs_snapshot *s);

/**
 * Build the reverse edges (graph->rev_*), once; later calls do nothing.
 * @return 0 or HS_ENOMEM.
 */
HS_EXTERN(int) hs_snapshot_build_reverse(hs_snapshot *s);

/** Number of strings / types / roots (file roots plus derived held roots). */
HS_EXTERN(uint32_t) hs_snapshot_string_count(const hs_snapshot *s);
HS_EXTERN(uint32_t) hs_snapshot_type_count(const hs_snapshot *s);
HS_EXTERN(uint32_t) hs_snapshot_root_count(const hs_snapshot *s);

/**
 * String `id` as a NUL-terminated string (it may hold NUL bytes: *len, if
 * not NULL, receives the full length).
 * @return borrowed; "" for HS_NO_STRING or an id out of range.
 */
HS_EXTERN(const char *) hs_snapshot_string(const hs_snapshot *s, uint32_t id, size_t *len);

/** Type `id`, or NULL when out of range; borrowed. */
HS_EXTERN(const hs_snapshot_type *) hs_snapshot_type_get(const hs_snapshot *s, uint32_t id);

/** Name of the type of node `node` ("?" when out of range); borrowed. */
HS_EXTERN(const char *) hs_snapshot_node_type_name(const hs_snapshot *s, uint32_t node);

/**
 * Root `i` into *out (by value: held-from-C roots are stored compactly and
 * materialised here): the file's roots in file order (dangling ones
 * dropped), then the derived held roots in node order.
 * @return 0, or HS_ENOTFOUND when i >= hs_snapshot_root_count(s).
 */
HS_EXTERN(int) hs_snapshot_root_get(const hs_snapshot *s, uint32_t i, hs_snapshot_root *out);

/** Lower-case name of a root kind ("module", "frame", "local", "held",
 *  "interpreter"; "unknown" otherwise). Never NULL. */
HS_EXTERN(const char *) hs_root_kind_name(unsigned kind);

/**
 * What sys.getsizeof reported for `node` (format 1.1 REPORTED sections),
 * or UINT64_MAX when unknown: not listed (fork mode, a type with its own
 * Python __sizeof__, a 1.0 file). In 1.1 files the node's size is its real
 * bytes; in 1.0 files it is what getsizeof reported.
 */
HS_EXTERN(uint64_t) hs_snapshot_node_getsizeof(const hs_snapshot *s, uint32_t node);

/** The node at `address`, or HS_NO_NODE. */
HS_EXTERN(uint32_t) hs_snapshot_find(const hs_snapshot *s, uint64_t address);

/**
 * The metadata as JSON text and as a parsed cJSON object (cast the
 * `const void *` to `const cJSON *`); both borrowed.
 */
HS_EXTERN(const char *) hs_snapshot_meta_json(const hs_snapshot *s, size_t *len);
HS_EXTERN(const void *) hs_snapshot_meta(const hs_snapshot *s);

/**
 * Render the label of edge `edge` as text, the way Python reads it:
 * `[3]`, `['user_42']`, `[42]`, `.name`, `__dict__`, `<key>`, `local buf`;
 * "" for an unlabelled edge. Writes at most `size` bytes including the NUL,
 * truncating like snprintf.
 * @return the length the full text would have (like snprintf).
 */
HS_EXTERN(size_t) hs_snapshot_edge_label(const hs_snapshot *s, uint32_t edge,
                                         char *buf, size_t size);

/**
 * Render the short value of `node` as a Python literal (`'abc'`, `b'x'`,
 * `42`), like hs_snapshot_edge_label; "" when the node has no value.
 */
HS_EXTERN(size_t) hs_snapshot_node_value_repr(const hs_snapshot *s, uint32_t node,
                                              char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Allocation sites (present when the dump ran while tracking was on)  */

#define HS_NO_SITE UINT32_MAX

/** An allocation site: a source location (file:line in a function). */
typedef struct hs_site {
	const char *file;     /* never NULL ("?" unknown) */
	const char *function; /* never NULL ("?" unknown) */
	uint32_t line;        /* 0 unknown */
	uint32_t flags;       /* HS_SITE_LIBRARY... */
} hs_site;

/** Where and when one object was allocated. */
typedef struct hs_node_alloc {
	uint32_t site;       /* location id (hs_snapshot_site), or HS_NO_SITE (no
	                        Python frame: native or without the GIL) */
	uint32_t stack;      /* stack id (hs_snapshot_stack) */
	uint64_t block_size; /* bytes of the tracked block */
	uint64_t time_ms;    /* ms since tracking started */
	double weight;       /* objects this sample stands for: 1 in exact mode,
	                        1/p in sampled mode (p = 1 - exp(-size/mean)) */
} hs_node_alloc;

/** 1 when the snapshot has allocation sites (SITES section), else 0. */
HS_EXTERN(int) hs_snapshot_has_sites(const hs_snapshot *s);
/** The tracker's mean sampling interval in bytes; 0 in exact mode. */
HS_EXTERN(uint64_t) hs_snapshot_sample_bytes(const hs_snapshot *s);
/** Number of locations (site ids are 0..count-1). */
HS_EXTERN(uint32_t) hs_snapshot_site_count(const hs_snapshot *s);
/** Location `id`; 0 or HS_EINVAL when out of range. */
HS_EXTERN(int) hs_snapshot_site(const hs_snapshot *s, uint32_t id, hs_site *out);
/**
 * The frames of stack `id` (location ids, innermost first); returns the
 * count, 0 for an unknown id.
 */
HS_EXTERN(uint32_t) hs_snapshot_stack(const hs_snapshot *s, uint32_t id, const uint32_t **frames);
/**
 * Allocation of `node`: 1 and *out filled when the tracker recorded it
 * (every object allocated while tracking in exact mode, the sampled ones
 * otherwise), 0 when unknown. `site` is the innermost frame of user code:
 * frames in the standard library, site-packages and heapsnap are folded
 * into the calling line (the innermost frame when all are library code).
 */
HS_EXTERN(int) hs_snapshot_node_alloc(const hs_snapshot *s, uint32_t node, hs_node_alloc *out);
/** Tracked blocks in the file that hold no object of the snapshot (buffers
 * of objects, native allocations). */
HS_EXTERN(uint64_t) hs_snapshot_unmatched_blocks(const hs_snapshot *s);

/** Bytes the loaded snapshot holds (arrays, pools, tables). */
HS_EXTERN(size_t) hs_snapshot_memory(const hs_snapshot *s);

#endif
