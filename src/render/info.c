/* render/info.c: `heapsnap info`, the metadata and counts of a snapshot. */
#include <inttypes.h>
#include <string.h>
#include "render/render_internal.h"
#include "util/buf.h"

#define LINE 1024

typedef struct kv {
	hs_table *t;
	int rc;
} kv;

static void row(kv *k, const char *key, const char *value)
{
	if (k->rc < 0 || !value || !value[0])
		return;
	const char *cells[2] = { key, value };
	k->rc = hs_table_row(k->t, cells);
}

/* append "label value" to a comma-separated line when the figure exists */
static void add_size(char *line, size_t size, const hs_snapshot *s, const char *label,
                     const char *path)
{
	uint64_t v;
	if (!hs_render__meta_u64(s, path, &v))
		return;
	char h[32];
	hs_render_size(h, sizeof(h), v);
	size_t n = strlen(line);
	snprintf(line + n, size - n, "%s%s %s", n ? ", " : "", label, h);
}

static void add_field(char *line, size_t size, const hs_snapshot *s, const char *label,
                      const char *path)
{
	const cJSON *v = hs_render__meta(s, path);
	if (!v || cJSON_IsNull(v) || (cJSON_IsArray(v) && !cJSON_GetArraySize(v)))
		return; /* unknown figures are left out, not printed as "-" */
	char t[256];
	hs_render__json_short(v, t, sizeof(t));
	size_t n = strlen(line);
	snprintf(line + n, size - n, "%s%s%s%s", n ? ", " : "", label, label[0] ? " " : "", t);
}

static void argv_line(const hs_snapshot *s, char *line, size_t size)
{
	const cJSON *argv = hs_render__meta(s, "argv"), *a;
	line[0] = '\0';
	if (!cJSON_IsArray(argv))
		return;
	size_t n = 0;
	cJSON_ArrayForEach(a, argv) {
		if (!cJSON_IsString(a) || n + 2 >= size)
			continue;
		int quote = strpbrk(a->valuestring, " \t'\"") != NULL || !a->valuestring[0];
		n += (size_t)snprintf(line + n, size - n, quote ? "%s'%s'" : "%s%s", n ? " " : "",
		                      a->valuestring);
		if (n >= size)
			n = size - 1;
	}
}

static void threads_line(const hs_snapshot *s, char *line, size_t size)
{
	const cJSON *th = hs_render__meta(s, "threads"), *t;
	line[0] = '\0';
	if (!cJSON_IsArray(th))
		return;
	size_t n = (size_t)snprintf(line, size, "%d", cJSON_GetArraySize(th));
	const char *sep = ": ";
	cJSON_ArrayForEach(t, th) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
		const cJSON *nid = cJSON_GetObjectItemCaseSensitive(t, "native_id");
		int main_ = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "main"));
		int daemon = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "daemon"));
		char nbuf[32] = "";
		if (cJSON_IsNumber(nid))
			snprintf(nbuf, sizeof(nbuf), "native %.0f", nid->valuedouble);
		char attrs[96];
		snprintf(attrs, sizeof(attrs), "%s%s%s%s%s", main_ ? "main" : "",
		         main_ && daemon ? ", " : "", daemon ? "daemon" : "",
		         (main_ || daemon) && nbuf[0] ? ", " : "", nbuf);
		const cJSON *ident = cJSON_GetObjectItemCaseSensitive(t, "ident");
		char unnamed[48] = "(unnamed)";
		if (cJSON_IsNumber(ident))
			snprintf(unnamed, sizeof(unnamed), "(unnamed %.0f)", ident->valuedouble);
		if (n + 2 < size)
			n += (size_t)snprintf(line + n, size - n, "%s%s%s%s%s", sep,
			                      cJSON_IsString(name) ? name->valuestring : unnamed,
			                      attrs[0] ? " (" : "", attrs, attrs[0] ? ")" : "");
		if (n >= size)
			n = size - 1;
		sep = ", ";
	}
}

int hs_render_info_text(FILE *f, const hs_snapshot *s)
{
	kv k = { NULL, 0 };
	HS_TRY(hs_table_new(&k.t, 2));
	const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
	char line[LINE], a[64], b[64], c[64];

	row(&k, "snapshot", hs_snapshot_path(s));
	line[0] = '\0';
	add_field(line, sizeof(line), s, "pid", "pid");
	row(&k, "process", line);
	argv_line(s, line, sizeof(line));
	row(&k, "argv", line);
	line[0] = '\0';
	add_field(line, sizeof(line), s, "", "executable");
	row(&k, "executable", line);

	line[0] = '\0';
	add_field(line, sizeof(line), s, "", "python.version");
	if (!line[0] && st->python_version) {
		unsigned v = st->python_version;
		snprintf(line, sizeof(line), "%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff);
	}
	{
		char extra[256] = "";
		add_field(extra, sizeof(extra), s, "", "python.implementation");
		add_field(extra, sizeof(extra), s, "build", "python.build");
		if (cJSON_IsTrue(hs_render__meta(s, "python.debug")))
			strcat(extra, extra[0] ? ", debug" : "debug");
		if (extra[0]) {
			size_t n = strlen(line);
			snprintf(line + n, sizeof(line) - n, " (%s)", extra);
		}
	}
	row(&k, "python", line);

	line[0] = '\0';
	add_field(line, sizeof(line), s, "", "time_iso");
	if (!line[0])
		add_field(line, sizeof(line), s, "unix", "time");
	row(&k, "time", line);

	line[0] = '\0';
	add_size(line, sizeof(line), s, "rss", "process.rss");
	add_size(line, sizeof(line), s, "pss", "process.pss");
	add_size(line, sizeof(line), s, "uss", "process.uss");
	add_size(line, sizeof(line), s, "vms", "process.vms");
	add_size(line, sizeof(line), s, "swap", "process.swap");
	row(&k, "memory", line);

	line[0] = '\0';
	if (hs_render__meta(s, "gc.enabled"))
		strcpy(line, cJSON_IsTrue(hs_render__meta(s, "gc.enabled")) ? "enabled" : "disabled");
	add_field(line, sizeof(line), s, "counts", "gc.counts");
	add_field(line, sizeof(line), s, "thresholds", "gc.thresholds");
	add_field(line, sizeof(line), s, "collections", "gc.collections");
	add_field(line, sizeof(line), s, "frozen", "gc.frozen");
	row(&k, "gc", line);

	line[0] = '\0';
	uint64_t v;
	if (hs_render__meta_u64(s, "pymalloc.allocated_blocks", &v)) {
		hs_render_count(a, sizeof(a), v);
		snprintf(line, sizeof(line), "%s blocks allocated", a);
	}
	add_field(line, sizeof(line), s, "arenas", "pymalloc.arenas_allocated");
	add_field(line, sizeof(line), s, "highwater", "pymalloc.arenas_highwater");
	add_size(line, sizeof(line), s, "in arenas", "pymalloc.bytes_in_arenas");
	row(&k, "pymalloc", line);

	threads_line(s, line, sizeof(line));
	row(&k, "threads", line);

	line[0] = '\0';
	add_field(line, sizeof(line), s, "pause", "dump.pause_seconds");
	add_field(line, sizeof(line), s, "walk", "dump.walk_seconds");
	add_field(line, sizeof(line), s, "collect", "dump.collect");
	add_field(line, sizeof(line), s, "__sizeof__ calls", "dump.sizeof_calls");
	add_field(line, sizeof(line), s, "errors", "dump.sizeof_errors");
	add_field(line, sizeof(line), s, "hook", "dump.hook_version");
	row(&k, "dump", line);
	line[0] = '\0';
	add_field(line, sizeof(line), s, "", "dump.notes");
	row(&k, "notes", line);

	hs_render_count(a, sizeof(a), st->nodes);
	hs_render_size(b, sizeof(b), st->total_bytes);
	hs_render_count(c, sizeof(c), st->edges);
	snprintf(line, sizeof(line), "%s objects (%s), %s references", a, b, c);
	hs_render_count(a, sizeof(a), st->types);
	hs_render_count(b, sizeof(b), st->strings);
	{
		size_t n = strlen(line);
		snprintf(line + n, sizeof(line) - n, ", %s types, %s strings", a, b);
	}
	row(&k, "contents", line);

	/* the size model (format 1.1) and what in it is an estimate */
	line[0] = '\0';
	if (st->size_model_allocator) {
		snprintf(line, sizeof(line), "allocator blocks");
		add_field(line, sizeof(line), s, "estimated", "dump.sizes_estimated");
		add_field(line, sizeof(line), s, "native buffers", "dump.native_buffers");
		if (st->native_bytes) {
			size_t n = strlen(line);
			hs_render_size(a, sizeof(a), st->native_bytes);
			snprintf(line + n, sizeof(line) - n, " (%s)", a);
		}
		if (st->device_bytes) {
			size_t n = strlen(line);
			hs_render_size(a, sizeof(a), st->device_bytes);
			snprintf(line + n, sizeof(line) - n, ", device memory %s", a);
		}
	} else {
		snprintf(line, sizeof(line), "as sys.getsizeof reports (older snapshot)");
	}
	row(&k, "sizes", line);

	line[0] = '\0';
	for (unsigned kind = HS_ROOT_MODULE; kind <= HS_ROOT_KIND_MAX; kind++) {
		size_t n = strlen(line);
		hs_render_count(a, sizeof(a), st->roots_by_kind[kind]);
		snprintf(line + n, sizeof(line) - n, "%s%s %s", n ? ", " : "", a,
		         kind == HS_ROOT_HELD ? "held from C" : hs_root_kind_name(kind));
	}
	row(&k, "roots", line);

	if (st->dangling_edges || st->dangling_keys || st->dangling_roots) {
		hs_render_count(a, sizeof(a), st->dangling_edges);
		hs_render_count(b, sizeof(b), st->dangling_keys);
		hs_render_count(c, sizeof(c), st->dangling_roots);
		snprintf(line, sizeof(line),
		         "%s reference%s, %s key%s, %s root%s naming no object of the snapshot (dropped)",
		         a, st->dangling_edges == 1 ? "" : "s", b, st->dangling_keys == 1 ? "" : "s",
		         c, st->dangling_roots == 1 ? "" : "s");
		row(&k, "dangling", line);
	}
	int rc = k.rc < 0 ? k.rc : hs_table_print(k.t, f, 0);
	hs_table_free(k.t);
	return rc;
}

int hs_render_info_json(cJSON **out, const hs_snapshot *s)
{
	const hs_snapshot_stats *st = hs_snapshot_stats_get(s);
	cJSON *o = cJSON_CreateObject();
	*out = NULL;
	if (!o)
		return hs_render__oom();
	cJSON_AddStringToObject(o, "file", hs_snapshot_path(s));
	cJSON_AddItemToObject(o, "python_hexversion", hs_render__num(st->python_version));
	cJSON *counts = cJSON_AddObjectToObject(o, "counts");
	if (counts) {
		cJSON_AddItemToObject(counts, "objects", hs_render__num(st->nodes));
		cJSON_AddItemToObject(counts, "bytes", hs_render__num(st->total_bytes));
		cJSON_AddItemToObject(counts, "references", hs_render__num(st->edges));
		cJSON_AddItemToObject(counts, "types", hs_render__num(st->types));
		cJSON_AddItemToObject(counts, "strings", hs_render__num(st->strings));
		cJSON *roots = cJSON_AddObjectToObject(counts, "roots");
		for (unsigned kind = HS_ROOT_MODULE; roots && kind <= HS_ROOT_KIND_MAX; kind++)
			cJSON_AddItemToObject(roots, hs_root_kind_name(kind),
			                      hs_render__num(st->roots_by_kind[kind]));
		cJSON *d = cJSON_AddObjectToObject(counts, "dangling");
		if (d) {
			cJSON_AddItemToObject(d, "references", hs_render__num(st->dangling_edges));
			cJSON_AddItemToObject(d, "keys", hs_render__num(st->dangling_keys));
			cJSON_AddItemToObject(d, "roots", hs_render__num(st->dangling_roots));
		}
	}
	const cJSON *meta = hs_snapshot_meta(s);
	cJSON_AddItemToObject(o, "meta", meta ? cJSON_Duplicate(meta, 1) : cJSON_CreateObject());
	/* cJSON add functions fail silently: verify the shape once */
	if (!cJSON_GetObjectItem(o, "meta") || !counts || cJSON_GetArraySize(counts) != 7) {
		cJSON_Delete(o);
		return hs_render__oom();
	}
	*out = o;
	return 0;
}
