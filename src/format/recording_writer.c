/*
 * format/recording_writer.c: writes a recording (formats/recording-v1.md).
 *
 * Events (processes, exits, markers, snapshots, notes...) are encoded as
 * blocks as they come; series samples are kept per process and kind as
 * rows of int64 until the chunk is flushed, then written column by column
 * (time as a delta of deltas, the rest as deltas), so zstd sees long runs
 * of small, similar numbers. A chunk is one section, written with a single
 * write(2): a recorder killed at any point leaves every earlier chunk whole.
 *
 * The file is created as a temporary file beside its final name
 * (util/file.h) and renamed into place as soon as its first chunk is
 * written: from then on the final name always holds a readable recording
 * (a valid prefix), and later chunks are appended in place. A recorder that
 * fails or is stopped before its first chunk (a full disk, a command that
 * cannot start) leaves nothing under the final name, and a file already
 * there is replaced only by a readable one.
 *
 * Strings (argv, labels, type names, file names) get global ids in the
 * order they are first used; each chunk carries the strings it defines
 * before the blocks that use them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "heapsnap/recording.h"
#include "format_internal.h"
#include "util/intern.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/file.h"

typedef struct series_rows {
	int64_t *v;   /* n rows of ncols values */
	size_t n, cap;
} series_rows;

typedef struct proc_series {
	series_rows kind[HS_REC_SERIES_KIND_MAX + 1];
} proc_series;

typedef struct section_entry {
	uint32_t kind, raw, stored;
	uint64_t offset;
} section_entry;

struct hs_rec_writer {
	hs_rec_writer_options opts;
	char *path;
	hs_file_out file; /* the temporary file, renamed into place at the first chunk */
	int fd;           /* file.fd */
	uint64_t offset;
	ZSTD_CCtx *cctx;
	int failed; /* a write failed: the file ends at the last good chunk */
	int closed;

	section_entry *sections;
	size_t section_count, section_cap;

	/* strings */
	hs_intern strings; /* every string written, to give it one id */
	uint32_t string_count;
	hs_buf pending_strings;
	uint32_t pending_string_count;

	/* the chunk being built */
	hs_buf events;   /* encoded blocks, in call order */
	hs_buf scratch;  /* one block's payload */
	hs_buf column;   /* one column's bytes */
	hs_buf raw;      /* the chunk's raw payload */
	hs_buf out;      /* the section as written */
	proc_series *series;
	size_t proc_count, proc_cap;
	uint64_t chunk_seq;
	int64_t last_t_end;
	int64_t cpu_us;  /* sampler CPU not yet written */
	int have_events;

	hs_rec_write_stats stats;
};

static const size_t series_columns[HS_REC_SERIES_KIND_MAX + 1] = {
	0, HS_REC_MEM_COLUMNS, HS_REC_STATUS_COLUMNS, HS_REC_SMAPS_COLUMNS, HS_REC_PY_COLUMNS,
	HS_REC_GC_COLUMNS,
};

/* ------------------------------------------------------------------ */

static int write_all(hs_rec_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->failed = 1;
			return hs_error_set(HS_EIO, "cannot write '%s': %s%s", w->path, strerror(errno),
			                    w->file.committed ? "" : "; nothing was written under that name");
		}
		p += n;
		len -= (size_t)n;
		w->offset += (uint64_t)n;
	}
	return 0;
}

static int emit_section(hs_rec_writer *w, uint32_t kind, const uint8_t *raw, size_t len, int compress)
{
	if (w->failed)
		return hs_error_set(HS_EIO, "cannot write '%s': an earlier write failed", w->path);
	hs_buf_clear(&w->out);
	HS_TRY(hs_format__section_build(&w->out, w->cctx, w->opts.compression_level, kind, raw, len,
	                                compress));
	if (w->section_count == w->section_cap) {
		size_t cap = w->section_cap ? w->section_cap * 2 : 64;
		section_entry *s = hs_reallocarray(w->sections, cap, sizeof(*s));
		if (!s)
			return HS_ENOMEM;
		w->sections = s;
		w->section_cap = cap;
	}
	section_entry *e = &w->sections[w->section_count];
	e->kind = kind;
	e->raw = (uint32_t)len;
	e->stored = (uint32_t)(w->out.len - HS_SECTION_HEADER_SIZE);
	e->offset = w->offset;
	HS_TRY(write_all(w, w->out.data, w->out.len));
	if (kind != HS_SECTION_INDEX)
		w->section_count++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* strings                                                             */

/* A string reference: 0 for NULL, else id + 1. */
static int string_ref(hs_rec_writer *w, uint64_t *out, const char *s)
{
	if (!s) {
		*out = 0;
		return 0;
	}
	size_t len = strlen(s);
	if (len > 65536)
		len = 65536; /* argv strings can be huge: the first 64 KiB are enough */
	uint32_t id, next = w->string_count >= UINT32_MAX - 1 ? UINT32_MAX : w->string_count;
	int added = hs_intern_get(&w->strings, &id, s, len, next);
	if (added == HS_ELIMIT)
		return hs_error_set(HS_ELIMIT, "too many strings in one recording");
	if (added < 0)
		return added;
	*out = (uint64_t)id + 1;
	if (added) {
		HS_TRY(hs_buf_put_varint(&w->pending_strings, len));
		HS_TRY(hs_buf_put(&w->pending_strings, s, len));
		w->string_count++;
		w->pending_string_count++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* blocks                                                              */

static int put_sv(hs_buf *b, int64_t v) { return hs_buf_put_varint(b, hs_zigzag_encode(v)); }

/* Append the block in w->scratch to the events. */
static int end_block(hs_rec_writer *w, unsigned kind)
{
	HS_TRY(hs_buf_put_varint(&w->events, kind));
	HS_TRY(hs_buf_put_varint(&w->events, w->scratch.len));
	HS_TRY(hs_buf_put(&w->events, w->scratch.data, w->scratch.len));
	hs_buf_clear(&w->scratch);
	w->have_events = 1;
	return 0;
}

static int check_open(hs_rec_writer *w)
{
	if (w->closed)
		return hs_error_set(HS_EINVAL, "recording '%s' is already closed", w->path);
	return 0;
}

static int check_proc(hs_rec_writer *w, size_t proc)
{
	HS_TRY(check_open(w));
	if (proc >= w->proc_count)
		return hs_error_set(HS_EINVAL, "process index %zu was not declared", proc);
	return 0;
}

static int put_argv(hs_rec_writer *w, size_t argc, const char *const *argv)
{
	if (argc > 4096)
		argc = 4096;
	HS_TRY(hs_buf_put_varint(&w->scratch, argc));
	for (size_t i = 0; i < argc; i++) {
		uint64_t ref;
		HS_TRY(string_ref(w, &ref, argv[i] ? argv[i] : ""));
		HS_TRY(hs_buf_put_varint(&w->scratch, ref));
	}
	return 0;
}

int hs_rec_writer_process(hs_rec_writer *w, size_t *out, const hs_rec_proc_start *p)
{
	HS_TRY(check_open(w));
	if (p->parent >= (ptrdiff_t)w->proc_count)
		return hs_error_set(HS_EINVAL, "parent index %td was not declared", p->parent);
	if (p->flags & ~HS_REC_PROC_FLAGS_KNOWN)
		return hs_error_set(HS_EINVAL, "unknown process flags 0x%x", p->flags);
	if (w->proc_count == w->proc_cap) {
		size_t cap = w->proc_cap ? w->proc_cap * 2 : 16;
		proc_series *s = hs_reallocarray(w->series, cap, sizeof(*s));
		if (!s)
			return HS_ENOMEM;
		memset(s + w->proc_cap, 0, (cap - w->proc_cap) * sizeof(*s));
		w->series = s;
		w->proc_cap = cap;
	}
	uint64_t exe;
	HS_TRY(string_ref(w, &exe, p->exe ? p->exe : ""));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, w->proc_count));
	HS_TRY(hs_buf_put_varint(b, (uint64_t)(p->pid > 0 ? p->pid : 0)));
	HS_TRY(hs_buf_put_varint(b, (uint64_t)(p->ppid > 0 ? p->ppid : 0)));
	HS_TRY(hs_buf_put_varint(b, p->parent < 0 ? 0 : (uint64_t)p->parent + 1));
	HS_TRY(put_sv(b, p->t_us));
	HS_TRY(hs_buf_put_varint(b, p->flags));
	HS_TRY(hs_buf_put_varint(b, exe));
	HS_TRY(put_argv(w, p->argc, p->argv));
	HS_TRY(end_block(w, HS_REC_BLOCK_PROC));
	*out = w->proc_count++;
	return 0;
}

int hs_rec_writer_exec(hs_rec_writer *w, size_t proc, int64_t t_us, const char *exe, size_t argc,
                       const char *const *argv)
{
	HS_TRY(check_proc(w, proc));
	uint64_t ref;
	HS_TRY(string_ref(w, &ref, exe ? exe : ""));
	HS_TRY(hs_buf_put_varint(&w->scratch, proc));
	HS_TRY(put_sv(&w->scratch, t_us));
	HS_TRY(hs_buf_put_varint(&w->scratch, ref));
	HS_TRY(put_argv(w, argc, argv));
	return end_block(w, HS_REC_BLOCK_EXEC);
}

int hs_rec_writer_proc_flags(hs_rec_writer *w, size_t proc, int64_t t_us, unsigned flags)
{
	HS_TRY(check_proc(w, proc));
	if (flags & ~HS_REC_PROC_FLAGS_KNOWN)
		return hs_error_set(HS_EINVAL, "unknown process flags 0x%x", flags);
	HS_TRY(hs_buf_put_varint(&w->scratch, proc));
	HS_TRY(put_sv(&w->scratch, t_us));
	HS_TRY(hs_buf_put_varint(&w->scratch, flags));
	return end_block(w, HS_REC_BLOCK_PROC_FLAGS);
}

int hs_rec_writer_exit(hs_rec_writer *w, size_t proc, int64_t t_us, const hs_rec_exit *e)
{
	HS_TRY(check_proc(w, proc));
	if (e->how > HS_REC_VANISHED || (e->flags & ~HS_REC_EXIT_FLAGS_KNOWN))
		return hs_error_set(HS_EINVAL, "invalid exit record");
	HS_TRY(hs_buf_put_varint(&w->scratch, proc));
	HS_TRY(put_sv(&w->scratch, t_us));
	HS_TRY(hs_buf_put_varint(&w->scratch, (uint64_t)e->how));
	HS_TRY(hs_buf_put_varint(&w->scratch, (uint64_t)(e->code & 0xff)));
	HS_TRY(hs_buf_put_varint(&w->scratch, (uint64_t)(e->signal > 0 ? e->signal : 0)));
	HS_TRY(hs_buf_put_varint(&w->scratch, e->flags));
	return end_block(w, HS_REC_BLOCK_EXIT);
}

int hs_rec_writer_sample(hs_rec_writer *w, size_t proc, hs_rec_series_kind kind,
                         const int64_t *values, size_t count)
{
	HS_TRY(check_proc(w, proc));
	if (kind < 1 || kind > HS_REC_SERIES_KIND_MAX || count != series_columns[kind])
		return hs_error_set(HS_EINVAL, "series kind %d takes %zu values, not %zu", (int)kind,
		                    kind >= 1 && kind <= HS_REC_SERIES_KIND_MAX ? series_columns[kind] : 0,
		                    count);
	series_rows *s = &w->series[proc].kind[kind];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 128;
		int64_t *v = hs_reallocarray(s->v, cap * count, sizeof(int64_t));
		if (!v)
			return HS_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	memcpy(s->v + s->n * count, values, count * sizeof(int64_t));
	s->n++;
	w->stats.samples++;
	return 0;
}

int hs_rec_writer_types(hs_rec_writer *w, size_t proc, int64_t t_us, int64_t objects, int64_t bytes,
                        int64_t cost_us, const hs_rec_type_row *rows, size_t count)
{
	HS_TRY(check_proc(w, proc));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(put_sv(b, t_us));
	HS_TRY(put_sv(b, objects));
	HS_TRY(put_sv(b, bytes));
	HS_TRY(put_sv(b, cost_us));
	HS_TRY(hs_buf_put_varint(b, count));
	/* columns: names, counts, bytes */
	for (size_t i = 0; i < count; i++) {
		uint64_t ref;
		HS_TRY(string_ref(w, &ref, rows[i].name ? rows[i].name : "?"));
		HS_TRY(hs_buf_put_varint(b, ref));
	}
	for (size_t i = 0; i < count; i++)
		HS_TRY(put_sv(b, rows[i].count));
	for (size_t i = 0; i < count; i++)
		HS_TRY(put_sv(b, rows[i].bytes));
	return end_block(w, HS_REC_BLOCK_TYPES);
}

int hs_rec_writer_mark(hs_rec_writer *w, size_t proc, int64_t t_us, const char *label)
{
	HS_TRY(check_proc(w, proc));
	uint64_t ref;
	HS_TRY(string_ref(w, &ref, label ? label : ""));
	HS_TRY(hs_buf_put_varint(&w->scratch, proc));
	HS_TRY(put_sv(&w->scratch, t_us));
	HS_TRY(hs_buf_put_varint(&w->scratch, ref));
	return end_block(w, HS_REC_BLOCK_MARK);
}

int hs_rec_writer_snapshot(hs_rec_writer *w, size_t proc, int64_t t_us,
                           hs_rec_snapshot_trigger trigger, const char *file, int64_t objects,
                           int64_t bytes, int64_t pause_us, const char *error)
{
	HS_TRY(check_proc(w, proc));
	if (trigger < HS_REC_SNAP_SCHEDULE || trigger > HS_REC_SNAP_END)
		return hs_error_set(HS_EINVAL, "invalid snapshot trigger %d", (int)trigger);
	uint64_t fref, eref;
	HS_TRY(string_ref(w, &fref, file));
	HS_TRY(string_ref(w, &eref, error));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(put_sv(b, t_us));
	HS_TRY(hs_buf_put_varint(b, (uint64_t)trigger));
	HS_TRY(hs_buf_put_varint(b, fref));
	HS_TRY(put_sv(b, objects));
	HS_TRY(put_sv(b, bytes));
	HS_TRY(put_sv(b, pause_us));
	HS_TRY(hs_buf_put_varint(b, eref));
	return end_block(w, HS_REC_BLOCK_SNAPSHOT);
}

int hs_rec_writer_note(hs_rec_writer *w, ptrdiff_t proc, int64_t t_us, int warning, const char *text)
{
	HS_TRY(check_open(w));
	if (proc >= (ptrdiff_t)w->proc_count)
		return hs_error_set(HS_EINVAL, "process index %td was not declared", proc);
	uint64_t ref;
	HS_TRY(string_ref(w, &ref, text ? text : ""));
	HS_TRY(hs_buf_put_varint(&w->scratch, proc < 0 ? 0 : (uint64_t)proc + 1));
	HS_TRY(put_sv(&w->scratch, t_us));
	HS_TRY(hs_buf_put_varint(&w->scratch, warning ? 1 : 0));
	HS_TRY(hs_buf_put_varint(&w->scratch, ref));
	return end_block(w, HS_REC_BLOCK_NOTE);
}

int hs_rec_writer_sampler_cpu(hs_rec_writer *w, int64_t cpu_us)
{
	HS_TRY(check_open(w));
	if (cpu_us > 0)
		w->cpu_us += cpu_us;
	return 0;
}

/* ------------------------------------------------------------------ */
/* chunks                                                              */

static int encode_series(hs_rec_writer *w, hs_buf *raw, size_t proc, unsigned kind)
{
	series_rows *s = &w->series[proc].kind[kind];
	if (!s->n)
		return 0;
	size_t ncols = series_columns[kind];
	hs_buf *b = &w->scratch;
	hs_buf_clear(b);
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(hs_buf_put_varint(b, kind));
	HS_TRY(hs_buf_put_varint(b, s->n));
	HS_TRY(hs_buf_put_varint(b, ncols));
	for (size_t c = 0; c < ncols; c++) {
		unsigned coding = c == 0 ? HS_REC_CODING_DELTA2 : HS_REC_CODING_DELTA;
		hs_buf *col = &w->column;
		hs_buf_clear(col);
		int64_t prev = 0, prevd = 0;
		for (size_t i = 0; i < s->n; i++) {
			int64_t v = s->v[i * ncols + c];
			int64_t d = (int64_t)((uint64_t)v - (uint64_t)prev);
			if (coding == HS_REC_CODING_DELTA2) {
				HS_TRY(put_sv(col, (int64_t)((uint64_t)d - (uint64_t)prevd)));
				prevd = d;
			} else {
				HS_TRY(put_sv(col, d));
			}
			prev = v;
		}
		HS_TRY(hs_buf_put_varint(b, coding));
		HS_TRY(hs_buf_put_varint(b, col->len));
		HS_TRY(hs_buf_put(b, col->data, col->len));
	}
	HS_TRY(hs_buf_put_varint(raw, HS_REC_BLOCK_SERIES));
	HS_TRY(hs_buf_put_varint(raw, b->len));
	HS_TRY(hs_buf_put(raw, b->data, b->len));
	hs_buf_clear(b);
	s->n = 0;
	return 0;
}

static int pending_samples(const hs_rec_writer *w)
{
	for (size_t p = 0; p < w->proc_count; p++)
		for (unsigned k = 1; k <= HS_REC_SERIES_KIND_MAX; k++)
			if (w->series[p].kind[k].n)
				return 1;
	return 0;
}

/* Build and write one chunk; `end` appends the END block. */
static int write_chunk(hs_rec_writer *w, int64_t t_end, int end, hs_rec_stop stop, int root_status)
{
	if (t_end < w->last_t_end)
		t_end = w->last_t_end;
	hs_buf *raw = &w->raw;
	hs_buf_clear(raw);
	HS_TRY(hs_buf_put_varint(raw, w->chunk_seq));
	HS_TRY(put_sv(raw, t_end));
	/* the strings this chunk defines; blocks may use them */
	HS_TRY(hs_buf_put_varint(raw, w->pending_string_count));
	HS_TRY(hs_buf_put(raw, w->pending_strings.data, w->pending_strings.len));
	if (w->chunk_seq == 0) {
		hs_buf *b = &w->scratch;
		hs_buf_clear(b);
		HS_TRY(hs_buf_put_varint(b, (uint64_t)(w->opts.wall_start * 1e6)));
		HS_TRY(hs_buf_put_varint(b, w->opts.interval_us));
		HS_TRY(hs_buf_put_varint(b, w->opts.flags));
		HS_TRY(hs_buf_put_varint(raw, HS_REC_BLOCK_START));
		HS_TRY(hs_buf_put_varint(raw, b->len));
		HS_TRY(hs_buf_put(raw, b->data, b->len));
		hs_buf_clear(b);
	}
	HS_TRY(hs_buf_put(raw, w->events.data, w->events.len));
	for (size_t p = 0; p < w->proc_count; p++)
		for (unsigned k = 1; k <= HS_REC_SERIES_KIND_MAX; k++)
			HS_TRY(encode_series(w, raw, p, k));
	if (w->cpu_us > 0) {
		hs_buf *b = &w->scratch;
		hs_buf_clear(b);
		HS_TRY(hs_buf_put_varint(b, (uint64_t)w->cpu_us));
		HS_TRY(hs_buf_put_varint(raw, HS_REC_BLOCK_SAMPLER));
		HS_TRY(hs_buf_put_varint(raw, b->len));
		HS_TRY(hs_buf_put(raw, b->data, b->len));
		hs_buf_clear(b);
	}
	if (end) {
		hs_buf *b = &w->scratch;
		hs_buf_clear(b);
		HS_TRY(hs_buf_put_varint(b, (uint64_t)stop));
		HS_TRY(put_sv(b, root_status));
		HS_TRY(hs_buf_put_varint(raw, HS_REC_BLOCK_END));
		HS_TRY(hs_buf_put_varint(raw, b->len));
		HS_TRY(hs_buf_put(raw, b->data, b->len));
		hs_buf_clear(b);
	}
	HS_TRY(emit_section(w, HS_SECTION_CHUNK, raw->data, raw->len, 1));
	if (!w->file.committed) {
		/* the first chunk is whole: the file is a readable recording, put it
		 * in place (the final name is checked again) and go on appending */
		int rc = hs_file_out_commit(&w->file, HS_FILE_KEEP_OPEN);
		if (rc < 0) {
			w->failed = 1;
			return rc;
		}
	}
	w->stats.raw_bytes += raw->len;
	w->stats.chunks++;
	w->chunk_seq++;
	w->last_t_end = t_end;
	w->cpu_us = 0;
	hs_buf_clear(&w->events);
	hs_buf_clear(&w->pending_strings);
	w->pending_string_count = 0;
	w->have_events = 0;
	if (w->opts.sync)
		fdatasync(w->fd);
	return 0;
}

int hs_rec_writer_flush(hs_rec_writer *w, int64_t t_end_us)
{
	HS_TRY(check_open(w));
	if (!w->have_events && !pending_samples(w) && w->cpu_us == 0 && w->chunk_seq > 0 &&
	    t_end_us <= w->last_t_end)
		return 0;
	return write_chunk(w, t_end_us, 0, HS_REC_STOP_UNKNOWN, -1);
}

int hs_rec_writer_close(hs_rec_writer *w, int64_t t_end_us, hs_rec_stop stop, int root_status,
                        const char *meta_end_json, hs_rec_write_stats *stats)
{
	HS_TRY(check_open(w));
	HS_TRY(write_chunk(w, t_end_us, 1, stop, root_status));
	if (meta_end_json)
		HS_TRY(emit_section(w, HS_SECTION_META_END, (const uint8_t *)meta_end_json,
		                    strlen(meta_end_json), 1));
	hs_buf idx = HS_BUF_INIT;
	int rc = 0;
	/* totals: processes, samples, chunks, strings, 0 */
	uint64_t t[5] = { w->proc_count, w->stats.samples, w->stats.chunks, w->string_count, 0 };
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = hs_buf_put_varint(&idx, t[i]);
	if (rc == 0)
		rc = hs_buf_put_varint(&idx, w->section_count);
	for (size_t i = 0; i < w->section_count && rc == 0; i++) {
		const section_entry *e = &w->sections[i];
		rc = hs_buf_put_varint(&idx, e->kind);
		if (rc == 0) rc = hs_buf_put_varint(&idx, e->offset);
		if (rc == 0) rc = hs_buf_put_varint(&idx, e->raw);
		if (rc == 0) rc = hs_buf_put_varint(&idx, e->stored);
	}
	uint64_t index_offset = w->offset;
	if (rc == 0)
		rc = emit_section(w, HS_SECTION_INDEX, idx.data, idx.len, idx.len > 4096);
	hs_buf_release(&idx);
	HS_TRY(rc);
	uint8_t foot[HS_FOOTER_SIZE];
	hs_put_le64(foot, index_offset);
	hs_put_le32(foot + 8, (uint32_t)w->section_count);
	hs_put_le32(foot + 12, hs_crc32(0, foot, 12));
	memcpy(foot + 16, HS_END_MAGIC, 8);
	HS_TRY(write_all(w, foot, sizeof(foot)));
	if (fsync(w->fd) != 0 && errno != EINVAL)
		return hs_error_set(HS_EIO, "cannot sync '%s': %s", w->path, strerror(errno));
	w->closed = 1;
	w->stats.file_bytes = w->offset;
	if (stats)
		*stats = w->stats;
	return 0;
}

uint64_t hs_rec_writer_bytes(const hs_rec_writer *w) { return w ? w->offset : 0; }

int hs_rec_writer_in_place(const hs_rec_writer *w) { return w && w->file.committed; }

int hs_rec_writer_open(hs_rec_writer **out, const char *path, const char *meta_json,
                       const hs_rec_writer_options *opts)
{
	hs_rec_writer_options defaults = HS_REC_WRITER_OPTIONS_INIT;
	*out = NULL;
	if (!path || !*path)
		return hs_error_set(HS_EINVAL, "no output path given");
	if (opts && opts->version != HS_REC_WRITER_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "recording writer options version %u is not %u",
		                    opts->version, HS_REC_WRITER_OPTIONS_VERSION);
	hs_rec_writer *w = hs_calloc(1, sizeof(*w));
	if (!w)
		return HS_ENOMEM;
	w->fd = -1;
	w->file = (hs_file_out)HS_FILE_OUT_INIT;
	w->opts = opts ? *opts : defaults;
	if (w->opts.compression_level == 0)
		w->opts.compression_level = defaults.compression_level;
	if (w->opts.flags & ~HS_REC_FLAGS_KNOWN) {
		hs_free(w);
		return hs_error_set(HS_EINVAL, "unknown recording flags 0x%x", w->opts.flags);
	}
	int rc = HS_ENOMEM;
	w->path = hs_strdup(path);
	w->cctx = ZSTD_createCCtx();
	if (!w->path || !w->cctx || hs_intern_init(&w->strings, 256) < 0)
		goto fail;
	if ((rc = hs_file_out_open(&w->file, path)) < 0)
		goto fail;
	w->fd = w->file.fd;
	uint8_t hdr[HS_HEADER_SIZE];
	hs_format__header_build(hdr, HS_FILE_RECORDING, 0);
	if ((rc = write_all(w, hdr, sizeof(hdr))) < 0)
		goto fail;
	const char *meta = meta_json ? meta_json : "{\"format\":\"heapsnap-recording\"}";
	if ((rc = emit_section(w, HS_SECTION_META, (const uint8_t *)meta, strlen(meta), 1)) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	hs_rec_writer_free(w);
	return rc;
}

void hs_rec_writer_free(hs_rec_writer *w)
{
	if (!w)
		return;
	hs_file_out_release(&w->file); /* closes; removes the file unless it was put in place */
	for (size_t p = 0; p < w->proc_count; p++)
		for (unsigned k = 0; k <= HS_REC_SERIES_KIND_MAX; k++)
			hs_free(w->series[p].kind[k].v);
	hs_free(w->series);
	hs_free(w->sections);
	hs_intern_release(&w->strings);
	hs_buf_release(&w->pending_strings);
	hs_buf_release(&w->events);
	hs_buf_release(&w->scratch);
	hs_buf_release(&w->column);
	hs_buf_release(&w->raw);
	hs_buf_release(&w->out);
	if (w->cctx)
		ZSTD_freeCCtx(w->cctx);
	hs_free(w->path);
	hs_free(w);
}

/* ------------------------------------------------------------------ */
/* allocation sites (record --lines)                                   */

#define BLOCK_TRACK 13
#define BLOCK_SITES 14
#define BLOCK_SITE_DELTA 15
#define BLOCK_PEAK 16

int hs_rec_writer_track(hs_rec_writer *w, size_t proc, int64_t t_us, const hs_rec_track_settings *s)
{
	HS_TRY(check_proc(w, proc));
	uint64_t ref;
	HS_TRY(string_ref(w, &ref, s->peak_basis ? s->peak_basis : ""));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(put_sv(b, t_us));
	HS_TRY(hs_buf_put_varint(b, s->flags));
	HS_TRY(hs_buf_put_varint(b, (uint64_t)(s->sample_bytes > 0 ? s->sample_bytes : 0)));
	HS_TRY(hs_buf_put_varint(b, s->seed));
	HS_TRY(hs_buf_put_varint(b, ref));
	return end_block(w, BLOCK_TRACK);
}

int hs_rec_writer_sites(hs_rec_writer *w, size_t proc, const hs_rec_site_loc *locs, size_t nlocs,
                        const hs_rec_site_stack *stacks, size_t nstacks)
{
	HS_TRY(check_proc(w, proc));
	/* strings first: string_ref may add to the chunk's string table, not to scratch */
	uint64_t *refs = hs_calloc(2 * nlocs + nstacks + 1, sizeof(*refs));
	if (!refs)
		return HS_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < nlocs && rc == 0; i++) {
		rc = string_ref(w, &refs[2 * i], locs[i].file ? locs[i].file : "");
		if (rc == 0)
			rc = string_ref(w, &refs[2 * i + 1], locs[i].function ? locs[i].function : "");
	}
	for (size_t i = 0; i < nstacks && rc == 0; i++) {
		refs[2 * nlocs + i] = 0;
		if (stacks[i].thread)
			rc = string_ref(w, &refs[2 * nlocs + i], stacks[i].thread);
	}
	hs_buf *b = &w->scratch;
	if (rc == 0) rc = hs_buf_put_varint(b, proc);
	if (rc == 0) rc = hs_buf_put_varint(b, nlocs);
	for (size_t i = 0; i < nlocs && rc == 0; i++) {
		rc = hs_buf_put_varint(b, locs[i].id);
		if (rc == 0) rc = hs_buf_put_varint(b, refs[2 * i]);
		if (rc == 0) rc = hs_buf_put_varint(b, refs[2 * i + 1]);
		if (rc == 0) rc = put_sv(b, locs[i].line);
		if (rc == 0) rc = put_sv(b, locs[i].first_line);
		if (rc == 0) rc = hs_buf_put_varint(b, locs[i].flags);
	}
	if (rc == 0) rc = hs_buf_put_varint(b, nstacks);
	for (size_t i = 0; i < nstacks && rc == 0; i++) {
		const hs_rec_site_stack *s = &stacks[i];
		rc = hs_buf_put_varint(b, s->id);
		if (rc == 0) rc = hs_buf_put_varint(b, s->kind);
		if (rc == 0) rc = put_sv(b, s->tid);
		if (rc == 0) rc = hs_buf_put_varint(b, refs[2 * nlocs + i]);
		if (rc == 0) rc = hs_buf_put_varint(b, s->truncated ? 1 : 0);
		if (rc == 0) rc = hs_buf_put_varint(b, s->n);
		for (size_t k = 0; k < s->n && rc == 0; k++)
			rc = hs_buf_put_varint(b, s->locs[k]);
	}
	hs_free(refs);
	if (rc < 0) {
		hs_buf_clear(b);
		return rc;
	}
	return end_block(w, BLOCK_SITES);
}

static int put_figs(hs_buf *b, const hs_rec_site_fig *rows, size_t n, int alloc)
{
	HS_TRY(hs_buf_put_varint(b, n));
	for (size_t i = 0; i < n; i++) {
		HS_TRY(hs_buf_put_varint(b, rows[i].stack));
		if (alloc) {
			HS_TRY(put_sv(b, rows[i].alloc_n));
			HS_TRY(put_sv(b, rows[i].alloc_b));
		}
		HS_TRY(put_sv(b, rows[i].live_n));
		HS_TRY(put_sv(b, rows[i].live_b));
	}
	return 0;
}

int hs_rec_writer_site_delta(hs_rec_writer *w, size_t proc, int64_t t_us, const hs_rec_site_fig *rows,
                             size_t n)
{
	HS_TRY(check_proc(w, proc));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(put_sv(b, t_us));
	HS_TRY(put_figs(b, rows, n, 1));
	return end_block(w, BLOCK_SITE_DELTA);
}

int hs_rec_writer_peak(hs_rec_writer *w, size_t proc, int64_t t_us, int64_t peak_bytes,
                       const hs_rec_site_fig *rows, size_t n)
{
	HS_TRY(check_proc(w, proc));
	hs_buf *b = &w->scratch;
	HS_TRY(hs_buf_put_varint(b, proc));
	HS_TRY(put_sv(b, t_us));
	HS_TRY(put_sv(b, peak_bytes));
	HS_TRY(put_figs(b, rows, n, 0));
	return end_block(w, BLOCK_PEAK);
}
