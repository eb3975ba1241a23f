/*
 * render/graphviz_internal.h: the model of a reference graph shared by the
 * files of render/graphviz*.c (build, leak graphs, rendering).
 */
#ifndef HS_RENDER_GRAPHVIZ_INTERNAL_H
#define HS_RENDER_GRAPHVIZ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "heapsnap/graphviz.h"


enum {
	GN_SELECTED = 1,
	GN_ROOT = 2,
	GN_COLLAPSED = 4,
	GN_DEAD = 8,
	GN_HOLDER = 16,
	GN_EXPANDED = 32,
};

typedef struct gnode {
	uint32_t obj;         /* an example object */
	uint32_t type;
	uint64_t count, bytes;
	uint32_t depth, root; /* root index or HS_NO_NODE */
	unsigned flags;
	char *label;          /* final text (render) */
	char *extra;          /* extra line (leak graphs) */
} gnode;

typedef struct gedge {
	uint32_t from, to;    /* gnode indexes */
	uint32_t edge;        /* example forward edge or HS_NO_EDGE */
	uint64_t count;
	uint8_t varies, weak;
	char *label;          /* final text; or preset */
} gedge;

struct hs_graphviz {
	gnode *n;
	size_t nn, ncap;
	gedge *e;
	size_t ne, ecap;
	hs_graphviz_stats stats;
	int rankdir_lr;
};

int hs_graphviz__add_node(hs_graphviz *g, uint32_t *out, uint32_t obj, uint32_t type);
int hs_graphviz__add_edge(hs_graphviz *g, uint32_t from, uint32_t to, uint32_t edge,
                          uint64_t count, int weak);
/* label text for DOT, appended to buf (escaped; put_line starts a new line) */
void hs_graphviz__put_esc(char *buf, size_t size, size_t *len, const char *s);
void hs_graphviz__put_line(char *buf, size_t size, size_t *len, const char *s);
/* every node's and edge's final label, with retained sizes when d is given */
int hs_graphviz__finish_labels(hs_graphviz *g, const hs_snapshot *s, const hs_dominators *d);

#endif
