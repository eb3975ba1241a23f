/* Unit tests: allocation sites in recordings (blocks TRACK, SITES,
 * SITE_DELTA, PEAK of formats/recording-v1.md), the per-line analysis
 * (folding of library frames, inclusive figures, sorting, filters) and the
 * flame graph. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/lines.h"
#include "heapsnap/recording.h"
#include "testutil.h"

/*
 * One process, exact tracking. Locations: 0 app.py:10 main, 1 app.py:20
 * load, 2 numeric.py:200 ones (library), 3 app.py:30 churn, 4 app.py:40
 * rec (recursive).
 * Stacks (innermost first): 0 = [2, 1, 0] (np.ones in load, called from
 * main), 1 = [3, 0], 2 = [4, 4, 0] (recursion), 3 = native without frames
 * in thread "io".
 */
static const char *write_sites(const char *name, int all_frames)
{
	const char *path = hs_test_tmppath(name);
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{\"format\":\"heapsnap-recording\"}", &o), 0, "%s",
	             hs_error_last());
	const char *argv[] = { "python3", "app.py" };
	size_t p;
	hs_rec_proc_start ps = { 10, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_PYTHON, "/usr/bin/python3", 2, argv };
	cr_assert_eq(hs_rec_writer_process(w, &p, &ps), 0);
	hs_rec_track_settings s = { HS_REC_TRACK_EXACT | (all_frames ? HS_REC_TRACK_ALL_FRAMES : 0), 0, 0,
	                            "requested" };
	cr_assert_eq(hs_rec_writer_track(w, p, 1000, &s), 0);
	hs_rec_site_loc locs[] = {
		{ 0, "/src/app.py", "main", 10, 1, 0 },
		{ 1, "/src/app.py", "load", 20, 18, 0 },
		{ 2, "/usr/lib/python3/dist-packages/numpy/numeric.py", "ones", 200, 150, HS_REC_LOC_LIBRARY },
		{ 3, "/src/app.py", "churn", 30, 28, 0 },
		{ 4, "/src/app.py", "rec", 40, 38, 0 },
	};
	uint32_t f0[] = { 2, 1, 0 }, f1[] = { 3, 0 }, f2[] = { 4, 4, 0 };
	hs_rec_site_stack st[] = {
		{ 0, 1, HS_REC_STACK_PYTHON, 10, "MainThread", 0, 3, f0 },
		{ 1, 1, HS_REC_STACK_PYTHON, 10, "MainThread", 0, 2, f1 },
		{ 2, 1, HS_REC_STACK_PYTHON, 10, "MainThread", 0, 3, f2 },
		{ 3, 1, HS_REC_STACK_NATIVE, 12, "io", 0, 0, NULL },
	};
	cr_assert_eq(hs_rec_writer_sites(w, p, locs, 5, st, 4), 0);
	hs_rec_site_fig d1[] = {
		{ 0, 1, 1000, 1, 1000 }, { 1, 100, 50000, 0, 0 }, { 2, 2, 300, 2, 300 }, { 3, 1, 64, 1, 64 },
	};
	cr_assert_eq(hs_rec_writer_site_delta(w, p, 500000, d1, 4), 0);
	hs_rec_site_fig pk[] = { { 0, 0, 0, 1, 1000 }, { 1, 0, 0, 1, 4000 } };
	cr_assert_eq(hs_rec_writer_peak(w, p, 600000, 9000, pk, 2), 0);
	cr_assert_eq(hs_rec_writer_flush(w, 1000000), 0);
	hs_rec_site_fig d2[] = { { 0, 1, 2000, 1, 2000 }, { 1, 50, 25000, 0, 0 } };
	cr_assert_eq(hs_rec_writer_site_delta(w, p, 1500000, d2, 2), 0);
	cr_assert_eq(hs_rec_writer_close(w, 2000000, HS_REC_STOP_EXITED, 0, NULL, NULL), 0);
	hs_rec_writer_free(w);
	return path;
}

static hs_recording *open_rec(const char *path)
{
	hs_recording *r;
	hs_recording_options ro = HS_RECORDING_OPTIONS_INIT;
	cr_assert_eq(hs_recording_open(&r, path, &ro), 0, "%s", hs_error_last());
	return r;
}

static const hs_line_row *find(const hs_lines *l, const char *fn, int line)
{
	for (size_t i = 0; i < l->count; i++)
		if (!strcmp(l->rows[i].function, fn) && l->rows[i].line == line)
			return &l->rows[i];
	return NULL;
}

Test(lines, model_roundtrip)
{
	hs_recording *r = open_rec(write_sites("sites.hsrec", 0));
	const hs_rec_track *t = hs_rec_process_track(hs_recording_process(r, 0));
	cr_assert_not_null(t);
	cr_assert_eq(t->settings.flags, HS_REC_TRACK_EXACT);
	cr_assert_str_eq(t->settings.peak_basis, "requested");
	cr_assert_eq(t->nlocs, 5);
	cr_assert_eq(t->nstacks, 4);
	cr_assert_str_eq(t->locs[2].function, "ones");
	cr_assert_eq(t->locs[2].flags, HS_REC_LOC_LIBRARY);
	cr_assert_eq(t->stacks[0].n, 3);
	cr_assert_eq(t->stacks[0].locs[0], 2);
	cr_assert_str_eq(t->stacks[3].thread, "io");
	/* deltas summed */
	cr_assert_eq(t->figs[0].alloc_b, 3000);
	cr_assert_eq(t->figs[0].live_b, 3000);
	cr_assert_eq(t->figs[1].alloc_n, 150);
	cr_assert_eq(t->figs[1].live_b, 0);
	cr_assert_eq(t->deltas, 2);
	cr_assert_eq(t->peak_bytes, 9000);
	cr_assert_float_eq(t->peak_t, 0.6, 1e-9);
	cr_assert_eq(t->peak_figs[1].live_b, 4000);
	cr_assert_eq(t->peak_figs[2].live_b, 0);
	hs_recording_free(r);
}

Test(lines, folding_inclusive_and_sorting)
{
	hs_recording *r = open_rec(write_sites("fold.hsrec", 0));
	hs_lines *l;
	hs_lines_options o = HS_LINES_OPTIONS_INIT;
	o.source = 0;
	cr_assert_eq(hs_lines_build(&l, r, &o), 0, "%s", hs_error_last());
	/* numpy's frame is folded into load's line */
	cr_assert_null(find(l, "ones", 200));
	const hs_line_row *load = find(l, "load", 20);
	cr_assert_not_null(load);
	cr_assert_eq(load->live_bytes, 3000);
	cr_assert_eq(load->allocations, 2);
	/* main:10 holds everything below it, once per stack */
	const hs_line_row *main_ = find(l, "main", 10);
	cr_assert_eq(main_->live_bytes, 0);
	cr_assert_eq(main_->total_live_bytes, 3000 + 300);
	cr_assert_eq(main_->total_allocated_bytes, 3000 + 75000 + 300);
	/* recursion: rec:40 counted once in its inclusive figure */
	const hs_line_row *rec = find(l, "rec", 40);
	cr_assert_eq(rec->live_bytes, 300);
	cr_assert_eq(rec->total_live_bytes, 300);
	/* native allocation without a frame */
	const hs_line_row *nat = find(l, "native, thread io", 0);
	cr_assert_not_null(nat);
	cr_assert_str_eq(nat->file, "<native>");
	/* sorted by live: load first */
	cr_assert_eq(&l->rows[0], load);
	cr_assert_eq(l->totals.peak_total_bytes, 9000);
	cr_assert_eq(l->totals.live_bytes, 3000 + 300 + 64);
	hs_lines_free(l);
	/* by peak: churn (4000) before load (1000) */
	o.by = HS_LINES_BY_PEAK;
	o.top = 1;
	cr_assert_eq(hs_lines_build(&l, r, &o), 0);
	cr_assert_eq(l->count, 1);
	cr_assert_str_eq(l->rows[0].function, "churn");
	cr_assert_eq(l->rows[0].peak_bytes, 4000);
	hs_lines_free(l);
	/* filters */
	o = (hs_lines_options)HS_LINES_OPTIONS_INIT;
	o.source = 0;
	o.function = "churn";
	o.by = HS_LINES_BY_ALLOCATED;
	cr_assert_eq(hs_lines_build(&l, r, &o), 0);
	cr_assert_eq(l->count, 1);
	cr_assert_eq(l->rows[0].allocated_bytes, 75000);
	cr_assert_eq(l->rows[0].allocations, 150);
	hs_lines_free(l);
	/* another pid: not found */
	o.pid = 4242;
	cr_assert_eq(hs_lines_build(&l, r, &o), HS_ENOTFOUND);
	hs_recording_free(r);
}

Test(lines, all_frames_keeps_library_lines)
{
	hs_recording *r = open_rec(write_sites("all.hsrec", 1));
	hs_lines *l;
	hs_lines_options o = HS_LINES_OPTIONS_INIT;
	o.source = 0;
	cr_assert_eq(hs_lines_build(&l, r, &o), 0);
	const hs_line_row *ones = find(l, "ones", 200);
	cr_assert_not_null(ones);
	cr_assert_eq(ones->live_bytes, 3000);
	cr_assert_eq(find(l, "load", 20)->live_bytes, 0);
	cr_assert_eq(find(l, "load", 20)->total_live_bytes, 3000);
	cr_assert(l->sampling.all_frames);
	hs_lines_free(l);
	hs_recording_free(r);
}

Test(lines, flamegraph_svg)
{
	hs_recording *r = open_rec(write_sites("flame.hsrec", 0));
	const char *out = hs_test_tmppath("flame.svg");
	FILE *f = fopen(out, "w");
	hs_flame_options o = HS_FLAME_OPTIONS_INIT;
	o.by = HS_LINES_BY_ALLOCATED;
	cr_assert_eq(hs_flamegraph_svg(f, r, &o), 0, "%s", hs_error_last());
	fclose(f);
	size_t len;
	char *svg = hs_test_read_file(out, &len);
	cr_assert_not_null(svg);
	svg = realloc(svg, len + 1);
	svg[len] = '\0';
	cr_assert(strstr(svg, "<svg "));
	cr_assert(strstr(svg, "<title>churn (/src/app.py:30): "));
	cr_assert(strstr(svg, "<title>load (/src/app.py:20): "));
	cr_assert(strstr(svg, "<title>native, thread io: "));
	cr_assert_null(strstr(svg, "numeric.py"));
	/* all = 3000 + 75000 + 300 + 64 bytes; churn is 75000 of them */
	cr_assert(strstr(svg, "<title>all: ") && strstr(svg, "(78364 bytes, 100.00%)"));
	cr_assert(strstr(svg, "(75000 bytes, 95.71%)"));
	free(svg);
	hs_recording_free(r);
}

Test(lines, recording_without_sites)
{
	const char *path = hs_test_tmppath("plain.hsrec");
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{}", &o), 0);
	const char *argv[] = { "true" };
	size_t p;
	hs_rec_proc_start ps = { 10, 1, -1, 0, HS_REC_PROC_ROOT, "/bin/true", 1, argv };
	cr_assert_eq(hs_rec_writer_process(w, &p, &ps), 0);
	cr_assert_eq(hs_rec_writer_close(w, 1000, HS_REC_STOP_EXITED, 0, NULL, NULL), 0);
	hs_rec_writer_free(w);
	hs_recording *r = open_rec(path);
	cr_assert_null(hs_rec_process_track(hs_recording_process(r, 0)));
	hs_lines *l;
	cr_assert_eq(hs_lines_build(&l, r, NULL), HS_ENOTFOUND);
	cr_assert(strstr(hs_error_last(), "record --lines"));
	FILE *f = fopen(hs_test_tmppath("none.svg"), "w");
	cr_assert_eq(hs_flamegraph_svg(f, r, NULL), HS_ENOTFOUND);
	fclose(f);
	hs_recording_free(r);
}

/*
 * record --pid --lines, sampled: the tracker's peak is the heap's net
 * footprint since tracking started, which blocks freed from before the
 * start lower, while the live figures count the blocks allocated since. A
 * program replacing its data showed "live at the end ~11.5 MiB, peak 16.2
 * KiB": the end is then the highest moment known, and its figures are the
 * peak's.
 */
Test(lines, peak_never_below_live)
{
	const char *path = hs_test_tmppath("peak_live.hsrec");
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{\"format\":\"heapsnap-recording\"}", &o), 0, "%s",
	             hs_error_last());
	const char *argv[] = { "python3", "svc.py" };
	size_t p;
	hs_rec_proc_start ps = { 20, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_PYTHON, "/usr/bin/python3", 2, argv };
	cr_assert_eq(hs_rec_writer_process(w, &p, &ps), 0);
	hs_rec_track_settings s = { HS_REC_TRACK_FROM_NOW, 524288, 0, "footprint" };
	cr_assert_eq(hs_rec_writer_track(w, p, 1000, &s), 0);
	hs_rec_site_loc locs[] = { { 0, "/srv/svc.py", "refresh", 12, 10, 0 },
	                           { 1, "/srv/svc.py", "serve", 30, 28, 0 } };
	uint32_t f0[] = { 0 }, f1[] = { 1 };
	hs_rec_site_stack st[] = { { 0, 1, HS_REC_STACK_PYTHON, 20, "MainThread", 0, 1, f0 },
	                           { 1, 1, HS_REC_STACK_PYTHON, 20, "MainThread", 0, 1, f1 } };
	cr_assert_eq(hs_rec_writer_sites(w, p, locs, 2, st, 2), 0);
	/* the peak noted early, at 16.2 KiB of net growth */
	hs_rec_site_fig pk[] = { { 0, 0, 0, 1, 16600 } };
	cr_assert_eq(hs_rec_writer_peak(w, p, 200000, 16600, pk, 1), 0);
	hs_rec_site_fig d[] = { { 0, 23, 11534336, 22, 11010048 }, { 1, 2, 1048576, 1, 524288 } };
	cr_assert_eq(hs_rec_writer_site_delta(w, p, 900000, d, 2), 0);
	cr_assert_eq(hs_rec_writer_close(w, 1000000, HS_REC_STOP_SIGNAL, -1, NULL, NULL), 0);
	hs_rec_writer_free(w);

	hs_recording *r = open_rec(path);
	hs_lines *l;
	hs_lines_options lo = HS_LINES_OPTIONS_INIT;
	lo.source = 0;
	cr_assert_eq(hs_lines_build(&l, r, &lo), 0, "%s", hs_error_last());
	cr_assert_eq(l->totals.live_bytes, 11010048 + 524288);
	cr_assert_geq(l->totals.peak_total_bytes, l->totals.live_bytes);
	cr_assert_eq(l->totals.peak_total_bytes, 11010048 + 524288);
	cr_assert_eq(l->totals.peak_at_end, 1);
	cr_assert_eq(find(l, "refresh", 12)->peak_bytes, 11010048);
	cr_assert_eq(find(l, "serve", 30)->peak_bytes, 524288);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert_eq(hs_render_lines_text(f, l, HS_LINES_BY_LIVE), 0);
	fclose(f);
	cr_assert(strstr(text, "live at the end ~11.0 MiB, peak ~11.0 MiB (at the end)") != NULL, "%s", text);
	free(text);
	hs_lines_free(l);
	hs_recording_free(r);
}
