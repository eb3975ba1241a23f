/*
 * track/preload.c: libheapsnap_preload.so, the LD_PRELOAD interposer that
 * lets the hook's allocation tracker see native memory (buffers that numpy,
 * pandas or compression libraries allocate with malloc or mmap).
 *
 * It defines malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, mmap/mmap64 and munmap, each
 * forwarding to the next definition (dlsym(RTLD_NEXT)). glibc routes its own
 * internal uses of malloc/free through these symbols ("replacing malloc"),
 * so strdup'd blocks are seen too.
 *
 * Inert unless tracking: each wrapper first tests one relaxed atomic and
 * calls the real function. While tracking (the hook called start() through
 * the interface in preload.h):
 *   - `busy` (this thread's state, in static TLS: initial-exec, the library
 *     is preloaded) makes nested calls pass through: the hook's Python
 *     allocator wrappers set it, so malloc under PyMem_RawMalloc or pymalloc
 *     is not counted twice;
 *   - the sampler's countdown is decremented here and the hook is called
 *     (on_alloc) for a block to record: it reads the Python stack if this
 *     thread holds the GIL, else charges "native, thread NAME";
 *   - frees call on_free before the real free (the address may be reused
 *     by another thread right after);
 *   - with the footprint basis, usable sizes (malloc_usable_size) and mapped
 *     lengths go to the running total (on_total), except for large blocks
 *     (usable size or length at least cfg.big): those are always passed to
 *     on_alloc flagged HS_PRELOAD_BIG, and the hook counts their resident
 *     pages instead (hook/track_resident.c); their frees stay out of
 *     on_total too, decided by the same usable size or mapped length.
 *
 * Bootstrapping: dlsym may call calloc/malloc before the real functions are
 * known; those requests are served from a static buffer whose blocks are
 * never freed (free() recognises them).
 *
 * mmap: anonymous mappings are counted and remembered in a fixed table (so
 * munmap knows what it unmaps); file mappings are not heap memory. When the
 * table is full, further mappings are not counted (stats().mmap_dropped).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "track/preload.h"

#define EXPORT __attribute__((visibility("default")))

static __thread hs_track_thread tls __attribute__((tls_model("initial-exec")));

static _Atomic int on;
static hs_preload_hooks hooks;
static hs_preload_config cfg;

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_reallocarray)(void *, size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

/* ---- bootstrap buffer ---- */

#define BOOT_SIZE (256 * 1024)
static _Alignas(16) char boot[BOOT_SIZE];
static _Atomic size_t boot_used;
static _Atomic int resolving;
static _Atomic int resolved;

static int is_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + BOOT_SIZE;
}

/* 16-byte header holds the size (for realloc of a boot block). */
static void *boot_alloc(size_t n)
{
	size_t need = ((n + 15) & ~(size_t)15) + 16;
	size_t off = atomic_fetch_add(&boot_used, need);
	if (off + need > BOOT_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	*(size_t *)(boot + off) = n;
	return memset(boot + off + 16, 0, n);
}

static size_t boot_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

#define RESOLVE(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)

static void atfork_child(void);

static int resolve(void)
{
	if (atomic_load_explicit(&resolved, memory_order_acquire))
		return 1;
	if (atomic_exchange(&resolving, 1)) {
		/* another thread (or dlsym itself, recursively) is resolving */
		while (!atomic_load_explicit(&resolved, memory_order_acquire)) {
			if (atomic_load(&resolving) == 2)
				return 0; /* recursive: serve from the boot buffer */
			sched_yield();
		}
		return 1;
	}
	atomic_store(&resolving, 2);
	RESOLVE(malloc);
	RESOLVE(free);
	RESOLVE(calloc);
	RESOLVE(realloc);
	RESOLVE(reallocarray);
	RESOLVE(posix_memalign);
	RESOLVE(aligned_alloc);
	RESOLVE(memalign);
	RESOLVE(valloc);
	RESOLVE(pvalloc);
	RESOLVE(mmap);
	RESOLVE(munmap);
	atomic_store(&resolving, 3);
	atomic_store_explicit(&resolved, 1, memory_order_release);
	pthread_atfork(NULL, NULL, atfork_child);
	return 1;
}

__attribute__((constructor)) static void preload_init(void)
{
	resolve();
}

/* ---- mmap regions ---- */

#define REGIONS 4096
static struct { uintptr_t addr; size_t len; } regions[REGIONS];
static _Atomic int region_lock;
static uint64_t nregions, regions_dropped;

static void rlock(void)
{
	while (atomic_exchange_explicit(&region_lock, 1, memory_order_acquire))
		sched_yield();
}

static void runlock(void)
{
	atomic_store_explicit(&region_lock, 0, memory_order_release);
}

static int region_add(uintptr_t a, size_t len)
{
	int ok = 0;
	rlock();
	for (size_t i = 0, j = (a >> 12) % REGIONS; i < REGIONS; i++, j = (j + 1) % REGIONS) {
		if (regions[j].addr == 0 || regions[j].addr == 1) {
			regions[j].addr = a;
			regions[j].len = len;
			nregions++;
			ok = 1;
			break;
		}
	}
	if (!ok)
		regions_dropped++;
	runlock();
	return ok;
}

/* Length of the counted region starting at `a` unmapped by munmap(a, len)
 * (the rest, if any, stays counted from a + len); 0 if none. *whole: the
 * region's length before. */
static size_t region_unmap(uintptr_t a, size_t len, size_t *whole)
{
	size_t got = 0, rest = 0;
	*whole = 0;
	rlock();
	for (size_t i = 0, j = (a >> 12) % REGIONS; i < REGIONS && regions[j].addr; i++, j = (j + 1) % REGIONS) {
		if (regions[j].addr == a) {
			*whole = regions[j].len;
			got = regions[j].len < len ? regions[j].len : len;
			rest = regions[j].len - got;
			regions[j].addr = 1; /* tombstone */
			nregions--;
			break;
		}
	}
	runlock();
	if (rest)
		region_add(a + got, rest);
	return got;
}

static void atfork_child(void)
{
	atomic_store(&on, 0);
	atomic_store(&region_lock, 0);
}

/* ---- recording ---- */

static inline int is_big(size_t usable)
{
	return cfg.big > 0 && (int64_t)usable >= cfg.big;
}

static inline void after_alloc(hs_track_thread *t, void *p, size_t n, int mmap)
{
	if (t->gen != cfg.gen)
		hooks.init_thread(t);
	size_t usable = mmap ? n : malloc_usable_size(p);
	int big = is_big(usable);
	/* the sample first: a high-water mark reached by this block includes it */
	if (!t->quiet && (cfg.exact || big || (int64_t)n >= cfg.mean || (t->countdown -= (int64_t)n) <= 0))
		hooks.on_alloc(t, p, n, (mmap ? HS_PRELOAD_MMAP : 0) | (big ? HS_PRELOAD_BIG : 0));
	if (cfg.count_total && !big)
		hooks.on_total((int64_t)usable);
}

static inline void before_free(void *p)
{
	size_t usable = malloc_usable_size(p);
	if (cfg.count_total && !is_big(usable))
		hooks.on_total(-(int64_t)usable);
	hooks.on_free(p);
}

#define TRACKING() atomic_load_explicit(&on, memory_order_relaxed)

EXPORT void *malloc(size_t n)
{
	if (__builtin_expect(!real_malloc, 0) && !resolve())
		return boot_alloc(n);
	if (!TRACKING() || tls.busy)
		return real_malloc(n);
	hs_track_thread *t = &tls;
	t->busy = 1;
	void *p = real_malloc(n);
	if (p)
		after_alloc(t, p, n, 0);
	t->busy = 0;
	return p;
}

EXPORT void *calloc(size_t a, size_t b)
{
	if (__builtin_expect(!real_calloc, 0) && !resolve()) {
		if (b && a > SIZE_MAX / b)
			return NULL;
		return boot_alloc(a * b);
	}
	if (!TRACKING() || tls.busy)
		return real_calloc(a, b);
	hs_track_thread *t = &tls;
	t->busy = 1;
	void *p = real_calloc(a, b);
	if (p)
		after_alloc(t, p, a * b, 0);
	t->busy = 0;
	return p;
}

EXPORT void free(void *p)
{
	if (!p || is_boot(p))
		return;
	if (__builtin_expect(!real_free, 0) && !resolve())
		return; /* cannot happen: p came from a real allocator */
	if (!TRACKING() || tls.busy) {
		real_free(p);
		return;
	}
	hs_track_thread *t = &tls;
	t->busy = 1;
	before_free(p);
	real_free(p);
	t->busy = 0;
}

static void *realloc_common(void *p, size_t n, size_t m, int array)
{
	size_t bytes = n;
	if (array) {
		if (m && n > SIZE_MAX / m) {
			errno = ENOMEM;
			return NULL;
		}
		bytes = n * m;
	}
	if (p && is_boot(p)) {
		void *q = malloc(bytes);
		if (q) {
			size_t old = boot_size(p);
			memcpy(q, p, old < bytes ? old : bytes);
		}
		return q;
	}
	if (__builtin_expect(!real_realloc, 0) && !resolve())
		return p ? NULL : boot_alloc(bytes);
	if (!TRACKING() || tls.busy)
		return array ? real_reallocarray(p, n, m) : real_realloc(p, n);
	hs_track_thread *t = &tls;
	t->busy = 1;
	size_t old = p ? malloc_usable_size(p) : 0;
	/* a large old block leaves the total through on_free (the hook) */
	int64_t old_counted = is_big(old) ? 0 : (int64_t)old;
	if (p)
		hooks.on_free(p); /* before: the address may be reused once realloc returns */
	void *q = array ? real_reallocarray(p, n, m) : real_realloc(p, n);
	if (q) {
		if (t->gen != cfg.gen)
			hooks.init_thread(t);
		size_t usable = malloc_usable_size(q);
		int big = is_big(usable);
		if (!t->quiet && (cfg.exact || big || (int64_t)bytes >= cfg.mean ||
		                  (t->countdown -= (int64_t)bytes) <= 0))
			hooks.on_alloc(t, q, bytes, big ? HS_PRELOAD_BIG : 0);
		if (cfg.count_total)
			hooks.on_total((big ? 0 : (int64_t)usable) - old_counted);
	} else if (p && bytes == 0 && cfg.count_total) {
		hooks.on_total(-old_counted); /* realloc(p, 0) freed p */
	}
	t->busy = 0;
	return q;
}

EXPORT void *realloc(void *p, size_t n)
{
	return realloc_common(p, n, 0, 0);
}

EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
	return realloc_common(p, n, m, 1);
}

#define ALIGNED(call, n)                                   \
	do {                                                   \
		if (!TRACKING() || tls.busy)                       \
			return call;                                   \
		hs_track_thread *t = &tls;                         \
		t->busy = 1;                                       \
		void *p = call;                                    \
		if (p)                                             \
			after_alloc(t, p, (n), 0);                     \
		t->busy = 0;                                       \
		return p;                                          \
	} while (0)

EXPORT void *aligned_alloc(size_t al, size_t n)
{
	if (__builtin_expect(!real_aligned_alloc, 0) && !resolve())
		return NULL;
	ALIGNED(real_aligned_alloc(al, n), n);
}

EXPORT void *memalign(size_t al, size_t n)
{
	if (__builtin_expect(!real_memalign, 0) && !resolve())
		return NULL;
	ALIGNED(real_memalign(al, n), n);
}

EXPORT void *valloc(size_t n)
{
	if (__builtin_expect(!real_valloc, 0) && !resolve())
		return NULL;
	ALIGNED(real_valloc(n), n);
}

EXPORT void *pvalloc(size_t n)
{
	if (__builtin_expect(!real_pvalloc, 0) && !resolve())
		return NULL;
	ALIGNED(real_pvalloc(n), n);
}

EXPORT int posix_memalign(void **out, size_t al, size_t n)
{
	if (__builtin_expect(!real_posix_memalign, 0) && !resolve())
		return ENOMEM;
	if (!TRACKING() || tls.busy)
		return real_posix_memalign(out, al, n);
	hs_track_thread *t = &tls;
	t->busy = 1;
	int rc = real_posix_memalign(out, al, n);
	if (rc == 0 && *out)
		after_alloc(t, *out, n, 0);
	t->busy = 0;
	return rc;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (__builtin_expect(!real_mmap, 0) && !resolve()) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (!TRACKING() || tls.busy || !(flags & MAP_ANONYMOUS))
		return real_mmap(addr, len, prot, flags, fd, off);
	hs_track_thread *t = &tls;
	t->busy = 1;
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && region_add((uintptr_t)p, len))
		after_alloc(t, p, len, 1);
	t->busy = 0;
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

EXPORT int munmap(void *addr, size_t len)
{
	if (__builtin_expect(!real_munmap, 0) && !resolve()) {
		errno = EINVAL;
		return -1;
	}
	if (!TRACKING() || tls.busy)
		return real_munmap(addr, len);
	hs_track_thread *t = &tls;
	t->busy = 1;
	size_t whole;
	size_t got = region_unmap((uintptr_t)addr, len, &whole);
	if (got) {
		hooks.on_free(addr);
		if (cfg.count_total && !is_big(whole))
			hooks.on_total(-(int64_t)got);
	}
	int rc = real_munmap(addr, len);
	t->busy = 0;
	return rc;
}

/* ---- the interface ---- */

static hs_track_thread *iface_thread(void)
{
	return &tls;
}

static int iface_start(const hs_preload_hooks *h, const hs_preload_config *c)
{
	if (atomic_load(&on) || !h || !c || c->version != HS_PRELOAD_IFACE_VERSION)
		return -1;
	hooks = *h;
	cfg = *c;
	if (cfg.mean < 1)
		cfg.mean = 1;
	atomic_store(&on, 1);
	return 0;
}

static void iface_stop(void)
{
	atomic_store(&on, 0);
}

static void iface_stats(hs_preload_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->bootstrap_bytes = atomic_load(&boot_used);
	rlock();
	out->mmap_regions = nregions;
	out->mmap_dropped = regions_dropped;
	runlock();
}

static const hs_preload_iface the_iface = {
	HS_PRELOAD_IFACE_VERSION, iface_thread, iface_start, iface_stop, iface_stats,
};

EXPORT const hs_preload_iface *hs_preload_interface(void);
EXPORT const hs_preload_iface *hs_preload_interface(void)
{
	resolve();
	return &the_iface;
}
