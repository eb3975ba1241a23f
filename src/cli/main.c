/*
 * cli/main.c: `heapsnap <command>`: the command table and dispatch.
 * Adding a command is a file (cmd_<name>.c), a row here, a test.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

#ifndef HS_VERSION
#define HS_VERSION "0.0.0"
#endif

/* Alphabetical. */
const hs_cli_command hs_cli_commands[] = {
	{ "diff", cmd_diff, "compare two snapshots: growth per type, objects new in the second",
	  "diff A B (two snapshots, or two indexes) [--top N] [--by type|module] [--json] [--exit-code]",
	  HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_diff },
	{ "dominators", cmd_dominators, "the dominator chain of one object: what would free it",
	  "dominators SNAP --address A [--json]", HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_dominators },
	{ "dump", cmd_dump, "take a snapshot of a running Python process (no restart, no import)",
	  "dump PID [-o FILE|NAME.hsidx|DIR] [--timeout S] [--fork|--no-fork] [--agent|--no-agent] "
	  "[--children [--jobs N]]", 0, hs_cli_opts_dump },
	{ "garbage", cmd_garbage, "unreachable objects by type, and the cycles among them",
	  "garbage SNAP [--top N] [--json]", HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_garbage },
	{ "graph", cmd_graph, "draw who refers to objects (or the root cause of a leak) with Graphviz",
	  "graph SNAP (--type T | --address A) [--backrefs|--refs] [--depth N] [--max-nodes N] "
	  "[--filter EXPR] -o OUT.{svg,png,pdf,dot}  |  graph --leak A B C... -o OUT.{svg,png,pdf,dot}",
	  HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_graph },
	{ "flamegraph", cmd_flamegraph, "the allocation stacks of a `record --lines` recording as an SVG flame graph",
	  "flamegraph REC [--live|--peak|--allocated] [--pid P] [--title T] [--width W] -o FILE.svg", 0,
	  hs_cli_opts_flamegraph },
	{ "help", cmd_help, "show help for heapsnap or one of its commands",
	  "help [COMMAND]", 0, hs_cli_opts_help },
	{ "info", cmd_info, "show what a snapshot or a recording records, and its contents",
	  "info SNAP|REC [--json]", HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_info },
	{ "leaks", cmd_leaks, "find what grows in every interval across 3+ snapshots, and why",
	  "leaks A B C... [--top N] [--json] [--exit-code]", HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_leaks },
	{ "lines", cmd_lines, "which lines allocated the memory: per-line figures of a `record --lines` recording",
	  "lines REC [--by live|peak|allocated] [--top N] [--file F] [--function F] [--pid P] [--json]", 0,
	  hs_cli_opts_lines },
	{ "paths", cmd_paths, "why objects are alive: their shortest retention paths from the roots",
	  "paths SNAP (--type T | --address A) [--limit N] [--max-depth D] [--json]",
	  HS_CMD_NEEDS_SNAPSHOT, hs_cli_opts_paths },
	{ "plot", cmd_plot, "draw memory over time from a recording: processes, markers, peak, types",
	  "plot REC -o FILE.{png,svg,pdf} [--metric rss|uss|pss] [--stacked] [--from T] [--to T] "
	  "[--width W] [--height H] [--title T] [--top N] [--types N] [--json]", 0, hs_cli_opts_plot },
	{ "record", cmd_record, "record memory over time of a command or a process, and its children",
	  "record [-o FILE.hsrec] [--interval 10ms] [--children|--no-children] [--heap-every 1s] "
	  "[--snapshot-every S | --snapshot-on-growth PCT] [--duration S] "
	  "[--lines [--native] [--exact | --sample-bytes N] [--all-frames] [--seed N]] "
	  "(-- CMD [ARGS...] | --pid PID)",
	  0, hs_cli_opts_record },
	{ "retained", cmd_retained, "what freeing an object would free: retained sizes (dominator tree)",
	  "retained SNAP [--top N] [--by object|type|package] [--json]", HS_CMD_NEEDS_SNAPSHOT,
	  hs_cli_opts_retained },
	{ "run", cmd_run, "run a Python script and take snapshots of it",
	  "run [-o DIR] [--at-exit] [--every SECONDS] [--signal SIG] [--collect] [--python PATH] "
	  "-- SCRIPT [ARGS...]", 0, hs_cli_opts_run },
	{ "stats", cmd_stats, "a running process's memory, and its Python figures from its agent",
	  "stats PID [--json] [--fast] [--types N] [--timeout S]", 0, hs_cli_opts_stats },
	{ "summary", cmd_summary, "objects and bytes per type, next to the process's memory",
	  "summary SNAP|INDEX|REC [--top N] [--by type|module|site] [--json]", HS_CMD_NEEDS_SNAPSHOT,
	  hs_cli_opts_summary },
	{ "timeline", cmd_timeline, "a recording's processes, peaks, phases and markers over time",
	  "timeline REC [--json] [--samples] [--max-samples N]", 0, hs_cli_opts_timeline },
	{ NULL, NULL, NULL, NULL, 0, NULL },
};

const hs_cli_command *hs_cli_find(const char *name)
{
	for (const hs_cli_command *c = hs_cli_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void print_help(FILE *f)
{
	fputs("usage: heapsnap [--version] [--help] <command> [<args>]\n\n"
	      "memory forensics for Python: take snapshots of a process's heap, then analyse them\n\n"
	      "commands:\n", f);
	size_t w = 0;
	for (const hs_cli_command *c = hs_cli_commands; c->name; c++)
		if (strlen(c->name) > w)
			w = strlen(c->name);
	for (const hs_cli_command *c = hs_cli_commands; c->name; c++)
		fprintf(f, "   %-*s  %s\n", (int)w, c->name, c->help);
	fputs("\nSee 'heapsnap <command> --help' for the options of a command.\n", f);
}

const hs_cli_option hs_cli_opts_help[] = { { HS_OPT_END, NULL, 0, NULL, NULL, 0 } };

int cmd_help(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("help");
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, NULL, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (!npos) {
		print_help(stdout);
		return hs_cli_finish_output();
	}
	const hs_cli_command *c = hs_cli_find(pos[0]);
	if (!c)
		return hs_cli_usage_error(self, "'%s' is not a heapsnap command", pos[0]);
	hs_cli_print_command_help(c, stdout);
	return hs_cli_finish_output();
}

int main(int argc, char **argv)
{
	const char **av = (const char **)argv;
	if (argc < 2) {
		print_help(stderr);
		return HS_EXIT_USAGE;
	}
	const char *first = av[1];
	if (!strcmp(first, "--help") || !strcmp(first, "-h"))
		return cmd_help(1, (const char *[]){ "help", NULL });
	if (!strcmp(first, "--version") || !strcmp(first, "version")) {
		printf("heapsnap version %s\n", HS_VERSION);
		return hs_cli_finish_output();
	}
	if (first[0] == '-') {
		fprintf(stderr, "heapsnap: unknown option '%s'\n"
		                "usage: heapsnap [--version] [--help] <command> [<args>]\n", first);
		return HS_EXIT_USAGE;
	}
	const hs_cli_command *c = hs_cli_find(first);
	if (!c) {
		fprintf(stderr, "heapsnap: '%s' is not a heapsnap command; see 'heapsnap --help'\n", first);
		return HS_EXIT_USAGE;
	}
	return c->fn(argc - 1, av + 1);
}
