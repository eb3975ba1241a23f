/*
 * attach/children.c: `heapsnap dump PID --children`.
 *
 * The tree. Linux lists a process's children only in
 * /proc/PID/task/TID/children, which needs CONFIG_PROC_CHILDREN (absent
 * on some kernels, this one included), and lists each thread's children
 * separately. Instead every /proc/N/stat is read once (pid, parent, start
 * time, state) and the tree is rebuilt from the parent links: one pass over
 * /proc, whatever the kernel. Processes that start after the pass are not
 * in the set; processes that end after it are recorded as exited.
 *
 * Which are Python: a process is attachable when the interpreter's C API
 * (Py_AddPendingCall) is exported by the mapped libpython3.X or by the
 * executable (a static interpreter such as Debian's). Everything else
 * (shells, `sleep`, compilers run by a build) is listed as skipped.
 *
 * Memory is read for every process in one pass before the first dump:
 * PSS divides each shared page among the processes mapping it at that
 * moment, so figures read at different moments (or while a fork-mode dump
 * has a child sharing every page) would not add up.
 *
 * The dumps run on `jobs` threads, each doing whole hs_attach_dump calls
 * (ptrace requests must come from the thread that attached; the last
 * error is thread-local). Each target is paused only for its own dump.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "attach/children.h"
#include "util/alloc.h"

#define CMDLINE_MAX (128u << 10) /* bytes of a command line kept */
#define ARGS_MAX 4096u

/* ------------------------------------------------------------------ */
/* the tree                                                            */

/* pid, ppid, state, start time and name from /proc/PID/stat: 0, or -1 gone */
static int read_stat(hs_tree_proc *p, int pid)
{
	char fn[64], buf[2048];
	snprintf(fn, sizeof(fn), "/proc/%d/stat", pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) S ppid ...": comm may hold spaces and ')' */
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -1;
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	size_t k = (size_t)(close - open - 1);
	if (k >= sizeof(p->name))
		k = sizeof(p->name) - 1;
	memcpy(p->name, open + 1, k);
	p->name[k] = '\0';
	char *s = close + 1;
	int field = 2; /* the last one read */
	char *save = NULL;
	for (char *tok = strtok_r(s, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 3)
			p->state = tok[0];
		else if (field == 4)
			p->ppid = atoi(tok);
		else if (field == 22) {
			p->start_ticks = strtoull(tok, NULL, 10);
			break;
		}
	}
	return field >= 4 ? 0 : -1;
}

static int cmp_parent(const void *a, const void *b)
{
	const hs_tree_proc *x = a, *y = b;
	if (x->ppid != y->ppid)
		return (x->ppid > y->ppid) - (x->ppid < y->ppid);
	return (x->pid > y->pid) - (x->pid < y->pid);
}

int hs_attach_tree(hs_tree_proc **out, size_t *count, int root)
{
	*out = NULL;
	*count = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return hs_error_set(HS_EIO, "cannot list '/proc': %s", strerror(errno));
	hs_tree_proc *all = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		long pid = strtol(de->d_name, NULL, 10);
		if (pid <= 0 || pid > 0x7fffffff)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 512;
			hs_tree_proc *na = hs_reallocarray(all, nc, sizeof(*na));
			if (!na) {
				rc = HS_ENOMEM;
				break;
			}
			all = na;
			cap = nc;
		}
		if (read_stat(&all[n], (int)pid) == 0)
			n++;
	}
	closedir(d);
	if (rc < 0) {
		hs_free(all);
		return rc;
	}
	/* children of a pid are a run of `all` sorted by (ppid, pid) */
	qsort(all, n, sizeof(*all), cmp_parent);
	hs_tree_proc key;
	memset(&key, 0, sizeof(key));
	const hs_tree_proc *rootp = NULL;
	for (size_t i = 0; i < n; i++)
		if (all[i].pid == root)
			rootp = &all[i];
	if (!rootp) {
		hs_free(all);
		/* /proc lists processes only; a thread id is there when asked by name */
		char fn[64], line[256];
		snprintf(fn, sizeof(fn), "/proc/%d/status", root);
		FILE *f = fopen(fn, "re");
		int tgid = 0;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "Tgid: %d", &tgid) == 1)
				break;
		if (f)
			fclose(f);
		if (tgid > 0 && tgid != root)
			return hs_error_set(HS_EINVAL, "%d is a thread of process %d, not a process; give "
			                    "its process id", root, tgid);
		return hs_error_set(HS_ENOTFOUND, "no such process: %d", root);
	}
	hs_tree_proc *tree = hs_reallocarray(NULL, n, sizeof(*tree));
	size_t *stack = hs_reallocarray(NULL, n + 1, sizeof(size_t));
	if (!tree || !stack) {
		hs_free(all);
		hs_free(tree);
		hs_free(stack);
		return HS_ENOMEM;
	}
	/* depth first, children by pid: push each run of children in reverse.
	 * A pid appears once in /proc, so the walk cannot loop (the kernel has
	 * no parent cycles), and each process is pushed at most once. */
	size_t nt = 0, sp = 0;
	stack[sp++] = (size_t)(rootp - all);
	all[rootp - all].depth = 0;
	while (sp) {
		size_t i = stack[--sp];
		tree[nt++] = all[i];
		key.ppid = all[i].pid;
		key.pid = 0;
		/* first child: lower bound of (ppid, 0) */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (cmp_parent(&all[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t end = lo;
		while (end < n && all[end].ppid == all[i].pid)
			end++;
		for (size_t c = end; c > lo; c--) {
			if (all[c - 1].pid == all[i].pid || sp >= n)
				continue; /* pid 0's children include itself on some kernels */
			all[c - 1].depth = all[i].depth + 1;
			stack[sp++] = c - 1;
		}
		if (nt >= n)
			break;
	}
	hs_free(stack);
	hs_free(all);
	*out = tree;
	*count = nt;
	return 0;
}

/* ------------------------------------------------------------------ */
/* what a process is                                                   */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int hs_attach_is_python(int pid, char *why, size_t why_size)
{
	hs_proc_status st;
	int rc = hs_attach__status(&st, (pid_t)pid);
	if (rc < 0) {
		snprintf(why, why_size, "exited");
		return HS_ENOTFOUND;
	}
	if (st.state == 'Z' || st.state == 'X') {
		snprintf(why, why_size, "exited (a zombie)");
		return HS_ENOTFOUND;
	}
	hs_maps maps;
	if ((rc = hs_attach__maps_read(&maps, (pid_t)pid)) < 0) {
		if (rc == HS_ENOTFOUND && access("/proc", F_OK) == 0) {
			char fn[64];
			snprintf(fn, sizeof(fn), "/proc/%d", pid);
			if (access(fn, F_OK) != 0) {
				snprintf(why, why_size, "exited");
				return HS_ENOTFOUND;
			}
		}
		snprintf(why, why_size, "cannot read its memory map: %s", hs_error_last());
		return rc;
	}
	const hs_map *py = NULL;
	int python2 = 0;
	for (size_t i = 0; i < maps.n && !py; i++) {
		const char *p = maps.v[i].path;
		if (!p)
			continue;
		const char *b = base_name(p);
		if (!strncmp(b, "libpython3.", 11) && strstr(b, ".so"))
			py = hs_attach__maps_first(&maps, p);
		else if (!strncmp(b, "libpython2.", 11))
			python2 = 1;
	}
	char exe[4096];
	if (!py) {
		char fn[64];
		snprintf(fn, sizeof(fn), "/proc/%d/exe", pid);
		ssize_t n = readlink(fn, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			py = hs_attach__maps_first(&maps, exe);
		}
	}
	int is = 0;
	if (py) {
		hs_elf *e = NULL;
		if (hs_elf_open(&e, (pid_t)pid, py) == 0) {
			is = hs_elf_sym(e, "Py_AddPendingCall") && hs_elf_sym(e, "PyGILState_Check");
			hs_elf_free(e);
		}
		hs_error_clear();
	}
	if (!is)
		snprintf(why, why_size, python2 ? "a Python 2 process" :
		         "not a Python process (no CPython 3 interpreter among its mappings)");
	hs_attach__maps_release(&maps);
	return is;
}

int hs_attach_memory(hs_proc_memory *out, int pid)
{
	hs_proc_memory unknown = HS_PROC_MEMORY_UNKNOWN;
	*out = unknown;
	char fn[64], line[256];
	snprintf(fn, sizeof(fn), "/proc/%d/smaps_rollup", pid);
	FILE *f = fopen(fn, "re");
	if (f) {
		long long rss = -1, pss = -1, pc = -1, pd = -1, swap = -1, v;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "Rss: %lld kB", &v) == 1)
				rss = v;
			else if (sscanf(line, "Pss: %lld kB", &v) == 1)
				pss = v;
			else if (sscanf(line, "Private_Clean: %lld kB", &v) == 1)
				pc = v;
			else if (sscanf(line, "Private_Dirty: %lld kB", &v) == 1)
				pd = v;
			else if (sscanf(line, "Swap: %lld kB", &v) == 1)
				swap = v;
		}
		fclose(f);
		if (rss >= 0)
			out->rss = rss * 1024;
		if (pss >= 0)
			out->pss = pss * 1024;
		if (pc >= 0 && pd >= 0)
			out->uss = (pc + pd) * 1024;
		if (swap >= 0)
			out->swap = swap * 1024;
		if (rss >= 0)
			return 0;
	}
	/* no smaps_rollup (old kernel, or not allowed): RSS and swap from status */
	snprintf(fn, sizeof(fn), "/proc/%d/status", pid);
	f = fopen(fn, "re");
	if (!f)
		return HS_ENOTFOUND;
	long long v;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %lld kB", &v) == 1)
			out->rss = v * 1024;
		else if (sscanf(line, "VmSwap: %lld kB", &v) == 1)
			out->swap = v * 1024;
	}
	fclose(f);
	return 0;
}

/* argv from /proc/PID/cmdline: NUL-separated; empty for kernel threads and
 * zombies (the caller then shows the name). */
static int read_argv(hs_procset_proc *p, const hs_tree_proc *tp)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/cmdline", tp->pid);
	char *buf = hs_malloc(CMDLINE_MAX + 1);
	if (!buf)
		return HS_ENOMEM;
	size_t n = 0;
	FILE *f = fopen(fn, "re");
	if (f) {
		n = fread(buf, 1, CMDLINE_MAX, f);
		fclose(f);
	}
	buf[n] = '\0';
	/* a process may rewrite its command line without NULs (setproctitle) */
	while (n && buf[n - 1] == '\0')
		n--;
	const char **av = hs_calloc(ARGS_MAX, sizeof(char *));
	if (!av) {
		hs_free(buf);
		return HS_ENOMEM;
	}
	size_t argc = 0;
	if (n) {
		buf[n] = '\0';
		for (size_t i = 0; i <= n && argc < ARGS_MAX;) {
			av[argc++] = buf + i;
			i += strlen(buf + i) + 1;
		}
	}
	int rc = hs_procset_proc_set_argv(p, av, argc, tp->name);
	hs_free(av);
	hs_free(buf);
	return rc;
}

/* The process still exists and is the one listed (not a reused pid). */
static int same_process(const hs_tree_proc *tp)
{
	hs_tree_proc now;
	return read_stat(&now, tp->pid) == 0 && now.start_ticks == tp->start_ticks &&
	       now.state != 'Z' && now.state != 'X';
}

/* ------------------------------------------------------------------ */
/* dumping                                                             */

typedef struct job {
	const hs_tree_proc *tp;
	hs_procset_proc *p;
	char path[HS_ATTACH_PATH_MAX];
} job;

typedef struct pool {
	job *jobs;
	size_t njobs;
	atomic_size_t next;
	const hs_attach_options *attach;
	int failed_oom;
} pool;

static void run_job(job *j, const hs_attach_options *attach)
{
	hs_attach_result res;
	hs_procset_proc *p = j->p;
	int rc = hs_attach_dump(&res, j->tp->pid, j->path, attach);
	p->seconds = res.seconds;
	if (res.python_minor)
		p->python_minor = res.python_minor;
	if (rc == 0) {
		p->status = HS_PROC_OK;
		p->objects = res.objects;
		p->file_bytes = res.bytes; /* the hook reports the file's size */
		p->pause_seconds = res.pause_seconds;
		p->mode = res.via_agent ? "agent"
		        : res.mode == HS_ATTACH_MODE_BLOCKED ? "blocked" : "pending_call";
		if (attach->fork) {
			p->child_pid = res.child_pid;
			p->child_seconds = res.child_seconds;
			p->child_private_dirty = res.child_private_dirty;
		}
		return;
	}
	/* the message is this thread's; a process gone meanwhile has "exited" */
	p->error = hs_strdup(hs_error_last()[0] ? hs_error_last() : hs_error_name(rc));
	p->status = same_process(j->tp) ? HS_PROC_FAILED : HS_PROC_EXITED;
}

static void *worker(void *arg)
{
	pool *pl = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&pl->next, 1);
		if (i >= pl->njobs || hs_attach_interrupted())
			break;
		run_job(&pl->jobs[i], pl->attach);
	}
	return NULL;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_boot_id(void)
{
	char buf[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return NULL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] ? hs_strdup(buf) : NULL;
}

int hs_attach_dump_tree(hs_procset **out, int root, const hs_tree_dump_options *opts)
{
	*out = NULL;
	if (!opts || !opts->attach || !opts->dir || !opts->stem || opts->dir[0] != '/')
		return hs_error_set(HS_EINVAL, "hs_attach_dump_tree: bad options");
	double t0 = now_mono();
	hs_procset *set;
	HS_TRY(hs_procset_new(&set));
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	set->time = (double)wall.tv_sec + (double)wall.tv_nsec * 1e-9;
	struct tm tm;
	time_t secs = wall.tv_sec;
	char iso[64];
	localtime_r(&secs, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S%z", &tm);
	set->time_iso = hs_strdup(iso);
	set->boot_id = read_boot_id();
	set->created_by = opts->created_by ? hs_strdup(opts->created_by) : NULL;
	set->root_pid = root;
	set->fork = opts->attach->fork;

	hs_tree_proc *tree = NULL;
	size_t nt = 0;
	job *jobs = NULL;
	int rc = hs_attach_tree(&tree, &nt, root);
	if (rc < 0)
		goto done;
	jobs = hs_calloc(nt ? nt : 1, sizeof(*jobs));
	if (!jobs) {
		rc = HS_ENOMEM;
		goto done;
	}
	size_t njobs = 0;
	for (size_t i = 0; i < nt && rc == 0; i++) {
		hs_procset_proc *p;
		if ((rc = hs_procset_add(set, &p)) < 0)
			break;
		p->pid = tree[i].pid;
		p->ppid = tree[i].ppid;
		p->start_ticks = tree[i].start_ticks;
		if ((rc = read_argv(p, &tree[i])) < 0)
			break;
		char why[256];
		int py = tree[i].pid == (int)getpid() ? 0 : hs_attach_is_python(tree[i].pid, why, sizeof(why));
		if (tree[i].pid == (int)getpid())
			snprintf(why, sizeof(why), "heapsnap itself");
		if (py == 1) {
			p->status = HS_PROC_FAILED; /* until its dump says otherwise */
			continue;
		}
		p->status = py == HS_ENOTFOUND ? HS_PROC_EXITED : py < 0 ? HS_PROC_FAILED : HS_PROC_SKIPPED;
		if (!(p->error = hs_strdup(why)))
			rc = HS_ENOMEM;
	}
	if (rc < 0)
		goto done;
	/* the set no longer grows: pointers into it are stable from here */
	double tm0 = now_mono();
	for (size_t i = 0; i < set->count; i++)
		if (set->procs[i].status != HS_PROC_EXITED)
			hs_attach_memory(&set->procs[i].mem, set->procs[i].pid);
	set->memory_seconds = now_mono() - tm0;
	for (size_t i = 0; i < set->count; i++) {
		hs_procset_proc *p = &set->procs[i];
		if (p->status != HS_PROC_FAILED || p->error)
			continue;
		job *j = &jobs[njobs++];
		j->tp = &tree[i];
		j->p = p;
		int n = snprintf(j->path, sizeof(j->path), "%s/%s-%d.hsnap", opts->dir, opts->stem, p->pid);
		if (n < 0 || (size_t)n >= sizeof(j->path)) {
			rc = hs_error_set(HS_EINVAL, "output path too long: '%s/%s-%d.hsnap'", opts->dir,
			                  opts->stem, p->pid);
			goto done;
		}
		if (!(p->file = hs_strdup(j->path + strlen(opts->dir) + 1))) {
			rc = HS_ENOMEM;
			goto done;
		}
	}

	pool pl;
	memset(&pl, 0, sizeof(pl));
	pl.jobs = jobs;
	pl.njobs = njobs;
	pl.attach = opts->attach;
	atomic_init(&pl.next, 0);
	int nthreads = opts->jobs > 1 ? opts->jobs : 1;
	if ((size_t)nthreads > njobs)
		nthreads = (int)njobs;
	pthread_t th[64];
	if (nthreads > 64)
		nthreads = 64;
	int started = 0;
	for (int k = 1; k < nthreads; k++) {
		if (pthread_create(&th[started], NULL, worker, &pl) != 0)
			break; /* fewer threads: the others share the work */
		started++;
	}
	worker(&pl); /* this thread works too */
	for (int k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	if (hs_attach_interrupted()) {
		/* no index: the snapshots already written go too (each process was
		 * let go of where it was) */
		size_t removed = 0;
		for (size_t i = 0; i < njobs; i++) {
			/* a job stopped late may have a complete file too (its fork
			 * child had renamed it): this run's names, regular files only */
			struct stat st;
			if (jobs[i].path[0] && lstat(jobs[i].path, &st) == 0 && S_ISREG(st.st_mode) &&
			    unlink(jobs[i].path) == 0)
				removed++;
		}
		rc = hs_error_set(HS_EUSER, "interrupted by signal %d: let go of every process, which "
		                  "run on where they were; no index written (%zu finished snapshot%s "
		                  "removed)", hs_attach_interrupted(), removed, removed == 1 ? "" : "s");
		hs_procset_free(set);
		set = NULL;
		goto done;
	}
	for (size_t i = 0; i < njobs; i++) {
		hs_procset_proc *p = jobs[i].p;
		if (p->status != HS_PROC_OK) {
			hs_free(p->file);
			p->file = NULL;
			if (!p->error && !(p->error = hs_strdup("out of memory")))
				rc = HS_ENOMEM;
		}
	}
	set->seconds = now_mono() - t0;
done:
	hs_free(jobs);
	hs_free(tree);
	if (rc < 0) {
		hs_procset_free(set);
		return rc;
	}
	*out = set;
	return 0;
}
