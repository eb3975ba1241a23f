/* Unit tests: varints, zigzag, cursors, CRC-32, the counted allocator. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/intern.h"
#include "heapsnap/errors.h"

Test(util_varint, round_trips_edge_values)
{
	uint64_t values[] = { 0, 1, 127, 128, 255, 16383, 16384, (1ull << 32) - 1, 1ull << 35,
	                      (1ull << 63) - 1, 1ull << 63, UINT64_MAX };
	hs_buf b = HS_BUF_INIT;
	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++)
		cr_assert_eq(hs_buf_put_varint(&b, values[i]), 0);
	hs_cursor c = { b.data, b.data + b.len };
	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
		uint64_t v;
		cr_assert_eq(hs_cursor_varint(&c, &v, "test"), 0);
		cr_assert_eq(v, values[i], "value %zu: %llu != %llu", i, (unsigned long long)v,
		             (unsigned long long)values[i]);
	}
	cr_assert_eq(hs_cursor_left(&c), 0);
	hs_buf_release(&b);
}

Test(util_varint, encodes_small_values_in_one_byte)
{
	uint8_t p[10];
	cr_assert_eq(hs_varint_encode(p, 127), 1);
	cr_assert_eq(hs_varint_encode(p, 128), 2);
	cr_assert_eq(hs_varint_encode(p, UINT64_MAX), 10);
}

Test(util_varint, rejects_overlong_and_truncated)
{
	uint8_t over[11];
	memset(over, 0xff, sizeof(over));
	hs_cursor c = { over, over + sizeof(over) };
	uint64_t v;
	cr_assert_eq(hs_cursor_varint(&c, &v, "x"), HS_EFORMAT);
	uint8_t big[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	c = (hs_cursor){ big, big + 10 };
	cr_assert_eq(hs_cursor_varint(&c, &v, "x"), HS_EFORMAT);
	uint8_t cut[2] = { 0x80, 0x80 };
	c = (hs_cursor){ cut, cut + 2 };
	cr_assert_eq(hs_cursor_varint(&c, &v, "x"), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "past the end") != NULL);
}

Test(util_zigzag, maps_small_signed_to_small_unsigned)
{
	cr_assert_eq(hs_zigzag_encode(0), 0);
	cr_assert_eq(hs_zigzag_encode(-1), 1);
	cr_assert_eq(hs_zigzag_encode(1), 2);
	cr_assert_eq(hs_zigzag_encode(-2), 3);
	int64_t vals[] = { 0, 1, -1, 1000, -1000, INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(hs_zigzag_decode(hs_zigzag_encode(vals[i])), vals[i]);
}

Test(util_cursor, sub_stream_bounds_checked)
{
	uint8_t data[] = { 5, 1, 2 };
	hs_cursor c = { data, data + 3 }, sub;
	cr_assert_eq(hs_cursor_sub(&c, &sub, "s"), HS_EFORMAT);
	uint8_t ok[] = { 2, 7, 8, 9 };
	c = (hs_cursor){ ok, ok + 4 };
	cr_assert_eq(hs_cursor_sub(&c, &sub, "s"), 0);
	cr_assert_eq(hs_cursor_left(&sub), 2);
	cr_assert_eq(hs_cursor_left(&c), 1);
}

Test(util_crc32, matches_zlib_check_value)
{
	cr_assert_eq(hs_crc32(0, "123456789", 9), 0xCBF43926u);
	cr_assert_eq(hs_crc32(0, "", 0), 0);
	/* incremental equals one-shot */
	uint32_t a = hs_crc32(0, "12345", 5);
	cr_assert_eq(hs_crc32(a, "6789", 4), 0xCBF43926u);
}

Test(util_alloc, fail_after_injects_one_failure)
{
	hs_alloc_fail_after(2);
	void *a = hs_malloc(16);
	void *b = hs_malloc(16);
	void *c = hs_malloc(16);
	cr_assert_not_null(a);
	cr_assert_null(b);
	cr_assert_not_null(c);
	cr_assert_eq(hs_error_last_code(), HS_ENOMEM);
	hs_free(a);
	hs_free(c);
	hs_free(NULL);
}

Test(util_alloc, reallocarray_checks_overflow)
{
	void *p = hs_reallocarray(NULL, SIZE_MAX / 2, 4);
	cr_assert_null(p);
	size_t before = hs_alloc_current();
	p = hs_reallocarray(NULL, 10, 8);
	cr_assert_eq(hs_alloc_current(), before + 80);
	p = hs_reallocarray(p, 20, 8);
	cr_assert_eq(hs_alloc_current(), before + 160);
	hs_free(p);
	cr_assert_eq(hs_alloc_current(), before);
}

Test(util_intern, one_id_per_string_across_growth)
{
	hs_intern t;
	cr_assert_eq(hs_intern_init(&t, 4), 0);
	char s[32];
	uint32_t id;
	for (uint32_t i = 0; i < 1000; i++) {
		snprintf(s, sizeof(s), "string-%u", i);
		cr_assert_eq(hs_intern_get(&t, &id, s, strlen(s), i * 3), 1);
		cr_assert_eq(id, i * 3);
	}
	cr_assert_eq(t.count, 1000);
	cr_assert_gt(t.mask + 1, 2000); /* grown: at most half full */
	for (uint32_t i = 0; i < 1000; i++) {
		snprintf(s, sizeof(s), "string-%u", i);
		cr_assert_eq(hs_intern_get(&t, &id, s, strlen(s), 99999), 0);
		cr_assert_eq(id, i * 3);
	}
	/* same bytes as a prefix are a different string; the empty one too */
	cr_assert_eq(hs_intern_get(&t, &id, "string-1", 7, 5000), 1);
	cr_assert_eq(hs_intern_get(&t, &id, "", 0, 5001), 1);
	cr_assert_eq(hs_intern_get(&t, &id, "", 0, 5002), 0);
	cr_assert_eq(id, 5001);
	hs_intern_release(&t);
}

Test(util_intern, ids_used_up_adds_nothing)
{
	hs_intern t;
	cr_assert_eq(hs_intern_init(&t, 8), 0);
	uint32_t id = 0;
	cr_assert_eq(hs_intern_get(&t, &id, "a", 1, 0), 1);
	cr_assert_eq(hs_intern_get(&t, &id, "a", 1, UINT32_MAX), 0);
	cr_assert_eq(id, 0);
	cr_assert_eq(hs_intern_get(&t, &id, "b", 1, UINT32_MAX), HS_ELIMIT);
	cr_assert_eq(t.count, 1);
	hs_intern_release(&t);
}

Test(util_intern, out_of_memory_is_reported)
{
	hs_intern t;
	cr_assert_eq(hs_intern_init(&t, 2), 0);
	uint32_t id;
	int rc = 0;
	/* fail the next allocation: the pool or the growth of the table */
	for (int n = 0; n < 8 && rc >= 0; n++) {
		char s[8];
		snprintf(s, sizeof(s), "s%d", n);
		hs_alloc_fail_after(1);
		rc = hs_intern_get(&t, &id, s, strlen(s), (uint32_t)n);
		hs_alloc_fail_after(0);
	}
	cr_assert_eq(rc, HS_ENOMEM);
	hs_intern_release(&t);
}
