/*
 * graph/procset.c: snapshot sets: the index file (formats/index-v1.md)
 * read into hs_procset and written from it.
 *
 * The reader trusts nothing: every field is type-checked, numbers are
 * range-checked before they become pids or sizes, and every snapshot the
 * index names must exist (opening it is left to the analyses, one or two
 * at a time). Messages name the index and, for a member, the member too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "heapsnap/procset.h"
#include "util/alloc.h"
#include "util/file.h"

#define INDEX_MAX_BYTES (64u << 20) /* 64 MiB: about 100,000 processes */
#define INDEX_MAX_PROCS 1000000u
#define ARGV_MAX 4096u

static const char *const status_names[] = { "ok", "failed", "exited", "skipped" };

const char *hs_procset_status_name(hs_procset_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "unknown";
}

int hs_procset_new(hs_procset **out)
{
	*out = hs_calloc(1, sizeof(**out));
	return *out ? 0 : HS_ENOMEM;
}

int hs_procset_add(hs_procset *set, hs_procset_proc **out)
{
	*out = NULL;
	if (set->count == set->cap) {
		size_t nc = set->cap ? set->cap * 2 : 16;
		hs_procset_proc *nv = hs_reallocarray(set->procs, nc, sizeof(*nv));
		if (!nv)
			return HS_ENOMEM;
		set->procs = nv;
		set->cap = nc;
	}
	hs_procset_proc *p = &set->procs[set->count++];
	memset(p, 0, sizeof(*p));
	hs_proc_memory unknown = HS_PROC_MEMORY_UNKNOWN;
	p->mem = unknown;
	p->child_private_dirty = -1;
	*out = p;
	return 0;
}

static void proc_release(hs_procset_proc *p)
{
	for (size_t i = 0; i < p->argc; i++)
		hs_free(p->argv[i]);
	hs_free(p->argv);
	hs_free(p->command);
	hs_free(p->error);
	hs_free(p->file);
	hs_free(p->path);
}

void hs_procset_free(hs_procset *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->count; i++)
		proc_release(&set->procs[i]);
	hs_free(set->procs);
	hs_free(set->path);
	hs_free(set->time_iso);
	hs_free(set->boot_id);
	hs_free(set->created_by);
	hs_free(set);
}

int hs_procset_proc_set_argv(hs_procset_proc *p, const char *const *argv, size_t argc,
                             const char *name)
{
	size_t len = 0;
	for (size_t i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (argc)
		p->argv = hs_calloc(argc, sizeof(char *));
	if (argc && !p->argv)
		return HS_ENOMEM;
	p->argc = argc;
	for (size_t i = 0; i < argc; i++)
		if (!(p->argv[i] = hs_strdup(argv[i])))
			return HS_ENOMEM;
	if (argc) {
		p->command = hs_malloc(len);
		if (!p->command)
			return HS_ENOMEM;
		char *w = p->command;
		for (size_t i = 0; i < argc; i++) {
			/* one line whatever the arguments hold: control characters become spaces */
			for (const char *c = argv[i]; *c; c++)
				*w++ = (unsigned char)*c < 0x20 || *c == 0x7f ? ' ' : *c;
			*w++ = i + 1 < argc ? ' ' : '\0';
		}
	} else {
		/* like ps: a process without a command line shows its name in brackets */
		const char *n = name && name[0] ? name : "?";
		p->command = hs_malloc(strlen(n) + 3);
		if (!p->command)
			return HS_ENOMEM;
		sprintf(p->command, "[%s]", n);
	}
	return 0;
}

const char *hs_procset_proc_label(const hs_procset_proc *p, char *buf, size_t size, size_t width)
{
	if (!size)
		return buf;
	size_t n = 0;
	buf[0] = '\0';
	if (!p->argc) {
		snprintf(buf, size, "%s", p->command ? p->command : "?");
	} else {
		for (size_t i = 0; i < p->argc && n + 1 < size; i++) {
			const char *a = p->argv[i];
			if (i == 0) {
				const char *slash = strrchr(a, '/');
				if (slash && slash[1])
					a = slash + 1;
			} else {
				buf[n++] = ' ';
			}
			for (; *a && n + 1 < size; a++)
				buf[n++] = (unsigned char)*a < 0x20 || *a == 0x7f ? ' ' : *a;
		}
		buf[n] = '\0';
	}
	if (!width)
		return buf;
	/* cut at `width` characters, leaving room for "..." */
	size_t chars = 0, i = 0, cut = 0;
	while (buf[i]) {
		if (chars == (width > 3 ? width - 3 : 0))
			cut = i;
		i++;
		while (((unsigned char)buf[i] & 0xC0) == 0x80)
			i++;
		chars++;
	}
	if (chars > width && cut + 4 <= size)
		memcpy(buf + cut, "...", 4);
	return buf;
}

int hs_procset_sniff(const char *path)
{
	size_t n = strlen(path), k = strlen(HS_PROCSET_SUFFIX);
	if (n > k && !strcmp(path + n - k, HS_PROCSET_SUFFIX))
		return 1;
	/* never blocks on a FIFO; anything not a regular file is no index, and
	 * the snapshot reader then says what it is */
	FILE *f;
	if (hs_file_fopen_input(&f, path, "an index") < 0)
		return 0;
	int c, is = 0;
	for (int i = 0; i < 64 && (c = fgetc(f)) != EOF; i++) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		is = c == '{';
		break;
	}
	fclose(f);
	return is;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

static cJSON *num(double v)
{
	return cJSON_CreateNumber(v);
}

static int add_num(cJSON *o, const char *k, double v)
{
	return cJSON_AddItemToObject(o, k, num(v));
}

static int add_str(cJSON *o, const char *k, const char *v)
{
	return v ? cJSON_AddStringToObject(o, k, v) != NULL : cJSON_AddNullToObject(o, k) != NULL;
}

static int proc_json(cJSON *arr, const hs_procset_proc *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(arr, o))
		return 0;
	int ok = add_num(o, "pid", p->pid);
	ok &= add_num(o, "ppid", p->ppid);
	if (p->start_ticks)
		ok &= add_num(o, "start_ticks", (double)p->start_ticks);
	cJSON *av = cJSON_AddArrayToObject(o, "argv");
	ok &= av != NULL;
	for (size_t i = 0; ok && i < p->argc; i++)
		ok &= cJSON_AddItemToArray(av, cJSON_CreateString(p->argv[i]));
	ok &= add_str(o, "command", p->command);
	ok &= add_str(o, "status", hs_procset_status_name(p->status));
	if (p->status != HS_PROC_OK)
		ok &= add_str(o, "error", p->error ? p->error : "");
	ok &= add_str(o, "file", p->status == HS_PROC_OK ? p->file : NULL);
	cJSON *m = cJSON_AddObjectToObject(o, "memory");
	ok &= m != NULL;
	if (ok && p->mem.rss >= 0)
		ok &= add_num(m, "rss", (double)p->mem.rss);
	if (ok && p->mem.pss >= 0)
		ok &= add_num(m, "pss", (double)p->mem.pss);
	if (ok && p->mem.uss >= 0)
		ok &= add_num(m, "uss", (double)p->mem.uss);
	if (ok && p->mem.swap >= 0)
		ok &= add_num(m, "swap", (double)p->mem.swap);
	if (p->python_minor)
		ok &= add_num(o, "python_minor", p->python_minor);
	if (p->status == HS_PROC_OK) {
		ok &= add_num(o, "objects", (double)p->objects);
		ok &= add_num(o, "file_bytes", (double)p->file_bytes);
		ok &= add_num(o, "pause_seconds", p->pause_seconds);
	}
	if (p->status == HS_PROC_OK || p->status == HS_PROC_FAILED || p->status == HS_PROC_EXITED)
		ok &= add_num(o, "seconds", p->seconds);
	if (p->mode)
		ok &= add_str(o, "mode", p->mode);
	if (p->child_pid) {
		cJSON *fk = cJSON_AddObjectToObject(o, "fork");
		ok &= fk != NULL;
		ok &= ok && add_num(fk, "child_pid", p->child_pid);
		ok &= ok && add_num(fk, "child_seconds", p->child_seconds);
		if (ok && p->child_private_dirty >= 0)
			ok &= add_num(fk, "child_private_dirty", (double)p->child_private_dirty);
	}
	return ok;
}

int hs_procset_to_json(cJSON **out, const hs_procset *set)
{
	*out = NULL;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return hs_error_set(HS_ENOMEM, "out of memory");
	int ok = add_str(o, "format", HS_PROCSET_FORMAT);
	ok &= add_num(o, "version", HS_PROCSET_VERSION);
	if (set->created_by)
		ok &= add_str(o, "created_by", set->created_by);
	ok &= add_num(o, "root_pid", set->root_pid);
	ok &= add_num(o, "time", set->time);
	if (set->time_iso)
		ok &= add_str(o, "time_iso", set->time_iso);
	if (set->boot_id)
		ok &= add_str(o, "boot_id", set->boot_id);
	ok &= cJSON_AddBoolToObject(o, "fork", set->fork) != NULL;
	ok &= add_num(o, "seconds", set->seconds);
	ok &= add_num(o, "memory_seconds", set->memory_seconds);
	cJSON *arr = cJSON_AddArrayToObject(o, "processes");
	ok &= arr != NULL;
	for (size_t i = 0; ok && i < set->count; i++)
		ok &= proc_json(arr, &set->procs[i]);
	if (!ok) {
		cJSON_Delete(o);
		return hs_error_set(HS_ENOMEM, "out of memory");
	}
	*out = o;
	return 0;
}

int hs_procset_write(const hs_procset *set, const char *path)
{
	cJSON *j;
	HS_TRY(hs_procset_to_json(&j, set));
	char *text = cJSON_Print(j);
	cJSON_Delete(j);
	if (!text)
		return hs_error_set(HS_ENOMEM, "out of memory");
	/* a temporary file beside the index, mode 0600 like the snapshots
	 * (command lines can hold secrets), renamed into place (util/file.h) */
	hs_file_out file = HS_FILE_OUT_INIT;
	int rc = hs_file_out_open(&file, path), fd = file.fd;
	if (rc < 0)
		goto done;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = hs_error_set(HS_EIO, "cannot write '%s': %s", path,
			                  w < 0 ? strerror(errno) : "short write");
			goto done;
		}
		off += (size_t)w;
	}
	if (write(fd, "\n", 1) != 1) {
		rc = hs_error_set(HS_EIO, "cannot write '%s': %s", path, strerror(errno));
		goto done;
	}
	rc = hs_file_out_commit(&file, HS_FILE_SYNC);
done:
	hs_file_out_release(&file);
	cJSON_free(text);
	return rc;
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

typedef struct reader {
	const char *path;
	int rc;
} reader;

static int bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(reader *r, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->rc = hs_error_set(HS_EFORMAT, "cannot read '%s': not a valid heapsnap index: %s", r->path, what);
	return r->rc;
}

/* An integer in [lo, hi]: 1 found, 0 absent (or null), -1 bad. */
static int get_int(reader *r, const cJSON *o, const char *key, double lo, double hi, long index,
                   double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
	    v->valuedouble > hi) {
		if (index >= 0)
			bad(r, "'%s' of process #%ld is not a valid number", key, index);
		else
			bad(r, "'%s' is not a valid number", key);
		return -1;
	}
	*out = v->valuedouble;
	return 1;
}

static int get_real(reader *r, const cJSON *o, const char *key, long index, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
		if (index >= 0)
			bad(r, "'%s' of process #%ld is not a valid number", key, index);
		else
			bad(r, "'%s' is not a valid number", key);
		return -1;
	}
	*out = v->valuedouble;
	return 1;
}

/* A string: 1 found (*out hs_strdup'd), 0 absent/null, -1 bad or no memory. */
static int get_str(reader *r, const cJSON *o, const char *key, long index, char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		if (index >= 0)
			bad(r, "'%s' of process #%ld is not a string", key, index);
		else
			bad(r, "'%s' is not a string", key);
		return -1;
	}
	if (!(*out = hs_strdup(v->valuestring))) {
		r->rc = HS_ENOMEM;
		return -1;
	}
	return 1;
}

static const char *static_mode(const char *m)
{
	static const char *const modes[] = { "blocked", "pending_call", "agent" };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(m, modes[i]))
			return modes[i];
	return NULL;
}

/* The directory part of `path` with its slash ("" for a bare name). */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) + 1 : 0;
	return hs_strndup(path, n);
}

static int read_proc(reader *r, hs_procset *set, const cJSON *jp, long i, const char *dir)
{
	if (!cJSON_IsObject(jp))
		return bad(r, "process #%ld is not an object", i);
	hs_procset_proc *p;
	if ((r->rc = hs_procset_add(set, &p)) < 0)
		return r->rc;
	double v;
	int g;
	if ((g = get_int(r, jp, "pid", 1, INT_MAX, i, &v)) <= 0)
		return g < 0 ? r->rc : bad(r, "process #%ld has no pid", i);
	p->pid = (int)v;
	if ((g = get_int(r, jp, "ppid", 0, INT_MAX, i, &v)) < 0)
		return r->rc;
	p->ppid = g ? (int)v : 0;
	if ((g = get_int(r, jp, "start_ticks", 0, 9007199254740992.0, i, &v)) < 0)
		return r->rc;
	p->start_ticks = g ? (uint64_t)v : 0;

	const cJSON *av = cJSON_GetObjectItemCaseSensitive(jp, "argv");
	if (av && !cJSON_IsNull(av)) {
		if (!cJSON_IsArray(av) || (size_t)cJSON_GetArraySize(av) > ARGV_MAX)
			return bad(r, "'argv' of process #%ld is not a list of strings", i);
		size_t argc = (size_t)cJSON_GetArraySize(av), k = 0;
		const char **tmp = hs_calloc(argc ? argc : 1, sizeof(char *));
		if (!tmp)
			return r->rc = HS_ENOMEM;
		const cJSON *a;
		cJSON_ArrayForEach(a, av)
		{
			if (!cJSON_IsString(a)) {
				hs_free(tmp);
				return bad(r, "'argv' of process #%ld is not a list of strings", i);
			}
			tmp[k++] = a->valuestring;
		}
		const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(jp, "command");
		const char *nm = cJSON_IsString(cmd) && cmd->valuestring[0] == '[' ? cmd->valuestring + 1 : "?";
		char nbuf[64];
		snprintf(nbuf, sizeof(nbuf), "%s", nm);
		nbuf[strcspn(nbuf, "]")] = '\0';
		int rc = hs_procset_proc_set_argv(p, tmp, argc, nbuf);
		hs_free(tmp);
		if (rc < 0)
			return r->rc = rc;
	} else if (hs_procset_proc_set_argv(p, NULL, 0, "?") < 0) {
		return r->rc = HS_ENOMEM;
	}
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(jp, "status");
	if (!cJSON_IsString(st))
		return bad(r, "process #%ld has no status", i);
	size_t s;
	for (s = 0; s < sizeof(status_names) / sizeof(status_names[0]); s++)
		if (!strcmp(st->valuestring, status_names[s]))
			break;
	if (s == sizeof(status_names) / sizeof(status_names[0]))
		return bad(r, "process #%ld has an unknown status '%s'", i, st->valuestring);
	p->status = (hs_procset_status)s;
	if (get_str(r, jp, "error", i, &p->error) < 0)
		return r->rc;
	if (p->status == HS_PROC_OK) {
		hs_free(p->error);
		p->error = NULL;
		if ((g = get_str(r, jp, "file", i, &p->file)) <= 0)
			return g < 0 ? r->rc : bad(r, "process #%ld has status ok but no file", i);
		if (!p->file[0])
			return bad(r, "process #%ld has an empty file name", i);
		if (p->file[0] == '/')
			p->path = hs_strdup(p->file);
		else {
			p->path = hs_malloc(strlen(dir) + strlen(p->file) + 1);
			if (p->path)
				sprintf(p->path, "%s%s", dir, p->file);
		}
		if (!p->path)
			return r->rc = HS_ENOMEM;
	} else if (!p->error && !(p->error = hs_strdup(""))) {
		return r->rc = HS_ENOMEM;
	}

	const cJSON *m = cJSON_GetObjectItemCaseSensitive(jp, "memory");
	if (m && !cJSON_IsNull(m)) {
		if (!cJSON_IsObject(m))
			return bad(r, "'memory' of process #%ld is not an object", i);
		static const char *const keys[4] = { "rss", "pss", "uss", "swap" };
		int64_t *dst[4] = { &p->mem.rss, &p->mem.pss, &p->mem.uss, &p->mem.swap };
		for (int k = 0; k < 4; k++) {
			if ((g = get_int(r, m, keys[k], 0, 9007199254740992.0, i, &v)) < 0)
				return r->rc;
			*dst[k] = g ? (int64_t)v : -1;
		}
	}
	if ((g = get_int(r, jp, "python_minor", 0, 255, i, &v)) < 0)
		return r->rc;
	p->python_minor = g ? (int)v : 0;
	if ((g = get_int(r, jp, "objects", 0, 9007199254740992.0, i, &v)) < 0)
		return r->rc;
	p->objects = g ? (uint64_t)v : 0;
	if ((g = get_int(r, jp, "file_bytes", 0, 9007199254740992.0, i, &v)) < 0)
		return r->rc;
	p->file_bytes = g ? (uint64_t)v : 0;
	if (get_real(r, jp, "pause_seconds", i, &p->pause_seconds) < 0 ||
	    get_real(r, jp, "seconds", i, &p->seconds) < 0)
		return r->rc;
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(jp, "mode");
	if (cJSON_IsString(mode))
		p->mode = static_mode(mode->valuestring);
	const cJSON *fk = cJSON_GetObjectItemCaseSensitive(jp, "fork");
	if (cJSON_IsObject(fk)) {
		if ((g = get_int(r, fk, "child_pid", 0, INT_MAX, i, &v)) < 0)
			return r->rc;
		p->child_pid = g ? (int)v : 0;
		if (get_real(r, fk, "child_seconds", i, &p->child_seconds) < 0)
			return r->rc;
		if ((g = get_int(r, fk, "child_private_dirty", 0, 9007199254740992.0, i, &v)) < 0)
			return r->rc;
		p->child_private_dirty = g ? (int64_t)v : -1;
	}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int read_index(reader *r, hs_procset *set, const cJSON *j, const char *dir)
{
	if (!cJSON_IsObject(j))
		return bad(r, "the top level is not an object");
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, HS_PROCSET_FORMAT))
		return bad(r, "'format' is not \"%s\"", HS_PROCSET_FORMAT);
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
	if (!cJSON_IsNumber(ver))
		return bad(r, "no version");
	if (ver->valuedouble != HS_PROCSET_VERSION)
		return r->rc = hs_error_set(HS_EVERSION, "cannot read '%s': index version %g; this heapsnap "
		                            "reads version %d (a newer heapsnap wrote it?)", r->path,
		                            ver->valuedouble, HS_PROCSET_VERSION);
	double v;
	int g;
	if ((g = get_int(r, j, "root_pid", 1, INT_MAX, -1, &v)) <= 0)
		return g < 0 ? r->rc : bad(r, "no root_pid");
	set->root_pid = (int)v;
	if (get_real(r, j, "time", -1, &set->time) < 0 || get_real(r, j, "seconds", -1, &set->seconds) < 0 ||
	    get_real(r, j, "memory_seconds", -1, &set->memory_seconds) < 0)
		return r->rc;
	if (get_str(r, j, "time_iso", -1, &set->time_iso) < 0 ||
	    get_str(r, j, "boot_id", -1, &set->boot_id) < 0 ||
	    get_str(r, j, "created_by", -1, &set->created_by) < 0)
		return r->rc;
	set->fork = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "fork"));
	const cJSON *procs = cJSON_GetObjectItemCaseSensitive(j, "processes");
	if (!cJSON_IsArray(procs))
		return bad(r, "no list of processes");
	if ((size_t)cJSON_GetArraySize(procs) > INDEX_MAX_PROCS)
		return bad(r, "more than %u processes", INDEX_MAX_PROCS);
	const cJSON *jp;
	long i = 0;
	cJSON_ArrayForEach(jp, procs)
	{
		if (read_proc(r, set, jp, ++i, dir) < 0)
			return r->rc;
	}
	if (!set->count)
		return bad(r, "the list of processes is empty");
	int *pids = hs_reallocarray(NULL, set->count, sizeof(int));
	if (!pids)
		return r->rc = HS_ENOMEM;
	for (size_t k = 0; k < set->count; k++)
		pids[k] = set->procs[k].pid;
	qsort(pids, set->count, sizeof(int), cmp_int);
	for (size_t k = 1; k < set->count; k++)
		if (pids[k] == pids[k - 1]) {
			bad(r, "process %d is listed twice", pids[k]);
			break;
		}
	hs_free(pids);
	return r->rc;
}

int hs_procset_open(hs_procset **out, const char *path)
{
	*out = NULL;
	FILE *f;
	HS_TRY(hs_file_fopen_input(&f, path, "an index"));
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		int e = errno;
		fclose(f);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	if ((uint64_t)st.st_size > INDEX_MAX_BYTES) {
		fclose(f);
		return hs_error_set(HS_ELIMIT, "cannot read '%s': %lld bytes is too large for an index "
		                    "(at most %u MiB)", path, (long long)st.st_size, INDEX_MAX_BYTES >> 20);
	}
	size_t size = (size_t)st.st_size;
	char *text = hs_malloc(size + 1);
	if (!text) {
		fclose(f);
		return HS_ENOMEM;
	}
	size_t got = fread(text, 1, size, f);
	int err = ferror(f);
	fclose(f);
	if (got != size || err) {
		hs_free(text);
		return hs_error_set(HS_EIO, "cannot read '%s': read failed", path);
	}
	text[size] = '\0';
	cJSON *j = cJSON_ParseWithLength(text, size);
	if (!j) {
		/* say where, like a JSON tool would */
		const char *at = cJSON_GetErrorPtr();
		size_t line = 1;
		if (at && at >= text && at <= text + size)
			for (const char *c = text; c < at; c++)
				line += *c == '\n';
		hs_free(text);
		return hs_error_set(HS_EFORMAT, "cannot read '%s': not a heapsnap index (invalid JSON at "
		                    "line %zu)", path, line);
	}
	hs_free(text);
	hs_procset *set;
	int rc = hs_procset_new(&set);
	char *dir = dir_of(path);
	if (rc == 0 && (!dir || !(set->path = hs_strdup(path))))
		rc = HS_ENOMEM;
	reader r = { path, 0 };
	if (rc == 0)
		rc = read_index(&r, set, j, dir);
	cJSON_Delete(j);
	/* every member must be there: a set with a hole is reported now, not
	 * half-way through an analysis */
	for (size_t i = 0; rc == 0 && i < set->count; i++) {
		const hs_procset_proc *p = &set->procs[i];
		if (p->status != HS_PROC_OK)
			continue;
		struct stat ms;
		if (stat(p->path, &ms) != 0)
			rc = hs_error_set(errno == ENOENT ? HS_ENOTFOUND : HS_EIO,
			                  "cannot read '%s': the snapshot of process %d, '%s', %s", path, p->pid,
			                  p->path, errno == ENOENT ? "is missing (moved or deleted?); keep "
			                  "the index beside its snapshots" : strerror(errno));
		else if (!S_ISREG(ms.st_mode))
			rc = hs_error_set(HS_EIO, "cannot read '%s': the snapshot of process %d, '%s', is not "
			                  "a regular file", path, p->pid, p->path);
	}
	hs_free(dir);
	if (rc < 0) {
		hs_procset_free(set);
		return rc;
	}
	*out = set;
	return 0;
}
