/*
 * cli/cmd_dump.c: `heapsnap dump PID [-o FILE] [--timeout S] [--fork|--no-fork]
 * [--children [--jobs N]]`: a snapshot of a running Python process that never
 * imported heapsnap (src/attach/), or of it and its Python descendants, one
 * snapshot each plus an index (src/attach/children.c, formats/index-v1.md).
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "attach/children.h"
#include "cli/cli.h"
#include "heapsnap/attach.h"
#include "heapsnap/procset.h"
#include "util/file.h"

#ifndef HS_BUILD_PYTHON_DIR
#define HS_BUILD_PYTHON_DIR ""
#endif
#ifndef HS_INSTALL_PYTHON_DIR
#define HS_INSTALL_PYTHON_DIR ""
#endif

/* The default of --fork/--no-fork: fork mode. Measured (docs/benchmarks.md,
 * tests/bench/bench_live.py): the target's pause is 29-57x shorter, request
 * p99 of a loaded server 1.3x its baseline against 96-142x in-process, for
 * the same time to file. */
#define HS_DUMP_FORK_DEFAULT 1
/* --children: processes dumped at once. An in-process walk is CPU bound and
 * is the target's pause: walks at once compete for the CPUs with each other
 * and with the processes still serving, and every pause grows (measured on 2
 * busy CPUs: 2 at once, pauses x1.6, time to the index -5%; 4 at once,
 * pauses x2.3). So one at a time by default. With --fork a target's pause is
 * its fork alone and the walks run in the forked children: one per CPU, at
 * most HS_DUMP_JOBS_AUTO_MAX. */
#define HS_DUMP_JOBS_AUTO_MAX 8
#define HS_DUMP_JOBS_MAX 64

typedef struct dump_args {
	const char *out;
	const char *timeout;
	int fork;
	int no_fork;
	const char *fork_timeout;
	int children;
	const char *jobs;
	int agent;
	int no_agent;
} dump_args;

const hs_cli_option hs_cli_opts_dump[] = {
	{ HS_OPT_STRING, "out", 'o', "FILE", "write the snapshot to FILE (default: "
	  "heapsnap-PID-TIME.hsnap in the current directory); with --children, the index "
	  "NAME.hsidx (snapshots NAME-<pid>.hsnap beside it) or a directory",
	  offsetof(dump_args, out) },
	{ HS_OPT_STRING, "timeout", 0, "S", "give up when the process reaches no safe point "
	  "within S seconds (default 10)", offsetof(dump_args, timeout) },
	{ HS_OPT_FLAG, "fork", 0, NULL, "the process only forks (its pause is the fork); a child "
	  "walks the copy-on-write heap and writes the file (the default; sizes of types with "
	  "their own __sizeof__, numpy arrays excepted, are then estimated)",
	  offsetof(dump_args, fork) },
	{ HS_OPT_FLAG, "no-fork", 0, NULL, "the process walks its own heap while paused: exact "
	  "sizes, USS/PSS in the metadata, no child process", offsetof(dump_args, no_fork) },
	{ HS_OPT_STRING, "fork-timeout", 0, "S", "with --fork: kill the child after S seconds "
	  "(default 300)", offsetof(dump_args, fork_timeout) },
	{ HS_OPT_FLAG, "children", 0, NULL, "also every Python descendant (workers of gunicorn, "
	  "multiprocessing...): one snapshot each and an index for summary and diff",
	  offsetof(dump_args, children) },
	{ HS_OPT_STRING, "jobs", 'j', "N", "with --children: dump N processes at once (default 1; "
	  "with --fork one per CPU, at most 8); each process is paused only for its own dump",
	  offsetof(dump_args, jobs) },
	{ HS_OPT_FLAG, "agent", 0, NULL, "only through the process's agent (heapsnap.agent); "
	  "fail when it has none", offsetof(dump_args, agent) },
	{ HS_OPT_FLAG, "no-agent", 0, NULL, "never through the agent: attach with ptrace even when "
	  "the process runs one", offsetof(dump_args, no_agent) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of the hook builds, found as `heapsnap run` finds the
 * package: beside an installed CLI, else the build tree, else the prefix. */
static int hook_dir(char *out, size_t size)
{
	char exe[2048];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, size, "%s/../lib/heapsnap/python/heapsnap", exe);
			if (is_dir(out))
				return 0;
		}
	}
	const char *dirs[2] = { HS_BUILD_PYTHON_DIR, HS_INSTALL_PYTHON_DIR };
	for (int i = 0; i < 2; i++) {
		if (!dirs[i][0])
			continue;
		snprintf(out, size, "%s/heapsnap", dirs[i]);
		if (is_dir(out))
			return 0;
	}
	return -1;
}

/* `given` made absolute against the current directory, into out. 0 or 2 (reported). */
static int absolute(char *out, size_t size, const char *given)
{
	if (given[0] == '/') {
		if (strlen(given) >= size)
			return hs_cli_errorf("output path too long: '%s'", given);
		snprintf(out, size, "%s", given);
		return 0;
	}
	char cwd[HS_ATTACH_PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return hs_cli_errorf("cannot get the current directory: %s", strerror(errno));
	if (strlen(cwd) + strlen(given) + 2 > size)
		return hs_cli_errorf("output path too long: '%s'", given);
	size_t cl = strlen(cwd);
	memcpy(out, cwd, cl);
	out[cl] = '/';
	memcpy(out + cl + 1, given, strlen(given) + 1);
	return 0;
}

/* The directory `dir` must exist; writing is checked by the targets
 * themselves, which write with their own credentials. 0 or 2 (reported). */
static int check_dir(const char *given, const char *dir)
{
	if (!is_dir(dir))
		return hs_cli_errorf("cannot write '%s': directory '%s' does not exist", given, dir);
	if (geteuid() != 0 && access(dir, W_OK | X_OK) != 0)
		return hs_cli_errorf("cannot write '%s': directory '%s' is not writable", given, dir);
	return 0;
}

static void stamp_now(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(buf, size, "%Y%m%d-%H%M%S", &tm);
}

static int default_jobs(int fork)
{
	if (!fork)
		return 1;
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > HS_DUMP_JOBS_AUTO_MAX ? HS_DUMP_JOBS_AUTO_MAX : n;
}

static int dump_one(long pid, const char *out, const hs_attach_options *opts)
{
	char path[HS_ATTACH_PATH_MAX], name[256] = "";
	if (!out) {
		char stamp[32];
		stamp_now(stamp, sizeof(stamp));
		snprintf(name, sizeof(name), "heapsnap-%ld-%s.hsnap", pid, stamp);
	}
	const char *given = out ? out : name;
	int rc;
	if ((rc = absolute(path, sizeof(path), given)) != 0)
		return rc;
	char dir[HS_ATTACH_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((rc = check_dir(given, dir)) != 0)
		return rc;
	/* a name planted at the output or at the fork-mode status file is refused
	 * before the process is touched (the target checks again, with its own
	 * credentials, when it writes: util/file.h) */
	if (hs_file_check_output(path) < 0)
		return hs_cli_error();
	if (opts->fork) {
		char status[HS_ATTACH_PATH_MAX + 32];
		snprintf(status, sizeof(status), "%s%s", path, HS_ATTACH_STATUS_SUFFIX);
		if (hs_file_check_output(status) < 0)
			return hs_cli_error();
	}
	char hooks[HS_ATTACH_PATH_MAX];
	int have_hooks = hook_dir(hooks, sizeof(hooks)) == 0;
	if (!have_hooks && opts->agent != HS_ATTACH_AGENT_ONLY)
		return hs_cli_errorf("cannot find heapsnap's Python hook builds (the heapsnap/ package "
		                     "directory) beside this executable or in its build tree");
	hs_attach_options each = *opts;
	each.hook_dir = have_hooks ? hooks : NULL;
	hs_attach_result res;
	if (hs_attach_dump(&res, (int)pid, path, &each) < 0) {
		int failed = hs_cli_error();
		if (res.via_agent && opts->agent != HS_ATTACH_AGENT_ONLY && !hs_attach_interrupted())
			fprintf(stderr, "hint: the process's agent failed; 'heapsnap dump --no-agent %ld' "
			        "attaches with ptrace instead\n", pid);
		return failed;
	}
	printf("wrote %s: %llu objects, %llu bytes, from process %ld (Python 3.%d)\n", path,
	       (unsigned long long)res.objects, (unsigned long long)res.bytes, pid, res.python_minor);
	if (opts->fork)
		printf("  fork mode: child %d walked and wrote in %.3f s, its private dirty memory "
		       "%.1f MiB\n", res.child_pid, res.child_seconds,
		       res.child_private_dirty >= 0 ? (double)res.child_private_dirty / 1048576.0 : 0.0);
	if (res.via_agent)
		printf("  pause %.1f ms, via the agent (%s): no ptrace, %.3f s in all\n",
		       res.pause_seconds * 1e3, res.agent_socket, res.seconds);
	else
		printf("  pause %.1f ms (%s), main thread stopped %.1f ms, %.3f s in all\n",
		       res.pause_seconds * 1e3,
		       res.mode == HS_ATTACH_MODE_BLOCKED ? "taken while it was blocked in a system call"
		                                          : "at a safe point between bytecodes",
		       res.stopped_seconds * 1e3, res.seconds);
	return hs_cli_finish_output();
}

/* The table of what `dump --children` did, one row per process. */
static int print_set(const hs_procset *set, const char *index)
{
	size_t ok = 0;
	for (size_t i = 0; i < set->count; i++)
		ok += set->procs[i].status == HS_PROC_OK;
	printf("wrote %s: %zu snapshot%s of %zu process%s (root %d) in %.2f s\n", index, ok,
	       ok == 1 ? "" : "s", set->count, set->count == 1 ? "" : "es", set->root_pid,
	       set->seconds);
	hs_table *t;
	if (hs_table_new(&t, 7) < 0)
		return hs_cli_error();
	static const char *const heads[7] = { "pid", "ppid", "command", "objects", "file", "pause",
	                                      "status" };
	for (size_t k = 0; k < 7; k++)
		hs_table_column(t, k, heads[k], k == 2 || k == 6 ? HS_ALIGN_LEFT : HS_ALIGN_RIGHT);
	int rc = 0;
	for (size_t i = 0; i < set->count && rc == 0; i++) {
		const hs_procset_proc *p = &set->procs[i];
		char pid[16], ppid[16], cmd[200], obj[32] = "", fsz[32] = "", pause[32] = "",
		     status[1400];
		snprintf(pid, sizeof(pid), "%d", p->pid);
		snprintf(ppid, sizeof(ppid), "%d", p->ppid);
		/* commands can be long (a forkserver's whole sys.path): cut, whole in the index */
		hs_procset_proc_label(p, cmd, sizeof(cmd), 48);
		if (p->status == HS_PROC_OK) {
			hs_render_count(obj, sizeof(obj), p->objects);
			hs_render_size(fsz, sizeof(fsz), p->file_bytes);
			snprintf(pause, sizeof(pause), "%.1f ms", p->pause_seconds * 1e3);
			snprintf(status, sizeof(status), "ok");
		} else {
			snprintf(status, sizeof(status), "%s: %s", hs_procset_status_name(p->status),
			         p->error ? p->error : "");
		}
		const char *cells[7] = { pid, ppid, cmd, obj, fsz, pause, status };
		rc = hs_table_row(t, cells);
	}
	if (rc == 0)
		rc = hs_table_print(t, stdout, 2);
	hs_table_free(t);
	if (rc < 0)
		return hs_cli_error();
	return 0;
}

static int dump_children(const hs_cli_command *self, long pid, const char *out, int jobs,
                         const hs_attach_options *opts)
{
	/* where: -o NAME.hsidx, -o DIR, or the current directory */
	char index[HS_ATTACH_PATH_MAX], dir[HS_ATTACH_PATH_MAX], stem[512];
	char stamp[32];
	stamp_now(stamp, sizeof(stamp));
	int rc;
	size_t sl = strlen(HS_PROCSET_SUFFIX);
	if (!out || is_dir(out)) {
		if ((rc = absolute(dir, sizeof(dir), out ? out : ".")) != 0)
			return rc;
		size_t dl = strlen(dir);
		while (dl > 1 && dir[dl - 1] == '/')
			dir[--dl] = '\0';
		if (dl >= 2 && !strcmp(dir + dl - 2, "/.")) /* "." made absolute */
			dir[dl == 2 ? 1 : dl - 2] = '\0';
		snprintf(stem, sizeof(stem), "heapsnap-%ld-%s", pid, stamp);
	} else {
		size_t ol = strlen(out);
		if (ol <= sl || strcmp(out + ol - sl, HS_PROCSET_SUFFIX) || out[ol - sl - 1] == '/')
			return hs_cli_usage_error(self, "with --children, -o expects NAME%s or an existing "
			                          "directory, not '%s'", HS_PROCSET_SUFFIX, out);
		char full[HS_ATTACH_PATH_MAX];
		if ((rc = absolute(full, sizeof(full), out)) != 0)
			return rc;
		char *slash = strrchr(full, '/');
		snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(slash + 1) - sl), slash + 1);
		if (slash == full)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - full), full);
	}
	if (!strcmp(dir, "/"))
		return hs_cli_errorf("cannot write snapshots into '/'; choose another directory");
	int n = snprintf(index, sizeof(index), "%s/%s%s", dir, stem, HS_PROCSET_SUFFIX);
	/* room for "-<pid>.hsnap" too */
	if (n < 0 || (size_t)n + 24 >= sizeof(index))
		return hs_cli_errorf("output path too long: '%s/%s%s'", dir, stem, HS_PROCSET_SUFFIX);
	if ((rc = check_dir(out ? out : index, dir)) != 0)
		return rc;
	if (hs_file_check_output(index) < 0) /* before any process is touched */
		return hs_cli_error();

	char hooks[HS_ATTACH_PATH_MAX];
	int have_hooks = hook_dir(hooks, sizeof(hooks)) == 0;
	if (!have_hooks && opts->agent != HS_ATTACH_AGENT_ONLY)
		return hs_cli_errorf("cannot find heapsnap's Python hook builds (the heapsnap/ package "
		                     "directory) beside this executable or in its build tree");
	hs_attach_options each = *opts;
	each.hook_dir = have_hooks ? hooks : NULL;
	hs_tree_dump_options to = HS_TREE_DUMP_OPTIONS_INIT;
	to.attach = &each;
	to.jobs = jobs;
	to.dir = dir;
	to.stem = stem;
	to.created_by = "heapsnap " HS_VERSION;
	hs_procset *set;
	if (hs_attach_dump_tree(&set, (int)pid, &to) < 0)
		return hs_cli_error();

	const hs_procset_proc *root = &set->procs[0];
	size_t ok = 0, tried = 0; /* tried: all but the skipped (not Python) */
	for (size_t i = 0; i < set->count; i++) {
		ok += set->procs[i].status == HS_PROC_OK;
		tried += set->procs[i].status != HS_PROC_SKIPPED;
	}
	if (!ok) {
		/* nothing to index: say why, the root's reason first */
		if (root->status == HS_PROC_SKIPPED && tried == 0)
			rc = hs_cli_errorf("process %ld is not a Python process and has no Python "
			                   "descendants (%zu process%s looked at); nothing was written",
			                   pid, set->count, set->count == 1 ? "" : "es");
		else
			rc = hs_cli_errorf("cannot snapshot process %ld: %s; no process of the %zu could be "
			                   "snapshotted, nothing was written", pid,
			                   root->error ? root->error : "unknown error", set->count);
		hs_procset_free(set);
		return rc;
	}
	if (hs_procset_write(set, index) < 0) {
		rc = hs_cli_error();
		hs_procset_free(set);
		return rc;
	}
	rc = print_set(set, index);
	if (rc == 0)
		rc = hs_cli_finish_output();
	if (rc == 0 && (root->status == HS_PROC_FAILED || root->status == HS_PROC_EXITED)) {
		rc = hs_cli_errorf("cannot snapshot process %ld (the root): %s; the index lists the %zu "
		                   "other snapshot%s", pid, root->error ? root->error : "unknown error", ok,
		                   ok == 1 ? "" : "s");
	} else if (rc == 0 && ok < tried) {
		fprintf(stderr, "heapsnap: %zu of %zu processes could not be snapshotted (see the "
		        "table; the index records why)\n", tried - ok, tried);
	}
	hs_procset_free(set);
	return rc;
}

int cmd_dump(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("dump");
	dump_args args = { 0 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected the id of a running Python process");
	char *end;
	errno = 0;
	long pid = strtol(pos[0], &end, 10);
	if (!pos[0][0] || *end || errno || pid <= 0 || pid > INT_MAX)
		return hs_cli_usage_error(self, "'%s' is not a process id", pos[0]);
	if (args.fork && args.no_fork)
		return hs_cli_usage_error(self, "--fork and --no-fork contradict each other");
	int fork = args.fork ? 1 : args.no_fork ? 0 : HS_DUMP_FORK_DEFAULT;
	hs_attach_options opts = HS_ATTACH_OPTIONS_INIT;
	if (args.timeout) {
		double s = strtod(args.timeout, &end);
		if (!args.timeout[0] || *end || !(s > 0) || s > 86400)
			return hs_cli_usage_error(self, "--timeout expects a positive number of seconds, "
			                          "not '%s'", args.timeout);
		opts.timeout = s;
	}
	if (args.fork_timeout) {
		double s = strtod(args.fork_timeout, &end);
		if (!fork)
			return hs_cli_usage_error(self, "--fork-timeout needs --fork");
		if (!args.fork_timeout[0] || *end || !(s > 0) || s > 86400)
			return hs_cli_usage_error(self, "--fork-timeout expects a positive number of "
			                          "seconds, not '%s'", args.fork_timeout);
		opts.fork_timeout = s;
	}
	opts.fork = fork;
	if (args.agent && args.no_agent)
		return hs_cli_usage_error(self, "--agent and --no-agent contradict each other");
	opts.agent = args.agent ? HS_ATTACH_AGENT_ONLY
	           : args.no_agent ? HS_ATTACH_AGENT_NEVER : HS_ATTACH_AGENT_AUTO;
	int jobs = default_jobs(fork);
	if (args.jobs) {
		if (!args.children)
			return hs_cli_usage_error(self, "--jobs needs --children");
		long j = strtol(args.jobs, &end, 10);
		if (!args.jobs[0] || *end || j < 1 || j > HS_DUMP_JOBS_MAX)
			return hs_cli_usage_error(self, "--jobs expects a number from 1 to %d, not '%s'",
			                          HS_DUMP_JOBS_MAX, args.jobs);
		jobs = (int)j;
	}
	/* a TERM, INT, HUP, PIPE or QUIT lets go of the target (which runs on
	 * where it was), removes what was started, and exits 128 + N */
	hs_attach_catch_signals();
	rc = args.children ? dump_children(self, pid, args.out, jobs, &opts)
	                       : dump_one(pid, args.out, &opts);
	if (rc != 0 && hs_attach_interrupted())
		return 128 + hs_attach_interrupted();
	return rc;
}
