/*
 * analysis/rss.c: where the RSS goes (hs_analysis_memory).
 *
 * The parts are derived from the allocators' own figures, recorded by the
 * hook in META `memory` (formats/snapshot-v1.md), and the snapshot's objects:
 *
 *   python_objects  reachable objects' bytes (native buffers excluded)
 *   garbage         unreachable objects' bytes
 *   native_buffers  host native-buffer nodes (HS_TYPE_NATIVE, not device
 *                   nor mapped: a mapped buffer's pages are in its mapping)
 *   interpreter     pymalloc blocks in use that no object owns
 *                   (allocated_bytes - dump.bytes_pymalloc): free lists,
 *                   interpreter internals, objects the walk does not reach
 *   pymalloc_free   arenas held but not in blocks (arena_bytes -
 *                   allocated_bytes): free blocks, free pools, headers
 *   native_heap     malloc in use that is neither object blocks
 *                   (dump.bytes_malloc) nor native buffers
 *   native_free     malloc's free chunks not returned to the OS
 *   libraries       file-backed resident pages, less the static objects
 *                   (dump.bytes_static) that live in them
 *   stacks          main and thread stacks
 *   other           RSS minus all the above
 *
 * Every allocator figure counts address space the allocator handed out or
 * keeps, which is resident once touched: pages never touched (the untouched
 * end of a new arena, a large np.empty) make the parts exceed the RSS. Then
 * `other` is 0 and `excess` says by how much, never a negative part.
 *
 * Snapshots of the getsizeof size model (format 1.0) have no
 * dump.bytes_pymalloc: objects' bytes up to pymalloc's allocated bytes are
 * taken to be in pymalloc and the rest in malloc (split_estimated).
 */
#include <string.h>
#include <cjson/cJSON.h>
#include "graph/meta.h"
#include "heapsnap/analysis.h"
#include "heapsnap/format.h"
#include "heapsnap/graph.h"
#include "heapsnap/retention.h"
#include "util/alloc.h"

static int u64_at(const cJSON *o, const char *path, uint64_t *out)
{
	const cJSON *v = hs_meta_at(o, path);
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1.8e19)
		return 0;
	*out = (uint64_t)v->valuedouble;
	return 1;
}

static void part(hs_memory_breakdown *m, const char *name, uint64_t bytes)
{
	if (m->part_count < HS_MEMORY_PARTS) {
		m->parts[m->part_count].name = name;
		m->parts[m->part_count].bytes = bytes;
		m->part_count++;
	}
}

static uint64_t sub0(uint64_t a, uint64_t b, uint64_t *shortfall)
{
	if (a >= b)
		return a - b;
	if (shortfall)
		*shortfall += b - a;
	return 0;
}

uint64_t hs_memory_part_bytes(const hs_memory_breakdown *m, const char *name)
{
	for (size_t i = 0; i < m->part_count; i++)
		if (!strcmp(m->parts[i].name, name))
			return m->parts[i].bytes;
	return 0;
}

/* Object bytes: reachable, garbage, host native buffers. */
static int object_bytes(const hs_snapshot *s, uint64_t *reach_b, uint64_t *garb_b, uint64_t *native_b)
{
	*reach_b = *garb_b = *native_b = 0;
	uint32_t nt = hs_snapshot_type_count(s);
	uint8_t *cls = hs_calloc(nt ? nt : 1, 1); /* 0 object, 1 host buffer, 2 not resident here */
	if (!cls)
		return HS_ENOMEM;
	for (uint32_t t = 0; t < nt; t++) {
		const hs_snapshot_type *ty = hs_snapshot_type_get(s, t);
		uint32_t f = ty ? ty->flags : 0;
		if (f & HS_TYPE_NATIVE)
			cls[t] = (f & (HS_TYPE_DEVICE | HS_TYPE_MAPPED)) ? 2 : 1;
	}
	hs_reach *r = NULL;
	int rc = hs_reach_compute(&r, s, NULL);
	if (rc < 0) {
		hs_free(cls);
		return rc;
	}
	const hs_graph *g = hs_snapshot_graph(s);
	for (uint32_t i = 0; i < g->node_count; i++) {
		uint64_t size = hs_graph_node_size(g, i);
		switch (cls[g->type[i]]) {
		case 0:
			if (hs_reach_reachable(r, i))
				*reach_b += size;
			else
				*garb_b += size;
			break;
		case 1:
			*native_b += size;
			break;
		default:
			break;
		}
	}
	hs_reach_free(r);
	hs_free(cls);
	return 0;
}

static hs_memory_part *part_named(hs_memory_breakdown *m, const char *name)
{
	for (size_t i = 0; i < m->part_count; i++)
		if (!strcmp(m->parts[i].name, name))
			return &m->parts[i];
	return NULL;
}

/* The allocators' parts live in anonymous memory (pymalloc arenas, malloc's
 * heaps and mmapped chunks). When they claim more than the anonymous
 * resident bytes, the difference is address space they hold but never
 * touched: the end of a new pymalloc arena, the unused part of a thread's
 * malloc heap. It is free space (objects' blocks were written), so it comes
 * off native_free, then pymalloc_free. Only while objects fit in what the
 * allocators have in use: then these parts sum to the allocators' own
 * figures; sizes that overstate objects (sys.getsizeof of a DataFrame) would
 * otherwise hide free space. */
static void untouched(hs_memory_breakdown *m, const cJSON *mem)
{
	uint64_t anon = 0, heap = 0;
	if (m->pymalloc_claimed || m->malloc_claimed || !m->have_malloc ||
	    !u64_at(mem, "maps.anon_rss", &anon) || !u64_at(mem, "maps.heap_rss", &heap))
		return;
	static const char *const claims[] = { "python_objects", "garbage", "native_buffers",
	                                      "interpreter", "pymalloc_free", "native_heap",
	                                      "native_free" };
	uint64_t claimed = 0;
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++)
		claimed += hs_memory_part_bytes(m, claims[i]);
	if (claimed <= anon + heap)
		return;
	uint64_t over = claimed - (anon + heap);
	static const char *const freeparts[] = { "native_free", "pymalloc_free" };
	for (size_t i = 0; i < 2 && over; i++) {
		hs_memory_part *p = part_named(m, freeparts[i]);
		if (!p)
			continue;
		uint64_t take = p->bytes < over ? p->bytes : over;
		p->bytes -= take;
		over -= take;
		m->untouched += take;
	}
}

int hs_analysis_memory(hs_memory_breakdown *out, const hs_snapshot *s)
{
	memset(out, 0, sizeof(*out));
	const cJSON *meta = hs_snapshot_meta(s);
	const cJSON *mem = hs_meta_at(meta, "memory");
	if (!cJSON_IsObject(mem)) {
		out->unavailable = "snapshot taken by an older hook";
		return 0;
	}
	uint64_t rss = 0;
	if (!u64_at(mem, "rss", &rss) || !cJSON_IsObject(hs_meta_at(mem, "maps"))) {
		out->unavailable = cJSON_IsString(hs_meta_at(meta, "dump.mode")) &&
		                   !strcmp(hs_meta_at(meta, "dump.mode")->valuestring, "fork")
		                   ? "the forked child did not record the process's mappings"
		                   : "the process's mappings could not be read";
		return 0;
	}
	uint64_t reach_b, garb_b, native_b;
	int rc = object_bytes(s, &reach_b, &garb_b, &native_b);
	if (rc < 0)
		return rc;
	out->available = 1;
	out->rss = rss;
	out->object_bytes = reach_b + garb_b;

	uint64_t arena = 0, allocated = 0, in_use = 0, mfree = 0;
	int have_pm = u64_at(mem, "pymalloc.arena_bytes", &arena) &&
	              u64_at(mem, "pymalloc.allocated_bytes", &allocated) && arena >= allocated;
	out->have_malloc = u64_at(mem, "malloc.in_use", &in_use);
	u64_at(mem, "malloc.free", &mfree);

	/* objects' bytes by allocator */
	uint64_t in_pm = 0, in_malloc = 0;
	if (u64_at(meta, "dump.bytes_pymalloc", &in_pm) && u64_at(meta, "dump.bytes_malloc", &in_malloc)) {
		if (!have_pm) { /* PYTHONMALLOC=malloc: small objects come from malloc too */
			in_malloc += in_pm;
			in_pm = 0;
		}
	} else {
		out->split_estimated = 1;
		in_pm = have_pm ? (out->object_bytes < allocated ? out->object_bytes : allocated) : 0;
		in_malloc = out->object_bytes - in_pm;
	}

	part(out, "python_objects", reach_b);
	part(out, "garbage", garb_b);
	part(out, "native_buffers", native_b);
	if (have_pm) {
		part(out, "interpreter", sub0(allocated, in_pm, &out->pymalloc_claimed));
		part(out, "pymalloc_free", arena - allocated);
		out->pymalloc_arena_bytes = arena;
		out->pymalloc_free_bytes = arena - allocated;
	} else if (in_pm) {
		out->pymalloc_claimed = in_pm;
	}
	if (out->have_malloc) {
		uint64_t not_objects = sub0(in_use, in_malloc, &out->malloc_claimed);
		part(out, "native_heap", sub0(not_objects, native_b, &out->malloc_claimed));
		part(out, "native_free", mfree);
	}
	untouched(out, mem);
	uint64_t files = 0, stack = 0, tstack = 0;
	u64_at(mem, "maps.file_rss", &files);
	u64_at(mem, "maps.stack_rss", &stack);
	u64_at(mem, "maps.thread_stack_rss", &tstack);
	u64_at(mem, "maps.thread_stacks", &out->thread_stacks);
	/* statically allocated objects (builtin types, small ints, ...: 1.1's
	 * dump.bytes_static) live in the data segments of the interpreter's
	 * file mappings: counted as objects, not again as libraries */
	uint64_t statics = 0;
	u64_at(meta, "dump.bytes_static", &statics);
	part(out, "libraries", sub0(files, statics, NULL));
	part(out, "stacks", stack + tstack);
	uint64_t sum = 0;
	for (size_t i = 0; i < out->part_count; i++)
		sum += out->parts[i].bytes;
	if (sum > rss)
		out->excess = sum - rss;
	part(out, "other", sum < rss ? rss - sum : 0);
	return 0;
}
