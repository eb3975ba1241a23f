/*
 * graph/labels.c: edge labels and short values rendered as Python reads
 * them (`['user_42']`, `[3]`, `.name`, `__dict__`, `<key>`, `local buf`).
 */
#include <stdio.h>
#include <string.h>
#include "graph/snapshot_internal.h"

/* snprintf-like sink: counts everything, writes what fits. */
typedef struct sink {
	char *buf;
	size_t size, len;
} sink;

static void put(sink *k, const char *s, size_t n)
{
	if (k->len < k->size) {
		size_t room = k->size - 1 - k->len;
		memcpy(k->buf + k->len, s, n < room ? n : room);
	}
	k->len += n;
}

static void puts_(sink *k, const char *s) { put(k, s, strlen(s)); }

static void put_c(sink *k, char c) { put(k, &c, 1); }

static void finish(sink *k)
{
	if (k->size)
		k->buf[k->len < k->size ? k->len : k->size - 1] = '\0';
}

static void put_quoted(sink *k, const char *v, size_t n, int bytes)
{
	/* Python's repr rule: single quotes unless the text has ' and no ". */
	char q = (memchr(v, '\'', n) && !memchr(v, '"', n)) ? '"' : '\'';
	if (bytes)
		put_c(k, 'b');
	put_c(k, q);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[8];
		if (c == '\\' || c == (unsigned char)q) {
			put_c(k, '\\');
			put_c(k, (char)c);
		} else if (c == '\n') {
			puts_(k, "\\n");
		} else if (c == '\r') {
			puts_(k, "\\r");
		} else if (c == '\t') {
			puts_(k, "\\t");
		} else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			puts_(k, esc);
		} else {
			put_c(k, (char)c);
		}
	}
	put_c(k, q);
}

static void put_value(sink *k, const hs_snapshot *s, uint32_t node, int as_key)
{
	size_t n;
	const char *v = hs_graph_node_value(&s->g, node, &n);
	const char *tn = hs_snapshot_node_type_name(s, node);
	if (!v) {
		if (as_key) {
			char tmp[64];
			snprintf(tmp, sizeof(tmp), " at 0x%llx>", (unsigned long long)s->address[node]);
			put_c(k, '<');
			puts_(k, tn);
			puts_(k, tmp);
		}
		return;
	}
	if (!strcmp(tn, "str"))
		put_quoted(k, v, n, 0);
	else if (!strcmp(tn, "bytes"))
		put_quoted(k, v, n, 1);
	else
		put(k, v, n);
	if (s->flags[node] & HS_NODE_VALUE_TRUNCATED)
		puts_(k, "\xe2\x80\xa6"); /* … */
}

size_t hs_snapshot_node_value_repr(const hs_snapshot *s, uint32_t node, char *buf, size_t size)
{
	sink k = { buf, size, 0 };
	if (node < s->g.node_count)
		put_value(&k, s, node, 0);
	finish(&k);
	return k.len;
}

size_t hs_snapshot_edge_label(const hs_snapshot *s, uint32_t edge, char *buf, size_t size)
{
	sink k = { buf, size, 0 };
	if (edge >= s->g.edge_count) {
		finish(&k);
		return 0;
	}
	uint32_t label = s->g.edge_label[edge];
	char num[32];
	size_t n;
	const char *str;
	switch (HS_EDGE_LABEL(s->g.edge_kind[edge])) {
	case HS_LABEL_INDEX:
		snprintf(num, sizeof(num), "[%u]", label);
		puts_(&k, num);
		break;
	case HS_LABEL_KEY:
		put_c(&k, '[');
		if (label == HS_NO_NODE)
			put_c(&k, '?');
		else
			put_value(&k, s, label, 1);
		put_c(&k, ']');
		break;
	case HS_LABEL_ATTR:
		put_c(&k, '.');
		if (label == HS_NO_NODE || !hs_graph_node_value(&s->g, label, &n))
			put_c(&k, '?');
		else
			put(&k, hs_graph_node_value(&s->g, label, &n), n);
		break;
	case HS_LABEL_NAME:
		str = hs_snapshot_string(s, label, &n);
		put(&k, str, n);
		break;
	case HS_LABEL_ATTR_NAME:
		str = hs_snapshot_string(s, label, &n);
		put_c(&k, '.');
		put(&k, str, n);
		break;
	case HS_LABEL_DICT_KEY:
		puts_(&k, "<key>");
		break;
	case HS_LABEL_LOCAL:
		str = hs_snapshot_string(s, label, &n);
		puts_(&k, "local ");
		put(&k, str, n);
		break;
	default:
		break;
	}
	finish(&k);
	return k.len;
}
