/*
 * record/recorder.c: `heapsnap record`'s loop.
 *
 * One thread samples at absolute deadlines (t0 + k * interval, so the
 * interval does not drift): statm of every live process of the tree each
 * tick, status and stat every 200 ms, smaps_rollup at a rate that keeps
 * those reads within a CPU budget. Between ticks it sleeps in ppoll on a
 * signalfd (SIGCHLD, SIGINT, SIGTERM, SIGHUP) and the proc connector, so
 * forks, execs and exits are handled as they happen. About once a second
 * the buffered samples become one chunk of the file.
 *
 * The recorder is a child subreaper (PR_SET_CHILD_SUBREAPER): descendants
 * orphaned by their parent are re-parented to it, so it reaps them and
 * records their exit status, and they stay in the tree.
 *
 * Signals, as a user expects them: Ctrl-C in a terminal goes to the whole
 * foreground process group, so the command gets it directly and the
 * recorder keeps recording until the command (and its tree) has exited;
 * SIGINT/SIGTERM/SIGHUP sent to the recorder alone by another process are
 * forwarded to the command. A second one stops the recording at once (the
 * file is closed cleanly; the command goes on unrecorded). With --pid the
 * target is not ours: the first signal stops the recording.
 *
 * Python figures come from the agent (agents.c) on a thread of its own, so
 * a slow answer never delays a tick; it writes through the same writer,
 * under `lock`.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "record/record_internal.h"
#include "record/agents.h"
#include "util/alloc.h"

#ifndef HS_VERSION
#define HS_VERSION "0.0.0"
#endif

#define CHUNK_US 1000000          /* one chunk a second */
#define STATUS_MIN_US 200000      /* status + stat at most every 200 ms */
#define SMAPS_MIN_US 100000       /* smaps_rollup at most every 100 ms per process */
#define SMAPS_MAX_US 30000000     /* ...and at least every 30 s */
#define SMAPS_BUDGET 0.003        /* fraction of one core for smaps_rollup reads */
#define RESCAN_US 1000000         /* /proc safety scan with the connector */
#define LINGER_US 2000000         /* descendants still running after the root exited */

typedef struct rproc {
	int pid, ppid;
	size_t index;        /* in the file */
	hs_procfs fs;
	int fs_open;
	int alive;
	int is_root;
	int python;
	int64_t next_status, next_smaps, smaps_interval;
	int64_t last_rss;    /* KiB */
	int64_t last_cost;   /* us of the last smaps read */
	uint64_t starttime;  /* /proc/PID/stat field 22: with the pid, names the process */
	char **argv;         /* as last read (hs_procfs_cmdline), for children that exit
	                        before their own can be read: a fork starts with its parent's */
	size_t argc;
	char *exe;
} rproc;

static void set_argv(rproc *p, char **argv, size_t argc, const char *exe)
{
	hs_free(p->argv);
	hs_free(p->exe);
	p->argv = argv;
	p->argc = argc;
	p->exe = hs_strdup(exe);
}

/* argv in one allocation, as hs_procfs_cmdline gives it */
static char **copy_argv(char *const *src, size_t argc)
{
	size_t len = 0;
	for (size_t i = 0; i < argc; i++)
		len += strlen(src[i]) + 1;
	char **argv = hs_malloc((argc + 1) * sizeof(char *) + len);
	if (!argv)
		return NULL;
	char *s = (char *)(argv + argc + 1);
	for (size_t i = 0; i < argc; i++) {
		size_t n = strlen(src[i]) + 1;
		memcpy(s, src[i], n);
		argv[i] = s;
		s += n;
	}
	argv[argc] = NULL;
	return argv;
}

static void free_proc(rproc *p)
{
	if (p->fs_open)
		hs_procfs_close(&p->fs);
	hs_free(p->argv);
	hs_free(p->exe);
	hs_free(p);
}

typedef struct recorder {
	const hs_record_options *o;
	hs_rec_writer *w;
	pthread_mutex_t lock; /* the writer, shared with the agent thread */
	rproc **procs;
	size_t n, cap;
	size_t alive;
	int64_t t0_ns;
	int64_t boot_minus_mono_ns;
	hs_connector *cn;
	hs_proc_scan *scan;
	hs_oom_watch *oom;
	hs_agents *agents;
	int self;
	int root_pid;
	int root_status;
	int root_done;
	int64_t root_done_t;
	int sigfd;
	int signals;          /* stop signals received */
	int sigchld;          /* a child changed state: reap */
	int stop;
	hs_rec_stop stop_reason;
	int failed;           /* the writer failed: stop */
	char failure[512];
	int64_t last_chunk;
	int64_t next_rescan;
	int64_t cpu_ns;       /* recorder CPU at the last chunk */
	int64_t cpu_start;
	uint64_t ticks, late;
	const char *discovery;
} recorder;

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t now_us(const recorder *r) { return (mono_ns() - r->t0_ns) / 1000; }

/* Writer calls go through these: the agent thread writes too. On a
 * failure the recording stops (the command is left alone). */
static void wfail(recorder *r)
{
	if (!r->failed) {
		r->failed = 1;
		snprintf(r->failure, sizeof(r->failure), "%s", hs_error_last());
	}
	r->stop = 1;
	r->stop_reason = HS_REC_STOP_ERROR;
}

#define WLOCK(r) pthread_mutex_lock(&(r)->lock)
#define WUNLOCK(r) pthread_mutex_unlock(&(r)->lock)
#define WCALL(r, expr)                       \
	do {                                     \
		WLOCK(r);                            \
		int wrc__ = (expr);                  \
		WUNLOCK(r);                          \
		if (wrc__ < 0)                       \
			wfail(r);                        \
	} while (0)

static rproc *find_alive(recorder *r, int pid)
{
	for (size_t i = r->n; i-- > 0;)
		if (r->procs[i]->pid == pid && r->procs[i]->alive)
			return r->procs[i];
	return NULL;
}

static int is_python(const char *exe, char **argv, size_t argc)
{
	const char *b = strrchr(exe, '/');
	b = b ? b + 1 : exe;
	if (!strncmp(b, "python", 6))
		return 1;
	if (argc) {
		const char *a = strrchr(argv[0], '/');
		a = a ? a + 1 : argv[0];
		if (!strncmp(a, "python", 6))
			return 1;
	}
	return 0;
}

/* Add a process of the tree. t_us is its start (time of fork), or
 * INT64_MIN to take it from /proc (found running). */
static rproc *add_proc(recorder *r, int pid, int ppid, int64_t t_us, int root)
{
	if (r->stop)
		return NULL;
	rproc *p = hs_calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		rproc **np = hs_reallocarray(r->procs, cap, sizeof(*np));
		if (!np) {
			hs_free(p);
			return NULL;
		}
		r->procs = np;
		r->cap = cap;
	}
	p->pid = pid;
	p->ppid = ppid;
	p->is_root = root;
	p->fs.statm_fd = p->fs.status_fd = p->fs.stat_fd = p->fs.smaps_fd = -1;
	if (hs_procfs_open(&p->fs, pid) == 0)
		p->fs_open = 1;
	unsigned flags = root ? HS_REC_PROC_ROOT : 0;
	hs_proc_stat st;
	int have_st = hs_procfs_stat_pid(pid, &st) == 0;
	if (have_st)
		p->starttime = st.starttime;
	if (t_us == INT64_MIN) {
		t_us = 0;
		if (have_st) {
			int64_t start_ns = (int64_t)st.starttime * hs_procfs_tick_us() * 1000 -
			                   r->boot_minus_mono_ns;
			t_us = (start_ns - r->t0_ns) / 1000;
		}
	} else {
		flags |= HS_REC_PROC_FROM_BIRTH;
	}
	char **argv = NULL;
	size_t argc = 0;
	char exe[4096];
	hs_procfs_cmdline(pid, &argv, &argc);
	hs_procfs_exe(pid, exe, sizeof(exe));
	ptrdiff_t parent = -1;
	rproc *pp = find_alive(r, ppid);
	if (pp) {
		parent = (ptrdiff_t)pp->index;
		/* a fork halves the PSS of every page the parent now shares with
		 * the child: measure the parent again on the next tick instead of
		 * estimating from its unchanged RSS (the child is measured on its
		 * first tick) */
		pp->next_smaps = 0;
	}
	if (!argc && pp && pp->argc && (flags & HS_REC_PROC_FROM_BIRTH)) {
		/* gone (or not readable) already: a child of fork starts as its
		 * parent's copy, argv and executable included */
		hs_free(argv);
		argv = copy_argv(pp->argv, pp->argc);
		argc = argv ? pp->argc : 0;
		snprintf(exe, sizeof(exe), "%s", pp->exe ? pp->exe : "");
	}
	if (argv && is_python(exe, argv, argc)) {
		flags |= HS_REC_PROC_PYTHON;
		p->python = 1;
	}
	hs_rec_proc_start ps = { pid, ppid, parent, t_us, flags, exe, argc,
	                         (const char *const *)argv };
	size_t index = 0;
	WLOCK(r);
	int rc = hs_rec_writer_process(r->w, &index, &ps);
	WUNLOCK(r);
	set_argv(p, argv, argc, exe);
	if (rc < 0) {
		wfail(r);
		free_proc(p);
		return NULL;
	}
	p->index = index;
	p->alive = 1;
	r->procs[r->n++] = p;
	r->alive++;
	hs_oom_watch_track(r->oom, pid);
	if (r->agents && p->python)
		hs_agents_add(r->agents, pid, index, root);
	return p;
}

static void end_proc(recorder *r, rproc *p, int64_t t_us, hs_rec_exit_how how, int status,
                     unsigned flags)
{
	if (!p->alive)
		return;
	hs_rec_exit e = { how, 0, 0, flags };
	if (how == HS_REC_EXITED || how == HS_REC_SIGNALED) {
		if (WIFEXITED(status)) {
			e.how = HS_REC_EXITED;
			e.code = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status)) {
			e.how = HS_REC_SIGNALED;
			e.signal = WTERMSIG(status);
			if (WCOREDUMP(status))
				e.flags |= HS_REC_EXIT_CORE;
			if (e.signal == SIGKILL)
				e.flags |= hs_oom_watch_check(r->oom, p->pid);
		}
	}
	p->alive = 0;
	r->alive--;
	if (p->fs_open)
		hs_procfs_close(&p->fs);
	p->fs_open = 0;
	hs_oom_watch_forget(r->oom, p->pid);
	if (r->agents && p->python)
		hs_agents_remove(r->agents, p->pid);
	WCALL(r, hs_rec_writer_exit(r->w, p->index, t_us, &e));
}

static int64_t event_t(recorder *r, uint64_t mono)
{
	int64_t t = ((int64_t)mono - r->t0_ns) / 1000;
	return mono ? t : now_us(r);
}

static void on_event(const hs_proc_event *e, void *payload)
{
	recorder *r = payload;
	switch (e->kind) {
	case HS_PEV_FORK:
		if (!r->o->children || find_alive(r, e->pid))
			break;
		if (find_alive(r, e->ppid))
			add_proc(r, e->pid, e->ppid, event_t(r, e->mono_ns), 0);
		break;
	case HS_PEV_EXEC: {
		rproc *p = find_alive(r, e->pid);
		if (!p)
			break;
		char **argv = NULL;
		size_t argc = 0;
		char exe[4096];
		hs_procfs_cmdline(p->pid, &argv, &argc);
		hs_procfs_exe(p->pid, exe, sizeof(exe));
		int py = argv && is_python(exe, argv, argc);
		WCALL(r, hs_rec_writer_exec(r->w, p->index, event_t(r, e->mono_ns), exe, argc,
		                            (const char *const *)argv));
		if (p->fs.smaps_fd >= 0) {
			/* smaps_rollup holds the memory map it was opened on */
			close(p->fs.smaps_fd);
			p->fs.smaps_fd = -1;
		}
		p->next_smaps = 0; /* a new program: measure it now */
		if (py && !p->python) {
			p->python = 1;
			WCALL(r, hs_rec_writer_proc_flags(r->w, p->index, event_t(r, e->mono_ns),
			                                  HS_REC_PROC_PYTHON));
			if (r->agents)
				hs_agents_add(r->agents, p->pid, p->index, p->is_root);
		}
		if (argv)
			set_argv(p, argv, argc, exe);
		break;
	}
	case HS_PEV_EXIT: {
		rproc *p = find_alive(r, e->pid);
		if (p)
			end_proc(r, p, event_t(r, e->mono_ns), HS_REC_EXITED, e->status,
			         HS_REC_EXIT_FROM_CONNECTOR);
		break;
	}
	}
}

static void on_scan(int pid, const hs_proc_stat *st, void *payload)
{
	recorder *r = payload;
	if (pid == r->self || find_alive(r, pid))
		return;
	/* one we followed already, now a zombie its parent has not reaped */
	for (size_t i = 0; i < r->n; i++)
		if (r->procs[i]->pid == pid && r->procs[i]->starttime == st->starttime)
			return;
	/* our children: the command, and orphans of the tree (we are their
	 * subreaper); otherwise a child of a process of the tree */
	int ours = (st->ppid == r->self && r->o->argv) || find_alive(r, st->ppid) != NULL;
	if (ours && r->o->children)
		add_proc(r, pid, st->ppid, INT64_MIN, 0);
}

static void reap(recorder *r)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		if (pid == r->root_pid) {
			r->root_status = status;
			r->root_done = 1;
			r->root_done_t = now_us(r);
		}
		rproc *p = find_alive(r, pid);
		if (p)
			end_proc(r, p, now_us(r), HS_REC_EXITED, status, HS_REC_EXIT_FROM_WAIT);
	}
}

static void sample_proc(recorder *r, rproc *p)
{
	int64_t t = now_us(r);
	int64_t rss, vms, shared;
	int rc = p->fs_open ? hs_procfs_statm(&p->fs, &rss, &vms, &shared) : -ESRCH;
	if (rc == 0 && rss == 0) {
		/* No resident page: a zombie (its parent has not reaped it yet),
		 * or a process tearing down its memory on the way out. Either way
		 * no sample: it would show a drop that never happened. */
		hs_proc_stat st;
		if (hs_procfs_stat(&p->fs, &st) == 0 && st.state == 'Z') {
			if (st.exit_code >= 0)
				end_proc(r, p, t, HS_REC_EXITED, st.exit_code, HS_REC_EXIT_FROM_PROC);
			else
				end_proc(r, p, t, HS_REC_VANISHED, 0, 0);
		}
		return;
	}
	if (rc < 0) {
		/* gone and reaped by someone else before we learned how it ended */
		end_proc(r, p, t, HS_REC_VANISHED, 0, 0);
		return;
	}
	p->last_rss = rss;
	int64_t mem[HS_REC_MEM_COLUMNS] = { t, rss, vms, shared };
	WCALL(r, hs_rec_writer_sample(r->w, p->index, HS_REC_SERIES_MEM, mem, HS_REC_MEM_COLUMNS));
	if (r->agents && p->python)
		hs_agents_rss(r->agents, p->pid, rss);

	if (t >= p->next_status) {
		int64_t anon, file, shmem, swap;
		hs_proc_stat st;
		if (hs_procfs_status(&p->fs, &anon, &file, &shmem, &swap) == 0 &&
		    hs_procfs_stat(&p->fs, &st) == 0) {
			int64_t v[HS_REC_STATUS_COLUMNS] = { t, anon, file, shmem, swap, st.threads,
			                                     (int64_t)st.utime_ms, (int64_t)st.stime_ms };
			WCALL(r, hs_rec_writer_sample(r->w, p->index, HS_REC_SERIES_STATUS, v,
			                              HS_REC_STATUS_COLUMNS));
		}
		int64_t every = r->o->interval_us > STATUS_MIN_US ? r->o->interval_us : STATUS_MIN_US;
		p->next_status = t + every;
	}
	if (t >= p->next_smaps) {
		int64_t c0 = cpu_ns();
		hs_proc_smaps sm;
		int src = hs_procfs_smaps(&p->fs, &sm);
		int64_t cost = (cpu_ns() - c0) / 1000;
		if (src == 0) {
			int64_t v[HS_REC_SMAPS_COLUMNS] = { t, sm.pss, sm.uss, sm.pss_anon, sm.pss_file,
			                                    sm.pss_shmem, sm.swap, sm.swap_pss, cost };
			WCALL(r, hs_rec_writer_sample(r->w, p->index, HS_REC_SERIES_SMAPS, v,
			                              HS_REC_SMAPS_COLUMNS));
		}
		/* Budget: every process's smaps reads together stay within
		 * SMAPS_BUDGET of a core; a 1 GiB process (10 ms a read) alone
		 * is read every 3.3 s, a small one every 100 ms. */
		int64_t min = r->o->interval_us > SMAPS_MIN_US ? r->o->interval_us : SMAPS_MIN_US;
		int64_t iv = (int64_t)((double)cost * (double)(r->alive ? r->alive : 1) / SMAPS_BUDGET);
		if (iv < min)
			iv = min;
		if (iv > SMAPS_MAX_US)
			iv = SMAPS_MAX_US;
		p->smaps_interval = iv;
		p->last_cost = cost;
		p->next_smaps = t + iv;
	}
}

static void flush_chunk(recorder *r, int64_t t)
{
	int64_t c = cpu_ns();
	WLOCK(r);
	int rc = hs_rec_writer_sampler_cpu(r->w, (c - r->cpu_ns) / 1000);
	if (rc == 0)
		rc = hs_rec_writer_flush(r->w, t);
	WUNLOCK(r);
	r->cpu_ns = c;
	r->last_chunk = t;
	if (rc < 0)
		wfail(r);
}

static void handle_signals(recorder *r)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(r->sigfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si))
			break;
		if (si.ssi_signo == SIGCHLD) {
			r->sigchld = 1; /* reaped right after */
			continue;
		}
		r->signals++;
		if (r->o->argv && r->signals == 1 && r->root_pid > 0 && !r->root_done) {
			/* sent by a process to us alone: pass it on; from the
			 * terminal (si_code > 0) the command got it already */
			if ((int)si.ssi_code <= 0 && (int)si.ssi_pid != r->root_pid)
				kill(r->root_pid, (int)si.ssi_signo);
			continue;
		}
		r->stop = 1;
		r->stop_reason = HS_REC_STOP_SIGNAL;
	}
}

static char *meta_json(recorder *r, double wall)
{
	const hs_record_options *o = r->o;
	cJSON *m = cJSON_CreateObject();
	if (!m)
		return NULL;
	cJSON_AddStringToObject(m, "format", "heapsnap-recording");
	cJSON_AddStringToObject(m, "heapsnap", HS_VERSION);
	if (o->argv) {
		cJSON *a = cJSON_AddArrayToObject(m, "command");
		for (size_t i = 0; a && o->argv[i]; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(o->argv[i]));
	} else {
		cJSON_AddNumberToObject(m, "pid", o->pid);
	}
	cJSON_AddNumberToObject(m, "time", wall);
	char iso[64];
	time_t tt = (time_t)wall;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(m, "time_iso", iso);
	cJSON_AddNumberToObject(m, "recorder_pid", r->self);
	struct utsname u;
	if (uname(&u) == 0) {
		cJSON_AddStringToObject(m, "hostname", u.nodename);
		cJSON_AddStringToObject(m, "kernel", u.release);
	}
	cJSON *s = cJSON_AddObjectToObject(m, "sampling");
	if (s) {
		cJSON_AddNumberToObject(s, "interval", (double)o->interval_us / 1e6);
		cJSON_AddNumberToObject(s, "status_interval",
		                        (double)(o->interval_us > STATUS_MIN_US ? o->interval_us
		                                                                 : STATUS_MIN_US) / 1e6);
		cJSON_AddNumberToObject(s, "smaps_budget", SMAPS_BUDGET);
		cJSON_AddNumberToObject(s, "smaps_min_interval", (double)SMAPS_MIN_US / 1e6);
		cJSON_AddNumberToObject(s, "smaps_max_interval", (double)SMAPS_MAX_US / 1e6);
		cJSON_AddBoolToObject(s, "children", o->children);
		cJSON_AddStringToObject(s, "discovery", r->discovery);
		if (o->duration_us)
			cJSON_AddNumberToObject(s, "duration", (double)o->duration_us / 1e6);
	}
	cJSON *py = cJSON_AddObjectToObject(m, "python");
	if (py) {
		cJSON_AddStringToObject(py, "figures", r->agents ? "agent" : "off");
		if (r->agents) {
			cJSON_AddNumberToObject(py, "heap_every", (double)o->heap_every_us / 1e6);
			cJSON_AddNumberToObject(py, "types", o->types);
			if (o->snapshot_every_us)
				cJSON_AddNumberToObject(py, "snapshot_every", (double)o->snapshot_every_us / 1e6);
			if (o->snapshot_growth > 0)
				cJSON_AddNumberToObject(py, "snapshot_on_growth", o->snapshot_growth);
		}
	}
	char *text = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	return text;
}

static const char *stop_name(hs_rec_stop s)
{
	switch (s) {
	case HS_REC_STOP_EXITED: return "exited";
	case HS_REC_STOP_DURATION: return "duration";
	case HS_REC_STOP_SIGNAL: return "signal";
	case HS_REC_STOP_ERROR: return "error";
	default: return "unknown";
	}
}

/* Fork and exec the command, its environment prepared by the caller.
 * @return the pid, or -errno (exec failed; the child is reaped). */
static int spawn(recorder *r, const sigset_t *old_mask)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (pid == 0) {
		close(pfd[0]);
		sigprocmask(SIG_SETMASK, old_mask, NULL);
		execvp(r->o->argv[0], (char *const *)r->o->argv);
		int e = errno;
		ssize_t wn = write(pfd[1], &e, sizeof(e));
		(void)wn;
		_exit(127);
	}
	close(pfd[1]);
	int err = 0;
	ssize_t got;
	do
		got = read(pfd[0], &err, sizeof(err));
	while (got < 0 && errno == EINTR);
	close(pfd[0]);
	if (got == (ssize_t)sizeof(err)) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return -err;
	}
	return pid;
}

static void run_loop(recorder *r)
{
	const hs_record_options *o = r->o;
	int64_t interval = o->interval_us;
	int64_t next = 0;
	for (;;) {
		/* wait for the next tick, handling events as they come */
		for (;;) {
			int64_t wait = next - now_us(r);
			if (wait <= 0 || r->stop)
				break;
			struct pollfd fds[2] = { { r->sigfd, POLLIN, 0 },
			                         { r->cn ? hs_connector_fd(r->cn) : -1, POLLIN, 0 } };
			struct timespec ts = { (time_t)(wait / 1000000), (long)(wait % 1000000) * 1000 };
			int n = ppoll(fds, 2, &ts, NULL);
			if (n <= 0)
				continue;
			if (fds[0].revents)
				handle_signals(r);
			if (fds[1].revents && hs_connector_drain(r->cn, on_event, r) == 1)
				r->next_rescan = 0; /* events were lost: rescan now */
			if (r->sigchld) {
				r->sigchld = 0;
				reap(r);
			}
		}
		if (r->stop)
			break;
		/* Nothing else to read here: ppoll said so when it timed out. Every
		 * system call counts at 100 ticks a second (a wake-up alone costs
		 * about 20 us of CPU on a virtual machine). */
		int64_t t = now_us(r);
		r->ticks++;
		if (o->children && (!r->cn || t >= r->next_rescan)) {
			if (hs_proc_scan_run(r->scan, on_scan, r) < 0)
				wfail(r);
			r->next_rescan = t + RESCAN_US;
		}
		for (size_t i = 0; i < r->n && !r->stop; i++)
			if (r->procs[i]->alive)
				sample_proc(r, r->procs[i]);
		t = now_us(r);
		if (t - r->last_chunk >= CHUNK_US)
			flush_chunk(r, t);

		/* stop? */
		rproc *root = r->n ? r->procs[0] : NULL;
		int root_gone = o->argv ? r->root_done && (!root || !root->alive)
		                        : (!root || !root->alive);
		if (root_gone && !r->root_done_t)
			r->root_done_t = t;
		if (root_gone && (r->alive == 0 || t - r->root_done_t >= LINGER_US)) {
			if (r->alive) {
				char note[256];
				snprintf(note, sizeof(note), "%zu process%s of the tree still running when "
				         "recording stopped, %.1f s after the %s ended", r->alive,
				         r->alive == 1 ? "" : "es", (double)LINGER_US / 1e6,
				         o->argv ? "command" : "process");
				WCALL(r, hs_rec_writer_note(r->w, -1, t, 0, note));
			}
			r->stop = 1;
			r->stop_reason = HS_REC_STOP_EXITED;
		}
		if (o->duration_us && t >= o->duration_us && !r->stop) {
			r->stop = 1;
			r->stop_reason = HS_REC_STOP_DURATION;
		}
		if (r->stop)
			break;
		next += interval;
		if (next <= now_us(r)) {
			/* late: skip the ticks we missed rather than bunch them */
			int64_t behind = now_us(r) - next;
			r->late += (uint64_t)(behind / interval) + 1;
			next += (behind / interval + 1) * interval;
		}
	}
}

int hs_record_run(const hs_record_options *o, hs_record_result *res)
{
	memset(res, 0, sizeof(*res));
	res->root_status = -1;
	recorder rr;
	recorder *r = &rr;
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->self = (int)getpid();
	r->root_status = -1;
	r->sigfd = -1;
	pthread_mutex_init(&r->lock, NULL);
	int rc = 0;
	char *meta = NULL;
	sigset_t mask, old_mask;
	int masked = 0;

	if (o->pid > 0 && kill(o->pid, 0) < 0 && errno == ESRCH)
		return hs_error_set(HS_ENOTFOUND, "cannot record process %d: no such process", o->pid);
	if (o->argv)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	if ((rc = hs_oom_watch_new(&r->oom)) < 0)
		goto done;
	if ((rc = hs_proc_scan_new(&r->scan)) < 0)
		goto done;
	if (o->children && hs_connector_open(&r->cn) == 0)
		r->discovery = "proc-connector";
	else
		r->discovery = o->children ? "proc-scan" : "none";
	hs_error_clear();

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	/* SIGPIPE (our stderr into a closed pipe) is held, not read: it acts as
	 * usual once the mask is restored at the end, after the agents' socket
	 * directory is removed and the recording closed */
	sigset_t block = mask;
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	masked = 1;
	r->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->sigfd < 0) {
		rc = hs_error_set(HS_EIO, "cannot record: signalfd: %s", strerror(errno));
		goto done;
	}

	if (o->agent && (rc = hs_agents_new(&r->agents, o, &r->lock)) < 0)
		goto done;
	if (r->agents && o->argv && (rc = hs_agents_environment(r->agents)) < 0)
		goto done;

	struct timespec wall, boot, mono;
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	r->boot_minus_mono_ns = ((int64_t)boot.tv_sec - mono.tv_sec) * 1000000000 +
	                        (boot.tv_nsec - mono.tv_nsec);
	double wall_s = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
	r->t0_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
	r->cpu_ns = r->cpu_start = cpu_ns();

	meta = meta_json(r, wall_s);
	if (!meta) {
		rc = hs_error_set(HS_ENOMEM, "out of memory");
		goto done;
	}
	hs_rec_writer_options wo = HS_REC_WRITER_OPTIONS_INIT;
	wo.wall_start = wall_s;
	wo.interval_us = (uint32_t)o->interval_us;
	wo.flags = (o->children ? HS_REC_FLAG_CHILDREN : 0) | (o->argv ? 0 : HS_REC_FLAG_PID_MODE) |
	           (r->agents ? HS_REC_FLAG_AGENT : 0);
	if ((rc = hs_rec_writer_open(&r->w, o->output, meta, &wo)) < 0)
		goto done;
	if (r->agents)
		hs_agents_attach(r->agents, r->w, r->t0_ns);

	if (o->argv) {
		int pid = spawn(r, &old_mask);
		if (pid < 0) {
			res->exec_errno = -pid;
			rc = hs_error_set(HS_EIO, "cannot run '%s': %s", o->argv[0], strerror(-pid));
			/* no chunk yet: the temporary file goes, a file already at the
			 * output name stays untouched */
			hs_rec_writer_free(r->w);
			r->w = NULL;
			goto done;
		}
		r->root_pid = pid;
		rproc *p = add_proc(r, pid, r->self, 0, 1);
		if (!p && !r->failed)
			wfail(r);
	} else {
		r->root_pid = o->pid;
		hs_proc_stat st;
		int ppid = hs_procfs_stat_pid(o->pid, &st) == 0 ? st.ppid : 0;
		add_proc(r, o->pid, ppid, INT64_MIN, 1);
		if (o->children) {
			/* the tree as it is now: children found by the scan below,
			 * in parent-first order (repeat until nothing new) */
			size_t before;
			do {
				before = r->n;
				hs_proc_scan_free(r->scan);
				r->scan = NULL;
				if ((rc = hs_proc_scan_new(&r->scan)) < 0)
					goto done;
				if ((rc = hs_proc_scan_run(r->scan, on_scan, r)) < 0)
					goto done;
			} while (r->n != before);
		}
	}
	if (r->agents)
		hs_agents_start(r->agents);

	run_loop(r);

	/* the end: every process still alive is "running" at the end */
	int64_t t_end = now_us(r);
	if (r->agents)
		hs_agents_stop(r->agents); /* joins: the writer is ours again */
	reap(r);
	if (r->cn)
		hs_connector_drain(r->cn, on_event, r);
	for (size_t i = 0; i < r->n; i++)
		if (r->procs[i]->alive && r->procs[i]->fs_open) {
			hs_procfs_close(&r->procs[i]->fs);
			r->procs[i]->fs_open = 0;
		}
	if (!r->failed) {
		int64_t c = cpu_ns();
		hs_rec_writer_sampler_cpu(r->w, (c - r->cpu_ns) / 1000);
		double secs = (double)t_end / 1e6;
		cJSON *me = cJSON_CreateObject();
		char *me_text = NULL;
		if (me) {
			cJSON_AddStringToObject(me, "stop", stop_name(r->stop_reason));
			cJSON_AddNumberToObject(me, "duration", secs);
			cJSON_AddNumberToObject(me, "ticks", (double)r->ticks);
			cJSON_AddNumberToObject(me, "late_ticks", (double)r->late);
			cJSON_AddNumberToObject(me, "processes", (double)r->n);
			cJSON_AddNumberToObject(me, "sampler_cpu_seconds", (double)(c - r->cpu_start) / 1e9);
			if (o->argv && r->root_status >= 0)
				cJSON_AddNumberToObject(me, "root_wait_status", r->root_status);
			me_text = cJSON_PrintUnformatted(me);
			cJSON_Delete(me);
		}
		hs_rec_write_stats st;
		rc = hs_rec_writer_close(r->w, t_end, r->stop_reason, o->argv ? r->root_status : -1,
		                         me_text, &st);
		cJSON_free(me_text);
		if (rc < 0) {
			wfail(r);
		} else {
			res->stats = st;
		}
	}
	if (r->failed) {
		rc = hs_rec_writer_in_place(r->w)
		         ? hs_error_set(HS_EIO, "%s; the recording stops at its last complete chunk",
		                        r->failure)
		         : hs_error_set(HS_EIO, "%s", r->failure);
		/* the command goes on: wait for it, so that its status is ours */
		if (o->argv && !r->root_done && r->root_pid > 0) {
			int st;
			while (waitpid(r->root_pid, &st, 0) < 0 && errno == EINTR)
				;
			r->root_status = st;
		}
	}
	res->root_status = r->root_status;
	res->stop = r->stop_reason;
	res->seconds = (double)t_end / 1e6;
	res->processes = r->n;
	res->sampler_cpu = (double)(cpu_ns() - r->cpu_start) / 1e9;
done:
	if (r->agents)
		hs_agents_free(r->agents);
	hs_rec_writer_free(r->w);
	for (size_t i = 0; i < r->n; i++)
		free_proc(r->procs[i]);
	hs_free(r->procs);
	hs_connector_free(r->cn);
	hs_proc_scan_free(r->scan);
	hs_oom_watch_free(r->oom);
	if (masked) {
		/* consume what arrived since the last look, so that a late Ctrl-C
		 * does not kill us on the way out, then restore the mask */
		if (r->sigfd >= 0) {
			struct signalfd_siginfo si;
			while (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				;
		}
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
	}
	if (r->sigfd >= 0)
		close(r->sigfd);
	cJSON_free(meta);
	pthread_mutex_destroy(&r->lock);
	return rc;
}
