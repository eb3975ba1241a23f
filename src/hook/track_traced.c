/*
 * hook/track_traced.c: the blocks C extensions report to tracing tools
 * (PyTraceMalloc_Track / PyTraceMalloc_Untrack), seen without LD_PRELOAD.
 *
 * numpy allocates its data buffers with malloc (its default handler) and
 * reports each one: PyDataMem_UserNEW calls PyTraceMalloc_Track(389047,
 * ptr, size) after the allocation, PyDataMem_UserFREE calls
 * PyTraceMalloc_Untrack before the free. CPython's functions do nothing
 * unless tracemalloc is tracing, and the PyMem wrappers never see those
 * mallocs, so the tracker saw 96 bytes for np.ones(10_000_000).
 *
 * How the calls reach us: each extension module calls the functions
 * through its own GOT slot (R_*_JUMP_SLOT, or R_*_GLOB_DAT when built
 * with -fno-plt). While tracking, those slots point at our wrappers, which
 * record the block and then call CPython's function, so tracemalloc, when
 * the user runs it too, sees every block as before. That is what memray
 * does for malloc (its "elf_shenanigans"); here only two slots per module.
 *   - Modules loaded later (`import numpy` after track() started, which is
 *     how `record --lines` runs): the interpreter loads extensions with
 *     dlopen from one object (the python executable or libpython, the one
 *     that defines PyTraceMalloc_Track); its dlopen slot is pointed at a
 *     wrapper that patches the objects that dlopen added, once dlopen has
 *     returned (relocated and initialised). The interpreter calls dlopen
 *     with the GIL held, so no other import is half-way through loading.
 *   - A slot that holds neither CPython's function nor a lazy-binding stub
 *     of its own object belongs to another tool: it is left alone.
 *   - Writing a slot is one aligned pointer store (a concurrent call sees
 *     the old or the new function, both valid); a slot in the RELRO region
 *     (read-only after relocation) is made writable for the store and made
 *     read-only again.
 *   - Stop restores every slot that still holds our wrapper, in objects
 *     still loaded; the wrappers stay valid forever (the module is never
 *     unloaded), so a call racing with the restore is harmless.
 * numpy calls Track with or without the GIL (loops that release it may
 * allocate): the recorder takes only the tracker's own lock and reads the
 * thread's frames read-only (track_stack.c); it never takes the GIL.
 * Under the LD_PRELOAD interposer (--native) the mallocs themselves are
 * seen, so the slots are not patched (a block would be counted twice).
 *
 * Sizes table: in the footprint basis the running total counts every
 * reported block, sampled or not, so the size of each is kept (address ->
 * size, under hs_tk_lock) for the Untrack that gives only the address.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "track_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB R_X86_64_GLOB_DAT
#define HS_TRACED_GOT 1
#elif defined(__aarch64__)
#define R_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB R_AARCH64_GLOB_DAT
#define HS_TRACED_GOT 1
#else
#define HS_TRACED_GOT 0
#endif

typedef struct patched {
	void **addr;     /* the slot */
	void *orig;      /* what it held */
	void *mine;      /* what we wrote */
	uintptr_t base;  /* its object (dlpi_addr, dlpi_name): restored only if still loaded */
	const char *name;
	int relro;       /* read-only after relocation: mprotect around the store */
} patched;

typedef struct seen_obj {
	uintptr_t base;
	const char *name;
} seen_obj;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int traced_on;
static patched *slots;
static size_t nslots, capslots;
static seen_obj *seen;
static size_t nseen, capseen;
static unsigned long long last_adds;
static uint64_t foreign_slots, failed_slots;
static void *(*prev_dlopen)(const char *, int);

/* ------------------------------------------------------------------ */
/* the wrappers                                                        */

static int my_track(unsigned int domain, uintptr_t ptr, size_t size)
{
	if (atomic_load_explicit(&traced_on, memory_order_relaxed))
		hs_tk__traced_alloc(ptr, size);
	return PyTraceMalloc_Track(domain, ptr, size);
}

static int my_untrack(unsigned int domain, uintptr_t ptr)
{
	if (atomic_load_explicit(&traced_on, memory_order_relaxed))
		hs_tk__traced_free(ptr);
	return PyTraceMalloc_Untrack(domain, ptr);
}

static void rescan(int with_python);

static void *my_dlopen(const char *file, int mode)
{
	void *(*f)(const char *, int) = prev_dlopen ? prev_dlopen : dlopen;
	void *h = f(file, mode);
	if (h && atomic_load_explicit(&traced_on, memory_order_relaxed))
		rescan(0);
	return h;
}

/* ------------------------------------------------------------------ */
/* patching                                                            */

#if HS_TRACED_GOT
typedef struct scan_ctx {
	const void *self;   /* an address in our module: never patched */
	const void *python; /* an address in the object defining PyTraceMalloc_Track */
	int with_python;    /* patch that object's dlopen slot */
} scan_ctx;

static int in_object(const struct dl_phdr_info *info, const void *a)
{
	uintptr_t x = (uintptr_t)a;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && x >= info->dlpi_addr + ph->p_vaddr &&
		    x < info->dlpi_addr + ph->p_vaddr + ph->p_memsz)
			return 1;
	}
	return 0;
}

/* Writable after relocation: in a PF_W load segment and outside RELRO. */
static int slot_writable(const struct dl_phdr_info *info, uintptr_t a, int *relro)
{
	int w = 0;
	*relro = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (a < lo || a + sizeof(void *) > hi)
			continue;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
			w = 1;
		if (ph->p_type == PT_GNU_RELRO)
			*relro = 1;
	}
	return w;
}

static int remember(void **addr, void *orig, void *mine, const struct dl_phdr_info *info, int relro)
{
	if (nslots == capslots) {
		size_t nc = capslots ? capslots * 2 : 16;
		patched *n = realloc(slots, nc * sizeof(*n));
		if (!n)
			return -1;
		slots = n;
		capslots = nc;
	}
	slots[nslots++] = (patched){ addr, orig, mine, info->dlpi_addr, info->dlpi_name, relro };
	return 0;
}

static int store_slot(void **addr, void *v, int relro)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(pg - 1);
	size_t len = ((uintptr_t)addr + sizeof(void *) > page + (uintptr_t)pg) ? (size_t)pg * 2 : (size_t)pg;
	if (relro && mprotect((void *)page, len, PROT_READ | PROT_WRITE) != 0)
		return -1;
	__atomic_store_n(addr, v, __ATOMIC_RELEASE);
	if (relro)
		mprotect((void *)page, len, PROT_READ);
	return 0;
}

static void patch(const struct dl_phdr_info *info, void **addr, void *real, void *mine)
{
	void *cur = __atomic_load_n(addr, __ATOMIC_ACQUIRE);
	if (cur == mine)
		return;
	/* CPython's function, or (lazy binding) a stub of the object itself */
	if (real && cur != real && !in_object(info, cur)) {
		foreign_slots++;
		return;
	}
	int relro;
	if (!slot_writable(info, (uintptr_t)addr, &relro) && !relro) {
		failed_slots++;
		return;
	}
	if (remember(addr, cur, mine, info, relro) < 0 || store_slot(addr, mine, relro) < 0) {
		failed_slots++;
		if (nslots && slots[nslots - 1].addr == addr)
			nslots--;
		return;
	}
	if (mine == (void *)my_dlopen)
		prev_dlopen = (void *(*)(const char *, int))cur;
}

static uintptr_t dptr(uintptr_t base, ElfW(Addr) v)
{
	/* glibc relocates the dynamic section's pointers in place, other
	 * loaders may not */
	return v < base ? base + v : v;
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	scan_ctx *c = data;
	if (in_object(info, c->self))
		return 0;
	int is_py = in_object(info, c->python);
	if (is_py && !c->with_python)
		return 0;
	if (!is_py) {
		for (size_t i = 0; i < nseen; i++)
			if (seen[i].base == info->dlpi_addr && seen[i].name == info->dlpi_name)
				return 0;
	}
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!dyn)
		return 0;
	uintptr_t base = info->dlpi_addr, symtab = 0, strtab = 0, jmprel = 0, rela = 0;
	size_t strsz = 0, pltrelsz = 0, relasz = 0;
	long pltrel = DT_RELA;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: symtab = dptr(base, d->d_un.d_ptr); break;
		case DT_STRTAB: strtab = dptr(base, d->d_un.d_ptr); break;
		case DT_STRSZ: strsz = d->d_un.d_val; break;
		case DT_JMPREL: jmprel = dptr(base, d->d_un.d_ptr); break;
		case DT_PLTRELSZ: pltrelsz = d->d_un.d_val; break;
		case DT_PLTREL: pltrel = (long)d->d_un.d_val; break;
		case DT_RELA: rela = dptr(base, d->d_un.d_ptr); break;
		case DT_RELASZ: relasz = d->d_un.d_val; break;
		default: break;
		}
	}
	if (!symtab || !strtab || pltrel != DT_RELA)
		goto done;
	struct { uintptr_t at; size_t sz; } tabs[2] = { { jmprel, pltrelsz }, { rela, relasz } };
	for (int k = 0; k < 2; k++) {
		if (!tabs[k].at)
			continue;
		const ElfW(Rela) *r = (const ElfW(Rela) *)tabs[k].at;
		for (size_t i = 0; i < tabs[k].sz / sizeof(ElfW(Rela)); i++) {
			unsigned long type = ELF64_R_TYPE(r[i].r_info), sym = ELF64_R_SYM(r[i].r_info);
			if ((type != R_SLOT && type != R_GLOB) || !sym)
				continue;
			const ElfW(Sym) *s = (const ElfW(Sym) *)symtab + sym;
			if (s->st_shndx != SHN_UNDEF || (strsz && s->st_name >= strsz))
				continue;
			const char *nm = (const char *)strtab + s->st_name;
			void **addr = (void **)(base + r[i].r_offset);
			if (is_py) {
				if (!strcmp(nm, "dlopen"))
					patch(info, addr, NULL, (void *)my_dlopen);
			} else if (!strcmp(nm, "PyTraceMalloc_Track")) {
				patch(info, addr, (void *)PyTraceMalloc_Track, (void *)my_track);
			} else if (!strcmp(nm, "PyTraceMalloc_Untrack")) {
				patch(info, addr, (void *)PyTraceMalloc_Untrack, (void *)my_untrack);
			}
		}
	}
done:
	if (!is_py && nseen < (size_t)-1) {
		if (nseen == capseen) {
			size_t nc = capseen ? capseen * 2 : 64;
			seen_obj *n = realloc(seen, nc * sizeof(*n));
			if (!n)
				return 0;
			seen = n;
			capseen = nc;
		}
		seen[nseen++] = (seen_obj){ info->dlpi_addr, info->dlpi_name };
	}
	return 0;
}

static int adds_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof(info->dlpi_adds))
		*(unsigned long long *)data = info->dlpi_adds;
	return 1; /* the counter is the same in every entry: one is enough */
}

static void rescan(int with_python)
{
	pthread_mutex_lock(&mu);
	unsigned long long adds = 0;
	dl_iterate_phdr(adds_cb, &adds);
	if (with_python || adds == 0 || adds != last_adds) {
		scan_ctx c = { (const void *)my_track, (const void *)PyTraceMalloc_Track, with_python };
		dl_iterate_phdr(scan_cb, &c);
		last_adds = adds;
	}
	pthread_mutex_unlock(&mu);
}

typedef struct present_ctx {
	uintptr_t base;
	const char *name;
	int found;
} present_ctx;

static int present_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	present_ctx *p = data;
	if (info->dlpi_addr == p->base && info->dlpi_name == p->name) {
		p->found = 1;
		return 1;
	}
	return 0;
}

static void restore_all(void)
{
	for (size_t i = 0; i < nslots; i++) {
		patched *s = &slots[i];
		present_ctx p = { s->base, s->name, 0 };
		dl_iterate_phdr(present_cb, &p);
		if (!p.found || __atomic_load_n(s->addr, __ATOMIC_ACQUIRE) != s->mine)
			continue; /* unloaded, or another tool wrote the slot since */
		store_slot(s->addr, s->orig, s->relro);
	}
}
#endif

/* ------------------------------------------------------------------ */
/* start / stop                                                        */

int hs_tk_traced_start(void)
{
#if HS_TRACED_GOT
	atomic_store(&traced_on, 1);
	rescan(1);
	pthread_mutex_lock(&mu);
	int n = (int)nslots;
	pthread_mutex_unlock(&mu);
	return n;
#else
	return 0;
#endif
}

void hs_tk_traced_stop(void)
{
	atomic_store(&traced_on, 0);
#if HS_TRACED_GOT
	pthread_mutex_lock(&mu);
	restore_all();
	nslots = 0;
	nseen = 0;
	last_adds = 0;
	pthread_mutex_unlock(&mu);
#endif
}

void hs_tk_traced_stats(uint64_t *patched_out, uint64_t *foreign_out)
{
	pthread_mutex_lock(&mu);
	*patched_out = nslots;
	*foreign_out = foreign_slots;
	pthread_mutex_unlock(&mu);
}

/* ------------------------------------------------------------------ */
/* sizes of reported blocks (footprint basis), under hs_tk_lock          */

static struct { uintptr_t ptr; uint64_t size; } *sz;
static size_t sz_mask, sz_n;

static size_t sz_slot(uintptr_t p, size_t mask)
{
	return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> 20) & mask;
}

static int sz_grow(void)
{
	size_t nm = sz_mask ? sz_mask * 2 + 1 : 1023;
	__typeof__(sz) n = calloc(nm + 1, sizeof(*n));
	if (!n)
		return -1;
	for (size_t i = 0; sz && i <= sz_mask; i++) {
		if (!sz[i].ptr)
			continue;
		size_t j = sz_slot(sz[i].ptr, nm);
		while (n[j].ptr)
			j = (j + 1) & nm;
		n[j] = sz[i];
	}
	free(sz);
	sz = n;
	sz_mask = nm;
	return 0;
}

int hs_tk_traced_put(uintptr_t p, uint64_t size, uint64_t *old)
{
	*old = 0;
	hs_tk_traced_take(p, old);
	if ((sz_n + 1) * 10 > (sz_mask + 1) * 7 && sz_grow() < 0)
		return -1;
	size_t i = sz_slot(p, sz_mask);
	while (sz[i].ptr)
		i = (i + 1) & sz_mask;
	sz[i].ptr = p;
	sz[i].size = size;
	sz_n++;
	return 0;
}

int hs_tk_traced_take(uintptr_t p, uint64_t *size)
{
	if (!sz)
		return 0;
	size_t i = sz_slot(p, sz_mask);
	for (; sz[i].ptr; i = (i + 1) & sz_mask) {
		if (sz[i].ptr != p)
			continue;
		*size = sz[i].size;
		/* backward-shift deletion, as the live set */
		size_t j = i;
		for (;;) {
			j = (j + 1) & sz_mask;
			if (!sz[j].ptr)
				break;
			size_t home = sz_slot(sz[j].ptr, sz_mask);
			if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
				sz[i] = sz[j];
				i = j;
			}
		}
		sz[i].ptr = 0;
		sz_n--;
		return 1;
	}
	return 0;
}

void hs_tk_traced_release(void)
{
	free(sz);
	sz = NULL;
	sz_mask = sz_n = 0;
}

size_t hs_tk_traced_bytes(void)
{
	return sz ? (sz_mask + 1) * sizeof(*sz) : 0;
}
