/*
 * track/preload.h: the interface between the hook's allocation tracker
 * (src/hook/track*.c) and the LD_PRELOAD interposer libheapsnap_preload.so
 * (src/track/preload.c).
 *
 * The interposer exports one symbol, hs_preload_interface(). The hook looks it
 * up with dlsym(RTLD_DEFAULT) when tracking starts; if the library is loaded,
 * the hook takes its per-thread state from it (so that both sides share the
 * reentrancy flag and the sampler's countdown) and registers callbacks for
 * the native blocks the interposer samples.
 *
 * Counting each allocation once: every allocator hook of the tracker (the
 * PyMem wrappers and the interposer's wrappers) sets `busy` around the call
 * to the allocator it wraps. Anything that allocator does in turn (pymalloc
 * forwarding a large block to PyMem_RawMalloc, PyMem_RawMalloc calling
 * malloc, glibc's reallocarray calling realloc, the tracker growing its own
 * tables) sees `busy` set and passes straight through.
 */
#ifndef HS_TRACK_PRELOAD_H
#define HS_TRACK_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

#define HS_PRELOAD_IFACE_VERSION 2
#define HS_PRELOAD_SYMBOL "hs_preload_interface"

/* Per-thread tracker state. Lives in the interposer's static TLS when the
 * library is preloaded, else in the hook's own TLS. */
typedef struct hs_track_thread {
	int busy;            /* inside a hook: nested allocator calls pass through */
	int quiet;           /* the tracker's own Python work: allocations not sampled */
	uint32_t gen;        /* tracker generation the fields below belong to */
	int64_t countdown;   /* bytes until the next sample */
	uint64_t rng;        /* xorshift state of the sampler */
	uint32_t thread_idx; /* index in the tracker's thread table, UINT32_MAX unknown */
	uint32_t ordinal;    /* order in which threads first allocated (seeding) */
	long tid;            /* gettid() */
} hs_track_thread;

/* Callbacks the hook registers with the interposer. */
typedef struct hs_preload_hooks {
	/* Prepare `t` for the current generation (seed, countdown). */
	void (*init_thread)(hs_track_thread *t);
	/* A native block to record: `t->countdown` went <= 0 (redraw it), the
	 * block is at least the mean, the tracker is exact, or the block is
	 * large (HS_PRELOAD_BIG). `flags`: HS_PRELOAD_MMAP a mapping rather than
	 * a malloc-family block; HS_PRELOAD_BIG its usable size (mapped length)
	 * is at least cfg.big: the hook counts its resident bytes in the total,
	 * the interposer leaves it out of on_total (at the free too). Called
	 * with t->busy set. */
	void (*on_alloc)(hs_track_thread *t, void *ptr, size_t size, int flags);
	/* A native block is about to be freed (before the real free): forget it
	 * if it is tracked. Called with the calling thread's busy set. */
	void (*on_free)(void *ptr);
	/* Add `delta` bytes to the tracker's running total (footprint basis). */
	void (*on_total)(int64_t delta);
} hs_preload_hooks;

enum { HS_PRELOAD_MMAP = 1, HS_PRELOAD_BIG = 2 };

typedef struct hs_preload_config {
	unsigned version;
	uint32_t gen;        /* the tracker generation: init_thread when it differs */
	int exact;           /* every block is recorded */
	int count_total;     /* report usable sizes through on_total */
	int64_t mean;        /* sampling: mean bytes between samples */
	int64_t big;         /* blocks of at least this usable size: see on_alloc (0 none) */
} hs_preload_config;

typedef struct hs_preload_stats {
	uint64_t calls;      /* interposed calls while tracking (approximate) */
	uint64_t bootstrap_bytes; /* served from the static buffer during dlsym */
	uint64_t mmap_regions;    /* mappings currently counted */
	uint64_t mmap_dropped;    /* mappings not counted: region table full */
} hs_preload_stats;

typedef struct hs_preload_iface {
	unsigned version;
	/* This thread's state (never NULL, never allocates). */
	hs_track_thread *(*thread)(void);
	/* Turn interposing on with these callbacks. @return 0, -1 if already on. */
	int (*start)(const hs_preload_hooks *hooks, const hs_preload_config *cfg);
	/* Turn it off: from the return on, no callback starts. */
	void (*stop)(void);
	void (*stats)(hs_preload_stats *out);
} hs_preload_iface;

typedef const hs_preload_iface *(*hs_preload_interface_fn)(void);

#endif
