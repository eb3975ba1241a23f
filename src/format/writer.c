/*
 * format/writer.c: the streaming snapshot writer.
 *
 * Records are appended to per-column buffers of the current chunk; a full
 * chunk becomes one NODES section. Sections are compressed and written by a
 * second thread (when opts.threaded) so the walker in the target process
 * goes on while zstd runs. The queue holds at most two raw chunks, so the
 * writer's memory is bounded by about three chunks whatever the heap size.
 *
 * Everything goes to "<path>.tmp.XXXXXX" (mode 0600); hs_writer_commit()
 * writes the index and footer, fsyncs and renames onto the final path, so a
 * reader never sees a half-written file under the final name.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "format_internal.h"
#include "util/intern.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/file.h"

typedef struct section_entry {
	uint32_t kind;
	uint32_t raw;
	uint32_t stored;
	uint64_t offset;
} section_entry;

typedef struct job {
	uint32_t kind;
	hs_buf raw;
} job;

#define QUEUE_SLOTS 2

struct hs_writer {
	hs_writer_options opts;
	hs_file_out out; /* the temporary file beside the final name (util/file.h) */
	int fd;          /* out.fd while writing */
	int committed;
	int meta_end_written;

	/* Owned by the writing side (the thread when threaded). */
	uint64_t offset;
	section_entry *sections;
	size_t section_count, section_cap;
	ZSTD_CCtx *cctx;
	hs_buf compressed;
	uint64_t raw_bytes;

	/* Queue between the walker and the writing thread. */
	int threaded;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	job queue[QUEUE_SLOTS];
	size_t q_head, q_len;
	int closing;
	int failed;           /* a negative code once the writing side failed */
	char failure[512];
	int failed_errno;     /* errno of the failed call there (errno is per thread) */
	hs_buf spare[QUEUE_SLOTS + 1]; /* recycled raw buffers */
	size_t spare_count;

	/* Strings. */
	hs_intern strings;      /* every string written, to give it one id */
	uint32_t string_count;
	hs_buf pending_strings; /* encoded, not yet in a section */
	uint32_t pending_string_count;
	uint32_t string_section_first; /* first id of the pending block */

	/* Types. */
	uint32_t type_count;
	hs_buf pending_types;
	uint32_t pending_type_count;

	/* Current NODES chunk. */
	hs_buf streams[HS_STREAM_COUNT];
	uint32_t chunk_nodes;
	uint32_t chunk_edges;
	uint32_t cur_edges;    /* edges of the last node so far */
	int have_node;
	uint64_t prev_address, prev_target, prev_key, prev_index;
	hs_node_record last_node; /* for continuation records */

	/* Roots. */
	hs_buf roots;
	uint32_t pending_root_count;

	/* Size corrections (format 1.0's SIZES; the hook no longer writes them). */
	hs_buf sizes;
	uint32_t pending_size_count;
	uint64_t prev_size_address;

	/* What sys.getsizeof reports, for the nodes of the current chunk
	 * (REPORTED, written right after their NODES section): one varint per
	 * record of the chunk, 0 = unknown; entries up to reported_n are in. */
	hs_buf reported;
	uint32_t reported_n;
	int reported_any;  /* the chunk has a known figure: write the section */
	int reported_open; /* the chunk's last record is a node (not a continuation) */

	/* Allocation sites: ids defined so far, the pending ALLOCS chunk. */
	uint32_t site_locs, site_stacks;
	int have_sites;
	hs_buf alloc_streams[4]; /* address, stack, size, time */
	uint32_t alloc_count;
	uint64_t prev_alloc_address, prev_alloc_time;

	hs_totals totals;
	size_t peak_buffers;
};

#define ALLOCS_CHUNK 65536u

/* ------------------------------------------------------------------ */
/* Writing side: compress, checksum, write.                            */

static int write_all(hs_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			int rc = hs_error_set(HS_EIO, "cannot write '%s': %s", w->out.path, strerror(e));
			errno = e;
			return rc;
		}
		p += n;
		len -= (size_t)n;
		w->offset += (uint64_t)n;
	}
	return 0;
}

static int emit_section(hs_writer *w, uint32_t kind, const uint8_t *raw, size_t raw_len, int compress)
{
	const uint8_t *payload = raw;
	size_t stored = raw_len;
	uint32_t flags = 0;

	if (raw_len > HS_SECTION_MAX_RAW)
		return hs_error_set(HS_ELIMIT, "section of %zu bytes exceeds the format's limit", raw_len);
	if (compress && raw_len > 0) {
		size_t bound = ZSTD_compressBound(raw_len);
		HS_TRY(hs_buf_grow(&w->compressed, bound));
		size_t n = ZSTD_compressCCtx(w->cctx, w->compressed.data, bound, raw, raw_len,
		                             w->opts.compression_level);
		if (ZSTD_isError(n))
			return hs_error_set(HS_EZSTD, "cannot compress a section: %s", ZSTD_getErrorName(n));
		payload = w->compressed.data;
		stored = n;
		flags = HS_SECTION_ZSTD;
	}
	uint8_t hdr[HS_SECTION_HEADER_SIZE];
	hs_put_le32(hdr, kind);
	hs_put_le32(hdr + 4, flags);
	hs_put_le32(hdr + 8, (uint32_t)raw_len);
	hs_put_le32(hdr + 12, (uint32_t)stored);
	hs_put_le32(hdr + 16, hs_crc32(0, payload, stored));
	hs_put_le32(hdr + 20, hs_crc32(0, hdr, 20));

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
	e->raw = (uint32_t)raw_len;
	e->stored = (uint32_t)stored;
	e->offset = w->offset;
	HS_TRY(write_all(w, hdr, sizeof(hdr)));
	HS_TRY(write_all(w, payload, stored));
	if (kind != HS_SECTION_INDEX)
		w->section_count++;
	w->raw_bytes += raw_len;
	return 0;
}

static void recycle(hs_writer *w, hs_buf *b)
{
	/* called with the lock held */
	if (w->spare_count < QUEUE_SLOTS + 1) {
		hs_buf_clear(b);
		w->spare[w->spare_count++] = *b;
	} else {
		hs_buf_release(b);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

static void *writer_thread(void *arg)
{
	hs_writer *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->q_len == 0 && !w->closing)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->q_len == 0 && w->closing)
			break;
		job j = w->queue[w->q_head];
		pthread_mutex_unlock(&w->lock);

		int rc = 0, e = 0;
		if (!w->failed) {
			errno = 0;
			rc = emit_section(w, j.kind, j.raw.data, j.raw.len, 1);
			e = errno;
		}

		pthread_mutex_lock(&w->lock);
		w->q_head = (w->q_head + 1) % QUEUE_SLOTS;
		w->q_len--;
		recycle(w, &j.raw);
		pthread_cond_broadcast(&w->cond);
		if (rc < 0 && !w->failed) {
			w->failed = rc;
			w->failed_errno = e;
			snprintf(w->failure, sizeof(w->failure), "%s", hs_error_last());
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* The writing thread's failure again, in the caller's thread: its message
 * and its errno (an OSError raised from it needs ENOSPC, not EIO). */
static int replay_failure(hs_writer *w)
{
	int rc = hs_error_set(w->failed, "%s", w->failure);
	if (w->failed_errno)
		errno = w->failed_errno;
	return rc;
}

static int check_failed(hs_writer *w)
{
	if (!w->threaded)
		return w->failed;
	pthread_mutex_lock(&w->lock);
	int f = w->failed;
	pthread_mutex_unlock(&w->lock);
	if (f)
		return replay_failure(w);
	return 0;
}

/* Hand a raw section to the writing side; takes ownership of *raw. */
static int submit(hs_writer *w, uint32_t kind, hs_buf *raw)
{
	if (!w->threaded) {
		int rc = w->failed ? w->failed : emit_section(w, kind, raw->data, raw->len, 1);
		int e = errno;
		hs_buf_clear(raw);
		if (rc < 0 && !w->failed) {
			w->failed = rc;
			w->failed_errno = e;
		}
		errno = e;
		return rc;
	}
	pthread_mutex_lock(&w->lock);
	while (w->q_len == QUEUE_SLOTS && !w->failed)
		pthread_cond_wait(&w->cond, &w->lock);
	if (w->failed) {
		pthread_mutex_unlock(&w->lock);
		hs_buf_clear(raw);
		return replay_failure(w);
	}
	job *j = &w->queue[(w->q_head + w->q_len) % QUEUE_SLOTS];
	j->kind = kind;
	j->raw = *raw;
	w->q_len++;
	/* Give the caller a recycled buffer to fill next. */
	if (w->spare_count > 0)
		*raw = w->spare[--w->spare_count];
	else
		*raw = (hs_buf)HS_BUF_INIT;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Building sections.                                                  */

static int track_peak(hs_writer *w)
{
	size_t total = hs_intern_memory(&w->strings) + w->pending_strings.cap +
	               w->pending_types.cap + w->roots.cap;
	for (int i = 0; i < HS_STREAM_COUNT; i++)
		total += w->streams[i].cap;
	/* queued chunks are about one chunk each */
	total += (w->threaded ? QUEUE_SLOTS + 1 : 1) * (total > 0 ? w->streams[HS_STREAM_TARGETS].cap : 0);
	if (total > w->peak_buffers)
		w->peak_buffers = total;
	return 0;
}

static int flush_counted(hs_writer *w, uint32_t kind, hs_buf *body, uint32_t *count)
{
	if (*count == 0)
		return 0;
	hs_buf raw = HS_BUF_INIT;
	int rc = hs_buf_grow(&raw, body->len + 10);
	if (rc == 0) {
		raw.len = hs_varint_encode(raw.data, *count);
		memcpy(raw.data + raw.len, body->data, body->len);
		raw.len += body->len;
		rc = submit(w, kind, &raw);
	}
	hs_buf_release(&raw);
	hs_buf_clear(body);
	*count = 0;
	return rc;
}

static int flush_tables(hs_writer *w)
{
	HS_TRY(flush_counted(w, HS_SECTION_STRINGS, &w->pending_strings, &w->pending_string_count));
	HS_TRY(flush_counted(w, HS_SECTION_TYPES, &w->pending_types, &w->pending_type_count));
	return 0;
}

static int finish_node(hs_writer *w)
{
	if (w->have_node) {
		HS_TRY(hs_buf_put_varint(&w->streams[HS_STREAM_EDGE_COUNTS], w->cur_edges));
		w->have_node = 0;
	}
	return 0;
}

/* REPORTED after the chunk's NODES: one entry per record of that chunk,
 * the records without a figure (and continuations) as 0. Nothing when no
 * figure is known (a reader then knows none: the same as all zeros). */
static int flush_reported(hs_writer *w, uint32_t nodes)
{
	int rc = 0;
	if (w->reported_any) {
		uint32_t pad = nodes - w->reported_n;
		rc = hs_buf_grow(&w->reported, pad);
		if (rc == 0) {
			memset(w->reported.data + w->reported.len, 0, pad);
			w->reported.len += pad;
			rc = flush_counted(w, HS_SECTION_REPORTED, &w->reported, &nodes);
		}
	}
	hs_buf_clear(&w->reported);
	w->reported_n = 0;
	w->reported_any = 0;
	w->reported_open = 0;
	return rc;
}

static int flush_chunk(hs_writer *w)
{
	HS_TRY(finish_node(w));
	if (w->chunk_nodes == 0)
		return 0;
	HS_TRY(flush_tables(w));
	track_peak(w);

	size_t need = 20;
	for (int i = 0; i < HS_STREAM_COUNT; i++)
		need += w->streams[i].len + 10;
	hs_buf raw = HS_BUF_INIT;
	if (w->threaded) {
		pthread_mutex_lock(&w->lock);
		if (w->spare_count > 0)
			raw = w->spare[--w->spare_count];
		pthread_mutex_unlock(&w->lock);
	}
	int rc = hs_buf_grow(&raw, need);
	if (rc == 0) {
		raw.len += hs_varint_encode(raw.data + raw.len, w->chunk_nodes);
		raw.len += hs_varint_encode(raw.data + raw.len, w->chunk_edges);
		for (int i = 0; i < HS_STREAM_COUNT; i++) {
			raw.len += hs_varint_encode(raw.data + raw.len, w->streams[i].len);
			if (w->streams[i].len)
				memcpy(raw.data + raw.len, w->streams[i].data, w->streams[i].len);
			raw.len += w->streams[i].len;
			hs_buf_clear(&w->streams[i]);
		}
		rc = submit(w, HS_SECTION_NODES, &raw);
	}
	hs_buf_release(&raw);
	uint32_t nodes = w->chunk_nodes;
	w->chunk_nodes = 0;
	w->chunk_edges = 0;
	w->prev_address = w->prev_target = w->prev_key = w->prev_index = 0;
	if (rc == 0)
		rc = flush_reported(w, nodes);
	return rc;
}

static int flush_sizes(hs_writer *w)
{
	w->prev_size_address = 0;
	return flush_counted(w, HS_SECTION_SIZES, &w->sizes, &w->pending_size_count);
}

static int flush_allocs(hs_writer *w)
{
	if (w->alloc_count == 0)
		return 0;
	size_t need = 10;
	for (int i = 0; i < 4; i++)
		need += w->alloc_streams[i].len + 10;
	hs_buf raw = HS_BUF_INIT;
	int rc = hs_buf_grow(&raw, need);
	if (rc == 0) {
		raw.len += hs_varint_encode(raw.data + raw.len, w->alloc_count);
		for (int i = 0; i < 4; i++) {
			raw.len += hs_varint_encode(raw.data + raw.len, w->alloc_streams[i].len);
			if (w->alloc_streams[i].len)
				memcpy(raw.data + raw.len, w->alloc_streams[i].data, w->alloc_streams[i].len);
			raw.len += w->alloc_streams[i].len;
		}
		rc = submit(w, HS_SECTION_ALLOCS, &raw);
	}
	hs_buf_release(&raw);
	for (int i = 0; i < 4; i++)
		hs_buf_clear(&w->alloc_streams[i]);
	w->alloc_count = 0;
	w->prev_alloc_address = w->prev_alloc_time = 0;
	return rc;
}

static int flush_roots(hs_writer *w)
{
	HS_TRY(flush_tables(w));
	return flush_counted(w, HS_SECTION_ROOTS, &w->roots, &w->pending_root_count);
}

/* ------------------------------------------------------------------ */
/* Public API.                                                         */

int hs_writer_open(hs_writer **out, const char *path, const hs_writer_options *opts)
{
	hs_writer_options defaults = HS_WRITER_OPTIONS_INIT;
	*out = NULL;
	if (!path || !*path)
		return hs_error_set(HS_EINVAL, "no output path given");
	if (opts && opts->version != HS_WRITER_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "writer options version %u is not %u", opts->version,
		                    HS_WRITER_OPTIONS_VERSION);
	hs_writer *w = hs_calloc(1, sizeof(*w));
	if (!w)
		return HS_ENOMEM;
	w->fd = -1;
	w->out = (hs_file_out)HS_FILE_OUT_INIT;
	w->opts = opts ? *opts : defaults;
	if (w->opts.chunk_nodes == 0)
		w->opts.chunk_nodes = defaults.chunk_nodes;
	if (w->opts.compression_level == 0)
		w->opts.compression_level = defaults.compression_level;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);

	int rc = HS_ENOMEM;
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx || hs_intern_init(&w->strings, 1024) < 0)
		goto fail;
	if ((rc = hs_file_out_open(&w->out, path)) < 0)
		goto fail;
	w->fd = w->out.fd;

	uint8_t hdr[HS_HEADER_SIZE] = {0};
	memcpy(hdr, HS_MAGIC, 8);
	hs_put_le16(hdr + 8, HS_FORMAT_MAJOR);
	hs_put_le16(hdr + 10, HS_FORMAT_MINOR);
	hs_put_le16(hdr + 12, HS_FILE_SNAPSHOT);
	hdr[14] = (uint8_t)sizeof(void *);
	hdr[15] = 1;
	hs_put_le32(hdr + 16, w->opts.python_version);
	hs_put_le32(hdr + 28, hs_crc32(0, hdr, 28));
	if ((rc = write_all(w, hdr, sizeof(hdr))) < 0)
		goto fail;

	if (w->opts.threaded) {
		if (pthread_create(&w->thread, NULL, writer_thread, w) != 0) {
			w->threaded = 0; /* fall back to writing inline */
		} else {
			w->threaded = 1;
		}
	}
	*out = w;
	return 0;
fail:
	hs_writer_free(w);
	return rc;
}

int hs_writer_meta(hs_writer *w, const char *json, size_t len)
{
	HS_TRY(check_failed(w));
	hs_buf raw = HS_BUF_INIT;
	int rc = hs_buf_put(&raw, json, len);
	if (rc == 0)
		rc = submit(w, HS_SECTION_META, &raw);
	hs_buf_release(&raw);
	return rc;
}

int hs_writer_size(hs_writer *w, uint64_t address, uint64_t size)
{
	HS_TRY(check_failed(w));
	if (w->meta_end_written)
		return hs_error_set(HS_EINVAL, "size correction after the closing metadata");
	/* the node it corrects must be in an earlier section */
	HS_TRY(flush_chunk(w));
	HS_TRY(hs_buf_put_varint(&w->sizes, hs_zigzag_encode((int64_t)(address - w->prev_size_address))));
	HS_TRY(hs_buf_put_varint(&w->sizes, size));
	w->prev_size_address = address;
	w->pending_size_count++;
	if (w->sizes.len > HS_SECTION_MAX_RAW / 2)
		HS_TRY(flush_sizes(w));
	return 0;
}

int hs_writer_reported(hs_writer *w, uint64_t address, uint64_t getsizeof)
{
	/* no check_failed() here: it takes the writer's lock, and this runs
	 * once per object; a failure shows at the next chunk flush */
	if (!w->have_node || !w->reported_open || w->last_node.address != address)
		return hs_error_set(HS_EINVAL, "getsizeof entry for 0x%llx: not the node just written",
		                    (unsigned long long)address);
	/* positional: getsizeof - size, zigzag, + 1 (0 = unknown); most
	 * objects differ by a header or a rounding: one byte */
	uint64_t z = hs_zigzag_encode((int64_t)(getsizeof - w->last_node.size));
	if (z == UINT64_MAX)
		return hs_error_set(HS_EINVAL, "getsizeof %llu of 0x%llx cannot be encoded",
		                    (unsigned long long)getsizeof, (unsigned long long)address);
	hs_buf *b = &w->reported;
	uint32_t pad = w->chunk_nodes - 1 - w->reported_n; /* earlier records: unknown */
	if (b->cap - b->len < (size_t)pad + 10)
		HS_TRY(hs_buf_grow(b, (size_t)pad + 10));
	if (pad) {
		memset(b->data + b->len, 0, pad);
		b->len += pad;
	}
	b->len += hs_varint_encode(b->data + b->len, z + 1);
	w->reported_n = w->chunk_nodes;
	w->reported_any = 1;
	w->reported_open = 0;
	return 0;
}

int hs_writer_meta_end(hs_writer *w, const char *json, size_t len)
{
	HS_TRY(check_failed(w));
	if (w->meta_end_written)
		return hs_error_set(HS_EINVAL, "closing metadata already written");
	/* after every chunk, so that it is the last section before the index */
	HS_TRY(flush_chunk(w));
	HS_TRY(flush_roots(w));
	HS_TRY(flush_tables(w));
	HS_TRY(flush_sizes(w));
	HS_TRY(flush_allocs(w));
	hs_buf raw = HS_BUF_INIT;
	int rc = hs_buf_put(&raw, json, len);
	if (rc == 0)
		rc = submit(w, HS_SECTION_META_END, &raw);
	hs_buf_release(&raw);
	w->meta_end_written = 1;
	return rc;
}

int hs_writer_string(hs_writer *w, uint32_t *out, const char *s, size_t len)
{
	if (len > HS_SECTION_MAX_RAW / 4)
		return hs_error_set(HS_EINVAL, "string of %zu bytes is too long for the string table", len);
	uint32_t next = w->string_count == UINT32_MAX - 1 ? UINT32_MAX : w->string_count;
	int added = hs_intern_get(&w->strings, out, s, len, next);
	if (added == HS_ELIMIT)
		return hs_error_set(HS_ELIMIT, "too many strings");
	if (added <= 0)
		return added;
	w->string_count++;
	HS_TRY(hs_buf_put_varint(&w->pending_strings, len));
	HS_TRY(hs_buf_put(&w->pending_strings, s, len));
	w->pending_string_count++;
	w->totals.strings++;
	if (w->pending_strings.len > HS_SECTION_MAX_RAW / 2)
		HS_TRY(flush_counted(w, HS_SECTION_STRINGS, &w->pending_strings, &w->pending_string_count));
	return 0;
}

int hs_writer_type(hs_writer *w, uint32_t *out, const hs_type_record *t)
{
	if (t->name != HS_NO_STRING && t->name >= w->string_count)
		return hs_error_set(HS_EINVAL, "type name refers to undefined string %u", t->name);
	HS_TRY(hs_buf_put_varint(&w->pending_types, t->address));
	HS_TRY(hs_buf_put_varint(&w->pending_types, t->name == HS_NO_STRING ? 0 : (uint64_t)t->name + 1));
	HS_TRY(hs_buf_put_varint(&w->pending_types, t->flags));
	HS_TRY(hs_buf_put_varint(&w->pending_types, t->basic_size));
	*out = w->type_count++;
	w->pending_type_count++;
	w->totals.types++;
	return 0;
}

static int put_node(hs_writer *w, const hs_node_record *n, uint32_t flags)
{
	hs_buf *s = w->streams;
	HS_TRY(hs_buf_put_varint(&s[HS_STREAM_ADDRESS],
	                         hs_zigzag_encode((int64_t)(n->address - w->prev_address))));
	w->prev_address = n->address;
	HS_TRY(hs_buf_put_varint(&s[HS_STREAM_TYPE], n->type));
	HS_TRY(hs_buf_put_varint(&s[HS_STREAM_SIZE], (flags & HS_NODE_CONTINUED) ? 0 : n->size));
	HS_TRY(hs_buf_put_varint(&s[HS_STREAM_REFCOUNT],
	                         (flags & (HS_NODE_CONTINUED | HS_NODE_IMMORTAL)) ? 0 : n->refcount));
	if ((flags & HS_NODE_HAS_VALUE) && !(flags & HS_NODE_CONTINUED)) {
		uint32_t vlen = n->value_len;
		if (vlen > HS_VALUE_MAX) {
			vlen = HS_VALUE_MAX;
			flags |= HS_NODE_VALUE_TRUNCATED;
		}
		HS_TRY(hs_buf_put_varint(&s[HS_STREAM_VALUES], vlen));
		HS_TRY(hs_buf_put(&s[HS_STREAM_VALUES], n->value, vlen));
	}
	HS_TRY(hs_buf_put_u8(&s[HS_STREAM_FLAGS], (uint8_t)flags));
	w->chunk_nodes++;
	w->have_node = 1;
	w->cur_edges = 0;
	return 0;
}

int hs_writer_node(hs_writer *w, const hs_node_record *n)
{
	if (n->type >= w->type_count)
		return hs_error_set(HS_EINVAL, "node 0x%llx has undefined type id %u",
		                    (unsigned long long)n->address, n->type);
	if (n->flags & ~HS_NODE_FLAGS_KNOWN)
		return hs_error_set(HS_EINVAL, "node 0x%llx has unknown flags 0x%x",
		                    (unsigned long long)n->address, n->flags);
	HS_TRY(finish_node(w));
	if (w->chunk_nodes >= w->opts.chunk_nodes) {
		HS_TRY(check_failed(w));
		HS_TRY(flush_chunk(w));
	}
	uint32_t flags = n->flags;
	if (!(flags & HS_NODE_HAS_VALUE) || !n->value)
		flags &= ~(HS_NODE_HAS_VALUE | HS_NODE_VALUE_TRUNCATED);
	HS_TRY(put_node(w, n, flags));
	w->reported_open = 1;
	w->last_node = *n;
	w->last_node.value = NULL;
	w->last_node.flags = 0;
	w->totals.nodes++;
	return 0;
}

int hs_writer_edge(hs_writer *w, const hs_edge_record *e)
{
	if (!w->have_node)
		return hs_error_set(HS_EINVAL, "edge added before any node");
	if (e->kind > HS_EDGE_WEAK || e->label_kind >= HS_LABEL_KIND_COUNT)
		return hs_error_set(HS_EINVAL, "edge with invalid kind %u/%u", e->kind, e->label_kind);
	if (hs_label_has_string(e->label_kind) && e->label >= w->string_count)
		return hs_error_set(HS_EINVAL, "edge label refers to undefined string %llu",
		                    (unsigned long long)e->label);
	if (w->chunk_edges >= HS_CHUNK_MAX_EDGES) {
		/* A huge container: close this section and continue the same
		 * node's edges in the next one. */
		HS_TRY(check_failed(w));
		HS_TRY(flush_chunk(w));
		HS_TRY(put_node(w, &w->last_node, HS_NODE_CONTINUED));
		w->reported_open = 0;
	}
	hs_buf *s = w->streams;
	HS_TRY(hs_buf_put_varint(&s[HS_STREAM_TARGETS],
	                         hs_zigzag_encode((int64_t)(e->target - w->prev_target))));
	w->prev_target = e->target;
	HS_TRY(hs_buf_put_u8(&s[HS_STREAM_EDGE_KINDS], (uint8_t)(e->kind | (e->label_kind << 2))));
	if (e->label_kind == HS_LABEL_INDEX) {
		/* sequences are labelled 0, 1, 2...: a delta of +1 compresses away */
		HS_TRY(hs_buf_put_varint(&s[HS_STREAM_LABELS],
		                         hs_zigzag_encode((int64_t)(e->label - w->prev_index))));
		w->prev_index = e->label;
	} else if (hs_label_has_number(e->label_kind)) {
		HS_TRY(hs_buf_put_varint(&s[HS_STREAM_LABELS], e->label));
	} else if (hs_label_has_key(e->label_kind)) {
		HS_TRY(hs_buf_put_varint(&s[HS_STREAM_LABEL_KEYS],
		                         hs_zigzag_encode((int64_t)(e->label - w->prev_key))));
		w->prev_key = e->label;
	}
	w->chunk_edges++;
	w->cur_edges++;
	w->totals.edges++;
	return 0;
}

int hs_writer_root(hs_writer *w, const hs_root_record *r)
{
	if (r->kind < 1 || r->kind > HS_ROOT_KIND_MAX || r->kind == HS_ROOT_HELD)
		return hs_error_set(HS_EINVAL, "invalid root kind %u", r->kind);
	if ((r->name != HS_NO_STRING && r->name >= w->string_count) ||
	    (r->detail != HS_NO_STRING && r->detail >= w->string_count))
		return hs_error_set(HS_EINVAL, "root refers to an undefined string");
	HS_TRY(hs_buf_put_varint(&w->roots, r->kind));
	HS_TRY(hs_buf_put_varint(&w->roots, r->target));
	HS_TRY(hs_buf_put_varint(&w->roots, r->name == HS_NO_STRING ? 0 : (uint64_t)r->name + 1));
	HS_TRY(hs_buf_put_varint(&w->roots, r->detail == HS_NO_STRING ? 0 : (uint64_t)r->detail + 1));
	w->pending_root_count++;
	w->totals.roots++;
	if (w->roots.len > HS_SECTION_MAX_RAW / 2)
		HS_TRY(flush_roots(w));
	return 0;
}

int hs_writer_sites(hs_writer *w, uint64_t sample_bytes, const hs_site_loc *locs, uint32_t nlocs,
                    const uint32_t *frames, const uint32_t *stack_len, uint32_t nstacks)
{
	HS_TRY(check_failed(w));
	if (w->meta_end_written)
		return hs_error_set(HS_EINVAL, "allocation sites after the closing metadata");
	for (uint32_t i = 0; i < nlocs; i++) {
		const hs_site_loc *l = &locs[i];
		if ((l->file != HS_NO_STRING && l->file >= w->string_count) ||
		    (l->function != HS_NO_STRING && l->function >= w->string_count))
			return hs_error_set(HS_EINVAL, "site location %u refers to an undefined string", i);
		if (l->flags & ~HS_SITE_FLAGS_KNOWN)
			return hs_error_set(HS_EINVAL, "site location %u has unknown flags 0x%x", i, l->flags);
	}
	/* the strings it names, and every node, come first */
	HS_TRY(flush_chunk(w));
	HS_TRY(flush_tables(w));
	hs_buf raw = HS_BUF_INIT;
	int rc = hs_buf_put_varint(&raw, sample_bytes);
	if (rc == 0)
		rc = hs_buf_put_varint(&raw, nlocs);
	for (uint32_t i = 0; i < nlocs && rc == 0; i++) {
		const hs_site_loc *l = &locs[i];
		rc = hs_buf_put_varint(&raw, l->file == HS_NO_STRING ? 0 : (uint64_t)l->file + 1);
		if (rc == 0)
			rc = hs_buf_put_varint(&raw, l->function == HS_NO_STRING ? 0 : (uint64_t)l->function + 1);
		if (rc == 0)
			rc = hs_buf_put_varint(&raw, l->line);
		if (rc == 0)
			rc = hs_buf_put_varint(&raw, l->flags);
	}
	if (rc == 0)
		rc = hs_buf_put_varint(&raw, nstacks);
	const uint32_t *f = frames;
	for (uint32_t i = 0; i < nstacks && rc == 0; i++) {
		if (stack_len[i] > HS_SITE_MAX_FRAMES) {
			rc = hs_error_set(HS_EINVAL, "stack %u has %u frames (at most %u)", i, stack_len[i],
			                  HS_SITE_MAX_FRAMES);
			break;
		}
		rc = hs_buf_put_varint(&raw, stack_len[i]);
		for (uint32_t k = 0; k < stack_len[i] && rc == 0; k++) {
			if (f[k] >= w->site_locs + nlocs)
				rc = hs_error_set(HS_EINVAL, "stack %u names undefined location %u", i, f[k]);
			else
				rc = hs_buf_put_varint(&raw, f[k]);
		}
		f += stack_len[i];
	}
	if (rc == 0 && raw.len > HS_SECTION_MAX_RAW)
		rc = hs_error_set(HS_ELIMIT, "allocation-site tables of %zu bytes exceed the format's "
		                  "section limit", raw.len);
	if (rc == 0)
		rc = submit(w, HS_SECTION_SITES, &raw);
	hs_buf_release(&raw);
	if (rc == 0) {
		w->site_locs += nlocs;
		w->site_stacks += nstacks;
		w->have_sites = 1;
	}
	return rc;
}

int hs_writer_alloc(hs_writer *w, const hs_alloc_record *a)
{
	if (!w->have_sites || a->stack >= w->site_stacks)
		return hs_error_set(HS_EINVAL, "tracked block 0x%llx names undefined stack %u",
		                    (unsigned long long)a->address, a->stack);
	if (w->meta_end_written)
		return hs_error_set(HS_EINVAL, "tracked block after the closing metadata");
	hs_buf *s = w->alloc_streams;
	HS_TRY(hs_buf_put_varint(&s[0], hs_zigzag_encode((int64_t)(a->address - w->prev_alloc_address))));
	HS_TRY(hs_buf_put_varint(&s[1], a->stack));
	HS_TRY(hs_buf_put_varint(&s[2], a->size));
	HS_TRY(hs_buf_put_varint(&s[3], hs_zigzag_encode((int64_t)(a->time_ms - w->prev_alloc_time))));
	w->prev_alloc_address = a->address;
	w->prev_alloc_time = a->time_ms;
	if (++w->alloc_count >= ALLOCS_CHUNK)
		HS_TRY(flush_allocs(w));
	return 0;
}

static int stop_thread(hs_writer *w)
{
	if (!w->threaded)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->closing = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->threaded = 0;
	if (w->failed)
		return replay_failure(w);
	return 0;
}

int hs_writer_commit(hs_writer *w, hs_write_stats *stats)
{
	if (w->committed)
		return hs_error_set(HS_EINVAL, "snapshot already committed");
	HS_TRY(check_failed(w));
	HS_TRY(flush_chunk(w));
	HS_TRY(flush_roots(w));
	HS_TRY(flush_tables(w));
	HS_TRY(flush_sizes(w));
	HS_TRY(flush_allocs(w));
	HS_TRY(stop_thread(w));
	if (w->failed)
		return replay_failure(w);

	/* Index: totals, then every section before it. */
	hs_buf idx = HS_BUF_INIT;
	int rc = 0;
	uint64_t t[5] = { w->totals.nodes, w->totals.edges, w->totals.strings, w->totals.types,
	                  w->totals.roots };
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
	if (rc < 0)
		return rc;

	uint8_t foot[HS_FOOTER_SIZE];
	hs_put_le64(foot, index_offset);
	hs_put_le32(foot + 8, (uint32_t)w->section_count);
	hs_put_le32(foot + 12, hs_crc32(0, foot, 12));
	memcpy(foot + 16, HS_END_MAGIC, 8);
	HS_TRY(write_all(w, foot, sizeof(foot)));

	/* sync, close, check the final name again, rename */
	int crc = hs_file_out_commit(&w->out, HS_FILE_SYNC);
	w->fd = w->out.fd;
	if (crc < 0)
		return crc;
	w->committed = 1;
	if (stats) {
		track_peak(w);
		stats->nodes = w->totals.nodes;
		stats->edges = w->totals.edges;
		stats->strings = w->totals.strings;
		stats->types = w->totals.types;
		stats->roots = w->totals.roots;
		stats->raw_bytes = w->raw_bytes;
		stats->file_bytes = w->offset;
		stats->peak_buffer_bytes = w->peak_buffers;
	}
	return 0;
}

void hs_writer_free(hs_writer *w)
{
	if (!w)
		return;
	if (w->threaded) {
		pthread_mutex_lock(&w->lock);
		w->closing = 1;
		if (!w->failed) {
			w->failed = HS_EUSER; /* drop queued work: nobody will read it */
			snprintf(w->failure, sizeof(w->failure), "writer closed");
		}
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	hs_file_out_release(&w->out); /* closes; removes the temporary file unless committed */
	for (size_t i = 0; i < QUEUE_SLOTS; i++) {
		/* jobs left in the queue after a failure */
		if (i < w->q_len)
			hs_buf_release(&w->queue[(w->q_head + i) % QUEUE_SLOTS].raw);
	}
	for (size_t i = 0; i < w->spare_count; i++)
		hs_buf_release(&w->spare[i]);
	for (int i = 0; i < HS_STREAM_COUNT; i++)
		hs_buf_release(&w->streams[i]);
	hs_buf_release(&w->compressed);
	hs_intern_release(&w->strings);
	hs_buf_release(&w->pending_strings);
	hs_buf_release(&w->pending_types);
	hs_buf_release(&w->roots);
	hs_buf_release(&w->sizes);
	hs_buf_release(&w->reported);
	for (int i = 0; i < 4; i++)
		hs_buf_release(&w->alloc_streams[i]);
	hs_free(w->sections);
	if (w->cctx)
		ZSTD_freeCCtx(w->cctx);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	hs_free(w);
}
