/*
 * heapsnap/graph.h: the loaded object graph as flat, read-only arrays.
 *
 * A snapshot (heapsnap/snapshot.h) lends its graph through
 * hs_snapshot_graph(); the arrays live as long as the snapshot. Nodes are
 * numbered 0..node_count-1 in file order (32-bit indexes: a snapshot holds
 * fewer than 2^32 - 1 objects). Edges are stored in CSR form: the outgoing
 * edges of node i are edge_start[i] .. edge_start[i+1]-1, in file order, and
 * each names its target by node index. Edges whose target is no node of the
 * file (dangling) were dropped at load and counted.
 *
 * Memory budget, per node 35 bytes (address 8, type 4, size 4, refcount 4,
 * flags 1, value offset 4, edge start 4, address map 6) plus the value
 * bytes of str/int/float/bytes objects, 8 per held-from-C root, and per
 * edge 9 bytes (target 4, kind 1, label 4); while loading, an edge costs 13
 * bytes (+8 for a dict-key/attribute label). Measured on 1M objects with
 * 1.35M references: 50.6 bytes per object after load; see
 * hs_snapshot_memory().
 */
#ifndef HEAPSNAP_GRAPH_H
#define HEAPSNAP_GRAPH_H

#include "common.h"

/* "No node" (a dangling key label, a missing lookup). */
#define HS_NO_NODE UINT32_MAX
/* size32 value meaning "look the size up in the big-size table". */
#define HS_SIZE_BIG UINT32_MAX
/* value offset meaning "no value". */
#define HS_NO_VALUE UINT32_MAX

/* The edge byte: bits 0-1 edge kind (HS_EDGE_*), bits 2-5 label kind. */
#define HS_EDGE_KIND(b)  ((unsigned)(b) & 3u)
#define HS_EDGE_LABEL(b) (((unsigned)(b) >> 2) & 15u)

typedef struct hs_graph {
	uint32_t node_count;
	uint32_t edge_count;         /* kept edges (dangling ones dropped) */

	/* per node */
	const uint64_t *address;     /* object address in the target process */
	const uint32_t *type;        /* type id (hs_snapshot_type) */
	const uint32_t *size32;      /* bytes; HS_SIZE_BIG: see hs_graph_node_size */
	const uint32_t *refcount;    /* ob_refcnt, saturated at UINT32_MAX; 0 if immortal */
	const uint8_t *flags;        /* HS_NODE_* */
	const uint32_t *value;       /* offset into value_pool, or HS_NO_VALUE */
	const uint8_t *value_pool;   /* at each offset: u16 length (LE), bytes */

	/* CSR forward edges */
	const uint32_t *edge_start;  /* [node_count + 1] */
	const uint32_t *edge_target; /* node index */
	const uint8_t *edge_kind;    /* edge byte, see HS_EDGE_KIND / HS_EDGE_LABEL */
	const uint32_t *edge_label;  /* index, string id, or key node (HS_NO_NODE if dangling) */

	/* reverse edges, NULL until hs_snapshot_build_reverse() */
	const uint32_t *rev_start;   /* [node_count + 1] */
	const uint32_t *rev_edge;    /* forward edge index; its source is rev_source */
	const uint32_t *rev_source;  /* source node of each reverse entry */

	/* sizes of 4 GiB and more, sorted by node */
	uint32_t big_count;
	const uint32_t *big_node;
	const uint64_t *big_size;
} hs_graph;

/* Size of an object of 4 GiB or more (internal; use hs_graph_node_size). */
HS_EXTERN(uint64_t) hs_graph__big_size(const hs_graph *g, uint32_t node);

/** Size in bytes of node `i`: real bytes (format 1.1), as sys.getsizeof reported it (1.0). */
static inline uint64_t hs_graph_node_size(const hs_graph *g, uint32_t i)
{
	uint32_t s = g->size32[i];
	return s != HS_SIZE_BIG ? s : hs_graph__big_size(g, i);
}

/**
 * The short value of node `i` (str, int, float, bytes prefix), not
 * NUL-terminated.
 * @return a pointer borrowed from the graph and its length in *len, or NULL
 *         (and *len = 0) when the node has no value.
 */
static inline const char *hs_graph_node_value(const hs_graph *g, uint32_t i, size_t *len)
{
	uint32_t off = g->value[i];
	if (off == HS_NO_VALUE) {
		*len = 0;
		return NULL;
	}
	const uint8_t *p = g->value_pool + off;
	*len = (size_t)p[0] | ((size_t)p[1] << 8);
	return (const char *)(p + 2);
}

#endif
