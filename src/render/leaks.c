/* render/leaks.c: `heapsnap leaks`: growth in every interval and its root cause. */
#include <inttypes.h>
#include <string.h>
#include "render/render_internal.h"
#include "util/alloc.h"

static int64_t per_interval(uint64_t first, uint64_t last, size_t n)
{
	int64_t d = (int64_t)(last - first);
	return n > 1 ? d / (int64_t)(n - 1) : d;
}

size_t hs_render_leak_cause(char *buf, size_t size, const hs_snapshot *last, const hs_leaks *l,
                            const hs_leak_type *t)
{
	size_t n = l->snapshot_count;
	char c[32], b[32], r[32], rd[128] = "";
	hs_render_count_delta(c, sizeof(c), per_interval(t->count[0], t->count[n - 1], n));
	hs_render_size_delta(b, sizeof(b), per_interval(t->bytes[0], t->bytes[n - 1], n));
	const hs_leak_holder *h = &t->holder;
	if (h->node == HS_NO_NODE || !h->path || !h->path->path_count) {
		if (t->grows & HS_LEAK_COUNT)
			return (size_t)snprintf(buf, size, "%s %s per snapshot (%s), held through several "
			                        "roots: no single object holds most of the growth", c, t->name, b);
		return (size_t)snprintf(buf, size, "%s grows by %s per snapshot, held through several "
		                        "roots: no single object holds most of the growth", t->name, b);
	}
	char *path = hs_render__path_text(last, &h->path->paths[0]);
	if (!path)
		return (size_t)snprintf(buf, size, "%s", t->name);
	hs_render_size(r, sizeof(r), h->retained_at[n - 1]);
	if (h->retained_at[0] != HS_LEAK_ABSENT) {
		char d[32];
		hs_render_size_delta(d, sizeof(d), per_interval(h->retained_at[0], h->retained_at[n - 1], n));
		snprintf(rd, sizeof(rd), " (%s per snapshot)", d);
	}
	if (h->freeable > h->retained_at[n - 1]) {
		/* weakref callbacks free more than the dominator figure says */
		char fb[32];
		size_t rl = strlen(rd);
		hs_render_size(fb, sizeof(fb), h->freeable);
		snprintf(rd + rl, sizeof(rd) - rl, "; dropping it frees %s, weakref callbacks run", fb);
	}
	size_t len;
	if (t->new_count) {
		char hc[32];
		hs_render_count(hc, sizeof(hc), h->held_count);
		len = (size_t)snprintf(buf, size, "%s holds +%s %s per snapshot, retaining %s%s", path, hc,
		                       t->name, r, rd);
	} else {
		len = (size_t)snprintf(buf, size, "%s holds the growth of %s (%s per snapshot), "
		                       "retaining %s%s", path, t->name, b, r, rd);
	}
	hs_free(path);
	return len;
}

static void series(char *buf, size_t size, const uint64_t *v, size_t n, int bytes)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && len + 1 < size; i++) {
		if (n > 4 && i == 1) { /* first → … → last two */
			len += (size_t)snprintf(buf + len, size - len, " → …");
			i = n - 3;
			continue;
		}
		char x[32];
		if (v[i] == HS_LEAK_ABSENT)
			snprintf(x, sizeof(x), "-");
		else if (bytes)
			hs_render_size(x, sizeof(x), v[i]);
		else
			hs_render_count(x, sizeof(x), v[i]);
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " → " : "", x);
	}
}

int hs_render_leaks_text(FILE *f, const hs_snapshot *const *snaps, const hs_leaks *l)
{
	size_t n = l->snapshot_count;
	const hs_snapshot *last = snaps[n - 1];
	fprintf(f, "%zu snapshots: %s … %s\n", n, hs_snapshot_path(snaps[0]), hs_snapshot_path(last));
	if (!l->found) {
		fprintf(f, "no growth found across %zu snapshots: no type grows in every interval and "
		           "no object keeps gaining referents\n", n);
		return 0;
	}
	char a[256], b[256], c[32], d[32], line[1024];
	int rc = 0;
	hs_table *t;
	if (l->leaking_types) {
		fprintf(f, "\n%" PRIu64 " type%s grow%s in every interval:\n", l->leaking_types,
		        l->leaking_types == 1 ? "" : "s", l->leaking_types == 1 ? "s" : "");
		HS_TRY(hs_table_new(&t, 5));
		hs_table_column(t, 0, "type", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "objects", HS_ALIGN_LEFT);
		hs_table_column(t, 2, "bytes", HS_ALIGN_LEFT);
		hs_table_column(t, 3, "per snapshot", HS_ALIGN_RIGHT);
		hs_table_column(t, 4, "", HS_ALIGN_RIGHT);
		for (size_t i = 0; rc == 0 && i < l->type_count; i++) {
			const hs_leak_type *lt = &l->types[i];
			series(a, sizeof(a), lt->count, n, 0);
			series(b, sizeof(b), lt->bytes, n, 1);
			hs_render_count_delta(c, sizeof(c), per_interval(lt->count[0], lt->count[n - 1], n));
			hs_render_size_delta(d, sizeof(d), per_interval(lt->bytes[0], lt->bytes[n - 1], n));
			const char *cells[5] = { lt->name, a, b, c, d };
			rc = hs_table_row(t, cells);
		}
		if (rc == 0 && l->type_count < l->leaking_types) {
			snprintf(a, sizeof(a), "(%" PRIu64 " more types)", l->leaking_types - l->type_count);
			const char *cells[5] = { a, "", "", "", "" };
			rc = hs_table_row(t, cells);
		}
		if (rc == 0)
			rc = hs_table_print(t, f, 2);
		hs_table_free(t);
		for (size_t i = 0; rc == 0 && i < l->type_count; i++) {
			const hs_leak_type *lt = &l->types[i];
			hs_render_leak_cause(line, sizeof(line), last, l, lt);
			fprintf(f, "\nroot cause of %s: %s\n", lt->name, line);
			if (lt->new_count) {
				hs_render_count(c, sizeof(c), lt->new_count);
				hs_render_size(d, sizeof(d), lt->new_bytes);
				fprintf(f, "  new in %s: %s %s, %s, retained through:\n", hs_snapshot_path(last), c,
				        lt->new_count == 1 ? "object" : "objects", d);
			} else {
				fprintf(f, "  instances that grew in %s, retained through:\n", hs_snapshot_path(last));
			}
			if (lt->paths && lt->paths->path_count)
				rc = hs_render_paths_table(f, last, lt->paths, 4);
		}
	}
	if (rc == 0 && l->growing_objects) {
		fprintf(f, "\n%" PRIu64 " object%s in every snapshot keep%s growing:\n", l->growing_objects,
		        l->growing_objects == 1 ? "" : "s", l->growing_objects == 1 ? "s" : "");
		HS_TRY(hs_table_new(&t, 5));
		hs_table_column(t, 0, "address", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "type", HS_ALIGN_LEFT);
		hs_table_column(t, 2, "references", HS_ALIGN_LEFT);
		hs_table_column(t, 3, "retained", HS_ALIGN_LEFT);
		hs_table_column(t, 4, "path", HS_ALIGN_LEFT);
		for (size_t i = 0; rc == 0 && i < l->object_count; i++) {
			const hs_leak_object *o = &l->objects[i];
			char addr[24];
			hs_render__address(addr, sizeof(addr), o->address);
			series(a, sizeof(a), o->out_degree, n, 0);
			series(b, sizeof(b), o->retained, n, 1);
			char *path = o->path && o->path->path_count
			             ? hs_render__path_text(last, &o->path->paths[0]) : hs_strdup("");
			if (!path) {
				rc = HS_ENOMEM;
				break;
			}
			const char *cells[5] = { addr, o->type, a, b, path };
			rc = hs_table_row(t, cells);
			hs_free(path);
		}
		if (rc == 0 && l->object_count < l->growing_objects) {
			snprintf(a, sizeof(a), "(%" PRIu64 " more)", l->growing_objects - l->object_count);
			const char *cells[5] = { a, "", "", "", "" };
			rc = hs_table_row(t, cells);
		}
		if (rc == 0)
			rc = hs_table_print(t, f, 2);
		hs_table_free(t);
	}
	return rc;
}

static cJSON *u64_array(const uint64_t *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *x = v[i] == HS_LEAK_ABSENT ? cJSON_CreateNull() : hs_render__num(v[i]);
		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static cJSON *grows_array(unsigned g)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ HS_LEAK_COUNT, "count" }, { HS_LEAK_BYTES, "bytes" },
		{ HS_LEAK_REFERENTS, "referents" }, { HS_LEAK_RETAINED, "retained" },
	};
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < sizeof(names) / sizeof(names[0]); i++)
		if (g & names[i].bit) {
			cJSON *x = cJSON_CreateString(names[i].name);
			if (!x || !cJSON_AddItemToArray(a, x)) {
				cJSON_Delete(a);
				return NULL;
			}
		}
	return a;
}

static int add(cJSON *o, const char *k, cJSON *v)
{
	return v && cJSON_AddItemToObject(o, k, v);
}

static cJSON *paths_array(const hs_snapshot *s, const hs_paths *p)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && p && i < p->path_count; i++) {
		cJSON *x = hs_render__path_json(s, &p->paths[i]);
		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static cJSON *holder_json(const hs_snapshot *last, const hs_leaks *l, const hs_leak_type *t)
{
	const hs_leak_holder *h = &t->holder;
	if (h->node == HS_NO_NODE)
		return cJSON_CreateNull();
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int ok = add(o, "object", hs_render__object_json(last, h->node, NULL));
	if (ok)
		ok &= add(cJSON_GetObjectItemCaseSensitive(o, "object"), "retained",
		          hs_render__num(h->retained_at[l->snapshot_count - 1]));
	ok &= add(o, "freeable", hs_render__num(h->freeable));
	ok &= add(o, "held_count", hs_render__num(h->held_count));
	ok &= add(o, "held_bytes", hs_render__num(h->held_bytes));
	ok &= add(o, "retained_at", u64_array(h->retained_at, l->snapshot_count));
	if (h->path && h->path->path_count)
		ok &= add(o, "path", hs_render__path_json(last, &h->path->paths[0]));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int hs_render_leaks_json(cJSON **out, const hs_snapshot *const *snaps, const hs_leaks *l)
{
	*out = NULL;
	size_t n = l->snapshot_count;
	const hs_snapshot *last = snaps[n - 1];
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_render__oom();
	int ok = 1;
	cJSON *sn = cJSON_AddArrayToObject(o, "snapshots");
	ok &= sn != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		cJSON *x = cJSON_CreateObject();
		ok &= x && cJSON_AddItemToArray(sn, x);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(x, "file", hs_snapshot_path(snaps[i])) != NULL;
		ok &= add(x, "reachable_count", hs_render__num(l->reachable_count[i]));
		ok &= add(x, "reachable_bytes", hs_render__num(l->reachable_bytes[i]));
	}
	ok &= cJSON_AddBoolToObject(o, "found", l->found) != NULL;
	if (!l->found) {
		char m[96];
		snprintf(m, sizeof(m), "no growth found across %zu snapshots", n);
		ok &= cJSON_AddStringToObject(o, "message", m) != NULL;
	}
	ok &= add(o, "types_total", hs_render__num(l->leaking_types));
	cJSON *ty = cJSON_AddArrayToObject(o, "types");
	ok &= ty != NULL;
	char line[1024];
	for (size_t i = 0; ok && i < l->type_count; i++) {
		const hs_leak_type *t = &l->types[i];
		cJSON *x = cJSON_CreateObject();
		ok &= x && cJSON_AddItemToArray(ty, x);
		if (!ok)
			break;
		ok &= cJSON_AddStringToObject(x, "name", t->name) != NULL;
		ok &= add(x, "grows", grows_array(t->grows));
		ok &= add(x, "count", u64_array(t->count, n));
		ok &= add(x, "bytes", u64_array(t->bytes, n));
		ok &= add(x, "count_per_snapshot", hs_render__snum(per_interval(t->count[0], t->count[n - 1], n)));
		ok &= add(x, "bytes_per_snapshot", hs_render__snum(per_interval(t->bytes[0], t->bytes[n - 1], n)));
		ok &= add(x, "new_count", hs_render__num(t->new_count));
		ok &= add(x, "new_bytes", hs_render__num(t->new_bytes));
		ok &= add(x, "paths", paths_array(last, t->paths));
		ok &= add(x, "holder", holder_json(last, l, t));
		hs_render_leak_cause(line, sizeof(line), last, l, t);
		ok &= cJSON_AddStringToObject(x, "cause", line) != NULL;
	}
	ok &= add(o, "objects_total", hs_render__num(l->growing_objects));
	cJSON *ob = cJSON_AddArrayToObject(o, "objects");
	ok &= ob != NULL;
	for (size_t i = 0; ok && i < l->object_count; i++) {
		const hs_leak_object *lo = &l->objects[i];
		cJSON *x = hs_render__object_json(last, lo->node, NULL);
		ok &= x && cJSON_AddItemToArray(ob, x);
		if (!ok)
			break;
		ok &= add(x, "grows", grows_array(lo->grows));
		ok &= add(x, "out_degree", u64_array(lo->out_degree, n));
		ok &= add(x, "retained", u64_array(lo->retained, n));
		if (lo->path && lo->path->path_count)
			ok &= add(x, "path", hs_render__path_json(last, &lo->path->paths[0]));
	}
	if (!ok) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
