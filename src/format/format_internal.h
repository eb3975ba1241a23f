/*
 * format/format_internal.h: byte-level pieces shared by the writer and the
 * reader: little-endian access, the fixed header, section header and footer
 * layouts (formats/snapshot-v1.md is the prose definition).
 */
#ifndef HS_FORMAT_INTERNAL_H
#define HS_FORMAT_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "heapsnap/format.h"

#define HS_MAGIC "\x89HSN\r\n\x1a\n"
#define HS_END_MAGIC "HSNAPEND"
#define HS_SECTION_ZSTD 0x1u
/* A node record that continues the previous node's edge list in a new
 * section (a container with more edges than one section may hold). */
#define HS_NODE_CONTINUED 0x20u
#define HS_VALUE_MAX 256u
/* Edges per NODES section before the writer splits a node's edge list. */
#define HS_CHUNK_MAX_EDGES (1u << 20)

/* Stream order inside a NODES section. */
enum {
	HS_STREAM_ADDRESS,
	HS_STREAM_TYPE,
	HS_STREAM_SIZE,
	HS_STREAM_REFCOUNT,
	HS_STREAM_FLAGS,
	HS_STREAM_EDGE_COUNTS,
	HS_STREAM_VALUES,
	HS_STREAM_TARGETS,
	HS_STREAM_EDGE_KINDS,
	HS_STREAM_LABELS,
	HS_STREAM_LABEL_KEYS,
	HS_STREAM_COUNT
};

static inline void hs_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void hs_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hs_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t hs_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t hs_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t hs_get_le64(const uint8_t *p)
{
	return (uint64_t)hs_get_le32(p) | ((uint64_t)hs_get_le32(p + 4) << 32);
}

/* Label kinds whose payload is a varint in the labels stream. */
static inline int hs_label_has_number(unsigned k)
{
	return k == HS_LABEL_INDEX || k == HS_LABEL_NAME || k == HS_LABEL_ATTR_NAME || k == HS_LABEL_LOCAL;
}
/* Label kinds whose payload is a string id. */
static inline int hs_label_has_string(unsigned k)
{
	return k == HS_LABEL_NAME || k == HS_LABEL_ATTR_NAME || k == HS_LABEL_LOCAL;
}
/* Label kinds whose payload is a key object address. */
static inline int hs_label_has_key(unsigned k) { return k == HS_LABEL_KEY || k == HS_LABEL_ATTR; }

#endif
