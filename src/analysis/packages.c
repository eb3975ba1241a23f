/*
 * analysis/packages.c: what each top-level package's modules retain, and
 * the resident size of the files it maps (heapsnap/packages.h).
 *
 * Contraction: package p becomes a virtual object P (numbered after the
 * snapshot's objects, size 0) and its members are its module objects and
 * their __dict__s. Every reference into a member is redirected to P, P
 * references every member, and a root naming a member names P instead.
 * Then every path from a root to something reachable only through p's
 * modules passes through P, so P's dominator subtree is exactly what p's
 * modules retain as a set (the members themselves included), and one
 * dominator computation answers for every package. A module's namespace
 * is a member because it is also reachable without its module (functions'
 * __globals__, frames' f_globals as held-from-C references).
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "heapsnap/packages.h"
#include "analysis/retention_internal.h"
#include "util/alloc.h"

#define NO_PKG UINT32_MAX

/* The component after the last "/<dir>/" in path, or NULL. */
static const char *after_dir(const char *path, const char *dir)
{
	const char *hit = NULL;
	for (const char *p = strstr(path, dir); p; p = strstr(p + 1, dir))
		hit = p;
	return hit ? hit + strlen(dir) : NULL;
}

int hs_package_of_path(char *buf, size_t size, const char *path)
{
	if (size)
		buf[0] = '\0';
	const char *c = after_dir(path, "/site-packages/");
	const char *d = after_dir(path, "/dist-packages/");
	if (!c || (d && d > c))
		c = d;
	int stdlib_ext = 0;
	if (!c) {
		c = after_dir(path, "/lib-dynload/");
		stdlib_ext = 1;
	}
	if (!c || !*c)
		return 0;
	const char *slash = strchr(c, '/');
	size_t len = slash ? (size_t)(slash - c) : strlen(c);
	if (stdlib_ext && slash)
		return 0;
	const char *dot = memchr(c, '.', len);
	if (slash && dot) {
		/* a directory: <pkg>.libs holds a wheel's bundled libraries
		 * (numpy.libs); other dotted directories (dist-info) are no package */
		if (len - (size_t)(dot - c) != 5 || strncmp(dot, ".libs", 5))
			return 0;
		len = (size_t)(dot - c);
	} else if (!slash) {
		/* a file: an extension module <name>.cpython-*.so or <name>.abi3.so */
		if (!dot || !strstr(c, ".so"))
			return 0;
		len = (size_t)(dot - c);
	}
	if (!len || len >= size)
		return 0;
	memcpy(buf, c, len);
	buf[len] = '\0';
	return 1;
}

/* ------------------------------------------------------------------ */

typedef struct pkgs {
	hs_package *p;
	size_t n, cap;
} pkgs;

static uint32_t find_or_add(pkgs *v, const char *name, size_t len)
{
	for (size_t i = 0; i < v->n; i++)
		if (strlen(v->p[i].name) == len && !strncmp(v->p[i].name, name, len))
			return (uint32_t)i;
	if (v->n == v->cap) {
		size_t c = v->cap ? 2 * v->cap : 64;
		hs_package *np = hs_reallocarray(v->p, c, sizeof(hs_package));
		if (!np)
			return NO_PKG;
		v->p = np;
		v->cap = c;
	}
	hs_package *x = &v->p[v->n];
	memset(x, 0, sizeof(*x));
	x->name = hs_strndup(name, len);
	if (!x->name)
		return NO_PKG;
	return (uint32_t)v->n++;
}

static int known(const pkgs *v, const char *name, size_t len)
{
	for (size_t i = 0; i < v->n; i++)
		if (strlen(v->p[i].name) == len && !strncmp(v->p[i].name, name, len))
			return 1;
	return 0;
}

/* The package `name` (len bytes) counts in: the standard library's C
 * accelerators (_json, _decimal, _pickle) are what their Python module
 * re-exports, so _X goes with X when X is imported; apart, every class
 * they define would be shared by two packages and counted for neither. */
static void canonical(const pkgs *tops, const char **name, size_t *len)
{
	if (*len > 1 && (*name)[0] == '_' && (*name)[1] != '_' && known(tops, *name + 1, *len - 1)) {
		(*name)++;
		(*len)--;
	}
}

static int add_file(hs_package *p, const char *path, uint64_t rss)
{
	hs_package_file *nf = hs_reallocarray(p->files, p->file_count + 1, sizeof(hs_package_file));
	if (!nf)
		return HS_ENOMEM;
	p->files = nf;
	nf[p->file_count].path = hs_strdup(path);
	if (!nf[p->file_count].path)
		return HS_ENOMEM;
	nf[p->file_count++].rss = rss;
	p->mapped += rss;
	return 0;
}

/* Resident bytes of mapped files from META memory.files, by package. */
static int mappings(hs_packages *out, pkgs *v, const pkgs *tops, const hs_snapshot *s)
{
	const cJSON *meta = hs_snapshot_meta(s);
	const cJSON *mem = meta ? cJSON_GetObjectItemCaseSensitive(meta, "memory") : NULL;
	const cJSON *files = mem ? cJSON_GetObjectItemCaseSensitive(mem, "files") : NULL;
	if (!cJSON_IsArray(files))
		return 0;
	out->mappings_known = 1;
	const cJSON *f;
	cJSON_ArrayForEach(f, files) {
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
		const cJSON *rss = cJSON_GetObjectItemCaseSensitive(f, "rss");
		if (!cJSON_IsString(path) || !cJSON_IsNumber(rss) || rss->valuedouble < 0)
			continue;
		uint64_t bytes = (uint64_t)rss->valuedouble;
		char name[256];
		if (!hs_package_of_path(name, sizeof(name), path->valuestring)) {
			out->mapped_other += bytes;
			continue;
		}
		const char *cn = name;
		size_t cl = strlen(name);
		canonical(tops, &cn, &cl);
		uint32_t k = find_or_add(v, cn, cl);
		if (k == NO_PKG)
			return HS_ENOMEM;
		HS_TRY(add_file(&v->p[k], path->valuestring, bytes));
	}
	return 0;
}

/* The module's namespace: the target of its __dict__ reference. */
static uint32_t module_dict(const hs_snapshot *s, const hs_graph *g, uint32_t m)
{
	for (uint32_t e = g->edge_start[m]; e < g->edge_start[m + 1]; e++) {
		if (HS_EDGE_KIND(g->edge_kind[e]) == HS_EDGE_WEAK ||
		    HS_EDGE_LABEL(g->edge_kind[e]) != HS_LABEL_NAME)
			continue;
		const char *t = hs_snapshot_string(s, g->edge_label[e], NULL);
		if (t && !strcmp(t, "__dict__"))
			return g->edge_target[e];
	}
	return HS_NO_NODE;
}

static int cmp_pkg(const void *a, const void *b)
{
	const hs_package *x = a, *y = b;
	uint64_t tx = x->retained + (x->mapped == HS_PACKAGE_MAPPED_UNKNOWN ? 0 : x->mapped);
	uint64_t ty = y->retained + (y->mapped == HS_PACKAGE_MAPPED_UNKNOWN ? 0 : y->mapped);
	if (tx != ty)
		return tx > ty ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_file(const void *a, const void *b)
{
	const hs_package_file *x = a, *y = b;
	if (x->rss != y->rss)
		return x->rss > y->rss ? -1 : 1;
	return strcmp(x->path, y->path);
}

static void free_rows(hs_package *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hs_free(rows[i].name);
		for (size_t k = 0; k < rows[i].file_count; k++)
			hs_free(rows[i].files[k].path);
		hs_free(rows[i].files);
	}
	hs_free(rows);
}

/* Objects in the dominator subtree of `v` (v included). */
static uint64_t subtree_count(const hs_dominators *d, uint32_t v, uint32_t *stack)
{
	uint64_t c = 0;
	uint32_t sp = 0;
	stack[sp++] = v;
	while (sp) {
		uint32_t x = stack[--sp];
		c++;
		size_t nk;
		const uint32_t *k = hs_dominators_children(d, x, &nk);
		for (size_t i = 0; i < nk; i++)
			stack[sp++] = k[i];
	}
	return c;
}

/* Contract, compute the tree, read each package's subtree. */
static int retained(hs_packages *out, pkgs *v, const hs_snapshot *s, const uint32_t *member,
                    uint32_t np)
{
	const hs_graph *g = hs_snapshot_graph(s);
	uint32_t n = g->node_count;
	HS_RETURN_IF((uint64_t)n + np >= HS_DOM_SUPERROOT, HS_ELIMIT,
	             "cannot compute package sizes: too many objects (%u)", n);
	uint64_t nmem = 0;
	for (uint32_t i = 0; i < n; i++)
		nmem += member[i] != NO_PKG;
	HS_RETURN_IF((uint64_t)g->edge_count + nmem >= UINT32_MAX - 2, HS_ELIMIT,
	             "cannot compute package sizes: too many references (%u)", g->edge_count);
	uint32_t N = n + np, E = g->edge_count + (uint32_t)nmem;
	int rc = HS_ENOMEM;
	hs_dominators *d = NULL;
	uint32_t *es = hs_reallocarray(NULL, (size_t)N + 1, sizeof(uint32_t));
	uint32_t *et = hs_reallocarray(NULL, E ? E : 1, sizeof(uint32_t));
	uint8_t *ek = hs_reallocarray(NULL, E ? E : 1, 1);
	uint32_t *sz = hs_reallocarray(NULL, N ? N : 1, sizeof(uint32_t));
	uint32_t *roots = NULL, *first = NULL, nroots = 0, *proots = NULL, *stack = NULL;
	uint64_t *seen = hs_calloc((size_t)N / 64 + 1, sizeof(uint64_t));
	if (!es || !et || !ek || !sz || !seen)
		goto done;
	memcpy(es, g->edge_start, ((size_t)n + 1) * sizeof(uint32_t));
	memcpy(ek, g->edge_kind, g->edge_count);
	for (uint32_t e = 0; e < g->edge_count; e++) {
		uint32_t t = g->edge_target[e];
		et[e] = member[t] != NO_PKG ? n + member[t] : t;
	}
	/* P's references to its members, P by P (a counting sort) */
	memset(es + n + 1, 0, (size_t)np * sizeof(uint32_t));
	for (uint32_t i = 0; i < n; i++)
		if (member[i] != NO_PKG)
			es[n + member[i] + 1]++;
	es[n] = g->edge_count;
	for (uint32_t p = 0; p < np; p++)
		es[n + p + 1] += es[n + p];
	uint32_t *fill = sz; /* free until sizes are copied */
	memcpy(fill, es + n, (size_t)np * sizeof(uint32_t));
	for (uint32_t i = 0; i < n; i++)
		if (member[i] != NO_PKG) {
			uint32_t e = fill[member[i]]++;
			et[e] = i;
			ek[e] = HS_EDGE_STRONG;
		}
	memcpy(sz, g->size32, (size_t)n * sizeof(uint32_t));
	memset(sz + n, 0, (size_t)np * sizeof(uint32_t));
	hs_graph cg;
	memset(&cg, 0, sizeof(cg));
	cg.node_count = N;
	cg.edge_count = E;
	cg.edge_start = es;
	cg.edge_target = et;
	cg.edge_kind = ek;
	cg.size32 = sz;
	cg.big_count = g->big_count;
	cg.big_node = g->big_node;
	cg.big_size = g->big_size;
	if ((rc = hs_retention__root_nodes(&roots, &first, &nroots, s)) < 0)
		goto done;
	rc = HS_ENOMEM;
	proots = hs_reallocarray(NULL, nroots ? nroots : 1, sizeof(uint32_t));
	if (!proots)
		goto done;
	uint32_t k = 0;
	for (uint32_t i = 0; i < nroots; i++) {
		uint32_t r = member[roots[i]] != NO_PKG ? n + member[roots[i]] : roots[i];
		if (seen[r >> 6] >> (r & 63) & 1)
			continue;
		seen[r >> 6] |= 1ull << (r & 63);
		proots[k++] = r;
	}
	if ((rc = hs_dominators__compute_graph(&d, &cg, proots, k)) < 0)
		goto done;
	rc = HS_ENOMEM;
	stack = hs_reallocarray(NULL, N ? N : 1, sizeof(uint32_t));
	if (!stack)
		goto done;
	for (uint32_t p = 0; p < np; p++) {
		hs_package *x = &v->p[p];
		if (hs_dominators_idom(d, n + p) == HS_NO_NODE)
			continue;
		x->retained = hs_dominators_retained(d, n + p);
		x->count = subtree_count(d, n + p, stack) - 1; /* P itself is no object */
		out->retained += x->retained;
	}
	out->reachable_bytes = hs_dominators_stats_get(d)->reachable_bytes;
	rc = 0;
done:
	hs_dominators_free(d);
	hs_free(es);
	hs_free(et);
	hs_free(ek);
	hs_free(sz);
	hs_free(seen);
	hs_free(roots);
	hs_free(first);
	hs_free(proots);
	hs_free(stack);
	return rc;
}

int hs_packages_compute(hs_packages **out, const hs_snapshot *s)
{
	*out = NULL;
	const hs_graph *g = hs_snapshot_graph(s);
	HS_TRY(hs_retention__check_graph(g, "package sizes"));
	uint32_t n = g->node_count;
	int rc = HS_ENOMEM;
	pkgs v = { NULL, 0, 0 }, tops = { NULL, 0, 0 };
	hs_packages *p = hs_calloc(1, sizeof(*p));
	uint32_t *member = hs_reallocarray(NULL, n ? n : 1, sizeof(uint32_t));
	if (!p || !member)
		goto done;
	memset(member, 0xff, (size_t)n * sizeof(uint32_t));
	uint32_t nr = hs_snapshot_root_count(s);
	/* every top-level name first, for canonical() */
	for (uint32_t i = 0; i < nr; i++) {
		hs_snapshot_root r = hs_retention__root(s, i);
		const char *name = r.kind == HS_ROOT_MODULE && r.name != HS_NO_STRING
		                   ? hs_snapshot_string(s, r.name, NULL) : NULL;
		if (!name || !*name)
			continue;
		const char *dot = strchr(name, '.');
		if (find_or_add(&tops, name, dot ? (size_t)(dot - name) : strlen(name)) == NO_PKG)
			goto done;
	}
	/* module roots name the packages; a module named twice (os.path and
	 * posixpath) belongs to the first name */
	for (uint32_t i = 0; i < nr; i++) {
		hs_snapshot_root r = hs_retention__root(s, i);
		if (r.kind != HS_ROOT_MODULE || r.node >= n || r.name == HS_NO_STRING ||
		    member[r.node] != NO_PKG)
			continue;
		const char *name = hs_snapshot_string(s, r.name, NULL);
		if (!name || !*name)
			continue;
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		canonical(&tops, &name, &len);
		uint32_t k = find_or_add(&v, name, len);
		if (k == NO_PKG)
			goto done;
		v.p[k].modules++;
		member[r.node] = k;
		uint32_t md = module_dict(s, g, r.node);
		if (md != HS_NO_NODE && member[md] == NO_PKG)
			member[md] = k;
	}
	uint32_t nmod = (uint32_t)v.n;
	if ((rc = mappings(p, &v, &tops, s)) < 0)
		goto done;
	if ((rc = retained(p, &v, s, member, nmod)) < 0)
		goto done;
	for (size_t i = 0; i < v.n; i++) {
		if (!p->mappings_known)
			v.p[i].mapped = HS_PACKAGE_MAPPED_UNKNOWN;
		if (v.p[i].file_count > 1)
			qsort(v.p[i].files, v.p[i].file_count, sizeof(hs_package_file), cmp_file);
	}
	qsort(v.p, v.n, sizeof(hs_package), cmp_pkg);
	p->packages = v.p;
	p->count = v.n;
	v.p = NULL;
	v.n = 0;
	*out = p;
	p = NULL;
	rc = 0;
done:
	hs_free(member);
	free_rows(v.p, v.n);
	free_rows(tops.p, tops.n);
	hs_packages_free(p);
	return rc;
}

void hs_packages_free(hs_packages *p)
{
	if (!p)
		return;
	free_rows(p->packages, p->count);
	hs_free(p);
}
