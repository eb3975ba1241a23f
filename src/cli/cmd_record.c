/*
 * cli/cmd_record.c: `heapsnap record [-o FILE.hsrec] [--interval 10ms]
 * [--children|--no-children] [--heap-every 1s] [--snapshot-every S |
 * --snapshot-on-growth PCT] [--duration S] (-- CMD ARGS... | --pid PID)`:
 * memory over time of a command or a running process and its descendants
 * (src/record/, formats/recording-v1.md).
 *
 * The command's exit status is passed through (a death by signal is
 * re-raised on ourselves, as `heapsnap run` does). What the recorder says
 * goes to stderr: stdout belongs to the command.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "record/record_internal.h"
#include "util/alloc.h"

#ifndef HS_BUILD_PYTHON_DIR
#define HS_BUILD_PYTHON_DIR ""
#endif
#ifndef HS_INSTALL_PYTHON_DIR
#define HS_INSTALL_PYTHON_DIR ""
#endif

typedef struct record_args {
	const char *out;
	const char *interval;
	int children;
	int no_children;
	const char *heap_every;
	const char *snapshot_every;
	const char *snapshot_growth;
	const char *duration;
	const char *pid;
	const char *types;
	int no_agent;
	int quiet;
	int lines;
	int native;
	int exact;
	const char *sample_bytes;
	int all_frames;
	const char *seed;
} record_args;

const hs_cli_option hs_cli_opts_record[] = {
	{ HS_OPT_STRING, "out", 'o', "FILE", "write the recording to FILE (default: "
	  "heapsnap-NAME-TIME.hsrec in the current directory)", offsetof(record_args, out) },
	{ HS_OPT_STRING, "interval", 0, "DUR", "sample RSS every DUR (default 10ms; e.g. 5ms, 0.1s)",
	  offsetof(record_args, interval) },
	{ HS_OPT_FLAG, "children", 0, NULL, "follow every descendant, from its first tick to its "
	  "exit (the default)", offsetof(record_args, children) },
	{ HS_OPT_FLAG, "no-children", 0, NULL, "record the process alone",
	  offsetof(record_args, no_children) },
	{ HS_OPT_STRING, "heap-every", 0, "DUR", "Python heap figures and top types every DUR "
	  "(default 1s; 0 turns them off)", offsetof(record_args, heap_every) },
	{ HS_OPT_STRING, "snapshot-every", 0, "DUR", "take a snapshot of each Python process every "
	  "DUR (files beside the recording)", offsetof(record_args, snapshot_every) },
	{ HS_OPT_STRING, "snapshot-on-growth", 0, "PCT", "take a snapshot when a Python process's RSS "
	  "grew by PCT percent since its last one", offsetof(record_args, snapshot_growth) },
	{ HS_OPT_STRING, "duration", 0, "DUR", "stop recording after DUR (the command goes on)",
	  offsetof(record_args, duration) },
	{ HS_OPT_STRING, "pid", 'p', "PID", "record a running process (and its descendants) instead "
	  "of running a command", offsetof(record_args, pid) },
	{ HS_OPT_STRING, "types", 0, "N", "top N Python types each time (default 20)",
	  offsetof(record_args, types) },
	{ HS_OPT_FLAG, "no-agent", 0, NULL, "no Python figures: /proc only, nothing added to the "
	  "command's environment", offsetof(record_args, no_agent) },
	{ HS_OPT_FLAG, "quiet", 'q', NULL, "print nothing but errors", offsetof(record_args, quiet) },
	{ HS_OPT_FLAG, "lines", 0, NULL, "track allocations per source line in each Python process "
	  "(see `heapsnap lines`, `heapsnap flamegraph`)", offsetof(record_args, lines) },
	{ HS_OPT_FLAG, "native", 0, NULL, "with --lines: see malloc/mmap of C extensions too "
	  "(LD_PRELOAD interposer; commands record starts)", offsetof(record_args, native) },
	{ HS_OPT_FLAG, "exact", 0, NULL, "with --lines: record every allocation, not a sample",
	  offsetof(record_args, exact) },
	{ HS_OPT_STRING, "sample-bytes", 0, "N", "with --lines: one sample per N bytes allocated "
	  "on average (default 512k)", offsetof(record_args, sample_bytes) },
	{ HS_OPT_FLAG, "all-frames", 0, NULL, "with --lines: keep standard-library and "
	  "site-packages frames (no folding into your lines)", offsetof(record_args, all_frames) },
	{ HS_OPT_STRING, "seed", 0, "N", "with --lines: fix the sampler's random sequence",
	  offsetof(record_args, seed) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

/* "10ms", "1.5s", "250us", "2m", "1h" or a bare number of seconds -> us. */
static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !(v >= 0))
		return -1;
	double mult = 1e6;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mult = 1e6;
	else if (!strcmp(end, "ms"))
		mult = 1e3;
	else if (!strcmp(end, "us"))
		mult = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60e6;
	else if (!strcmp(end, "h"))
		mult = 3600e6;
	else
		return -1;
	double us = v * mult;
	if (us > 1e15)
		return -1;
	*out = (int64_t)(us + 0.5);
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The heapsnap Python package directory, as `heapsnap dump` finds it. */
static const char *package_dir(char *buf, size_t size)
{
	char exe[2048];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, size, "%s/../lib/heapsnap/python/heapsnap", exe);
			if (is_dir(buf))
				return buf;
		}
	}
	const char *dirs[2] = { HS_BUILD_PYTHON_DIR, HS_INSTALL_PYTHON_DIR };
	for (int i = 0; i < 2; i++) {
		if (!dirs[i][0])
			continue;
		snprintf(buf, size, "%s/heapsnap", dirs[i]);
		if (is_dir(buf))
			return buf;
	}
	return NULL;
}

/* libheapsnap_preload.so, found like the Python package: the build tree
 * (lib/ beside the CLI), the install prefix (lib/heapsnap), the package. */
static const char *preload_path(char *buf, size_t size, const char *pkg)
{
	char exe[2048];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			const char *rel[] = { "lib/libheapsnap_preload.so", "../lib/heapsnap/libheapsnap_preload.so",
			                      "../lib64/heapsnap/libheapsnap_preload.so" };
			for (int i = 0; i < 3; i++) {
				snprintf(buf, size, "%s/%s", exe, rel[i]);
				if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
					char real[4096];
					if (realpath(buf, real))
						snprintf(buf, size, "%s", real);
					return buf;
				}
			}
		}
	}
	if (pkg) {
		snprintf(buf, size, "%s/libheapsnap_preload.so", pkg);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode))
			return buf;
	}
	return NULL;
}

static void default_output(char *buf, size_t size, const char *const *argv, int pid)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
	if (argv) {
		const char *b = strrchr(argv[0], '/');
		b = b ? b + 1 : argv[0];
		char name[64];
		size_t k = 0;
		for (; *b && k < sizeof(name) - 1; b++)
			name[k++] = (*b == '.' || *b == '-' || *b == '_' || (*b >= '0' && *b <= '9') ||
			             (*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z')) ? *b : '_';
		name[k] = '\0';
		snprintf(buf, size, "heapsnap-%s-%s.hsrec", k ? name : "command", when);
	} else {
		snprintf(buf, size, "heapsnap-%d-%s.hsrec", pid, when);
	}
}

static void human(char *buf, size_t size, double bytes)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	while (bytes >= 1024 && i < 4) {
		bytes /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, size, "%.0f %s", bytes, u[i]);
	else
		snprintf(buf, size, "%.1f %s", bytes, u[i]);
}

int cmd_record(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("record");
	record_args a;
	memset(&a, 0, sizeof(a));
	const char **pos = hs_calloc((size_t)argc + 1, sizeof(char *));
	if (!pos)
		return hs_cli_error();
	int npos, rc = hs_cli_parse(self, argc, argv, &a, pos, argc, &npos, 1);
	if (rc >= 0)
		goto done;

	hs_record_options o;
	memset(&o, 0, sizeof(o));
	o.interval_us = 10000;
	o.children = 1;
	o.heap_every_us = 1000000;
	o.types = 20;
	o.agent = 1;
	o.quiet = a.quiet;
	rc = HS_EXIT_USAGE;
	if (a.pid) {
		char *end;
		errno = 0;
		long pid = strtol(a.pid, &end, 10);
		if (!a.pid[0] || *end || errno || pid <= 0 || pid > INT_MAX) {
			rc = hs_cli_usage_error(self, "'%s' is not a process id", a.pid);
			goto done;
		}
		if (npos) {
			rc = hs_cli_usage_error(self, "give either a command or --pid, not both");
			goto done;
		}
		o.pid = (int)pid;
	} else if (!npos) {
		rc = hs_cli_usage_error(self, "expected a command to run (after --) or --pid PID");
		goto done;
	} else {
		o.argv = pos;
	}
	if (a.children && a.no_children) {
		rc = hs_cli_usage_error(self, "--children and --no-children contradict each other");
		goto done;
	}
	o.children = !a.no_children;
	if (a.interval && (parse_duration(a.interval, &o.interval_us) < 0 || o.interval_us < 1000 ||
	                   o.interval_us > 3600000000LL)) {
		rc = hs_cli_usage_error(self, "--interval expects a duration from 1ms to 1h (e.g. 10ms), "
		                        "not '%s'", a.interval);
		goto done;
	}
	if (a.heap_every && parse_duration(a.heap_every, &o.heap_every_us) < 0) {
		rc = hs_cli_usage_error(self, "--heap-every expects a duration (e.g. 1s), not '%s'",
		                        a.heap_every);
		goto done;
	}
	if (a.snapshot_every && a.snapshot_growth) {
		rc = hs_cli_usage_error(self, "give either --snapshot-every or --snapshot-on-growth");
		goto done;
	}
	if (a.snapshot_every && (parse_duration(a.snapshot_every, &o.snapshot_every_us) < 0 ||
	                         o.snapshot_every_us < 100000)) {
		rc = hs_cli_usage_error(self, "--snapshot-every expects a duration of at least 0.1s, "
		                        "not '%s'", a.snapshot_every);
		goto done;
	}
	if (a.snapshot_growth) {
		char *end;
		double pct = strtod(a.snapshot_growth, &end);
		if (end != a.snapshot_growth && *end == '%')
			end++;
		if (end == a.snapshot_growth || *end || !(pct > 0) || pct > 100000) {
			rc = hs_cli_usage_error(self, "--snapshot-on-growth expects a positive percentage "
			                        "(e.g. 20), not '%s'", a.snapshot_growth);
			goto done;
		}
		o.snapshot_growth = pct / 100.0;
	}
	if (a.duration && (parse_duration(a.duration, &o.duration_us) < 0 || o.duration_us <= 0)) {
		rc = hs_cli_usage_error(self, "--duration expects a positive duration (e.g. 30s), not '%s'",
		                        a.duration);
		goto done;
	}
	if (a.types) {
		char *end;
		long n = strtol(a.types, &end, 10);
		if (!a.types[0] || *end || n < 0 || n > 1000) {
			rc = hs_cli_usage_error(self, "--types expects a number from 0 to 1000, not '%s'",
			                        a.types);
			goto done;
		}
		o.types = (int)n;
	}
	char pkg[4200];
	o.package_dir = package_dir(pkg, sizeof(pkg));
	o.agent = !a.no_agent && (o.heap_every_us > 0 || o.snapshot_every_us > 0 ||
	                          o.snapshot_growth > 0);
	if ((o.snapshot_every_us || o.snapshot_growth > 0) && a.no_agent) {
		rc = hs_cli_usage_error(self, "snapshots need the agent: drop --no-agent");
		goto done;
	}
	char track_opts[256], preload[4300];
	if (!a.lines && (a.native || a.exact || a.sample_bytes || a.all_frames || a.seed)) {
		rc = hs_cli_usage_error(self, "--native, --exact, --sample-bytes, --all-frames and --seed "
		                        "go with --lines");
		goto done;
	}
	if (a.lines) {
		if (a.no_agent) {
			rc = hs_cli_usage_error(self, "--lines needs the agent: drop --no-agent");
			goto done;
		}
		if (a.exact && a.sample_bytes) {
			rc = hs_cli_usage_error(self, "give either --exact or --sample-bytes");
			goto done;
		}
		if (a.native && !o.argv) {
			rc = hs_cli_usage_error(self, "--native works for commands record starts, not with "
			                        "--pid (the interposer is loaded at start-up)");
			goto done;
		}
		int64_t mean = 512 * 1024;
		if (a.sample_bytes) {
			char *end;
			double v = strtod(a.sample_bytes, &end);
			double mul = 1;
			if (*end == 'k' || *end == 'K') mul = 1024, end++;
			else if (*end == 'm' || *end == 'M') mul = 1024.0 * 1024, end++;
			if (end == a.sample_bytes || *end || !(v >= 1) || v * mul > 1e12) {
				rc = hs_cli_usage_error(self, "--sample-bytes expects a size of at least 1 "
				                        "(e.g. 524288, 512k, 1m), not '%s'", a.sample_bytes);
				goto done;
			}
			mean = (int64_t)(v * mul);
		}
		unsigned long long seed = 0;
		if (a.seed) {
			char *end;
			seed = strtoull(a.seed, &end, 10);
			if (!a.seed[0] || *end || a.seed[0] == '-') {
				rc = hs_cli_usage_error(self, "--seed expects a non-negative integer, not '%s'", a.seed);
				goto done;
			}
		}
		int n = a.exact ? snprintf(track_opts, sizeof(track_opts), "exact")
		                : snprintf(track_opts, sizeof(track_opts), "sample=%lld", (long long)mean);
		if (a.seed)
			n += snprintf(track_opts + n, sizeof(track_opts) - (size_t)n, ",seed=%llu", seed);
		if (a.all_frames)
			snprintf(track_opts + n, sizeof(track_opts) - (size_t)n, ",all_frames");
		o.lines = 1;
		o.agent = 1;
		o.track_opts = track_opts;
		if (a.native) {
			o.preload = preload_path(preload, sizeof(preload), o.package_dir);
			if (!o.preload) {
				rc = hs_cli_errorf("cannot find libheapsnap_preload.so (beside heapsnap, in "
				                      "its lib/heapsnap directory or in the Python package); "
				                      "reinstall heapsnap or drop --native");
				goto done;
			}
		}
	}
	char out[4200];
	if (a.out) {
		o.output = a.out;
	} else {
		default_output(out, sizeof(out), o.argv, o.pid);
		o.output = out;
	}

	hs_record_result res;
	if (hs_record_run(&o, &res) < 0) {
		rc = hs_cli_error();
		if (res.exec_errno == ENOENT)
			rc = 127;
		else if (res.exec_errno)
			rc = 126;
		goto done;
	}
	if (!o.quiet) {
		char size[32];
		human(size, sizeof(size), (double)res.stats.file_bytes);
		double per = res.stats.samples ? (double)res.stats.file_bytes / (double)res.stats.samples : 0;
		fprintf(stderr, "heapsnap: recorded %zu process%s for %.1f s into %s (%s, %llu samples, "
		        "%.2f bytes/sample); the recorder used %.2f%% of a CPU\n", res.processes,
		        res.processes == 1 ? "" : "es", res.seconds, o.output, size,
		        (unsigned long long)res.stats.samples, per,
		        res.seconds > 0 ? 100.0 * res.sampler_cpu / res.seconds : 0.0);
		if (res.stop == HS_REC_STOP_DURATION && o.argv && res.root_status < 0)
			fprintf(stderr, "heapsnap: the recording stopped after --duration; '%s' goes on "
			        "unrecorded\n", o.argv[0]);
	}
	fflush(stderr);
	if (o.argv) {
		int st = res.root_status;
		if (st < 0) {
			rc = HS_EXIT_OK;
		} else if (WIFEXITED(st)) {
			rc = WEXITSTATUS(st);
		} else if (WIFSIGNALED(st)) {
			/* die the same way, so the shell sees what the command saw */
			int sig = WTERMSIG(st);
			hs_free(pos);
			fflush(stdout);
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
	} else {
		rc = hs_cli_finish_output();
	}
done:
	hs_free(pos);
	return rc;
}
