/*
 * hook/fork.c: fork-mode snapshots, heapsnap.dump(path, fork=True).
 *
 * The parent (GIL held, so the heap is consistent) gathers the metadata it
 * already gathers for an in-process dump (meta.c: a few Python-level calls,
 * measured separately as meta_seconds) and forks. Its pause is that plus
 * fork() itself: copying the page tables. It then returns at once.
 *
 * The child is a copy of the one thread that called fork(), holding the
 * GIL of its private copy of the interpreter. It must not write into the
 * heap it walks: every page written is copied (copy-on-write), and a walk
 * that touched every object (reference counts, a list of all objects, GC
 * flags) would copy the whole RSS. So the walker runs with
 * hs_hook__no_heap_writes set: no __sizeof__ is called (C ones create an
 * int, Python ones run code), no reference is taken, the GC state is left
 * alone. Real sizes are computed in C as in-process (blocks.c), native
 * buffers found as in-process (native.c, layouts probed by the parent
 * before the fork); only what sys.getsizeof would report for a type with
 * its own C __sizeof__ stays unknown (no REPORTED entry), counted in
 * dump.sizeof_not_called. What is
 * still written, and measured in dump.fork.child_private_dirty_bytes: the
 * type method cache (_PyType_Lookup), a str made by a dict lookup by C
 * string for module frames, and the child's own memory (the visited
 * bitmap, the work stack and the writer's buffers, all malloc'ed).
 *
 * The child runs no Python code: PyOS_AfterFork_Child() is not called (it
 * would run os.register_at_fork hooks), all signals but a few fatal ones
 * are blocked (a Python-level handler's C half would write to the
 * program's wakeup fd), SIGINT/SIGTERM/SIGHUP/SIGALRM take their default
 * action, and a watchdog timer (setitimer, SIGALRM) kills it after
 * `timeout` seconds. It writes with the usual writer (temp file + rename,
 * compression on a second thread created in the child) and ends with
 * _exit(): no atexit handler, no stdio flush of buffers it inherited.
 *
 * Locks: glibc's fork() resets malloc's locks in the child; the child takes
 * no other lock another thread could have held at fork time (the writer's
 * mutex is created in the child).
 *
 * Reaping. fork() cannot avoid one SIGCHLD to the program when the child
 * ends (a double fork sends it for the middle process instead, and the
 * parent would wait for that second fork: twice the pause). So the child is
 * reaped by pid only, never with waitpid(-1): by a detached C thread
 * (wait=False) or by the caller (wait=True). A program that reaps any child
 * (waitpid(-1) in a SIGCHLD handler) may collect it first; we then get
 * ECHILD and stop quietly. When the child was killed (watchdog), the reaper
 * removes its temporary file.
 */
#include "hook_internal.h"
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapsnap/attach.h"
#include "heapsnap/errors.h"
#include "util/file.h"

int hs_hook__no_heap_writes;

#define STATUS_MAX 2048

/* ------------------------------------------------------------------ */
/* Small helpers (async-signal-safe where the child needs them)        */

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

static size_t read_all(int fd, char *p, size_t cap)
{
	size_t n = 0;
	while (n < cap) {
		ssize_t k = read(fd, p + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	return n;
}

/* Private_Dirty of this process in bytes (smaps_rollup), -1 if unknown. */
static long long private_dirty(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Private_Dirty:", 14))
			v = strtoll(line + 14, NULL, 10) * 1024;
	fclose(f);
	return v;
}

/* Remove the temporary files a killed child left: the writer's
 * "<path>.tmp.<child pid>.XXXXXX" (util/file.h), and its status file's. */
static void remove_partial(const char *path, pid_t child)
{
	hs_file_remove_temps(path, (int)child);
	size_t n = strlen(path), k = strlen(HS_ATTACH_STATUS_SUFFIX);
	char *status = malloc(n + k + 1);
	if (!status)
		return;
	memcpy(status, path, n);
	memcpy(status + n, HS_ATTACH_STATUS_SUFFIX, k + 1);
	hs_file_remove_temps(status, (int)child);
	free(status);
}

/* waitpid(pid) only: never another child of the program. 1 when the child
 * was killed by a signal, 0 otherwise (exited, or reaped by the program). */
static int reap(pid_t pid, int *status_out)
{
	int st = 0;
	pid_t r;
	do
		r = waitpid(pid, &st, 0);
	while (r < 0 && errno == EINTR);
	if (status_out)
		*status_out = r == pid ? st : -1;
	return r == pid && WIFSIGNALED(st);
}

typedef struct reaper_arg {
	pid_t pid;
	char path[];
} reaper_arg;

static void *reaper_main(void *p)
{
	reaper_arg *a = p;
	if (reap(a->pid, NULL))
		remove_partial(a->path, a->pid);
	free(a);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The child                                                           */

typedef struct child_ctx {
	const char *path;
	const char *status;  /* status file, or NULL */
	int result_fd;       /* pipe to the waiting parent, or -1 */
	int pause_fd;        /* pipe from the parent: its pause, as a double */
	double timeout;
	double t_fork;
	int collect;
	double collect_seconds;
	const hs_json *meta_json;
	hs_meta *meta;
} child_ctx;

static void child_signals(double timeout)
{
	sigset_t mask;
	sigfillset(&mask);
	static const int keep[] = { SIGALRM, SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS,
	                            SIGFPE, SIGILL, SIGABRT };
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		sigdelset(&mask, keep[i]);
		if (keep[i] == SIGALRM || keep[i] == SIGINT || keep[i] == SIGTERM || keep[i] == SIGHUP)
			sigaction(keep[i], &dfl, NULL);
	}
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	struct itimerval it;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)timeout;
	it.it_value.tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6);
	if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void child_report(const child_ctx *c, const char *text, size_t len)
{
	if (c->result_fd >= 0)
		write_all(c->result_fd, text, len);
	if (c->status) {
		/* created like every output (util/file.h: O_EXCL|O_NOFOLLOW, 0600,
		 * renamed into place), never through a name another user planted;
		 * "pid N" first tells the injector ours from one a killed dump left */
		hs_file_out f = HS_FILE_OUT_INIT;
		char head[32];
		int n = snprintf(head, sizeof(head), "pid %ld\n", (long)getpid());
		if (hs_file_out_open(&f, c->status) == 0) {
			write_all(f.fd, head, (size_t)n);
			write_all(f.fd, text, len);
			hs_file_out_commit(&f, 0);
		}
		hs_file_out_release(&f);
	}
}

static void child_fail(const child_ctx *c, int err, const char *what)
{
	char text[STATUS_MAX];
	const char *msg = hs_error_last();
	int n = snprintf(text, sizeof(text), "ok 0\nerrno %d\nmessage %s%s%s\n", err, what,
	                 msg && *msg ? ": " : "", msg ? msg : "");
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text))
		n = (int)sizeof(text) - 1;
	child_report(c, text, (size_t)n);
}

static void child_main(const child_ctx *c) __attribute__((noreturn));
static void child_main(const child_ctx *c)
{
	child_signals(c->timeout);
	hs_hook__no_heap_writes = 1;
	double t0 = hs_hook__now();
	hs_writer *w = NULL;
	hs_walk_result wr;
	hs_write_stats stats;
	memset(&wr, 0, sizeof(wr));
	memset(&stats, 0, sizeof(stats));
	hs_writer_options opts = HS_WRITER_OPTIONS_INIT;
	/* No second thread: the frames of the parent's other threads are
	 * reached through structures on their C stacks (3.11/3.12 cframe), and
	 * glibc hands a new thread in the child one of those stacks, cached
	 * after the fork: the thread would overwrite what the walk reads. */
	opts.threaded = 0;
	PyObject *hex = PySys_GetObject("hexversion"); /* borrowed: no write */
	opts.python_version = hex && PyLong_Check(hex) ? (uint32_t)PyLong_AsLong(hex) : PY_VERSION_HEX;
	errno = 0;
	int rc = hs_writer_open(&w, c->path, &opts);
	if (rc == 0)
		rc = hs_writer_meta(w, (const char *)c->meta_json->b.data, c->meta_json->b.len);
	if (rc == 0)
		rc = hs_hook__walk(w, c->meta, &wr);
	int err = errno;
	if (rc < 0) {
		hs_writer_free(w);
		child_fail(c, rc == HS_EIO ? (err ? err : EIO) : 0, "the forked child could not write the snapshot");
		_exit(2);
	}
	long long dirty = private_dirty();
	double parent_pause = -1;
	if (read_all(c->pause_fd, (char *)&parent_pause, sizeof(parent_pause)) != sizeof(parent_pause))
		parent_pause = -1;

	hs_json end;
	hs_json_init(&end);
	hs_json_open(&end, NULL, '{');
	hs_hook__memory_end_json(&end); /* the mappings read when the child started */
	hs_json_open(&end, "dump", '{');
	if (parent_pause >= 0)
		hs_json_double(&end, "pause_seconds", parent_pause);
	else
		hs_json_null(&end, "pause_seconds");
	hs_json_double(&end, "walk_seconds", wr.walk_seconds);
	hs_json_double(&end, "collect_seconds", c->collect_seconds);
	hs_json_uint(&end, "sizeof_calls", wr.sizeof_calls);
	hs_json_uint(&end, "sizeof_errors", wr.sizeof_errors);
	hs_json_uint(&end, "sizeof_skipped", wr.sizeof_skipped);
	hs_json_uint(&end, "sizeof_not_called", wr.sizeof_not_called);
	hs_json_uint(&end, "objects", wr.nodes);
	hs_json_uint(&end, "edges", wr.edges);
	hs_hook__walk_meta_end(&end, &wr);
	hs_json_cstr(&end, "mode", "fork");
	hs_json_open(&end, "fork", '{');
	if (parent_pause >= 0)
		hs_json_double(&end, "parent_pause_seconds", parent_pause);
	else
		hs_json_null(&end, "parent_pause_seconds");
	if (dirty >= 0)
		hs_json_int(&end, "child_private_dirty_bytes", dirty);
	else
		hs_json_null(&end, "child_private_dirty_bytes");
	hs_json_int(&end, "child_pid", (long long)getpid());
	hs_json_double(&end, "timeout_seconds", c->timeout);
	hs_json_close(&end, '}');
	hs_json_open(&end, "notes", '[');
	hs_json_cstr(&end, NULL, "fork mode: process.uss and process.pss are not measured (reading "
	                         "smaps_rollup would lengthen the pause with the RSS)");
	if (wr.sizeof_not_called)
		hs_json_cstr(&end, NULL, "fork mode: C-level __sizeof__ methods were not called (that would "
		                         "write into the copied heap): what sys.getsizeof reports is unknown "
		                         "for those objects; their real sizes are computed as in-process");
	hs_hook__walk_notes(&end, &wr);
	hs_json_close(&end, ']');
	hs_json_close(&end, '}');
	hs_json_close(&end, '}');
	rc = end.err ? HS_ENOMEM : hs_writer_meta_end(w, (const char *)end.b.data, end.b.len);
	hs_json_release(&end);
	errno = 0;
	if (rc == 0)
		rc = hs_writer_commit(w, &stats);
	err = errno;
	hs_writer_free(w);
	if (rc < 0) {
		child_fail(c, rc == HS_EIO ? (err ? err : EIO) : 0, "the forked child could not write the snapshot");
		_exit(2);
	}
	char text[STATUS_MAX];
	int n = snprintf(text, sizeof(text),
	                 "ok 1\nobjects %llu\nedges %llu\nroots %llu\ntypes %llu\nstrings %llu\n"
	                 "bytes %llu\nraw_bytes %llu\nwalk_seconds %.9f\nchild_seconds %.9f\n"
	                 "child_private_dirty_bytes %lld\nsizeof_not_called %llu\npeak_stack %zu\n"
	                 "writer_peak_bytes %llu\n",
	                 (unsigned long long)wr.nodes, (unsigned long long)wr.edges,
	                 (unsigned long long)wr.roots, (unsigned long long)wr.types,
	                 (unsigned long long)stats.strings, (unsigned long long)stats.file_bytes,
	                 (unsigned long long)stats.raw_bytes, wr.walk_seconds, hs_hook__now() - t0,
	                 dirty, (unsigned long long)wr.sizeof_not_called, wr.peak_stack,
	                 (unsigned long long)stats.peak_buffer_bytes);
	if (n > 0)
		child_report(c, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent                                                          */

static int set_item(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

/* "key value" lines from the child into the dict: numbers as int/float. */
static int parse_status(PyObject *d, char *text, int *ok, int *err, const char **message)
{
	*ok = 0;
	*err = 0;
	*message = NULL;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *sp = strchr(line, ' ');
		if (sp) {
			*sp = '\0';
			const char *v = sp + 1;
			if (!strcmp(line, "ok"))
				*ok = atoi(v);
			else if (!strcmp(line, "errno"))
				*err = atoi(v);
			else if (!strcmp(line, "message"))
				*message = v;
			else if (strchr(v, '.')) {
				if (set_item(d, line, PyFloat_FromDouble(strtod(v, NULL))) < 0)
					return -1;
			} else if (set_item(d, line, PyLong_FromLongLong(strtoll(v, NULL, 10))) < 0)
				return -1;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

PyObject *hs_hook__fork_dump(PyObject *pathobj, const char *path, int collect,
                             double collect_seconds, int wait, double timeout,
                             const char *status)
{
	double t_pause = hs_hook__now();
	hs_meta meta;
	hs_json json;
	hs_json_init(&json);
	hs_hook__meta_no_smaps = 1;
	int mrc = hs_hook__meta_gather(&meta, &json, collect);
	hs_hook__meta_no_smaps = 0;
	if (mrc < 0) {
		hs_hook__meta_release(&meta);
		hs_json_release(&json);
		return NULL;
	}
	/* native-buffer layouts (may run Python code) and static-object
	 * ranges (dl_iterate_phdr locks): here, never in the child */
	if (hs_hook__walk_prepare() < 0) {
		hs_hook__walk_unprepare();
		hs_hook__meta_release(&meta);
		hs_json_release(&json);
		PyErr_NoMemory();
		return NULL;
	}
	int pause_pipe[2] = { -1, -1 }, result_pipe[2] = { -1, -1 };
	if (pipe2(pause_pipe, O_CLOEXEC) != 0 || (wait && pipe2(result_pipe, O_CLOEXEC) != 0)) {
		PyErr_SetFromErrno(PyExc_OSError);
		goto fail;
	}
	child_ctx c;
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.status = status;
	c.result_fd = result_pipe[1];
	c.pause_fd = pause_pipe[0];
	c.timeout = timeout;
	c.collect = collect;
	c.collect_seconds = collect_seconds;
	c.meta_json = &json;
	c.meta = &meta;

	double t_fork = hs_hook__now();
	c.t_fork = t_fork;
	pid_t pid = fork();
	if (pid == 0) {
		close(pause_pipe[1]);
		if (result_pipe[0] >= 0)
			close(result_pipe[0]);
		child_main(&c);
	}
	double t_resume = hs_hook__now();
	int fork_errno = errno;
	hs_hook__walk_unprepare(); /* the child has its copy */
	double pause = t_resume - t_pause;
	close(pause_pipe[0]);
	if (pid > 0)
		write_all(pause_pipe[1], (const char *)&pause, sizeof(pause)); /* 8 bytes: never blocks */
	close(pause_pipe[1]);
	pause_pipe[0] = pause_pipe[1] = -1;
	if (result_pipe[1] >= 0)
		close(result_pipe[1]);
	result_pipe[1] = -1;
	hs_hook__meta_release(&meta);
	hs_json_release(&json);
	if (pid < 0) {
		errno = fork_errno;
		PyErr_SetFromErrno(PyExc_OSError);
		if (result_pipe[0] >= 0)
			close(result_pipe[0]);
		return NULL;
	}

	char text[STATUS_MAX];
	size_t tlen = 0;
	int wstatus = -1, killed = 0;
	if (wait) {
		Py_BEGIN_ALLOW_THREADS
		tlen = read_all(result_pipe[0], text, sizeof(text) - 1);
		killed = reap(pid, &wstatus);
		Py_END_ALLOW_THREADS
		close(result_pipe[0]);
		text[tlen] = '\0';
		if (killed)
			remove_partial(path, pid);
	} else {
		size_t n = strlen(path);
		reaper_arg *a = malloc(sizeof(*a) + n + 1);
		pthread_t th;
		pthread_attr_t at;
		int started = 0;
		if (a && pthread_attr_init(&at) == 0) {
			a->pid = pid;
			memcpy(a->path, path, n + 1);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&at, 64 * 1024);
			started = pthread_create(&th, &at, reaper_main, a) == 0;
			pthread_attr_destroy(&at);
		}
		if (!started)
			free(a); /* the child stays a zombie until the program reaps it */
	}

	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	if (set_item(d, "path", PyUnicode_DecodeFSDefault(path)) < 0 ||
	    set_item(d, "fork", PyBool_FromLong(1)) < 0 ||
	    set_item(d, "pid", PyLong_FromLong((long)pid)) < 0 ||
	    set_item(d, "pause_seconds", PyFloat_FromDouble(pause)) < 0 ||
	    set_item(d, "fork_seconds", PyFloat_FromDouble(t_resume - t_fork)) < 0 ||
	    set_item(d, "meta_seconds", PyFloat_FromDouble(t_fork - t_pause)) < 0 ||
	    set_item(d, "collect_seconds", PyFloat_FromDouble(collect_seconds)) < 0 ||
	    set_item(d, "timeout", PyFloat_FromDouble(timeout)) < 0) {
		Py_DECREF(d);
		return NULL;
	}
	if (!wait)
		return d;
	int ok, err;
	const char *message;
	if (parse_status(d, text, &ok, &err, &message) < 0) {
		Py_DECREF(d);
		return NULL;
	}
	if (ok)
		return d;
	Py_DECREF(d);
	if (killed && wstatus >= 0 && WTERMSIG(wstatus) == SIGALRM) {
		char msg[256]; /* PyErr_Format has no %g */
		snprintf(msg, sizeof(msg), "heapsnap: the forked child (pid %d) was killed by its "
		         "watchdog after %.3g s; no snapshot was written (raise timeout=)",
		         (int)pid, timeout);
		PyErr_SetString(PyExc_TimeoutError, msg);
	}
	else if (killed)
		PyErr_Format(PyExc_RuntimeError, "heapsnap: the forked child (pid %d) was killed by "
		             "signal %d; no snapshot was written", (int)pid, WTERMSIG(wstatus));
	else if (err) {
		PyObject *m = PyUnicode_FromFormat("heapsnap: cannot write snapshot: %s",
		                                   message ? message : "I/O error");
		PyObject *args = m ? Py_BuildValue("(iNO)", err, m, pathobj) : NULL;
		if (args) {
			PyErr_SetObject(PyExc_OSError, args);
			Py_DECREF(args);
		}
	} else
		PyErr_Format(PyExc_RuntimeError, "heapsnap: %s",
		             message ? message : "the forked child failed without a message");
	return NULL;

fail:
	for (int i = 0; i < 2; i++) {
		if (pause_pipe[i] >= 0)
			close(pause_pipe[i]);
		if (result_pipe[i] >= 0)
			close(result_pipe[i]);
	}
	hs_hook__meta_release(&meta);
	hs_json_release(&json);
	return NULL;
}
