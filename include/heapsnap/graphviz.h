/*
 * heapsnap/graphviz.h: reference graphs of a snapshot, drawn with the
 * Graphviz C library (libgvc/cgraph, in-process: no `dot` subprocess).
 *
 * Two kinds of picture:
 *  - hs_graphviz_build: the neighbourhood of selected objects, like
 *    objgraph's show_backrefs (who refers to them, up to the roots) or
 *    show_refs (what they refer to). Breadth-first from the selection up to
 *    `depth` references away; nodes show type, short value and size
 *    (retained size when dominators are given), edges their labels; roots
 *    and the selection are highlighted. Large fan-ins are collapsed: when
 *    more than `fanin` new neighbours of one type meet one object, they are
 *    drawn as one node "N × type" (and not followed further); objects of a
 *    type with the same neighbours (1000 sessions in one dict) are merged
 *    the same way.
 *  - hs_graphviz_build_leak: the root-cause chain of a leaking type found
 *    by hs_leaks_find, from the root to the growing objects, with the number
 *    of distinct objects and their bytes at every step, the holder marked.
 *
 * A graph is built once and rendered any number of times: `dot` (the graph
 * as written by cgraph, without layout: stable text), `svg`, `png`, `pdf`
 * (laid out by the dot engine).
 */
#ifndef HEAPSNAP_GRAPHVIZ_H
#define HEAPSNAP_GRAPHVIZ_H

#include "common.h"
#include "errors.h"
#include "snapshot.h"
#include "retention.h"
#include "leaks.h"

/* ------------------------------------------------------------------ */
/* filter                                                              */

typedef struct hs_graphviz_filter hs_graphviz_filter;

/**
 * Parse a node filter: comma-separated terms that must all hold, each
 * `type=NAME` (exact type name), `type!=NAME`, `type=~REGEX` (POSIX
 * extended, searched anywhere in the name; anchor with ^ and $) or
 * `type!~REGEX`. Example: `type!=function,type!~^_frozen`.
 * @return 0 or HS_EINVAL (message names the bad term) or HS_ENOMEM;
 *         *out belongs to the caller (hs_graphviz_filter_free).
 */
HS_EXTERN(int) hs_graphviz_filter_parse(hs_graphviz_filter **out, const char *expr);
HS_EXTERN(void) hs_graphviz_filter_free(hs_graphviz_filter *f);
/** 1 when `type_name` passes every term of `f` (NULL passes everything). */
HS_EXTERN(int) hs_graphviz_filter_match(const hs_graphviz_filter *f, const char *type_name);

/* ------------------------------------------------------------------ */
/* graphs                                                              */

typedef enum hs_graphviz_direction {
	HS_GRAPHVIZ_BACKREFS = 0, /* referrers, towards the roots (stops at root objects) */
	HS_GRAPHVIZ_REFS = 1,     /* referents */
} hs_graphviz_direction;

typedef struct hs_graphviz_options {
	unsigned version;
	hs_graphviz_direction direction;
	uint32_t depth;                      /* references away from the selection (default 5) */
	size_t max_nodes;                    /* nodes drawn at most (default 100) */
	size_t fanin;                        /* collapse groups larger than this (default 8) */
	const hs_graphviz_filter *filter;    /* NULL: every type; the selection is always drawn */
	const hs_dominators *dominators;     /* NULL, or retained sizes to show */
} hs_graphviz_options;

#define HS_GRAPHVIZ_OPTIONS_VERSION 1
#define HS_GRAPHVIZ_OPTIONS_INIT { HS_GRAPHVIZ_OPTIONS_VERSION, HS_GRAPHVIZ_BACKREFS, 5, 100, 8, NULL, NULL }

typedef struct hs_graphviz_stats {
	size_t nodes, edges;        /* drawn */
	size_t selected;            /* drawn nodes that are (or hold) selected objects */
	size_t roots;               /* drawn root objects */
	size_t collapsed;           /* drawn nodes standing for several objects */
	uint64_t objects;           /* objects the drawn nodes stand for */
	int truncated;              /* max_nodes cut the graph */
} hs_graphviz_stats;

typedef struct hs_graphviz hs_graphviz;

/**
 * The reference graph around the `count` objects `sel` of `s` (see above).
 * Builds the snapshot's reverse edges for HS_GRAPHVIZ_BACKREFS.
 * @param opts NULL for defaults.
 * @return 0 or a negative hs_error_code (HS_EINVAL for an object out of
 *         range or no selection, HS_ENOMEM); *out belongs to the caller
 *         (hs_graphviz_free).
 */
HS_EXTERN(int) hs_graphviz_build(hs_graphviz **out, hs_snapshot *s, const uint32_t *sel,
                                 size_t count, const hs_graphviz_options *opts);

/**
 * The root-cause graph of leaking type `l->types[type_index]`: its
 * aggregated retention paths in `last` (the last snapshot given to
 * hs_leaks_find) drawn as chains from the root, one node per step with the
 * number of distinct objects and their bytes, objects shared by several
 * paths drawn once, the holder marked with what it holds and retains.
 * @return 0, HS_EINVAL when type_index is out of range, or another negative
 *         hs_error_code; *out belongs to the caller (hs_graphviz_free).
 */
HS_EXTERN(int) hs_graphviz_build_leak(hs_graphviz **out, const hs_snapshot *last,
                                      const hs_leaks *l, size_t type_index);

/** Counts; borrowed from `g`, never NULL. */
HS_EXTERN(const hs_graphviz_stats *) hs_graphviz_stats_get(const hs_graphviz *g);

/**
 * The output format named by the extension of `path`: "svg", "png", "pdf"
 * or "dot" (also ".gv").
 * @return the format (a static string), or NULL for any other extension.
 */
HS_EXTERN(const char *) hs_graphviz_format_of(const char *path);

/**
 * Write `g` to `path` in `format` ("dot", "svg", "png" or "pdf"; see
 * hs_graphviz_format_of). "dot" is written without layout.
 * @return 0 or a negative hs_error_code (HS_EINVAL for an unknown format,
 *         HS_EIO when the file cannot be written or Graphviz fails; the
 *         message names the file).
 */
HS_EXTERN(int) hs_graphviz_render(const hs_graphviz *g, const char *path, const char *format);

HS_EXTERN(void) hs_graphviz_free(hs_graphviz *g);

#endif
