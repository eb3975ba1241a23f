/*
 * cli/cmd_dump.c: `heapsnap dump PID [-o FILE] [--timeout S] [--fork]`: a snapshot of
 * a running Python process that never imported heapsnap (src/attach/).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "heapsnap/attach.h"

#ifndef HS_BUILD_PYTHON_DIR
#define HS_BUILD_PYTHON_DIR ""
#endif
#ifndef HS_INSTALL_PYTHON_DIR
#define HS_INSTALL_PYTHON_DIR ""
#endif

typedef struct dump_args {
	const char *out;
	const char *timeout;
	int fork;
	const char *fork_timeout;
} dump_args;

const hs_cli_option hs_cli_opts_dump[] = {
	{ HS_OPT_STRING, "out", 'o', "FILE", "write the snapshot to FILE (default: "
	  "heapsnap-PID-TIME.hsnap in the current directory)", offsetof(dump_args, out) },
	{ HS_OPT_STRING, "timeout", 0, "S", "give up when the process reaches no safe point "
	  "within S seconds (default 10)", offsetof(dump_args, timeout) },
	{ HS_OPT_FLAG, "fork", 0, NULL, "the process only forks (its pause is the fork); a child "
	  "walks the copy-on-write heap and writes the file (sizes of types with their own "
	  "__sizeof__ are then estimated)", offsetof(dump_args, fork) },
	{ HS_OPT_STRING, "fork-timeout", 0, "S", "with --fork: kill the child after S seconds "
	  "(default 300)", offsetof(dump_args, fork_timeout) },
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
		if (!args.fork)
			return hs_cli_usage_error(self, "--fork-timeout needs --fork");
		if (!args.fork_timeout[0] || *end || !(s > 0) || s > 86400)
			return hs_cli_usage_error(self, "--fork-timeout expects a positive number of "
			                          "seconds, not '%s'", args.fork_timeout);
		opts.fork_timeout = s;
	}
	opts.fork = args.fork;

	char path[HS_ATTACH_PATH_MAX], name[256] = "";
	if (!args.out) {
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		char stamp[32];
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		snprintf(name, sizeof(name), "heapsnap-%ld-%s.hsnap", pid, stamp);
	}
	const char *given = args.out ? args.out : name;
	if (given[0] == '/') {
		if (strlen(given) >= sizeof(path))
			return hs_cli_errorf("output path too long: '%s'", given);
		snprintf(path, sizeof(path), "%s", given);
	} else {
		char cwd[HS_ATTACH_PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return hs_cli_errorf("cannot get the current directory: %s", strerror(errno));
		if (strlen(cwd) + strlen(given) + 2 > sizeof(path))
			return hs_cli_errorf("output path too long: '%s'", given);
		size_t cl = strlen(cwd);
		memcpy(path, cwd, cl);
		path[cl] = '/';
		memcpy(path + cl + 1, given, strlen(given) + 1);
	}
	/* the directory must exist; writing is checked by the target itself,
	 * which writes with its own credentials */
	char dir[HS_ATTACH_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (!is_dir(dir))
		return hs_cli_errorf("cannot write '%s': directory '%s' does not exist", given, dir);
	if (geteuid() != 0 && access(dir, W_OK | X_OK) != 0)
		return hs_cli_errorf("cannot write '%s': directory '%s' is not writable", given, dir);

	char hooks[HS_ATTACH_PATH_MAX];
	if (hook_dir(hooks, sizeof(hooks)) < 0)
		return hs_cli_errorf("cannot find heapsnap's Python hook builds (the heapsnap/ package "
		                     "directory) beside this executable or in its build tree");
	opts.hook_dir = hooks;
	hs_attach_result res;
	if (hs_attach_dump(&res, (int)pid, path, &opts) < 0)
		return hs_cli_error();
	printf("wrote %s: %llu objects, %llu bytes, from process %ld (Python 3.%d)\n", path,
	       (unsigned long long)res.objects, (unsigned long long)res.bytes, pid, res.python_minor);
	if (args.fork)
		printf("  fork mode: child %d walked and wrote in %.3f s, its private dirty memory "
		       "%.1f MiB\n", res.child_pid, res.child_seconds,
		       res.child_private_dirty >= 0 ? (double)res.child_private_dirty / 1048576.0 : 0.0);
	printf("  pause %.1f ms (%s), main thread stopped %.1f ms, %.3f s in all\n",
	       res.pause_seconds * 1e3,
	       res.mode == HS_ATTACH_MODE_BLOCKED ? "taken while it was blocked in a system call"
	                                          : "at a safe point between bytecodes",
	       res.stopped_seconds * 1e3, res.seconds);
	return hs_cli_finish_output();
}
