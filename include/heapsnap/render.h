/*
 * heapsnap/render.h: human-readable text (aligned tables, sizes, counts)
 * and JSON (cJSON) renderings of snapshots and analyses. The JSON shapes
 * are specified in formats/cli-json.md and formats/<command>.schema.json.
 */
#ifndef HEAPSNAP_RENDER_H
#define HEAPSNAP_RENDER_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "common.h"
#include "errors.h"
#include "snapshot.h"
#include "analysis.h"
#include "retention.h"
#include "leaks.h"

/* ------------------------------------------------------------------ */
/* numbers                                                             */

/**
 * Human size: "512 B", "1.5 KiB", "3.0 MiB", "1.2 GiB", "2.0 TiB" (1024
 * based, one decimal above bytes). Writes at most `size` bytes including
 * the NUL; @return the full length, like snprintf.
 */
HS_EXTERN(size_t) hs_render_size(char *buf, size_t size, uint64_t bytes);
/** Signed human size with an explicit sign: "+1.5 KiB", "-232 B", "0 B". */
HS_EXTERN(size_t) hs_render_size_delta(char *buf, size_t size, int64_t bytes);
/** Count with thousands separators: "1,234,567". */
HS_EXTERN(size_t) hs_render_count(char *buf, size_t size, uint64_t n);
/** Signed count: "+1,234", "-5", "0". */
HS_EXTERN(size_t) hs_render_count_delta(char *buf, size_t size, int64_t n);

/* ------------------------------------------------------------------ */
/* tables                                                              */

typedef enum hs_align { HS_ALIGN_LEFT = 0, HS_ALIGN_RIGHT = 1 } hs_align;

typedef struct hs_table hs_table;

/**
 * A table of `columns` columns; every column grows to its widest cell
 * (display width of UTF-8), so no cell is ever truncated.
 * @return 0 or HS_ENOMEM; *out belongs to the caller (hs_table_free).
 */
HS_EXTERN(int) hs_table_new(hs_table **out, size_t columns);
/** Header text and alignment of column `col` (header "" hides the header row
 *  unless another column has one). */
HS_EXTERN(int) hs_table_column(hs_table *t, size_t col, const char *header, hs_align align);
/** Append a row of `columns` cells (copied; NULL cells print empty). */
HS_EXTERN(int) hs_table_row(hs_table *t, const char *const *cells);
/** Append a separator line (dashes under each column). */
HS_EXTERN(int) hs_table_rule(hs_table *t);
/** Print with two spaces between columns and `indent` spaces before each line. */
HS_EXTERN(int) hs_table_print(const hs_table *t, FILE *f, int indent);
HS_EXTERN(void) hs_table_free(hs_table *t);

/* ------------------------------------------------------------------ */
/* command renderings                                                  */

typedef struct hs_render_options {
	unsigned version;
	size_t top;       /* rows to show; 0 = all */
} hs_render_options;

#define HS_RENDER_OPTIONS_VERSION 1
#define HS_RENDER_OPTIONS_INIT { HS_RENDER_OPTIONS_VERSION, 25 }

/** `heapsnap info`: metadata and counts, as text or as JSON
 *  (formats/info.schema.json). JSON: *out belongs to the caller (cJSON_Delete). */
HS_EXTERN(int) hs_render_info_text(FILE *f, const hs_snapshot *s);
HS_EXTERN(int) hs_render_info_json(cJSON **out, const hs_snapshot *s);

/** `heapsnap summary` (formats/summary.schema.json). */
HS_EXTERN(int) hs_render_summary_text(FILE *f, const hs_snapshot *s, const hs_summary *sum,
                                      const hs_render_options *opts);
HS_EXTERN(int) hs_render_summary_json(cJSON **out, const hs_snapshot *s, const hs_summary *sum,
                                      const hs_render_options *opts);

/** `heapsnap diff` (formats/diff.schema.json). */
HS_EXTERN(int) hs_render_diff_text(FILE *f, const hs_snapshot *a, const hs_snapshot *b,
                                   const hs_diff *d, const hs_render_options *opts);
HS_EXTERN(int) hs_render_diff_json(cJSON **out, const hs_snapshot *a, const hs_snapshot *b,
                                   const hs_diff *d, const hs_render_options *opts);

/* ------------------------------------------------------------------ */
/* retention: paths, retained, dominators, garbage, leaks              */

/**
 * One line naming root `root` of `s` (hs_snapshot_root_get): `module app`,
 * `thread 'worker' frame run (app.py:12)`, `local buf of thread 'w' …`,
 * `held from C (2 references not in the graph)`. Writes at most `size`
 * bytes including the NUL; @return the full length, like snprintf.
 */
HS_EXTERN(size_t) hs_render_root_text(char *buf, size_t size, const hs_snapshot *s, uint32_t root);

/**
 * `heapsnap paths` (formats/paths.schema.json): a headline naming `what`
 * (e.g. "objects of type 'list'"), then one row per aggregated path
 * (objects, bytes, the path as hs_paths_format renders it), then the
 * unreachable targets. JSON: *out belongs to the caller (cJSON_Delete).
 * @return 0 or a negative hs_error_code.
 */
HS_EXTERN(int) hs_render_paths_text(FILE *f, const hs_snapshot *s, const hs_paths *p,
                                    const char *what);
HS_EXTERN(int) hs_render_paths_json(cJSON **out, const hs_snapshot *s, const hs_paths *p);
/** Only the table of aggregated paths, indented by `indent` spaces. */
HS_EXTERN(int) hs_render_paths_table(FILE *f, const hs_snapshot *s, const hs_paths *p, int indent);

/**
 * `heapsnap retained` (formats/retained.schema.json): the `top` objects
 * with the largest retained size (0: all), each with its retention path
 * from `r`, or with `by_type` the retained size per type (`d` computed
 * with type_sizes = 1).
 * @return 0 or a negative hs_error_code.
 */
HS_EXTERN(int) hs_render_retained_text(FILE *f, const hs_snapshot *s, const hs_dominators *d,
                                       const hs_reach *r, int by_type, size_t top);
HS_EXTERN(int) hs_render_retained_json(cJSON **out, const hs_snapshot *s, const hs_dominators *d,
                                       const hs_reach *r, int by_type, size_t top);

/**
 * `heapsnap dominators` (formats/dominators.schema.json): the dominator
 * chain `chain` (n objects, hs_dominators_chain) of `node`, with retained
 * sizes, the root of the last one and the shortest path of `node`.
 * @return 0 or a negative hs_error_code.
 */
HS_EXTERN(int) hs_render_dominators_text(FILE *f, const hs_snapshot *s, const hs_dominators *d,
                                         const hs_reach *r, uint32_t node,
                                         const uint32_t *chain, size_t n);
HS_EXTERN(int) hs_render_dominators_json(cJSON **out, const hs_snapshot *s,
                                         const hs_dominators *d, const hs_reach *r,
                                         uint32_t node, const uint32_t *chain, size_t n);

/** `heapsnap garbage` (formats/garbage.schema.json): `top` types (0: all)
 *  and the cycles among the unreachable objects. */
HS_EXTERN(int) hs_render_garbage_text(FILE *f, const hs_snapshot *s, const hs_garbage *g,
                                      size_t top);
HS_EXTERN(int) hs_render_garbage_json(cJSON **out, const hs_snapshot *s, const hs_garbage *g,
                                      size_t top);

/**
 * `heapsnap leaks` (formats/leaks.schema.json). `snaps` are the snapshots
 * given to hs_leaks_find, oldest first.
 * @return 0 or a negative hs_error_code.
 */
HS_EXTERN(int) hs_render_leaks_text(FILE *f, const hs_snapshot *const *snaps, const hs_leaks *l);
HS_EXTERN(int) hs_render_leaks_json(cJSON **out, const hs_snapshot *const *snaps,
                                    const hs_leaks *l);

/**
 * One line naming the root cause of leaking type `t`, e.g.
 * `module app → dict['_sessions'] → dict holds +1,000 app.SessionState per
 * snapshot, retaining 12.4 MiB (+4.1 MiB per snapshot)`: the holder's
 * retention path, the new instances it dominates, its retained size. `last`
 * is the last snapshot given to hs_leaks_find. Writes at most `size` bytes
 * including the NUL; @return the full length, like snprintf.
 */
HS_EXTERN(size_t) hs_render_leak_cause(char *buf, size_t size, const hs_snapshot *last,
                                       const hs_leaks *l, const hs_leak_type *t);

/**
 * Print `json` to `f`, indented, with a final newline.
 * @return 0 or HS_ENOMEM / HS_EIO.
 */
HS_EXTERN(int) hs_render_json_print(FILE *f, const cJSON *json);

#endif
