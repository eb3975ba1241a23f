/*
 * hook/track.c: allocation tracking - which line allocated the memory.
 *
 * Wrapping. PyMem_SetAllocator replaces the RAW, MEM and OBJ allocators with
 * wrappers whose ctx is a static "layer" holding the allocator they replaced;
 * every call is forwarded to it. A layer is never freed: when tracking stops
 * and our wrapper is still the domain's current allocator it is replaced by
 * the saved one; when something else (tracemalloc, another profiler) has
 * wrapped ours since, we cannot unlink it, so the layer stays in the chain
 * disabled (pass-through) and is reused if it becomes the top again. Blocks
 * always come from the allocator below, so a block allocated before, during
 * or after tracking is freed by the right allocator whatever the order.
 *
 * Counting each allocation once. The wrapper sets the thread's `busy` flag
 * around the call below it: pymalloc forwards blocks over 512 bytes to
 * PyMem_RawMalloc, which reaches our RAW wrapper with `busy` set and passes
 * through (tracemalloc's reentrant flag does the same). With the LD_PRELOAD
 * interposer, the flag lives in its TLS (preload.h) so malloc() under a
 * Python allocator is not counted again either.
 *
 * Sampling by bytes. Each thread counts down bytes to its next sample, the
 * intervals drawn from an exponential distribution of mean `sample_bytes`
 * (a Poisson process over allocated bytes, as Go's and jemalloc's heap
 * profilers): a block of size s is sampled with probability
 * p = 1 - exp(-s/mean), and weighs 1/p allocations and s/p bytes, so sums
 * are unbiased. Blocks of at least the mean are always taken (p = 1).
 * Exact mode records every block. The fast path of an unsampled call is a
 * TLS read, a subtraction and a compare.
 *
 * Running total and peak. The peak is an exact running total compared at
 * every change:
 *   - exact mode: bytes requested by the tracked live blocks;
 *   - sampled mode with the default allocators ("pymalloc" or "malloc"): the
 *     footprint of Python's heap: usable sizes (malloc_usable_size) of the
 *     blocks that reach libc through the allocator domains, plus pymalloc's
 *     arenas (PyObject_SetArenaAllocator, whose free passes the size), plus
 *     the interposer's native blocks; a net figure since tracking started
 *     (a block allocated before and freed during tracking lowers it);
 *   - otherwise (debug hooks, another wrapper underneath): the sampled
 *     estimate of live bytes.
 * At each new high-water mark 1% (and 4 KiB) above the previous one, the
 * session's live figures per stack are kept as its "peak" figures. That copy
 * is lazy: the session's epoch is bumped and each stack saves its live
 * figures into its peak figures the first time they change after the bump
 * (a stack untouched since reports its live figures), so a high-water mark
 * costs O(1) whatever the number of stacks.
 *
 * Sessions. track() blocks nest (and may overlap from several threads): up
 * to HS_TK_MAX_SESSIONS share one tracker, each with its own figures per
 * stack, its own base and peak. A live block belongs to the sessions that
 * were active when it was allocated (its generation number). The tracker's
 * mode is set by the first session; a nested one joins with it.
 *
 * Fork. pthread_atfork: the lock is held across fork(); in the child every
 * layer is disabled at once (pass-through) and recording stops; the Python
 * after-fork hook then restores the allocators and frees the tables with the
 * GIL held (_track_after_fork_child).
 */
#include "track_internal.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Exported by libpython 3.8-3.13 (nm -D), declared only in the internal
 * pycore_pymem.h: "pymalloc", "malloc", "pymalloc_debug"... or NULL when a
 * custom allocator (tracemalloc, another wrapper) is installed. */
PyAPI_FUNC(const char *) _PyMem_GetCurrentAllocatorName(void);

enum { BASIS_REQUESTED = 0, BASIS_FOOTPRINT = 1, BASIS_ESTIMATE = 2 };
static const char *const basis_names[] = { "requested", "footprint", "estimate" };

#define MAX_LAYERS 8
#define SNAP_MIN_STEP 256

typedef struct layer {
	PyMemAllocatorEx prev;
	_Atomic int enabled;
	int in_use;
	int libc;   /* blocks of this domain are libc malloc blocks (usable size) */
	/* The fast paths (see w_malloc), 0 when they must not be taken: requests
	 * up to fast_max bytes that the sampler skips go straight to the
	 * allocator below; frees of blocks the filter says are not tracked too. */
	_Atomic size_t fast_max;
	_Atomic int fast_free;
} layer;

typedef struct alayer {
	PyObjectArenaAllocator prev;
	_Atomic int enabled;
	int in_use;
} alayer;

typedef struct session {
	int active;
	uint32_t id;
	uint32_t start_gen;
	int64_t base;      /* running total when it started */
	int64_t peak_abs;  /* highest total seen (folded, see fold_peaks) */
	int64_t snap_next; /* next high-water mark that takes a snapshot */
	int64_t snap_at;   /* total at the last snapshot */
	uint32_t epoch;
	hs_tk_fig *figs;
	uint32_t capfigs;
	uint64_t samples;
	uint64_t dropped0;
	double t0;
} session;

static layer layers[3][MAX_LAYERS];
static layer *cur_layer[3];
static alayer alayers[MAX_LAYERS];
static alayer *cur_alayer;

static _Atomic int tk_lock_word;
static _Atomic int tk_on;       /* recording */
static int tk_exists;           /* tables allocated (engine running or stopped-but-stuck) */
static int tk_exact;
static int64_t tk_mean;
static double tk_mean_d;
static uint32_t tk_gen = 1;
static uint64_t tk_seed;
static int tk_seeded;
static _Atomic uint32_t tk_ordinal;
static int tk_basis;
static int tk_native;
static int tk_forked;           /* set in a forked child until the after-fork cleanup */
static uint32_t dead_below;     /* sessions inherited through fork() have smaller ids */
static int tk_atfork_done;
static struct timespec tk_t0;
static uint32_t sess_gen;
static uint32_t sess_next_id = 1;
static int nsess;
static session sess[HS_TK_MAX_SESSIONS];
static uint64_t tk_samples;
static uint64_t tk_stuck;       /* layers left in a chain (someone wrapped over us) */

/* Large native blocks count their resident pages (track_resident.c):
 * blocks of at least tk_res_big bytes from the interposer or reported with
 * PyTraceMalloc_Track; 0 = off. Refreshed at most every REFRESH_MS. */
#define REFRESH_MS 200
#define FREE_REFRESH_MAX 256
static uint64_t tk_res_big;
static uint32_t tk_res_last;
static int tk_traced;           /* the Track/Untrack slots are ours (track_traced.c) */

static _Atomic int64_t tk_total;
static _Atomic int64_t tk_peak_run;
static _Atomic int64_t tk_snap_next;
static _Atomic int64_t tk_snap_pending; /* a high-water mark to snapshot, 0 none */

static const hs_preload_iface *iface;
/* The per-thread state. Read on every allocator call, so it is in the
 * static TLS block ("initial-exec": one %fs-relative load) rather than
 * reached through __tls_get_addr, which a dlopen'ed module's default model
 * calls on every access (about 1% of an allocation-heavy run's CPU when
 * measured). The state is 40 bytes, well within glibc's static TLS surplus
 * reserved for dlopen'ed modules. With the interposer loaded, its TLS is
 * used instead (the busy flag must be shared with it): reached through its
 * function, a direct branch decides which. */
static __thread hs_track_thread own_state __attribute__((tls_model("initial-exec")));
static hs_track_thread *(*_Atomic ext_thread)(void);
static inline hs_track_thread *thread_state(void)
{
	hs_track_thread *(*f)(void) = atomic_load_explicit(&ext_thread, memory_order_relaxed);
	return __builtin_expect(f != NULL, 0) ? f() : &own_state;
}

/* ------------------------------------------------------------------ */
/* lock                                                                */

/* Holding the lock makes the thread busy: the tables grow and shrink with
 * libc malloc/free, which the interposer must pass through (its callbacks
 * take this lock). */
void hs_tk_lock(void)
{
	thread_state()->busy++;
	for (unsigned spins = 0;;) {
		if (!atomic_exchange_explicit(&tk_lock_word, 1, memory_order_acquire))
			return;
		while (atomic_load_explicit(&tk_lock_word, memory_order_relaxed)) {
			if (++spins > 100)
				sched_yield();
#if defined(__x86_64__) || defined(__i386__)
			else
				__asm__ __volatile__("pause");
#endif
		}
	}
}

void hs_tk_unlock(void)
{
	atomic_store_explicit(&tk_lock_word, 0, memory_order_release);
	thread_state()->busy--;
}

/* ------------------------------------------------------------------ */
/* sampler                                                             */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t rng_next(hs_track_thread *t)
{
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* ln(x) for x > 0, |error| < 1e-10: libm is not linked into the hook. */
static double hs_log(double x)
{
	union { double d; uint64_t u; } v = { x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL; /* m in [1,2) */
	double m = v.d;
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double s = (m - 1) / (m + 1), s2 = s * s;
	double r = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 + s2 * (2.0 / 11 + s2 * (2.0 / 13)))))));
	return r + e * 0.6931471805599453;
}

/* 1 - exp(-x) for 0 <= x < 1 (Taylor series, |error| < 1e-12). */
static double hs_one_minus_exp_neg(double x)
{
	double term = x, sum = 0;
	for (int k = 1; k <= 16; k++) {
		sum += term;
		term *= -x / (k + 1);
	}
	return sum;
}

static int64_t draw(hs_track_thread *t)
{
	double u = ((double)(rng_next(t) >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
	double v = -hs_log(u) * tk_mean_d;
	return v > 9e18 ? INT64_MAX / 2 : (int64_t)v + 1;
}

static void init_thread(hs_track_thread *t)
{
	t->ordinal = atomic_fetch_add_explicit(&tk_ordinal, 1, memory_order_relaxed);
	t->rng = splitmix(tk_seed ^ splitmix(t->ordinal + 1));
	if (!t->rng)
		t->rng = 1;
	t->thread_idx = HS_TK_NONE;
	t->tid = (long)syscall(SYS_gettid);
	t->gen = tk_gen;
	t->countdown = draw(t);
}

/* The weight of a sample of `size` bytes: allocations and bytes it stands for. */
static void weight(uint64_t size, double *n, double *b)
{
	if (tk_exact || size >= (uint64_t)tk_mean) {
		*n = 1;
		*b = (double)size;
		return;
	}
	double p = hs_one_minus_exp_neg((double)size / tk_mean_d);
	if (p <= 0)
		p = 1.0 / tk_mean_d;
	*n = 1 / p;
	*b = (double)size / p;
}

static uint32_t tick(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	int64_t ms = (int64_t)(ts.tv_sec - tk_t0.tv_sec) * 1000 + (ts.tv_nsec - tk_t0.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint32_t)ms;
}

/* ------------------------------------------------------------------ */
/* running total and high-water marks                                  */

static void recompute_snap_next(void)
{
	int64_t m = INT64_MAX;
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++)
		if (sess[i].active && sess[i].snap_next < m)
			m = sess[i].snap_next;
	atomic_store_explicit(&tk_snap_next, m, memory_order_relaxed);
}

/* A new high-water mark `v` reached the threshold of some session. */
static void snap_locked(int64_t v)
{
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++) {
		session *s = &sess[i];
		if (!s->active || v < s->snap_next)
			continue;
		int64_t rel = v - s->base;
		int64_t step = rel / 100 > SNAP_MIN_STEP ? rel / 100 : SNAP_MIN_STEP;
		s->epoch++;
		s->snap_at = v;
		s->snap_next = v + step;
	}
	recompute_snap_next();
}

static void total_add_locked(int64_t d)
{
	int64_t v = atomic_fetch_add_explicit(&tk_total, d, memory_order_relaxed) + d;
	if (d <= 0)
		return;
	int64_t pk = atomic_load_explicit(&tk_peak_run, memory_order_relaxed);
	while (v > pk && !atomic_compare_exchange_weak_explicit(&tk_peak_run, &pk, v, memory_order_relaxed,
	                                                          memory_order_relaxed)) {
	}
	if (v >= atomic_load_explicit(&tk_snap_next, memory_order_relaxed))
		snap_locked(v);
}

/* From the footprint paths, without the lock. A high-water mark is only
 * noted: the outermost wrapper takes the snapshot (snap_flush) after it
 * recorded its own sample, so the block that makes the peak is in it. */
static void total_add(int64_t d)
{
	int64_t v = atomic_fetch_add_explicit(&tk_total, d, memory_order_relaxed) + d;
	if (d <= 0)
		return;
	int64_t pk = atomic_load_explicit(&tk_peak_run, memory_order_relaxed);
	while (v > pk && !atomic_compare_exchange_weak_explicit(&tk_peak_run, &pk, v, memory_order_relaxed,
	                                                          memory_order_relaxed)) {
	}
	if (v >= atomic_load_explicit(&tk_snap_next, memory_order_relaxed))
		atomic_store_explicit(&tk_snap_pending, v, memory_order_relaxed);
}

static inline void snap_flush(void)
{
	if (__builtin_expect(atomic_load_explicit(&tk_snap_pending, memory_order_relaxed) != 0, 0)) {
		hs_tk_lock();
		int64_t v = atomic_exchange(&tk_snap_pending, 0);
		if (v && atomic_load_explicit(&tk_on, memory_order_relaxed))
			snap_locked(v);
		hs_tk_unlock();
	}
}

/* Fold the running maximum into every active session's peak and restart it
 * from the current total (at session boundaries). */
static void fold_peaks(void)
{
	int64_t cur = atomic_load(&tk_total);
	int64_t pk = atomic_exchange(&tk_peak_run, cur);
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++)
		if (sess[i].active && pk > sess[i].peak_abs)
			sess[i].peak_abs = pk;
}

/* ------------------------------------------------------------------ */
/* recording (lock held)                                               */

static hs_tk_fig *fig_of(session *s, uint32_t stack)
{
	if (stack >= s->capfigs) {
		uint32_t nc = s->capfigs ? s->capfigs : 256;
		while (nc <= stack)
			nc *= 2;
		hs_tk_fig *n = realloc(s->figs, (size_t)nc * sizeof(hs_tk_fig));
		if (!n)
			return NULL;
		memset(n + s->capfigs, 0, (size_t)(nc - s->capfigs) * sizeof(hs_tk_fig));
		for (uint32_t i = s->capfigs; i < nc; i++)
			n[i].snap = s->epoch;
		s->figs = n;
		s->capfigs = nc;
	}
	hs_tk_fig *f = &s->figs[stack];
	if (f->snap != s->epoch) { /* first change since the last high-water mark */
		f->p_n = f->l_n;
		f->p_b = f->l_b;
		f->snap = s->epoch;
	}
	return f;
}

static int64_t basis_bytes(uint64_t size, double wb)
{
	if (tk_basis == BASIS_REQUESTED)
		return (int64_t)size;
	if (tk_basis == BASIS_ESTIMATE)
		return (int64_t)(wb + 0.5);
	return 0;
}

static void refresh_locked(void);

/* A tracked block is gone. A large native block (in the resident table)
 * was taken whatever the sampler said (weight 1) and counted its resident
 * bytes; the interposer may have decided by the usable size, which exceeds
 * the requested one by less than a page. */
static void forget_locked(const hs_tk_entry *e, uint64_t size)
{
	double wn, wb;
	weight(size, &wn, &wb);
	double lb = wb;
	hs_tk_res r;
	int cand = tk_res_big && size + 4096 >= tk_res_big && hs_tk_res_count();
	/* Still mapped (frees are reported before they happen): a block filled
	 * since it was last measured reaches its high point now, so a temporary
	 * made and dropped between refreshes is in the peak, together with the
	 * other large blocks as they are now (all measured again while they are
	 * few: a system call each, next to the free's own munmap and the page
	 * faults that filled the block). */
	if (cand && hs_tk_res_count() <= FREE_REFRESH_MAX)
		refresh_locked();
	int big = cand && hs_tk_res_take(e->ptr, &r);
	if (big) {
		uint64_t now = hs_tk_resident_of(e->ptr, size);
		if (now > r.charged) {
			int64_t d = (int64_t)(now - r.charged);
			for (int i = 0; i < HS_TK_MAX_SESSIONS; i++) {
				session *s = &sess[i];
				if (s->active && e->gen >= s->start_gen && e->stack < s->capfigs)
					fig_of(s, e->stack)->l_b += (double)d;
			}
			total_add_locked(d);
			r.charged = now;
		}
		wn = 1;
		wb = (double)size;
		lb = (double)r.charged;
	}
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++) {
		session *s = &sess[i];
		if (!s->active || e->gen < s->start_gen || e->stack >= s->capfigs)
			continue;
		hs_tk_fig *f = fig_of(s, e->stack);
		f->l_n -= wn;
		f->l_b -= lb;
		f->r_b -= wb;
		f->l_samples--;
	}
	int64_t d = big ? (int64_t)r.charged : basis_bytes(size, wb);
	if (d)
		total_add_locked(-d);
}

/* Measure the resident bytes of every large native block again; move the
 * differences into the figures and the running total. Lock held. */
static void refresh_locked(void)
{
	tk_res_last = tick();
	size_t n;
	hs_tk_res *r = hs_tk_res_slots(&n);
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (!r[i].ptr)
			continue;
		uint64_t now = hs_tk_resident_of(r[i].ptr, r[i].size);
		if (now == r[i].charged)
			continue;
		int64_t d = (int64_t)now - (int64_t)r[i].charged;
		r[i].charged = now;
		sum += d;
		for (int k = 0; k < HS_TK_MAX_SESSIONS; k++) {
			session *s = &sess[k];
			if (!s->active || r[i].gen < s->start_gen || r[i].stack >= s->capfigs)
				continue;
			hs_tk_fig *f = fig_of(s, r[i].stack);
			f->l_b += (double)d;
		}
	}
	if (sum)
		total_add_locked(sum);
}

static void untrack(const void *p)
{
	hs_tk_lock();
	hs_tk_entry e;
	uint64_t size;
	if (atomic_load_explicit(&tk_on, memory_order_relaxed) && hs_tk_live_take((uintptr_t)p, &e, &size))
		forget_locked(&e, size);
	hs_tk_unlock();
}

/* `big`: a large native block, counted at its resident bytes (see
 * track_resident.c); always taken, so its weight is 1. */
static void record_locked(uintptr_t p, uint64_t size, uint32_t stack, int big)
{
	hs_tk_entry old;
	uint64_t osize;
	if (hs_tk_live_take(p, &old, &osize)) /* its free was missed */
		forget_locked(&old, osize);
	if (stack == HS_TK_NONE) {
		hs_tk_t.dropped++;
		return;
	}
	double wn, wb;
	weight(size, &wn, &wb);
	hs_tk_entry e = { p, 0, stack, sess_gen, tick() };
	int live = hs_tk_live_put(&e, size) == 0;
	if (!live)
		hs_tk_t.dropped++;
	double lb = wb;
	uint64_t res = 0;
	if (big && live) {
		wn = 1;
		wb = (double)size;
		res = hs_tk_resident_of(p, size);
		hs_tk_res r = { p, size, res, stack, sess_gen };
		if (hs_tk_res_put(&r) < 0) {
			big = 0; /* no room: counted at its size, as before */
			res = size;
		}
		lb = (double)res;
	}
	tk_samples++;
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++) {
		session *s = &sess[i];
		if (!s->active)
			continue;
		hs_tk_fig *f = fig_of(s, stack);
		if (!f) {
			hs_tk_t.dropped++;
			continue;
		}
		s->samples++;
		f->a_n += wn;
		f->a_b += wb;
		f->a_samples++;
		if (live) {
			f->l_n += wn;
			f->l_b += lb;
			f->r_b += wb;
			f->l_samples++;
		}
	}
	/* a large native block: its resident bytes, whatever the basis (the
	 * interposer and the Track recorder leave it out of their totals) */
	int64_t d = !live ? 0 : big ? (int64_t)res : basis_bytes(size, wb);
	if (d)
		total_add_locked(d);
}

/* Record block `p` of `size` bytes allocated by this thread; `big`: a
 * large native block (record_locked). */
static void sample(hs_track_thread *t, void *p, uint64_t size, int kind, int big)
{
	if (!tk_exact && t->countdown <= 0) {
		do
			t->countdown += draw(t);
		while (t->countdown <= 0);
	}
	uint32_t locs[HS_TK_MAX_FRAMES];
	int truncated = 0;
	hs_tk_lock();
	if (!atomic_load_explicit(&tk_on, memory_order_relaxed)) {
		hs_tk_unlock();
		return;
	}
	int n = hs_tk_capture(locs, &truncated);
	if (n < 0) {
		n = 0;
		if (kind == HS_TK_KIND_PYTHON)
			kind = HS_TK_KIND_NOGIL;
	}
	if (t->thread_idx == HS_TK_NONE)
		t->thread_idx = hs_tk_thread_get((unsigned long)pthread_self(), t->tid);
	uint32_t stack = t->thread_idx == HS_TK_NONE ? HS_TK_NONE
	                 : hs_tk_stack_intern(kind, t->thread_idx, locs, (unsigned)n, truncated);
	record_locked((uintptr_t)p, size, stack, big);
	if (hs_tk_res_count() && tick() - tk_res_last >= REFRESH_MS)
		refresh_locked();
	hs_tk_unlock();
}

/* After a successful allocation of `n` bytes at `p` (busy is set). */
static inline void after_alloc(hs_track_thread *t, void *p, size_t n)
{
	if (t->gen != tk_gen)
		init_thread(t);
	if (t->quiet)
		return;
	if (tk_exact || n >= (size_t)tk_mean || (t->countdown -= (int64_t)n) <= 0)
		sample(t, p, n, HS_TK_KIND_PYTHON, 0);
}

/* ------------------------------------------------------------------ */
/* PyMem wrappers                                                      */

/*
 * Fast paths. Measured with cachegrind on bench_track.py's workload (scale
 * 0.1, Python 3.11), the wrappers executed about 56 (malloc) and 42 (free)
 * instructions per call and the run 16-18% more instructions than the plain
 * one (8.7% with these paths): saving registers around the call below, the
 * busy flag, the sampler, the pending-snapshot check. Most calls need
 * none of it, so a call that the sampler skips is forwarded as a tail call
 * after a countdown update:
 *   - only in sampled mode, for the OBJ and MEM domains over pymalloc, for
 *     requests of at most 512 bytes (pymalloc serves them itself: above that
 *     it forwards to PyMem_RawMalloc, which must see `busy` to pass the block
 *     through), without the interposer (which reads `busy` for every malloc);
 *   - pymalloc may still call PyMem_RawRealloc/RawCalloc for its own
 *     bookkeeping (the arena array, 3.10+'s address map nodes): those rare
 *     blocks are then sampled as the current line's allocations, which they
 *     are, and counted once;
 *   - a high-water mark noted during a fast call (a new arena) is snapshot by
 *     the next slow call, which flushes on entry as well as on exit.
 * A free takes its fast path when the filter says the block is not tracked.
 */
static void *w_malloc_slow(layer *L, hs_track_thread *t, size_t n);

static void *w_malloc(void *ctx, size_t n)
{
	layer *L = ctx;
	hs_track_thread *t = thread_state();
	if (__builtin_expect(n <= atomic_load_explicit(&L->fast_max, memory_order_relaxed), 1)) {
		int64_t c = t->countdown - (int64_t)n;
		if (__builtin_expect(c > 0 && !t->busy && t->gen == tk_gen && !t->quiet, 1)) {
			t->countdown = c;
			return L->prev.malloc(L->prev.ctx, n);
		}
	}
	return w_malloc_slow(L, t, n);
}

__attribute__((noinline)) static void *w_malloc_slow(layer *L, hs_track_thread *t, size_t n)
{
	if (!atomic_load_explicit(&L->enabled, memory_order_relaxed))
		return L->prev.malloc(L->prev.ctx, n);
	if (t->busy) {
		void *p = L->prev.malloc(L->prev.ctx, n);
		if (p && L->libc)
			total_add((int64_t)malloc_usable_size(p));
		return p;
	}
	snap_flush();
	t->busy = 1;
	void *p = L->prev.malloc(L->prev.ctx, n);
	if (p) {
		if (L->libc)
			total_add((int64_t)malloc_usable_size(p));
		after_alloc(t, p, n);
	}
	t->busy = 0;
	snap_flush();
	return p;
}

static void *w_calloc(void *ctx, size_t nelem, size_t elsize)
{
	layer *L = ctx;
	if (!atomic_load_explicit(&L->enabled, memory_order_relaxed))
		return L->prev.calloc(L->prev.ctx, nelem, elsize);
	hs_track_thread *t = thread_state();
	int outer = !t->busy;
	t->busy = 1;
	void *p = L->prev.calloc(L->prev.ctx, nelem, elsize);
	if (p) { /* the product did not overflow: calloc succeeded */
		if (L->libc)
			total_add((int64_t)malloc_usable_size(p));
		if (outer)
			after_alloc(t, p, nelem * elsize);
	}
	if (outer) {
		t->busy = 0;
		snap_flush();
	}
	return p;
}

static void *w_realloc(void *ctx, void *ptr, size_t n)
{
	layer *L = ctx;
	if (!atomic_load_explicit(&L->enabled, memory_order_relaxed))
		return L->prev.realloc(L->prev.ctx, ptr, n);
	hs_track_thread *t = thread_state();
	int outer = !t->busy;
	size_t old_usable = ptr && L->libc ? malloc_usable_size(ptr) : 0;
	/* Take the old block's entry out first: once realloc has freed it, its
	 * address may be handed to another thread before we could remove it. */
	hs_tk_entry e;
	uint64_t esize = 0;
	int took = 0;
	if (outer && ptr && (tk_exact || hs_tk_maybe_tracked(ptr))) {
		hs_tk_lock();
		took = atomic_load_explicit(&tk_on, memory_order_relaxed) &&
		       hs_tk_live_take((uintptr_t)ptr, &e, &esize);
		hs_tk_unlock();
	}
	t->busy = 1;
	void *p = L->prev.realloc(L->prev.ctx, ptr, n);
	if (!p) {
		if (took) { /* the old block is intact: put it back */
			hs_tk_lock();
			if (!atomic_load_explicit(&tk_on, memory_order_relaxed)) {
				/* tracking stopped meanwhile: nothing to put back */
			} else if (hs_tk_live_put(&e, esize) < 0) {
				forget_locked(&e, esize);
				hs_tk_t.dropped++;
			}
			hs_tk_unlock();
		}
	} else {
		if (L->libc)
			total_add((int64_t)malloc_usable_size(p) - (int64_t)old_usable);
		if (took) {
			hs_tk_lock();
			if (atomic_load_explicit(&tk_on, memory_order_relaxed))
				forget_locked(&e, esize);
			hs_tk_unlock();
		}
		if (outer)
			after_alloc(t, p, n);
	}
	if (outer) {
		t->busy = 0;
		snap_flush();
	}
	return p;
}

static void w_free_slow(layer *L, void *ptr);

static void w_free(void *ctx, void *ptr)
{
	layer *L = ctx;
	if (__builtin_expect(atomic_load_explicit(&L->fast_free, memory_order_relaxed) && !hs_tk_maybe_tracked(ptr), 1))
		return L->prev.free(L->prev.ctx, ptr);
	w_free_slow(L, ptr);
}

__attribute__((noinline)) static void w_free_slow(layer *L, void *ptr)
{
	if (!ptr || !atomic_load_explicit(&L->enabled, memory_order_relaxed)) {
		L->prev.free(L->prev.ctx, ptr);
		return;
	}
	snap_flush();
	if (L->libc)
		total_add(-(int64_t)malloc_usable_size(ptr));
	if (tk_exact || hs_tk_maybe_tracked(ptr))
		untrack(ptr);
	if (tk_native) { /* the interposer must not count this free again */
		hs_track_thread *t = thread_state();
		int b = t->busy;
		t->busy = 1;
		L->prev.free(L->prev.ctx, ptr);
		t->busy = b;
	} else {
		L->prev.free(L->prev.ctx, ptr);
	}
	snap_flush();
}

/* Arenas (pymalloc's, and the frame data stack chunks of 3.11+): counted
 * here, so the interposer must not count their mmap again. */
static void *a_alloc(void *ctx, size_t n)
{
	alayer *L = ctx;
	if (!atomic_load_explicit(&L->enabled, memory_order_relaxed))
		return L->prev.alloc(L->prev.ctx, n);
	hs_track_thread *t = tk_native ? thread_state() : NULL;
	int b = t ? t->busy : 0;
	if (t)
		t->busy = 1;
	void *p = L->prev.alloc(L->prev.ctx, n);
	if (t)
		t->busy = b;
	if (p)
		total_add((int64_t)n);
	return p;
}

static void a_free(void *ctx, void *p, size_t n)
{
	alayer *L = ctx;
	if (!p || !atomic_load_explicit(&L->enabled, memory_order_relaxed)) {
		L->prev.free(L->prev.ctx, p, n);
		return;
	}
	total_add(-(int64_t)n);
	hs_track_thread *t = tk_native ? thread_state() : NULL;
	int b = t ? t->busy : 0;
	if (t)
		t->busy = 1;
	L->prev.free(L->prev.ctx, p, n);
	if (t)
		t->busy = b;
}

static int is_layer(void *ctx, int dom)
{
	return ctx >= (void *)&layers[dom][0] && ctx < (void *)&layers[dom][MAX_LAYERS];
}

static int install_layers(int libc_mask, int arenas)
{
	static const PyMemAllocatorDomain doms[3] = { PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	layer *picked[3] = { NULL, NULL, NULL };
	PyMemAllocatorEx cur[3];
	for (int d = 0; d < 3; d++) {
		PyMem_GetAllocator(doms[d], &cur[d]);
		if (cur[d].malloc == w_malloc && is_layer(cur[d].ctx, d)) {
			picked[d] = cur[d].ctx; /* our disabled layer is on top again */
			continue;
		}
		for (int i = 0; i < MAX_LAYERS && !picked[d]; i++)
			if (!layers[d][i].in_use)
				picked[d] = &layers[d][i];
		if (!picked[d]) {
			PyErr_SetString(PyExc_RuntimeError,
			                "heapsnap: cannot start tracking: the allocators were wrapped over "
			                "heapsnap's too many times (stop the other memory tracer first)");
			return -1;
		}
	}
	for (int d = 0; d < 3; d++) {
		layer *L = picked[d];
		L->libc = (libc_mask >> d) & 1;
		if (!L->in_use) {
			L->prev = cur[d];
			L->in_use = 1;
			PyMemAllocatorEx mine = { L, w_malloc, w_calloc, w_realloc, w_free };
			PyMem_SetAllocator(doms[d], &mine);
		}
		/* fast paths: sampled mode over pymalloc (libc_mask 1: RAW is libc,
		 * MEM and OBJ are pymalloc's), without the interposer */
		int fast = !tk_exact && !tk_native && libc_mask == 1 && d > 0;
		atomic_store(&L->fast_max, fast ? (size_t)512 : 0);
		atomic_store(&L->fast_free, fast);
		atomic_store(&L->enabled, 1);
		cur_layer[d] = L;
	}
	cur_alayer = NULL;
	if (arenas) {
		PyObjectArenaAllocator ca;
		PyObject_GetArenaAllocator(&ca);
		alayer *A = NULL;
		if (ca.alloc == a_alloc && (void *)ca.ctx >= (void *)&alayers[0] &&
		    (void *)ca.ctx < (void *)&alayers[MAX_LAYERS])
			A = ca.ctx;
		for (int i = 0; i < MAX_LAYERS && !A; i++)
			if (!alayers[i].in_use)
				A = &alayers[i];
		if (A) {
			if (!A->in_use) {
				A->prev = ca;
				A->in_use = 1;
				PyObjectArenaAllocator mine = { A, a_alloc, a_free };
				PyObject_SetArenaAllocator(&mine);
			}
			atomic_store(&A->enabled, 1);
			cur_alayer = A;
		}
	}
	return 0;
}

static void uninstall_layers(void)
{
	static const PyMemAllocatorDomain doms[3] = { PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	for (int d = 0; d < 3; d++) {
		layer *L = cur_layer[d];
		if (!L)
			continue;
		atomic_store(&L->fast_max, 0);
		atomic_store(&L->fast_free, 0);
		atomic_store(&L->enabled, 0);
		PyMemAllocatorEx cur;
		PyMem_GetAllocator(doms[d], &cur);
		if (cur.malloc == w_malloc && cur.ctx == L) {
			PyMem_SetAllocator(doms[d], &L->prev);
			L->in_use = 0;
		} else {
			tk_stuck++; /* wrapped over: stays in the chain, passing through */
		}
		cur_layer[d] = NULL;
	}
	if (cur_alayer) {
		alayer *A = cur_alayer;
		atomic_store(&A->enabled, 0);
		PyObjectArenaAllocator ca;
		PyObject_GetArenaAllocator(&ca);
		if (ca.alloc == a_alloc && ca.ctx == A) {
			PyObject_SetArenaAllocator(&A->prev);
			A->in_use = 0;
		} else {
			tk_stuck++;
		}
		cur_alayer = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* the interposer's callbacks                                          */

static void n_init_thread(hs_track_thread *t)
{
	init_thread(t);
}

static void n_on_alloc(hs_track_thread *t, void *p, size_t n, int mmap)
{
	if (t->gen != tk_gen)
		init_thread(t);
	if (t->quiet || !atomic_load_explicit(&tk_on, memory_order_relaxed))
		return;
	sample(t, p, n, (mmap & HS_PRELOAD_MMAP) ? HS_TK_KIND_MMAP : HS_TK_KIND_NATIVE,
	       (mmap & HS_PRELOAD_BIG) != 0);
}

static void n_on_free(void *p)
{
	if (tk_exact || hs_tk_maybe_tracked(p))
		untrack(p);
}

/* The interposer calls it after on_alloc, so the snapshot includes the block. */
static void n_on_total(int64_t d)
{
	total_add(d);
	snap_flush();
}

static const hs_preload_hooks native_hooks = { n_init_thread, n_on_alloc, n_on_free, n_on_total };

static const hs_preload_iface *find_preload(void)
{
	void *sym = dlsym(RTLD_DEFAULT, HS_PRELOAD_SYMBOL);
	if (!sym)
		return NULL;
	const hs_preload_iface *i = ((hs_preload_interface_fn)sym)();
	return i && i->version == HS_PRELOAD_IFACE_VERSION ? i : NULL;
}

/* ------------------------------------------------------------------ */
/* blocks reported with PyTraceMalloc_Track (track_traced.c)           */

/* Any thread, with or without the GIL: the lock and the thread's own
 * frames only. Sampled like an allocation of `size` bytes; in the footprint
 * basis every block counts in the running total (its size kept for the
 * Untrack), a large one at its resident bytes (record_locked). */
void hs_tk__traced_alloc(uintptr_t ptr, size_t size)
{
	if (!atomic_load_explicit(&tk_on, memory_order_relaxed) || !ptr)
		return;
	hs_track_thread *t = thread_state();
	if (t->gen != tk_gen)
		init_thread(t);
	if (t->busy || t->quiet)
		return;
	t->busy = 1;
	int big = tk_res_big && size >= tk_res_big;
	if (tk_exact || big || size >= (size_t)tk_mean || (t->countdown -= (int64_t)size) <= 0)
		sample(t, (void *)ptr, size, HS_TK_KIND_PYTHON, big);
	if (tk_basis == BASIS_FOOTPRINT) {
		hs_tk_lock();
		if (atomic_load_explicit(&tk_on, memory_order_relaxed)) {
			uint64_t old = 0;
			int64_t d = 0;
			if (big) {
				if (hs_tk_traced_take(ptr, &old))
					d = -(int64_t)old;
			} else if (hs_tk_traced_put(ptr, size, &old) == 0) {
				d = (int64_t)size - (int64_t)old;
			}
			if (d)
				total_add_locked(d);
		}
		hs_tk_unlock();
	}
	t->busy = 0;
}

void hs_tk__traced_free(uintptr_t ptr)
{
	if (!atomic_load_explicit(&tk_on, memory_order_relaxed) || !ptr)
		return;
	if (tk_basis == BASIS_FOOTPRINT) {
		hs_tk_lock();
		uint64_t old;
		if (atomic_load_explicit(&tk_on, memory_order_relaxed) && hs_tk_traced_take(ptr, &old))
			total_add_locked(-(int64_t)old);
		hs_tk_unlock();
	}
	if (tk_exact || hs_tk_maybe_tracked((void *)ptr))
		untrack((void *)ptr);
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

static void atfork_prepare(void)
{
	if (tk_exists)
		hs_tk_lock();
}

static void atfork_parent(void)
{
	if (tk_exists)
		hs_tk_unlock();
}

static void atfork_child(void)
{
	if (!tk_exists)
		return;
	atomic_store(&tk_lock_word, 0); /* taken by atfork_prepare */
	thread_state()->busy--;
	atomic_store(&tk_on, 0);
	for (int d = 0; d < 3; d++)
		if (cur_layer[d]) {
			atomic_store(&cur_layer[d]->fast_max, 0);
			atomic_store(&cur_layer[d]->fast_free, 0);
			atomic_store(&cur_layer[d]->enabled, 0);
		}
	if (cur_alayer)
		atomic_store(&cur_alayer->enabled, 0);
	tk_forked = 1;
}

/* ------------------------------------------------------------------ */
/* start / stop                                                        */

static double now_s(void)
{
	return hs_hook__now();
}

static session *find_session(uint32_t id)
{
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++)
		if (sess[i].active && sess[i].id == id)
			return &sess[i];
	return NULL;
}

static int engine_start(int exact, int64_t mean, PyObject *seed, int want_native)
{
	const char *name = _PyMem_GetCurrentAllocatorName();
	int libc_mask = 0, arenas = 0;
	if (exact) {
		tk_basis = BASIS_REQUESTED;
	} else if (name && strcmp(name, "pymalloc") == 0) {
		tk_basis = BASIS_FOOTPRINT;
		libc_mask = 1; /* RAW */
		arenas = 1;
	} else if (name && strcmp(name, "malloc") == 0) {
		tk_basis = BASIS_FOOTPRINT;
		libc_mask = 7;
	} else {
		tk_basis = BASIS_ESTIMATE;
	}
	const hs_preload_iface *pi = find_preload();
	if (want_native == 1 && !pi) {
		PyErr_SetString(PyExc_RuntimeError,
		                "heapsnap: cannot track native allocations: libheapsnap_preload.so is not "
		                "loaded; start the program with LD_PRELOAD=.../libheapsnap_preload.so "
		                "(heapsnap record --native does it)");
		return -1;
	}
	if (hs_tk_tables_init() < 0) {
		PyErr_NoMemory();
		return -1;
	}
	hs_tk_capture_reset();
	tk_exact = exact;
	tk_mean = mean;
	tk_mean_d = (double)mean;
	tk_seeded = seed && seed != Py_None;
	if (tk_seeded) {
		tk_seed = (uint64_t)PyLong_AsUnsignedLongLongMask(seed);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		tk_seed = splitmix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid());
	}
	tk_gen++;
	atomic_store(&tk_ordinal, 0);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &tk_t0);
	atomic_store(&tk_total, 0);
	atomic_store(&tk_peak_run, 0);
	atomic_store(&tk_snap_next, INT64_MAX);
	atomic_store(&tk_snap_pending, 0);
	tk_samples = 0;
	tk_forked = 0;
	iface = pi;
	atomic_store(&ext_thread, pi ? pi->thread : NULL);
	/* the starting thread draws first: with a seed its sequence is fixed */
	init_thread(thread_state());
	tk_native = 0;
	tk_res_big = exact || mean < 128 * 1024 ? 128 * 1024 : (uint64_t)mean;
	tk_res_last = 0;
	if (pi && want_native != 0) {
		hs_preload_config cfg = { HS_PRELOAD_IFACE_VERSION, tk_gen, exact,
		                          tk_basis == BASIS_FOOTPRINT, mean, (int64_t)tk_res_big };
		if (pi->start(&native_hooks, &cfg) == 0)
			tk_native = 1;
	}
	if (!tk_atfork_done) {
		if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0)
			tk_atfork_done = 1;
	}
	if (install_layers(libc_mask, arenas) < 0) {
		if (tk_native)
			pi->stop();
		tk_native = 0;
		PyObject **codes;
		uint32_t n;
		hs_tk_tables_release(&codes, &n);
		free(codes);
		return -1;
	}
	tk_exists = 1;
	atomic_store(&tk_on, 1);
	/* numpy's buffers: the interposer sees their mallocs, else the reports */
	tk_traced = 0;
	if (!tk_native) {
		hs_tk_traced_start();
		tk_traced = 1;
	}
	return 0;
}

/* Stop recording and unhook; tables stay until engine_free. GIL held. */
static void engine_stop(void)
{
	if (tk_traced)
		hs_tk_traced_stop();
	tk_traced = 0;
	if (tk_native && iface)
		iface->stop();
	hs_tk_lock();
	atomic_store(&tk_on, 0);
	hs_tk_unlock();
	uninstall_layers();
	tk_native = 0;
}

static void engine_free(void)
{
	PyObject **codes = NULL;
	uint32_t n = 0;
	hs_tk_lock();
	for (int i = 0; i < HS_TK_MAX_SESSIONS; i++) {
		free(sess[i].figs);
		memset(&sess[i], 0, sizeof(sess[i]));
	}
	nsess = 0;
	hs_tk_tables_release(&codes, &n);
	hs_tk_traced_release();
	hs_tk_res_release();
	hs_tk_capture_reset();
	tk_exists = 0;
	hs_tk_unlock();
	for (uint32_t i = 0; i < n; i++)
		Py_XDECREF(codes[i]);
	free(codes);
}

/* ------------------------------------------------------------------ */
/* results                                                             */

typedef struct xstack {
	hs_tk_stack st;
	hs_tk_fig fig;
} xstack;

typedef struct export {
	xstack *stacks; uint32_t nstacks;
	uint32_t *frames;
	hs_tk_loc *locs; uint32_t nlocs;
	PyObject **codes; uint32_t ncodes;
	hs_tk_code *dcodes;  /* per code: the names of a detached entry (codes[i] NULL) */
	hs_tk_thread *threads; uint32_t nthreads;
	int64_t peak, final;
	double seconds;
	uint64_t samples, dropped, live_entries;
	size_t table_bytes;
	uint32_t allstacks;
	int exact, native, seeded, basis;
	int64_t mean;
	uint64_t seed;
	uint64_t res_big, res_blocks;
} export;

static void export_release(export *x)
{
	for (uint32_t i = 0; i < x->ncodes; i++) {
		Py_XDECREF(x->codes[i]);
		if (x->dcodes) {
			free(x->dcodes[i].file);
			free(x->dcodes[i].name);
		}
	}
	free(x->dcodes);
	for (uint32_t i = 0; i < x->nthreads; i++)
		free(x->threads[i].name);
	free(x->stacks);
	free(x->frames);
	free(x->locs);
	free(x->codes);
	free(x->threads);
	memset(x, 0, sizeof(*x));
}

static int nonzero(const hs_tk_fig *f, uint32_t epoch)
{
	double pb = f->snap == epoch ? f->p_b : f->l_b;
	return f->a_samples || f->l_samples || pb != 0;
}

/* Copy session `s`'s figures out under the lock; GIL held. @return 0 or -1 (no memory). */
static int export_locked(session *s, export *x)
{
	memset(x, 0, sizeof(*x));
	hs_tk_tables *t = &hs_tk_t;
	if (hs_tk_res_count())
		refresh_locked();
	fold_peaks();
	uint32_t n = 0, nf = 0;
	for (uint32_t i = 0; i < t->nstacks && i < s->capfigs; i++)
		if (nonzero(&s->figs[i], s->epoch)) {
			n++;
			nf += t->stacks[i].n;
		}
	x->stacks = malloc((size_t)(n ? n : 1) * sizeof(xstack));
	x->frames = malloc((size_t)(nf ? nf : 1) * sizeof(uint32_t));
	x->locs = malloc((size_t)(t->nlocs ? t->nlocs : 1) * sizeof(hs_tk_loc));
	x->codes = calloc(t->ncodes ? t->ncodes : 1, sizeof(PyObject *));
	x->dcodes = calloc(t->ncodes ? t->ncodes : 1, sizeof(hs_tk_code));
	x->threads = calloc(t->nthreads ? t->nthreads : 1, sizeof(hs_tk_thread));
	if (!x->stacks || !x->frames || !x->locs || !x->codes || !x->dcodes || !x->threads) {
		export_release(x);
		return -1;
	}
	uint32_t k = 0, fo = 0;
	for (uint32_t i = 0; i < t->nstacks && i < s->capfigs; i++) {
		hs_tk_fig *f = &s->figs[i];
		if (!nonzero(f, s->epoch))
			continue;
		x->stacks[k].st = t->stacks[i];
		x->stacks[k].st.off = fo;
		x->stacks[k].fig = *f;
		if (f->snap != s->epoch) {
			x->stacks[k].fig.p_n = f->l_n;
			x->stacks[k].fig.p_b = f->l_b;
		}
		memcpy(x->frames + fo, t->frames + t->stacks[i].off, t->stacks[i].n * sizeof(uint32_t));
		fo += t->stacks[i].n;
		k++;
	}
	x->nstacks = k;
	memcpy(x->locs, t->locs, t->nlocs * sizeof(hs_tk_loc));
	x->nlocs = t->nlocs;
	for (uint32_t i = 0; i < t->ncodes; i++) {
		x->codes[i] = t->codes[i].code;
		Py_XINCREF(x->codes[i]);
		if (!x->codes[i]) {
			x->dcodes[i].first = t->codes[i].first;
			x->dcodes[i].file = strdup(t->codes[i].file);
			x->dcodes[i].name = strdup(t->codes[i].name);
		}
	}
	x->ncodes = t->ncodes;
	for (uint32_t i = 0; i < t->nthreads; i++) {
		x->threads[i] = t->threads[i];
		x->threads[i].name = t->threads[i].name ? strdup(t->threads[i].name) : NULL;
	}
	x->nthreads = t->nthreads;
	int64_t pk = atomic_load(&tk_peak_run);
	int64_t peak_abs = s->peak_abs > pk ? s->peak_abs : pk;
	x->peak = peak_abs - s->base;
	if (x->peak < 0)
		x->peak = 0;
	x->final = atomic_load(&tk_total) - s->base;
	x->seconds = now_s() - s->t0;
	x->samples = s->samples;
	x->dropped = t->dropped - s->dropped0;
	x->live_entries = t->nlive;
	x->table_bytes = hs_tk_tables_bytes() + (size_t)s->capfigs * sizeof(hs_tk_fig) + hs_tk_traced_bytes() +
	                 hs_tk_res_bytes();
	x->res_big = tk_res_big;
	x->res_blocks = hs_tk_res_count();
	x->allstacks = t->nstacks;
	x->exact = tk_exact;
	x->native = tk_native;
	x->seeded = tk_seeded;
	x->basis = tk_basis;
	x->mean = tk_mean;
	x->seed = tk_seed;
	return 0;
}

static int put(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

static PyObject *dbl_int(double v)
{
	return PyLong_FromLongLong((long long)(v < 0 ? v - 0.5 : v + 0.5));
}

static PyObject *export_build(const export *x)
{
	PyObject *res = PyDict_New(), *codes = NULL, *locs = NULL, *threads = NULL, *stacks = NULL, *tot = NULL;
	if (!res)
		return NULL;
	codes = PyList_New(x->ncodes);
	locs = PyList_New(x->nlocs);
	threads = PyList_New(x->nthreads);
	stacks = PyList_New(x->nstacks);
	tot = PyDict_New();
	if (!codes || !locs || !threads || !stacks || !tot)
		goto fail;
	for (uint32_t i = 0; i < x->ncodes; i++) {
		PyCodeObject *co = (PyCodeObject *)x->codes[i];
		PyObject *item;
		if (!co) { /* detached: its names were copied */
			const hs_tk_code *d = &x->dcodes[i];
			const char *fn = d->file ? d->file : "", *nm = d->name ? d->name : "";
			item = Py_BuildValue("(NNi)", PyUnicode_DecodeUTF8(fn, (Py_ssize_t)strlen(fn), "replace"),
			                     PyUnicode_DecodeUTF8(nm, (Py_ssize_t)strlen(nm), "replace"), d->first);
			if (!item)
				goto fail;
			PyList_SET_ITEM(codes, i, item);
			continue;
		}
#if PY_VERSION_HEX >= 0x030B0000
		PyObject *qn = co->co_qualname;
#else
		PyObject *qn = co->co_name;
#endif
		item = Py_BuildValue("(OOi)", co->co_filename, qn, co->co_firstlineno);
		if (!item)
			goto fail;
		PyList_SET_ITEM(codes, i, item);
	}
	for (uint32_t i = 0; i < x->nlocs; i++) {
		PyObject *item = Py_BuildValue("(Ii)", x->locs[i].code, x->locs[i].line);
		if (!item)
			goto fail;
		PyList_SET_ITEM(locs, i, item);
	}
	for (uint32_t i = 0; i < x->nthreads; i++) {
		const char *nm = x->threads[i].name;
		PyObject *name = nm ? PyUnicode_DecodeUTF8(nm, (Py_ssize_t)strlen(nm), "replace")
		                    : (Py_INCREF(Py_None), Py_None);
		if (!name)
			goto fail;
		PyObject *item = Py_BuildValue("(klN)", x->threads[i].ident, x->threads[i].tid, name);
		if (!item)
			goto fail;
		PyList_SET_ITEM(threads, i, item);
	}
	for (uint32_t i = 0; i < x->nstacks; i++) {
		const xstack *s = &x->stacks[i];
		PyObject *fr = PyTuple_New(s->st.n);
		if (!fr)
			goto fail;
		for (unsigned j = 0; j < s->st.n; j++) {
			PyObject *v = PyLong_FromUnsignedLong(x->frames[s->st.off + j]);
			if (!v) {
				Py_DECREF(fr);
				goto fail;
			}
			PyTuple_SET_ITEM(fr, j, v);
		}
		const hs_tk_fig *f = &s->fig;
		PyObject *item = Py_BuildValue("(iIiNINNINNNNN)", (int)s->st.kind, s->st.thread, (int)s->st.truncated,
		                               fr, f->a_samples, dbl_int(f->a_n), dbl_int(f->a_b), f->l_samples,
		                               dbl_int(f->l_n), dbl_int(f->l_b), dbl_int(f->p_n), dbl_int(f->p_b),
		                               dbl_int(f->r_b));
		if (!item)
			goto fail;
		PyList_SET_ITEM(stacks, i, item);
	}
	if (put(tot, "exact", PyBool_FromLong(x->exact)) < 0 ||
	    put(tot, "sample_bytes", PyLong_FromLongLong(x->exact ? 0 : x->mean)) < 0 ||
	    put(tot, "seed", x->seeded ? PyLong_FromUnsignedLongLong(x->seed) : (Py_INCREF(Py_None), Py_None)) < 0 ||
	    put(tot, "native", PyBool_FromLong(x->native)) < 0 ||
	    put(tot, "peak_basis", PyUnicode_FromString(basis_names[x->basis])) < 0 ||
	    put(tot, "peak_bytes", PyLong_FromLongLong(x->peak)) < 0 ||
	    put(tot, "final_bytes", PyLong_FromLongLong(x->final)) < 0 ||
	    put(tot, "seconds", PyFloat_FromDouble(x->seconds)) < 0 ||
	    put(tot, "samples", PyLong_FromUnsignedLongLong(x->samples)) < 0 ||
	    put(tot, "dropped_samples", PyLong_FromUnsignedLongLong(x->dropped)) < 0 ||
	    put(tot, "live_entries", PyLong_FromUnsignedLongLong(x->live_entries)) < 0 ||
	    put(tot, "stacks", PyLong_FromUnsignedLong(x->allstacks)) < 0 ||
	    put(tot, "tracker_bytes", PyLong_FromSize_t(x->table_bytes)) < 0 ||
	    put(tot, "stuck_layers", PyLong_FromUnsignedLongLong(tk_stuck)) < 0 ||
	    put(tot, "resident_threshold", PyLong_FromUnsignedLongLong(x->res_big)) < 0 ||
	    put(tot, "resident_blocks", PyLong_FromUnsignedLongLong(x->res_blocks)) < 0)
		goto fail;
	if (put(res, "codes", codes) < 0 || put(res, "locs", locs) < 0 || put(res, "threads", threads) < 0 ||
	    put(res, "stacks", stacks) < 0 || put(res, "totals", tot) < 0) {
		codes = locs = threads = stacks = tot = NULL;
		Py_DECREF(res);
		return NULL;
	}
	return res;
fail:
	Py_XDECREF(codes);
	Py_XDECREF(locs);
	Py_XDECREF(threads);
	Py_XDECREF(stacks);
	Py_XDECREF(tot);
	Py_DECREF(res);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Python functions                                                    */

static void set_quiet(int on)
{
	if (tk_exists || on == 0) {
		hs_track_thread *t = thread_state();
		t->quiet = on;
	}
}

static void name_threads(PyObject *threads)
{
	if (!threads || threads == Py_None)
		return;
	PyObject *it = PyObject_GetIter(threads);
	if (!it) {
		PyErr_Clear();
		return;
	}
	PyObject *item;
	while ((item = PyIter_Next(it))) {
		unsigned long ident;
		long tid;
		PyObject *name;
		if (PyArg_ParseTuple(item, "klU", &ident, &tid, &name)) {
			Py_ssize_t len;
			const char *u = PyUnicode_AsUTF8AndSize(name, &len);
			if (u) {
				hs_tk_lock();
				hs_tk_thread_name(ident, tid, u, (size_t)len);
				hs_tk_unlock();
			}
		}
		PyErr_Clear();
		Py_DECREF(item);
	}
	Py_DECREF(it);
	PyErr_Clear();
}

PyDoc_STRVAR(start_doc,
"_track_start(exact=False, sample_bytes=524288, seed=None, native=None, threads=None) -> dict\n"
"\n"
"Start a tracking session (heapsnap.track() is the interface). The first\n"
"session sets the tracker's mode; later ones join it while it runs.\n"
"native: None uses the LD_PRELOAD interposer when it is loaded, True\n"
"requires it, False ignores it. threads: (ident, native_id, name) tuples.\n"
"Returns {session, exact, sample_bytes, native, peak_basis, joined}.");

static PyObject *py_start(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "exact", "sample_bytes", "seed", "native", "threads", NULL };
	int exact = 0;
	long long mean = 512 * 1024;
	PyObject *seed = Py_None, *native = Py_None, *threads = Py_None;
	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|pLOOO:_track_start", kwlist, &exact, &mean, &seed,
	                                 &native, &threads))
		return NULL;
	if (mean < 1) {
		PyErr_SetString(PyExc_ValueError, "heapsnap: sample_bytes must be at least 1");
		return NULL;
	}
	if (seed != Py_None && !PyLong_Check(seed)) {
		PyErr_SetString(PyExc_TypeError, "heapsnap: seed must be an int or None");
		return NULL;
	}
	int want_native = native == Py_None ? -1 : PyObject_IsTrue(native);
	if (want_native == -1 && PyErr_Occurred())
		return NULL;
	if (tk_forked) {
		PyErr_SetString(PyExc_RuntimeError, "heapsnap: cannot start tracking in a forked child "
		                                    "before its after-fork cleanup ran");
		return NULL;
	}
	int joined = tk_exists && atomic_load(&tk_on);
	if (!joined) {
		if (tk_exists) /* stopped but not freed (cannot happen: stop frees) */
			engine_free();
		if (engine_start(exact, mean, seed, want_native) < 0)
			return NULL;
	} else if (want_native == 1 && !tk_native) {
		PyErr_SetString(PyExc_RuntimeError, "heapsnap: tracking is already running without native "
		                                    "allocations; stop it before starting with native=True");
		return NULL;
	}
	hs_tk_lock();
	session *s = NULL;
	for (int i = 0; i < HS_TK_MAX_SESSIONS && !s; i++)
		if (!sess[i].active)
			s = &sess[i];
	if (!s) {
		hs_tk_unlock();
		if (!joined) {
			engine_stop();
			engine_free();
		}
		PyErr_Format(PyExc_RuntimeError, "heapsnap: cannot start tracking: %d sessions are already "
		             "running (nest fewer track() blocks)", HS_TK_MAX_SESSIONS);
		return NULL;
	}
	fold_peaks();
	memset(s, 0, sizeof(*s));
	s->active = 1;
	s->id = sess_next_id++;
	s->start_gen = ++sess_gen;
	s->base = atomic_load(&tk_total);
	s->peak_abs = s->base;
	s->snap_next = s->base + SNAP_MIN_STEP;
	s->dropped0 = hs_tk_t.dropped;
	s->t0 = now_s();
	nsess++;
	recompute_snap_next();
	hs_tk_unlock();
	set_quiet(1);
	name_threads(threads);
	PyObject *r = Py_BuildValue("{s:I,s:O,s:L,s:O,s:s,s:O}", "session", s->id, "exact",
	                            tk_exact ? Py_True : Py_False, "sample_bytes",
	                            (long long)(tk_exact ? 0 : tk_mean), "native", tk_native ? Py_True : Py_False,
	                            "peak_basis", basis_names[tk_basis], "joined", joined ? Py_True : Py_False);
	set_quiet(0);
	return r;
}

static PyObject *forked_result(void)
{
	return Py_BuildValue("{s:[],s:[],s:[],s:[],s:{s:O}}", "codes", "locs", "threads", "stacks", "totals",
	                     "forked_child", Py_True);
}

static PyObject *read_or_stop(PyObject *args, int stop)
{
	unsigned int id;
	if (!PyArg_ParseTuple(args, "I", &id))
		return NULL;
	if (tk_forked || (id < dead_below && !find_session(id)))
		return forked_result();
	if (!tk_exists) {
		PyErr_Format(PyExc_ValueError, "heapsnap: no tracking session %u (stopped already?)", id);
		return NULL;
	}
	set_quiet(1);
	export x;
	hs_tk_lock();
	session *s = find_session(id);
	if (!s) {
		hs_tk_unlock();
		set_quiet(0);
		PyErr_Format(PyExc_ValueError, "heapsnap: no tracking session %u (stopped already?)", id);
		return NULL;
	}
	int rc = export_locked(s, &x);
	int last = 0;
	if (stop && rc == 0) {
		free(s->figs);
		memset(s, 0, sizeof(*s));
		nsess--;
		last = nsess == 0;
		recompute_snap_next();
	}
	hs_tk_unlock();
	if (rc < 0) {
		set_quiet(0);
		return PyErr_NoMemory();
	}
	if (last) {
		engine_stop();
		engine_free();
	}
	PyObject *res = export_build(&x);
	export_release(&x);
	set_quiet(0);
	return res;
}

static PyObject *py_stop(PyObject *self, PyObject *args)
{
	(void)self;
	return read_or_stop(args, 1);
}

static PyObject *py_read(PyObject *self, PyObject *args)
{
	(void)self;
	return read_or_stop(args, 0);
}

static PyObject *py_status(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	const hs_preload_iface *pi = find_preload();
	uint64_t patched = 0, foreign = 0;
	hs_tk_traced_stats(&patched, &foreign);
	return Py_BuildValue("{s:O,s:i,s:O,s:L,s:O,s:O,s:K,s:K,s:K}", "active",
	                     tk_exists && atomic_load(&tk_on) ? Py_True : Py_False, "sessions", nsess, "exact",
	                     tk_exact ? Py_True : Py_False, "sample_bytes", (long long)tk_mean, "native",
	                     tk_native ? Py_True : Py_False, "native_available", pi ? Py_True : Py_False,
	                     "stuck_layers", (unsigned long long)tk_stuck, "traced_slots",
	                     (unsigned long long)patched, "traced_foreign_slots", (unsigned long long)foreign);
}

/* Profile function installed with threading.setprofile while tracking: a new
 * thread's first event names it, then removes itself. */
static PyObject *py_thread_hello(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	PyEval_SetProfile(NULL, NULL);
	if (!tk_exists || !atomic_load(&tk_on))
		Py_RETURN_NONE;
	hs_track_thread *t = thread_state();
	int q = t->quiet;
	t->quiet = 1;
	PyObject *threading = PyImport_ImportModule("threading");
	PyObject *cur = threading ? PyObject_CallMethod(threading, "current_thread", NULL) : NULL;
	PyObject *name = cur ? PyObject_GetAttrString(cur, "name") : NULL;
	Py_ssize_t len = 0;
	const char *u = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &len) : NULL;
	if (u) {
		if (t->gen != tk_gen)
			init_thread(t);
		hs_tk_lock();
		if (tk_exists)
			hs_tk_thread_name((unsigned long)pthread_self(), t->tid, u, (size_t)len);
		hs_tk_unlock();
	}
	Py_XDECREF(name);
	Py_XDECREF(cur);
	Py_XDECREF(threading);
	PyErr_Clear();
	t->quiet = q;
	Py_RETURN_NONE;
}

static PyObject *py_after_fork_child(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	if (!tk_exists)
		Py_RETURN_NONE;
	/* atfork_child disabled every layer; unhook and drop the copies. */
	uninstall_layers();
	if (tk_traced)
		hs_tk_traced_stop();
	tk_traced = 0;
	tk_native = 0;
	engine_free();
	tk_forked = 0;
	dead_below = sess_next_id; /* sessions inherited from the parent are dead */
	Py_RETURN_NONE;
}

/* _track_bench(n): time n captures + records of the caller's stack with
 * fake addresses (then forgotten). Returns ns per sample. Needs an active
 * tracker. */
static PyObject *py_bench(PyObject *self, PyObject *args)
{
	(void)self;
	long n;
	if (!PyArg_ParseTuple(args, "l", &n))
		return NULL;
	if (!tk_exists || !atomic_load(&tk_on) || n <= 0) {
		PyErr_SetString(PyExc_RuntimeError, "heapsnap: _track_bench needs an active tracker and n > 0");
		return NULL;
	}
	hs_track_thread *t = thread_state();
	if (t->gen != tk_gen)
		init_thread(t);
	static char base[16];
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		t->countdown = 1;
		sample(t, base + 1, 64, HS_TK_KIND_PYTHON, 0);
	}
	double t1 = now_s();
	untrack(base + 1);
	return PyFloat_FromDouble((t1 - t0) * 1e9 / (double)n);
}

static PyMethodDef track_methods[] = {
	{ "_track_start", (PyCFunction)(void (*)(void))py_start, METH_VARARGS | METH_KEYWORDS, start_doc },
	{ "_track_stop", py_stop, METH_VARARGS, "_track_stop(session) -> dict: end a session, its figures" },
	{ "_track_read", py_read, METH_VARARGS, "_track_read(session) -> dict: a session's figures so far" },
	{ "_track_status", py_status, METH_NOARGS, "_track_status() -> dict" },
	{ "_track_thread_hello", py_thread_hello, METH_VARARGS, "profile hook naming new threads" },
	{ "_track_after_fork_child", py_after_fork_child, METH_NOARGS, "os.register_at_fork child hook" },
	{ "_track_bench", py_bench, METH_VARARGS, "_track_bench(n) -> ns per recorded sample" },
	{ NULL, NULL, 0, NULL }
};

int hs_track__register(PyObject *module)
{
	if (PyModule_AddFunctions(module, track_methods) < 0)
		return -1;
	return PyModule_AddIntConstant(module, "TRACK_MAX_FRAMES", HS_TK_MAX_FRAMES);
}
