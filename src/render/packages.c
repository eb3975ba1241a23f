/*
 * render/packages.c: `heapsnap retained --by package`, as an aligned table
 * and as JSON (formats/retained.schema.json, by "package").
 */
#include <inttypes.h>
#include <string.h>
#include "heapsnap/packages.h"
#include "render/render_internal.h"
#include "util/alloc.h"

#define PACKAGES_LEGEND                                                                    \
	"retained: objects reachable only through the package's modules, taken as one set "   \
	"(dominator tree); mapped: resident bytes of the files it maps (extension modules, "  \
	"bundled libraries)"

static size_t shown(size_t top, size_t n)
{
	return top && top < n ? top : n;
}

static uint64_t total_of(const hs_package *p)
{
	return p->retained + (p->mapped == HS_PACKAGE_MAPPED_UNKNOWN ? 0 : p->mapped);
}

int hs_render_packages_text(FILE *f, const hs_snapshot *s, const hs_packages *p, size_t top)
{
	char a[32], b[32], c[32], d[32], e[32];
	hs_render_size(a, sizeof(a), p->retained);
	hs_render_size(b, sizeof(b), p->reachable_bytes);
	fprintf(f, "%s: %zu packages; their modules retain %s of %s reachable\n", hs_snapshot_path(s),
	        p->count, a, b);
	if (p->mappings_known) {
		uint64_t mapped = p->mapped_other;
		for (size_t i = 0; i < p->count; i++)
			mapped += p->packages[i].mapped;
		hs_render_size(a, sizeof(a), mapped);
		hs_render_size(b, sizeof(b), p->mapped_other);
		fprintf(f, "mapped files: %s resident, %s of it belongs to no package (interpreter, libc)\n",
		        a, b);
	} else {
		fprintf(f, "mappings unknown (snapshot without memory maps)\n");
	}
	fprintf(f, "%s\n", PACKAGES_LEGEND);
	hs_table *t;
	HS_TRY(hs_table_new(&t, 6));
	hs_table_column(t, 0, "package", HS_ALIGN_LEFT);
	hs_table_column(t, 1, "modules", HS_ALIGN_RIGHT);
	hs_table_column(t, 2, "objects", HS_ALIGN_RIGHT);
	hs_table_column(t, 3, "retained", HS_ALIGN_RIGHT);
	hs_table_column(t, 4, "mapped", HS_ALIGN_RIGHT);
	hs_table_column(t, 5, "total", HS_ALIGN_RIGHT);
	int rc = 0;
	size_t k = shown(top, p->count);
	for (size_t i = 0; rc == 0 && i < k; i++) {
		const hs_package *x = &p->packages[i];
		hs_render_count(a, sizeof(a), x->modules);
		hs_render_count(b, sizeof(b), x->count);
		hs_render_size(c, sizeof(c), x->retained);
		if (x->mapped == HS_PACKAGE_MAPPED_UNKNOWN)
			snprintf(d, sizeof(d), "-");
		else
			hs_render_size(d, sizeof(d), x->mapped);
		hs_render_size(e, sizeof(e), total_of(x));
		const char *cells[6] = { x->name, a, b, c, d, e };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0 && k < p->count) {
		char more[64];
		snprintf(more, sizeof(more), "(%zu more packages)", p->count - k);
		const char *cells[6] = { more, "", "", "", "", "" };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, f, 0);
	hs_table_free(t);
	return rc;
}

static int add(cJSON *o, const char *k, cJSON *v)
{
	return v && cJSON_AddItemToObject(o, k, v);
}

static cJSON *package_json(const hs_package *x)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = cJSON_AddStringToObject(o, "name", x->name) != NULL;
	ok &= add(o, "modules", hs_render__num(x->modules));
	ok &= add(o, "count", hs_render__num(x->count));
	ok &= add(o, "retained", hs_render__num(x->retained));
	if (x->mapped == HS_PACKAGE_MAPPED_UNKNOWN)
		ok &= cJSON_AddNullToObject(o, "mapped") != NULL;
	else
		ok &= add(o, "mapped", hs_render__num(x->mapped));
	ok &= add(o, "total", hs_render__num(total_of(x)));
	cJSON *files = ok ? cJSON_AddArrayToObject(o, "files") : NULL;
	ok &= files != NULL;
	for (size_t i = 0; ok && i < x->file_count; i++) {
		cJSON *fo = cJSON_CreateObject();
		ok &= fo && cJSON_AddItemToArray(files, fo);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(fo, "path", x->files[i].path) != NULL;
		ok &= add(fo, "rss", hs_render__num(x->files[i].rss));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int hs_render_packages_json(cJSON **out, const hs_snapshot *s, const hs_packages *p, size_t top)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = cJSON_AddStringToObject(o, "file", hs_snapshot_path(s)) != NULL;
	ok &= cJSON_AddStringToObject(o, "by", "package") != NULL;
	ok &= add(o, "top", hs_render__num(top));
	ok &= add(o, "retained", hs_render__num(p->retained));
	ok &= add(o, "reachable_bytes", hs_render__num(p->reachable_bytes));
	ok &= add(o, "mappings_known", cJSON_CreateBool(p->mappings_known));
	if (p->mappings_known)
		ok &= add(o, "mapped_other", hs_render__num(p->mapped_other));
	else
		ok &= cJSON_AddNullToObject(o, "mapped_other") != NULL;
	cJSON *arr = ok ? cJSON_AddArrayToObject(o, "packages") : NULL;
	ok &= arr != NULL;
	size_t k = shown(top, p->count);
	for (size_t i = 0; ok && i < k; i++) {
		cJSON *row = package_json(&p->packages[i]);
		ok &= row && cJSON_AddItemToArray(arr, row);
	}
	if (ok)
		ok &= add(o, "packages_total", hs_render__num(p->count));
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
