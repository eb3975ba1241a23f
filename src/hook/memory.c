/*
 * hook/memory.c: the META `memory` object (hook/memory.h).
 *
 * Three sources, each read without Python code:
 * - pymalloc: the "Total" block of _PyObject_DebugMallocStats (its text is
 *   captured once by meta.c and parsed by util/memstats.c);
 * - glibc malloc: mallinfo2() (in use = uordblks + hblkhd, free = fordblks,
 *   mmapped = hblkhd, arena = arena); left out under another libc;
 * - the kernel: /proc/PID/smaps, resident bytes by kind of mapping
 *   (util/memstats.c) and per file.
 *
 * In fork mode the parent writes the allocators' figures (microseconds; the
 * heap the child walks is the parent's at fork time, and mallinfo2 read in
 * the child after the walk would include the walk's own allocations) and
 * the child the mappings (see "Fork mode" below): reading smaps costs
 * milliseconds with many mappings, which would lengthen the parent's pause.
 */
#include "memory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "util/memstats.h"

/* At most this many files by name; file_rss has them all. */
#define FILES_MAX 64

typedef struct status_rss {
	long long anon, file, shmem;
} status_rss;

static int smaps_read(hs_smaps *m, pid_t pid);

/* Fork mode. The parent arms the child's reading before fork(); an atfork
 * child handler reads the child's own smaps at once, before the walk
 * allocates anything: anonymous mappings and their page tables are copied
 * by fork(), so the child's anonymous figures are the parent's at that
 * instant. File mappings are not (their pages fault in again on use): the
 * total and the file pages come from the parent's /proc/self/status, read
 * just before fork() (maps_write), and the per-file list from the parent's
 * smaps, read by the child (a few milliseconds later: file pages change
 * slowly). The
 * parent handler disarms, so no other fork() of the program pays for it. */
static pid_t fork_parent;          /* armed: the pid that will fork */
static status_rss fork_status;    /* the parent's, just before fork() */
static int child_ready;            /* the child's figures below are read */
static pid_t child_parent;         /* whose figures they are */
static hs_smaps child_maps, parent_maps;
static int atfork_registered;

static void atfork_parent(void)
{
	fork_parent = 0;
}

static void atfork_child(void)
{
	pid_t parent = fork_parent;
	fork_parent = 0;
	if (!parent || getppid() != parent)
		return;
	hs_smaps_init(&child_maps);
	hs_smaps_init(&parent_maps);
	if (smaps_read(&child_maps, getpid()) < 0)
		return;
	smaps_read(&parent_maps, parent); /* no list if it fails */
	child_parent = parent;
	child_ready = 1;
}

/* RssAnon, RssFile, RssShmem of /proc/self/status in bytes; 0 if all read. */
static int status_read(status_rss *st)
{
	st->anon = st->file = st->shmem = -1;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "RssAnon:", 8))
			st->anon = strtoll(line + 8, NULL, 10) * 1024;
		else if (!strncmp(line, "RssFile:", 8))
			st->file = strtoll(line + 8, NULL, 10) * 1024;
		else if (!strncmp(line, "RssShmem:", 9))
			st->shmem = strtoll(line + 9, NULL, 10) * 1024;
	}
	fclose(f);
	return st->anon >= 0 && st->file >= 0 && st->shmem >= 0 ? 0 : -1;
}

static void pymalloc_json(hs_json *j, const char *text)
{
	hs_pymalloc_stats st;
	if (!text || hs_memstats_pymalloc_parse(&st, text) < 0)
		return;
	hs_json_open(j, "pymalloc", '{');
	if (st.arenas >= 0)
		hs_json_int(j, "arenas", st.arenas);
	hs_json_int(j, "arena_bytes", st.arena_bytes);
	hs_json_int(j, "allocated_bytes", st.allocated_bytes);
	if (st.available_bytes >= 0 && st.free_pool_bytes >= 0) {
		hs_json_int(j, "free_bytes", st.available_bytes + st.free_pool_bytes);
		hs_json_int(j, "available_block_bytes", st.available_bytes);
		hs_json_int(j, "free_pool_bytes", st.free_pool_bytes);
	}
	if (st.pool_overhead_bytes >= 0)
		hs_json_int(j, "pool_overhead_bytes", st.pool_overhead_bytes);
	hs_json_close(j, '}');
}

static void malloc_json(hs_json *j)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	hs_json_open(j, "malloc", '{');
	hs_json_uint(j, "in_use", (unsigned long long)(mi.uordblks + mi.hblkhd));
	hs_json_uint(j, "free", (unsigned long long)mi.fordblks);
	hs_json_uint(j, "mmapped", (unsigned long long)mi.hblkhd);
	hs_json_uint(j, "arena", (unsigned long long)mi.arena);
	hs_json_cstr(j, "allocator", "glibc");
	hs_json_close(j, '}');
#else
	(void)j; /* another libc: its malloc keeps no figures we know how to read */
#endif
}

/* /proc/PID/smaps of `pid` into `m`; -1 if it cannot be read. */
static int smaps_read(hs_smaps *m, pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/smaps", (long)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int any = 0;
	while (getline(&line, &cap, f) > 0) {
		hs_smaps_feed(m, line);
		any = 1;
	}
	free(line);
	fclose(f);
	hs_smaps_finish(m);
	return any && m->mappings ? 0 : -1;
}

/* `kinds` gives the figures by kind, `files` the list (NULL: none). With
 * `st` (fork mode: the parent's /proc/self/status before fork(), and
 * `kinds` the child's smaps), the total is the parent's VmRSS split as
 * RssAnon + RssFile + RssShmem; its file pages are RssFile plus the
 * copied-on-write pages of file mappings ("Anonymous" of those mappings,
 * which fork() copies exactly), and anon_rss is what remains: anonymous
 * mappings, and shared memory, which fork() does not copy. */
static void maps_write(hs_json *j, const hs_smaps *kinds, const hs_smaps *files,
                       const status_rss *st, pid_t pid)
{
	uint64_t rss = kinds->rss, file = kinds->kind_rss[HS_MAP_FILE];
	uint64_t anon = kinds->kind_rss[HS_MAP_ANON];
	if (st) {
		rss = (uint64_t)(st->anon + st->file + st->shmem);
		file = (uint64_t)st->file + kinds->file_anon;
		uint64_t known = file + kinds->kind_rss[HS_MAP_HEAP] + kinds->kind_rss[HS_MAP_STACK] +
		                 kinds->kind_rss[HS_MAP_THREAD_STACK] + kinds->kind_rss[HS_MAP_SPECIAL];
		anon = rss > known ? rss - known : 0;
	}
	hs_json_uint(j, "rss", rss);
	hs_json_int(j, "maps_pid", (long long)pid);
	hs_json_open(j, "maps", '{');
	hs_json_uint(j, "file_rss", file);
	hs_json_uint(j, "anon_rss", anon);
	hs_json_uint(j, "heap_rss", kinds->kind_rss[HS_MAP_HEAP]);
	hs_json_uint(j, "stack_rss", kinds->kind_rss[HS_MAP_STACK]);
	hs_json_uint(j, "thread_stack_rss", kinds->kind_rss[HS_MAP_THREAD_STACK]);
	hs_json_uint(j, "special_rss", kinds->kind_rss[HS_MAP_SPECIAL]);
	hs_json_uint(j, "thread_stacks", kinds->thread_stacks);
	hs_json_uint(j, "mappings", kinds->mappings);
	hs_json_close(j, '}');
	if (!files)
		return;
	hs_json_open(j, "files", '[');
	for (size_t i = 0; i < files->file_count && i < FILES_MAX; i++) {
		if (!files->files[i].rss)
			break;
		hs_json_open(j, NULL, '{');
		hs_json_cstr(j, "path", files->files[i].path);
		hs_json_uint(j, "rss", files->files[i].rss);
		hs_json_close(j, '}');
	}
	hs_json_close(j, ']');
}

void hs_hook__memory_json(hs_json *j, const char *pymalloc_text, int with_maps)
{
	hs_json_open(j, "memory", '{');
	pymalloc_json(j, pymalloc_text);
	malloc_json(j);
	fork_parent = 0;
	if (with_maps) {
		hs_smaps m;
		hs_smaps_init(&m);
		if (smaps_read(&m, getpid()) == 0)
			maps_write(j, &m, &m, NULL, getpid());
		hs_smaps_release(&m);
	} else {
		if (!atfork_registered)
			atfork_registered = pthread_atfork(NULL, atfork_parent, atfork_child) == 0;
		if (atfork_registered && status_read(&fork_status) == 0)
			fork_parent = getpid();
	}
	hs_json_close(j, '}');
}

void hs_hook__memory_end_json(hs_json *j)
{
	if (!child_ready)
		return;
	hs_json_open(j, "memory", '{');
	maps_write(j, &child_maps, parent_maps.mappings ? &parent_maps : NULL, &fork_status,
	           child_parent);
	hs_json_close(j, '}');
	child_ready = 0;
	hs_smaps_release(&child_maps);
	hs_smaps_release(&parent_maps);
}
