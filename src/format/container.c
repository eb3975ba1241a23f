/*
 * format/container.c: the container's framing as small shared pieces: the
 * file header, building one section, checking one section in place, and
 * decompressing it. The recording writer and reader are built on these;
 * the bytes are those of formats/snapshot-v1.md ("Header", "Section").
 */
#include <string.h>
#include <zstd.h>

#include "format_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

/* Fuzz builds accept any checksum so that the fuzzer reaches the decoders. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_BAD(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define CRC_BAD(stored, computed) ((stored) != (computed))
#endif

void hs_format__header_build(uint8_t out[HS_HEADER_SIZE], uint16_t file_kind,
                             uint32_t python_version)
{
	memset(out, 0, HS_HEADER_SIZE);
	memcpy(out, HS_MAGIC, 8);
	hs_put_le16(out + 8, HS_FORMAT_MAJOR);
	hs_put_le16(out + 10, HS_RECORDING_FORMAT_MINOR);
	hs_put_le16(out + 12, file_kind);
	out[14] = (uint8_t)sizeof(void *);
	out[15] = 1;
	hs_put_le32(out + 16, python_version);
	hs_put_le32(out + 28, hs_crc32(0, out, 28));
}

int hs_format__section_build(hs_buf *out, ZSTD_CCtx *cctx, int level, uint32_t kind,
                             const uint8_t *raw, size_t raw_len, int compress)
{
	if (raw_len > HS_SECTION_MAX_RAW)
		return hs_error_set(HS_ELIMIT, "section of %zu bytes exceeds the format's limit", raw_len);
	size_t start = out->len;
	uint32_t flags = 0;
	size_t stored = raw_len;
	if (compress && raw_len > 0) {
		size_t bound = ZSTD_compressBound(raw_len);
		HS_TRY(hs_buf_grow(out, HS_SECTION_HEADER_SIZE + bound));
		size_t n = ZSTD_compressCCtx(cctx, out->data + start + HS_SECTION_HEADER_SIZE, bound, raw,
		                             raw_len, level);
		if (ZSTD_isError(n))
			return hs_error_set(HS_EZSTD, "cannot compress a section: %s", ZSTD_getErrorName(n));
		stored = n;
		flags = HS_SECTION_ZSTD;
	} else {
		HS_TRY(hs_buf_grow(out, HS_SECTION_HEADER_SIZE + raw_len));
		if (raw_len)
			memcpy(out->data + start + HS_SECTION_HEADER_SIZE, raw, raw_len);
	}
	uint8_t *hdr = out->data + start;
	hs_put_le32(hdr, kind);
	hs_put_le32(hdr + 4, flags);
	hs_put_le32(hdr + 8, (uint32_t)raw_len);
	hs_put_le32(hdr + 12, (uint32_t)stored);
	hs_put_le32(hdr + 16, hs_crc32(0, hdr + HS_SECTION_HEADER_SIZE, stored));
	hs_put_le32(hdr + 20, hs_crc32(0, hdr, 20));
	out->len = start + HS_SECTION_HEADER_SIZE + stored;
	return 0;
}

hs_section_status hs_format__section_check(const uint8_t *data, size_t size, uint64_t offset,
                                           hs_section_info *out)
{
	memset(out, 0, sizeof(*out));
	out->offset = offset;
	if (offset > size || size - offset < HS_SECTION_HEADER_SIZE)
		return HS_SECTION_SHORT;
	const uint8_t *h = data + offset;
	if (CRC_BAD(hs_get_le32(h + 20), hs_crc32(0, h, 20)))
		return HS_SECTION_BAD_HEADER;
	out->kind = hs_get_le32(h);
	out->flags = hs_get_le32(h + 4);
	out->raw = hs_get_le32(h + 8);
	out->stored = hs_get_le32(h + 12);
	if (out->flags & ~HS_SECTION_ZSTD)
		return HS_SECTION_BAD_FLAGS;
	if (out->raw > HS_SECTION_MAX_RAW)
		return HS_SECTION_TOO_BIG;
	if (!(out->flags & HS_SECTION_ZSTD) && out->raw != out->stored)
		return HS_SECTION_BAD_LENGTHS;
	if (size - offset - HS_SECTION_HEADER_SIZE < out->stored)
		return HS_SECTION_CUT;
	if (CRC_BAD(hs_get_le32(h + 16), hs_crc32(0, h + HS_SECTION_HEADER_SIZE, out->stored)))
		return HS_SECTION_BAD_PAYLOAD;
	return HS_SECTION_OK;
}

const char *hs_format__section_status_text(hs_section_status st)
{
	switch (st) {
	case HS_SECTION_OK: return "valid";
	case HS_SECTION_SHORT: return "header incomplete";
	case HS_SECTION_BAD_HEADER: return "header checksum mismatch";
	case HS_SECTION_BAD_FLAGS: return "unknown section flags";
	case HS_SECTION_TOO_BIG: return "length above the format's limit";
	case HS_SECTION_BAD_LENGTHS: return "uncompressed section with differing lengths";
	case HS_SECTION_CUT: return "runs past the end of the file";
	case HS_SECTION_BAD_PAYLOAD: return "checksum mismatch";
	}
	return "invalid";
}

int hs_format__section_raw(ZSTD_DCtx **dctx, hs_buf *buf, const uint8_t *data,
                           const hs_section_info *s, const char *name, const uint8_t **out)
{
	const uint8_t *payload = data + s->offset + HS_SECTION_HEADER_SIZE;
	if (!(s->flags & HS_SECTION_ZSTD)) {
		*out = payload;
		return 0;
	}
	unsigned long long content = ZSTD_getFrameContentSize(payload, s->stored);
	if (content == ZSTD_CONTENTSIZE_ERROR)
		return hs_error_set(HS_EFORMAT, "cannot read '%s': section at offset %llu is not a zstd frame",
		                    name, (unsigned long long)s->offset);
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != s->raw)
		return hs_error_set(HS_EFORMAT, "cannot read '%s': section at offset %llu holds %llu bytes, "
		                    "its header says %u", name, (unsigned long long)s->offset, content, s->raw);
	hs_buf_clear(buf);
	HS_TRY(hs_buf_grow(buf, s->raw ? s->raw : 1));
	if (!*dctx && !(*dctx = ZSTD_createDCtx()))
		return hs_error_set(HS_ENOMEM, "out of memory (zstd context)");
	size_t n = ZSTD_decompressDCtx(*dctx, buf->data, s->raw, payload, s->stored);
	if (ZSTD_isError(n))
		return hs_error_set(HS_EFORMAT, "cannot read '%s': section at offset %llu does not "
		                    "decompress: %s", name, (unsigned long long)s->offset,
		                    ZSTD_getErrorName(n));
	if (n != s->raw)
		return hs_error_set(HS_EFORMAT, "cannot read '%s': section at offset %llu decompresses to "
		                    "%zu bytes, its header says %u", name, (unsigned long long)s->offset, n,
		                    s->raw);
	buf->len = n;
	*out = buf->data;
	return 0;
}
