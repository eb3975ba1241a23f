/* tests/unit/test_plot.c: the plot's axes and words (src/render/plot_axis.c):
 * nice ticks in human units, times, --from/--to, legend commands. The
 * pictures themselves are tested in tests/plot/. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "heapsnap/plot.h"
#include "render/plot_internal.h"

#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)

/* the labels of a tick set, joined by "|" */
static const char *labels(const hs_plot__ticks *t)
{
	static char out[1024];
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < t->count; i++) {
		char l[64];
		hs_plot__tick_label(l, sizeof(l), t, t->v[i]);
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "|" : "", l);
	}
	return out;
}

Test(plot_axis, size_ticks_read_in_one_binary_unit)
{
	hs_plot__ticks t;
	hs_plot__size_ticks(&t, 405 * MIB, 6);
	cr_assert_str_eq(labels(&t), "0|50 MiB|100 MiB|150 MiB|200 MiB|250 MiB|300 MiB|350 MiB|"
	                 "400 MiB|450 MiB");
	cr_assert_eq(t.hi, 450 * MIB);
	cr_assert_eq(t.step, 50 * MIB);
	hs_plot__size_ticks(&t, 1.6 * GIB, 4);
	cr_assert_str_eq(labels(&t), "0|0.5 GiB|1 GiB|1.5 GiB|2 GiB");
	hs_plot__size_ticks(&t, 10 * MIB, 3);
	cr_assert_str_eq(labels(&t), "0|2.5 MiB|5 MiB|7.5 MiB|10 MiB");
	hs_plot__size_ticks(&t, 700, 5);
	cr_assert_str_eq(labels(&t), "0|100 B|200 B|300 B|400 B|500 B|600 B|700 B");
}

Test(plot_axis, size_ticks_cover_the_data_and_never_split_bytes)
{
	hs_plot__ticks t;
	hs_plot__size_ticks(&t, 3, 5);
	cr_assert_str_eq(labels(&t), "0|1 B|2 B|3 B");
	hs_plot__size_ticks(&t, 0, 5); /* nothing measured: still an axis */
	cr_assert_eq(t.hi, KIB);
	cr_assert_str_eq(labels(&t), "0|0.2 KiB|0.4 KiB|0.6 KiB|0.8 KiB|1 KiB");
	/* whatever the range and density, the axis ends at or above the data */
	for (double hi = 1; hi < 1e13; hi *= 1.37)
		for (int target = 1; target < 40; target += 3) {
			hs_plot__size_ticks(&t, hi, target);
			cr_assert_geq(t.hi, hi, "hi %g target %d: axis to %g", hi, target, t.hi);
			cr_assert_leq(t.count, HS_PLOT_MAX_TICKS);
			cr_assert(fabs(t.v[t.count - 1] - t.hi) <= t.hi * 1e-9);
			cr_assert_geq(t.count, 2);
		}
}

Test(plot_axis, time_ticks_use_seconds_minutes_hours)
{
	hs_plot__ticks t;
	hs_plot__time_ticks(&t, 0, 10, 6);
	cr_assert_str_eq(labels(&t), "0|2 s|4 s|6 s|8 s|10 s");
	hs_plot__time_ticks(&t, 0, 7200, 6);
	cr_assert_str_eq(labels(&t), "0|30 min|1 h|1 h 30 min|2 h");
	hs_plot__time_ticks(&t, 0, 300, 5);
	cr_assert_str_eq(labels(&t), "0|1 min|2 min|3 min|4 min|5 min");
	hs_plot__time_ticks(&t, 0, 90, 4);
	cr_assert_str_eq(labels(&t), "0|30 s|1 min|1 min 30 s");
	hs_plot__time_ticks(&t, 0, 3, 6);
	cr_assert_str_eq(labels(&t), "0|0.5 s|1 s|1.5 s|2 s|2.5 s|3 s");
	hs_plot__time_ticks(&t, 0, 0.5, 5);
	cr_assert_str_eq(labels(&t), "0|100 ms|200 ms|300 ms|400 ms|500 ms");
	hs_plot__time_ticks(&t, 0, 3 * 86400, 3);
	cr_assert_str_eq(labels(&t), "0|1 d|2 d|3 d");
}

Test(plot_axis, time_ticks_inside_a_window)
{
	hs_plot__ticks t;
	/* the window is not widened: ticks at multiples of the step inside it */
	hs_plot__time_ticks(&t, 100, 130, 6);
	cr_assert_str_eq(labels(&t), "1 min 40 s|1 min 45 s|1 min 50 s|1 min 55 s|2 min|2 min 5 s|"
	                 "2 min 10 s");
	cr_assert_eq(t.lo, 100);
	cr_assert_eq(t.hi, 130);
	hs_plot__time_ticks(&t, 2, 5.5, 8);
	cr_assert_str_eq(labels(&t), "2 s|2.5 s|3 s|3.5 s|4 s|4.5 s|5 s|5.5 s");
	hs_plot__time_ticks(&t, 3600, 3660, 4);
	cr_assert_str_eq(labels(&t), "1:00:00|1:00:15|1:00:30|1:00:45|1:01:00");
	hs_plot__time_ticks(&t, 60, 62, 4);
	cr_assert_str_eq(labels(&t), "60 s|60.5 s|61 s|61.5 s|62 s");
}

Test(plot_axis, times_and_spans_for_people)
{
	char b[32];
	hs_plot__time_text(b, sizeof(b), 3.99);
	cr_assert_str_eq(b, "3.99 s");
	hs_plot__time_text(b, sizeof(b), 125.34);
	cr_assert_str_eq(b, "2:05.3");
	hs_plot__time_text(b, sizeof(b), 3723);
	cr_assert_str_eq(b, "1:02:03");
	hs_plot__span_text(b, sizeof(b), 10);
	cr_assert_str_eq(b, "10 s");
	hs_plot__span_text(b, sizeof(b), 6.5);
	cr_assert_str_eq(b, "6.5 s");
	hs_plot__span_text(b, sizeof(b), 150);
	cr_assert_str_eq(b, "2.5 min");
	hs_plot__span_text(b, sizeof(b), 7200);
	cr_assert_str_eq(b, "2 h");
}

static double parsed(const char *text)
{
	double v = -1;
	cr_assert_eq(hs_plot_parse_time(&v, text), 0, "'%s': %s", text, hs_error_last());
	return v;
}

Test(plot_axis, parse_time_reads_units_and_clock_times)
{
	cr_assert_eq(parsed("90"), 90);
	cr_assert_eq(parsed("1.5"), 1.5);
	cr_assert_eq(parsed("0"), 0);
	cr_assert_float_eq(parsed("500ms"), 0.5, 1e-12);
	cr_assert_eq(parsed("90s"), 90);
	cr_assert_eq(parsed("2min"), 120);
	cr_assert_eq(parsed("2m"), 120);
	cr_assert_eq(parsed("1.5h"), 5400);
	cr_assert_eq(parsed("1m30s"), 90);
	cr_assert_eq(parsed("1h 5min"), 3900);
	cr_assert_eq(parsed(" 2 s"), 2);
	cr_assert_eq(parsed("1:30"), 90);
	cr_assert_eq(parsed("2:05.5"), 125.5);
	cr_assert_eq(parsed("1:02:03"), 3723);
}

Test(plot_axis, parse_time_rejects_what_is_not_a_time)
{
	static const char *const bad[] = { "", "-5", "-1s", "abc", "5x", "1m30", "1e3", "0x10",
	                                   "1:2:3:4", ":30", "1:", "s", "5 5", "inf", "nan" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v = 42;
		cr_assert_eq(hs_plot_parse_time(&v, bad[i]), HS_EINVAL, "'%s' was accepted", bad[i]);
		cr_assert_eq(v, 42);
		cr_assert(strstr(hs_error_last(), "as a time") != NULL, "%s", hs_error_last());
	}
}

static const char *short_cmd(size_t argc, const char *const *argv, const char *exe, size_t max)
{
	static char buf[256];
	hs_rec_process p;
	memset(&p, 0, sizeof(p));
	p.pid = 12;
	p.argc = argc;
	p.argv = argv;
	p.exe = exe;
	hs_plot__short_command(buf, sizeof(buf), &p, max);
	return buf;
}

Test(plot_words, commands_are_shortened_for_a_legend)
{
	const char *job[] = { "/usr/bin/python3", "/srv/etl/pipeline/jobs/run_nightly_job.py",
	                      "--date", "2024-01-01" };
	cr_assert_str_eq(short_cmd(4, job, "", 0),
	                 "python3 \xe2\x80\xa6/run_nightly_job.py --date 2024-01-01");
	const char *shortpath[] = { "python3", "app/main.py" };
	cr_assert_str_eq(short_cmd(2, shortpath, "", 0), "python3 app/main.py");
	const char *spawn[] = { "/usr/bin/python3.11", "-c", "from multiprocessing.spawn import "
	                        "spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
	                        "--multiprocessing-fork" };
	cr_assert_str_eq(short_cmd(4, spawn, "", 0), "python3.11 (multiprocessing spawn)");
	const char *fs[] = { "python3", "-c", "from multiprocessing.forkserver import main; "
	                     "main(4, 5, ['__main__'])" };
	cr_assert_str_eq(short_cmd(3, fs, "", 0), "python3 (multiprocessing forkserver)");
	const char *rt[] = { "python3", "-c", "from multiprocessing.resource_tracker import main;"
	                     "main(6)" };
	cr_assert_str_eq(short_cmd(3, rt, "", 0), "python3 (multiprocessing resource tracker)");
	const char *code[] = { "python3", "-c", "import sys\nprint(sys.argv)" };
	cr_assert_str_eq(short_cmd(3, code, "", 0), "python3 -c import sys");
	const char *code2[] = { "python3", "-c", "\n  import time\nx = []" };
	cr_assert_str_eq(short_cmd(3, code2, "", 0), "python3 -c import time");
	cr_assert_str_eq(short_cmd(0, NULL, "/usr/sbin/nginx", 0), "nginx");
	cr_assert_str_eq(short_cmd(0, NULL, "", 0), "pid 12");
}

Test(plot_words, commands_are_clean_utf8_and_cut_by_characters)
{
	const char *odd[] = { "prog\x01", "caf\xc3\xa9", "\xff\xfe", "a\tb" };
	cr_assert_str_eq(short_cmd(4, odd, "", 0), "prog? caf\xc3\xa9 ?? a b");
	const char *job[] = { "/usr/bin/python3", "/srv/etl/pipeline/jobs/run_nightly_job.py" };
	const char *s = short_cmd(2, job, "", 12);
	cr_assert_eq(hs_plot__utf8_len(s), 12, "%s", s);
	cr_assert_str_eq(s, "python3 \xe2\x80\xa6/r\xe2\x80\xa6");
}

Test(plot_words, utf8_cut_and_clean_never_split_a_character)
{
	char b[32];
	snprintf(b, sizeof(b), "h\xc3\xa9llo w\xc3\xb6rld");
	hs_plot__utf8_cut(b, sizeof(b), 5);
	cr_assert_str_eq(b, "h\xc3\xa9ll\xe2\x80\xa6");
	snprintf(b, sizeof(b), "short");
	hs_plot__utf8_cut(b, sizeof(b), 5);
	cr_assert_str_eq(b, "short");
	/* 4 bytes of room: one 2-byte character fits, the second would not */
	char small[4];
	cr_assert_eq(hs_plot__clean_text(small, sizeof(small), "\xc3\xa9\xc3\xa9"), 2);
	cr_assert_str_eq(small, "\xc3\xa9");
	/* overlong forms and surrogates are not UTF-8 */
	hs_plot__clean_text(b, sizeof(b), "\xc0\xaf|\xed\xa0\x80|\xf0\x9f\x98\x80");
	cr_assert_str_eq(b, "??|???|\xf0\x9f\x98\x80");
}

Test(plot_words, formats_come_from_the_extension)
{
	cr_assert_eq(hs_plot_format_of("a.png"), HS_PLOT_PNG);
	cr_assert_eq(hs_plot_format_of("dir.v2/A.SVG"), HS_PLOT_SVG);
	cr_assert_eq(hs_plot_format_of("x.pdf"), HS_PLOT_PDF);
	cr_assert_eq(hs_plot_format_of("x.jpg"), HS_PLOT_AUTO);
	cr_assert_eq(hs_plot_format_of("dir.png/x"), HS_PLOT_AUTO);
	cr_assert_eq(hs_plot_format_of("png"), HS_PLOT_AUTO);
	cr_assert_str_eq(hs_plot_format_name(HS_PLOT_PDF), "pdf");
}

Test(plot_words, svg_text_is_escaped)
{
	hs_buf b = HS_BUF_INIT;
	cr_assert_eq(hs_plot__xml_escape(&b, "a<b & \"c\" 'd'>"), 0);
	cr_assert_eq(hs_buf_put(&b, "", 1), 0);
	cr_assert_str_eq((const char *)b.data, "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
	hs_buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* the renderer through its API                                        */

#include <unistd.h>
#include "testutil.h"
#include "util/alloc.h"

/* two processes for 1 s at 10 ms, PSS sampled, a marker, types */
static hs_recording *small_recording(void)
{
	const char *path = hs_test_tmppath("small.hsrec");
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{}", &o), 0, "%s", hs_error_last());
	const char *a[] = { "python3", "app.py" };
	hs_rec_proc_start p0 = { 10, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH, "", 2, a };
	hs_rec_proc_start p1 = { 11, 10, 0, 200000, HS_REC_PROC_FROM_BIRTH, "", 2, a };
	size_t i0, i1;
	cr_assert_eq(hs_rec_writer_process(w, &i0, &p0), 0);
	cr_assert_eq(hs_rec_writer_process(w, &i1, &p1), 0);
	for (int k = 0; k <= 100; k++) {
		int64_t t = (int64_t)k * 10000;
		int64_t m0[HS_REC_MEM_COLUMNS] = { t, 10240 + k * 100, 50000, 2048 };
		cr_assert_eq(hs_rec_writer_sample(w, i0, HS_REC_SERIES_MEM, m0, HS_REC_MEM_COLUMNS), 0);
		if (k % 50 == 0) {
			int64_t s[HS_REC_SMAPS_COLUMNS] = { t, 9000 + k * 100, 8000, 8000, 1000, 0, 0, 0, 50 };
			cr_assert_eq(hs_rec_writer_sample(w, i0, HS_REC_SERIES_SMAPS, s,
			                                  HS_REC_SMAPS_COLUMNS), 0);
			hs_rec_type_row rows[2] = { { "dict", 10, 4096 + k }, { "list", 5, 2048 } };
			cr_assert_eq(hs_rec_writer_types(w, i0, t, 100, 8192, 10, rows, 2), 0);
		}
		if (k >= 20 && k < 80) {
			int64_t m1[HS_REC_MEM_COLUMNS] = { t, 20480, 50000, 2048 };
			cr_assert_eq(hs_rec_writer_sample(w, i1, HS_REC_SERIES_MEM, m1, HS_REC_MEM_COLUMNS),
			             0);
		}
	}
	cr_assert_eq(hs_rec_writer_mark(w, i0, 500000, "half"), 0);
	hs_rec_exit e = { HS_REC_EXITED, 0, 0, 0 };
	cr_assert_eq(hs_rec_writer_exit(w, i1, 800000, &e), 0);
	cr_assert_eq(hs_rec_writer_exit(w, i0, 1000000, &e), 0);
	cr_assert_eq(hs_rec_writer_close(w, 1000000, HS_REC_STOP_EXITED, 0, NULL, NULL), 0);
	hs_rec_writer_free(w);
	hs_recording *r;
	hs_recording_options ro = HS_RECORDING_OPTIONS_INIT;
	cr_assert_eq(hs_recording_open(&r, path, &ro), 0, "%s", hs_error_last());
	return r;
}

Test(plot_render, draws_what_the_recording_holds)
{
	hs_recording *r = small_recording();
	const char *out = hs_test_tmppath("small.svg");
	hs_plot_stats st;
	cr_assert_eq(hs_plot_render(r, out, NULL, &st), 0, "%s", hs_error_last());
	cr_assert_eq(st.format, HS_PLOT_SVG);
	cr_assert_eq(st.metric, HS_REC_PSS_EST);
	cr_assert_eq(st.processes, 2);
	cr_assert_eq(st.fallback, 1); /* 11 has no smaps sample */
	cr_assert_eq(st.markers, 1);
	cr_assert_eq(st.types, 2);
	cr_assert_eq(st.types_pid, 10);
	cr_assert_eq(st.peak_pid, 11); /* 20 MiB against the root's PSS up to 19 MiB */
	cr_assert_eq(st.peak, 20480 * 1024);
	cr_assert_eq(st.width, 1200);
	cr_assert_eq(st.height, 800);
	size_t len;
	char *svg = hs_test_read_file(out, &len);
	cr_assert_not_null(svg);
	cr_assert_eq(st.bytes, len);
	cr_assert(strstr(svg, ">python3 app.py [10]</text>") != NULL);
	cr_assert(strstr(svg, ">python3 app.py (fork) [11] \xc2\xb7 RSS</text>") != NULL);
	cr_assert(strstr(svg, ">half</text>") != NULL);
	free(svg);
	hs_recording_free(r);
}

Test(plot_render, rejects_bad_options)
{
	hs_recording *r = small_recording();
	const char *out = hs_test_tmppath("bad.png");
	hs_plot_options o = HS_PLOT_OPTIONS_INIT;
	o.version = 99;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_EINVAL);
	o = (hs_plot_options)HS_PLOT_OPTIONS_INIT;
	cr_assert_eq(hs_plot_render(r, hs_test_tmppath("bad.gif"), &o, NULL), HS_EINVAL);
	cr_assert(strstr(hs_error_last(), ".png, .svg or .pdf") != NULL, "%s", hs_error_last());
	o.width = 100;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_EINVAL);
	o = (hs_plot_options)HS_PLOT_OPTIONS_INIT;
	o.metric = HS_REC_VMS;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_EINVAL);
	o = (hs_plot_options)HS_PLOT_OPTIONS_INIT;
	o.from = 0.5;
	o.to = 0.5;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_EINVAL);
	cr_assert(strstr(hs_error_last(), "--from must come before --to") != NULL, "%s",
	          hs_error_last());
	o.from = 2;
	o.to = NAN;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_ENOTFOUND);
	cr_assert(strstr(hs_error_last(), "covers 0.00 s to 1.00 s") != NULL, "%s", hs_error_last());
	o.from = -1;
	cr_assert_eq(hs_plot_render(r, out, &o, NULL), HS_EINVAL);
	cr_assert_eq(access(out, F_OK), -1, "a failed plot left a file");
	hs_recording_free(r);
}

Test(plot_render, out_of_memory_fails_cleanly_and_leaves_no_file)
{
	hs_recording *r = small_recording();
	static const char *const names[] = { "oom.svg", "oom.png" };
	for (size_t f = 0; f < 2; f++) {
		const char *out = hs_test_tmppath(names[f]);
		int rc = -1;
		uint64_t k;
		for (k = 1; k < 100000 && rc != 0; k++) {
			hs_alloc_fail_after(k);
			rc = hs_plot_render(r, out, NULL, NULL);
			hs_alloc_fail_after(0);
			if (rc != 0) {
				cr_assert_eq(rc, HS_ENOMEM, "%s: allocation %llu: %d %s", names[f],
				             (unsigned long long)k, rc, hs_error_last());
				cr_assert_eq(access(out, F_OK), -1, "%s left behind", names[f]);
			}
		}
		cr_assert_eq(rc, 0);
		cr_assert_gt(k, 5, "the renderer allocates nothing through hs_*?");
	}
	hs_recording_free(r);
}
