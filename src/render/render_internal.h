/* render/render_internal.h: helpers shared by the renderers. */
#ifndef HS_RENDER_INTERNAL_H
#define HS_RENDER_INTERNAL_H

#include "heapsnap/render.h"

/* metadata lookups: `path` is dot-separated ("process.rss") */
const cJSON *hs_render__meta(const hs_snapshot *s, const char *path);
/* a non-negative integer figure at `path`; 0 if absent or not a number */
int hs_render__meta_u64(const hs_snapshot *s, const char *path, uint64_t *out);
/* short text of any JSON value: numbers as integers where integral, arrays
 * joined with "/", strings bare */
void hs_render__json_short(const cJSON *v, char *buf, size_t size);
/* a number cJSON can hold exactly (doubles: integers below 2^53) */
cJSON *hs_render__num(uint64_t v);
cJSON *hs_render__snum(int64_t v);
/* add or fail: these return NULL on out of memory, checked once at the end */
int hs_render__oom(void);

/* retention helpers (retention.c) */
const char *hs_render__label_kind(unsigned k);
void hs_render__address(char *buf, size_t size, uint64_t a);
cJSON *hs_render__address_json(uint64_t a);
cJSON *hs_render__root_json(const hs_snapshot *s, uint32_t root);
/* {"address", "type", "size", "value"?, "retained" when d} */
cJSON *hs_render__object_json(const hs_snapshot *s, uint32_t node, const hs_dominators *d);
cJSON *hs_render__path_json(const hs_snapshot *s, const hs_path *p);
/* hs_paths_format into a new string (hs_free), NULL when out of memory */
char *hs_render__path_text(const hs_snapshot *s, const hs_path *p);

#endif
