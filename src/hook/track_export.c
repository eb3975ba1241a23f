/*
 * hook/track_export.c: the tracker's live set into a snapshot (see
 * track_export.h and formats/snapshot-v1.md, SITES and ALLOCS).
 *
 * The live set is copied under hs_tk_lock into libc memory (the lock makes
 * this thread "busy": its own malloc calls pass through the hooks), then
 * the lock is dropped and the copy is written: only the stacks that live
 * blocks name, and only the locations those stacks name, renumbered
 * densely; blocks sorted by address so the address stream delta-codes
 * well. The code objects the locations name are held by the tracker's
 * tables, which only a Python call (tracking stopping) releases: the GIL is
 * held from the copy to the end, so they stay alive.
 */
#include "track_export.h"
#include "track_internal.h"

#include <stdlib.h>
#include <string.h>

#include "heapsnap/errors.h"
#include "util/buf.h"

typedef struct blk {
	uintptr_t ptr;
	uint64_t size;
	uint32_t stack;
	uint32_t tick;
} blk;

static int cmp_blk(const void *pa, const void *pb)
{
	const blk *a = pa, *b = pb;
	return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

void hs_hook__sites_release(hs_sites_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nprefixes; i++)
		free(ctx->prefixes[i]);
	free(ctx->prefixes);
	memset(ctx, 0, sizeof(*ctx));
}

static void add_prefix(hs_sites_ctx *ctx, const char *p, size_t len)
{
	while (len > 1 && p[len - 1] == '/')
		len--;
	char **np = realloc(ctx->prefixes, (ctx->nprefixes + 1) * sizeof(char *));
	if (!np)
		return;
	ctx->prefixes = np;
	char *c = malloc(len + 2);
	if (!c)
		return;
	memcpy(c, p, len);
	c[len] = '/';
	c[len + 1] = '\0';
	ctx->prefixes[ctx->nprefixes++] = c;
}

/* The prefixes heapsnap.track folds (heapsnap/_track.py, is_library):
 * <prefix>/lib/pythonX.Y for sys.prefix, base_prefix, exec_prefix and
 * base_exec_prefix (stdlib; site-packages is matched by name), and the
 * heapsnap package. Read from sys attributes, importing nothing: the
 * tracker is on, and objects made here would be charged to dump()'s line. */
static void gather_prefixes(hs_sites_ctx *ctx)
{
	static const char *const attrs[] = { "prefix", "base_prefix", "exec_prefix", "base_exec_prefix" };
	char buf[4096];
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		PyObject *v = PySys_GetObject(attrs[i]); /* borrowed */
		Py_ssize_t len;
		const char *u = v && PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &len) : NULL;
		if (!u) {
			PyErr_Clear();
			continue;
		}
		int n = snprintf(buf, sizeof(buf), "%s/lib/python%d.%d", u, PY_MAJOR_VERSION, PY_MINOR_VERSION);
		if (n > 0 && (size_t)n < sizeof(buf))
			add_prefix(ctx, buf, (size_t)n);
	}
	PyObject *mods = PyImport_GetModuleDict();
	PyObject *pkg = mods ? PyDict_GetItemString(mods, "heapsnap") : NULL; /* borrowed */
	PyObject *file = pkg ? PyObject_GetAttrString(pkg, "__file__") : NULL;
	Py_ssize_t len;
	const char *u = file && PyUnicode_Check(file) ? PyUnicode_AsUTF8AndSize(file, &len) : NULL;
	if (u) {
		const char *slash = strrchr(u, '/');
		if (slash)
			add_prefix(ctx, u, (size_t)(slash - u));
	}
	Py_XDECREF(file);
	PyErr_Clear();
}

void hs_hook__sites_prepare(hs_sites_ctx *ctx, PyObject *module)
{
	memset(ctx, 0, sizeof(*ctx));
	PyObject *st = module ? PyObject_CallMethod(module, "_track_status", NULL) : NULL;
	if (!st || !PyDict_Check(st)) {
		Py_XDECREF(st);
		PyErr_Clear();
		return;
	}
	PyObject *active = PyDict_GetItemString(st, "active");
	PyObject *exact = PyDict_GetItemString(st, "exact");
	PyObject *mean = PyDict_GetItemString(st, "sample_bytes");
	if (active && PyObject_IsTrue(active) == 1) {
		ctx->active = 1;
		if (!(exact && PyObject_IsTrue(exact) == 1) && mean && PyLong_Check(mean)) {
			long long m = PyLong_AsLongLong(mean);
			ctx->sample_bytes = m > 0 ? (uint64_t)m : 0;
		}
	}
	PyErr_Clear();
	Py_DECREF(st);
	if (ctx->active)
		gather_prefixes(ctx);
}

static int is_library(const hs_sites_ctx *ctx, const char *f, size_t len)
{
	static const char numpy_dispatch[] = "<__array_function__ internals>"; /* numpy < 1.25 */
	if ((len >= 8 && memcmp(f, "<frozen ", 8) == 0) || memmem(f, len, "/site-packages/", 15) ||
	    memmem(f, len, "/dist-packages/", 15) ||
	    (len == sizeof(numpy_dispatch) - 1 && memcmp(f, numpy_dispatch, len) == 0))
		return 1;
	for (size_t i = 0; i < ctx->nprefixes; i++) {
		size_t pl = strlen(ctx->prefixes[i]);
		if (pl <= len && memcmp(f, ctx->prefixes[i], pl) == 0)
			return 1;
	}
	return 0;
}

/* A str's UTF-8 into the writer's string table; HS_NO_STRING when it is
 * not a str or cannot be read without allocating. */
static int put_str(hs_writer *w, hs_buf *tmp, PyObject *s, uint32_t *out)
{
	*out = HS_NO_STRING;
	hs_buf_clear(tmp);
	if (!s || !PyUnicode_Check(s))
		return 0;
	int trunc;
	int rc = hs_hook__str_utf8(tmp, s, 4096, &trunc);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return 0;
	return hs_writer_string(w, out, tmp->len ? (const char *)tmp->data : "", tmp->len);
}

typedef struct copy {
	blk *blocks;
	size_t nblocks;
	hs_tk_stack *stacks;
	uint32_t nstacks;
	uint32_t *frames;
	uint32_t nframes;
	hs_tk_loc *locs;
	uint32_t nlocs;
	PyObject **codes;
	uint32_t ncodes;
	/* detached entries (codes[i] NULL): their copied names, owned by the
	 * tables, which only tracking stopping frees (a Python call: the GIL
	 * held here keeps it from happening) */
	const char **dfile, **dname;
} copy;

static void copy_free(copy *c)
{
	free(c->blocks);
	free(c->stacks);
	free(c->frames);
	free(c->locs);
	free(c->codes);
	free(c->dfile);
	free(c->dname);
}

/* Under the lock: libc copies of the tables (0, or HS_ENOMEM). */
static int take_copy(copy *c)
{
	memset(c, 0, sizeof(*c));
	int rc = 0;
	hs_tk_lock();
	hs_tk_tables *t = &hs_tk_t;
	if (!t->live)
		goto out;
	c->blocks = malloc((t->nlive ? t->nlive : 1) * sizeof(blk));
	c->stacks = malloc((t->nstacks ? t->nstacks : 1) * sizeof(hs_tk_stack));
	c->frames = malloc((t->nframes ? t->nframes : 1) * sizeof(uint32_t));
	c->locs = malloc((t->nlocs ? t->nlocs : 1) * sizeof(hs_tk_loc));
	c->codes = malloc((t->ncodes ? t->ncodes : 1) * sizeof(PyObject *));
	c->dfile = malloc((t->ncodes ? t->ncodes : 1) * sizeof(char *));
	c->dname = malloc((t->ncodes ? t->ncodes : 1) * sizeof(char *));
	if (!c->blocks || !c->stacks || !c->frames || !c->locs || !c->codes || !c->dfile || !c->dname) {
		rc = HS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i <= t->live_mask; i++) {
		const hs_tk_entry *e = &t->live[i];
		if (!e->ptr || e->stack >= t->nstacks)
			continue;
		blk *b = &c->blocks[c->nblocks++];
		b->ptr = e->ptr;
		b->stack = e->stack;
		b->tick = e->tick;
		b->size = e->size;
		if (e->size == UINT32_MAX) {
			for (size_t k = 0; k < t->nbig; k++)
				if (t->big[k].ptr == e->ptr)
					b->size = t->big[k].size;
		}
	}
	memcpy(c->stacks, t->stacks, t->nstacks * sizeof(hs_tk_stack));
	c->nstacks = t->nstacks;
	memcpy(c->frames, t->frames, t->nframes * sizeof(uint32_t));
	c->nframes = t->nframes;
	memcpy(c->locs, t->locs, t->nlocs * sizeof(hs_tk_loc));
	c->nlocs = t->nlocs;
	for (uint32_t i = 0; i < t->ncodes; i++) {
		c->codes[i] = t->codes[i].code;
		c->dfile[i] = t->codes[i].file;
		c->dname[i] = t->codes[i].name;
	}
	c->ncodes = t->ncodes;
out:
	hs_tk_unlock();
	return rc;
}

int hs_hook__sites_write(hs_writer *w, const hs_sites_ctx *ctx, hs_sites_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!ctx->active)
		return 0;
	double t0 = hs_hook__now();
	copy c;
	int rc = take_copy(&c);
	if (rc < 0) {
		copy_free(&c);
		return hs_error_set(rc, "cannot copy the allocation tracker's tables: out of memory");
	}
	/* dense renumbering: stack_map / loc_map hold new id + 1 (0 = unused) */
	uint32_t *stack_map = calloc(c.nstacks + 1, sizeof(uint32_t));
	uint32_t *loc_map = calloc(c.nlocs + 1, sizeof(uint32_t));
	uint32_t *order_stacks = malloc((c.nstacks + 1) * sizeof(uint32_t));
	uint32_t *order_locs = malloc((c.nlocs + 1) * sizeof(uint32_t));
	uint32_t *out_frames = malloc((c.nframes + 1) * sizeof(uint32_t));
	uint32_t *out_len = malloc((c.nstacks + 1) * sizeof(uint32_t));
	hs_site_loc *out_locs = malloc((c.nlocs + 1) * sizeof(hs_site_loc));
	hs_buf tmp = HS_BUF_INIT;
	uint32_t ns = 0, nl = 0, nf = 0;
	if (!stack_map || !loc_map || !order_stacks || !order_locs || !out_frames || !out_len || !out_locs) {
		rc = hs_error_set(HS_ENOMEM, "cannot write the allocation sites: out of memory");
		goto done;
	}
	qsort(c.blocks, c.nblocks, sizeof(blk), cmp_blk);
	for (size_t i = 0; i < c.nblocks; i++) {
		uint32_t s = c.blocks[i].stack;
		if (!stack_map[s]) {
			stack_map[s] = ++ns;
			order_stacks[ns - 1] = s;
		}
	}
	for (uint32_t k = 0; k < ns; k++) {
		const hs_tk_stack *st = &c.stacks[order_stacks[k]];
		uint32_t n = 0;
		for (uint32_t f = 0; f < st->n && st->off + f < c.nframes; f++) {
			uint32_t l = c.frames[st->off + f];
			if (l >= c.nlocs || c.locs[l].code >= c.ncodes)
				continue;
			if (!loc_map[l]) {
				loc_map[l] = ++nl;
				order_locs[nl - 1] = l;
			}
			out_frames[nf + n++] = loc_map[l] - 1;
		}
		out_len[k] = n;
		nf += n;
	}
	for (uint32_t k = 0; k < nl; k++) {
		const hs_tk_loc *l = &c.locs[order_locs[k]];
		PyCodeObject *co = (PyCodeObject *)c.codes[l->code];
		if (!co) { /* detached: copied names */
			hs_site_loc *o = &out_locs[k];
			const char *fs = c.dfile[l->code] ? c.dfile[l->code] : "";
			const char *fn = c.dname[l->code] ? c.dname[l->code] : "";
			o->line = l->line > 0 ? (uint32_t)l->line : 0;
			o->flags = 0;
			if ((rc = hs_writer_string(w, &o->file, fs, strlen(fs))) < 0 ||
			    (rc = hs_writer_string(w, &o->function, fn, strlen(fn))) < 0)
				goto done;
			if (is_library(ctx, fs, strlen(fs)))
				o->flags |= HS_SITE_LIBRARY;
			continue;
		}
#if PY_VERSION_HEX >= 0x030B0000
		PyObject *fn = co->co_qualname;
#else
		PyObject *fn = co->co_name;
#endif
		hs_site_loc *o = &out_locs[k];
		o->line = l->line > 0 ? (uint32_t)l->line : 0;
		o->flags = 0;
		if ((rc = put_str(w, &tmp, co->co_filename, &o->file)) < 0)
			goto done;
		if (o->file != HS_NO_STRING && is_library(ctx, (const char *)tmp.data, tmp.len))
			o->flags |= HS_SITE_LIBRARY;
		if ((rc = put_str(w, &tmp, fn, &o->function)) < 0)
			goto done;
	}
	if ((rc = hs_writer_sites(w, ctx->sample_bytes, out_locs, nl, out_frames, out_len, ns)) < 0)
		goto done;
	for (size_t i = 0; i < c.nblocks; i++) {
		const blk *b = &c.blocks[i];
		hs_alloc_record a = { (uint64_t)b->ptr, stack_map[b->stack] - 1, b->size, b->tick };
		if ((rc = hs_writer_alloc(w, &a)) < 0)
			goto done;
	}
	res->blocks = c.nblocks;
	res->stacks = ns;
	res->locations = nl;
	res->seconds = hs_hook__now() - t0;
done:
	hs_buf_release(&tmp);
	free(stack_map);
	free(loc_map);
	free(order_stacks);
	free(order_locs);
	free(out_frames);
	free(out_len);
	free(out_locs);
	copy_free(&c);
	return rc;
}
