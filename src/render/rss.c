/*
 * render/rss.c: the "where the RSS goes" part of `heapsnap summary` (text
 * and JSON), the size-model line and the warning when Python objects exceed
 * the RSS.
 */
#include <string.h>
#include "render/render_internal.h"
#include "render/rss_internal.h"

/* What each part is, for the table. */
static const struct {
	const char *name, *what;
} parts_what[] = {
	{ "python_objects", "reachable Python objects" },
	{ "garbage", "unreachable objects: cycles the collector has not freed yet" },
	{ "native_buffers", "native buffers owned by objects (numpy, torch, ...)" },
	{ "interpreter", "pymalloc blocks no object owns: free lists, interpreter internals" },
	{ "pymalloc_free", "pymalloc arenas held but free: fragmentation" },
	{ "native_heap", "malloc in use, not objects: C extensions and the interpreter" },
	{ "native_free", "malloc free but not returned to the OS" },
	{ "libraries", "file-backed pages: code and data of the interpreter, extensions" },
	{ "stacks", "thread stacks" },
	{ "other", "the rest: other allocators, mappings made by C code" },
};

static const char *what_of(const char *name)
{
	for (size_t i = 0; i < sizeof(parts_what) / sizeof(parts_what[0]); i++)
		if (!strcmp(parts_what[i].name, name))
			return parts_what[i].what;
	return "";
}

static uint64_t objects_total(const hs_snapshot *s, const hs_summary *sum)
{
	return sum->by == HS_GROUP_SITE ? hs_snapshot_stats_get(s)->total_bytes : sum->total_bytes;
}

const char *hs_render__size_model(const hs_snapshot *s)
{
	const cJSON *m = hs_render__meta(s, "dump.size_model");
	if (cJSON_IsString(m) && !strcmp(m->valuestring, "allocator"))
		return "sizes: allocator blocks (pymalloc size classes, malloc chunks, GC headers, "
		       "inline values) and native buffers owned by objects";
	return "sizes: as sys.getsizeof reports (older snapshot)";
}

/* The RSS the warning compares with: the breakdown's, else process.rss. */
static int rss_of(const hs_snapshot *s, const hs_summary *sum, uint64_t *rss)
{
	if (sum->memory.available) {
		*rss = sum->memory.rss;
		return 1;
	}
	return hs_render__meta_u64(s, "process.rss", rss);
}

int hs_render__objects_warning(char *buf, size_t size, const hs_snapshot *s, const hs_summary *sum)
{
	uint64_t rss, objs = objects_total(s, sum);
	buf[0] = '\0';
	if (!rss_of(s, sum, &rss) || objs <= rss)
		return 0;
	char a[32], b[32];
	hs_render_size(a, sizeof(a), objs);
	hs_render_size(b, sizeof(b), rss);
	const cJSON *m = hs_render__meta(s, "dump.size_model");
	int alloc = cJSON_IsString(m) && !strcmp(m->valuestring, "allocator");
	snprintf(buf, size, "Python objects (%s) exceed the RSS (%s): %s", a, b,
	         alloc ? "part of the heap is swapped out, or native buffers were allocated "
	                 "but never touched"
	               : "sizes as sys.getsizeof reports count buffers shared between objects "
	                 "(a DataFrame and its arrays) more than once");
	return 1;
}

/* The biggest part that is not reachable objects, and what it means. */
void hs_render__memory_explain(char *buf, size_t size, const hs_snapshot *s,
                               const hs_memory_breakdown *m)
{
	buf[0] = '\0';
	if (!m->available)
		return;
	const hs_memory_part *top = NULL;
	for (size_t i = 0; i < m->part_count; i++)
		if (strcmp(m->parts[i].name, "python_objects") &&
		    (!top || m->parts[i].bytes > top->bytes))
			top = &m->parts[i];
	uint64_t objs = hs_memory_part_bytes(m, "python_objects");
	char a[32], b[32];
	if (!top || top->bytes <= objs) {
		hs_render_size(a, sizeof(a), objs);
		snprintf(buf, size, "Python objects (%s) are most of the RSS: `heapsnap retained` shows "
		         "what holds them", a);
		return;
	}
	hs_render_size(a, sizeof(a), top->bytes);
	const char *n = top->name;
	if (!strcmp(n, "pymalloc_free")) {
		hs_render_size(b, sizeof(b), m->pymalloc_arena_bytes);
		double pct = m->pymalloc_arena_bytes
		             ? 100.0 * (double)m->pymalloc_free_bytes / (double)m->pymalloc_arena_bytes : 0;
		snprintf(buf, size, "%s of pymalloc arenas are %.0f%% free: fragmentation; RSS will not "
		         "drop until whole arenas are empty", b, pct);
	} else if (!strcmp(n, "native_heap")) {
		snprintf(buf, size, "native heap %s: memory malloc'd by C extensions or the interpreter, "
		         "not Python objects: use `heapsnap record --native --lines` to see where", a);
	} else if (!strcmp(n, "native_free")) {
		snprintf(buf, size, "%s of malloc's heap is free but not returned to the OS: "
		         "fragmentation of the C heap (malloc_trim(0) may return some)", a);
	} else if (!strcmp(n, "garbage")) {
		snprintf(buf, size, "%s of unreachable objects: cycles the collector has not freed "
		         "yet: `heapsnap garbage` shows them", a);
	} else if (!strcmp(n, "native_buffers")) {
		snprintf(buf, size, "%s of native buffers owned by objects (array data, tensor "
		         "storages): `heapsnap retained` shows who holds them", a);
	} else if (!strcmp(n, "interpreter")) {
		snprintf(buf, size, "%s of pymalloc blocks that no object in the snapshot owns: "
		         "free lists and interpreter internals", a);
	} else if (!strcmp(n, "libraries")) {
		const cJSON *f = hs_render__meta(s, "memory.files");
		const cJSON *first = cJSON_IsArray(f) ? f->child : NULL;
		const cJSON *path = first ? cJSON_GetObjectItemCaseSensitive(first, "path") : NULL;
		const cJSON *rss = first ? cJSON_GetObjectItemCaseSensitive(first, "rss") : NULL;
		if (cJSON_IsString(path) && cJSON_IsNumber(rss)) {
			const char *base = strrchr(path->valuestring, '/');
			hs_render_size(b, sizeof(b), (uint64_t)rss->valuedouble);
			snprintf(buf, size, "%s of mapped files: code and data of the interpreter and "
			         "extension modules (largest %s, %s), shared with other processes that "
			         "map them", a, base ? base + 1 : path->valuestring, b);
		} else {
			snprintf(buf, size, "%s of mapped files: code and data of the interpreter and "
			         "extension modules, shared with other processes that map them", a);
		}
	} else if (!strcmp(n, "stacks")) {
		snprintf(buf, size, "%s of stacks (%llu thread stacks besides the main one)", a,
		         (unsigned long long)m->thread_stacks);
	} else {
		snprintf(buf, size, "%s not accounted for by Python's or malloc's figures: another "
		         "allocator (jemalloc, mimalloc) or memory mapped by C code", a);
	}
}

int hs_render__memory_text(FILE *f, const hs_snapshot *s, const hs_summary *sum)
{
	const hs_memory_breakdown *m = &sum->memory;
	char line[512];
	fprintf(f, "%s\n", hs_render__size_model(s));
	if (hs_render__objects_warning(line, sizeof(line), s, sum))
		fprintf(f, "warning: %s\n", line);
	if (!m->available) {
		fprintf(f, "RSS breakdown unavailable (%s)\n",
		        m->unavailable ? m->unavailable : "not computed");
		return 0;
	}
	fputc('\n', f);
	hs_table *t;
	HS_TRY(hs_table_new(&t, 4));
	int rc = 0;
	hs_table_column(t, 0, "where the RSS goes", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "of RSS", HS_ALIGN_RIGHT);
	hs_table_column(t, 3, "", HS_ALIGN_LEFT);
	char h[32], p[32];
	for (size_t i = 0; i < m->part_count && rc == 0; i++) {
		hs_render_size(h, sizeof(h), m->parts[i].bytes);
		snprintf(p, sizeof(p), "%.1f%%", m->rss ? 100.0 * (double)m->parts[i].bytes / (double)m->rss : 0.0);
		const char *cells[4] = { m->parts[i].name, h, p, what_of(m->parts[i].name) };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_rule(t);
	if (rc == 0) {
		hs_render_size(h, sizeof(h), m->rss);
		const char *cells[4] = { "RSS", h, "100.0%", "resident" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	if (rc < 0)
		return rc;
	if (m->excess) {
		double share = m->rss ? 100.0 * (double)m->excess / (double)m->rss : 100.0;
		hs_render_size(h, sizeof(h), m->excess);
		fprintf(f, "%s: the parts exceed the RSS by %s (%.1f%%; other is 0): %s\n",
		        share > 5.0 ? "warning" : "note", h, share,
		        share > 5.0 ? "memory allocated but never touched (not resident), or object "
		                      "sizes that overstate what the allocators hold"
		                    : "within the precision of the allocators' figures");
	}
	if (m->untouched) {
		hs_render_size(h, sizeof(h), m->untouched);
		fprintf(f, "note: %s of the allocators' free space was never touched (not resident): "
		           "left out of native_free/pymalloc_free\n", h);
	}
	if (m->malloc_claimed) {
		hs_render_size(h, sizeof(h), m->malloc_claimed);
		fprintf(f, "note: objects and native buffers claim %s more than malloc has in use: "
		           "some buffers come from another allocator\n", h);
	}
	if (m->pymalloc_claimed) {
		hs_render_size(h, sizeof(h), m->pymalloc_claimed);
		fprintf(f, "note: objects claim %s more than pymalloc has in use\n", h);
	}
	fprintf(f, "estimates: allocators' figures count pages they hold, resident once "
	           "touched%s\n", m->split_estimated ? "; objects' bytes in pymalloc vs malloc "
	                                               "estimated (older snapshot)" : "");
	hs_render__memory_explain(line, sizeof(line), s, m);
	fprintf(f, "%s\n", line);
	return 0;
}

int hs_render__memory_json(cJSON *mem, const hs_snapshot *s, const hs_summary *sum)
{
	const hs_memory_breakdown *m = &sum->memory;
	int ok = 1;
	const cJSON *model = hs_render__meta(s, "dump.size_model");
	ok &= cJSON_AddStringToObject(mem, "size_model",
	                              cJSON_IsString(model) && !strcmp(model->valuestring, "allocator")
	                              ? "allocator" : "getsizeof") != NULL;
	char line[512];
	cJSON *warn = cJSON_AddArrayToObject(mem, "warnings");
	ok &= warn != NULL;
	if (ok && hs_render__objects_warning(line, sizeof(line), s, sum))
		ok &= cJSON_AddItemToArray(warn, cJSON_CreateString(line));
	if (!m->available) {
		ok &= cJSON_AddStringToObject(mem, "breakdown_unavailable",
		                              m->unavailable ? m->unavailable : "not computed") != NULL;
		return ok;
	}
	ok &= cJSON_AddItemToObject(mem, "breakdown_rss", hs_render__num(m->rss));
	cJSON *list = cJSON_AddArrayToObject(mem, "breakdown");
	ok &= list != NULL;
	for (size_t i = 0; ok && i < m->part_count; i++) {
		cJSON *e = cJSON_CreateObject();
		ok &= e != NULL && cJSON_AddItemToArray(list, e);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(e, "name", m->parts[i].name) != NULL;
		ok &= cJSON_AddItemToObject(e, "bytes", hs_render__num(m->parts[i].bytes));
	}
	if (ok)
		ok &= cJSON_AddItemToObject(mem, "breakdown_excess", hs_render__num(m->excess));
	if (ok)
		ok &= cJSON_AddItemToObject(mem, "breakdown_untouched", hs_render__num(m->untouched));
	if (ok)
		ok &= cJSON_AddBoolToObject(mem, "breakdown_split_estimated", m->split_estimated) != NULL;
	hs_render__memory_explain(line, sizeof(line), s, m);
	if (ok)
		ok &= cJSON_AddStringToObject(mem, "explanation", line) != NULL;
	return ok;
}
