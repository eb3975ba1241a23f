/*
 * tests/record/make_recording.c: deterministic recordings with known
 * answers, for the golden tests and the shipped fixtures
 * (fixtures/recordings/).
 *
 *   make_recording tree OUT       a 10 s tree, the answers below
 *   make_recording abrupt OUT     the same tree, the recorder "killed" at
 *                                 6.5 s (no end record, no index)
 *   make_recording long OUT S N   N processes sampled every 10 ms for S
 *                                 seconds with realistic noise: the size
 *                                 projection (prints bytes per sample)
 *
 * The tree (t = 0 is Unix time 1700000000, i.e. 2023-11-14 22:13:20 UTC):
 *   pid 100 "python3 app.py" (root, Python, agent): RSS 20 MiB, grows
 *     linearly to 120 MiB from 1 s to 3 s, holds until 6 s, drops to
 *     30 MiB at 6 s, holds until 10 s, exits 0 at 10 s. Shared (file)
 *     resident 8 MiB; PSS = RSS - 6 MiB; USS = RSS - 8 MiB.
 *   pid 101 "python3 app.py" (fork child at 0.5 s): 60 MiB from 0.5 s
 *     until its exit(3) at 5 s; 40 MiB of it shared copy-on-write with the
 *     parent, so PSS = 40 MiB.
 *   pid 102 "/bin/worker --big" (exec'd child from 2 s): grows 10 -> 210
 *     MiB from 2 s to 4 s, killed by SIGKILL at 4 s, OOM (cgroup and
 *     kernel log).
 * Markers at 1, 3 and 6 s; a snapshot at 3.5 s; top types every second.
 * Answers: root peak RSS 120 MiB at 3..6 s; tree PSS peak at 4 s (just
 * before 102 dies): 114 + 40 + 210 - 6 = 358 MiB; phases of the tree.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/recording.h"

#define MIB 1024 /* in KiB, the file's unit */

static hs_rec_writer *w;

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "make_recording: %s: %s\n", what, hs_error_last());
		exit(2);
	}
}

/* piecewise linear root RSS in KiB */
static int64_t root_rss(double t)
{
	if (t < 1)
		return 20 * MIB;
	if (t < 3)
		return (int64_t)((20 + 50 * (t - 1)) * MIB);
	if (t < 6)
		return 120 * MIB;
	return 30 * MIB;
}

static int64_t worker_rss(double t) { return (int64_t)((10 + 100 * (t - 2)) * MIB); }

static void mem(size_t proc, int64_t t_us, int64_t rss, int64_t shared)
{
	int64_t v[HS_REC_MEM_COLUMNS] = { t_us, rss, rss + 200 * MIB, shared };
	check(hs_rec_writer_sample(w, proc, HS_REC_SERIES_MEM, v, HS_REC_MEM_COLUMNS), "sample");
}

static void status(size_t proc, int64_t t_us, int64_t rss, int64_t shared, int64_t cpu_ms)
{
	int64_t v[HS_REC_STATUS_COLUMNS] = { t_us, rss - shared, shared, 0, 0, 2, cpu_ms, cpu_ms / 4 };
	check(hs_rec_writer_sample(w, proc, HS_REC_SERIES_STATUS, v, HS_REC_STATUS_COLUMNS), "status");
}

static void smaps(size_t proc, int64_t t_us, int64_t pss, int64_t uss, int64_t pss_file)
{
	int64_t v[HS_REC_SMAPS_COLUMNS] = { t_us, pss, uss, pss - pss_file, pss_file, 0, 0, 0, 150 };
	check(hs_rec_writer_sample(w, proc, HS_REC_SERIES_SMAPS, v, HS_REC_SMAPS_COLUMNS), "smaps");
}

static int tree(const char *out, double stop_at)
{
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	o.interval_us = 10000;
	o.flags = HS_REC_FLAG_CHILDREN | HS_REC_FLAG_AGENT;
	const char *meta = "{\"format\":\"heapsnap-recording\",\"heapsnap\":\"0.1.0\","
	                   "\"command\":[\"python3\",\"app.py\"],\"time\":1700000000,"
	                   "\"time_iso\":\"2023-11-14T22:13:20Z\",\"recorder_pid\":99,"
	                   "\"sampling\":{\"interval\":0.01,\"status_interval\":0.1,"
	                   "\"smaps_budget\":0.003,\"children\":true,\"discovery\":\"proc-connector\"},"
	                   "\"python\":{\"figures\":\"agent\",\"heap_every\":1,\"types\":20}}";
	check(hs_rec_writer_open(&w, out, meta, &o), "open");
	const char *app[] = { "python3", "app.py" };
	const char *worker[] = { "/bin/worker", "--big" };
	size_t root, child = 0, wk = 0;
	hs_rec_proc_start ps = { 100, 99, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH |
	                         HS_REC_PROC_PYTHON, "/usr/bin/python3.11", 2, app };
	check(hs_rec_writer_process(w, &root, &ps), "process");
	int have_child = 0, have_worker = 0, child_done = 0, worker_done = 0;
	int64_t last_flush = 0;
	for (int tick = 0; tick <= 1000; tick++) {
		int64_t t_us = (int64_t)tick * 10000;
		double t = (double)tick / 100.0;
		if (t > stop_at)
			break;
		if (tick == 5) {
			check(hs_rec_writer_proc_flags(w, root, 50000, HS_REC_PROC_AGENT), "flags");
		}
		if (tick == 50) {
			hs_rec_proc_start c = { 101, 100, (ptrdiff_t)root, t_us, HS_REC_PROC_FROM_BIRTH |
			                        HS_REC_PROC_PYTHON, "/usr/bin/python3.11", 2, app };
			check(hs_rec_writer_process(w, &child, &c), "child");
			have_child = 1;
		}
		if (tick == 150) {
			/* forked as a copy of the root, exec'd into the worker at 2 s */
			hs_rec_proc_start c = { 102, 100, (ptrdiff_t)root, t_us, HS_REC_PROC_FROM_BIRTH,
			                        "/usr/bin/python3.11", 2, app };
			check(hs_rec_writer_process(w, &wk, &c), "worker");
			have_worker = 1;
		}
		if (tick == 200)
			check(hs_rec_writer_exec(w, wk, t_us, "/bin/worker", 2, worker), "exec");
		/* the root */
		int64_t rss = root_rss(t);
		mem(root, t_us, rss, 8 * MIB);
		if (tick % 10 == 0)
			status(root, t_us + 5, rss, 8 * MIB, tick * 3);
		if (tick % 50 == 0)
			smaps(root, t_us + 10, rss - 6 * MIB, rss - 8 * MIB, 2 * MIB);
		if (tick % 100 == 0) {
			int64_t py[HS_REC_PY_COLUMNS] = { t_us + 20, 50000 + tick * 10, 4000000, 20, 24, 40000,
			                                  tick, tick / 10, tick / 100, tick * 5, 0, tick * 20,
			                                  tick * 4, tick };
			check(hs_rec_writer_sample(w, root, HS_REC_SERIES_PY, py, HS_REC_PY_COLUMNS), "py");
			hs_rec_type_row rows[3] = { { "bytes", 10 + tick / 10, rss * 1024 - 9 * 1048576 },
			                            { "dict", 3000, 600000 }, { "app.models.User", tick, tick * 56 } };
			check(hs_rec_writer_types(w, root, t_us + 30, 60000, rss * 1024 - 8 * 1048576, 1200,
			                          rows, 3), "types");
			int64_t gc[HS_REC_GC_COLUMNS] = { t_us + 40, tick % 300 == 0 ? 2 : 0, 150, 12, 0 };
			check(hs_rec_writer_sample(w, root, HS_REC_SERIES_GC, gc, HS_REC_GC_COLUMNS), "gc");
		}
		if (tick == 100)
			check(hs_rec_writer_mark(w, root, t_us + 1, "load"), "mark");
		if (tick == 300)
			check(hs_rec_writer_mark(w, root, t_us + 1, "join"), "mark");
		if (tick == 600)
			check(hs_rec_writer_mark(w, root, t_us + 1, "write"), "mark");
		if (tick == 350)
			check(hs_rec_writer_snapshot(w, root, t_us, HS_REC_SNAP_GROWTH, "app.100.1.hsnap",
			                             123456, 98765432, 45000, NULL), "snapshot");
		/* the fork child */
		if (have_child && !child_done) {
			if (tick == 500) {
				hs_rec_exit e = { HS_REC_EXITED, 3, 0, HS_REC_EXIT_FROM_CONNECTOR };
				check(hs_rec_writer_exit(w, child, t_us, &e), "exit");
				child_done = 1;
			} else {
				mem(child, t_us + 100, 60 * MIB, 8 * MIB);
				if (tick % 10 == 0)
					status(child, t_us + 105, 60 * MIB, 8 * MIB, tick);
				if (tick % 50 == 0)
					smaps(child, t_us + 110, 40 * MIB, 20 * MIB, 2 * MIB);
			}
		}
		/* the worker */
		if (have_worker && !worker_done) {
			if (tick == 400) {
				hs_rec_exit e = { HS_REC_SIGNALED, 0, 9, HS_REC_EXIT_FROM_CONNECTOR |
				                  HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_OOM_KERNEL };
				check(hs_rec_writer_exit(w, wk, t_us, &e), "exit");
				worker_done = 1;
			} else {
				int64_t r = tick < 200 ? 20 * MIB : worker_rss(t);
				mem(wk, t_us + 200, r, 2 * MIB);
				if (tick % 10 == 0)
					status(wk, t_us + 205, r, 2 * MIB, tick * 2);
				if (tick % 50 == 0)
					smaps(wk, t_us + 210, r - 1 * MIB, r - 2 * MIB, 1 * MIB);
			}
		}
		if (tick == 1000) {
			hs_rec_exit e = { HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT };
			check(hs_rec_writer_exit(w, root, t_us, &e), "exit");
		}
		if (t_us - last_flush >= 1000000) {
			check(hs_rec_writer_sampler_cpu(w, 4000), "cpu");
			check(hs_rec_writer_flush(w, t_us), "flush");
			last_flush = t_us;
		}
	}
	if (stop_at >= 10) {
		check(hs_rec_writer_note(w, -1, 10000000, 0, "fixture recording"), "note");
		hs_rec_write_stats st;
		check(hs_rec_writer_close(w, 10000000, HS_REC_STOP_EXITED, 0,
		                          "{\"stop\":\"exited\",\"duration\":10}", &st), "close");
	} else {
		/* killed: flushed up to the last second, nothing more */
	}
	hs_rec_writer_free(w);
	return 0;
}

/* N processes for S seconds at 10 ms with realistic RSS behaviour: slow
 * growth with allocator noise, GC sawtooth; prints the size per sample. */
static int projection(const char *out, int seconds, int n)
{
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	o.flags = HS_REC_FLAG_CHILDREN;
	check(hs_rec_writer_open(&w, out, NULL, &o), "open");
	size_t idx[64];
	const char *argv[] = { "python3", "-c", "worker" };
	for (int p = 0; p < n && p < 64; p++) {
		hs_rec_proc_start ps = { 1000 + p, p ? 1000 : 1, p ? 0 : -1, 0,
		                         (p ? 0u : HS_REC_PROC_ROOT) | HS_REC_PROC_FROM_BIRTH, "/usr/bin/python3",
		                         3, argv };
		check(hs_rec_writer_process(w, &idx[p], &ps), "process");
	}
	unsigned seed = 12345;
	int64_t rss[64];
	for (int p = 0; p < n; p++)
		rss[p] = 30 * MIB + p * MIB;
	int64_t ticks = (int64_t)seconds * 100;
	for (int64_t k = 0; k < ticks; k++) {
		for (int p = 0; p < n; p++) {
			seed = seed * 1103515245u + 12345u;
			/* timer jitter of a few tens of microseconds */
			int64_t t_us = k * 10000 + (int64_t)((seed >> 8) % 60) + p * 3;
			/* 4 KiB pages come and go; now and then a bigger step */
			int step = (int)((seed >> 16) % 16);
			if (step == 0)
				rss[p] += 4;
			else if (step == 1 && rss[p] > 20 * MIB)
				rss[p] -= 4;
			else if (step == 2 && ((seed >> 20) % 64) == 0)
				rss[p] += 256;
			int64_t v[HS_REC_MEM_COLUMNS] = { t_us, rss[p], rss[p] + 300 * MIB, 9000 };
			check(hs_rec_writer_sample(w, idx[p], HS_REC_SERIES_MEM, v, HS_REC_MEM_COLUMNS), "s");
			if (k % 10 == 0) {
				int64_t s[HS_REC_STATUS_COLUMNS] = { t_us + 4, rss[p] - 9000, 9000, 0, 0, 3,
				                                     k / 3, k / 20 };
				check(hs_rec_writer_sample(w, idx[p], HS_REC_SERIES_STATUS, s,
				                           HS_REC_STATUS_COLUMNS), "s");
			}
			if (k % 30 == 0) {
				int64_t s[HS_REC_SMAPS_COLUMNS] = { t_us + 8, rss[p] - 5000, rss[p] - 9000,
				                                    rss[p] - 9000, 4000, 0, 0, 0,
				                                    300 + (int64_t)(seed % 50) };
				check(hs_rec_writer_sample(w, idx[p], HS_REC_SERIES_SMAPS, s,
				                           HS_REC_SMAPS_COLUMNS), "s");
			}
		}
		if (k % 100 == 99) {
			check(hs_rec_writer_sampler_cpu(w, 3000), "cpu");
			check(hs_rec_writer_flush(w, k * 10000 + 10000), "flush");
		}
	}
	hs_rec_write_stats st;
	check(hs_rec_writer_close(w, ticks * 10000, HS_REC_STOP_EXITED, 0, NULL, &st), "close");
	hs_rec_writer_free(w);
	uint64_t mem_samples = (uint64_t)ticks * (uint64_t)n;
	printf("%d processes x %d s at 10 ms: %llu bytes, %llu samples (%llu RSS samples), "
	       "%.3f bytes/sample, %.3f bytes per RSS sample (all series included)\n", n, seconds,
	       (unsigned long long)st.file_bytes, (unsigned long long)st.samples,
	       (unsigned long long)mem_samples, (double)st.file_bytes / (double)st.samples,
	       (double)st.file_bytes / (double)mem_samples);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "tree"))
		return tree(argv[2], 10.0);
	if (argc >= 3 && !strcmp(argv[1], "abrupt"))
		return tree(argv[2], 6.5);
	if (argc >= 5 && !strcmp(argv[1], "long"))
		return projection(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: make_recording tree|abrupt OUT | long OUT SECONDS PROCESSES\n");
	return 129;
}
