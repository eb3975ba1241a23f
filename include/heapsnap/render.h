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

/**
 * Print `json` to `f`, indented, with a final newline.
 * @return 0 or HS_ENOMEM / HS_EIO.
 */
HS_EXTERN(int) hs_render_json_print(FILE *f, const cJSON *json);

#endif
