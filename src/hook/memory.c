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
 * In fork mode the parent writes the allocators' figures (the heap the child
 * walks is the parent's at fork time, and mallinfo2 read in the child after
 * the walk would include the walk's own allocations) and the child reads the
 * parent's smaps: reading smaps costs milliseconds with many mappings, which
 * would lengthen the parent's pause.
 */
#include "memory.h"

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

/* The process whose META left the maps to its forked child (fork mode). */
static pid_t maps_for_child;

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

static void maps_json(hs_json *j, pid_t pid)
{
	hs_smaps m;
	hs_smaps_init(&m);
	if (smaps_read(&m, pid) < 0) {
		hs_smaps_release(&m);
		return;
	}
	hs_json_int(j, "rss", (long long)m.rss);
	hs_json_int(j, "maps_pid", (long long)pid);
	hs_json_open(j, "maps", '{');
	hs_json_uint(j, "file_rss", m.kind_rss[HS_MAP_FILE]);
	hs_json_uint(j, "anon_rss", m.kind_rss[HS_MAP_ANON]);
	hs_json_uint(j, "heap_rss", m.kind_rss[HS_MAP_HEAP]);
	hs_json_uint(j, "stack_rss", m.kind_rss[HS_MAP_STACK]);
	hs_json_uint(j, "thread_stack_rss", m.kind_rss[HS_MAP_THREAD_STACK]);
	hs_json_uint(j, "special_rss", m.kind_rss[HS_MAP_SPECIAL]);
	hs_json_uint(j, "thread_stacks", m.thread_stacks);
	hs_json_uint(j, "mappings", m.mappings);
	hs_json_close(j, '}');
	hs_json_open(j, "files", '[');
	for (size_t i = 0; i < m.file_count && i < FILES_MAX; i++) {
		if (!m.files[i].rss)
			break;
		hs_json_open(j, NULL, '{');
		hs_json_cstr(j, "path", m.files[i].path);
		hs_json_uint(j, "rss", m.files[i].rss);
		hs_json_close(j, '}');
	}
	hs_json_close(j, ']');
	hs_smaps_release(&m);
}

void hs_hook__memory_json(hs_json *j, const char *pymalloc_text, int with_maps)
{
	hs_json_open(j, "memory", '{');
	pymalloc_json(j, pymalloc_text);
	malloc_json(j);
	if (with_maps) {
		maps_for_child = 0;
		maps_json(j, getpid());
	} else {
		maps_for_child = getpid();
	}
	hs_json_close(j, '}');
}

void hs_hook__memory_end_json(hs_json *j)
{
	pid_t parent = maps_for_child;
	if (!parent || getppid() != parent)
		return;
	hs_json_open(j, "memory", '{');
	maps_json(j, parent);
	hs_json_close(j, '}');
}
