/*
 * hook/track_resident.c: resident, not reserved, bytes of large native
 * blocks.
 *
 * A large native block is address space first: glibc serves a malloc of
 * 128 KiB or more with its own mmap, OpenBLAS maps its buffers, a thread's
 * stack is an 8 MiB mapping; pages become resident (RSS) only when touched,
 * and np.zeros (calloc) of 80 MB adds nothing to RSS until written. Counting
 * such blocks at their size charged `import numpy` ~70 MiB live for 15 MiB
 * of RSS, and made the recorded peak exceed the process's peak RSS.
 *
 * So blocks of at least `big` bytes (128 KiB, or the sampling mean when
 * larger: such blocks are always sampled, so each one is in the live set)
 * from native sources (the interposer, blocks reported with
 * PyTraceMalloc_Track) count their resident bytes: mincore(2) over the
 * block's pages, when the block is recorded and again at each refresh
 * (every read of the figures, and at most every REFRESH_MS while samples
 * are taken). The refresh moves the difference into the running total and
 * the live figures of the block's stack, so the high-water marks and the
 * per-line peak are resident figures; the reserved size is kept beside
 * them ("reserved" figures).
 *
 * Why mincore rather than tracking touched pages (userfaultfd, soft-dirty
 * bits, protecting pages and counting faults): it needs no fault handling
 * in the target, no privileges and changes nothing in the process; its cost
 * is one system call per 16 MiB of large live blocks per refresh (a byte
 * per page into a 4 KiB vector), paid on the sampling path at most every
 * REFRESH_MS and never on a fast path. Between refreshes a block's figure
 * is the one last measured, so a figure lags the truth by at most that
 * interval; it never counts pages that are not resident.
 *
 * Pages of a block shared with a neighbour (the first and last, for a
 * block not page-aligned) count for the block's bytes on them only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "track_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint64_t hs_tk_resident_of(uintptr_t p, uint64_t size)
{
	static long pgs;
	if (!pgs)
		pgs = sysconf(_SC_PAGESIZE);
	uintptr_t pg = (uintptr_t)pgs;
	unsigned char vec[4096];
	uintptr_t end = p + size, a = p & ~(pg - 1);
	uint64_t res = 0;
	while (a < end) {
		size_t npages = (size_t)((end - a + pg - 1) / pg);
		if (npages > sizeof(vec))
			npages = sizeof(vec);
		if (mincore((void *)a, npages * pg, vec) != 0) {
			/* part of the range is not mapped (unmapped behind our back):
			 * nothing resident there */
			a += npages * pg;
			continue;
		}
		for (size_t i = 0; i < npages; i++, a += pg) {
			if (!(vec[i] & 1))
				continue;
			uintptr_t lo = a < p ? p : a, hi = a + pg > end ? end : a + pg;
			res += hi - lo;
		}
	}
	return res;
}

/* The table: address -> hs_tk_res, open addressing (lock held). */
static hs_tk_res *rt;
static size_t rt_mask, rt_n;

static size_t rt_slot(uintptr_t p, size_t mask)
{
	return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> 24) & mask;
}

static int rt_grow(void)
{
	size_t nm = rt_mask ? rt_mask * 2 + 1 : 255;
	hs_tk_res *n = calloc(nm + 1, sizeof(*n));
	if (!n)
		return -1;
	for (size_t i = 0; rt && i <= rt_mask; i++) {
		if (!rt[i].ptr)
			continue;
		size_t j = rt_slot(rt[i].ptr, nm);
		while (n[j].ptr)
			j = (j + 1) & nm;
		n[j] = rt[i];
	}
	free(rt);
	rt = n;
	rt_mask = nm;
	return 0;
}

int hs_tk_res_put(const hs_tk_res *r)
{
	if ((rt_n + 1) * 10 > (rt_mask + 1) * 7 && rt_grow() < 0)
		return -1;
	size_t i = rt_slot(r->ptr, rt_mask);
	while (rt[i].ptr)
		i = (i + 1) & rt_mask;
	rt[i] = *r;
	rt_n++;
	return 0;
}

int hs_tk_res_take(uintptr_t p, hs_tk_res *out)
{
	if (!rt_n)
		return 0;
	size_t i = rt_slot(p, rt_mask);
	for (; rt[i].ptr; i = (i + 1) & rt_mask) {
		if (rt[i].ptr != p)
			continue;
		*out = rt[i];
		size_t j = i;
		for (;;) {
			j = (j + 1) & rt_mask;
			if (!rt[j].ptr)
				break;
			size_t home = rt_slot(rt[j].ptr, rt_mask);
			if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
				rt[i] = rt[j];
				i = j;
			}
		}
		rt[i].ptr = 0;
		rt_n--;
		return 1;
	}
	return 0;
}

size_t hs_tk_res_count(void)
{
	return rt_n;
}

hs_tk_res *hs_tk_res_slots(size_t *nslots)
{
	*nslots = rt ? rt_mask + 1 : 0;
	return rt;
}

void hs_tk_res_release(void)
{
	free(rt);
	rt = NULL;
	rt_mask = rt_n = 0;
}

size_t hs_tk_res_bytes(void)
{
	return rt ? (rt_mask + 1) * sizeof(*rt) : 0;
}
