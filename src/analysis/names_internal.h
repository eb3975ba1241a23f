/*
 * analysis/names_internal.h: interning of type (or module) names into dense
 * group ids, shared by summary and diff.
 */
#ifndef HS_ANALYSIS_NAMES_INTERNAL_H
#define HS_ANALYSIS_NAMES_INTERNAL_H

#include "heapsnap/analysis.h"
#include "util/buf.h"

typedef struct hs_names {
	hs_buf pool;          /* NUL-terminated names */
	size_t *off;          /* [count] offset of each name in pool */
	uint32_t *slots;      /* open addressing, UINT32_MAX empty */
	uint32_t count, cap, nslots;
} hs_names;

/* Intern `name` (len bytes); *out receives its dense id. */
int hs_names__intern(hs_names *n, uint32_t *out, const char *name, size_t len);
static inline const char *hs_names__get(const hs_names *n, uint32_t id)
{
	return (const char *)n->pool.data + n->off[id];
}
void hs_names__release(hs_names *n);

/* Group id of every type of `s` (by name or module): *out is an array of
 * hs_snapshot_type_count(s) ids, hs_free'd by the caller. */
int hs_names__map_types(uint32_t **out, hs_names *n, const hs_snapshot *s, hs_group_by by);

/* Objects and bytes per type id of `s`: two arrays of hs_snapshot_type_count(s)
 * entries, hs_free'd by the caller. */
int hs_analysis__per_type(uint64_t **count, uint64_t **bytes, const hs_snapshot *s);

#endif
