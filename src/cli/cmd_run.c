/*
 * cli/cmd_run.c: `heapsnap run [-o DIR] [--at-exit] [--every S] [--signal SIG]
 * [--collect] [--python PATH] -- SCRIPT [ARGS...]`.
 *
 * Runs `PYTHON -m heapsnap._runner --out DIR [mode flags] -- SCRIPT ARGS`
 * with the heapsnap package put on PYTHONPATH, passes the script's exit
 * status through (a death by signal is re-raised on ourselves) and forwards
 * signals sent to us to the child. Signals the terminal sends to the whole
 * foreground process group (Ctrl-C) already reach the child, so only
 * signals sent by a process (si_code <= 0) are forwarded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"
#include "util/alloc.h"

#ifndef HS_BUILD_PYTHON_DIR
#define HS_BUILD_PYTHON_DIR ""
#endif
#ifndef HS_INSTALL_PYTHON_DIR
#define HS_INSTALL_PYTHON_DIR ""
#endif

typedef struct run_args {
	const char *out;
	int at_exit;
	const char *every;
	const char *signal;
	int collect;
	const char *python;
} run_args;

const hs_cli_option hs_cli_opts_run[] = {
	{ HS_OPT_STRING, "out", 'o', "DIR", "write snapshots into DIR (default: .)",
	  offsetof(run_args, out) },
	{ HS_OPT_FLAG, "at-exit", 0, NULL, "take a snapshot when the script ends (the default mode)",
	  offsetof(run_args, at_exit) },
	{ HS_OPT_STRING, "every", 0, "SECONDS", "take a snapshot every SECONDS",
	  offsetof(run_args, every) },
	{ HS_OPT_STRING, "signal", 0, "SIG", "take a snapshot when the process receives SIG (e.g. USR1)",
	  offsetof(run_args, signal) },
	{ HS_OPT_FLAG, "collect", 0, NULL, "run gc.collect() before each snapshot",
	  offsetof(run_args, collect) },
	{ HS_OPT_STRING, "python", 0, "PATH", "the Python interpreter (default $HEAPSNAP_PYTHON, "
	  "else python3 beside heapsnap, else /usr/bin/python3)", offsetof(run_args, python) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

static const struct { const char *name; int sig; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "ALRM", SIGALRM }, { "WINCH", SIGWINCH },
	{ "CONT", SIGCONT }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
};

/* A name of the table or its number: never a crash signal (SEGV, BUS,
 * FPE, ILL, ABRT...), whose Python-level handler would make a real crash
 * spin instead of dumping core, nor KILL or STOP. */
static int valid_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (s[0] && !*end) {
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (n == signals[i].sig)
				return 1;
		return 0;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (!strcasecmp(s, signals[i].name))
			return 1;
	return 0;
}

static volatile sig_atomic_t child_pid;

static void forward(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	pid_t c = (pid_t)child_pid;
	if (c > 0 && info && info->si_code <= 0 && info->si_pid != c)
		kill(c, sig);
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *package_dir(void)
{
	static char buf[4200], found[4100];
	/* an installed CLI finds the package beside it (relocatable prefix),
	 * then the build tree it came from, then the configured prefix */
	char exe[2048]; /* shorter than buf: no truncation below */
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(found, sizeof(found), "%s/../lib/heapsnap/python", exe);
			snprintf(buf, sizeof(buf), "%s/heapsnap", found);
			if (is_dir(buf))
				return found;
		}
	}
	const char *dirs[2] = { HS_BUILD_PYTHON_DIR, HS_INSTALL_PYTHON_DIR };
	for (int i = 0; i < 2; i++) {
		if (!dirs[i][0])
			continue;
		snprintf(buf, sizeof(buf), "%s/heapsnap", dirs[i]);
		if (is_dir(buf))
			return dirs[i];
	}
	return NULL; /* installed with pip: importable already */
}

static int set_pythonpath(void)
{
	const char *dir = package_dir();
	if (!dir)
		return 0;
	const char *old = getenv("PYTHONPATH");
	size_t n = strlen(dir) + (old ? strlen(old) : 0) + 2;
	char *v = hs_malloc(n);
	if (!v)
		return HS_ENOMEM;
	snprintf(v, n, "%s%s%s", dir, old && old[0] ? ":" : "", old && old[0] ? old : "");
	int rc = setenv("PYTHONPATH", v, 1);
	hs_free(v);
	return rc == 0 ? 0 : hs_error_set(HS_ENOMEM, "cannot set PYTHONPATH: %s", strerror(errno));
}

/*
 * The interpreter when --python is not given: $HEAPSNAP_PYTHON; else a
 * python3 beside this executable (a venv or `pip install` puts both in one
 * bin directory, and that python has the package); else /usr/bin/python3,
 * the interpreter a `make` build always includes; else python3 on PATH.
 */
static const char *default_python(void)
{
	static char sibling[4096];
	const char *env = getenv("HEAPSNAP_PYTHON");
	if (env && env[0])
		return env;
	ssize_t n = readlink("/proc/self/exe", sibling, sizeof(sibling) - 16);
	if (n > 0) {
		sibling[n] = '\0';
		char *slash = strrchr(sibling, '/');
		if (slash && !package_dir()) {
			strcpy(slash + 1, "python3");
			if (access(sibling, X_OK) == 0)
				return sibling;
		}
	}
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

int cmd_run(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("run");
	run_args args = { 0 };
	const char **pos = hs_calloc((size_t)argc + 1, sizeof(char *));
	if (!pos)
		return hs_cli_error();
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, argc, &npos, 1);
	if (rc >= 0)
		goto done;
	rc = HS_EXIT_USAGE;
	if (!npos) {
		rc = hs_cli_usage_error(self, "expected a script to run");
		goto done;
	}
	if (args.every) {
		char *end;
		double s = strtod(args.every, &end);
		if (!args.every[0] || *end || !(s > 0) || s > 1e9) {
			rc = hs_cli_usage_error(self, "--every expects a positive number of seconds, not '%s'",
			                        args.every);
			goto done;
		}
	}
	if (args.signal && !valid_signal(args.signal)) {
		rc = hs_cli_usage_error(self, "--signal expects one of HUP INT QUIT USR1 USR2 TERM ALRM "
		                        "WINCH CONT TSTP TTIN TTOU (name or number), not '%s'", args.signal);
		goto done;
	}
	const char *python = args.python ? args.python : default_python();

	/* PYTHON -m heapsnap._runner --out DIR [...] -- SCRIPT ARGS */
	const char **cmd = hs_calloc((size_t)npos + 16, sizeof(char *));
	if (!cmd) {
		rc = hs_cli_error();
		goto done;
	}
	int k = 0;
	cmd[k++] = python;
	cmd[k++] = "-m";
	cmd[k++] = "heapsnap._runner";
	cmd[k++] = "--out";
	cmd[k++] = args.out ? args.out : ".";
	if (args.at_exit || (!args.every && !args.signal))
		cmd[k++] = "--at-exit";
	if (args.every) {
		cmd[k++] = "--every";
		cmd[k++] = args.every;
	}
	if (args.signal) {
		cmd[k++] = "--signal";
		cmd[k++] = args.signal;
	}
	if (args.collect)
		cmd[k++] = "--collect";
	cmd[k++] = "--";
	for (int i = 0; i < npos; i++)
		cmd[k++] = pos[i];
	cmd[k] = NULL;

	if (set_pythonpath() < 0) {
		rc = hs_cli_error();
		hs_free(cmd);
		goto done;
	}
	fflush(stdout);
	fflush(stderr);

	/* a close-on-exec pipe tells us whether exec worked */
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rc = hs_cli_errorf("cannot run '%s': %s", python, strerror(errno));
		hs_free(cmd);
		goto done;
	}
	static const int fwd[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
	                           SIGWINCH };
	struct sigaction sa, old[sizeof(fwd) / sizeof(fwd[0])];
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, &old[i]);

	pid_t pid = fork();
	if (pid < 0) {
		rc = hs_cli_errorf("cannot run '%s': %s", python, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		hs_free(cmd);
		goto done;
	}
	if (pid == 0) {
		for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
			sigaction(fwd[i], &old[i], NULL);
		close(pfd[0]);
		execvp(python, (char *const *)cmd);
		int e = errno;
		ssize_t w = write(pfd[1], &e, sizeof(e));
		(void)w;
		_exit(127);
	}
	child_pid = pid;
	close(pfd[1]);
	int err = 0;
	ssize_t got;
	do
		got = read(pfd[0], &err, sizeof(err));
	while (got < 0 && errno == EINTR);
	close(pfd[0]);

	int status = 0;
	pid_t w;
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	child_pid = 0;
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &old[i], NULL);
	hs_free(cmd);

	if (got == (ssize_t)sizeof(err)) {
		rc = hs_cli_errorf("cannot run '%s': %s%s", python, strerror(err),
		                   err == ENOENT ? "; use --python PATH to name the interpreter" : "");
	} else if (w < 0) {
		rc = hs_cli_errorf("cannot wait for '%s': %s", python, strerror(errno));
	} else if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		/* die the same way, so the shell sees what the script saw */
		int sig = WTERMSIG(status);
		hs_free(pos);
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
		return 128 + sig;
	} else {
		rc = HS_EXIT_ERROR;
	}
done:
	hs_free(pos);
	return rc;
}
