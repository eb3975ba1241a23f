/* tests/unit/testgraph.h: build small snapshots node by node (testgraph.c). */
#ifndef HS_TESTGRAPH_H
#define HS_TESTGRAPH_H
#include <stddef.h>
#include <stdint.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"

typedef struct tedge {
	uint32_t src, dst;
	uint8_t kind, lk;
	uint64_t label;      /* index, or key/attr node */
	const char *text;    /* NAME / ATTR_NAME / LOCAL label */
} tedge;

typedef struct troot {
	uint8_t kind;
	uint32_t node;
	const char *name, *detail;
} troot;

typedef struct tgraph {
	uint32_t n, cap;
	uint32_t *type, *extra;
	uint64_t *size;
	const char **value;
	tedge *e;
	size_t ne, ecap;
	troot *r;
	size_t nr, rcap;
	const char *types[32];
	uint32_t ntypes;
} tgraph;

uint32_t tg_type(tgraph *g, const char *name);
uint32_t tg_node(tgraph *g, const char *type, uint64_t size);
uint32_t tg_str(tgraph *g, const char *value);
void tg_edge_full(tgraph *g, uint32_t src, uint32_t dst, uint8_t kind, uint8_t lk, uint64_t label, const char *text);
void tg_edge(tgraph *g, uint32_t src, uint32_t dst);
void tg_weak(tgraph *g, uint32_t src, uint32_t dst);
void tg_root(tgraph *g, uint8_t kind, uint32_t node, const char *name, const char *detail);
uint64_t tg_addr(uint32_t i);
uint32_t tg_string(hs_writer *w, const char *s);
hs_snapshot *tg_open(tgraph *g);
void tg_free(tgraph *g);
void tg_key(tgraph *g, uint32_t dict, uint32_t key, uint32_t value);
void tg_name(tgraph *g, uint32_t src, uint32_t dst, const char *name);
void tg_index(tgraph *g, uint32_t src, uint32_t dst, uint64_t i);

#endif
