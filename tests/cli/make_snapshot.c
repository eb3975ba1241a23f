/*
 * tests/cli/make_snapshot.c: write a snapshot from a text description, so
 * CLI tests run on exact, known heaps. Test-only.
 *
 *   make_snapshot DESC.txt OUT.hsnap
 *   make_snapshot --bulk N [--edges E] [--seed S] OUT.hsnap
 *
 * Description lines (`#` starts a comment; values with spaces in "quotes"):
 *   meta JSON...                       the metadata (rest of the line)
 *   python 0x030c01f0                  PY_VERSION_HEX for the header
 *   type NAME [gc] [heap] [basic=N]    defines the next type id
 *   node ADDR TYPE SIZE [rc=N] [gc] [immortal] [estimated] [truncated] [value=TEXT]
 *   edge TARGET [weak] [index=N|key=ADDR|attr=ADDR|name=S|attrname=S|dictkey|local=S]
 *   root module|frame|local|interpreter ADDR [name=S] [detail=S]
 * An edge belongs to the node line before it.
 *
 * --bulk writes N synthetic objects of 40 types with E references each on
 * average over the objects that have references (str and int have none;
 * random targets, mixed labels; refcounts = strong in-degree, +1 for ~5%
 * "held from C" and for objects nothing refers to), a few modules as
 * roots: the input of the 1M-object benchmark.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/format.h"

static int lineno;
static const char *desc_path;

static void die(const char *what)
{
	fprintf(stderr, "make_snapshot: %s:%d: %s (%s)\n", desc_path ? desc_path : "-", lineno, what,
	        hs_error_last());
	exit(2);
}

#define CHECK(expr) do { if ((expr) < 0) die(#expr); } while (0)

/* split a line into tokens; "..." quotes with \" and \\ escapes */
static int tokenize(char *s, char **tok, int max)
{
	int n = 0;
	while (*s && n < max) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			break;
		char *out = s, *start = s;
		int q = 0;
		while (*s && (q || (*s != ' ' && *s != '\t'))) {
			if (*s == '"') {
				q = !q;
				s++;
				continue;
			}
			if (q && *s == '\\' && s[1])
				s++;
			*out++ = *s++;
		}
		if (*s)
			s++;
		*out = '\0';
		tok[n++] = start;
	}
	return n;
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (*end || errno)
		die("bad number");
	return v;
}

#define MAX_TYPES 4096
static char *type_names[MAX_TYPES];
static uint32_t ntypes;

static uint32_t type_id(const char *name)
{
	for (uint32_t i = 0; i < ntypes; i++)
		if (!strcmp(type_names[i], name))
			return i;
	die("unknown type");
	return 0;
}

static uint32_t str_id(hs_writer *w, const char *s)
{
	uint32_t id;
	CHECK(hs_writer_string(w, &id, s, strlen(s)));
	return id;
}

static int from_description(const char *in, const char *out)
{
	FILE *f = fopen(in, "r");
	if (!f) {
		fprintf(stderr, "make_snapshot: cannot open '%s': %s\n", in, strerror(errno));
		return 2;
	}
	desc_path = in;
	/* first pass: python version (header) */
	char line[8192];
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.threaded = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "python ", 7))
			o.python_version = (uint32_t)strtoul(line + 7, NULL, 0);
	rewind(f);
	hs_writer *w;
	CHECK(hs_writer_open(&w, out, &o));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "meta ", 5)) {
			CHECK(hs_writer_meta(w, line + 5, strlen(line + 5)));
			continue;
		}
		char *t[64];
		int n = tokenize(line, t, 64);
		if (!n || !strcmp(t[0], "python"))
			continue;
		if (!strcmp(t[0], "type")) {
			if (n < 2 || ntypes >= MAX_TYPES)
				die("type NAME [gc] [heap] [basic=N]");
			hs_type_record r = { 0x10000 + (uint64_t)ntypes * 0x400, 0, 0, 16 };
			r.name = str_id(w, t[1]);
			for (int i = 2; i < n; i++) {
				if (!strcmp(t[i], "gc"))
					r.flags |= HS_TYPE_GC;
				else if (!strcmp(t[i], "heap"))
					r.flags |= HS_TYPE_HEAP;
				else if (!strncmp(t[i], "basic=", 6))
					r.basic_size = num(t[i] + 6);
				else
					die("unknown type attribute");
			}
			uint32_t id;
			CHECK(hs_writer_type(w, &id, &r));
			type_names[ntypes++] = strdup(t[1]);
		} else if (!strcmp(t[0], "node")) {
			if (n < 4)
				die("node ADDR TYPE SIZE ...");
			hs_node_record r = { 0 };
			r.address = num(t[1]);
			r.type = type_id(t[2]);
			r.size = num(t[3]);
			r.refcount = 1;
			for (int i = 4; i < n; i++) {
				if (!strncmp(t[i], "rc=", 3))
					r.refcount = num(t[i] + 3);
				else if (!strcmp(t[i], "gc"))
					r.flags |= HS_NODE_GC_TRACKED;
				else if (!strcmp(t[i], "immortal"))
					r.flags |= HS_NODE_IMMORTAL, r.refcount = 0;
				else if (!strcmp(t[i], "estimated"))
					r.flags |= HS_NODE_SIZE_ESTIMATED;
				else if (!strcmp(t[i], "truncated"))
					r.flags |= HS_NODE_VALUE_TRUNCATED;
				else if (!strncmp(t[i], "value=", 6)) {
					r.flags |= HS_NODE_HAS_VALUE;
					r.value = t[i] + 6;
					r.value_len = (uint32_t)strlen(r.value);
				} else
					die("unknown node attribute");
			}
			CHECK(hs_writer_node(w, &r));
		} else if (!strcmp(t[0], "edge")) {
			if (n < 2)
				die("edge TARGET ...");
			hs_edge_record e = { num(t[1]), HS_EDGE_STRONG, HS_LABEL_NONE, 0 };
			for (int i = 2; i < n; i++) {
				if (!strcmp(t[i], "weak"))
					e.kind = HS_EDGE_WEAK;
				else if (!strncmp(t[i], "index=", 6))
					e.label_kind = HS_LABEL_INDEX, e.label = num(t[i] + 6);
				else if (!strncmp(t[i], "key=", 4))
					e.label_kind = HS_LABEL_KEY, e.label = num(t[i] + 4);
				else if (!strncmp(t[i], "attr=", 5))
					e.label_kind = HS_LABEL_ATTR, e.label = num(t[i] + 5);
				else if (!strncmp(t[i], "name=", 5))
					e.label_kind = HS_LABEL_NAME, e.label = str_id(w, t[i] + 5);
				else if (!strncmp(t[i], "attrname=", 9))
					e.label_kind = HS_LABEL_ATTR_NAME, e.label = str_id(w, t[i] + 9);
				else if (!strcmp(t[i], "dictkey"))
					e.label_kind = HS_LABEL_DICT_KEY;
				else if (!strncmp(t[i], "local=", 6))
					e.label_kind = HS_LABEL_LOCAL, e.label = str_id(w, t[i] + 6);
				else
					die("unknown edge attribute");
			}
			CHECK(hs_writer_edge(w, &e));
		} else if (!strcmp(t[0], "root")) {
			if (n < 3)
				die("root KIND ADDR ...");
			hs_root_record r = { 0, num(t[2]), HS_NO_STRING, HS_NO_STRING };
			static const char *const kinds[] = { "", "module", "frame", "local", "held",
			                                     "interpreter" };
			for (uint8_t k = 1; k < 6; k++)
				if (!strcmp(t[1], kinds[k]))
					r.kind = k;
			if (!r.kind)
				die("unknown root kind");
			for (int i = 3; i < n; i++) {
				if (!strncmp(t[i], "name=", 5))
					r.name = str_id(w, t[i] + 5);
				else if (!strncmp(t[i], "detail=", 7))
					r.detail = str_id(w, t[i] + 7);
				else
					die("unknown root attribute");
			}
			CHECK(hs_writer_root(w, &r));
		} else {
			die("unknown directive");
		}
	}
	fclose(f);
	CHECK(hs_writer_commit(w, NULL));
	hs_writer_free(w);
	return 0;
}

/* xorshift64* */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static int bulk(uint64_t n, double edges, uint64_t seed, const char *out)
{
	static const char *const builtin[] = { "dict", "list", "tuple", "str", "int", "float",
	                                       "bytes", "set", "function", "cell", "type", "code" };
	static const uint64_t bsize[] = { 232, 88, 64, 60, 28, 24, 40, 216, 160, 40, 1064, 192 };
	if (seed)
		rng_state = seed;
	hs_writer_options o = HS_WRITER_OPTIONS_INIT;
	o.python_version = 0x030c01f0;
	hs_writer *w;
	CHECK(hs_writer_open(&w, out, &o));
	char meta[512];
	snprintf(meta, sizeof(meta),
	         "{\"format\":\"heapsnap-snapshot\",\"pid\":4242,\"argv\":[\"bulk.py\"],"
	         "\"python\":{\"version\":\"3.12.1\",\"hexversion\":51118576,\"implementation\":\"cpython\"},"
	         "\"time\":1700000000.5,\"time_iso\":\"2023-11-14T22:13:20Z\","
	         "\"process\":{\"rss\":%" PRIu64 ",\"uss\":%" PRIu64 ",\"pss\":%" PRIu64 "},"
	         "\"pymalloc\":{\"allocated_blocks\":%" PRIu64 "}}",
	         n * 200, n * 180, n * 190, n);
	CHECK(hs_writer_meta(w, meta, strlen(meta)));
	uint32_t nt = 40, tid;
	for (uint32_t t = 0; t < nt; t++) {
		char name[64];
		if (t < 12)
			snprintf(name, sizeof(name), "%s", builtin[t]);
		else
			snprintf(name, sizeof(name), "app.models%u.Model%u", t % 5, t);
		hs_type_record r = { 0x10000 + (uint64_t)t * 0x400, str_id(w, name),
		                     HS_TYPE_GC, t < 12 ? bsize[t] : 48 };
		CHECK(hs_writer_type(w, &tid, &r));
	}
	uint32_t attr = str_id(w, "value"), local = str_id(w, "buf");
	const uint64_t base = 0x7f0000000000ULL;
	/* First draw every object's type and references, so refcounts can be
	 * what CPython would report: the strong references in the graph, plus
	 * one for ~5% of objects (held from C) and for objects nothing refers
	 * to (a live object has a refcount of at least 1). */
	uint8_t *types = malloc(n);
	uint8_t *nedges = malloc(n);
	uint32_t *indeg = calloc(n, sizeof(uint32_t));
	uint64_t edge_budget = (uint64_t)(edges * 1024), total = 0;
	if (!types || !nedges || !indeg)
		die("out of memory");
	uint64_t save = rng_state;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t t = (uint32_t)(rnd() % 100);
		t = t < 60 ? t % 12 : 12 + t % 28;
		types[i] = (uint8_t)t;
		uint64_t k = (rnd() % (2 * edge_budget + 1)) / 1024;
		nedges[i] = (uint8_t)(t == 3 || t == 4 ? 0 : k > 255 ? 255 : k);
		total += nedges[i];
	}
	uint32_t *targets = malloc((total ? total : 1) * sizeof(uint32_t));
	if (!targets)
		die("out of memory");
	for (uint64_t e = 0; e < total; e++) {
		targets[e] = (uint32_t)(rnd() % n);
		indeg[targets[e]]++;
	}
	(void)save;
	uint64_t e = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t t = types[i];
		hs_node_record r = { 0 };
		r.address = base + i * 64;
		r.type = t;
		r.size = t < 12 ? bsize[t] + (rnd() % 4) * 8 : 48 + (rnd() % 8) * 8;
		r.refcount = indeg[i] + (indeg[i] == 0 || rnd() % 20 == 0);
		r.flags = HS_NODE_GC_TRACKED;
		char v[32];
		if (t == 3 || t == 4) {
			r.flags = HS_NODE_HAS_VALUE;
			int len = snprintf(v, sizeof(v), t == 3 ? "s%" PRIu64 : "%" PRIu64, i);
			r.value = v;
			r.value_len = (uint32_t)len;
		}
		CHECK(hs_writer_node(w, &r));
		for (uint64_t j = 0; j < nedges[i]; j++, e++) {
			hs_edge_record ed = { base + (uint64_t)targets[e] * 64, HS_EDGE_STRONG, HS_LABEL_NONE, 0 };
			switch (j % 4) {
			case 0: ed.label_kind = HS_LABEL_INDEX; ed.label = j; break;
			case 1: ed.label_kind = HS_LABEL_ATTR_NAME; ed.label = attr; break;
			case 2: ed.label_kind = HS_LABEL_KEY; ed.label = base + (rnd() % n) * 64; break;
			default: ed.label_kind = HS_LABEL_LOCAL; ed.label = local; break;
			}
			CHECK(hs_writer_edge(w, &ed));
		}
	}
	free(types);
	free(nedges);
	free(indeg);
	free(targets);
	for (uint32_t m = 0; m < 16 && m < n; m++) {
		char name[32];
		snprintf(name, sizeof(name), "app.mod%u", m);
		hs_root_record r = { HS_ROOT_MODULE, base + m * 64, str_id(w, name), HS_NO_STRING };
		CHECK(hs_writer_root(w, &r));
	}
	hs_write_stats st;
	CHECK(hs_writer_commit(w, &st));
	hs_writer_free(w);
	fprintf(stderr, "make_snapshot: %" PRIu64 " objects, %" PRIu64 " references, %" PRIu64
	        " bytes\n", st.nodes, st.edges, st.file_bytes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--bulk")) {
		uint64_t n = strtoull(argv[2], NULL, 0), seed = 0;
		double e = 2.0;
		int i = 3;
		for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
			if (!strcmp(argv[i], "--edges"))
				e = strtod(argv[i + 1], NULL);
			else if (!strcmp(argv[i], "--seed"))
				seed = strtoull(argv[i + 1], NULL, 0);
		}
		if (i + 1 != argc || !n) {
			fprintf(stderr, "usage: make_snapshot --bulk N [--edges E] [--seed S] OUT\n");
			return 129;
		}
		return bulk(n, e, seed, argv[i]);
	}
	if (argc != 3) {
		fprintf(stderr, "usage: make_snapshot DESC.txt OUT.hsnap\n"
		                "       make_snapshot --bulk N [--edges E] [--seed S] OUT.hsnap\n");
		return 129;
	}
	return from_description(argv[1], argv[2]);
}
