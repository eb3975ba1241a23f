/*
 * render/retention.c: `heapsnap paths`, `retained`, `dominators` and
 * `garbage`, as aligned text and as JSON (formats/<command>.schema.json).
 */
#include <inttypes.h>
#include <string.h>
#include "render/render_internal.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* shared helpers                                                      */

static const char *const label_kinds[] = {
	"none", "index", "key", "attr", "name", "attr_name", "dict_key", "local",
};

const char *hs_render__label_kind(unsigned k)
{
	return k < sizeof(label_kinds) / sizeof(label_kinds[0]) ? label_kinds[k] : "none";
}

void hs_render__address(char *buf, size_t size, uint64_t a)
{
	snprintf(buf, size, "0x%" PRIx64, a);
}

cJSON *hs_render__address_json(uint64_t a)
{
	char b[24];
	hs_render__address(b, sizeof(b), a);
	return cJSON_CreateString(b);
}

size_t hs_render_root_text(char *buf, size_t size, const hs_snapshot *s, uint32_t root)
{
	hs_snapshot_root r;
	if (hs_snapshot_root_get(s, root, &r) < 0)
		return (size_t)snprintf(buf, size, "root");
	const char *name = r.name != HS_NO_STRING ? hs_snapshot_string(s, r.name, NULL) : "";
	const char *detail = r.detail != HS_NO_STRING ? hs_snapshot_string(s, r.detail, NULL) : "";
	switch (r.kind) {
	case HS_ROOT_MODULE:
		return (size_t)snprintf(buf, size, "module %s", name);
	case HS_ROOT_FRAME:
		return (size_t)snprintf(buf, size, "%s%s%s", name, detail[0] ? " " : "", detail);
	case HS_ROOT_LOCAL:
		return (size_t)snprintf(buf, size, "local %s of %s", detail, name);
	case HS_ROOT_HELD:
		if (r.excess == 0)
			return (size_t)snprintf(buf, size, "immortal (kept by the interpreter)");
		return (size_t)snprintf(buf, size, "held from C (%" PRIu32 " references not in the graph)",
		                        r.excess);
	default:
		return (size_t)snprintf(buf, size, "%s%s%s%s%s", hs_root_kind_name(r.kind),
		                        name[0] ? " " : "", name, detail[0] ? " " : "", detail);
	}
}

cJSON *hs_render__root_json(const hs_snapshot *s, uint32_t root)
{
	hs_snapshot_root r;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = 1;
	if (hs_snapshot_root_get(s, root, &r) < 0) {
		ok &= cJSON_AddStringToObject(o, "kind", "unknown") != NULL;
	} else {
		ok &= cJSON_AddStringToObject(o, "kind", hs_root_kind_name(r.kind)) != NULL;
		if (r.name != HS_NO_STRING)
			ok &= cJSON_AddStringToObject(o, "name", hs_snapshot_string(s, r.name, NULL)) != NULL;
		else
			ok &= cJSON_AddNullToObject(o, "name") != NULL;
		if (r.detail != HS_NO_STRING)
			ok &= cJSON_AddStringToObject(o, "detail", hs_snapshot_string(s, r.detail, NULL)) != NULL;
		else
			ok &= cJSON_AddNullToObject(o, "detail") != NULL;
		if (r.kind == HS_ROOT_HELD)
			ok &= cJSON_AddItemToObject(o, "excess", hs_render__num(r.excess));
		char t[512];
		hs_render_root_text(t, sizeof(t), s, root);
		ok &= cJSON_AddStringToObject(o, "text", t) != NULL;
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* {"address", "type", "size", "value"?} (+ "retained" when d) */
cJSON *hs_render__object_json(const hs_snapshot *s, uint32_t node, const hs_dominators *d)
{
	const hs_graph *g = hs_snapshot_graph(s);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = cJSON_AddItemToObject(o, "address", hs_render__address_json(g->address[node]));
	ok &= cJSON_AddStringToObject(o, "type", hs_snapshot_node_type_name(s, node)) != NULL;
	ok &= cJSON_AddItemToObject(o, "size", hs_render__num(hs_graph_node_size(g, node)));
	if (d)
		ok &= cJSON_AddItemToObject(o, "retained", hs_render__num(hs_dominators_retained(d, node)));
	char v[256];
	if (g->value[node] != HS_NO_VALUE) {
		hs_snapshot_node_value_repr(s, node, v, sizeof(v));
		ok &= cJSON_AddStringToObject(o, "value", v) != NULL;
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* "type 'value'" for a table cell */
static void object_cell(char *buf, size_t size, const hs_snapshot *s, uint32_t node)
{
	const hs_graph *g = hs_snapshot_graph(s);
	char v[64];
	if (g->value[node] != HS_NO_VALUE && hs_snapshot_node_value_repr(s, node, v, sizeof(v)) > 0)
		snprintf(buf, size, "%s %s", hs_snapshot_node_type_name(s, node), v);
	else
		snprintf(buf, size, "%s", hs_snapshot_node_type_name(s, node));
}

char *hs_render__path_text(const hs_snapshot *s, const hs_path *p)
{
	size_t n = hs_paths_format(NULL, 0, s, p);
	char *t = hs_malloc(n + 1);
	if (t)
		hs_paths_format(t, n + 1, s, p);
	return t;
}

static cJSON *step_json(const hs_snapshot *s, const hs_path_step *st)
{
	const hs_graph *g = hs_snapshot_graph(s);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = cJSON_AddStringToObject(o, "type", hs_snapshot_type_get(s, st->type)
	                                             ? hs_snapshot_type_get(s, st->type)->name : "?") != NULL;
	if (st->edge == HS_NO_EDGE) {
		ok &= cJSON_AddNullToObject(o, "label") != NULL;
	} else if (st->collapsed) {
		ok &= cJSON_AddStringToObject(o, "label", st->label_kind == HS_LABEL_KEY ? "['<key>']"
		                                                                         : "[<i>]") != NULL;
	} else {
		char lab[256];
		hs_snapshot_edge_label(s, st->edge, lab, sizeof(lab));
		ok &= cJSON_AddStringToObject(o, "label", lab) != NULL;
	}
	ok &= cJSON_AddStringToObject(o, "label_kind", hs_render__label_kind(st->label_kind)) != NULL;
	ok &= cJSON_AddBoolToObject(o, "collapsed", st->collapsed) != NULL;
	ok &= cJSON_AddBoolToObject(o, "elided", st->elided) != NULL;
	ok &= cJSON_AddItemToObject(o, "distinct", hs_render__num(st->distinct));
	ok &= cJSON_AddItemToObject(o, "bytes", hs_render__num(st->bytes));
	ok &= cJSON_AddItemToObject(o, "example", hs_render__address_json(g->address[st->example]));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *hs_render__path_json(const hs_snapshot *s, const hs_path *p)
{
	const hs_graph *g = hs_snapshot_graph(s);
	cJSON *o = cJSON_CreateObject();
	char *text = hs_render__path_text(s, p);
	int ok = o && text;
	if (ok) {
		ok &= cJSON_AddStringToObject(o, "text", text) != NULL;
		ok &= cJSON_AddItemToObject(o, "count", hs_render__num(p->count));
		ok &= cJSON_AddItemToObject(o, "bytes", hs_render__num(p->bytes));
		ok &= cJSON_AddItemToObject(o, "example", hs_render__address_json(g->address[p->example]));
		cJSON *root = hs_render__root_json(s, p->root);
		ok &= root && cJSON_AddItemToObject(o, "root", root);
		cJSON *steps = cJSON_AddArrayToObject(o, "steps");
		ok &= steps != NULL;
		for (size_t i = 0; ok && i < p->step_count; i++) {
			cJSON *st = step_json(s, &p->steps[i]);
			ok &= st && cJSON_AddItemToArray(steps, st);
		}
	}
	hs_free(text);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *count_bytes(uint64_t c, uint64_t b)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddItemToObject(o, "count", hs_render__num(c)) ||
	          !cJSON_AddItemToObject(o, "bytes", hs_render__num(b)))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int add(cJSON *o, const char *k, cJSON *v)
{
	return v && cJSON_AddItemToObject(o, k, v);
}

static size_t top_of(size_t top, size_t rows)
{
	return top && top < rows ? top : rows;
}

/* ------------------------------------------------------------------ */
/* allocation sites (snapshots dumped while heapsnap.track() was on)   */

/* "file:line (function)"; "" when the allocation of `node` is unknown */
static void alloc_cell(char *buf, size_t size, const hs_snapshot *s, uint32_t node)
{
	hs_node_alloc a;
	hs_site si;
	buf[0] = '\0';
	if (!hs_snapshot_node_alloc(s, node, &a))
		return;
	if (a.site == HS_NO_SITE || hs_snapshot_site(s, a.site, &si) < 0)
		snprintf(buf, size, "(no Python frame)");
	else
		snprintf(buf, size, "%s:%u (%s)", si.file, si.line, si.function);
}

/* {"file", "line", "function", "time_ms"} or null */
static cJSON *alloc_json(const hs_snapshot *s, uint32_t node)
{
	hs_node_alloc a;
	hs_site si;
	if (!hs_snapshot_node_alloc(s, node, &a))
		return cJSON_CreateNull();
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = 1;
	if (a.site == HS_NO_SITE || hs_snapshot_site(s, a.site, &si) < 0) {
		ok &= cJSON_AddNullToObject(o, "file") != NULL;
		ok &= cJSON_AddNullToObject(o, "line") != NULL;
		ok &= cJSON_AddNullToObject(o, "function") != NULL;
	} else {
		ok &= cJSON_AddStringToObject(o, "file", si.file) != NULL;
		ok &= cJSON_AddItemToObject(o, "line", hs_render__num(si.line));
		ok &= cJSON_AddStringToObject(o, "function", si.function) != NULL;
	}
	ok &= cJSON_AddItemToObject(o, "time_ms", hs_render__num(a.time_ms));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The object holding the target on path `p`: the step before the last. */
static uint32_t path_holder(const hs_path *p)
{
	return p->step_count >= 2 ? p->steps[p->step_count - 2].example : HS_NO_NODE;
}

static int paths_sites_text(FILE *f, const hs_snapshot *s, const hs_paths *p)
{
	if (!hs_snapshot_has_sites(s) || !p->path_count)
		return 0;
	fprintf(f, "\nallocated at (the example object of each path, and its holder):\n");
	for (size_t i = 0; i < p->path_count; i++) {
		const hs_path *pa = &p->paths[i];
		char t[1200], h[1200], addr[24];
		alloc_cell(t, sizeof(t), s, pa->example);
		hs_render__address(addr, sizeof(addr), hs_snapshot_graph(s)->address[pa->example]);
		fprintf(f, "  %zu. %s %s: %s", i + 1, hs_snapshot_node_type_name(s, pa->example), addr,
		        t[0] ? t : "unknown (allocated before tracking started, or not sampled)");
		uint32_t holder = path_holder(pa);
		if (holder != HS_NO_NODE) {
			alloc_cell(h, sizeof(h), s, holder);
			if (h[0])
				fprintf(f, "; held by %s allocated at %s", hs_snapshot_node_type_name(s, holder), h);
		}
		fputc('\n', f);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* paths                                                               */

int hs_render_paths_table(FILE *f, const hs_snapshot *s, const hs_paths *p, int indent)
{
	hs_table *t;
	HS_TRY(hs_table_new(&t, 3));
	hs_table_column(t, 0, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 1, "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "path", HS_ALIGN_LEFT);
	int rc = 0;
	char c[32], b[32];
	for (size_t i = 0; rc == 0 && i < p->path_count; i++) {
		char *text = hs_render__path_text(s, &p->paths[i]);
		if (!text) {
			rc = HS_ENOMEM;
			break;
		}
		hs_render_count(c, sizeof(c), p->paths[i].count);
		hs_render_size(b, sizeof(b), p->paths[i].bytes);
		const char *cells[3] = { c, b, text };
		rc = hs_table_row(t, cells);
		hs_free(text);
	}
	if (rc == 0 && p->omitted_count) {
		char more[64];
		hs_render_count(c, sizeof(c), p->omitted_count);
		hs_render_size(b, sizeof(b), p->omitted_bytes);
		snprintf(more, sizeof(more), "(%" PRIu64 " more paths)", p->group_count - p->path_count);
		const char *cells[3] = { c, b, more };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, indent);
	hs_table_free(t);
	return rc;
}

int hs_render_paths_text(FILE *f, const hs_snapshot *s, const hs_paths *p, const char *what)
{
	char c[32], b[32];
	hs_render_count(c, sizeof(c), p->target_count);
	hs_render_size(b, sizeof(b), p->target_bytes);
	uint64_t reach = p->target_count - p->garbage_count;
	fprintf(f, "%s: %s (%s %s, %s); %" PRIu64 " retention path%s\n", hs_snapshot_path(s), what, c,
	        p->target_count == 1 ? "object" : "objects", b, p->group_count,
	        p->group_count == 1 ? "" : "s");
	if (reach)
		HS_TRY(hs_render_paths_table(f, s, p, 0));
	if (p->garbage_count) {
		hs_render_count(c, sizeof(c), p->garbage_count);
		hs_render_size(b, sizeof(b), p->garbage_bytes);
		fprintf(f, "%s%s %s (%s) reachable from no root: garbage awaiting the cyclic GC "
		           "(see 'heapsnap garbage')\n", reach ? "\n" : "", c,
		        p->garbage_count == 1 ? "object" : "objects", b);
	}
	return paths_sites_text(f, s, p);
}

int hs_render_paths_json(cJSON **out, const hs_snapshot *s, const hs_paths *p)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= add(o, "targets", count_bytes(p->target_count, p->target_bytes));
	ok &= add(o, "garbage", count_bytes(p->garbage_count, p->garbage_bytes));
	ok &= add(o, "groups", hs_render__num(p->group_count));
	cJSON *arr = cJSON_AddArrayToObject(o, "paths");
	ok &= arr != NULL;
	for (size_t i = 0; ok && i < p->path_count; i++) {
		cJSON *pj = hs_render__path_json(s, &p->paths[i]);
		ok &= pj && cJSON_AddItemToArray(arr, pj);
		if (ok && hs_snapshot_has_sites(s)) {
			uint32_t holder = path_holder(&p->paths[i]);
			ok &= add(pj, "allocated_at", alloc_json(s, p->paths[i].example));
			ok &= add(pj, "holder_allocated_at",
			          holder == HS_NO_NODE ? cJSON_CreateNull() : alloc_json(s, holder));
		}
	}
	cJSON *other = ok ? count_bytes(p->omitted_count, p->omitted_bytes) : NULL;
	ok &= add(o, "other", other);
	if (ok)
		ok &= add(other, "groups", hs_render__num(p->group_count - p->path_count));
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}

/* ------------------------------------------------------------------ */
/* retained                                                            */

/* The retention path of one object, as text; NULL on failure. */
static char *one_path(const hs_snapshot *s, const hs_reach *r, uint32_t node)
{
	hs_paths *p = NULL;
	hs_paths_options po = HS_PATHS_OPTIONS_INIT;
	po.limit = 1;
	if (hs_paths_find(&p, s, r, &node, 1, &po) < 0)
		return NULL;
	char *t = p->path_count ? hs_render__path_text(s, &p->paths[0]) : hs_strdup("(unreachable)");
	hs_paths_free(p);
	return t;
}

static void pct(char *buf, size_t size, uint64_t part, uint64_t whole)
{
	if (!whole)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.1f%%", 100.0 * (double)part / (double)whole);
}

/* The one line that says which figure is which. */
#define FREEABLE_LEGEND                                                                      \
	"retained: bytes reachable only through the object (dominator tree); freeable: what "  \
	"dropping it frees, weakref callbacks run (identity maps, WeakValueDictionary, "        \
	"finalize: an estimate)"

/* Rows past this get no freeable figure (FREEABLE_NONE: "-", JSON null):
 * each may cost a reachability pass over the whole graph, so `--top 0`
 * over a heap with weakref callbacks would be quadratic. */
#define FREEABLE_ROWS_MAX 200
#define FREEABLE_NONE UINT64_MAX

/* Freeable sizes of the shown rows: objects (`nodes`), or every instance
 * of each type row as one set. *differs when one differs from retained. */
static int freeable_rows(uint64_t **out, int *differs, const hs_snapshot *s,
                         const hs_dominators *d, const uint32_t *nodes,
                         const hs_retained_type *rows, size_t n)
{
	*out = NULL;
	*differs = 0;
	hs_freeable *f = NULL;
	uint64_t *fr = hs_calloc(n ? n : 1, sizeof(uint64_t));
	if (!fr)
		return HS_ENOMEM;
	int rc = hs_freeable_new(&f, s, d);
	for (size_t i = FREEABLE_ROWS_MAX; i < n; i++)
		fr[i] = FREEABLE_NONE;
	if (n > FREEABLE_ROWS_MAX)
		n = FREEABLE_ROWS_MAX;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		hs_freeable_result r;
		if (nodes) {
			rc = hs_freeable_compute(&r, f, &nodes[i], 1);
		} else if (!hs_freeable_callbacks(f)) {
			r.freeable = r.retained = rows[i].retained; /* no callback: the same set */
		} else {
			uint32_t *sel = NULL;
			size_t ns = 0;
			rc = hs_retention_select_type(&sel, &ns, s, hs_snapshot_type_get(s, rows[i].type)->name);
			if (rc == 0)
				rc = hs_freeable_compute(&r, f, sel, ns);
			hs_free(sel);
		}
		if (rc == 0) {
			fr[i] = r.freeable;
			*differs |= r.freeable != r.retained;
		}
	}
	hs_freeable_free(f);
	if (rc < 0) {
		hs_free(fr);
		return rc;
	}
	*out = fr;
	return 0;
}

int hs_render_retained_text(FILE *f, const hs_snapshot *s, const hs_dominators *d,
                            const hs_reach *r, int by_type, size_t top)
{
	const hs_dominators_stats *st = hs_dominators_stats_get(d);
	char c[32], b[32], u[32], x[32], sz[32], fb[32];
	hs_render_count(c, sizeof(c), st->reachable_count);
	hs_render_size(b, sizeof(b), st->reachable_bytes);
	hs_render_count(u, sizeof(u), st->unreachable_count);
	fprintf(f, "%s: %s reachable objects, %s; %s unreachable (garbage)\n", hs_snapshot_path(s), c,
	        b, u);
	hs_table *t = NULL;
	uint64_t *fr = NULL;
	uint32_t *tops = NULL;
	int differs = 0, rc = 0;
	if (by_type) {
		size_t n;
		const hs_retained_type *rows = hs_dominators_types(d, &n);
		size_t k = top_of(top, n);
		HS_TRY(freeable_rows(&fr, &differs, s, d, NULL, rows, k));
		/* the freeable column only where it says something */
		int fc = differs ? 1 : 0;
		if ((rc = hs_table_new(&t, 5 + fc)) < 0)
			goto done;
		hs_table_column(t, 0, "type", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
		hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
		hs_table_column(t, 3, "retained", HS_ALIGN_RIGHT);
		if (fc)
			hs_table_column(t, 4, "freeable", HS_ALIGN_RIGHT);
		hs_table_column(t, 4 + fc, "share", HS_ALIGN_RIGHT);
		for (size_t i = 0; rc == 0 && i < k; i++) {
			hs_render_count(c, sizeof(c), rows[i].count);
			hs_render_size(b, sizeof(b), rows[i].bytes);
			hs_render_size(u, sizeof(u), rows[i].retained);
			if (fr[i] == FREEABLE_NONE)
				snprintf(fb, sizeof(fb), "-");
			else
				hs_render_size(fb, sizeof(fb), fr[i]);
			pct(x, sizeof(x), rows[i].retained, st->reachable_bytes);
			const char *name = hs_snapshot_type_get(s, rows[i].type)->name;
			const char *cells[6] = { name, c, b, u, fc ? fb : x, x };
			rc = hs_table_row(t, cells);
		}
		if (rc == 0 && k < n) {
			char more[64];
			snprintf(more, sizeof(more), "(%zu more types)", n - k);
			const char *cells[6] = { more, "", "", "", "", "" };
			rc = hs_table_row(t, cells);
		}
	} else {
		size_t n = 0;
		HS_TRY(hs_dominators_top(&tops, &n, d, HS_NO_NODE, top ? top : SIZE_MAX));
		if ((rc = freeable_rows(&fr, &differs, s, d, tops, NULL, n)) < 0)
			goto done;
		int sites = hs_snapshot_has_sites(s), fc = differs ? 1 : 0;
		if ((rc = hs_table_new(&t, (sites ? 7 : 6) + fc)) < 0)
			goto done;
		hs_table_column(t, 0, "retained", HS_ALIGN_RIGHT);
		if (fc)
			hs_table_column(t, 1, "freeable", HS_ALIGN_RIGHT);
		hs_table_column(t, 1 + fc, "share", HS_ALIGN_RIGHT);
		hs_table_column(t, 2 + fc, "size", HS_ALIGN_RIGHT);
		hs_table_column(t, 3 + fc, "address", HS_ALIGN_LEFT);
		hs_table_column(t, 4 + fc, "object", HS_ALIGN_LEFT);
		hs_table_column(t, 5 + fc, "path", HS_ALIGN_LEFT);
		if (sites)
			hs_table_column(t, 6 + fc, "allocated at", HS_ALIGN_LEFT);
		const hs_graph *g = hs_snapshot_graph(s);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			uint32_t v = tops[i];
			char obj[160], addr[24];
			hs_render_size(u, sizeof(u), hs_dominators_retained(d, v));
			if (fr[i] == FREEABLE_NONE)
				snprintf(fb, sizeof(fb), "-");
			else
				hs_render_size(fb, sizeof(fb), fr[i]);
			pct(x, sizeof(x), hs_dominators_retained(d, v), st->reachable_bytes);
			hs_render_size(sz, sizeof(sz), hs_graph_node_size(g, v));
			hs_render__address(addr, sizeof(addr), g->address[v]);
			object_cell(obj, sizeof(obj), s, v);
			char *path = one_path(s, r, v);
			if (!path) {
				rc = HS_ENOMEM;
				break;
			}
			char at[1200];
			alloc_cell(at, sizeof(at), s, v);
			const char *all[8] = { u, fb, x, sz, addr, obj, path, at };
			const char *cells[8];
			for (int k = 0, j = 0; k < 8; k++)
				if (fc || k != 1)
					cells[j++] = all[k];
			rc = hs_table_row(t, cells);
			hs_free(path);
		}
	}
	if (rc == 0 && differs)
		fprintf(f, "%s\n", FREEABLE_LEGEND);
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
done:
	hs_free(tops);
	hs_free(fr);
	hs_table_free(t);
	return rc;
}

int hs_render_retained_json(cJSON **out, const hs_snapshot *s, const hs_dominators *d,
                            const hs_reach *r, int by_type, size_t top)
{
	*out = NULL;
	const hs_dominators_stats *st = hs_dominators_stats_get(d);
	uint64_t *fr = NULL;
	uint32_t *tops = NULL;
	int differs;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= cJSON_AddStringToObject(o, "by", by_type ? "type" : "object") != NULL;
	ok &= add(o, "top", hs_render__num(top));
	ok &= add(o, "reachable", count_bytes(st->reachable_count, st->reachable_bytes));
	cJSON *un = ok ? cJSON_CreateObject() : NULL;
	ok &= add(o, "unreachable", un);
	if (ok)
		ok &= add(un, "count", hs_render__num(st->unreachable_count));
	if (ok)
		ok &= add(o, "max_depth", hs_render__num(st->max_depth));
	if (by_type) {
		size_t n;
		const hs_retained_type *rows = hs_dominators_types(d, &n);
		size_t k = top_of(top, n);
		int rc = freeable_rows(&fr, &differs, s, d, NULL, rows, k);
		if (rc < 0) {
			cJSON_Delete(o);
			return rc;
		}
		cJSON *arr = ok ? cJSON_AddArrayToObject(o, "types") : NULL;
		ok &= arr != NULL;
		for (size_t i = 0; ok && i < k; i++) {
			cJSON *row = count_bytes(rows[i].count, rows[i].bytes);
			ok &= row && cJSON_AddItemToArray(arr, row);
			if (!ok)
				break;
			ok &= cJSON_AddStringToObject(row, "name", hs_snapshot_type_get(s, rows[i].type)->name) != NULL;
			ok &= add(row, "retained", hs_render__num(rows[i].retained));
			ok &= add(row, "freeable", fr[i] == FREEABLE_NONE ? cJSON_CreateNull() : hs_render__num(fr[i]));
		}
		if (ok)
			ok &= add(o, "types_total", hs_render__num(n));
	} else {
		size_t n = 0;
		int rc = hs_dominators_top(&tops, &n, d, HS_NO_NODE, top ? top : SIZE_MAX);
		if (rc == 0)
			rc = freeable_rows(&fr, &differs, s, d, tops, NULL, n);
		if (rc < 0) {
			hs_free(tops);
			cJSON_Delete(o);
			return rc;
		}
		cJSON *arr = ok ? cJSON_AddArrayToObject(o, "objects") : NULL;
		ok &= arr != NULL;
		for (size_t i = 0; ok && i < n; i++) {
			cJSON *row = hs_render__object_json(s, tops[i], d);
			ok &= row && cJSON_AddItemToArray(arr, row);
			if (!ok)
				break;
			ok &= add(row, "freeable", fr[i] == FREEABLE_NONE ? cJSON_CreateNull() : hs_render__num(fr[i]));
			hs_paths *p = NULL;
			hs_paths_options po = HS_PATHS_OPTIONS_INIT;
			po.limit = 1;
			if (hs_paths_find(&p, s, r, &tops[i], 1, &po) < 0) {
				ok = 0;
				break;
			}
			if (p->path_count)
				ok &= add(row, "path", hs_render__path_json(s, &p->paths[0]));
			if (ok && hs_snapshot_has_sites(s))
				ok &= add(row, "allocated_at", alloc_json(s, tops[i]));
			hs_paths_free(p);
		}
	}
	hs_free(tops);
	hs_free(fr);
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dominators                                                          */

static uint32_t root_index_of(const hs_reach *r, uint32_t node)
{
	return r ? hs_reach_root_index(r, node) : HS_NO_NODE;
}

int hs_render_dominators_text(FILE *f, const hs_snapshot *s, const hs_dominators *d,
                              const hs_reach *r, uint32_t node, const uint32_t *chain,
                              size_t n)
{
	const hs_graph *g = hs_snapshot_graph(s);
	char obj[160], addr[24], u[32], sz[32];
	object_cell(obj, sizeof(obj), s, node);
	hs_render__address(addr, sizeof(addr), g->address[node]);
	hs_render_size(u, sizeof(u), hs_dominators_retained(d, node));
	fprintf(f, "%s: %s %s retains %s; dominated by %zu object%s up to its root\n",
	        hs_snapshot_path(s), addr, obj, u, n - 1, n == 2 ? "" : "s");
	hs_table *t;
	HS_TRY(hs_table_new(&t, 5));
	hs_table_column(t, 0, "retained", HS_ALIGN_RIGHT);
	hs_table_column(t, 1, "size", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "address", HS_ALIGN_LEFT);
	hs_table_column(t, 3, "object", HS_ALIGN_LEFT);
	hs_table_column(t, 4, "root", HS_ALIGN_LEFT);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint32_t v = chain[i];
		char root[256] = "";
		uint32_t ri = root_index_of(r, v);
		if (ri != HS_NO_NODE)
			hs_render_root_text(root, sizeof(root), s, ri);
		hs_render_size(u, sizeof(u), hs_dominators_retained(d, v));
		hs_render_size(sz, sizeof(sz), hs_graph_node_size(g, v));
		hs_render__address(addr, sizeof(addr), g->address[v]);
		object_cell(obj, sizeof(obj), s, v);
		const char *cells[5] = { u, sz, addr, obj, root };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	if (rc == 0) {
		char *path = one_path(s, r, node);
		if (!path)
			return HS_ENOMEM;
		fprintf(f, "shortest path: %s\n", path);
		hs_free(path);
	}
	return rc;
}

int hs_render_dominators_json(cJSON **out, const hs_snapshot *s, const hs_dominators *d,
                              const hs_reach *r, uint32_t node, const uint32_t *chain,
                              size_t n)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= add(o, "object", hs_render__object_json(s, node, d));
	cJSON *arr = ok ? cJSON_AddArrayToObject(o, "chain") : NULL;
	ok &= arr != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		cJSON *row = hs_render__object_json(s, chain[i], d);
		ok &= row && cJSON_AddItemToArray(arr, row);
		uint32_t ri = root_index_of(r, chain[i]);
		if (ok && ri != HS_NO_NODE)
			ok &= add(row, "root", hs_render__root_json(s, ri));
	}
	if (ok) {
		hs_paths *p = NULL;
		hs_paths_options po = HS_PATHS_OPTIONS_INIT;
		po.limit = 1;
		if (hs_paths_find(&p, s, r, &node, 1, &po) < 0)
			ok = 0;
		else if (p->path_count)
			ok &= add(o, "path", hs_render__path_json(s, &p->paths[0]));
		hs_paths_free(p);
	}
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}

/* ------------------------------------------------------------------ */
/* garbage                                                             */

static int type_rows(hs_table *t, const hs_snapshot *s, const hs_garbage_type *rows, size_t n,
                     size_t top)
{
	char c[32], b[32];
	size_t k = top_of(top, n);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < k; i++) {
		hs_render_count(c, sizeof(c), rows[i].count);
		hs_render_size(b, sizeof(b), rows[i].bytes);
		const char *cells[3] = { hs_snapshot_type_get(s, rows[i].type)->name, c, b };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && k < n) {
		uint64_t oc = 0, ob = 0;
		for (size_t i = k; i < n; i++)
			oc += rows[i].count, ob += rows[i].bytes;
		char more[64];
		snprintf(more, sizeof(more), "(%zu more types)", n - k);
		hs_render_count(c, sizeof(c), oc);
		hs_render_size(b, sizeof(b), ob);
		const char *cells[3] = { more, c, b };
		rc = hs_table_row(t, cells);
	}
	return rc;
}

static void cycle_types(char *buf, size_t size, const hs_snapshot *s, const hs_garbage_cycle *cy)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t j = 0; j < cy->type_count && len + 1 < size; j++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s x%" PRIu64, j ? ", " : "",
		                        hs_snapshot_type_get(s, cy->types[j].type)->name,
		                        cy->types[j].count);
}

int hs_render_garbage_text(FILE *f, const hs_snapshot *s, const hs_garbage *gb, size_t top)
{
	char c[32], b[32];
	hs_render_count(c, sizeof(c), gb->count);
	hs_render_size(b, sizeof(b), gb->bytes);
	if (!gb->count) {
		fprintf(f, "%s: no garbage: every object is reachable from a root\n", hs_snapshot_path(s));
		return 0;
	}
	fprintf(f, "%s: %s unreachable %s, %s: garbage awaiting the cyclic GC (reachable from no "
	           "root; nothing retains it)\n", hs_snapshot_path(s), c,
	        gb->count == 1 ? "object" : "objects", b);
	hs_table *t;
	HS_TRY(hs_table_new(&t, 3));
	hs_table_column(t, 0, "type", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
	int rc = type_rows(t, s, gb->types, gb->type_count, top);
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	if (rc < 0)
		return rc;
	hs_render_count(c, sizeof(c), gb->cyclic_count);
	hs_render_size(b, sizeof(b), gb->cyclic_bytes);
	fprintf(f, "\n%" PRIu64 " cycle%s (%s objects, %s)%s\n", gb->cycle_count,
	        gb->cycle_count == 1 ? "" : "s", c, b, gb->cycle_count ? ":" : "");
	if (!gb->shown_cycles)
		return 0;
	HS_TRY(hs_table_new(&t, 4));
	hs_table_column(t, 0, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 1, "bytes", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "example", HS_ALIGN_LEFT);
	hs_table_column(t, 3, "types", HS_ALIGN_LEFT);
	const hs_graph *g = hs_snapshot_graph(s);
	for (size_t i = 0; rc == 0 && i < gb->shown_cycles; i++) {
		const hs_garbage_cycle *cy = &gb->cycles[i];
		char addr[24], types[512];
		hs_render_count(c, sizeof(c), cy->count);
		hs_render_size(b, sizeof(b), cy->bytes);
		hs_render__address(addr, sizeof(addr), g->address[cy->example]);
		cycle_types(types, sizeof(types), s, cy);
		const char *cells[4] = { c, b, addr, types };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && gb->shown_cycles < gb->cycle_count) {
		char more[64];
		snprintf(more, sizeof(more), "(%" PRIu64 " more cycles)", gb->cycle_count - gb->shown_cycles);
		const char *cells[4] = { "", "", "", more };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	return rc;
}

static cJSON *gtype_json(const hs_snapshot *s, const hs_garbage_type *t)
{
	cJSON *o = count_bytes(t->count, t->bytes);
	if (o && !cJSON_AddStringToObject(o, "name", hs_snapshot_type_get(s, t->type)->name)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int hs_render_garbage_json(cJSON **out, const hs_snapshot *s, const hs_garbage *gb, size_t top)
{
	*out = NULL;
	const hs_graph *g = hs_snapshot_graph(s);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= add(o, "top", hs_render__num(top));
	ok &= add(o, "total", count_bytes(gb->count, gb->bytes));
	cJSON *arr = ok ? cJSON_AddArrayToObject(o, "types") : NULL;
	ok &= arr != NULL;
	size_t k = top_of(top, gb->type_count);
	uint64_t oc = 0, ob = 0;
	for (size_t i = 0; ok && i < gb->type_count; i++) {
		if (i >= k) {
			oc += gb->types[i].count, ob += gb->types[i].bytes;
			continue;
		}
		cJSON *row = gtype_json(s, &gb->types[i]);
		ok &= row && cJSON_AddItemToArray(arr, row);
	}
	cJSON *other = ok ? count_bytes(oc, ob) : NULL;
	ok &= add(o, "other", other);
	if (ok)
		ok &= add(other, "groups", hs_render__num(gb->type_count - k));
	cJSON *cyc = ok ? cJSON_AddObjectToObject(o, "cycles") : NULL;
	ok &= cyc != NULL;
	if (ok) {
		ok &= add(cyc, "count", hs_render__num(gb->cycle_count));
		ok &= add(cyc, "objects", hs_render__num(gb->cyclic_count));
		ok &= add(cyc, "bytes", hs_render__num(gb->cyclic_bytes));
	}
	cJSON *shown = ok ? cJSON_AddArrayToObject(cyc, "shown") : NULL;
	ok &= shown != NULL;
	for (size_t i = 0; ok && i < gb->shown_cycles; i++) {
		const hs_garbage_cycle *cy = &gb->cycles[i];
		cJSON *row = count_bytes(cy->count, cy->bytes);
		ok &= row && cJSON_AddItemToArray(shown, row);
		if (!ok)
			break;
		ok &= add(row, "example", hs_render__object_json(s, cy->example, NULL));
		cJSON *ts = cJSON_AddArrayToObject(row, "types");
		ok &= ts != NULL;
		for (size_t j = 0; ok && j < cy->type_count; j++) {
			cJSON *tj = gtype_json(s, &cy->types[j]);
			ok &= tj && cJSON_AddItemToArray(ts, tj);
		}
	}
	(void)g;
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
