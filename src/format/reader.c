/*
 * format/reader.c: validates and decodes a snapshot.
 *
 * Validation happens in two passes so that bad input never sizes an
 * allocation or reaches a visitor: first the container (header, footer,
 * index, each section header and checksum, lengths against the file size
 * and the format's limits, totals against the raw lengths), then the
 * sections are decompressed one at a time and decoded, with every stream
 * bounds-checked and every id checked against what was defined before it.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "format_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/file.h"

typedef struct section_info {
	uint32_t kind;
	uint32_t flags;
	uint32_t raw;
	uint32_t stored;
	uint64_t offset; /* of the section header */
} section_info;

typedef struct reader {
	const char *name;
	const uint8_t *data;
	size_t size;
	const hs_read_visitor *v;
	void *payload;
	int mapped; /* data is our private file mapping: pages may be dropped */

	uint32_t python_version;
	hs_totals totals;
	uint16_t minor; /* header's format minor version */
	section_info *sections;
	uint64_t section_count;

	ZSTD_DCtx *dctx;
	uint8_t *raw;
	size_t raw_cap;

	/* Decoding state. */
	uint64_t strings, types, nodes, edges, roots, metas;
	uint64_t site_locs, site_stacks;
	uint64_t last_address; /* of the last complete node, for continuations */
	uint32_t last_type;
	int have_last;

	/* The records of the last NODES section (kept only for a visitor of
	 * REPORTED, which is positional): address and size, and the file
	 * index of its first object. */
	struct rec { uint64_t address, size; } *rec;
	size_t rec_count, rec_cap;
	uint64_t rec_first_node;
	int rec_first_continued;
	uint32_t prev_kind; /* kind of the section decoded before */
} reader;

/* Fuzz builds accept any checksum so that the fuzzer reaches the decoders
 * behind them; everything else is validated the same way. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_BAD(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define CRC_BAD(stored, computed) ((stored) != (computed))
#endif

#define FAIL(r, code, ...) fail_at((r), (code), __VA_ARGS__)

static int fail_at(reader *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(reader *r, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hs_error_set(code, "cannot read '%s': %s", r->name, msg);
}

/* Wrap a cursor error (already set) with the file name and section. */
static int wrap(reader *r, int rc, const char *where)
{
	if (rc >= 0)
		return rc;
	char inner[768];
	snprintf(inner, sizeof(inner), "%s", hs_error_last());
	return hs_error_set(rc, "cannot read '%s': corrupt %s: %s", r->name, where, inner);
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case HS_SECTION_META: return "META";
	case HS_SECTION_STRINGS: return "STRINGS";
	case HS_SECTION_TYPES: return "TYPES";
	case HS_SECTION_NODES: return "NODES";
	case HS_SECTION_ROOTS: return "ROOTS";
	case HS_SECTION_INDEX: return "INDEX";
	case HS_SECTION_META_END: return "META_END";
	case HS_SECTION_SIZES: return "SIZES";
	case HS_SECTION_SITES: return "SITES";
	case HS_SECTION_ALLOCS: return "ALLOCS";
	case HS_SECTION_REPORTED: return "REPORTED";
	default: return "unknown";
	}
}

/* ------------------------------------------------------------------ */
/* Container.                                                          */

static int check_header(reader *r)
{
	const uint8_t *h = r->data;
	if (r->size < 8 || memcmp(h, HS_MAGIC, 8) != 0) {
		if (r->size >= 4 && memcmp(h, HS_MAGIC, 4) == 0)
			return FAIL(r, HS_EFORMAT, "damaged header (the file looks converted as text: "
			                           "copy snapshots in binary mode)");
		if (r->size == 0)
			return FAIL(r, HS_EFORMAT, "empty file, not a heapsnap snapshot");
		return FAIL(r, HS_EFORMAT, "not a heapsnap snapshot (bad magic)");
	}
	if (r->size < HS_HEADER_SIZE)
		return FAIL(r, HS_EFORMAT, "truncated (header incomplete); the file was cut short");
	if (CRC_BAD(hs_get_le32(h + 28), hs_crc32(0, h, 28)))
		return FAIL(r, HS_EFORMAT, "corrupt header (checksum mismatch)");
	uint16_t major = hs_get_le16(h + 8), minor = hs_get_le16(h + 10);
	if (major != HS_FORMAT_MAJOR)
		return FAIL(r, HS_EVERSION, "snapshot format version %u.%u is not supported (this heapsnap "
		                            "reads %u.x); use a heapsnap that matches the one that wrote it",
		            major, minor, HS_FORMAT_MAJOR);
	uint16_t kind = hs_get_le16(h + 12);
	if (kind == HS_FILE_RECORDING)
		return FAIL(r, HS_EFORMAT, "this is a heapsnap recording, not a snapshot");
	if (kind != HS_FILE_SNAPSHOT)
		return FAIL(r, HS_EFORMAT, "unknown file kind %u", kind);
	if (h[14] != 8 || h[15] != 1)
		return FAIL(r, HS_EVERSION, "written for a %u-byte-pointer %s target; only 64-bit "
		                            "little-endian snapshots are supported",
		            h[14], h[15] == 1 ? "little-endian" : "big-endian");
	if (hs_get_le32(h + 20) != 0)
		return FAIL(r, HS_EVERSION, "unknown header flags 0x%x; a newer heapsnap wrote this file",
		            hs_get_le32(h + 20));
	r->python_version = hs_get_le32(h + 16);
	r->minor = minor;
	return 0;
}

static int read_section_header(reader *r, uint64_t offset, section_info *out)
{
	if (offset > r->size || r->size - offset < HS_SECTION_HEADER_SIZE)
		return FAIL(r, HS_EFORMAT, "section header at offset %llu lies past the end of the file",
		            (unsigned long long)offset);
	const uint8_t *h = r->data + offset;
	if (CRC_BAD(hs_get_le32(h + 20), hs_crc32(0, h, 20)))
		return FAIL(r, HS_EFORMAT, "corrupt section header at offset %llu (checksum mismatch)",
		            (unsigned long long)offset);
	out->kind = hs_get_le32(h);
	out->flags = hs_get_le32(h + 4);
	out->raw = hs_get_le32(h + 8);
	out->stored = hs_get_le32(h + 12);
	out->offset = offset;
	if (out->flags & ~HS_SECTION_ZSTD)
		return FAIL(r, HS_EFORMAT, "section at offset %llu has unknown flags 0x%x",
		            (unsigned long long)offset, out->flags);
	if (out->raw > HS_SECTION_MAX_RAW)
		return FAIL(r, HS_ELIMIT, "%s section at offset %llu claims %u bytes (limit %u)",
		            kind_name(out->kind), (unsigned long long)offset, out->raw, HS_SECTION_MAX_RAW);
	if (!(out->flags & HS_SECTION_ZSTD) && out->raw != out->stored)
		return FAIL(r, HS_EFORMAT, "uncompressed section at offset %llu has differing lengths",
		            (unsigned long long)offset);
	if (r->size - offset - HS_SECTION_HEADER_SIZE < out->stored)
		return FAIL(r, HS_EFORMAT, "%s section at offset %llu runs past the end of the file",
		            kind_name(out->kind), (unsigned long long)offset);
	const uint8_t *payload = h + HS_SECTION_HEADER_SIZE;
	if (CRC_BAD(hs_get_le32(h + 16), hs_crc32(0, payload, out->stored)))
		return FAIL(r, HS_EFORMAT, "corrupt %s section at offset %llu (checksum mismatch)",
		            kind_name(out->kind), (unsigned long long)offset);
	return 0;
}

/* Decompress (or point at) a section's raw bytes. */
static int section_raw(reader *r, const section_info *s, const uint8_t **out)
{
	const uint8_t *payload = r->data + s->offset + HS_SECTION_HEADER_SIZE;
	if (!(s->flags & HS_SECTION_ZSTD)) {
		*out = payload;
		return 0;
	}
	unsigned long long content = ZSTD_getFrameContentSize(payload, s->stored);
	if (content == ZSTD_CONTENTSIZE_ERROR)
		return FAIL(r, HS_EFORMAT, "%s section at offset %llu is not a zstd frame",
		            kind_name(s->kind), (unsigned long long)s->offset);
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != s->raw)
		return FAIL(r, HS_EFORMAT, "%s section at offset %llu: frame holds %llu bytes, header says %u",
		            kind_name(s->kind), (unsigned long long)s->offset, content, s->raw);
	if (s->raw > r->raw_cap) {
		uint8_t *p = hs_reallocarray(r->raw, s->raw, 1);
		if (!p)
			return HS_ENOMEM;
		r->raw = p;
		r->raw_cap = s->raw;
	}
	if (!r->dctx && !(r->dctx = ZSTD_createDCtx()))
		return hs_error_set(HS_ENOMEM, "out of memory (zstd context)");
	size_t n = ZSTD_decompressDCtx(r->dctx, r->raw, s->raw, payload, s->stored);
	if (ZSTD_isError(n))
		return FAIL(r, HS_EFORMAT, "%s section at offset %llu does not decompress: %s",
		            kind_name(s->kind), (unsigned long long)s->offset, ZSTD_getErrorName(n));
	if (n != s->raw)
		return FAIL(r, HS_EFORMAT, "%s section at offset %llu decompresses to %zu bytes, header says %u",
		            kind_name(s->kind), (unsigned long long)s->offset, n, s->raw);
	*out = r->raw;
	return 0;
}

static int read_index(reader *r)
{
	if (r->size < HS_HEADER_SIZE + HS_SECTION_HEADER_SIZE + HS_FOOTER_SIZE)
		return FAIL(r, HS_EFORMAT, "truncated (footer missing); the file was cut short while "
		                           "being written");
	const uint8_t *f = r->data + r->size - HS_FOOTER_SIZE;
	if (memcmp(f + 16, HS_END_MAGIC, 8) != 0)
		return FAIL(r, HS_EFORMAT, "truncated (footer missing); the file was cut short while "
		                           "being written");
	if (CRC_BAD(hs_get_le32(f + 12), hs_crc32(0, f, 12)))
		return FAIL(r, HS_EFORMAT, "corrupt footer (checksum mismatch)");
	uint64_t index_offset = hs_get_le64(f);
	uint32_t declared = hs_get_le32(f + 8);
	if (index_offset < HS_HEADER_SIZE || index_offset > r->size - HS_FOOTER_SIZE)
		return FAIL(r, HS_EFORMAT, "corrupt footer (index offset %llu outside the file)",
		            (unsigned long long)index_offset);

	section_info idx;
	HS_TRY(read_section_header(r, index_offset, &idx));
	if (idx.kind != HS_SECTION_INDEX)
		return FAIL(r, HS_EFORMAT, "corrupt footer (it points at a %s section, not the index)",
		            kind_name(idx.kind));
	if (idx.offset + HS_SECTION_HEADER_SIZE + idx.stored != r->size - HS_FOOTER_SIZE)
		return FAIL(r, HS_EFORMAT, "corrupt index (it does not end where the footer starts)");
	const uint8_t *raw;
	HS_TRY(section_raw(r, &idx, &raw));
	hs_cursor c = { raw, raw + idx.raw };
	uint64_t t[5], count;
	for (int i = 0; i < 5; i++)
		HS_TRY(wrap(r, hs_cursor_varint(&c, &t[i], "totals"), "index"));
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "section count"), "index"));
	if (count != declared)
		return FAIL(r, HS_EFORMAT, "corrupt index (%llu sections listed, footer says %u)",
		            (unsigned long long)count, declared);
	/* Each listed section needs at least a header in the file. */
	if (count > (r->size - HS_HEADER_SIZE) / HS_SECTION_HEADER_SIZE)
		return FAIL(r, HS_ELIMIT, "corrupt index (%llu sections cannot fit in %zu bytes)",
		            (unsigned long long)count, r->size);
	r->sections = hs_calloc(count ? count : 1, sizeof(section_info));
	if (!r->sections)
		return HS_ENOMEM;
	r->section_count = count;
	uint64_t expect = HS_HEADER_SIZE;
	uint64_t raw_by_kind[16] = {0};
	for (uint64_t i = 0; i < count; i++) {
		uint64_t kind, offset, rawlen, stored;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &kind, "section kind"), "index"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &offset, "section offset"), "index"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &rawlen, "section length"), "index"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &stored, "section length"), "index"));
		if (offset != expect)
			return FAIL(r, HS_EFORMAT, "corrupt index (section %llu at offset %llu, expected %llu)",
			            (unsigned long long)i, (unsigned long long)offset, (unsigned long long)expect);
		section_info *s = &r->sections[i];
		HS_TRY(read_section_header(r, offset, s));
		if (s->kind != kind || s->raw != rawlen || s->stored != stored)
			return FAIL(r, HS_EFORMAT, "corrupt index (entry %llu disagrees with the section at "
			                           "offset %llu)", (unsigned long long)i, (unsigned long long)offset);
		if (s->kind == HS_SECTION_INDEX)
			return FAIL(r, HS_EFORMAT, "corrupt index (a second index at offset %llu)",
			            (unsigned long long)offset);
		expect = offset + HS_SECTION_HEADER_SIZE + s->stored;
		if (s->kind < 16)
			raw_by_kind[s->kind] += s->raw;
	}
	if (hs_cursor_left(&c) != 0)
		return FAIL(r, HS_EFORMAT, "corrupt index (%zu trailing bytes)", hs_cursor_left(&c));
	if (expect != index_offset)
		return FAIL(r, HS_EFORMAT, "corrupt index (sections end at %llu, index starts at %llu)",
		            (unsigned long long)expect, (unsigned long long)index_offset);

	/* Totals must be possible given the bytes that encode them. */
	if (t[0] > raw_by_kind[HS_SECTION_NODES] / 6 || t[1] > raw_by_kind[HS_SECTION_NODES] / 2 ||
	    t[2] > raw_by_kind[HS_SECTION_STRINGS] || t[3] > raw_by_kind[HS_SECTION_TYPES] / 4 ||
	    t[4] > raw_by_kind[HS_SECTION_ROOTS] / 4 || t[0] >= UINT32_MAX || t[2] >= UINT32_MAX ||
	    t[3] >= UINT32_MAX)
		return FAIL(r, HS_ELIMIT, "corrupt index (absurd totals: %llu objects, %llu references, "
		                          "%llu strings, %llu types, %llu roots for the data present)",
		            (unsigned long long)t[0], (unsigned long long)t[1], (unsigned long long)t[2],
		            (unsigned long long)t[3], (unsigned long long)t[4]);
	r->totals.nodes = t[0];
	r->totals.edges = t[1];
	r->totals.strings = t[2];
	r->totals.types = t[3];
	r->totals.roots = t[4];
	r->totals.minor = r->minor;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sections.                                                           */

static int decode_strings(reader *r, const uint8_t *raw, uint32_t len)
{
	hs_cursor c = { raw, raw + len };
	uint64_t count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), "STRINGS section"));
	if (count > len || r->strings + count > r->totals.strings)
		return FAIL(r, HS_EFORMAT, "corrupt STRINGS section (%llu strings, more than the totals say)",
		            (unsigned long long)count);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t slen;
		const uint8_t *s;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &slen, "string length"), "STRINGS section"));
		if (slen > hs_cursor_left(&c))
			return FAIL(r, HS_EFORMAT, "corrupt STRINGS section (string of %llu bytes, %zu left)",
			            (unsigned long long)slen, hs_cursor_left(&c));
		HS_TRY(wrap(r, hs_cursor_bytes(&c, &s, (size_t)slen, "string"), "STRINGS section"));
		if (r->v->string)
			HS_TRY(r->v->string((uint32_t)r->strings, (const char *)s, (size_t)slen, r->payload));
		r->strings++;
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt STRINGS section (%zu trailing bytes)", hs_cursor_left(&c));
	return 0;
}

static int string_ref(reader *r, uint64_t ref, uint32_t *out, const char *where)
{
	if (ref == 0) {
		*out = HS_NO_STRING;
		return 0;
	}
	if (ref - 1 >= r->strings)
		return FAIL(r, HS_EFORMAT, "corrupt %s (string id %llu not defined before it)", where,
		            (unsigned long long)(ref - 1));
	*out = (uint32_t)(ref - 1);
	return 0;
}

static int decode_types(reader *r, const uint8_t *raw, uint32_t len)
{
	hs_cursor c = { raw, raw + len };
	uint64_t count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), "TYPES section"));
	if (count > len || r->types + count > r->totals.types)
		return FAIL(r, HS_EFORMAT, "corrupt TYPES section (%llu types, more than the totals say)",
		            (unsigned long long)count);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t addr, name, flags, basic;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &addr, "type address"), "TYPES section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &name, "type name"), "TYPES section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &flags, "type flags"), "TYPES section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &basic, "type size"), "TYPES section"));
		hs_type_record t = { addr, 0, (uint32_t)flags, basic };
		HS_TRY(string_ref(r, name, &t.name, "TYPES section"));
		if (flags > 0xff)
			return FAIL(r, HS_EFORMAT, "corrupt TYPES section (flags 0x%llx)", (unsigned long long)flags);
		if (r->v->type)
			HS_TRY(r->v->type((uint32_t)r->types, &t, r->payload));
		r->types++;
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt TYPES section (%zu trailing bytes)", hs_cursor_left(&c));
	return 0;
}

static int decode_roots(reader *r, const uint8_t *raw, uint32_t len)
{
	hs_cursor c = { raw, raw + len };
	uint64_t count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), "ROOTS section"));
	if (count > len || r->roots + count > r->totals.roots)
		return FAIL(r, HS_EFORMAT, "corrupt ROOTS section (%llu roots, more than the totals say)",
		            (unsigned long long)count);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t kind, target, name, detail;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &kind, "root kind"), "ROOTS section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &target, "root target"), "ROOTS section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &name, "root name"), "ROOTS section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &detail, "root detail"), "ROOTS section"));
		if (kind < 1 || kind > HS_ROOT_KIND_MAX || kind == HS_ROOT_HELD)
			return FAIL(r, HS_EFORMAT, "corrupt ROOTS section (root kind %llu)", (unsigned long long)kind);
		hs_root_record rec = { (uint8_t)kind, target, 0, 0 };
		HS_TRY(string_ref(r, name, &rec.name, "ROOTS section"));
		HS_TRY(string_ref(r, detail, &rec.detail, "ROOTS section"));
		if (r->v->root)
			HS_TRY(r->v->root(&rec, r->payload));
		r->roots++;
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt ROOTS section (%zu trailing bytes)", hs_cursor_left(&c));
	return 0;
}

/* REPORTED (1.1), right after the NODES section it describes: one varint
 * per record of that section, 0 = unknown, else getsizeof = size +
 * zigzag_decode(v - 1). A continuation record has 0. */
static int decode_reported(reader *r, const uint8_t *raw, uint32_t len, uint64_t offset)
{
	char where[64];
	snprintf(where, sizeof(where), "REPORTED section at offset %llu", (unsigned long long)offset);
	if (r->prev_kind != HS_SECTION_NODES)
		return FAIL(r, HS_EFORMAT, "corrupt %s (not right after a NODES section)", where);
	hs_cursor c = { raw, raw + len };
	uint64_t count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), where));
	if (count > len || count != r->rec_count)
		return FAIL(r, HS_EFORMAT, "corrupt %s (%llu entries for a NODES section of %zu records, %u bytes)",
		            where, (unsigned long long)count, r->rec_count, len);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t v;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &v, "entry"), where));
		if (v == 0)
			continue;
		if (i == 0 && r->rec_first_continued)
			return FAIL(r, HS_EFORMAT, "corrupt %s (an entry for a continuation record)", where);
		int64_t d = hs_zigzag_decode(v - 1);
		uint64_t size = r->rec[i].size;
		uint64_t gs = size + (uint64_t)d;
		if (d < 0 ? (uint64_t)-(d + 1) >= size : gs < size)
			return FAIL(r, HS_EFORMAT, "corrupt %s (entry %llu: getsizeof = size %llu %+lld is out of range)", where,
			            (unsigned long long)i, (unsigned long long)size, (long long)d);
		HS_TRY(r->v->reported(r->rec_first_node + i - (uint64_t)r->rec_first_continued, r->rec[i].address,
		                      gs, r->payload));
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt %s (%zu trailing bytes)", where, hs_cursor_left(&c));
	return 0;
}

static int decode_sizes(reader *r, const uint8_t *raw, uint32_t len)
{
	hs_cursor c = { raw, raw + len };
	uint64_t count, prev = 0;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), "SIZES section"));
	if (count > len / 2)
		return FAIL(r, HS_EFORMAT, "corrupt SIZES section (%llu entries cannot fit in %u bytes)",
		            (unsigned long long)count, len);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t delta, size;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &delta, "address"), "SIZES section"));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &size, "size"), "SIZES section"));
		prev += (uint64_t)hs_zigzag_decode(delta);
		if (r->v->size)
			HS_TRY(r->v->size(prev, size, r->payload));
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt SIZES section (%zu trailing bytes)", hs_cursor_left(&c));
	return 0;
}

static int decode_sites(reader *r, const uint8_t *raw, uint32_t len)
{
	static const char *where = "SITES section";
	hs_cursor c = { raw, raw + len };
	uint64_t sample_bytes, nlocs, nstacks;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &sample_bytes, "sampling interval"), where));
	HS_TRY(wrap(r, hs_cursor_varint(&c, &nlocs, "location count"), where));
	if (nlocs > hs_cursor_left(&c) / 4 || r->site_locs + nlocs >= UINT32_MAX)
		return FAIL(r, HS_EFORMAT, "corrupt SITES section (%llu locations cannot fit in %u bytes)",
		            (unsigned long long)nlocs, len);
	if (r->v->sites)
		HS_TRY(r->v->sites(sample_bytes, r->payload));
	for (uint64_t i = 0; i < nlocs; i++) {
		uint64_t file, func, line, flags;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &file, "location file"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &func, "location function"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &line, "location line"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&c, &flags, "location flags"), where));
		if (line > INT32_MAX || (flags & ~(uint64_t)HS_SITE_FLAGS_KNOWN))
			return FAIL(r, HS_EFORMAT, "corrupt SITES section (location %llu: line %llu, flags 0x%llx)",
			            (unsigned long long)(r->site_locs), (unsigned long long)line,
			            (unsigned long long)flags);
		hs_site_loc l = { 0, 0, (uint32_t)line, (uint32_t)flags };
		HS_TRY(string_ref(r, file, &l.file, where));
		HS_TRY(string_ref(r, func, &l.function, where));
		if (r->v->site_loc)
			HS_TRY(r->v->site_loc((uint32_t)r->site_locs, &l, r->payload));
		r->site_locs++;
	}
	HS_TRY(wrap(r, hs_cursor_varint(&c, &nstacks, "stack count"), where));
	if (nstacks > hs_cursor_left(&c) || r->site_stacks + nstacks >= UINT32_MAX)
		return FAIL(r, HS_EFORMAT, "corrupt SITES section (%llu stacks cannot fit in %u bytes)",
		            (unsigned long long)nstacks, len);
	uint32_t frames[HS_SITE_MAX_FRAMES];
	for (uint64_t i = 0; i < nstacks; i++) {
		uint64_t n;
		HS_TRY(wrap(r, hs_cursor_varint(&c, &n, "stack depth"), where));
		if (n > HS_SITE_MAX_FRAMES)
			return FAIL(r, HS_EFORMAT, "corrupt SITES section (stack of %llu frames, at most %u)",
			            (unsigned long long)n, HS_SITE_MAX_FRAMES);
		for (uint64_t k = 0; k < n; k++) {
			uint64_t loc;
			HS_TRY(wrap(r, hs_cursor_varint(&c, &loc, "stack frame"), where));
			if (loc >= r->site_locs)
				return FAIL(r, HS_EFORMAT, "corrupt SITES section (location %llu not defined before it)",
				            (unsigned long long)loc);
			frames[k] = (uint32_t)loc;
		}
		if (r->v->site_stack)
			HS_TRY(r->v->site_stack((uint32_t)r->site_stacks, frames, (uint32_t)n, r->payload));
		r->site_stacks++;
	}
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt SITES section (%zu trailing bytes)", hs_cursor_left(&c));
	return 0;
}

static int decode_allocs(reader *r, const uint8_t *raw, uint32_t len)
{
	static const char *where = "ALLOCS section";
	hs_cursor c = { raw, raw + len };
	uint64_t count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &count, "count"), where));
	if (count > len / 4)
		return FAIL(r, HS_EFORMAT, "corrupt ALLOCS section (%llu blocks cannot fit in %u bytes)",
		            (unsigned long long)count, len);
	hs_cursor st[4];
	static const char *const names[4] = { "address stream", "stack stream", "size stream", "time stream" };
	for (int i = 0; i < 4; i++)
		HS_TRY(wrap(r, hs_cursor_sub(&c, &st[i], names[i]), where));
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt ALLOCS section (%zu trailing bytes)", hs_cursor_left(&c));
	uint64_t addr = 0, time = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t da, stack, size, dt;
		HS_TRY(wrap(r, hs_cursor_varint(&st[0], &da, "block address"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&st[1], &stack, "block stack"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&st[2], &size, "block size"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&st[3], &dt, "block time"), where));
		if (stack >= r->site_stacks)
			return FAIL(r, HS_EFORMAT, "corrupt ALLOCS section (stack %llu not defined before it)",
			            (unsigned long long)stack);
		addr += (uint64_t)hs_zigzag_decode(da);
		time += (uint64_t)hs_zigzag_decode(dt);
		hs_alloc_record a = { addr, (uint32_t)stack, size, time };
		if (r->v->alloc)
			HS_TRY(r->v->alloc(&a, r->payload));
	}
	for (int i = 0; i < 4; i++)
		if (hs_cursor_left(&st[i]))
			return FAIL(r, HS_EFORMAT, "corrupt ALLOCS section (%zu bytes left in its %s)",
			            hs_cursor_left(&st[i]), names[i]);
	return 0;
}

static int decode_nodes(reader *r, const uint8_t *raw, uint32_t len, uint64_t offset)
{
	char where[64];
	snprintf(where, sizeof(where), "NODES section at offset %llu", (unsigned long long)offset);
	hs_cursor c = { raw, raw + len };
	uint64_t node_count, edge_count;
	HS_TRY(wrap(r, hs_cursor_varint(&c, &node_count, "node count"), where));
	HS_TRY(wrap(r, hs_cursor_varint(&c, &edge_count, "edge count"), where));
	if (node_count > len / 6 || edge_count > len / 2)
		return FAIL(r, HS_ELIMIT, "corrupt %s (%llu objects and %llu references cannot fit in %u bytes)",
		            where, (unsigned long long)node_count, (unsigned long long)edge_count, len);
	hs_cursor s[HS_STREAM_COUNT];
	for (int i = 0; i < HS_STREAM_COUNT; i++)
		HS_TRY(wrap(r, hs_cursor_sub(&c, &s[i], "stream"), where));
	if (hs_cursor_left(&c))
		return FAIL(r, HS_EFORMAT, "corrupt %s (%zu trailing bytes)", where, hs_cursor_left(&c));

	uint64_t prev_address = 0, prev_target = 0, prev_key = 0, prev_index = 0, edges_seen = 0;
	int skipped_edges = 0;
	int keep = r->v->reported != NULL; /* for a REPORTED section after this one */
	r->rec_count = 0;
	r->rec_first_node = r->nodes;
	r->rec_first_continued = 0;
	if (keep && node_count > r->rec_cap) {
		struct rec *nr = hs_reallocarray(r->rec, (size_t)node_count, sizeof(*nr));
		if (!nr)
			return FAIL(r, HS_ENOMEM, "out of memory (%s)", where);
		r->rec = nr;
		r->rec_cap = (size_t)node_count;
	}
	for (uint64_t i = 0; i < node_count; i++) {
		uint64_t delta, type, size, refcount, nedges;
		uint8_t flags;
		HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_ADDRESS], &delta, "address"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_TYPE], &type, "type"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_SIZE], &size, "size"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_REFCOUNT], &refcount, "refcount"), where));
		HS_TRY(wrap(r, hs_cursor_u8(&s[HS_STREAM_FLAGS], &flags, "flags"), where));
		HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_EDGE_COUNTS], &nedges, "edge count"), where));
		uint64_t address = prev_address + (uint64_t)hs_zigzag_decode(delta);
		prev_address = address;
		if (flags & ~(HS_NODE_FLAGS_KNOWN | HS_NODE_CONTINUED))
			return FAIL(r, HS_EFORMAT, "corrupt %s (object %llu has unknown flags 0x%x)", where,
			            (unsigned long long)i, flags);
		if (type >= r->types)
			return FAIL(r, HS_EFORMAT, "corrupt %s (object %llu has undefined type id %llu)", where,
			            (unsigned long long)i, (unsigned long long)type);
		if (nedges > edge_count - edges_seen)
			return FAIL(r, HS_EFORMAT, "corrupt %s (edge counts exceed the section's %llu references)",
			            where, (unsigned long long)edge_count);
		int continued = (flags & HS_NODE_CONTINUED) != 0;
		if (keep) {
			r->rec[i].address = address;
			r->rec[i].size = size;
			r->rec_count = (size_t)i + 1;
			r->rec_first_continued |= continued;
		}
		if (continued) {
			if (i != 0 || !r->have_last || address != r->last_address || type != r->last_type ||
			    (flags & ~HS_NODE_CONTINUED))
				return FAIL(r, HS_EFORMAT, "corrupt %s (misplaced continuation record)", where);
		} else {
			hs_node_record n = { address, (uint32_t)type, flags, size, refcount, NULL, 0,
			                     (uint32_t)nedges };
			if (flags & HS_NODE_HAS_VALUE) {
				uint64_t vlen;
				const uint8_t *vp;
				HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_VALUES], &vlen, "value length"), where));
				if (vlen > HS_VALUE_MAX)
					return FAIL(r, HS_EFORMAT, "corrupt %s (value of %llu bytes)", where,
					            (unsigned long long)vlen);
				HS_TRY(wrap(r, hs_cursor_bytes(&s[HS_STREAM_VALUES], &vp, (size_t)vlen, "value"), where));
				n.value = (const char *)vp;
				n.value_len = (uint32_t)vlen;
			} else if (flags & HS_NODE_VALUE_TRUNCATED) {
				return FAIL(r, HS_EFORMAT, "corrupt %s (truncated flag without a value)", where);
			}
			if (r->nodes >= r->totals.nodes)
				return FAIL(r, HS_EFORMAT, "corrupt %s (more objects than the index's total of %llu)",
				            where, (unsigned long long)r->totals.nodes);
			if (r->v->node)
				HS_TRY(r->v->node(&n, r->payload));
			r->nodes++;
			r->last_address = address;
			r->last_type = (uint32_t)type;
			r->have_last = 1;
		}
		if (!r->v->edge) {
			/* a visitor without edges (an address-only pass): the edge
			 * streams are not decoded; the totals still count them */
			r->edges += nedges;
			edges_seen += nedges;
			skipped_edges = 1;
			continue;
		}
		for (uint64_t k = 0; k < nedges; k++) {
			uint64_t tdelta, label = 0;
			uint8_t kb;
			HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_TARGETS], &tdelta, "target"), where));
			HS_TRY(wrap(r, hs_cursor_u8(&s[HS_STREAM_EDGE_KINDS], &kb, "edge kind"), where));
			unsigned ek = kb & 3u, lk = (kb >> 2) & 15u;
			if (ek > HS_EDGE_WEAK || lk >= HS_LABEL_KIND_COUNT || (kb & 0xc0))
				return FAIL(r, HS_EFORMAT, "corrupt %s (edge kind byte 0x%02x)", where, kb);
			if (lk == HS_LABEL_INDEX) {
				uint64_t d;
				HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_LABELS], &d, "label"), where));
				label = prev_index + (uint64_t)hs_zigzag_decode(d);
				prev_index = label;
			} else if (hs_label_has_number(lk)) {
				HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_LABELS], &label, "label"), where));
				if (hs_label_has_string(lk) && label >= r->strings)
					return FAIL(r, HS_EFORMAT, "corrupt %s (label string id %llu not defined)", where,
					            (unsigned long long)label);
			} else if (hs_label_has_key(lk)) {
				uint64_t kd;
				HS_TRY(wrap(r, hs_cursor_varint(&s[HS_STREAM_LABEL_KEYS], &kd, "label key"), where));
				label = prev_key + (uint64_t)hs_zigzag_decode(kd);
				prev_key = label;
			}
			uint64_t target = prev_target + (uint64_t)hs_zigzag_decode(tdelta);
			prev_target = target;
			if (r->edges >= r->totals.edges)
				return FAIL(r, HS_EFORMAT, "corrupt %s (more references than the index's total of %llu)",
				            where, (unsigned long long)r->totals.edges);
			hs_edge_record e = { target, (uint8_t)ek, (uint8_t)lk, label };
			if (r->v->edge)
				HS_TRY(r->v->edge(&e, r->payload));
			r->edges++;
		}
		edges_seen += nedges;
	}
	if (edges_seen != edge_count)
		return FAIL(r, HS_EFORMAT, "corrupt %s (edge counts sum to %llu, section says %llu)", where,
		            (unsigned long long)edges_seen, (unsigned long long)edge_count);
	for (int i = 0; i < HS_STREAM_COUNT; i++)
		if (hs_cursor_left(&s[i]) && !(skipped_edges && i >= HS_STREAM_TARGETS))
			return FAIL(r, HS_EFORMAT, "corrupt %s (stream %d has %zu bytes left over)", where, i,
			            hs_cursor_left(&s[i]));
	return 0;
}

/* Once a section is decoded its file pages are not needed again: drop them
 * so that the mapping does not add the file's size to the peak RSS. */
static void release_pages(reader *r, const section_info *s)
{
	if (!r->mapped)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = ((uintptr_t)(r->data + s->offset) + page - 1) & ~(page - 1);
	uintptr_t end = ((uintptr_t)(r->data + s->offset + HS_SECTION_HEADER_SIZE + s->stored)) & ~(page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}

static int read_all(reader *r)
{
	HS_TRY(check_header(r));
	HS_TRY(read_index(r));
	if (r->section_count == 0 || r->sections[0].kind != HS_SECTION_META)
		return FAIL(r, HS_EFORMAT, "corrupt snapshot (the first section is not the metadata)");
	if (r->v->totals)
		HS_TRY(r->v->totals(&r->totals, r->python_version, r->payload));
	const section_info *meta_end = NULL;
	for (uint64_t i = 0; i < r->section_count; i++) {
		const section_info *s = &r->sections[i];
		const uint8_t *raw;
		switch (s->kind) {
		case HS_SECTION_META:
			if (r->metas++)
				return FAIL(r, HS_EFORMAT, "corrupt snapshot (more than one metadata section)");
			HS_TRY(section_raw(r, s, &raw));
			if (r->v->meta)
				HS_TRY(r->v->meta((const char *)raw, s->raw, r->payload));
			break;
		case HS_SECTION_STRINGS:
			HS_TRY(section_raw(r, s, &raw));
			HS_TRY(decode_strings(r, raw, s->raw));
			break;
		case HS_SECTION_TYPES:
			HS_TRY(section_raw(r, s, &raw));
			HS_TRY(decode_types(r, raw, s->raw));
			break;
		case HS_SECTION_NODES:
			HS_TRY(section_raw(r, s, &raw));
			HS_TRY(decode_nodes(r, raw, s->raw, s->offset));
			break;
		case HS_SECTION_ROOTS:
			HS_TRY(section_raw(r, s, &raw));
			HS_TRY(decode_roots(r, raw, s->raw));
			break;
		case HS_SECTION_SIZES:
			HS_TRY(section_raw(r, s, &raw));
			HS_TRY(decode_sizes(r, raw, s->raw));
			break;
		case HS_SECTION_REPORTED:
			if (r->prev_kind != HS_SECTION_NODES)
				return FAIL(r, HS_EFORMAT, "corrupt snapshot (a REPORTED section at offset %llu "
				            "not right after a NODES section)", (unsigned long long)s->offset);
			if (r->v->reported) {
				HS_TRY(section_raw(r, s, &raw));
				HS_TRY(decode_reported(r, raw, s->raw, s->offset));
			}
			break;
		case HS_SECTION_SITES:
			if (r->v->sites || r->v->site_loc || r->v->site_stack || r->v->alloc) {
				HS_TRY(section_raw(r, s, &raw));
				HS_TRY(decode_sites(r, raw, s->raw));
			}
			break;
		case HS_SECTION_ALLOCS:
			if (r->v->alloc) {
				HS_TRY(section_raw(r, s, &raw));
				HS_TRY(decode_allocs(r, raw, s->raw));
			}
			break;
		case HS_SECTION_META_END:
			if (meta_end)
				return FAIL(r, HS_EFORMAT, "corrupt snapshot (more than one closing metadata section)");
			meta_end = s;
			break;
		default:
			break; /* unknown kinds are skipped: newer writers stay readable */
		}
		if (s->kind != HS_SECTION_META_END)
			release_pages(r, s);
		r->prev_kind = s->kind;
	}
	if (meta_end) {
		const uint8_t *raw;
		HS_TRY(section_raw(r, meta_end, &raw));
		if (r->v->meta_end)
			HS_TRY(r->v->meta_end((const char *)raw, meta_end->raw, r->payload));
	}
	if (r->nodes != r->totals.nodes || r->edges != r->totals.edges ||
	    r->strings != r->totals.strings || r->types != r->totals.types || r->roots != r->totals.roots)
		return FAIL(r, HS_EFORMAT, "corrupt snapshot (decoded %llu objects, %llu references, %llu "
		                           "roots; the index says %llu, %llu, %llu)",
		            (unsigned long long)r->nodes, (unsigned long long)r->edges,
		            (unsigned long long)r->roots, (unsigned long long)r->totals.nodes,
		            (unsigned long long)r->totals.edges, (unsigned long long)r->totals.roots);
	return 0;
}

static int read_image(const void *data, size_t len, const char *name, int mapped,
                      const hs_read_visitor *v, void *payload)
{
	static const hs_read_visitor none = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	if (v && v->version != HS_READ_VISITOR_VERSION)
		return hs_error_set(HS_EINVAL, "read visitor version %u is not %u", v->version,
		                    HS_READ_VISITOR_VERSION);
	reader r;
	memset(&r, 0, sizeof(r));
	r.name = name ? name : "<memory>";
	r.data = data;
	r.size = len;
	r.v = v ? v : &none;
	r.payload = payload;
	r.mapped = mapped;
	int rc = read_all(&r);
	hs_free(r.sections);
	hs_free(r.raw);
	hs_free(r.rec);
	if (r.dctx)
		ZSTD_freeDCtx(r.dctx);
	return rc;
}

int hs_format_read_memory(const void *data, size_t len, const char *name,
                          const hs_read_visitor *v, void *payload)
{
	return read_image(data, len, name, 0, v, payload);
}

int hs_format_read(const char *path, const hs_read_visitor *v, void *payload)
{
	/* FIFOs, sockets, devices and directories are refused at once */
	int fd;
	HS_TRY(hs_file_open_input(&fd, path, "a snapshot"));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	size_t size = (size_t)st.st_size;
	void *map = NULL;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			int e = errno;
			close(fd);
			return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
		}
		madvise(map, size, MADV_SEQUENTIAL);
	}
	close(fd);
	int rc = read_image(map ? map : "", size, path, map != NULL, v, payload);
	if (map)
		munmap(map, size);
	return rc;
}
