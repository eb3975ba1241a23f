/*
 * analysis/timeline.c: peaks, the tree's total at each instant, phases.
 *
 * The tree's combined peak is taken at one instant: every process is
 * sampled in the same tick, so samples are grouped by tick (those within
 * half an interval of the group's first) and the values of every process
 * alive then are summed. Summing each process's own peak instead would
 * count memory that never existed at once (a parent that frees before its
 * children grow); that figure is kept as `sum_of_peaks_rss` only to show
 * the difference.
 *
 * PSS is what the tree really uses (shared copy-on-write pages counted
 * once across processes); where a process has no PSS sample yet, its RSS
 * stands in.
 */
#include <math.h>
#include <string.h>

#include "heapsnap/timeline.h"
#include "util/alloc.h"

const char *hs_tl_phase_name(hs_tl_phase_kind k)
{
	switch (k) {
	case HS_TL_GROWTH: return "growth";
	case HS_TL_PLATEAU: return "plateau";
	case HS_TL_DECLINE: return "decline";
	}
	return "?";
}

/* ------------------------------------------------------------------ */
/* phases                                                              */

typedef struct pt {
	double t;
	double v;
} pt;

/* Douglas-Peucker: mark points farther than eps from the chord. */
static int simplify(const pt *p, size_t n, double eps, unsigned char *keep)
{
	size_t *stack = hs_malloc(2 * n * sizeof(size_t));
	if (!stack)
		return HS_ENOMEM;
	size_t top = 0;
	keep[0] = keep[n - 1] = 1;
	stack[top++] = 0;
	stack[top++] = n - 1;
	while (top) {
		size_t b = stack[--top], a = stack[--top];
		if (b <= a + 1)
			continue;
		double dt = p[b].t - p[a].t;
		double best = -1;
		size_t at = a;
		for (size_t i = a + 1; i < b; i++) {
			double line = dt > 0 ? p[a].v + (p[b].v - p[a].v) * (p[i].t - p[a].t) / dt : p[a].v;
			double d = fabs(p[i].v - line);
			if (d > best) {
				best = d;
				at = i;
			}
		}
		if (best > eps) {
			keep[at] = 1;
			stack[top++] = a;
			stack[top++] = at;
			stack[top++] = at;
			stack[top++] = b;
		}
	}
	hs_free(stack);
	return 0;
}

void hs_timeline_phases_free(hs_tl_phase *phases) { hs_free(phases); }

int hs_timeline_phases(hs_tl_phase **out, size_t *count, const double *t, const int64_t *v,
                       size_t n, const hs_timeline_options *opts)
{
	hs_timeline_options defaults = HS_TIMELINE_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	*out = NULL;
	*count = 0;
	size_t valid = 0;
	double lo = 0, hi = 0, t0 = 0, t1 = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0)
			continue;
		double x = (double)v[i];
		if (!valid) {
			lo = hi = x;
			t0 = t[i];
		}
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
		t1 = t[i];
		valid++;
	}
	if (!valid)
		return 0;

	/* bucket means over equal time spans: noise (GC churn) averages out */
	size_t nb = valid < 400 ? valid : 400;
	pt *b = hs_calloc(nb, sizeof(pt));
	size_t *cnt = hs_calloc(nb, sizeof(size_t));
	unsigned char *keep = NULL;
	hs_tl_phase *ph = NULL;
	int rc = HS_ENOMEM;
	if (!b || !cnt)
		goto done;
	double span = t1 - t0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0)
			continue;
		size_t k = span > 0 ? (size_t)((t[i] - t0) / span * (double)nb) : 0;
		if (k >= nb)
			k = nb - 1;
		b[k].t += t[i];
		b[k].v += (double)v[i];
		cnt[k]++;
	}
	size_t m = 0;
	for (size_t k = 0; k < nb; k++) {
		if (!cnt[k])
			continue;
		b[m].t = b[k].t / (double)cnt[k];
		b[m].v = b[k].v / (double)cnt[k];
		m++;
	}
	/* the ends are the first and last samples themselves */
	b[0].t = t0;
	b[m - 1].t = t1;

	/* what counts as flat: a fraction of the range, but never less than
	 * the allocator's noise (2% of the level) or plateau_bytes */
	double eps = (hi - lo) * opts->plateau_fraction;
	if (eps < hi * 0.02)
		eps = hi * 0.02;
	if (eps < (double)opts->plateau_bytes)
		eps = (double)opts->plateau_bytes;
	keep = hs_calloc(m, 1);
	ph = hs_calloc(m, sizeof(*ph));
	if (!keep || !ph)
		goto done;
	if (m == 1) {
		ph[0].kind = HS_TL_PLATEAU;
		ph[0].start = t0;
		ph[0].end = t1;
		ph[0].from = ph[0].to = (int64_t)b[0].v;
		*out = ph;
		*count = 1;
		ph = NULL;
		rc = 0;
		goto done;
	}
	if ((rc = simplify(b, m, eps, keep)) < 0)
		goto done;
	size_t np = 0, prev = 0;
	for (size_t i = 1; i < m; i++) {
		if (!keep[i])
			continue;
		double d = b[i].v - b[prev].v, dt = b[i].t - b[prev].t;
		/* flat: a small change, at a rate that kept up over the whole
		 * recording would still be small (a short stretch of a steady
		 * climb is growth, not a plateau) */
		int flat = fabs(d) < eps && (dt <= 0 || fabs(d) / dt * span < 2 * eps);
		hs_tl_phase_kind kind = flat ? HS_TL_PLATEAU : d > 0 ? HS_TL_GROWTH : HS_TL_DECLINE;
		if (np && ph[np - 1].kind == kind) {
			ph[np - 1].end = b[i].t;
			ph[np - 1].to = (int64_t)b[i].v;
		} else {
			ph[np].kind = kind;
			ph[np].start = b[prev].t;
			ph[np].end = b[i].t;
			ph[np].from = (int64_t)b[prev].v;
			ph[np].to = (int64_t)b[i].v;
			np++;
		}
		prev = i;
	}
	/* A short phase between two of one kind joins them: the pauses of a
	 * staircase, a dip in a plateau. Shortest first, until none is left. */
	double min_dur = (t1 - t0) * opts->min_phase_fraction;
	for (;;) {
		size_t at = 0;
		double best = min_dur;
		for (size_t i = 1; i + 1 < np; i++) {
			double d = ph[i].end - ph[i].start;
			/* ...only when the three together are still of that kind: a
			 * sharp drop between two plateaus is a phase of its own */
			double joined = (double)(ph[i + 1].to - ph[i - 1].from);
			hs_tl_phase_kind jk = fabs(joined) < eps ? HS_TL_PLATEAU
			                      : joined > 0 ? HS_TL_GROWTH : HS_TL_DECLINE;
			if (d < best && ph[i - 1].kind == ph[i + 1].kind && ph[i].kind != ph[i - 1].kind &&
			    jk == ph[i - 1].kind) {
				best = d;
				at = i;
			}
		}
		if (!at)
			break;
		ph[at - 1].end = ph[at + 1].end;
		ph[at - 1].to = ph[at + 1].to;
		memmove(&ph[at], &ph[at + 2], (np - at - 2) * sizeof(*ph));
		np -= 2;
		/* the joined phase may now match a neighbour */
		for (size_t i = 1; i < np;) {
			if (ph[i].kind == ph[i - 1].kind) {
				ph[i - 1].end = ph[i].end;
				ph[i - 1].to = ph[i].to;
				memmove(&ph[i], &ph[i + 1], (np - i - 1) * sizeof(*ph));
				np--;
			} else {
				i++;
			}
		}
	}
	/* merged plateaus may have drifted past the threshold as a whole */
	for (size_t i = 0; i < np; i++) {
		double d = (double)(ph[i].to - ph[i].from);
		if (ph[i].kind == HS_TL_PLATEAU && fabs(d) >= eps)
			ph[i].kind = d > 0 ? HS_TL_GROWTH : HS_TL_DECLINE;
		double dt = ph[i].end - ph[i].start;
		ph[i].rate = dt > 0 ? d / dt : 0.0;
	}
	*out = ph;
	*count = np;
	ph = NULL;
	rc = 0;
done:
	hs_free(b);
	hs_free(cnt);
	hs_free(keep);
	hs_free(ph);
	return rc;
}

/* ------------------------------------------------------------------ */
/* per process                                                         */

static void peak_of(hs_tl_peak *pk, int64_t *last, const hs_rec_process *p, hs_rec_metric m)
{
	hs_rec_series s;
	pk->bytes = -1;
	pk->t = 0;
	*last = -1;
	if (hs_rec_process_series(&s, p, m) < 0)
		return;
	for (size_t i = 0; i < s.count; i++) {
		if (s.v[i] < 0)
			continue;
		if (s.v[i] > pk->bytes) {
			pk->bytes = s.v[i];
			pk->t = s.t[i];
		}
		*last = s.v[i];
	}
}

void hs_timeline_free(hs_timeline *t)
{
	if (!t)
		return;
	hs_free(t->processes);
	hs_free(t->total.t);
	hs_free(t->total.rss);
	hs_free(t->total.pss);
	hs_free(t->total.uss);
	hs_free(t->peak_breakdown);
	hs_free(t->phases);
	hs_free(t);
}

typedef struct cursor {
	hs_rec_series rss, pss, uss;
	size_t i;     /* next sample not yet taken */
	int have;     /* a sample at or before the current instant */
} cursor;

static int build_total(hs_timeline *tl, const hs_recording *r)
{
	size_t np = hs_recording_process_count(r);
	const hs_rec_info *info = hs_recording_info(r);
	double half = info->interval > 0 ? info->interval / 2 : 0.005;
	cursor *cur = hs_calloc(np ? np : 1, sizeof(cursor));
	if (!cur)
		return HS_ENOMEM;
	size_t total = 0;
	for (size_t k = 0; k < np; k++) {
		const hs_rec_process *p = hs_recording_process(r, k);
		hs_rec_process_series(&cur[k].rss, p, HS_REC_RSS);
		hs_rec_process_series(&cur[k].pss, p, HS_REC_PSS_EST);
		hs_rec_process_series(&cur[k].uss, p, HS_REC_USS_EST);
		total += cur[k].rss.count;
	}
	hs_tl_total *T = &tl->total;
	T->t = hs_malloc((total ? total : 1) * sizeof(double));
	T->rss = hs_malloc((total ? total : 1) * sizeof(int64_t));
	T->pss = hs_malloc((total ? total : 1) * sizeof(int64_t));
	T->uss = hs_malloc((total ? total : 1) * sizeof(int64_t));
	if (!T->t || !T->rss || !T->pss || !T->uss) {
		hs_free(cur);
		return HS_ENOMEM;
	}
	/* k-way merge of the RSS timestamps, grouped by tick */
	for (;;) {
		double tmin = INFINITY;
		for (size_t k = 0; k < np; k++)
			if (cur[k].i < cur[k].rss.count && cur[k].rss.t[cur[k].i] < tmin)
				tmin = cur[k].rss.t[cur[k].i];
		if (tmin == INFINITY)
			break;
		double tend = tmin + half;
		int64_t rs = 0, ps = 0, us = 0;
		int any = 0;
		for (size_t k = 0; k < np; k++) {
			cursor *c = &cur[k];
			while (c->i < c->rss.count && c->rss.t[c->i] < tend) {
				c->i++;
				c->have = 1;
			}
			const hs_rec_process *p = hs_recording_process(r, k);
			if (!c->have || tmin > p->end + half)
				continue;
			size_t j = c->i - 1;
			int64_t rv = c->rss.v[j];
			if (rv < 0)
				continue;
			int64_t pv = c->pss.count ? c->pss.v[j] : -1;
			int64_t uv = c->uss.count ? c->uss.v[j] : -1;
			rs += rv;
			ps += pv >= 0 ? pv : rv;
			us += uv >= 0 ? uv : rv;
			any = 1;
		}
		if (!any)
			continue;
		T->t[T->count] = tmin;
		T->rss[T->count] = rs;
		T->pss[T->count] = ps;
		T->uss[T->count] = us;
		T->count++;
	}
	hs_free(cur);
	return 0;
}

int hs_timeline_build(hs_timeline **out, const hs_recording *r, const hs_timeline_options *opts)
{
	hs_timeline_options defaults = HS_TIMELINE_OPTIONS_INIT;
	*out = NULL;
	if (opts && opts->version != HS_TIMELINE_OPTIONS_VERSION)
		return hs_error_set(HS_EINVAL, "timeline options version %u is not %u", opts->version,
		                    HS_TIMELINE_OPTIONS_VERSION);
	if (!opts)
		opts = &defaults;
	hs_timeline *tl = hs_calloc(1, sizeof(*tl));
	if (!tl)
		return HS_ENOMEM;
	size_t np = hs_recording_process_count(r);
	tl->process_count = np;
	tl->processes = hs_calloc(np ? np : 1, sizeof(hs_tl_process));
	tl->peak_breakdown = hs_calloc(np ? np : 1, sizeof(int64_t));
	if (!tl->processes || !tl->peak_breakdown) {
		hs_timeline_free(tl);
		return HS_ENOMEM;
	}
	int have_pss = 0;
	for (size_t k = 0; k < np; k++) {
		const hs_rec_process *p = hs_recording_process(r, k);
		hs_tl_process *q = &tl->processes[k];
		q->process = p;
		peak_of(&q->rss, &q->exit_rss, p, HS_REC_RSS);
		peak_of(&q->pss, &q->exit_pss, p, HS_REC_PSS_EST);
		peak_of(&q->uss, &q->exit_uss, p, HS_REC_USS_EST);
		peak_of(&q->swap, &q->exit_swap, p, HS_REC_SWAP);
		for (unsigned kind = 1; kind <= HS_REC_SERIES_KIND_MAX; kind++)
			q->rate[kind] = hs_rec_process_rate(p, (hs_rec_series_kind)kind);
		if (q->pss.bytes >= 0)
			have_pss = 1;
		if (q->rss.bytes > 0)
			tl->sum_of_peaks_rss += q->rss.bytes;
	}
	int rc = build_total(tl, r);
	if (rc < 0) {
		hs_timeline_free(tl);
		return rc;
	}
	tl->main_metric = have_pss ? HS_REC_PSS_EST : HS_REC_RSS;
	hs_tl_peak *pk[3] = { &tl->peak_rss, &tl->peak_pss, &tl->peak_uss };
	int64_t *arr[3] = { tl->total.rss, tl->total.pss, tl->total.uss };
	for (int m = 0; m < 3; m++) {
		pk[m]->bytes = -1;
		for (size_t i = 0; i < tl->total.count; i++)
			if (arr[m][i] > pk[m]->bytes) {
				pk[m]->bytes = arr[m][i];
				pk[m]->t = tl->total.t[i];
			}
	}
	if (!have_pss) {
		tl->peak_pss.bytes = tl->peak_uss.bytes = -1;
	}
	/* who held what at the main peak: the samples of its tick (see build_total) */
	const hs_tl_peak *main = have_pss ? &tl->peak_pss : &tl->peak_rss;
	double interval = hs_recording_info(r)->interval;
	double at = main->t + (interval > 0 ? interval / 2 : 0.005) * 0.999;
	for (size_t k = 0; k < np; k++) {
		int64_t v;
		const hs_rec_process *p = hs_recording_process(r, k);
		tl->peak_breakdown[k] = -1;
		if (main->bytes < 0)
			continue;
		double first;
		const double *ts;
		if (!hs_rec_process_samples(p, HS_REC_SERIES_MEM, &ts))
			continue;
		first = ts[0];
		if (first > at)
			continue; /* not sampled yet at that instant */
		if (hs_rec_process_value_at(&v, p, tl->main_metric, at) == 0)
			tl->peak_breakdown[k] = v;
		else if (have_pss && hs_rec_process_value_at(&v, p, HS_REC_RSS, at) == 0)
			tl->peak_breakdown[k] = v;
	}
	hs_error_clear();
	rc = hs_timeline_phases(&tl->phases, &tl->phase_count, tl->total.t,
	                        have_pss ? tl->total.pss : tl->total.rss, tl->total.count, opts);
	if (rc < 0) {
		hs_timeline_free(tl);
		return rc;
	}
	*out = tl;
	return 0;
}
