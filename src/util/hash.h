/*
 * util/hash.h: CRC-32 (IEEE, as zlib) for section checksums, and a fast
 * 64-bit mix for hash tables.
 */
#ifndef HS_UTIL_HASH_H
#define HS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "heapsnap/common.h"

HS_EXTERN(uint32_t) hs_crc32(uint32_t crc, const void *data, size_t len);

/* Hash bytes (for string interning). */
HS_EXTERN(uint64_t) hs_hash_bytes(const void *data, size_t len);

/* Mix a 64-bit key (addresses) into a well-spread hash. */
static inline uint64_t hs_hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
