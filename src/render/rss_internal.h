/*
 * render/rss_internal.h: the RSS breakdown of `heapsnap summary`
 * (render/rss.c), shared by render/summary.c.
 */
#ifndef HS_RENDER_RSS_INTERNAL_H
#define HS_RENDER_RSS_INTERNAL_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "heapsnap/analysis.h"

/* The one line that states the size model (static string). */
const char *hs_render__size_model(const hs_snapshot *s);
/* 1 and a message in buf when Python objects exceed the RSS, else 0. */
int hs_render__objects_warning(char *buf, size_t size, const hs_snapshot *s, const hs_summary *sum);
/* The sentence naming the biggest gap and what it means ("" without a breakdown). */
void hs_render__memory_explain(char *buf, size_t size, const hs_snapshot *s,
                               const hs_memory_breakdown *m);
/* Size model, warning, the breakdown table and its sentence. 0 or a negative hs_error_code. */
int hs_render__memory_text(FILE *f, const hs_snapshot *s, const hs_summary *sum);
/* The same into the "memory" object of summary --json; 0 on out of memory. */
int hs_render__memory_json(cJSON *mem, const hs_snapshot *s, const hs_summary *sum);

#endif
