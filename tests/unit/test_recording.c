/* Unit tests: recordings (formats/recording-v1.md): the writer, the reader
 * and its model, the timeline analysis (peaks at one instant, phases). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/recording.h"
#include "heapsnap/timeline.h"
#include "heapsnap/format.h"
#include "util/alloc.h"
#include "testutil.h"

#define MIB 1024 /* KiB */

static hs_rec_writer *open_writer(const char *path)
{
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	o.interval_us = 10000;
	o.flags = HS_REC_FLAG_CHILDREN;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{\"format\":\"heapsnap-recording\"}", &o), 0, "%s",
	             hs_error_last());
	return w;
}

static void mem(hs_rec_writer *w, size_t p, int64_t t, int64_t rss_kib, int64_t shared)
{
	int64_t v[HS_REC_MEM_COLUMNS] = { t, rss_kib, rss_kib * 2, shared };
	cr_assert_eq(hs_rec_writer_sample(w, p, HS_REC_SERIES_MEM, v, HS_REC_MEM_COLUMNS), 0);
}

static void smaps(hs_rec_writer *w, size_t p, int64_t t, int64_t pss, int64_t uss, int64_t pfile)
{
	int64_t v[HS_REC_SMAPS_COLUMNS] = { t, pss, uss, pss - pfile, pfile, 0, 0, 0, 100 };
	cr_assert_eq(hs_rec_writer_sample(w, p, HS_REC_SERIES_SMAPS, v, HS_REC_SMAPS_COLUMNS), 0);
}

/* Parent frees 100 MiB at 1 s; its child grows 80 MiB from 1 s: the sum of
 * the peaks (200) is memory that never existed at once (at most 130). */
static const char *parent_then_child(int close)
{
	const char *path = hs_test_tmppath(close ? "pc.hsrec" : "pc-abrupt.hsrec");
	hs_rec_writer *w = open_writer(path);
	const char *argv[] = { "python3", "job.py" };
	size_t a, b;
	hs_rec_proc_start pa = { 10, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH, "/usr/bin/python3",
	                         2, argv };
	cr_assert_eq(hs_rec_writer_process(w, &a, &pa), 0);
	hs_rec_proc_start pb = { 11, 10, (ptrdiff_t)a, 0, HS_REC_PROC_FROM_BIRTH, "/usr/bin/python3", 2, argv };
	cr_assert_eq(hs_rec_writer_process(w, &b, &pb), 0);
	for (int k = 0; k <= 200; k++) {
		int64_t t = k * 10000;
		mem(w, a, t, k < 100 ? 150 * MIB : 50 * MIB, 0);
		mem(w, b, t + 7, k < 100 ? 20 * MIB : 100 * MIB, 0);
		if (k % 50 == 0) {
			smaps(w, a, t + 1, k < 100 ? 150 * MIB : 50 * MIB, 0, 0);
			smaps(w, b, t + 8, k < 100 ? 20 * MIB : 100 * MIB, 0, 0);
		}
		if (k % 100 == 99)
			cr_assert_eq(hs_rec_writer_flush(w, t + 10000), 0);
	}
	if (close) {
		hs_rec_exit e = { HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT };
		cr_assert_eq(hs_rec_writer_exit(w, b, 2000000, &e), 0);
		cr_assert_eq(hs_rec_writer_exit(w, a, 2000000, &e), 0);
		hs_rec_write_stats st;
		cr_assert_eq(hs_rec_writer_close(w, 2000000, HS_REC_STOP_EXITED, 0, "{\"stop\":\"exited\"}",
		                                 &st), 0);
		cr_assert_eq(st.samples, 402 + 10);
	}
	hs_rec_writer_free(w);
	return path;
}

Test(recording, roundtrip_exact_figures)
{
	const char *path = parent_then_child(1);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0, "%s", hs_error_last());
	const hs_rec_info *i = hs_recording_info(r);
	cr_assert(i->complete);
	cr_assert_null(i->warning);
	cr_assert_eq(i->stop, HS_REC_STOP_EXITED);
	cr_assert_float_eq(i->duration, 2.0, 1e-9);
	cr_assert_float_eq(i->wall_start, 1700000000.0, 1e-6);
	cr_assert_eq(i->samples, 412);
	cr_assert_str_eq(i->meta_end, "{\"stop\":\"exited\"}");
	cr_assert_eq(hs_recording_process_count(r), 2);
	const hs_rec_process *p = hs_recording_process(r, 1);
	cr_assert_eq(p->pid, 11);
	cr_assert_eq(p->parent, 0);
	cr_assert_str_eq(p->command, "python3 job.py");
	cr_assert_eq(p->exit.how, HS_REC_EXITED);
	hs_rec_series s;
	cr_assert_eq(hs_rec_process_series(&s, p, HS_REC_RSS), 0);
	cr_assert_eq(s.count, 201);
	cr_assert_eq(s.v[0], 20LL * 1048576);
	cr_assert_eq(s.v[150], 100LL * 1048576);
	cr_assert_float_eq(s.t[150], 1.500007, 1e-9);
	int64_t v;
	cr_assert_eq(hs_rec_process_value_at(&v, p, HS_REC_VMS, 0.5), 0);
	cr_assert_eq(v, 40LL * 1048576);
	cr_assert_float_eq(hs_rec_process_rate(p, HS_REC_SERIES_MEM), 100.0, 1e-6);
	cr_assert_eq(hs_recording_root(r)->pid, 10);
	hs_recording_free(r);
}

Test(recording, combined_peak_is_at_one_instant)
{
	const char *path = parent_then_child(1);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0);
	hs_timeline *t;
	cr_assert_eq(hs_timeline_build(&t, r, NULL), 0);
	cr_assert_eq(t->main_metric, HS_REC_PSS_EST);
	cr_assert_eq(t->peak_pss.bytes, 170LL * 1048576, "%lld", (long long)t->peak_pss.bytes);
	cr_assert_eq(t->sum_of_peaks_rss, 250LL * 1048576);
	cr_assert_eq(t->peak_breakdown[0], 150LL * 1048576);
	cr_assert_eq(t->peak_breakdown[1], 20LL * 1048576);
	cr_assert_eq(t->processes[0].rss.bytes, 150LL * 1048576);
	cr_assert_float_eq(t->processes[1].rss.t, 1.000007, 1e-9);
	cr_assert_eq(t->processes[0].exit_rss, 50LL * 1048576);
	hs_timeline_free(t);
	hs_recording_free(r);
}

Test(recording, abrupt_end_reads_with_a_warning)
{
	const char *path = parent_then_child(0);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0, "%s", hs_error_last());
	const hs_rec_info *i = hs_recording_info(r);
	cr_assert_not(i->complete);
	cr_assert_str_eq(i->warning, "recording ended abruptly at 2.0 s");
	cr_assert_eq(hs_recording_process(r, 0)->exit.how, HS_REC_RUNNING);
	cr_assert_float_eq(hs_recording_process(r, 0)->end, 2.0, 1e-9);
	hs_recording_free(r);
}

Test(recording, cut_inside_a_chunk_drops_it)
{
	const char *path = parent_then_child(1);
	size_t len;
	uint8_t *data = hs_test_read_file(path, &len);
	/* the second chunk ends where the third starts: find the chunks by walking */
	size_t off = 32, chunk_starts[8], n = 0;
	while (off + 24 <= len && n < 8) {
		uint32_t kind = data[off] | data[off + 1] << 8;
		uint32_t stored = data[off + 12] | data[off + 13] << 8 | data[off + 14] << 16 |
		                  (uint32_t)data[off + 15] << 24;
		if (kind == 16)
			chunk_starts[n++] = off;
		off += 24 + stored;
	}
	cr_assert_geq(n, 3);
	hs_recording *r;
	cr_assert_eq(hs_recording_open_memory(&r, data, chunk_starts[2] + 30, "cut.hsrec", NULL), 0,
	             "%s", hs_error_last());
	const hs_rec_info *i = hs_recording_info(r);
	cr_assert_float_eq(i->duration, 2.0, 1e-9);
	cr_assert(strstr(i->warning, "an incomplete chunk at offset") != NULL, "%s", i->warning);
	hs_recording_free(r);
	/* strict readers refuse it */
	hs_recording_options o = HS_RECORDING_OPTIONS_INIT;
	o.strict = 1;
	cr_assert_eq(hs_recording_open_memory(&r, data, chunk_starts[2] + 30, "cut.hsrec", &o), HS_EFORMAT);
	/* damage before the end is an error */
	data[chunk_starts[1] + 40] ^= 1;
	cr_assert_eq(hs_recording_open_memory(&r, data, len, "bad.hsrec", NULL), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "damaged section at offset") != NULL, "%s", hs_error_last());
	free(data);
}

Test(recording, snapshots_and_recordings_refuse_each_other)
{
	const char *path = parent_then_child(1);
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	cr_assert_eq(hs_format_read(path, &v, NULL), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "this is a heapsnap recording, not a snapshot") != NULL);
	cr_assert_eq(hs_file_kind_of(path), HS_FILE_RECORDING);
	char snap[512];
	snprintf(snap, sizeof(snap), "%s/snapshots/synthetic-small.hsnap", HS_TEST_FIXTURES);
	cr_assert_eq(hs_file_kind_of(snap), HS_FILE_SNAPSHOT);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, snap, NULL), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "this is a heapsnap snapshot, not a recording") != NULL);
}

Test(recording, pss_estimate_follows_anonymous_growth)
{
	const char *path = hs_test_tmppath("est.hsrec");
	hs_rec_writer *w = open_writer(path);
	size_t a;
	hs_rec_proc_start pa = { 10, 1, -1, 0, HS_REC_PROC_ROOT, "", 0, NULL };
	cr_assert_eq(hs_rec_writer_process(w, &a, &pa), 0);
	/* 8 MiB shared with another process (PSS_file 4 MiB), anon grows */
	mem(w, a, 0, 18 * MIB, 8 * MIB);
	smaps(w, a, 1, 14 * MIB, 10 * MIB, 4 * MIB);
	mem(w, a, 10000, 58 * MIB, 8 * MIB);
	mem(w, a, 20000, 38 * MIB, 16 * MIB);
	cr_assert_eq(hs_rec_writer_close(w, 30000, HS_REC_STOP_EXITED, -1, NULL, NULL), 0);
	hs_rec_writer_free(w);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0);
	hs_rec_series s, u;
	hs_rec_process_series(&s, hs_recording_process(r, 0), HS_REC_PSS_EST);
	hs_rec_process_series(&u, hs_recording_process(r, 0), HS_REC_USS_EST);
	cr_assert_eq(s.count, 3);
	cr_assert_eq(s.v[0], 14LL * 1048576);
	cr_assert_eq(s.v[1], 54LL * 1048576);  /* + 40 MiB of private anonymous pages */
	cr_assert_eq(s.v[2], 30LL * 1048576);  /* anon 22 (+12), shared 16 at half: 8 */
	cr_assert_eq(u.v[1], 50LL * 1048576);
	hs_recording_free(r);
}

static void phases_of(const int64_t *mib, size_t n, double dt, hs_tl_phase **ph, size_t *count)
{
	double *t = malloc(n * sizeof(double));
	int64_t *v = malloc(n * sizeof(int64_t));
	for (size_t i = 0; i < n; i++) {
		t[i] = (double)i * dt;
		v[i] = mib[i] * 1048576;
	}
	cr_assert_eq(hs_timeline_phases(ph, count, t, v, n, NULL), 0);
	free(t);
	free(v);
}

Test(timeline, phases_of_grow_hold_free)
{
	int64_t mib[600];
	for (int i = 0; i < 600; i++)
		mib[i] = i < 200 ? 10 + i / 2 : i < 400 ? 110 : 20;
	hs_tl_phase *ph;
	size_t n;
	phases_of(mib, 600, 0.01, &ph, &n);
	cr_assert_eq(n, 4, "%zu phases", n);
	cr_assert_eq(ph[0].kind, HS_TL_GROWTH);
	cr_assert_float_eq(ph[0].rate, 50.0 * 1048576, 2.0 * 1048576);
	cr_assert_float_eq(ph[0].end, 2.0, 0.05);
	cr_assert_eq(ph[1].kind, HS_TL_PLATEAU);
	cr_assert_eq(ph[2].kind, HS_TL_DECLINE);
	cr_assert_float_eq(ph[2].start, 4.0, 0.05);
	cr_assert_eq(ph[3].kind, HS_TL_PLATEAU);
	cr_assert_str_eq(hs_tl_phase_name(ph[2].kind), "decline");
	hs_timeline_phases_free(ph);
}

Test(timeline, a_staircase_is_one_growth)
{
	int64_t mib[500];
	for (int i = 0; i < 500; i++)
		mib[i] = 10 + (i / 20) * 4; /* +4 MiB every 0.2 s */
	hs_tl_phase *ph;
	size_t n;
	phases_of(mib, 500, 0.01, &ph, &n);
	cr_assert_eq(n, 1, "%zu phases", n);
	cr_assert_eq(ph[0].kind, HS_TL_GROWTH);
	hs_timeline_phases_free(ph);
}

Test(timeline, noise_is_a_plateau)
{
	int64_t mib[1000];
	unsigned seed = 7;
	for (int i = 0; i < 1000; i++) {
		seed = seed * 1103515245u + 12345u;
		mib[i] = 200 + (int64_t)((seed >> 16) % 3) - 1; /* 200 MiB +- 1 */
	}
	hs_tl_phase *ph;
	size_t n;
	phases_of(mib, 1000, 0.01, &ph, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(ph[0].kind, HS_TL_PLATEAU);
	hs_timeline_phases_free(ph);
}

Test(recording, writer_rejects_bad_calls)
{
	const char *path = hs_test_tmppath("bad.hsrec");
	hs_rec_writer *w = open_writer(path);
	int64_t v[3] = { 0, 1, 2 };
	cr_assert_eq(hs_rec_writer_sample(w, 0, HS_REC_SERIES_MEM, v, 3), HS_EINVAL); /* no process */
	size_t a;
	hs_rec_proc_start pa = { 10, 1, -1, 0, 0, "", 0, NULL };
	cr_assert_eq(hs_rec_writer_process(w, &a, &pa), 0);
	cr_assert_eq(hs_rec_writer_sample(w, a, HS_REC_SERIES_MEM, v, 3), HS_EINVAL); /* 4 columns */
	cr_assert_eq(hs_rec_writer_sample(w, a, (hs_rec_series_kind)9, v, 3), HS_EINVAL);
	hs_rec_proc_start bad = { 11, 10, 5, 0, 0, "", 0, NULL };
	cr_assert_eq(hs_rec_writer_process(w, &a, &bad), HS_EINVAL); /* undeclared parent */
	cr_assert_eq(hs_rec_writer_close(w, 0, HS_REC_STOP_EXITED, -1, NULL, NULL), 0);
	cr_assert_eq(hs_rec_writer_mark(w, 0, 0, "late"), HS_EINVAL);
	hs_rec_writer_free(w);
}

Test(recording, out_of_memory_while_reading_is_clean)
{
	const char *path = parent_then_child(1);
	size_t len;
	uint8_t *data = hs_test_read_file(path, &len);
	int ok = 0;
	for (uint64_t n = 1; n < 400 && !ok; n++) {
		hs_recording *r = NULL;
		hs_alloc_fail_after(n);
		int rc = hs_recording_open_memory(&r, data, len, "oom.hsrec", NULL);
		hs_alloc_fail_after(0);
		if (rc == 0) {
			ok = 1;
			cr_assert_eq(hs_recording_process_count(r), 2);
		} else {
			cr_assert_eq(rc, HS_ENOMEM, "allocation %llu: %d %s", (unsigned long long)n, rc,
			             hs_error_last());
		}
		hs_recording_free(r);
	}
	cr_assert(ok, "never succeeded within 400 allocations");
	free(data);
}
