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

/* ------------------------------------------------------------------ */
/* Shared container pieces (src/format/container.c), used by the
 * recording writer and reader; the snapshot writer and reader predate
 * them and keep their own copies of the same bytes. */

#include <zstd.h>
#include "util/buf.h"

/* A recording's append-only chunk (formats/recording-v1.md). */
#define HS_SECTION_CHUNK 16u

/* Blocks inside a recording chunk. */
enum {
	HS_REC_BLOCK_START = 1,
	HS_REC_BLOCK_PROC = 2,
	HS_REC_BLOCK_EXEC = 3,
	HS_REC_BLOCK_EXIT = 4,
	HS_REC_BLOCK_SERIES = 5,
	HS_REC_BLOCK_TYPES = 6,
	HS_REC_BLOCK_MARK = 7,
	HS_REC_BLOCK_SNAPSHOT = 8,
	HS_REC_BLOCK_NOTE = 9,
	HS_REC_BLOCK_END = 10,
	HS_REC_BLOCK_SAMPLER = 11,
	HS_REC_BLOCK_PROC_FLAGS = 12,
};

/* Column codings inside a SERIES block. */
#define HS_REC_CODING_DELTA 1u  /* zigzag delta from the previous value */
#define HS_REC_CODING_DELTA2 2u /* zigzag delta of the delta (timestamps) */

typedef struct hs_section_info {
	uint32_t kind;
	uint32_t flags;
	uint32_t raw;
	uint32_t stored;
	uint64_t offset; /* of the section header */
} hs_section_info;

/* What is wrong with a section header (hs_format__section_check). */
typedef enum hs_section_status {
	HS_SECTION_OK = 0,
	HS_SECTION_SHORT,       /* fewer than 24 bytes left for the header */
	HS_SECTION_BAD_HEADER,  /* header checksum mismatch */
	HS_SECTION_BAD_FLAGS,   /* unknown flag bits */
	HS_SECTION_TOO_BIG,     /* raw length above HS_SECTION_MAX_RAW */
	HS_SECTION_BAD_LENGTHS, /* uncompressed with raw != stored */
	HS_SECTION_CUT,         /* the payload runs past the end of the data */
	HS_SECTION_BAD_PAYLOAD, /* payload checksum mismatch */
} hs_section_status;

/* The 32-byte file header for a file kind (formats/snapshot-v1.md). */
void hs_format__header_build(uint8_t out[HS_HEADER_SIZE], uint16_t file_kind,
                             uint32_t python_version);
/* Append one section (header and payload, compressed when asked and not
 * empty) to `out`. */
int hs_format__section_build(hs_buf *out, ZSTD_CCtx *cctx, int level, uint32_t kind,
                             const uint8_t *raw, size_t raw_len, int compress);
/* Check the section at `offset` of data[0..size): header checksum, flags,
 * limits, bounds, payload checksum (skipped in fuzz builds). Fills *out
 * as far as the header could be read. */
hs_section_status hs_format__section_check(const uint8_t *data, size_t size, uint64_t offset,
                                           hs_section_info *out);
/* Human text for a status ("checksum mismatch"...). */
const char *hs_format__section_status_text(hs_section_status st);
/* Decompress (or point at) a checked section's raw bytes into *buf
 * (grown as needed); *out points at them. Messages name `name`. */
int hs_format__section_raw(ZSTD_DCtx **dctx, hs_buf *buf, const uint8_t *data,
                           const hs_section_info *s, const char *name, const uint8_t **out);

#endif
