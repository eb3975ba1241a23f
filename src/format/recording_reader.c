/*
 * format/recording_reader.c: loads a recording (formats/recording-v1.md)
 * into the in-memory model of heapsnap/recording.h.
 *
 * Sections are walked in file order from the header (a recording is
 * append-only: the index, written only at a clean end, is a cross-check,
 * not the way in). The tail is where damage is expected: a recorder killed
 * while writing leaves a section cut short (or, after a power cut, zeros);
 * that chunk is dropped with a warning. Damage anywhere before the tail is
 * an error, like a damaged snapshot. Every count read from the file is
 * bounded by the bytes that encode it before it sizes an allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "heapsnap/recording.h"
#include "heapsnap/format.h"
#include "format_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/file.h"

#define MAX_COLS 16

typedef struct series_data {
	size_t n, cap;
	double *t;
	int64_t *col[MAX_COLS]; /* the kind's known columns; col[0] is the time in us; sizes
	                           in bytes (the file has KiB), the rest as in the file */
	size_t file_cols;       /* columns the file had (the fewest seen) */
} series_data;

typedef struct proc_data {
	hs_rec_process pub;    /* first: the public pointer is a proc_data pointer */
	char **argv;           /* owned strings */
	char *exe;
	char *command;
	int ended;
	series_data s[HS_REC_SERIES_KIND_MAX + 1];
	int64_t *metric[HS_REC_METRIC_COUNT]; /* model units, on the metric's series: a column
	                                         itself, or (derived) owned */
	unsigned owned;        /* bit m: metric[m] is an allocation of its own */
	hs_rec_types *types;
	size_t types_count, types_cap;
	/* allocation sites (record --lines) */
	int tracked;
	hs_rec_track track;
	hs_rec_site_loc *locs;
	size_t locs_cap;
	hs_rec_site_stack *stacks;
	hs_rec_site_fig *figs, *peak_figs;
	size_t stacks_cap;
	uint32_t **stack_locs; /* owned frame arrays, per stack id */
} proc_data;

struct hs_recording {
	char *name;
	char *dir; /* for snapshot paths */
	hs_rec_info info;
	char *meta, *meta_end, *warning;
	proc_data **procs;
	size_t proc_count, proc_cap;
	hs_rec_marker *markers;
	size_t marker_count, marker_cap;
	hs_rec_snapshot *snaps;
	size_t snap_count, snap_cap;
	hs_rec_note *notes;
	size_t note_count, note_cap;
	/* every string the file defines, by id (owned) */
	char **strings;
	size_t string_count, string_cap;
	/* type rows of every TYPES block, in one allocation per block */
	hs_rec_type_row **type_rows;
	size_t type_rows_count, type_rows_cap;
};

static const struct metric_def {
	const char *name;
	unsigned kind;
	int bytes;
} metric_defs[HS_REC_METRIC_COUNT] = {
	[HS_REC_RSS] = { "rss", HS_REC_SERIES_MEM, 1 },
	[HS_REC_VMS] = { "vms", HS_REC_SERIES_MEM, 1 },
	[HS_REC_SHARED] = { "shared", HS_REC_SERIES_MEM, 1 },
	[HS_REC_ANON] = { "anon", HS_REC_SERIES_STATUS, 1 },
	[HS_REC_FILE] = { "file", HS_REC_SERIES_STATUS, 1 },
	[HS_REC_SHMEM] = { "shmem", HS_REC_SERIES_STATUS, 1 },
	[HS_REC_SWAP] = { "swap", HS_REC_SERIES_STATUS, 1 },
	[HS_REC_THREADS] = { "threads", HS_REC_SERIES_STATUS, 0 },
	[HS_REC_CPU] = { "cpu", HS_REC_SERIES_STATUS, 0 },
	[HS_REC_PSS] = { "pss", HS_REC_SERIES_SMAPS, 1 },
	[HS_REC_USS] = { "uss", HS_REC_SERIES_SMAPS, 1 },
	[HS_REC_SWAP_PSS] = { "swap_pss", HS_REC_SERIES_SMAPS, 1 },
	[HS_REC_PSS_EST] = { "pss_est", HS_REC_SERIES_MEM, 1 },
	[HS_REC_USS_EST] = { "uss_est", HS_REC_SERIES_MEM, 1 },
	[HS_REC_PY_OBJECTS] = { "py_objects", HS_REC_SERIES_PY, 0 },
	[HS_REC_PY_PYMALLOC] = { "pymalloc", HS_REC_SERIES_PY, 1 },
	[HS_REC_PY_ARENAS] = { "arenas", HS_REC_SERIES_PY, 0 },
	[HS_REC_PY_BLOCKS] = { "blocks", HS_REC_SERIES_PY, 0 },
	[HS_REC_PY_GC_COLLECTIONS] = { "gc_collections", HS_REC_SERIES_PY, 0 },
	[HS_REC_PY_GC_PAUSE] = { "gc_pause", HS_REC_SERIES_PY, 0 },
};

/* The column a metric reads directly (0: derived). */
static const unsigned metric_column[HS_REC_METRIC_COUNT] = {
	[HS_REC_RSS] = 1, [HS_REC_VMS] = 2, [HS_REC_SHARED] = 3, [HS_REC_ANON] = 1,
	[HS_REC_FILE] = 2, [HS_REC_SHMEM] = 3, [HS_REC_SWAP] = 4, [HS_REC_THREADS] = 5,
	[HS_REC_PSS] = 1, [HS_REC_USS] = 2, [HS_REC_SWAP_PSS] = 7, [HS_REC_PY_OBJECTS] = 1,
	[HS_REC_PY_PYMALLOC] = 2, [HS_REC_PY_ARENAS] = 3, [HS_REC_PY_BLOCKS] = 5,
};

/* Columns the file holds in KiB (the model has bytes): bit c of kind. */
static const unsigned kib_columns[HS_REC_SERIES_KIND_MAX + 1] = {
	0, 0x0e /* MEM 1-3 */, 0x1e /* STATUS 1-4 */, 0xfe /* SMAPS 1-7 */, 0, 0,
};

static const size_t kind_columns[HS_REC_SERIES_KIND_MAX + 1] = {
	0, HS_REC_MEM_COLUMNS, HS_REC_STATUS_COLUMNS, HS_REC_SMAPS_COLUMNS, HS_REC_PY_COLUMNS,
	HS_REC_GC_COLUMNS,
};

const char *hs_rec_metric_name(hs_rec_metric m)
{
	if ((int)m < 0 || m >= HS_REC_METRIC_COUNT)
		return "?";
	return metric_defs[m].name;
}

int hs_rec_metric_from_name(const char *name)
{
	for (int i = 0; i < HS_REC_METRIC_COUNT; i++)
		if (!strcmp(metric_defs[i].name, name))
			return i;
	return -1;
}

int hs_rec_metric_is_bytes(hs_rec_metric m)
{
	return (int)m >= 0 && m < HS_REC_METRIC_COUNT && metric_defs[m].bytes;
}

/* ------------------------------------------------------------------ */
/* decoding                                                            */

typedef struct loader {
	hs_recording *r;
	const char *name;
	const uint8_t *data;
	size_t size;
	const hs_recording_options *opts;
	ZSTD_DCtx *dctx;
	hs_buf raw;
	uint64_t chunks;
	int64_t t_end;       /* us: the last complete chunk's end */
	int saw_start, saw_end;
	const char *where;   /* for messages */
	char where_buf[96];
} loader;

static int fail(loader *l, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(loader *l, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hs_error_set(code, "cannot read '%s': %s", l->name, msg);
}

static int corrupt(loader *l, const char *what)
{
	return fail(l, HS_EFORMAT, "corrupt %s (%s); the recording is damaged before its end", l->where,
	            what);
}

/* Cursor reads that report a damaged chunk. */
static int rd_u(loader *l, hs_cursor *c, uint64_t *out, const char *what)
{
	if (hs_cursor_varint(c, out, what) < 0)
		return corrupt(l, what);
	return 0;
}

static int rd_s(loader *l, hs_cursor *c, int64_t *out, const char *what)
{
	uint64_t v;
	HS_TRY(rd_u(l, c, &v, what));
	*out = hs_zigzag_decode(v);
	return 0;
}

static int rd_str(loader *l, hs_cursor *c, const char **out, const char *what)
{
	uint64_t ref;
	HS_TRY(rd_u(l, c, &ref, what));
	if (ref == 0) {
		*out = NULL;
		return 0;
	}
	if (ref - 1 >= l->r->string_count)
		return corrupt(l, "string used before it was defined");
	*out = l->r->strings[ref - 1];
	return 0;
}

static int rd_proc(loader *l, hs_cursor *c, proc_data **out)
{
	uint64_t p;
	HS_TRY(rd_u(l, c, &p, "process index"));
	if (p >= l->r->proc_count)
		return corrupt(l, "process used before it was declared");
	*out = l->r->procs[p];
	return 0;
}

static double us_to_s(int64_t us) { return (double)us / 1e6; }

#define GROW(arr, count, cap, type)                                                   \
	do {                                                                              \
		if ((count) == (cap)) {                                                       \
			size_t nc__ = (cap) ? (cap) * 2 : 16;                                     \
			type *p__ = hs_reallocarray((arr), nc__, sizeof(type));                   \
			if (!p__)                                                                 \
				return HS_ENOMEM;                                                     \
			(arr) = p__;                                                              \
			(cap) = nc__;                                                             \
		}                                                                             \
	} while (0)

static char *join_argv(size_t argc, char **argv)
{
	size_t n = 1;
	for (size_t i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	char *s = hs_malloc(n);
	if (!s)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < argc; i++) {
		size_t m = strlen(argv[i]);
		if (i)
			s[k++] = ' ';
		/* for display on one line: control characters become spaces */
		for (size_t j = 0; j < m; j++)
			s[k++] = (unsigned char)argv[i][j] < 0x20 || argv[i][j] == 0x7f ? ' ' : argv[i][j];
	}
	s[k] = '\0';
	return s;
}

static void free_argv(proc_data *p)
{
	for (size_t i = 0; i < p->pub.argc; i++)
		hs_free(p->argv[i]);
	hs_free(p->argv);
	hs_free(p->exe);
	hs_free(p->command);
	p->argv = NULL;
	p->exe = p->command = NULL;
	p->pub.argc = 0;
}

/* Read argc + argv refs into p (replacing what it had). */
static int read_argv(loader *l, hs_cursor *c, proc_data *p, const char *exe)
{
	uint64_t argc;
	HS_TRY(rd_u(l, c, &argc, "argument count"));
	if (argc > hs_cursor_left(c))
		return corrupt(l, "argument count beyond the block");
	char **argv = hs_calloc(argc ? argc : 1, sizeof(char *));
	if (!argv)
		return HS_ENOMEM;
	int rc = 0;
	size_t i;
	for (i = 0; i < argc && rc == 0; i++) {
		const char *s;
		rc = rd_str(l, c, &s, "argument");
		if (rc == 0 && !(argv[i] = hs_strdup(s ? s : "")))
			rc = HS_ENOMEM;
	}
	char *e = NULL, *cmd = NULL;
	if (rc == 0 && !(e = hs_strdup(exe ? exe : "")))
		rc = HS_ENOMEM;
	if (rc == 0 && !(cmd = join_argv(argc, argv)))
		rc = HS_ENOMEM;
	if (rc < 0) {
		for (size_t k = 0; k < argc; k++)
			hs_free(argv[k]);
		hs_free(argv);
		hs_free(e);
		hs_free(cmd);
		return rc;
	}
	free_argv(p);
	p->argv = argv;
	p->exe = e;
	p->command = cmd;
	p->pub.argc = argc;
	p->pub.argv = (const char *const *)argv;
	p->pub.exe = e;
	p->pub.command = cmd;
	return 0;
}

static int block_proc(loader *l, hs_cursor *c)
{
	hs_recording *r = l->r;
	uint64_t idx, pid, ppid, parent, flags;
	int64_t t;
	const char *exe;
	HS_TRY(rd_u(l, c, &idx, "process index"));
	if (idx != r->proc_count)
		return corrupt(l, "process declared out of order");
	HS_TRY(rd_u(l, c, &pid, "pid"));
	HS_TRY(rd_u(l, c, &ppid, "ppid"));
	HS_TRY(rd_u(l, c, &parent, "parent"));
	HS_TRY(rd_s(l, c, &t, "start time"));
	HS_TRY(rd_u(l, c, &flags, "process flags"));
	HS_TRY(rd_str(l, c, &exe, "executable"));
	if (pid > INT32_MAX || ppid > INT32_MAX || parent > r->proc_count)
		return corrupt(l, "process ids out of range");
	if (flags & ~(uint64_t)HS_REC_PROC_FLAGS_KNOWN)
		return corrupt(l, "unknown process flags");
	GROW(r->procs, r->proc_count, r->proc_cap, proc_data *);
	proc_data *p = hs_calloc(1, sizeof(*p));
	if (!p)
		return HS_ENOMEM;
	r->procs[r->proc_count++] = p;
	p->pub.index = idx;
	p->pub.pid = (int)pid;
	p->pub.ppid = (int)ppid;
	p->pub.parent = parent ? (ptrdiff_t)parent - 1 : -1;
	p->pub.flags = (unsigned)flags;
	p->pub.start = us_to_s(t);
	p->pub.exe = "";
	p->pub.command = "";
	p->pub.exit.how = HS_REC_RUNNING;
	return read_argv(l, c, p, exe);
}

static int block_exec(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t;
	const char *exe;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "exec time"));
	HS_TRY(rd_str(l, c, &exe, "executable"));
	p->pub.execs++;
	return read_argv(l, c, p, exe);
}

static int block_flags(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t;
	uint64_t flags;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_u(l, c, &flags, "process flags"));
	if (flags & ~(uint64_t)HS_REC_PROC_FLAGS_KNOWN)
		return corrupt(l, "unknown process flags");
	p->pub.flags |= (unsigned)flags;
	return 0;
}

static int block_exit(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t;
	uint64_t how, code, sig, flags;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "exit time"));
	HS_TRY(rd_u(l, c, &how, "exit kind"));
	HS_TRY(rd_u(l, c, &code, "exit code"));
	HS_TRY(rd_u(l, c, &sig, "signal"));
	HS_TRY(rd_u(l, c, &flags, "exit flags"));
	if (how > HS_REC_VANISHED || code > 255 || sig > 128 || (flags & ~(uint64_t)HS_REC_EXIT_FLAGS_KNOWN))
		return corrupt(l, "invalid exit record");
	p->pub.exit.how = (hs_rec_exit_how)how;
	p->pub.exit.code = (int)code;
	p->pub.exit.signal = (int)sig;
	p->pub.exit.flags = (unsigned)flags;
	p->pub.end = us_to_s(t);
	p->ended = 1;
	return 0;
}

static int grow_series(series_data *s, size_t ncols, size_t need)
{
	if (s->n + need <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 256;
	while (cap < s->n + need)
		cap *= 2;
	double *t = hs_reallocarray(s->t, cap, sizeof(double));
	if (!t)
		return HS_ENOMEM;
	s->t = t;
	for (size_t c = 0; c < ncols; c++) {
		int64_t *v = hs_reallocarray(s->col[c], cap, sizeof(int64_t));
		if (!v)
			return HS_ENOMEM;
		s->col[c] = v;
	}
	s->cap = cap;
	return 0;
}

static int block_series(loader *l, hs_cursor *c)
{
	proc_data *p;
	uint64_t kind, n, ncols;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_u(l, c, &kind, "series kind"));
	HS_TRY(rd_u(l, c, &n, "sample count"));
	HS_TRY(rd_u(l, c, &ncols, "column count"));
	if (kind < 1 || kind > HS_REC_SERIES_KIND_MAX)
		return 0; /* a kind a newer writer added: skipped with its block */
	if (ncols < 1 || ncols > 64 || n > hs_cursor_left(c))
		return corrupt(l, "series shape");
	series_data *s = &p->s[kind];
	size_t known = kind_columns[kind];
	HS_TRY(grow_series(s, known, (size_t)n));
	if (s->file_cols == 0 || ncols < s->file_cols)
		s->file_cols = ncols < known ? (size_t)ncols : known;
	for (uint64_t col = 0; col < ncols; col++) {
		uint64_t coding, len;
		HS_TRY(rd_u(l, c, &coding, "column coding"));
		HS_TRY(rd_u(l, c, &len, "column length"));
		if (len > hs_cursor_left(c))
			return corrupt(l, "column longer than its block");
		hs_cursor cc = { c->p, c->p + len };
		c->p += len;
		if (coding != HS_REC_CODING_DELTA && coding != HS_REC_CODING_DELTA2)
			return corrupt(l, "unknown column coding");
		if (col >= known)
			continue; /* a column a newer writer added */
		int64_t prev = 0, prevd = 0;
		for (uint64_t i = 0; i < n; i++) {
			int64_t d;
			HS_TRY(rd_s(l, &cc, &d, "sample value"));
			if (coding == HS_REC_CODING_DELTA2) {
				d = (int64_t)((uint64_t)d + (uint64_t)prevd);
				prevd = d;
			}
			prev = (int64_t)((uint64_t)prev + (uint64_t)d);
			int64_t v = prev;
			if (kib_columns[kind] & (1u << col))
				v = v < 0 ? -1 : v > INT64_MAX / 1024 ? INT64_MAX : v * 1024;
			s->col[col][s->n + i] = v;
		}
		if (hs_cursor_left(&cc))
			return corrupt(l, "column with bytes left over");
	}
	for (uint64_t col = ncols; col < known; col++)
		for (uint64_t i = 0; i < n; i++)
			s->col[col][s->n + i] = -1;
	for (uint64_t i = 0; i < n; i++) {
		int64_t t = s->col[0][s->n + i];
		if (s->n + i > 0 && t < s->col[0][s->n + i - 1])
			return corrupt(l, "series time going backwards");
		s->t[s->n + i] = us_to_s(t);
	}
	s->n += (size_t)n;
	return 0;
}

static int block_types(loader *l, hs_cursor *c)
{
	hs_recording *r = l->r;
	proc_data *p;
	int64_t t, objects, bytes, cost;
	uint64_t n;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_s(l, c, &objects, "objects"));
	HS_TRY(rd_s(l, c, &bytes, "bytes"));
	HS_TRY(rd_s(l, c, &cost, "cost"));
	HS_TRY(rd_u(l, c, &n, "row count"));
	if (n > hs_cursor_left(c))
		return corrupt(l, "type rows beyond the block");
	GROW(r->type_rows, r->type_rows_count, r->type_rows_cap, hs_rec_type_row *);
	hs_rec_type_row *rows = hs_calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return HS_ENOMEM;
	r->type_rows[r->type_rows_count++] = rows;
	for (uint64_t i = 0; i < n; i++) {
		HS_TRY(rd_str(l, c, &rows[i].name, "type name"));
		if (!rows[i].name)
			rows[i].name = "?";
	}
	for (uint64_t i = 0; i < n; i++)
		HS_TRY(rd_s(l, c, &rows[i].count, "type count"));
	for (uint64_t i = 0; i < n; i++)
		HS_TRY(rd_s(l, c, &rows[i].bytes, "type bytes"));
	GROW(p->types, p->types_count, p->types_cap, hs_rec_types);
	hs_rec_types *ty = &p->types[p->types_count++];
	ty->t = us_to_s(t);
	ty->objects = objects;
	ty->bytes = bytes;
	ty->seconds = cost >= 0 ? (double)cost / 1e6 : 0.0;
	ty->count = (size_t)n;
	ty->rows = rows;
	return 0;
}

static int block_mark(loader *l, hs_cursor *c)
{
	hs_recording *r = l->r;
	proc_data *p;
	int64_t t;
	const char *label;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_str(l, c, &label, "label"));
	GROW(r->markers, r->marker_count, r->marker_cap, hs_rec_marker);
	hs_rec_marker *m = &r->markers[r->marker_count++];
	m->t = us_to_s(t);
	m->process = p->pub.index;
	m->label = label ? label : "";
	return 0;
}

static int block_snapshot(loader *l, hs_cursor *c)
{
	hs_recording *r = l->r;
	proc_data *p;
	int64_t t, objects, bytes, pause;
	uint64_t trigger;
	const char *file, *error;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_u(l, c, &trigger, "trigger"));
	HS_TRY(rd_str(l, c, &file, "file"));
	HS_TRY(rd_s(l, c, &objects, "objects"));
	HS_TRY(rd_s(l, c, &bytes, "bytes"));
	HS_TRY(rd_s(l, c, &pause, "pause"));
	HS_TRY(rd_str(l, c, &error, "error"));
	if (trigger < HS_REC_SNAP_SCHEDULE || trigger > HS_REC_SNAP_END)
		return corrupt(l, "unknown snapshot trigger");
	if (file && (file[0] == '/' || strstr(file, "..")))
		return corrupt(l, "snapshot file name outside the recording's directory");
	GROW(r->snaps, r->snap_count, r->snap_cap, hs_rec_snapshot);
	hs_rec_snapshot *s = &r->snaps[r->snap_count];
	memset(s, 0, sizeof(*s));
	s->t = us_to_s(t);
	s->process = p->pub.index;
	s->trigger = (hs_rec_snapshot_trigger)trigger;
	s->file = file;
	s->objects = objects;
	s->bytes = bytes;
	s->pause = pause >= 0 ? (double)pause / 1e6 : 0.0;
	s->error = error;
	if (file) {
		size_t n = strlen(r->dir) + strlen(file) + 2;
		char *path = hs_malloc(n);
		if (!path)
			return HS_ENOMEM;
		snprintf(path, n, "%s%s%s", r->dir, r->dir[0] ? "/" : "", file);
		s->path = path;
	}
	r->snap_count++;
	return 0;
}

static int block_note(loader *l, hs_cursor *c)
{
	hs_recording *r = l->r;
	uint64_t proc, warning;
	int64_t t;
	const char *text;
	HS_TRY(rd_u(l, c, &proc, "process"));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_u(l, c, &warning, "level"));
	HS_TRY(rd_str(l, c, &text, "text"));
	if (proc > r->proc_count)
		return corrupt(l, "note about an undeclared process");
	GROW(r->notes, r->note_count, r->note_cap, hs_rec_note);
	hs_rec_note *n = &r->notes[r->note_count++];
	n->t = us_to_s(t);
	n->process = proc ? (ptrdiff_t)proc - 1 : -1;
	n->warning = warning != 0;
	n->text = text ? text : "";
	return 0;
}

/* ---- allocation sites (record --lines): blocks 13-16 ---- */

#define BLOCK_TRACK 13
#define BLOCK_SITES 14
#define BLOCK_SITE_DELTA 15
#define BLOCK_PEAK 16
#define MAX_SITE_ID (1u << 26)

static int block_track(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t;
	uint64_t flags, mean, seed;
	HS_TRY(rd_proc(l, c, &p));
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_u(l, c, &flags, "tracking flags"));
	HS_TRY(rd_u(l, c, &mean, "sample bytes"));
	HS_TRY(rd_u(l, c, &seed, "seed"));
	HS_TRY(rd_str(l, c, &p->track.settings.peak_basis, "peak basis"));
	p->track.settings.flags = (unsigned)flags;
	p->track.settings.sample_bytes = (int64_t)mean;
	p->track.settings.seed = seed;
	if (!p->tracked) {
		p->track.start = us_to_s(t);
		p->track.last = us_to_s(t);
		p->track.peak_bytes = -1;
	}
	p->tracked = 1;
	return 0;
}

static int grow_locs(proc_data *p, uint64_t id)
{
	if (id < p->locs_cap)
		return 0;
	size_t cap = p->locs_cap ? p->locs_cap : 64;
	while (cap <= id)
		cap *= 2;
	hs_rec_site_loc *n = hs_reallocarray(p->locs, cap, sizeof(*n));
	if (!n)
		return HS_ENOMEM;
	memset(n + p->locs_cap, 0, (cap - p->locs_cap) * sizeof(*n));
	for (size_t i = p->locs_cap; i < cap; i++)
		n[i].id = (uint32_t)i;
	p->locs = n;
	p->locs_cap = cap;
	return 0;
}

static int grow_stacks(proc_data *p, uint64_t id)
{
	if (id < p->stacks_cap)
		return 0;
	size_t cap = p->stacks_cap ? p->stacks_cap : 64, old = p->stacks_cap;
	while (cap <= id)
		cap *= 2;
	hs_rec_site_stack *s = hs_reallocarray(p->stacks, cap, sizeof(*s));
	if (!s)
		return HS_ENOMEM;
	p->stacks = s;
	hs_rec_site_fig *f = hs_reallocarray(p->figs, cap, sizeof(*f));
	if (!f)
		return HS_ENOMEM;
	p->figs = f;
	hs_rec_site_fig *pf = hs_reallocarray(p->peak_figs, cap, sizeof(*pf));
	if (!pf)
		return HS_ENOMEM;
	p->peak_figs = pf;
	uint32_t **sl = hs_reallocarray(p->stack_locs, cap, sizeof(*sl));
	if (!sl)
		return HS_ENOMEM;
	p->stack_locs = sl;
	memset(s + old, 0, (cap - old) * sizeof(*s));
	memset(f + old, 0, (cap - old) * sizeof(*f));
	memset(pf + old, 0, (cap - old) * sizeof(*pf));
	memset(sl + old, 0, (cap - old) * sizeof(*sl));
	for (size_t i = old; i < cap; i++) {
		s[i].id = f[i].stack = pf[i].stack = (uint32_t)i;
		s[i].tid = -1;
	}
	p->stacks_cap = cap;
	return 0;
}

static void track_publish(proc_data *p)
{
	p->track.locs = p->locs;
	p->track.stacks = p->stacks;
	p->track.figs = p->figs;
	p->track.peak_figs = p->peak_figs;
}

static int block_sites(loader *l, hs_cursor *c)
{
	proc_data *p;
	uint64_t n;
	HS_TRY(rd_proc(l, c, &p));
	if (!p->tracked)
		return corrupt(l, "sites before the tracking settings");
	HS_TRY(rd_u(l, c, &n, "location count"));
	if (n > hs_cursor_left(c))
		return corrupt(l, "locations beyond the block");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id, flags;
		int64_t line, first;
		const char *file, *fn;
		HS_TRY(rd_u(l, c, &id, "location id"));
		HS_TRY(rd_str(l, c, &file, "location file"));
		HS_TRY(rd_str(l, c, &fn, "location function"));
		HS_TRY(rd_s(l, c, &line, "location line"));
		HS_TRY(rd_s(l, c, &first, "location first line"));
		HS_TRY(rd_u(l, c, &flags, "location flags"));
		if (id >= MAX_SITE_ID)
			return corrupt(l, "location id out of range");
		HS_TRY(grow_locs(p, id));
		hs_rec_site_loc *loc = &p->locs[id];
		loc->file = file ? file : "";
		loc->function = fn ? fn : "";
		loc->line = (int32_t)line;
		loc->first_line = (int32_t)first;
		loc->flags = (unsigned)flags;
		if (id + 1 > p->track.nlocs)
			p->track.nlocs = (size_t)id + 1;
	}
	HS_TRY(rd_u(l, c, &n, "stack count"));
	if (n > hs_cursor_left(c))
		return corrupt(l, "stacks beyond the block");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id, kind, trunc, nf;
		int64_t tid;
		const char *thread;
		HS_TRY(rd_u(l, c, &id, "stack id"));
		HS_TRY(rd_u(l, c, &kind, "stack kind"));
		HS_TRY(rd_s(l, c, &tid, "stack thread id"));
		HS_TRY(rd_str(l, c, &thread, "stack thread"));
		HS_TRY(rd_u(l, c, &trunc, "stack truncated"));
		HS_TRY(rd_u(l, c, &nf, "stack depth"));
		if (id >= MAX_SITE_ID || nf > 4096 || nf > hs_cursor_left(c))
			return corrupt(l, "stack out of range");
		HS_TRY(grow_stacks(p, id));
		uint32_t *fr = hs_calloc(nf ? nf : 1, sizeof(*fr));
		if (!fr)
			return HS_ENOMEM;
		for (uint64_t k = 0; k < nf; k++) {
			uint64_t loc;
			int rc = rd_u(l, c, &loc, "stack frame");
			if (rc == 0 && loc >= MAX_SITE_ID)
				rc = corrupt(l, "stack frame out of range");
			if (rc < 0) {
				hs_free(fr);
				return rc;
			}
			fr[k] = (uint32_t)loc;
		}
		hs_free(p->stack_locs[id]);
		p->stack_locs[id] = fr;
		hs_rec_site_stack *s = &p->stacks[id];
		s->defined = 1;
		s->kind = (unsigned)kind;
		s->tid = tid;
		s->thread = thread;
		s->truncated = trunc != 0;
		s->n = (size_t)nf;
		s->locs = fr;
		if (id + 1 > p->track.nstacks)
			p->track.nstacks = (size_t)id + 1;
	}
	track_publish(p);
	return 0;
}

static int read_figs(loader *l, hs_cursor *c, proc_data *p, int alloc, int peak)
{
	uint64_t n;
	HS_TRY(rd_u(l, c, &n, "row count"));
	if (n > hs_cursor_left(c))
		return corrupt(l, "rows beyond the block");
	if (peak)
		for (size_t i = 0; i < p->stacks_cap; i++)
			p->peak_figs[i].live_n = p->peak_figs[i].live_b = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id;
		int64_t an = 0, ab = 0, ln, lb;
		HS_TRY(rd_u(l, c, &id, "stack id"));
		if (alloc) {
			HS_TRY(rd_s(l, c, &an, "allocated count"));
			HS_TRY(rd_s(l, c, &ab, "allocated bytes"));
		}
		HS_TRY(rd_s(l, c, &ln, "live count"));
		HS_TRY(rd_s(l, c, &lb, "live bytes"));
		if (id >= MAX_SITE_ID)
			return corrupt(l, "stack id out of range");
		HS_TRY(grow_stacks(p, id));
		if (id + 1 > p->track.nstacks)
			p->track.nstacks = (size_t)id + 1;
		hs_rec_site_fig *f = peak ? &p->peak_figs[id] : &p->figs[id];
		f->alloc_n += an;
		f->alloc_b += ab;
		if (peak) {
			f->live_n = ln;
			f->live_b = lb;
		} else {
			f->live_n += ln;
			f->live_b += lb;
		}
	}
	track_publish(p);
	return 0;
}

static int block_site_delta(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t;
	HS_TRY(rd_proc(l, c, &p));
	if (!p->tracked)
		return corrupt(l, "site figures before the tracking settings");
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(read_figs(l, c, p, 1, 0));
	p->track.last = us_to_s(t);
	p->track.deltas++;
	return 0;
}

static int block_peak(loader *l, hs_cursor *c)
{
	proc_data *p;
	int64_t t, total;
	HS_TRY(rd_proc(l, c, &p));
	if (!p->tracked)
		return corrupt(l, "a peak before the tracking settings");
	HS_TRY(rd_s(l, c, &t, "time"));
	HS_TRY(rd_s(l, c, &total, "peak bytes"));
	HS_TRY(read_figs(l, c, p, 0, 1));
	p->track.peak_bytes = total;
	p->track.peak_t = us_to_s(t);
	return 0;
}

const hs_rec_track *hs_rec_process_track(const hs_rec_process *pub)
{
	const proc_data *p = (const proc_data *)pub;
	return p && p->tracked ? &p->track : NULL;
}

static int decode_chunk(loader *l, const uint8_t *raw, size_t len)
{
	hs_recording *r = l->r;
	hs_cursor c = { raw, raw + len };
	uint64_t seq, nstrings;
	int64_t t_end;
	HS_TRY(rd_u(l, &c, &seq, "chunk number"));
	if (seq != l->chunks)
		return corrupt(l, "chunk out of sequence");
	HS_TRY(rd_s(l, &c, &t_end, "chunk end time"));
	if (t_end < l->t_end)
		return corrupt(l, "chunk ends before the previous one");
	HS_TRY(rd_u(l, &c, &nstrings, "string count"));
	if (nstrings > hs_cursor_left(&c))
		return corrupt(l, "more strings than bytes");
	for (uint64_t i = 0; i < nstrings; i++) {
		uint64_t slen;
		const uint8_t *s;
		HS_TRY(rd_u(l, &c, &slen, "string length"));
		if (slen > hs_cursor_left(&c) || hs_cursor_bytes(&c, &s, (size_t)slen, "string") < 0)
			return corrupt(l, "string longer than the chunk");
		GROW(r->strings, r->string_count, r->string_cap, char *);
		char *copy = hs_strndup((const char *)s, (size_t)slen);
		if (!copy)
			return HS_ENOMEM;
		r->strings[r->string_count++] = copy;
	}
	while (hs_cursor_left(&c)) {
		uint64_t kind, blen;
		HS_TRY(rd_u(l, &c, &kind, "block kind"));
		HS_TRY(rd_u(l, &c, &blen, "block length"));
		if (blen > hs_cursor_left(&c))
			return corrupt(l, "block longer than the chunk");
		hs_cursor b = { c.p, c.p + blen };
		c.p += blen;
		switch (kind) {
		case HS_REC_BLOCK_START: {
			uint64_t wall, interval, flags;
			if (seq != 0 || l->saw_start)
				return corrupt(l, "start record outside the first chunk");
			HS_TRY(rd_u(l, &b, &wall, "start time"));
			HS_TRY(rd_u(l, &b, &interval, "interval"));
			HS_TRY(rd_u(l, &b, &flags, "flags"));
			if (flags & ~(uint64_t)HS_REC_FLAGS_KNOWN)
				return fail(l, HS_EVERSION, "unknown recording flags 0x%llx; a newer heapsnap "
				            "wrote this file", (unsigned long long)flags);
			r->info.wall_start = (double)wall / 1e6;
			r->info.interval = (double)interval / 1e6;
			r->info.flags = (unsigned)flags;
			l->saw_start = 1;
			break;
		}
		case HS_REC_BLOCK_PROC: HS_TRY(block_proc(l, &b)); break;
		case HS_REC_BLOCK_EXEC: HS_TRY(block_exec(l, &b)); break;
		case HS_REC_BLOCK_EXIT: HS_TRY(block_exit(l, &b)); break;
		case HS_REC_BLOCK_SERIES: HS_TRY(block_series(l, &b)); break;
		case HS_REC_BLOCK_TYPES: HS_TRY(block_types(l, &b)); break;
		case HS_REC_BLOCK_MARK: HS_TRY(block_mark(l, &b)); break;
		case HS_REC_BLOCK_SNAPSHOT: HS_TRY(block_snapshot(l, &b)); break;
		case HS_REC_BLOCK_NOTE: HS_TRY(block_note(l, &b)); break;
		case HS_REC_BLOCK_PROC_FLAGS: HS_TRY(block_flags(l, &b)); break;
		case BLOCK_TRACK: HS_TRY(block_track(l, &b)); break;
		case BLOCK_SITES: HS_TRY(block_sites(l, &b)); break;
		case BLOCK_SITE_DELTA: HS_TRY(block_site_delta(l, &b)); break;
		case BLOCK_PEAK: HS_TRY(block_peak(l, &b)); break;
		case HS_REC_BLOCK_SAMPLER: {
			uint64_t cpu;
			HS_TRY(rd_u(l, &b, &cpu, "sampler CPU"));
			r->info.sampler_cpu += (double)cpu / 1e6;
			break;
		}
		case HS_REC_BLOCK_END: {
			uint64_t stop;
			int64_t status;
			HS_TRY(rd_u(l, &b, &stop, "stop reason"));
			HS_TRY(rd_s(l, &b, &status, "root status"));
			if (stop > HS_REC_STOP_ERROR)
				stop = HS_REC_STOP_UNKNOWN;
			r->info.stop = (hs_rec_stop)stop;
			r->info.root_status = status >= -1 && status <= 0xffff ? (int)status : -1;
			l->saw_end = 1;
			break;
		}
		default:
			break; /* unknown blocks are skipped: newer writers stay readable */
		}
		if (((kind <= HS_REC_BLOCK_PROC_FLAGS && kind != HS_REC_BLOCK_SERIES) ||
		     (kind >= BLOCK_TRACK && kind <= BLOCK_PEAK)) && hs_cursor_left(&b))
			return corrupt(l, "block with bytes left over");
	}
	if (!l->saw_start)
		return corrupt(l, "the first chunk has no start record");
	l->chunks++;
	l->t_end = t_end;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* The index written at a clean end must list every section before it. */
static int check_index(loader *l, const hs_section_info *idx, const hs_section_info *seen,
                       size_t nseen)
{
	const uint8_t *raw;
	HS_TRY(hs_format__section_raw(&l->dctx, &l->raw, l->data, idx, l->name, &raw));
	hs_cursor c = { raw, raw + idx->raw };
	uint64_t v, count;
	l->where = "index";
	for (int i = 0; i < 5; i++)
		HS_TRY(rd_u(l, &c, &v, "totals"));
	HS_TRY(rd_u(l, &c, &count, "section count"));
	if (count != nseen)
		return corrupt(l, "it lists a different number of sections");
	for (uint64_t i = 0; i < count; i++) {
		uint64_t kind, offset, rawlen, stored;
		HS_TRY(rd_u(l, &c, &kind, "section kind"));
		HS_TRY(rd_u(l, &c, &offset, "section offset"));
		HS_TRY(rd_u(l, &c, &rawlen, "section length"));
		HS_TRY(rd_u(l, &c, &stored, "section length"));
		if (kind != seen[i].kind || offset != seen[i].offset || rawlen != seen[i].raw ||
		    stored != seen[i].stored)
			return corrupt(l, "it disagrees with the sections");
	}
	if (hs_cursor_left(&c))
		return corrupt(l, "trailing bytes");
	return 0;
}

static int set_warning(hs_recording *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_warning(hs_recording *r, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hs_free(r->warning);
	r->warning = hs_strdup(buf);
	if (!r->warning)
		return HS_ENOMEM;
	r->info.warning = r->warning;
	return 0;
}

static int load(loader *l)
{
	hs_recording *r = l->r;
	const uint8_t *h = l->data;
	if (l->size < 8 || memcmp(h, HS_MAGIC, 8) != 0) {
		if (l->size >= 4 && memcmp(h, HS_MAGIC, 4) == 0)
			return fail(l, HS_EFORMAT, "damaged header (the file looks converted as text: copy "
			                           "recordings in binary mode)");
		if (l->size == 0)
			return fail(l, HS_EFORMAT, "empty file, not a heapsnap recording");
		return fail(l, HS_EFORMAT, "not a heapsnap recording (bad magic)");
	}
	if (l->size < HS_HEADER_SIZE)
		return fail(l, HS_EFORMAT, "truncated (header incomplete); the recorder stopped before "
		                           "writing anything");
	if (hs_get_le32(h + 28) != hs_crc32(0, h, 28))
		return fail(l, HS_EFORMAT, "corrupt header (checksum mismatch)");
	uint16_t major = hs_get_le16(h + 8), minor = hs_get_le16(h + 10);
	if (major != HS_FORMAT_MAJOR)
		return fail(l, HS_EVERSION, "recording format version %u.%u is not supported (this "
		                            "heapsnap reads %u.x); use a heapsnap that matches the one "
		                            "that wrote it", major, minor, HS_FORMAT_MAJOR);
	uint16_t kind = hs_get_le16(h + 12);
	if (kind == HS_FILE_SNAPSHOT)
		return fail(l, HS_EFORMAT, "this is a heapsnap snapshot, not a recording");
	if (kind != HS_FILE_RECORDING)
		return fail(l, HS_EFORMAT, "unknown file kind %u", kind);
	if (hs_get_le32(h + 20) != 0)
		return fail(l, HS_EVERSION, "unknown header flags 0x%x; a newer heapsnap wrote this file",
		            hs_get_le32(h + 20));

	hs_section_info *seen = NULL;
	size_t nseen = 0, seen_cap = 0;
	uint64_t off = HS_HEADER_SIZE;
	int rc = 0, have_meta = 0, clean = 0;
	while (off < l->size) {
		hs_section_info s;
		hs_section_status st = hs_format__section_check(l->data, l->size, off, &s);
		if (st != HS_SECTION_OK) {
			/* The tail: a section cut short, or zeros where a crash left
			 * allocated but unwritten blocks. Anything else is damage. */
			int tail = st == HS_SECTION_SHORT || st == HS_SECTION_CUT ||
			           all_zero(l->data + off, l->size - off) ||
			           (st == HS_SECTION_BAD_PAYLOAD &&
			            off + HS_SECTION_HEADER_SIZE + s.stored == l->size);
			if (!tail || !have_meta || l->opts->strict) {
				if (!have_meta)
					rc = fail(l, HS_EFORMAT, "truncated (metadata incomplete); the recorder "
					                         "stopped before writing anything");
				else
					rc = fail(l, HS_EFORMAT, "damaged section at offset %llu (%s); the recording "
					          "is damaged before its end", (unsigned long long)off,
					          hs_format__section_status_text(st));
				goto done;
			}
			if ((rc = set_warning(r, "recording ended abruptly at %.1f s (an incomplete chunk at "
			                         "offset %llu was dropped)", us_to_s(l->t_end),
			                      (unsigned long long)off)) < 0)
				goto done;
			break;
		}
		const uint8_t *raw;
		if (s.kind == HS_SECTION_INDEX) {
			/* a clean end: the footer must follow and end the file. Its 24
			 * bytes are known from what precedes it, so a footer cut short
			 * (the recorder stopped while writing it) is told from damage:
			 * its bytes so far match, then zeros at most (a power cut) */
			uint64_t end = off + HS_SECTION_HEADER_SIZE + s.stored, have = l->size - end;
			uint8_t foot[HS_FOOTER_SIZE];
			hs_put_le64(foot, off);
			hs_put_le32(foot + 8, (uint32_t)nseen);
			hs_put_le32(foot + 12, hs_crc32(0, foot, 12));
			memcpy(foot + 16, HS_END_MAGIC, 8);
			size_t same = 0;
			while (same < have && same < HS_FOOTER_SIZE && l->data[end + same] == foot[same])
				same++;
			int cut = have < HS_FOOTER_SIZE &&
			          all_zero(l->data + end + same, (size_t)have - same);
			if (cut && !l->opts->strict) {
				if ((rc = check_index(l, &s, seen, nseen)) < 0)
					goto done;
				if ((rc = set_warning(r, "recording ended abruptly at %.1f s while its footer was "
				                         "written (%llu of %d bytes); everything before it was "
				                         "read", us_to_s(l->t_end), (unsigned long long)have,
				                      HS_FOOTER_SIZE)) < 0)
					goto done;
				off = l->size;
				break;
			}
			if (have != HS_FOOTER_SIZE || memcmp(l->data + end, foot, HS_FOOTER_SIZE) != 0) {
				rc = fail(l, HS_EFORMAT, "%s footer after the index at offset %llu",
				          cut ? "truncated" : "corrupt", (unsigned long long)off);
				goto done;
			}
			if ((rc = check_index(l, &s, seen, nseen)) < 0)
				goto done;
			clean = 1;
			off = l->size;
			break;
		}
		if (nseen == seen_cap) {
			size_t cap = seen_cap ? seen_cap * 2 : 64;
			hs_section_info *p = hs_reallocarray(seen, cap, sizeof(*p));
			if (!p) {
				rc = HS_ENOMEM;
				goto done;
			}
			seen = p;
			seen_cap = cap;
		}
		seen[nseen++] = s;
		if (!have_meta && s.kind != HS_SECTION_META) {
			rc = fail(l, HS_EFORMAT, "corrupt recording (the first section is not the metadata)");
			goto done;
		}
		switch (s.kind) {
		case HS_SECTION_META:
		case HS_SECTION_META_END:
			if ((s.kind == HS_SECTION_META) == (have_meta != 0) ||
			    (s.kind == HS_SECTION_META_END && r->meta_end)) {
				rc = fail(l, HS_EFORMAT, "corrupt recording (a second metadata section at offset "
				          "%llu)", (unsigned long long)off);
				goto done;
			}
			if ((rc = hs_format__section_raw(&l->dctx, &l->raw, l->data, &s, l->name, &raw)) < 0)
				goto done;
			char *json = hs_strndup((const char *)raw, s.raw);
			if (!json) {
				rc = HS_ENOMEM;
				goto done;
			}
			if (s.kind == HS_SECTION_META) {
				r->meta = json;
				have_meta = 1;
			} else {
				r->meta_end = json;
			}
			break;
		case HS_SECTION_CHUNK:
			if ((rc = hs_format__section_raw(&l->dctx, &l->raw, l->data, &s, l->name, &raw)) < 0)
				goto done;
			snprintf(l->where_buf, sizeof(l->where_buf), "chunk %llu at offset %llu",
			         (unsigned long long)l->chunks, (unsigned long long)off);
			l->where = l->where_buf;
			if ((rc = decode_chunk(l, raw, s.raw)) < 0)
				goto done;
			break;
		default:
			break; /* unknown kinds are skipped */
		}
		off += HS_SECTION_HEADER_SIZE + s.stored;
	}
	if (!have_meta) {
		rc = fail(l, HS_EFORMAT, "truncated (metadata incomplete); the recorder stopped before "
		                         "writing anything");
		goto done;
	}
	r->info.complete = l->saw_end;
	if (!l->saw_end && !r->warning)
		if ((rc = set_warning(r, "recording ended abruptly at %.1f s", us_to_s(l->t_end))) < 0)
			goto done;
	/* every chunk is there but the index and footer are not: cut at a
	 * section boundary while the recorder was finishing the file */
	if (!clean && !r->warning)
		if ((rc = set_warning(r, "recording ended abruptly at %.1f s while its end was written "
		                         "(index or footer missing); all its chunks were read",
		                      us_to_s(l->t_end))) < 0)
			goto done;
	r->info.chunks = (size_t)l->chunks;
	r->info.duration = us_to_s(l->t_end);
	r->info.file_bytes = off;
done:
	hs_free(seen);
	return rc;
}

/* ------------------------------------------------------------------ */
/* derived figures                                                     */

/* Index of the last sample with t <= x in t[0..n), or -1. */
static ptrdiff_t last_at_or_before(const double *t, size_t n, double x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

static int derive(hs_recording *r)
{
	for (size_t i = 0; i < r->proc_count; i++) {
		proc_data *p = r->procs[i];
		for (int m = 0; m < HS_REC_METRIC_COUNT; m++) {
			series_data *s = &p->s[metric_defs[m].kind];
			if (metric_column[m] && s->n) {
				p->metric[m] = s->col[metric_column[m]];
				continue;
			}
			int64_t *a = hs_calloc(s->n ? s->n : 1, sizeof(int64_t));
			if (!a)
				return HS_ENOMEM;
			p->metric[m] = a;
			p->owned |= 1u << m;
			for (size_t k = 0; k < s->n && metric_column[m] == 0; k++) {
				int64_t v = -1;
				switch (m) {
				case HS_REC_CPU:
					v = s->col[6][k] < 0 || s->col[7][k] < 0 ? -1
					    : (s->col[6][k] + s->col[7][k]) * 1000000;
					break;
				case HS_REC_PY_GC_COLLECTIONS:
					v = (s->col[6][k] < 0) ? -1 : s->col[6][k] + s->col[7][k] + s->col[8][k];
					break;
				case HS_REC_PY_GC_PAUSE:
					v = (s->col[11][k] < 0) ? -1
					    : (s->col[11][k] + s->col[12][k] + s->col[13][k]) * 1000;
					break;
				default: break; /* estimates below */
				}
				a[k] = v;
			}
		}
		/* PSS and USS between smaps samples (see recording.h) */
		series_data *mem = &p->s[HS_REC_SERIES_MEM], *sm = &p->s[HS_REC_SERIES_SMAPS];
		int64_t *pe = p->metric[HS_REC_PSS_EST], *ue = p->metric[HS_REC_USS_EST];
		for (size_t k = 0; k < mem->n; k++) {
			if (!sm->n) {
				pe[k] = ue[k] = -1;
				continue;
			}
			ptrdiff_t j = last_at_or_before(sm->t, sm->n, mem->t[k]);
			if (j < 0)
				j = 0;
			ptrdiff_t mj = last_at_or_before(mem->t, mem->n, sm->t[j]);
			if (mj < 0)
				mj = 0;
			int64_t rss = mem->col[1][k], shared = mem->col[3][k];
			int64_t rss_j = mem->col[1][mj], shared_j = mem->col[3][mj];
			int64_t anon = rss - shared, anon_j = rss_j - shared_j;
			int64_t pss = sm->col[1][j], uss = sm->col[2][j];
			int64_t pa = sm->col[3][j], pf = sm->col[4][j], psh = sm->col[5][j];
			int64_t est;
			if (pa >= 0 && pf >= 0 && psh >= 0) {
				int64_t a = pa + (anon - anon_j);
				double ratio = shared_j > 0 ? (double)(pf + psh) / (double)shared_j : 1.0;
				est = (a > 0 ? a : 0) + (int64_t)((double)shared * ratio + 0.5);
			} else {
				est = pss + (rss - rss_j);
			}
			int64_t u = uss + (anon - anon_j);
			pe[k] = pss < 0 ? -1 : (est > 0 ? est : 0);
			ue[k] = uss < 0 ? -1 : (u > 0 ? u : 0);
		}
		if (!p->ended)
			p->pub.end = r->info.duration;
		if (p->pub.end < p->pub.start)
			p->pub.end = p->pub.start;
		for (unsigned k = 1; k <= HS_REC_SERIES_KIND_MAX; k++)
			r->info.samples += p->s[k].n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* public                                                              */

static int open_image(hs_recording **out, const void *data, size_t len, const char *name,
                      const hs_recording_options *opts)
{
	hs_recording_options defaults = HS_RECORDING_OPTIONS_INIT;
	*out = NULL;
	if (opts && opts->version != HS_RECORDING_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "recording options version %u is not %u", opts->version,
		                    HS_RECORDING_OPTIONS_VERSION);
	hs_recording *r = hs_calloc(1, sizeof(*r));
	if (!r)
		return HS_ENOMEM;
	r->info.root_status = -1;
	r->name = hs_strdup(name ? name : "<memory>");
	if (!r->name) {
		hs_recording_free(r);
		return HS_ENOMEM;
	}
	const char *slash = strrchr(r->name, '/');
	r->dir = slash ? hs_strndup(r->name, (size_t)(slash - r->name == 0 ? 1 : slash - r->name))
	               : hs_strdup("");
	if (!r->dir) {
		hs_recording_free(r);
		return HS_ENOMEM;
	}
	loader l;
	memset(&l, 0, sizeof(l));
	l.r = r;
	l.name = r->name;
	l.data = data;
	l.size = len;
	l.opts = opts ? opts : &defaults;
	l.where = "recording";
	int rc = load(&l);
	if (rc == 0)
		rc = derive(r);
	hs_buf_release(&l.raw);
	if (l.dctx)
		ZSTD_freeDCtx(l.dctx);
	if (rc < 0) {
		hs_recording_free(r);
		return rc;
	}
	r->info.meta = r->meta;
	r->info.meta_end = r->meta_end;
	*out = r;
	return 0;
}

int hs_recording_open_memory(hs_recording **out, const void *data, size_t len, const char *name,
                             const hs_recording_options *opts)
{
	return open_image(out, data ? data : "", len, name, opts);
}

int hs_recording_open(hs_recording **out, const char *path, const hs_recording_options *opts)
{
	*out = NULL;
	/* FIFOs, sockets, devices and directories are refused at once */
	int fd;
	HS_TRY(hs_file_open_input(&fd, path, "a recording"));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	size_t size = (size_t)st.st_size;
	void *map = NULL;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			int e = errno;
			close(fd);
			return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
		}
		madvise(map, size, MADV_SEQUENTIAL);
	}
	close(fd);
	int rc = open_image(out, map ? map : "", size, path, opts);
	if (map)
		munmap(map, size);
	return rc;
}

int hs_file_kind_of(const char *path)
{
	int fd;
	HS_TRY(hs_file_open_input(&fd, path, "a heapsnap file"));
	uint8_t h[HS_HEADER_SIZE];
	ssize_t n;
	do
		n = read(fd, h, sizeof(h));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 14 || memcmp(h, HS_MAGIC, 8) != 0)
		return 0;
	uint16_t kind = hs_get_le16(h + 12);
	return kind == HS_FILE_SNAPSHOT || kind == HS_FILE_RECORDING ? kind : 0;
}

void hs_recording_free(hs_recording *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->proc_count; i++) {
		proc_data *p = r->procs[i];
		free_argv(p);
		for (unsigned k = 0; k <= HS_REC_SERIES_KIND_MAX; k++) {
			hs_free(p->s[k].t);
			for (size_t c = 0; c < MAX_COLS; c++)
				hs_free(p->s[k].col[c]);
		}
		for (int m = 0; m < HS_REC_METRIC_COUNT; m++)
			if (p->owned & (1u << m))
				hs_free(p->metric[m]);
		hs_free(p->types);
		for (size_t k = 0; k < p->stacks_cap; k++)
			hs_free(p->stack_locs[k]);
		hs_free(p->stack_locs);
		hs_free(p->stacks);
		hs_free(p->figs);
		hs_free(p->peak_figs);
		hs_free(p->locs);
		hs_free(p);
	}
	hs_free(r->procs);
	for (size_t i = 0; i < r->string_count; i++)
		hs_free(r->strings[i]);
	hs_free(r->strings);
	for (size_t i = 0; i < r->type_rows_count; i++)
		hs_free(r->type_rows[i]);
	hs_free(r->type_rows);
	for (size_t i = 0; i < r->snap_count; i++)
		hs_free((char *)r->snaps[i].path);
	hs_free(r->snaps);
	hs_free(r->markers);
	hs_free(r->notes);
	hs_free(r->meta);
	hs_free(r->meta_end);
	hs_free(r->warning);
	hs_free(r->dir);
	hs_free(r->name);
	hs_free(r);
}

const hs_rec_info *hs_recording_info(const hs_recording *r) { return &r->info; }
const char *hs_recording_name(const hs_recording *r) { return r->name; }
size_t hs_recording_process_count(const hs_recording *r) { return r->proc_count; }

const hs_rec_process *hs_recording_process(const hs_recording *r, size_t i)
{
	return i < r->proc_count ? &r->procs[i]->pub : NULL;
}

const hs_rec_process *hs_recording_root(const hs_recording *r)
{
	for (size_t i = 0; i < r->proc_count; i++)
		if (r->procs[i]->pub.flags & HS_REC_PROC_ROOT)
			return &r->procs[i]->pub;
	return r->proc_count ? &r->procs[0]->pub : NULL;
}

size_t hs_recording_marker_count(const hs_recording *r) { return r->marker_count; }
const hs_rec_marker *hs_recording_marker(const hs_recording *r, size_t i)
{
	return i < r->marker_count ? &r->markers[i] : NULL;
}
size_t hs_recording_snapshot_count(const hs_recording *r) { return r->snap_count; }
const hs_rec_snapshot *hs_recording_snapshot(const hs_recording *r, size_t i)
{
	return i < r->snap_count ? &r->snaps[i] : NULL;
}
size_t hs_recording_note_count(const hs_recording *r) { return r->note_count; }
const hs_rec_note *hs_recording_note(const hs_recording *r, size_t i)
{
	return i < r->note_count ? &r->notes[i] : NULL;
}

int hs_rec_process_series(hs_rec_series *out, const hs_rec_process *pub, hs_rec_metric m)
{
	memset(out, 0, sizeof(*out));
	if ((int)m < 0 || m >= HS_REC_METRIC_COUNT)
		return hs_error_set(HS_EINVAL, "unknown metric %d", (int)m);
	const proc_data *p = (const proc_data *)pub;
	const series_data *s = &p->s[metric_defs[m].kind];
	out->count = s->n;
	out->t = s->t;
	out->v = p->metric[m];
	return 0;
}

size_t hs_rec_process_samples(const hs_rec_process *pub, hs_rec_series_kind kind, const double **t)
{
	const proc_data *p = (const proc_data *)pub;
	if (kind < 1 || kind > HS_REC_SERIES_KIND_MAX) {
		*t = NULL;
		return 0;
	}
	*t = p->s[kind].t;
	return p->s[kind].n;
}

size_t hs_rec_process_column(const int64_t **out, const hs_rec_process *pub,
                             hs_rec_series_kind kind, size_t column)
{
	const proc_data *p = (const proc_data *)pub;
	*out = NULL;
	if (kind < 1 || kind > HS_REC_SERIES_KIND_MAX || column >= kind_columns[kind] ||
	    !p->s[kind].n)
		return 0;
	*out = p->s[kind].col[column];
	return p->s[kind].n;
}

int hs_rec_process_value_at(int64_t *out, const hs_rec_process *pub, hs_rec_metric m, double t)
{
	hs_rec_series s;
	HS_TRY(hs_rec_process_series(&s, pub, m));
	if (!s.count || t < pub->start - 1e-9 || t > pub->end + 1e-9)
		return hs_error_set(HS_ENOTFOUND, "process %d has no %s sample at %.3f s", pub->pid,
		                    hs_rec_metric_name(m), t);
	ptrdiff_t i = last_at_or_before(s.t, s.count, t);
	if (i < 0)
		i = 0;
	if (s.v[i] < 0)
		return hs_error_set(HS_ENOTFOUND, "process %d has no %s figure at %.3f s", pub->pid,
		                    hs_rec_metric_name(m), t);
	*out = s.v[i];
	return 0;
}

double hs_rec_process_rate(const hs_rec_process *pub, hs_rec_series_kind kind)
{
	const double *t;
	size_t n = hs_rec_process_samples(pub, kind, &t);
	if (n < 2 || t[n - 1] <= t[0])
		return 0.0;
	return (double)(n - 1) / (t[n - 1] - t[0]);
}

size_t hs_rec_process_types_count(const hs_rec_process *pub)
{
	return ((const proc_data *)pub)->types_count;
}

const hs_rec_types *hs_rec_process_types(const hs_rec_process *pub, size_t i)
{
	const proc_data *p = (const proc_data *)pub;
	return i < p->types_count ? &p->types[i] : NULL;
}
