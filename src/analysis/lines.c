/*
 * analysis/lines.c: per-line allocation figures from a recording's
 * allocation sites (heapsnap/lines.h).
 */
#include <stdlib.h>
#include <string.h>

#include "heapsnap/lines.h"
#include "util/alloc.h"
#include "util/file.h"

typedef struct key_slot {
	const char *file, *function;
	int line;
	size_t row; /* + 1; 0 empty */
} key_slot;

typedef struct builder {
	hs_lines *l;
	size_t cap;
	key_slot *slots;
	size_t mask;
} builder;

static size_t hash_key(const char *file, const char *fn, int line)
{
	uint64_t h = (uint64_t)(uintptr_t)file * 0x9E3779B97F4A7C15ULL;
	h ^= (uint64_t)(uintptr_t)fn * 0xC2B2AE3D27D4EB4FULL;
	h ^= (uint64_t)(uint32_t)line * 0x165667B19E3779F9ULL;
	return (size_t)(h ^ (h >> 29));
}

static int same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int grow_slots(builder *b)
{
	size_t n = b->mask ? (b->mask + 1) * 2 : 256;
	key_slot *s = hs_calloc(n, sizeof(*s));
	if (!s)
		return HS_ENOMEM;
	for (size_t i = 0; b->mask && i <= b->mask; i++) {
		if (!b->slots[i].row)
			continue;
		size_t k = hash_key(b->slots[i].file, b->slots[i].function, b->slots[i].line) & (n - 1);
		while (s[k].row)
			k = (k + 1) & (n - 1);
		s[k] = b->slots[i];
	}
	hs_free(b->slots);
	b->slots = s;
	b->mask = n - 1;
	return 0;
}

/* The row of (file, function, line), made if new; NULL when out of memory. */
static hs_line_row *row_of(builder *b, const char *file, const char *fn, int line)
{
	if (!b->mask || (b->l->count + 1) * 2 > b->mask)
		if (grow_slots(b) < 0)
			return NULL;
	size_t k = hash_key(file, fn, line) & b->mask;
	while (b->slots[k].row) {
		key_slot *s = &b->slots[k];
		if (s->line == line && same(s->file, file) && same(s->function, fn))
			return &b->l->rows[s->row - 1];
		k = (k + 1) & b->mask;
	}
	if (b->l->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		hs_line_row *r = hs_reallocarray(b->l->rows, cap, sizeof(*r));
		if (!r)
			return NULL;
		b->l->rows = r;
		b->cap = cap;
	}
	hs_line_row *r = &b->l->rows[b->l->count++];
	memset(r, 0, sizeof(*r));
	r->file = file;
	r->function = fn;
	r->line = line;
	r->source = "";
	b->slots[k] = (key_slot){ file, fn, line, b->l->count };
	return r;
}

static int contains(const char *hay, const char *needle)
{
	return !needle || (hay && strstr(hay, needle));
}

static const char *native_name(hs_lines *l, const hs_rec_site_stack *s)
{
	char buf[256];
	const char *what = s->kind == HS_REC_STACK_MMAP ? "native mmap" : "native";
	if (s->thread)
		snprintf(buf, sizeof(buf), "%s, thread %s", what, s->thread);
	else if (s->tid > 0)
		snprintf(buf, sizeof(buf), "%s, thread %lld", what, (long long)s->tid);
	else
		snprintf(buf, sizeof(buf), "%s", what);
	for (size_t i = 0; i < l->owned_count; i++)
		if (!strcmp(l->owned[i], buf))
			return l->owned[i];
	char **o = hs_reallocarray(l->owned, l->owned_count + 1, sizeof(*o));
	if (!o)
		return NULL;
	l->owned = o;
	char *c = hs_strdup(buf);
	if (!c)
		return NULL;
	l->owned[l->owned_count++] = c;
	return c;
}

static int64_t fig(const hs_line_row *r, hs_lines_by by)
{
	return by == HS_LINES_BY_PEAK ? r->peak_bytes : by == HS_LINES_BY_ALLOCATED ? r->allocated_bytes
	                                                                            : r->live_bytes;
}

static int64_t tfig(const hs_line_row *r, hs_lines_by by)
{
	return by == HS_LINES_BY_PEAK ? r->total_peak_bytes
	       : by == HS_LINES_BY_ALLOCATED ? r->total_allocated_bytes : r->total_live_bytes;
}

static hs_lines_by sort_by;

static int cmp_rows(const void *pa, const void *pb)
{
	const hs_line_row *a = pa, *b = pb;
	int64_t x = fig(a, sort_by), y = fig(b, sort_by);
	if (x != y)
		return x > y ? -1 : 1;
	x = tfig(a, sort_by), y = tfig(b, sort_by);
	if (x != y)
		return x > y ? -1 : 1;
	int c = strcmp(a->file, b->file);
	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return strcmp(a->function, b->function);
}

/* The stripped text of line `line` of `file`, or NULL. */
static char *read_source(const char *file, int line)
{
	if (!file || file[0] == '<' || line <= 0)
		return NULL;
	/* a path named by the recording: a FIFO or device there must not block
	 * or be read, only a regular file */
	FILE *f;
	if (hs_file_fopen_input(&f, file, "a source file") < 0)
		return NULL;
	char buf[4096];
	int n = 0;
	char *out = NULL;
	while (fgets(buf, sizeof(buf), f)) {
		size_t len = strlen(buf);
		int whole = len > 0 && buf[len - 1] == '\n';
		if (++n == line) {
			char *s = buf;
			while (*s == ' ' || *s == '\t')
				s++;
			size_t m = strlen(s);
			while (m && (s[m - 1] == '\n' || s[m - 1] == '\r' || s[m - 1] == ' ' || s[m - 1] == '\t'))
				m--;
			out = hs_strndup(s, m);
			break;
		}
		/* a line longer than the buffer: skip its rest */
		while (!whole && fgets(buf, sizeof(buf), f)) {
			len = strlen(buf);
			whole = len > 0 && buf[len - 1] == '\n';
		}
	}
	fclose(f);
	return out;
}

int hs_lines_build(hs_lines **out, const hs_recording *r, const hs_lines_options *opts)
{
	hs_lines_options o = HS_LINES_OPTIONS_INIT;
	if (opts)
		o = *opts;
	*out = NULL;
	hs_lines *l = hs_calloc(1, sizeof(*l));
	if (!l)
		return HS_ENOMEM;
	builder b = { l, 0, NULL, 0 };
	int rc = 0, any = 0, first = 1;
	uint32_t *seen = NULL; /* per row: the stack that last counted it (inclusive figures) */
	size_t seen_cap = 0;
	l->sampling.exact = 1;
	for (size_t pi = 0; pi < hs_recording_process_count(r) && rc == 0; pi++) {
		const hs_rec_process *p = hs_recording_process(r, pi);
		const hs_rec_track *t = hs_rec_process_track(p);
		if (!t || (o.pid && p->pid != o.pid))
			continue;
		any = 1;
		l->totals.processes++;
		const hs_rec_track_settings *st = &t->settings;
		if (!(st->flags & HS_REC_TRACK_EXACT)) {
			l->sampling.exact = 0;
			l->sampling.sample_bytes = st->sample_bytes;
		}
		if (first || (st->flags & HS_REC_TRACK_SEEDED)) {
			l->sampling.seeded = (st->flags & HS_REC_TRACK_SEEDED) != 0;
			l->sampling.seed = st->seed;
		}
		l->sampling.native |= (st->flags & HS_REC_TRACK_NATIVE) != 0;
		l->sampling.all_frames |= (st->flags & HS_REC_TRACK_ALL_FRAMES) != 0;
		l->sampling.from_now |= (st->flags & HS_REC_TRACK_FROM_NOW) != 0;
		if (first)
			l->sampling.peak_basis = st->peak_basis;
		first = 0;
		/*
		 * The peak can never be below what is live at the end. The
		 * tracker's sampled peak is the heap's footprint, a net figure
		 * since tracking started: with --pid, blocks allocated earlier and
		 * freed meanwhile lower it, while the live figures count only the
		 * blocks allocated since (and are estimates). When the end holds
		 * more than the recorded peak, the end is the highest moment
		 * known: its figures are the peak figures.
		 */
		int64_t live_end = 0;
		for (size_t si = 0; si < t->nstacks; si++)
			live_end += t->figs[si].live_b;
		int peak_at_end = live_end > t->peak_bytes;
		if (peak_at_end) {
			l->totals.peak_total_bytes += live_end;
			l->totals.peak_at_end++;
		} else if (t->peak_bytes > 0) {
			l->totals.peak_total_bytes += t->peak_bytes;
		}
		int all = (st->flags & HS_REC_TRACK_ALL_FRAMES) != 0;
		for (size_t si = 0; si < t->nstacks && rc == 0; si++) {
			const hs_rec_site_stack *s = &t->stacks[si];
			const hs_rec_site_fig *f = &t->figs[si];
			const hs_rec_site_fig *pk = peak_at_end ? f : &t->peak_figs[si];
			if (!f->alloc_n && !f->alloc_b && !f->live_b && !pk->live_b)
				continue;
			l->totals.stacks++;
			/* the self line: the innermost frame in the user's code */
			ptrdiff_t self = -1;
			for (size_t k = 0; s->defined && k < s->n; k++) {
				uint32_t id = s->locs[k];
				if (id >= t->nlocs || !t->locs[id].file)
					continue;
				if (self < 0)
					self = (ptrdiff_t)k; /* all library: the innermost */
				if (all || !(t->locs[id].flags & HS_REC_LOC_LIBRARY)) {
					self = (ptrdiff_t)k;
					break;
				}
			}
			size_t before = l->count;
			hs_line_row *row;
			if (self < 0) {
				const char *nm = native_name(l, s);
				row = nm ? row_of(&b, "<native>", nm, 0) : NULL;
			} else {
				const hs_rec_site_loc *loc = &t->locs[s->locs[self]];
				row = row_of(&b, loc->file, loc->function, loc->line);
			}
			if (!row) {
				rc = HS_ENOMEM;
				break;
			}
			row->allocated_bytes += f->alloc_b;
			row->allocations += f->alloc_n;
			row->live_bytes += f->live_b;
			row->peak_bytes += pk->live_b;
			size_t ri = (size_t)(row - l->rows); /* rows move when the table grows */
			(void)before;
			/* inclusive: every shown line once per stack */
			uint32_t mark = (uint32_t)(l->totals.stacks);
			size_t nk = self < 0 ? 0 : s->n;
			for (size_t k = (size_t)(self < 0 ? 0 : self); k <= nk; k++) {
				hs_line_row *x;
				if (k == nk) {
					if (self >= 0)
						break;
					x = &l->rows[ri]; /* the native pseudo-line */
				} else {
					uint32_t id = s->locs[k];
					if (id >= t->nlocs || !t->locs[id].file)
						continue;
					const hs_rec_site_loc *loc = &t->locs[id];
					if (!all && (loc->flags & HS_REC_LOC_LIBRARY) && (ptrdiff_t)k != self)
						continue;
					x = row_of(&b, loc->file, loc->function, loc->line);
					if (!x) {
						rc = HS_ENOMEM;
						break;
					}
				}
				size_t xi = (size_t)(x - l->rows);
				if (xi >= seen_cap) {
					size_t nc = seen_cap ? seen_cap : 64;
					while (nc <= xi)
						nc *= 2;
					uint32_t *ns = hs_reallocarray(seen, nc, sizeof(*ns));
					if (!ns) {
						rc = HS_ENOMEM;
						break;
					}
					memset(ns + seen_cap, 0, (nc - seen_cap) * sizeof(*ns));
					seen = ns;
					seen_cap = nc;
				}
				if (seen[xi] == mark)
					continue; /* recursion: once per stack */
				seen[xi] = mark;
				x->total_allocated_bytes += f->alloc_b;
				x->total_allocations += f->alloc_n;
				x->total_live_bytes += f->live_b;
				x->total_peak_bytes += pk->live_b;
			}
		}
	}
	hs_free(seen);
	hs_free(b.slots);
	if (rc == 0 && !any)
		rc = o.pid ? hs_error_set(HS_ENOTFOUND, "process %d has no allocation figures in the "
		                          "recording (see `heapsnap timeline` for its processes)", o.pid)
		           : hs_error_set(HS_ENOTFOUND, "the recording has no allocation figures; record "
		                          "with `heapsnap record --lines`");
	if (rc < 0) {
		hs_lines_free(l);
		return rc == HS_ENOMEM ? hs_error_set(HS_ENOMEM, "out of memory") : rc;
	}
	for (size_t i = 0; i < l->count; i++) {
		l->totals.allocated_bytes += l->rows[i].allocated_bytes;
		l->totals.allocations += l->rows[i].allocations;
		l->totals.live_bytes += l->rows[i].live_bytes;
		l->totals.peak_bytes += l->rows[i].peak_bytes;
	}
	/* filters, then sort and cut */
	size_t k = 0;
	for (size_t i = 0; i < l->count; i++) {
		hs_line_row *x = &l->rows[i];
		if (!contains(x->file, o.file) || !contains(x->function, o.function))
			continue;
		if (!x->allocated_bytes && !x->live_bytes && !x->peak_bytes && !x->total_allocated_bytes &&
		    !x->total_live_bytes && !x->total_peak_bytes)
			continue;
		l->rows[k++] = *x;
	}
	l->count = k;
	l->totals.rows = k;
	sort_by = o.by;
	if (l->count)
		qsort(l->rows, l->count, sizeof(*l->rows), cmp_rows);
	if (o.top && l->count > o.top)
		l->count = o.top;
	if (o.source) {
		for (size_t i = 0; i < l->count; i++) {
			char *src = read_source(l->rows[i].file, l->rows[i].line);
			if (!src)
				continue;
			char **ow = hs_reallocarray(l->owned, l->owned_count + 1, sizeof(*ow));
			if (!ow) {
				hs_free(src);
				break;
			}
			l->owned = ow;
			l->owned[l->owned_count++] = src;
			l->rows[i].source = src;
		}
	}
	*out = l;
	return 0;
}

void hs_lines_free(hs_lines *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->owned_count; i++)
		hs_free(l->owned[i]);
	hs_free(l->owned);
	hs_free(l->rows);
	hs_free(l);
}
