/*
 * graph/meta.h: reading a snapshot's metadata (a cJSON tree, META merged
 * with META_END) by dotted path, for the analysis and render layers.
 */
#ifndef HS_GRAPH_META_H
#define HS_GRAPH_META_H

#include <cjson/cJSON.h>

/* The value at `path` ("dump.size_model", "memory.maps.file_rss") under
 * the object `o`; NULL when a step is missing or not an object. */
const cJSON *hs_meta_at(const cJSON *o, const char *path);

#endif
