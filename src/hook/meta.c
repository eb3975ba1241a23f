/*
 * hook/meta.c: the META section (formats/snapshot-v1.md "META") and the
 * thread names, gathered before the walk.
 *
 * This is the only part of a dump that calls Python-level functions
 * (gc.get_stats, sys.getallocatedblocks, attribute reads on threading's
 * Thread objects). It runs before the walk and drops every object it made,
 * so none of them appears in the snapshot; what the walk needs later (the
 * thread names) is copied into C memory.
 */
#include "hook_internal.h"
#include "stats_internal.h"
#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Exported by every CPython 3.8-3.13; declared by internal headers only in some. */
PyAPI_FUNC(int) _PyObject_DebugMallocStats(FILE *out);

int hs_hook__meta_no_smaps;

double hs_hook__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* /proc                                                               */

/* The values of "Key:   123 kB" lines, as bytes ("Key: 12" lines without a
 * unit as they are); summed when a key repeats; -1 if absent. */
static void proc_fields(const char *path, const char *const *keys, long long *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = -1;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			if (strncmp(line, keys[i], kl) == 0 && line[kl] == ':') {
				char *end;
				long long v = strtoll(line + kl + 1, &end, 10);
				if (strstr(end, "kB"))
					v *= 1024;
				out[i] = (out[i] < 0 ? 0 : out[i]) + v;
			}
		}
	}
	fclose(f);
}

void hs_hook__proc_read(hs_proc_figures *p, int smaps)
{
	static const char *const status_keys[] = { "VmRSS", "VmSize", "VmSwap", "Threads" };
	static const char *const rollup_keys[] = { "Pss", "Private_Clean", "Private_Dirty", "Swap" };
	long long st[4], ru[4];
	proc_fields("/proc/self/status", status_keys, st, 4);
	if (smaps)
		proc_fields("/proc/self/smaps_rollup", rollup_keys, ru, 4);
	else
		ru[0] = ru[1] = ru[2] = ru[3] = -1;
	p->rss = st[0];
	p->vms = st[1];
	p->swap = st[2];
	p->threads = st[3];
	p->pss = ru[0];
	p->uss = ru[1] >= 0 && ru[2] >= 0 ? ru[1] + ru[2] : -1;
	p->swap_rollup = ru[3];
}

static void process_json(hs_json *j)
{
	hs_proc_figures p;
	/* smaps_rollup walks the page tables: about 20 ms per GiB of RSS, too
	 * slow for a fork-mode pause (and after the fork every page is shared
	 * with the child, so USS/PSS read later would be wrong): left out. */
	hs_hook__proc_read(&p, !hs_hook__meta_no_smaps);
	hs_json_open(j, "process", '{');
	if (p.rss >= 0)
		hs_json_int(j, "rss", p.rss);
	if (p.vms >= 0)
		hs_json_int(j, "vms", p.vms);
	if (p.uss >= 0)
		hs_json_int(j, "uss", p.uss);
	if (p.pss >= 0)
		hs_json_int(j, "pss", p.pss);
	if (p.swap_rollup >= 0)
		hs_json_int(j, "swap", p.swap_rollup);
	else if (p.swap >= 0)
		hs_json_int(j, "swap", p.swap);
	hs_json_close(j, '}');
}

/* ------------------------------------------------------------------ */
/* Python figures                                                      */

static PyObject *call0(PyObject *mod, const char *name)
{
	PyObject *f = PyObject_GetAttrString(mod, name);
	if (!f)
		return NULL;
	PyObject *r = PyObject_CallObject(f, NULL);
	Py_DECREF(f);
	return r;
}

/* A tuple/list of ints as a JSON array; null when it is not one. */
static void int_seq(hs_json *j, const char *key, PyObject *seq)
{
	if (!seq || !(PyTuple_Check(seq) || PyList_Check(seq))) {
		hs_json_null(j, key);
		return;
	}
	hs_json_open(j, key, '[');
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
		long long x = PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
		if (x == -1 && PyErr_Occurred())
			PyErr_Clear();
		hs_json_int(j, NULL, x);
	}
	hs_json_close(j, ']');
}

static void gc_json(hs_json *j, int enabled)
{
	PyObject *gc = PyImport_ImportModule("gc");
	hs_json_open(j, "gc", '{');
	hs_json_bool(j, "enabled", enabled);
	if (!gc) {
		PyErr_Clear();
		hs_json_close(j, '}');
		return;
	}
	PyObject *counts = call0(gc, "get_count");
	if (!counts)
		PyErr_Clear();
	int_seq(j, "counts", counts);
	Py_XDECREF(counts);
	PyObject *thr = call0(gc, "get_threshold");
	if (!thr)
		PyErr_Clear();
	int_seq(j, "thresholds", thr);
	Py_XDECREF(thr);

	PyObject *stats = call0(gc, "get_stats");
	if (stats && PyList_Check(stats)) {
		static const char *const fields[] = { "collections", "collected", "uncollectable" };
		for (size_t f = 0; f < 3; f++) {
			hs_json_open(j, fields[f], '[');
			for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stats); i++) {
				PyObject *d = PyList_GET_ITEM(stats, i);
				PyObject *v = PyDict_Check(d) ? PyDict_GetItemString(d, fields[f]) : NULL;
				long long x = v && PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
				if (x == -1 && PyErr_Occurred())
					PyErr_Clear();
				hs_json_int(j, NULL, x);
			}
			hs_json_close(j, ']');
		}
	} else {
		PyErr_Clear();
		hs_json_null(j, "collections");
	}
	Py_XDECREF(stats);
	PyObject *frozen = call0(gc, "get_freeze_count");
	if (frozen && PyLong_Check(frozen))
		hs_json_int(j, "frozen", PyLong_AsLongLong(frozen));
	else
		hs_json_null(j, "frozen");
	Py_XDECREF(frozen);
	PyErr_Clear();
	Py_DECREF(gc);
	hs_json_close(j, '}');
}

/* The number after the last '=' of a line, commas skipped; -1 if none. */
static long long after_equals(const char *line)
{
	const char *eq = strrchr(line, '=');
	if (!eq)
		return -1;
	long long v = 0;
	int digits = 0;
	for (const char *p = eq + 1; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			v = v * 10 + (*p - '0');
			digits++;
		}
	}
	return digits ? v : -1;
}

/* "class size pools blocks-in-use avail" rows of the size-class table. */
static int class_row(const char *line, long long *blocks)
{
	long long v[5];
	int n = 0;
	const char *p = line;
	while (n < 5) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			return 0;
		char *end;
		v[n++] = strtoll(p, &end, 10);
		p = end;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return 0;
	*blocks = v[3];
	return 1;
}

/* What _PyObject_DebugMallocStats prints, in malloc'ed memory (free()), or
 * NULL. C only: it reads pymalloc's arenas and writes to the FILE. */
static char *malloc_stats_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	int printed = _PyObject_DebugMallocStats(f);
	fclose(f);
	if (!printed) {
		free(text);
		return NULL;
	}
	return text;
}

static void pymalloc_parse(hs_pymalloc_figures *out, char *text)
{
	long long blocks = 0;
	int rows = 0;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		long long b;
		if (class_row(line, &b)) {
			blocks += b;
			rows++;
		} else if (strncmp(line, "# arenas allocated current", 26) == 0) {
			out->arenas_allocated = after_equals(line);
		} else if (strncmp(line, "# arenas allocated total", 24) == 0) {
			out->arenas_allocated_total = after_equals(line);
		} else if (strncmp(line, "# arenas reclaimed", 18) == 0) {
			out->arenas_reclaimed = after_equals(line);
		} else if (strncmp(line, "# arenas highwater mark", 23) == 0) {
			out->arenas_highwater = after_equals(line);
		} else if (strncmp(line, "# bytes in allocated blocks", 27) == 0) {
			out->bytes_in_use = after_equals(line);
		} else if (strncmp(line, "# bytes in available blocks", 27) == 0) {
			out->bytes_available = after_equals(line);
		} else if (strncmp(line, "Total", 5) == 0 && out->bytes_in_arenas < 0) {
			out->bytes_in_arenas = after_equals(line); /* the arenas' total comes first */
		}
		if (nl)
			*nl = '\n'; /* the text is parsed again (memory.c) */
		line = nl ? nl + 1 : NULL;
	}
	if (rows)
		out->blocks_in_use = blocks;
}

static void pymalloc_clear(hs_pymalloc_figures *out)
{
	out->arenas_allocated = out->arenas_allocated_total = out->arenas_reclaimed = -1;
	out->arenas_highwater = out->bytes_in_use = out->bytes_available = -1;
	out->bytes_in_arenas = out->blocks_in_use = -1;
}

int hs_hook__pymalloc_read(hs_pymalloc_figures *out)
{
	pymalloc_clear(out);
	char *text = malloc_stats_text();
	if (!text)
		return -1;
	pymalloc_parse(out, text);
	free(text);
	return 0;
}

/* pymalloc's own statistics, from the text of _PyObject_DebugMallocStats
 * (NULL: not printed). */
static void pymalloc_json(hs_json *j, char *text)
{
	hs_json_open(j, "pymalloc", '{');
	PyObject *sys = PyImport_ImportModule("sys");
	PyObject *blocks = sys ? call0(sys, "getallocatedblocks") : NULL;
	if (blocks && PyLong_Check(blocks))
		hs_json_int(j, "allocated_blocks", PyLong_AsLongLong(blocks));
	Py_XDECREF(blocks);
	Py_XDECREF(sys);
	PyErr_Clear();

	hs_pymalloc_figures pm;
	pymalloc_clear(&pm);
	if (text) {
		pymalloc_parse(&pm, text);
		if (pm.arenas_allocated >= 0)
			hs_json_int(j, "arenas_allocated", pm.arenas_allocated);
		if (pm.arenas_highwater >= 0)
			hs_json_int(j, "arenas_highwater", pm.arenas_highwater);
		if (pm.bytes_in_arenas >= 0)
			hs_json_int(j, "bytes_in_arenas", pm.bytes_in_arenas);
	}
	hs_json_close(j, '}');
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */

static char *pystr_dup(PyObject *s)
{
	if (!s || !PyUnicode_Check(s))
		return NULL;
	hs_buf b = HS_BUF_INIT;
	int trunc;
	if (hs_hook__str_utf8(&b, s, 200, &trunc) != 0 || hs_buf_put_u8(&b, 0) < 0) {
		hs_buf_release(&b);
		return NULL;
	}
	return (char *)b.data; /* hs_buf memory comes from hs_malloc */
}

static int add_thread(hs_meta *m, const hs_thread_info *t)
{
	hs_thread_info *n = hs_reallocarray(m->threads, m->nthreads + 1, sizeof(*n));
	if (!n)
		return -1;
	m->threads = n;
	m->threads[m->nthreads++] = *t;
	return 0;
}

static int attr_bool(PyObject *o, const char *name)
{
	PyObject *v = PyObject_GetAttrString(o, name);
	int r = -1;
	if (v)
		r = PyObject_IsTrue(v);
	Py_XDECREF(v);
	if (r < 0) {
		PyErr_Clear();
		r = -1;
	}
	return r;
}

/* threading._active (ident -> Thread), read without importing threading,
 * then every thread state of this interpreter that threading does not know. */
static int gather_threads(hs_meta *m)
{
	PyObject *modules = PyImport_GetModuleDict();
	PyObject *threading = modules ? PyDict_GetItemString(modules, "threading") : NULL;
	if (threading) {
		Py_INCREF(threading);
		PyObject *active = PyObject_GetAttrString(threading, "_active");
		PyObject *mainth = PyObject_GetAttrString(threading, "_main_thread");
		PyErr_Clear();
		if (active && PyDict_Check(active)) {
			PyObject *items = PyDict_Items(active); /* a copy: attribute reads may run code */
			for (Py_ssize_t i = 0; items && i < PyList_GET_SIZE(items); i++) {
				PyObject *kv = PyList_GET_ITEM(items, i);
				PyObject *k = PyTuple_GET_ITEM(kv, 0), *t = PyTuple_GET_ITEM(kv, 1);
				hs_thread_info ti = { 0 };
				ti.ident = PyLong_Check(k) ? PyLong_AsUnsignedLong(k) : 0;
				PyObject *name = PyObject_GetAttrString(t, "_name");
				PyErr_Clear();
				ti.name = pystr_dup(name);
				Py_XDECREF(name);
				ti.daemon = attr_bool(t, "_daemonic");
				PyObject *nid = PyObject_GetAttrString(t, "_native_id");
				if (nid && PyLong_Check(nid)) {
					ti.native_id = PyLong_AsUnsignedLong(nid);
					ti.has_native_id = 1;
				}
				Py_XDECREF(nid);
				PyErr_Clear();
				ti.main = t == mainth;
				if (ti.main && ti.has_native_id && ti.native_id != (unsigned long)getpid()) {
					/* threading keeps the parent's native id for the thread
					 * that survived os.fork() (3.8-3.13 reset only its
					 * ident): that thread is the child's first, its id the
					 * pid, unless the id names one of our threads */
					char task[64];
					snprintf(task, sizeof(task), "/proc/self/task/%lu", ti.native_id);
					if (access(task, F_OK) != 0)
						ti.native_id = (unsigned long)getpid();
				}
				if (add_thread(m, &ti) < 0) {
					hs_free(ti.name);
					Py_XDECREF(items);
					Py_XDECREF(active);
					Py_XDECREF(mainth);
					Py_DECREF(threading);
					PyErr_NoMemory();
					return -1;
				}
			}
			Py_XDECREF(items);
			PyErr_Clear();
		}
		Py_XDECREF(active);
		Py_XDECREF(mainth);
		Py_DECREF(threading);
	}
	PyInterpreterState *interp = PyThreadState_Get()->interp;
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
		if (hs_hook__meta_thread(m, ts->thread_id))
			continue;
		hs_thread_info ti = { 0 };
		ti.ident = ts->thread_id;
		ti.daemon = -1;
		if (ts->thread_id == hs_hook__main_thread_ident()) {
			/* threading was never imported: name the main thread as it would */
			ti.main = 1;
			ti.daemon = 0;
			ti.name = hs_strdup("MainThread");
		}
#if PY_VERSION_HEX >= 0x030B0000
		ti.native_id = ts->native_thread_id;
		ti.has_native_id = 1;
#endif
		if (add_thread(m, &ti) < 0) {
			PyErr_NoMemory();
			return -1;
		}
	}
	return 0;
}

const hs_thread_info *hs_hook__meta_thread(const hs_meta *m, unsigned long ident)
{
	for (size_t i = 0; i < m->nthreads; i++)
		if (m->threads[i].ident == ident)
			return &m->threads[i];
	return NULL;
}

void hs_hook__meta_release(hs_meta *m)
{
	for (size_t i = 0; i < m->nthreads; i++)
		hs_free(m->threads[i].name);
	hs_free(m->threads);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ */

int hs_hook__meta_gather(hs_meta *m, hs_json *j, int collect)
{
	memset(m, 0, sizeof(*m));
	m->gc_enabled = hs_hook__gc_enabled();
	if (gather_threads(m) < 0)
		return -1;

	hs_json_open(j, NULL, '{');
	hs_json_cstr(j, "format", "heapsnap-snapshot");
	hs_json_int(j, "pid", (long long)getpid());

	PyObject *argv = PySys_GetObject("argv"); /* borrowed */
	if (argv && PyList_Check(argv)) {
		hs_json_open(j, "argv", '[');
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(argv); i++)
			hs_json_pystr(j, NULL, PyList_GET_ITEM(argv, i));
		hs_json_close(j, ']');
	} else {
		hs_json_null(j, "argv");
	}
	hs_json_pystr(j, "executable", PySys_GetObject("executable"));

	hs_json_open(j, "python", '{');
	const char *ver = Py_GetVersion();
	hs_json_str(j, "version", ver, strcspn(ver, " "));
	PyObject *hex = PySys_GetObject("hexversion");
	hs_json_int(j, "hexversion", hex && PyLong_Check(hex) ? PyLong_AsLongLong(hex) : PY_VERSION_HEX);
	PyObject *impl = PySys_GetObject("implementation");
	PyObject *iname = impl ? PyObject_GetAttrString(impl, "name") : NULL;
	PyErr_Clear();
	if (iname)
		hs_json_pystr(j, "implementation", iname);
	else
		hs_json_cstr(j, "implementation", "cpython");
	Py_XDECREF(iname);
	hs_json_cstr(j, "build", Py_GetBuildInfo());
	hs_json_bool(j, "debug", PySys_GetObject("gettotalrefcount") != NULL);
	hs_json_close(j, '}');
	PyErr_Clear();

	struct timeval tv;
	gettimeofday(&tv, NULL);
	hs_json_double(j, "time", (double)tv.tv_sec + (double)tv.tv_usec * 1e-6);
	struct tm tm;
	time_t secs = tv.tv_sec;
	gmtime_r(&secs, &tm);
	char iso[64];
	snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
	hs_json_cstr(j, "time_iso", iso);

	process_json(j);
	gc_json(j, m->gc_enabled);
	char *stats = malloc_stats_text();
	pymalloc_json(j, stats);
	/* fork mode (no smaps): the child adds the mappings (memory.h) */
	hs_hook__memory_json(j, stats, !hs_hook__meta_no_smaps);
	free(stats);

	hs_json_open(j, "threads", '[');
	for (size_t i = 0; i < m->nthreads; i++) {
		const hs_thread_info *t = &m->threads[i];
		hs_json_open(j, NULL, '{');
		hs_json_uint(j, "ident", t->ident);
		if (t->has_native_id)
			hs_json_uint(j, "native_id", t->native_id);
		else
			hs_json_null(j, "native_id");
		hs_json_cstr(j, "name", t->name);
		if (t->daemon >= 0)
			hs_json_bool(j, "daemon", t->daemon);
		else
			hs_json_null(j, "daemon");
		hs_json_bool(j, "main", t->main);
		hs_json_close(j, '}');
	}
	hs_json_close(j, ']');

	/* The META section precedes the nodes, so figures known only after
	 * the walk are null here; the closing META_END section fills them. */
	hs_json_open(j, "dump", '{');
	hs_json_null(j, "pause_seconds");
	hs_json_null(j, "walk_seconds");
	hs_json_bool(j, "collect", collect);
	hs_json_null(j, "sizeof_errors");
	hs_json_null(j, "sizeof_calls");
	hs_json_cstr(j, "hook_version", HS_HOOK_VERSION);
	hs_json_open(j, "notes", '[');
	hs_json_close(j, ']');
	hs_json_close(j, '}');
	hs_json_close(j, '}');
	PyErr_Clear();
	if (j->err) {
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}
