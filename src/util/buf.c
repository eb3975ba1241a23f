/* util/buf.c: growable byte buffer and bounds-checked read cursor. */
#include <string.h>
#include "util/buf.h"
#include "util/alloc.h"
#include "heapsnap/errors.h"

int hs_buf_grow(hs_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return hs_error_set(HS_ENOMEM, "buffer too large");
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = hs_reallocarray(b->data, cap, 1);
	if (!p)
		return HS_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int hs_buf_put(hs_buf *b, const void *data, size_t len)
{
	HS_TRY(hs_buf_grow(b, len));
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void hs_buf_clear(hs_buf *b) { b->len = 0; }

void hs_buf_release(hs_buf *b)
{
	hs_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int hs_cursor_varint(hs_cursor *c, uint64_t *out, const char *what)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (c->p >= c->end)
			return hs_error_set(HS_EFORMAT, "%s: varint runs past the end of its stream", what);
		uint8_t byte = *c->p++;
		if (shift == 63 && byte > 1)
			return hs_error_set(HS_EFORMAT, "%s: varint overflows 64 bits", what);
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return hs_error_set(HS_EFORMAT, "%s: varint longer than 10 bytes", what);
}

int hs_cursor_u8(hs_cursor *c, uint8_t *out, const char *what)
{
	if (c->p >= c->end)
		return hs_error_set(HS_EFORMAT, "%s: unexpected end of stream", what);
	*out = *c->p++;
	return 0;
}

int hs_cursor_bytes(hs_cursor *c, const uint8_t **out, size_t len, const char *what)
{
	if (len > hs_cursor_left(c))
		return hs_error_set(HS_EFORMAT, "%s: %zu bytes claimed, %zu left", what, len, hs_cursor_left(c));
	*out = c->p;
	c->p += len;
	return 0;
}

int hs_cursor_sub(hs_cursor *c, hs_cursor *out, const char *what)
{
	uint64_t len;
	const uint8_t *p;
	HS_TRY(hs_cursor_varint(c, &len, what));
	if (len > hs_cursor_left(c))
		return hs_error_set(HS_EFORMAT, "%s: stream of %llu bytes runs past its section (%zu left)",
		                    what, (unsigned long long)len, hs_cursor_left(c));
	HS_TRY(hs_cursor_bytes(c, &p, (size_t)len, what));
	out->p = p;
	out->end = p + len;
	return 0;
}
