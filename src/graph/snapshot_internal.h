/*
 * graph/snapshot_internal.h: the hs_snapshot structure, shared by the files
 * of src/graph (loader, address map, labels, reverse edges).
 */
#ifndef HS_GRAPH_SNAPSHOT_INTERNAL_H
#define HS_GRAPH_SNAPSHOT_INTERNAL_H

#include "heapsnap/snapshot.h"
#include "util/buf.h"

/* Address map: open addressing with linear probing over u32 node indexes;
 * the key (the address) is read from the node array, so a slot costs 4
 * bytes. The table has ~1.5 slots per node and is indexed by Lemire's
 * multiply-shift range reduction, so its size need not be a power of two. */
typedef struct hs_addrmap {
	uint32_t *slots; /* HS_NO_NODE = empty */
	uint32_t size;
} hs_addrmap;

#define HS_PEND_BATCH 2048

struct hs_snapshot {
	hs_graph g;   /* const views of the arrays below */
	char *path;

	/* node arrays (owned; g points at them) */
	uint64_t *address;
	uint32_t *type;
	uint32_t *size32;
	uint32_t *refcount;
	uint8_t *flags;
	uint32_t *value;
	uint32_t *edge_start;
	uint32_t node_cap;
	hs_buf values;

	/* edge arrays. Loading takes two passes over the file: the first reads
	 * only node addresses and builds the address map, so that the second
	 * writes every edge target and key label as a u32 node index straight
	 * away (no u64 staging of all edges: 4 bytes per edge less at peak).
	 * Addresses wait in a small batch (pend_*) so that lookups are
	 * prefetched together; edges to no node are dropped by finish(). */
	uint32_t *edge_target;
	uint8_t *edge_kind;
	uint32_t *edge_label;
	uint64_t edge_len, edge_cap;
	uint64_t pend_addr[HS_PEND_BATCH];
	uint64_t pend_where[HS_PEND_BATCH]; /* edge index << 1 | is_key_label */
	uint32_t pend_len;
	uint32_t pass1_nodes; /* nodes found by the address pass */
	uint64_t pass1_value_bytes; /* value pool size, to allocate it once */
	int pass;             /* 1: addresses only, 2: everything */

	/* big sizes */
	uint32_t *big_node;
	uint64_t *big_size;
	uint32_t big_cap;

	/* what sys.getsizeof reports (REPORTED, 1.1): per node, UINT32_MAX
	 * unknown, HS_SIZE_BIG: in the sorted big table; allocated at the
	 * first entry */
	uint32_t *getsizeof32;
	uint32_t *gs_big_node;
	uint64_t *gs_big_size;
	uint32_t gs_big_count, gs_big_cap;

	/* reverse edges */
	uint32_t *rev_start, *rev_edge, *rev_source;

	/* strings: NUL-terminated in one pool */
	hs_buf strings;
	uint64_t *string_off; /* [string_count + 1] */
	uint32_t string_count, string_cap;

	hs_snapshot_type *types;
	uint32_t type_count, type_cap;

	/* roots from the file; while loading, root_addr holds their targets */
	hs_snapshot_root *roots;
	uint64_t *root_addr;
	uint32_t root_count, root_cap;
	/* derived held-from-C roots, compact (8 bytes each): they can be many */
	uint32_t *held_node;
	uint32_t *held_excess; /* saturated like refcounts */
	uint32_t held_count;

	char *meta_json;
	size_t meta_len;
	void *meta; /* cJSON * */

	/* allocation sites (SITES / ALLOCS): locations with string ids,
	 * stacks (frames in one pool) with their self site, and per node the
	 * index of its tracked block (node_alloc, HS_NO_NODE none; allocated
	 * at the first block) */
	int have_sites;
	uint64_t sample_bytes;
	hs_site_loc *site_locs;
	uint32_t site_loc_count, site_loc_cap;
	uint32_t *stack_off;  /* [stack_count + 1] into stack_frames */
	uint32_t *stack_site; /* self location per stack, HS_NO_SITE none */
	uint32_t stack_count, stack_cap;
	uint32_t *stack_frames;
	uint64_t stack_frame_len, stack_frame_cap;
	uint32_t *node_alloc;
	uint32_t *alloc_stack;
	uint64_t *alloc_size;
	uint64_t *alloc_time;
	uint32_t alloc_count, alloc_cap;
	uint64_t alloc_unmatched;

	hs_addrmap map;
	hs_snapshot_stats stats;
	int have_totals;
	hs_totals totals;
	uint64_t max_nodes;
	uint64_t input_bytes;    /* file size, bounds presizing */
};

int hs_addrmap__build(hs_addrmap *m, const uint64_t *address, uint32_t n, uint32_t *dup);
uint32_t hs_addrmap__find(const hs_addrmap *m, const uint64_t *address, uint64_t key);
/* Replace each of n u64 addresses at `keys` by its node index (HS_NO_NODE if
 * none), in place, with batched prefetching. */
void hs_addrmap__resolve(const hs_addrmap *m, const uint64_t *address, void *keys, uint64_t n);
void hs_addrmap__release(hs_addrmap *m);
/* Free the allocation-site tables (load.c); called by hs_snapshot_free. */
void hs_snapshot__sites_release(hs_snapshot *s);

#endif
