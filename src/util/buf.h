/*
 * util/buf.h: a growable byte buffer with varint/zigzag appenders, and a
 * bounds-checked cursor to read them back. The varint is LEB128 (7 bits per
 * byte, low group first, at most 10 bytes for 64 bits); zigzag maps signed
 * to unsigned so small negative deltas stay small.
 */
#ifndef HS_UTIL_BUF_H
#define HS_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "heapsnap/common.h"

typedef struct hs_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} hs_buf;

#define HS_BUF_INIT { NULL, 0, 0 }

HS_EXTERN(int) hs_buf_grow(hs_buf *b, size_t extra); /* ensure cap >= len+extra */
HS_EXTERN(int) hs_buf_put(hs_buf *b, const void *data, size_t len);
HS_EXTERN(void) hs_buf_clear(hs_buf *b);   /* len = 0, keep memory */
HS_EXTERN(void) hs_buf_release(hs_buf *b); /* free memory */

static inline uint64_t hs_zigzag_encode(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t hs_zigzag_decode(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Writes at most 10 bytes at p; returns bytes written. */
static inline size_t hs_varint_encode(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The writer's hot path: inline, growing only when the buffer is full. */
static inline int hs_buf_put_u8(hs_buf *b, uint8_t v)
{
	if (b->len == b->cap) {
		int rc = hs_buf_grow(b, 1);
		if (rc < 0)
			return rc;
	}
	b->data[b->len++] = v;
	return 0;
}

static inline int hs_buf_put_varint(hs_buf *b, uint64_t v)
{
	if (b->cap - b->len < 10) {
		int rc = hs_buf_grow(b, 10);
		if (rc < 0)
			return rc;
	}
	b->len += hs_varint_encode(b->data + b->len, v);
	return 0;
}

/* Read cursor over [p, end). Every read checks bounds; on error it returns
 * a negative hs_error_code with a message naming `what`. */
typedef struct hs_cursor {
	const uint8_t *p;
	const uint8_t *end;
} hs_cursor;

HS_EXTERN(int) hs_cursor_varint(hs_cursor *c, uint64_t *out, const char *what);
HS_EXTERN(int) hs_cursor_u8(hs_cursor *c, uint8_t *out, const char *what);
HS_EXTERN(int) hs_cursor_bytes(hs_cursor *c, const uint8_t **out, size_t len, const char *what);
/* a varint length followed by that many bytes, carved into a sub-cursor */
HS_EXTERN(int) hs_cursor_sub(hs_cursor *c, hs_cursor *out, const char *what);

static inline size_t hs_cursor_left(const hs_cursor *c) { return (size_t)(c->end - c->p); }

#endif
