/*
 * tests/unit/testgraph.c: a tiny graph builder over the snapshot writer,
 * shared by the retention, dominator and leak tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"
#include "testgraph.h"
#include "testutil.h"

uint32_t tg_type(tgraph *g, const char *name)
{
	for (uint32_t i = 0; i < g->ntypes; i++)
		if (!strcmp(g->types[i], name))
			return i;
	cr_assert_lt(g->ntypes, 32);
	g->types[g->ntypes] = name;
	return g->ntypes++;
}

uint32_t tg_node(tgraph *g, const char *type, uint64_t size)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->type = realloc(g->type, g->cap * sizeof(uint32_t));
		g->extra = realloc(g->extra, g->cap * sizeof(uint32_t));
		g->size = realloc(g->size, g->cap * sizeof(uint64_t));
		g->value = realloc(g->value, g->cap * sizeof(char *));
	}
	g->type[g->n] = tg_type(g, type);
	g->size[g->n] = size;
	g->extra[g->n] = 0;
	g->value[g->n] = NULL;
	return g->n++;
}

uint32_t tg_str(tgraph *g, const char *value)
{
	uint32_t v = tg_node(g, "str", 50);
	g->value[v] = value;
	return v;
}

void tg_edge_full(tgraph *g, uint32_t src, uint32_t dst, uint8_t kind, uint8_t lk,
                         uint64_t label, const char *text)
{
	if (g->ne == g->ecap) {
		g->ecap = g->ecap ? g->ecap * 2 : 64;
		g->e = realloc(g->e, g->ecap * sizeof(tedge));
	}
	g->e[g->ne++] = (tedge){ src, dst, kind, lk, label, text };
}

void tg_edge(tgraph *g, uint32_t src, uint32_t dst)
{
	tg_edge_full(g, src, dst, HS_EDGE_STRONG, HS_LABEL_NONE, 0, NULL);
}

void tg_weak(tgraph *g, uint32_t src, uint32_t dst)
{
	tg_edge_full(g, src, dst, HS_EDGE_WEAK, HS_LABEL_NONE, 0, NULL);
}

void tg_root(tgraph *g, uint8_t kind, uint32_t node, const char *name, const char *detail)
{
	if (g->nr == g->rcap) {
		g->rcap = g->rcap ? g->rcap * 2 : 16;
		g->r = realloc(g->r, g->rcap * sizeof(troot));
	}
	g->r[g->nr++] = (troot){ kind, node, name, detail };
}

uint64_t tg_addr(uint32_t i) { return 0x10000 + (uint64_t)i * 64; }


uint32_t tg_string(hs_writer *w, const char *s)
{
	uint32_t id;
	cr_assert_eq(hs_writer_string(w, &id, s, strlen(s)), 0, "%s", hs_error_last());
	return id;
}

/* Write the graph to a fresh file and load it. Refcounts are the strong
 * in-degree plus `extra` (extra > 0 makes a held-from-C root). */
hs_snapshot *tg_open(tgraph *g)
{
	static int seq;
	char name[64];
	snprintf(name, sizeof(name), "graph-%d.hsnap", seq++);
	const char *path = hs_test_tmppath(name);
	hs_writer_options wo = HS_WRITER_OPTIONS_INIT;
	wo.threaded = 0;
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, &wo), 0, "%s", hs_error_last());
	cr_assert_eq(hs_writer_meta(w, "{}", 2), 0);
	for (uint32_t t = 0; t < g->ntypes; t++) {
		hs_type_record tr = { 0x900000 + t * 0x100, tg_string(w, g->types[t]), 0, 16 };
		uint32_t id;
		cr_assert_eq(hs_writer_type(w, &id, &tr), 0, "%s", hs_error_last());
		cr_assert_eq(id, t);
	}
	/* edges grouped by source, file order kept (counting sort) */
	size_t *start = calloc(g->n + 1, sizeof(size_t));
	tedge *sorted = malloc((g->ne ? g->ne : 1) * sizeof(tedge));
	uint64_t *in = calloc(g->n ? g->n : 1, sizeof(uint64_t));
	for (size_t i = 0; i < g->ne; i++) {
		start[g->e[i].src + 1]++;
		if (g->e[i].kind == HS_EDGE_STRONG)
			in[g->e[i].dst]++;
	}
	for (uint32_t i = 0; i < g->n; i++)
		start[i + 1] += start[i];
	for (size_t i = 0; i < g->ne; i++)
		sorted[start[g->e[i].src]++] = g->e[i];
	size_t k = 0;
	for (uint32_t i = 0; i < g->n; i++) {
		hs_node_record nr = { tg_addr(i), g->type[i], 0, g->size[i], in[i] + g->extra[i], NULL, 0, 0 };
		if (g->value[i]) {
			nr.flags = HS_NODE_HAS_VALUE;
			nr.value = g->value[i];
			nr.value_len = (uint32_t)strlen(g->value[i]);
		}
		cr_assert_eq(hs_writer_node(w, &nr), 0, "%s", hs_error_last());
		for (; k < g->ne && sorted[k].src == i; k++) {
			const tedge *e = &sorted[k];
			hs_edge_record er = { tg_addr(e->dst), e->kind, e->lk, e->label };
			if (e->lk == HS_LABEL_KEY || e->lk == HS_LABEL_ATTR)
				er.label = tg_addr((uint32_t)e->label);
			else if (e->text)
				er.label = tg_string(w, e->text);
			cr_assert_eq(hs_writer_edge(w, &er), 0, "%s", hs_error_last());
		}
	}
	for (size_t i = 0; i < g->nr; i++) {
		hs_root_record rr = { g->r[i].kind, tg_addr(g->r[i].node),
		                      g->r[i].name ? tg_string(w, g->r[i].name) : HS_NO_STRING,
		                      g->r[i].detail ? tg_string(w, g->r[i].detail) : HS_NO_STRING };
		cr_assert_eq(hs_writer_root(w, &rr), 0, "%s", hs_error_last());
	}
	cr_assert_eq(hs_writer_commit(w, NULL), 0, "%s", hs_error_last());
	hs_writer_free(w);
	free(start);
	free(sorted);
	free(in);
	hs_snapshot *s;
	cr_assert_eq(hs_snapshot_open(&s, path, NULL), 0, "%s", hs_error_last());
	return s;
}

void tg_free(tgraph *g)
{
	free(g->type);
	free(g->extra);
	free(g->size);
	free(g->value);
	free(g->e);
	free(g->r);
	memset(g, 0, sizeof(*g));
}
/* ------------------------------------------------------------------ */

void tg_key(tgraph *g, uint32_t dict, uint32_t key, uint32_t value)
{
	tg_edge_full(g, dict, key, HS_EDGE_STRONG, HS_LABEL_DICT_KEY, 0, NULL);
	tg_edge_full(g, dict, value, HS_EDGE_STRONG, HS_LABEL_KEY, key, NULL);
}

void tg_name(tgraph *g, uint32_t src, uint32_t dst, const char *name)
{
	tg_edge_full(g, src, dst, HS_EDGE_STRONG, HS_LABEL_NAME, 0, name);
}

void tg_index(tgraph *g, uint32_t src, uint32_t dst, uint64_t i)
{
	tg_edge_full(g, src, dst, HS_EDGE_STRONG, HS_LABEL_INDEX, i, NULL);
}
