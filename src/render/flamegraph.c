/*
 * render/flamegraph.c: `heapsnap flamegraph`: a recording's allocation
 * stacks as an SVG flame graph, written here (no external tool). The root
 * is at the bottom; a frame's width is its bytes (live at the end, at the
 * peak, or allocated); children are ordered by name, so the output is the
 * same for the same recording. Frames are labelled "function (file:line)"
 * where they fit; each has a hover title with its bytes and percentage.
 */
#include <stdlib.h>
#include <string.h>

#include "heapsnap/lines.h"
#include "heapsnap/render.h"
#include "util/alloc.h"

typedef struct fnode {
	const char *file, *function;
	int line;
	int64_t value;
	size_t first, next; /* child / sibling index + 1 */
} fnode;

typedef struct ftree {
	fnode *n;
	size_t count, cap;
	char **owned;
	size_t owned_count;
} ftree;

static size_t node_new(ftree *t, const char *file, const char *fn, int line)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		fnode *n = hs_reallocarray(t->n, cap, sizeof(*n));
		if (!n)
			return 0;
		t->n = n;
		t->cap = cap;
	}
	fnode *x = &t->n[t->count++];
	memset(x, 0, sizeof(*x));
	x->file = file;
	x->function = fn;
	x->line = line;
	return t->count;
}

/* The child of `parent` (index + 1) for this frame, made if new; 0 out of memory. */
static size_t child(ftree *t, size_t parent, const char *file, const char *fn, int line)
{
	for (size_t c = t->n[parent - 1].first; c; c = t->n[c - 1].next) {
		fnode *x = &t->n[c - 1];
		if (x->line == line && (x->file == file || !strcmp(x->file, file)) &&
		    (x->function == fn || !strcmp(x->function, fn)))
			return c;
	}
	size_t c = node_new(t, file, fn, line);
	if (!c)
		return 0;
	t->n[c - 1].next = t->n[parent - 1].first;
	t->n[parent - 1].first = c;
	return c;
}

static const char *own(ftree *t, const char *s)
{
	for (size_t i = 0; i < t->owned_count; i++)
		if (!strcmp(t->owned[i], s))
			return t->owned[i];
	char **o = hs_reallocarray(t->owned, t->owned_count + 1, sizeof(*o));
	if (!o)
		return NULL;
	t->owned = o;
	char *c = hs_strdup(s);
	if (c)
		t->owned[t->owned_count++] = c;
	return c;
}

static int64_t value_of(const hs_rec_site_fig *f, const hs_rec_site_fig *pk, hs_lines_by by)
{
	int64_t v = by == HS_LINES_BY_PEAK ? pk->live_b : by == HS_LINES_BY_ALLOCATED ? f->alloc_b : f->live_b;
	return v > 0 ? v : 0;
}

static int build(ftree *t, const hs_recording *r, const hs_flame_options *o, int *exact)
{
	if (!node_new(t, "", "all", 0))
		return HS_ENOMEM;
	int any = 0;
	*exact = 1;
	size_t path[4096];
	for (size_t pi = 0; pi < hs_recording_process_count(r); pi++) {
		const hs_rec_process *p = hs_recording_process(r, pi);
		const hs_rec_track *tr = hs_rec_process_track(p);
		if (!tr || (o->pid && p->pid != o->pid))
			continue;
		any = 1;
		if (!(tr->settings.flags & HS_REC_TRACK_EXACT))
			*exact = 0;
		int all = (tr->settings.flags & HS_REC_TRACK_ALL_FRAMES) != 0;
		for (size_t si = 0; si < tr->nstacks; si++) {
			const hs_rec_site_stack *s = &tr->stacks[si];
			int64_t v = value_of(&tr->figs[si], &tr->peak_figs[si], o->by);
			if (!v)
				continue;
			/* shown frames, innermost first: user frames, or all; the self
			 * frame is the innermost user one (or the innermost of all) */
			size_t np = 0;
			ptrdiff_t self = -1;
			for (size_t k = 0; s->defined && k < s->n; k++) {
				uint32_t id = s->locs[k];
				if (id >= tr->nlocs || !tr->locs[id].file)
					continue;
				if (self < 0)
					self = (ptrdiff_t)k;
				if (all || !(tr->locs[id].flags & HS_REC_LOC_LIBRARY)) {
					self = (ptrdiff_t)k;
					break;
				}
			}
			for (size_t k = (size_t)(self < 0 ? (ptrdiff_t)s->n : self); k < s->n && np < 4096; k++) {
				uint32_t id = s->locs[k];
				if (id >= tr->nlocs || !tr->locs[id].file)
					continue;
				if (!all && (tr->locs[id].flags & HS_REC_LOC_LIBRARY) && (ptrdiff_t)k != self)
					continue;
				path[np++] = id;
			}
			size_t cur = 1;
			t->n[0].value += v;
			if (np == 0) {
				char nm[256];
				const char *what = s->kind == HS_REC_STACK_MMAP ? "native mmap" : "native";
				if (s->thread)
					snprintf(nm, sizeof(nm), "%s, thread %s", what, s->thread);
				else
					snprintf(nm, sizeof(nm), "%s", what);
				const char *name = own(t, nm);
				if (!name || !(cur = child(t, cur, "<native>", name, 0)))
					return HS_ENOMEM;
				t->n[cur - 1].value += v;
				continue;
			}
			for (size_t k = np; k-- > 0;) {
				const hs_rec_site_loc *loc = &tr->locs[path[k]];
				if (!(cur = child(t, cur, loc->file, loc->function, loc->line)))
					return HS_ENOMEM;
				t->n[cur - 1].value += v;
			}
		}
	}
	if (!any)
		return o->pid ? hs_error_set(HS_ENOTFOUND, "process %d has no allocation figures in the "
		                             "recording (see `heapsnap timeline` for its processes)", o->pid)
		              : hs_error_set(HS_ENOTFOUND, "the recording has no allocation figures; "
		                             "record with `heapsnap record --lines`");
	return 0;
}

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default:
			if ((unsigned char)*s < 0x20)
				fputc(' ', f);
			else
				fputc(*s, f);
		}
	}
}

static const ftree *cmp_tree;

static int cmp_child(const void *pa, const void *pb)
{
	const fnode *a = &cmp_tree->n[*(const size_t *)pa - 1], *b = &cmp_tree->n[*(const size_t *)pb - 1];
	int c = strcmp(a->function, b->function);
	if (c)
		return c;
	c = strcmp(a->file, b->file);
	if (c)
		return c;
	return (a->line > b->line) - (a->line < b->line);
}

static int depth_of(const ftree *t, size_t i)
{
	int d = 0;
	for (size_t c = t->n[i - 1].first; c; c = t->n[c - 1].next) {
		int x = depth_of(t, c);
		if (x > d)
			d = x;
	}
	return d + 1;
}

#define FRAME_H 18
#define PAD 10
#define TOP 48

static int draw(FILE *f, const ftree *t, size_t i, double x, int depth, int height, double scale, int64_t total)
{
	const fnode *n = &t->n[i - 1];
	double w = (double)n->value * scale;
	if (w < 0.1)
		return 0;
	double y = height - PAD - (double)(depth + 1) * FRAME_H;
	unsigned h = 2166136261u;
	for (const char *s = n->function; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	int rr = depth == 0 ? 200 : 205 + (int)(h % 50), gg = depth == 0 ? 200 : 80 + (int)((h >> 8) % 150),
	    bb = depth == 0 ? 200 : (int)((h >> 16) % 60);
	char label[4400], bytes[32];
	if (depth == 0)
		snprintf(label, sizeof(label), "all");
	else if (n->line > 0)
		snprintf(label, sizeof(label), "%s (%s:%d)", n->function, n->file, n->line);
	else
		snprintf(label, sizeof(label), "%s", n->function);
	hs_render_size(bytes, sizeof(bytes), (uint64_t)n->value);
	fprintf(f, "<g class=\"frame\"><title>");
	esc(f, label);
	fprintf(f, ": %s (%lld bytes, %.2f%%)</title>", bytes, (long long)n->value,
	        total ? 100.0 * (double)n->value / (double)total : 0.0);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" rx=\"2\"/>",
	        x, y, w, FRAME_H - 1, rr, gg, bb);
	/* the label where it fits: about 7 px per character at 12 px */
	size_t fit = w > 8 ? (size_t)((w - 6) / 7.0) : 0;
	if (fit >= 3) {
		size_t len = strlen(label);
		if (len > fit) {
			if (fit > 2) {
				label[fit - 2] = '.';
				label[fit - 1] = '.';
			}
			label[fit] = '\0';
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + FRAME_H - 5);
		esc(f, label);
		fputs("</text>", f);
	}
	fputs("</g>\n", f);
	size_t nc = 0;
	for (size_t c = n->first; c; c = t->n[c - 1].next)
		nc++;
	if (!nc)
		return 0;
	size_t *kids = hs_calloc(nc, sizeof(*kids));
	if (!kids)
		return HS_ENOMEM;
	nc = 0;
	for (size_t c = n->first; c; c = t->n[c - 1].next)
		kids[nc++] = c;
	cmp_tree = t;
	qsort(kids, nc, sizeof(*kids), cmp_child);
	int rc = 0;
	double cx = x;
	for (size_t k = 0; k < nc && rc == 0; k++) {
		rc = draw(f, t, kids[k], cx, depth + 1, height, scale, total);
		cx += (double)t->n[kids[k] - 1].value * scale;
	}
	hs_free(kids);
	return rc;
}

int hs_flamegraph_svg(FILE *f, const hs_recording *r, const hs_flame_options *opts)
{
	hs_flame_options o = HS_FLAME_OPTIONS_INIT;
	if (opts)
		o = *opts;
	if (o.width < 200)
		o.width = 1200;
	ftree t = { 0 };
	int exact = 1;
	int rc = build(&t, r, &o, &exact);
	if (rc == 0) {
		int depth = depth_of(&t, 1);
		int height = TOP + depth * FRAME_H + 2 * PAD;
		int64_t total = t.n[0].value;
		double scale = total > 0 ? (double)(o.width - 2 * PAD) / (double)total : 0;
		char tot[32];
		hs_render_size(tot, sizeof(tot), (uint64_t)total);
		const char *what = o.by == HS_LINES_BY_PEAK ? "live at the peak"
		                   : o.by == HS_LINES_BY_ALLOCATED ? "allocated" : "live at the end";
		fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
		        "viewBox=\"0 0 %d %d\">\n"
		        "<style>text{font-family:monospace;font-size:12px;fill:#000;pointer-events:none}"
		        ".frame:hover rect{stroke:#000;stroke-width:1}</style>\n"
		        "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f4\"/>\n",
		        o.width, height, o.width, height);
		fprintf(f, "<text x=\"%d\" y=\"22\" style=\"font-size:16px\">", PAD);
		esc(f, o.title ? o.title : "heapsnap flame graph");
		fprintf(f, "</text>\n<text x=\"%d\" y=\"40\">bytes %s: %s%s%s</text>\n", PAD, what, tot,
		        exact ? "" : " (sampled: estimates)", total ? "" : " (nothing to show)");
		if (total > 0)
			rc = draw(f, &t, 1, PAD, 0, height, scale, total);
		fputs("</svg>\n", f);
		if (rc == 0 && ferror(f))
			rc = hs_error_set(HS_EIO, "cannot write the flame graph");
	}
	for (size_t i = 0; i < t.owned_count; i++)
		hs_free(t.owned[i]);
	hs_free(t.owned);
	hs_free(t.n);
	return rc;
}
