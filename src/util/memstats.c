/*
 * util/memstats.c: parsers for _PyObject_DebugMallocStats text and
 * /proc/PID/smaps (util/memstats.h).
 *
 * Thread stacks. glibc (and musl) map a thread's stack as one PROT_NONE
 * region and make all of it but the lowest guard pages read-write, so in
 * smaps a stack is an anonymous "rw-p" mapping whose start is the end of an
 * anonymous "---p" mapping of a few pages. glibc's non-main malloc heaps
 * look alike the other way round (rw low, PROT_NONE tail above), but the
 * next heap starts on a 64 MiB boundary (HEAP_MAX_SIZE), which a stack
 * never does (it starts one guard above an mmap result): such a mapping is
 * not taken for a stack.
 */
#include "util/memstats.h"

#include <stdlib.h>
#include <string.h>
#include "heapsnap/errors.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* _PyObject_DebugMallocStats                                          */

/* The number after the last '=' of a line, thousands separators skipped;
 * -1 if none. */
static int64_t after_equals(const char *line, const char *end)
{
	const char *eq = NULL;
	for (const char *p = line; p < end; p++)
		if (*p == '=')
			eq = p;
	if (!eq)
		return -1;
	int64_t v = 0;
	int digits = 0;
	for (const char *p = eq + 1; p < end; p++) {
		if (*p >= '0' && *p <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (*p - '0');
			digits++;
		} else if (*p != ',' && *p != ' ' && *p != '\t' && *p != '\r') {
			return -1;
		}
	}
	return digits ? v : -1;
}

static int starts(const char *line, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);
	return (size_t)(end - line) >= n && memcmp(line, prefix, n) == 0;
}

/* "6 arenas * 262144 bytes/arena = ..." and "41 unused pools * 4096 bytes = ...":
 * a number, then the words. */
static int count_line(const char *line, const char *end, const char *words)
{
	const char *p = line;
	while (p < end && *p == ' ')
		p++;
	if (p == end || *p < '0' || *p > '9')
		return 0;
	while (p < end && ((*p >= '0' && *p <= '9') || *p == ','))
		p++;
	return starts(p, end, words);
}

int hs_memstats_pymalloc_parse(hs_pymalloc_stats *out, const char *text)
{
	out->arenas = out->arena_bytes = out->allocated_bytes = -1;
	out->available_bytes = out->free_pool_bytes = out->pool_overhead_bytes = -1;
	int64_t headers = -1, quant = -1, align = -1;
	/* 3.10+ print a second "Total" block (the arena map): only the
	 * figures before the first "Total" line are the arenas' */
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);
		if (starts(line, end, "# arenas allocated current"))
			out->arenas = after_equals(line, end);
		else if (count_line(line, end, " arenas * "))
			out->arena_bytes = after_equals(line, end);
		else if (starts(line, end, "# bytes in allocated blocks"))
			out->allocated_bytes = after_equals(line, end);
		else if (starts(line, end, "# bytes in available blocks"))
			out->available_bytes = after_equals(line, end);
		else if (count_line(line, end, " unused pools * "))
			out->free_pool_bytes = after_equals(line, end);
		else if (starts(line, end, "# bytes lost to pool headers"))
			headers = after_equals(line, end);
		else if (starts(line, end, "# bytes lost to quantization"))
			quant = after_equals(line, end);
		else if (starts(line, end, "# bytes lost to arena alignment"))
			align = after_equals(line, end);
		else if (starts(line, end, "Total"))
			break;
		line = nl ? nl + 1 : NULL;
	}
	if (headers >= 0 || quant >= 0 || align >= 0)
		out->pool_overhead_bytes = (headers > 0 ? headers : 0) + (quant > 0 ? quant : 0) +
		                           (align > 0 ? align : 0);
	return out->arena_bytes >= 0 && out->allocated_bytes >= 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* /proc/PID/smaps                                                     */

void hs_smaps_init(hs_smaps *m)
{
	memset(m, 0, sizeof(*m));
	m->cur_kind = -1;
}

void hs_smaps_release(hs_smaps *m)
{
	for (size_t i = 0; i < m->file_count; i++)
		hs_free(m->files[i].path);
	hs_free(m->files);
	hs_smaps_init(m);
}

static int hexval(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int n = 0;
	for (; p < end; p++, n++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (n >= 16)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*pp = p;
	*out = v;
	return n ? 0 : -1;
}

static const char *skip_field(const char *p, const char *end)
{
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Index of `path` in m->files, added if new; -1 on ENOMEM. */
static long file_slot(hs_smaps *m, const char *path, size_t len)
{
	/* a file's mappings are adjacent: search from the last slot */
	for (size_t k = m->file_count; k-- > 0;)
		if (strlen(m->files[k].path) == len && memcmp(m->files[k].path, path, len) == 0)
			return (long)k;
	if (m->file_count == m->file_cap) {
		size_t cap = m->file_cap ? m->file_cap * 2 : 64;
		hs_smaps_file *n = hs_reallocarray(m->files, cap, sizeof(*n));
		if (!n)
			return -1;
		m->files = n;
		m->file_cap = cap;
	}
	char *copy = hs_strndup(path, len);
	if (!copy)
		return -1;
	m->files[m->file_count].path = copy;
	m->files[m->file_count].rss = 0;
	return (long)m->file_count++;
}

/* "start-end perms offset dev inode [path]" */
static int header_line(hs_smaps *m, const char *line, const char *end)
{
	const char *p = line;
	uint64_t start, stop;
	if (hexval(&p, end, &start) < 0 || p >= end || *p != '-')
		return 0;
	p++;
	if (hexval(&p, end, &stop) < 0 || p >= end || *p != ' ' || stop < start)
		return 0;
	p++;
	if (end - p < 4)
		return 0;
	const char *perms = p;
	p = skip_field(p, end); /* perms */
	p = skip_field(p, end); /* offset */
	p = skip_field(p, end); /* dev */
	p = skip_field(p, end); /* inode */
	const char *path = p;
	size_t plen = (size_t)(end - path);
	while (plen && (path[plen - 1] == '\n' || path[plen - 1] == '\r' || path[plen - 1] == ' '))
		plen--;

	int none = perms[0] == '-' && perms[1] == '-' && perms[2] == '-';
	int rw = perms[0] == 'r' && perms[1] == 'w';
	uint64_t size = stop - start;
	int kind;
	if (plen == 0) {
		/* a stack: rw right above a small guard, not on a malloc heap boundary */
		int aligned64m = (start & ((UINT64_C(64) << 20) - 1)) == 0;
		if (rw && m->prev_guard && m->prev_end == start && m->prev_size <= (UINT64_C(1) << 20) &&
		    !aligned64m && size >= 16384)
			kind = HS_MAP_THREAD_STACK;
		else
			kind = HS_MAP_ANON;
	} else if (plen == 7 && memcmp(path, "[stack]", 7) == 0) {
		kind = HS_MAP_STACK;
	} else if (plen == 6 && memcmp(path, "[heap]", 6) == 0) {
		kind = HS_MAP_HEAP;
	} else if (path[0] == '[') {
		/* [anon:name] (prctl PR_SET_VMA) is anonymous memory with a name */
		kind = plen > 6 && memcmp(path, "[anon:", 6) == 0 ? HS_MAP_ANON : HS_MAP_SPECIAL;
	} else if ((plen >= 7 && memcmp(path, "/memfd:", 7) == 0) ||
	           (plen >= 5 && memcmp(path, "/SYSV", 5) == 0) ||
	           (plen >= 9 && memcmp(path, "/dev/zero", 9) == 0)) {
		kind = HS_MAP_ANON; /* shared anonymous memory, not a file's pages */
	} else {
		kind = HS_MAP_FILE;
	}
	m->cur_kind = kind;
	m->mappings++;
	if (kind == HS_MAP_THREAD_STACK)
		m->thread_stacks++;
	if (kind == HS_MAP_FILE) {
		long slot = file_slot(m, path, plen);
		if (slot < 0) {
			m->oom = 1;
			m->cur_file = (size_t)-1;
		} else {
			m->cur_file = (size_t)slot;
		}
	}
	m->prev_guard = plen == 0 && none;
	m->prev_end = stop;
	m->prev_size = size;
	return 1;
}

/* The value of a "Key:   N kB" line in bytes; 0 if it has none. */
static uint64_t field_bytes(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	uint64_t v = 0;
	int digits = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (!digits || digits > 15)
		return 0;
	while (p < end && *p == ' ')
		p++;
	return starts(p, end, "kB") ? v * 1024 : v;
}

int hs_smaps_feed(hs_smaps *m, const char *line)
{
	const char *end = line + strlen(line);
	if (header_line(m, line, end)) {
		m->cur_seen = 0;
		return m->oom ? HS_ENOMEM : 0;
	}
	if (m->cur_kind < 0)
		return 0;
	/* one of each per mapping: a repeated line is not added twice */
	if (starts(line, end, "Rss:") && !(m->cur_seen & 1)) {
		uint64_t v = field_bytes(line + 4, end);
		m->cur_seen |= 1;
		m->rss += v;
		m->kind_rss[m->cur_kind] += v;
		if (m->cur_kind == HS_MAP_FILE && m->cur_file != (size_t)-1)
			m->files[m->cur_file].rss += v;
	} else if (starts(line, end, "Anonymous:") && !(m->cur_seen & 2)) {
		m->cur_seen |= 2;
		if (m->cur_kind == HS_MAP_FILE)
			m->file_anon += field_bytes(line + 10, end);
	}
	return m->oom ? HS_ENOMEM : 0;
}

static int cmp_files(const void *pa, const void *pb)
{
	const hs_smaps_file *a = pa, *b = pb;
	if (a->rss != b->rss)
		return a->rss > b->rss ? -1 : 1;
	return strcmp(a->path, b->path);
}

void hs_smaps_finish(hs_smaps *m)
{
	if (m->file_count > 1)
		qsort(m->files, m->file_count, sizeof(*m->files), cmp_files);
}
