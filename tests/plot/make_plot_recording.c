/*
 * tests/plot/make_plot_recording.c: recordings with known answers for the
 * plot tests (tests/plot/run_plot.py), written with the recording writer.
 * Every sample sits on an exact 10 ms tick, so the answers below are exact.
 *
 *   make_plot_recording tree OUT    10 s, 5 processes (below)
 *   make_plot_recording many OUT    15 processes, RSS only
 *   make_plot_recording long OUT    one process for 2 h, a sample a second
 *   make_plot_recording empty OUT   a process and no sample
 *
 * tree (t = 0 is 2023-11-14 22:13:20 UTC), RSS in KiB at tick k (t = k/100 s):
 *   pid 200 python3 …/run_nightly_job.py --date 2024-01-01 (root, Python):
 *       30 MiB; 1..3 s grows by 512 KiB a tick to 130 MiB; 7 s drops to
 *       40 MiB; exits 0 at 10 s. PSS = RSS - 8 MiB (smaps every 0.5 s).
 *   pid 201 its fork child, 0.5 s to 5 s: 50 MiB, PSS 30 MiB, exit 0.
 *   pid 202 multiprocessing spawn child, 1 s to 8 s: 25 MiB + 150 KiB a
 *       tick from 2 s to 6 s (85.6 MiB), exit 0. PSS = RSS - 3 MiB.
 *   pid 203 /opt/tools/bin/worker --big, 3 s to 5 s: 10 MiB + 1200 KiB a
 *       tick; SIGKILL by the OOM killer at 5 s (last sample 4.99 s:
 *       249040 KiB). PSS = RSS - 1 MiB.
 *   pid 204 sh -c true: one sample at 6 s (3 MiB), no PSS; exit 0 at 6.01 s.
 * RSS answers: the highest line is 203's, 249040 KiB at 4.99 s; the tree's
 * peak at one instant is at 4.99 s: 133120 + 51200 + 70450 + 249040 =
 * 503810 KiB.
 * Markers: load 1 s, join 3 s, `write <out> & "done"` 7 s, tick 7.05 s.
 * Snapshots: run.200.1.hsnap at 4 s (growth), a failed one at 9 s.
 * Types of 200 every second: 8 types, ranked by peak bytes: bytes,
 * pandas.core.frame.DataFrame, numpy.ndarray, dict, list, str, tuple, int.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/recording.h"

#define MIB 1024 /* KiB */

static hs_rec_writer *w;

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "make_plot_recording: %s: %s\n", what, hs_error_last());
		exit(2);
	}
}

static void open_rec(const char *out, unsigned flags)
{
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	o.interval_us = 10000;
	o.flags = flags;
	check(hs_rec_writer_open(&w, out, "{\"format\":\"heapsnap-recording\",\"heapsnap\":\"0.1.0\","
	                         "\"time\":1700000000}", &o), "open");
}

static size_t proc(int pid, int ppid, ptrdiff_t parent, int64_t t_us, unsigned flags,
                   const char *exe, size_t argc, const char *const *argv)
{
	size_t idx;
	hs_rec_proc_start ps = { pid, ppid, parent, t_us, flags, exe, argc, argv };
	check(hs_rec_writer_process(w, &idx, &ps), "process");
	return idx;
}

static void mem(size_t p, int64_t t_us, int64_t rss)
{
	int64_t v[HS_REC_MEM_COLUMNS] = { t_us, rss, rss + 300 * MIB, 8 * MIB };
	check(hs_rec_writer_sample(w, p, HS_REC_SERIES_MEM, v, HS_REC_MEM_COLUMNS), "mem");
}

static void smaps(size_t p, int64_t t_us, int64_t pss)
{
	int64_t v[HS_REC_SMAPS_COLUMNS] = { t_us, pss, pss - 2 * MIB, pss - 2 * MIB, 2 * MIB, 0, 0, 0,
	                                    200 };
	check(hs_rec_writer_sample(w, p, HS_REC_SERIES_SMAPS, v, HS_REC_SMAPS_COLUMNS), "smaps");
}

static void end(size_t p, int64_t t_us, hs_rec_exit_how how, int code, int sig, unsigned flags)
{
	hs_rec_exit e = { how, code, sig, flags };
	check(hs_rec_writer_exit(w, p, t_us, &e), "exit");
}

static void close_rec(int64_t t_us)
{
	hs_rec_write_stats st;
	check(hs_rec_writer_close(w, t_us, HS_REC_STOP_EXITED, 0, NULL, &st), "close");
	hs_rec_writer_free(w);
	w = NULL;
}

static int64_t root_rss(int k)
{
	if (k < 100)
		return 30 * MIB;
	if (k < 300)
		return 30 * MIB + (int64_t)(k - 100) * 512;
	if (k < 700)
		return 130 * MIB;
	return 40 * MIB;
}

static int64_t spawn_rss(int k)
{
	if (k < 200)
		return 25 * MIB;
	if (k < 600)
		return 25 * MIB + (int64_t)(k - 200) * 150;
	return 25 * MIB + 400 * 150;
}

static int tree(const char *out)
{
	open_rec(out, HS_REC_FLAG_CHILDREN | HS_REC_FLAG_AGENT);
	const char *app[] = { "/usr/bin/python3", "/srv/etl/pipeline/jobs/run_nightly_job.py", "--date",
	                      "2024-01-01" };
	const char *spawn[] = { "/usr/bin/python3", "-c", "from multiprocessing.spawn import "
	                        "spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
	                        "--multiprocessing-fork" };
	const char *worker[] = { "/opt/tools/bin/worker", "--big" };
	const char *sh[] = { "sh", "-c", "true" };
	size_t root = proc(200, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH |
	                   HS_REC_PROC_PYTHON | HS_REC_PROC_AGENT, "/usr/bin/python3.11", 4, app);
	size_t fork = 0, sp = 0, wk = 0, shp = 0;
	static const char *const type_names[] = { "bytes", "pandas.core.frame.DataFrame",
	                                          "numpy.ndarray", "dict", "list", "str", "tuple",
	                                          "int" };
	static const int64_t type_base[] = { 90000, 40000, 30000, 9000, 7000, 5000, 3000, 1000 };
	int64_t last_flush = 0;
	for (int k = 0; k <= 1000; k++) {
		int64_t t = (int64_t)k * 10000;
		if (k == 50)
			fork = proc(201, 200, (ptrdiff_t)root, t, HS_REC_PROC_FROM_BIRTH | HS_REC_PROC_PYTHON,
			            "/usr/bin/python3.11", 4, app);
		if (k == 100)
			sp = proc(202, 200, (ptrdiff_t)root, t, HS_REC_PROC_FROM_BIRTH | HS_REC_PROC_PYTHON,
			          "/usr/bin/python3.11", 4, spawn);
		if (k == 300)
			wk = proc(203, 200, (ptrdiff_t)root, t, HS_REC_PROC_FROM_BIRTH,
			          "/opt/tools/bin/worker", 2, worker);
		if (k == 600)
			shp = proc(204, 200, (ptrdiff_t)root, t, HS_REC_PROC_FROM_BIRTH, "/bin/sh", 3, sh);
		/* root */
		mem(root, t, root_rss(k));
		if (k % 50 == 0)
			smaps(root, t, root_rss(k) - 8 * MIB);
		if (k % 100 == 0) {
			hs_rec_type_row rows[8];
			int64_t f = root_rss(k) / MIB; /* 30..130 */
			for (int i = 0; i < 8; i++)
				rows[i] = (hs_rec_type_row){ type_names[i], 100 + i, type_base[i] * f };
			check(hs_rec_writer_types(w, root, t + 30, 200000, root_rss(k) * 1024, 900, rows, 8),
			      "types");
		}
		if (k == 100)
			check(hs_rec_writer_mark(w, root, t, "load"), "mark");
		if (k == 300)
			check(hs_rec_writer_mark(w, root, t, "join"), "mark");
		if (k == 700)
			check(hs_rec_writer_mark(w, root, t, "write <out> & \"done\""), "mark");
		if (k == 705)
			check(hs_rec_writer_mark(w, root, t, "tick"), "mark");
		if (k == 400)
			check(hs_rec_writer_snapshot(w, root, t, HS_REC_SNAP_GROWTH, "run.200.1.hsnap", 654321,
			                             120 * 1048576LL, 80000, NULL), "snapshot");
		if (k == 900)
			check(hs_rec_writer_snapshot(w, root, t, HS_REC_SNAP_SCHEDULE, NULL, -1, -1, 0,
			                             "target busy"), "snapshot");
		/* fork child */
		if (k >= 50 && k < 500) {
			mem(fork, t, 50 * MIB);
			if (k % 50 == 0)
				smaps(fork, t, 30 * MIB);
		} else if (k == 500) {
			end(fork, t, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
		}
		/* spawn child */
		if (k >= 100 && k < 800) {
			mem(sp, t, spawn_rss(k));
			if (k % 50 == 0)
				smaps(sp, t, spawn_rss(k) - 3 * MIB);
		} else if (k == 800) {
			end(sp, t, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
		}
		/* worker */
		if (k >= 300 && k < 500) {
			int64_t rss = 10 * MIB + (int64_t)(k - 300) * 1200;
			mem(wk, t, rss);
			if (k % 50 == 0)
				smaps(wk, t, rss - 1 * MIB);
		} else if (k == 500) {
			end(wk, t, HS_REC_SIGNALED, 0, 9, HS_REC_EXIT_OOM_CGROUP | HS_REC_EXIT_FROM_CONNECTOR);
		}
		/* short-lived shell: one sample, no smaps */
		if (k == 600)
			mem(shp, t, 3 * MIB);
		if (k == 601)
			end(shp, t, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
		if (k == 1000)
			end(root, t, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
		if (t - last_flush >= 1000000) {
			check(hs_rec_writer_flush(w, t), "flush");
			last_flush = t;
		}
	}
	close_rec(10000000);
	return 0;
}

/* 15 processes, RSS only: a root and 14 fork children, child i peaking at
 * 10 + 5 i MiB (i = 1..14) at 1 s; the root holds 12 MiB. */
static int many(const char *out)
{
	open_rec(out, HS_REC_FLAG_CHILDREN);
	const char *argv[] = { "python3", "pool.py" };
	size_t idx[15];
	idx[0] = proc(300, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH | HS_REC_PROC_PYTHON,
	              "/usr/bin/python3", 2, argv);
	for (int i = 1; i < 15; i++)
		idx[i] = proc(300 + i, 300, (ptrdiff_t)idx[0], 10000, HS_REC_PROC_FROM_BIRTH |
		              HS_REC_PROC_PYTHON, "/usr/bin/python3", 2, argv);
	for (int k = 0; k <= 200; k++) {
		int64_t t = (int64_t)k * 10000;
		mem(idx[0], t, 12 * MIB);
		for (int i = 1; i < 15 && k >= 1; i++) {
			if (k == 200) {
				end(idx[i], t, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
				continue;
			}
			int64_t peak = (10 + 5 * i) * MIB;
			int64_t v = k <= 100 ? 5 * MIB + (peak - 5 * MIB) * k / 100 : peak - (peak - 5 * MIB) *
			            (k - 100) / 100;
			mem(idx[i], t, v);
		}
		if (k % 100 == 0)
			check(hs_rec_writer_flush(w, t), "flush");
	}
	end(idx[0], 2000000, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
	close_rec(2000000);
	return 0;
}

/* one process for two hours, a sample a second, growing 1 MiB a minute */
static int long_run(const char *out)
{
	open_rec(out, 0);
	const char *argv[] = { "gunicorn", "app:app" };
	size_t p = proc(400, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH, "/usr/bin/gunicorn",
	                2, argv);
	for (int s = 0; s <= 7200; s++) {
		mem(p, (int64_t)s * 1000000, 100 * MIB + (int64_t)s * MIB / 60);
		if (s % 60 == 0)
			check(hs_rec_writer_flush(w, (int64_t)s * 1000000), "flush");
	}
	end(p, 7200000000LL, HS_REC_EXITED, 0, 0, HS_REC_EXIT_FROM_WAIT);
	close_rec(7200000000LL);
	return 0;
}

static int empty(const char *out)
{
	open_rec(out, 0);
	const char *argv[] = { "true" };
	proc(500, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH, "/bin/true", 1, argv);
	close_rec(1000);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "tree"))
		return tree(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "many"))
		return many(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "long"))
		return long_run(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "empty"))
		return empty(argv[2]);
	fprintf(stderr, "usage: make_plot_recording tree|many|long|empty OUT\n");
	return 129;
}
