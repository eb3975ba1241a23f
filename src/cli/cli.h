/*
 * cli/cli.h: shared by the files of the `heapsnap` command: the command
 * table, option parsing, and the exit-status conventions (git's):
 * 0 success, 1 "found something" where a flag asks (diff --exit-code),
 * 2 any error (bad input included), 129 usage.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdio.h>
#include "heapsnap.h"

#define HS_EXIT_OK 0
#define HS_EXIT_FOUND 1
#define HS_EXIT_ERROR 2
#define HS_EXIT_USAGE 129

#define HS_CMD_NEEDS_SNAPSHOT 0x1u

typedef struct hs_cli_command {
	const char *name;
	int (*fn)(int argc, const char **argv); /* argv[0] is the command name */
	const char *help;                       /* one line, for `heapsnap help` */
	const char *usage;                      /* after "heapsnap " */
	unsigned flags;
	const struct hs_cli_option *options;    /* for `heapsnap <cmd> --help` */
} hs_cli_command;

typedef enum hs_cli_opt_kind {
	HS_OPT_END = 0,
	HS_OPT_FLAG,   /* int, set to 1 */
	HS_OPT_STRING, /* const char * */
	HS_OPT_SIZE,   /* size_t, a non-negative integer */
} hs_cli_opt_kind;

typedef struct hs_cli_option {
	hs_cli_opt_kind kind;
	const char *long_name; /* without "--" */
	char short_name;       /* 0 if none */
	const char *arg;       /* placeholder shown in help, e.g. "N" */
	const char *help;
	size_t offset;         /* where the value goes in the command's struct */
} hs_cli_option;

/* Find a command in the table; NULL if none. */
const hs_cli_command *hs_cli_find(const char *name);
/* The table, alphabetical, terminated by a NULL name. */
extern const hs_cli_command hs_cli_commands[];

/*
 * Parse argv[1..] of `cmd` into `into` per cmd->options; positional
 * arguments are collected into pos (at most max_pos; more is a usage
 * error). With stop_at_positional, the first positional ends option parsing
 * and it and everything after are positional. "--" ends options.
 * @return -1 to continue, or an exit status to return (0 after --help,
 *         129 after a usage error, already reported).
 */
int hs_cli_parse(const hs_cli_command *cmd, int argc, const char **argv, void *into,
                 const char **pos, int max_pos, int *npos, int stop_at_positional);

/* Report a usage error (one message line and the usage line): returns 129. */
int hs_cli_usage_error(const hs_cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report hs_error_last() as "heapsnap: <message>": returns 2. */
int hs_cli_error(void);
/* Report a formatted error line: returns 2. */
int hs_cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print `heapsnap <cmd> --help`. */
void hs_cli_print_command_help(const hs_cli_command *cmd, FILE *f);
/* Flush stdout and report a write failure: returns 0 or 2. */
int hs_cli_finish_output(void);
/* Print a cJSON tree to stdout and free it; returns an exit status. */
int hs_cli_print_json(cJSON *json);
/* Open a snapshot, or report the error; returns 0 or 2. */
int hs_cli_open(hs_snapshot **out, const char *path);

/* select.c: --address parsing (returns -1 to continue, or 129 after a usage
 * error), lookups (0, or 2 after reporting), selection by --type or address
 * (*out hs_free'd by the caller; 0 objects when the type has none). */
int hs_cli__address(const hs_cli_command *cmd, const char *text, uint64_t *out);
int hs_cli__find_address(uint32_t *out, const hs_snapshot *s, uint64_t address);
int hs_cli__select(uint32_t **out, size_t *count, const hs_snapshot *s, const char *type,
                   uint64_t address);

int cmd_diff(int argc, const char **argv);
int cmd_dominators(int argc, const char **argv);
int cmd_dump(int argc, const char **argv);
int cmd_garbage(int argc, const char **argv);
int cmd_graph(int argc, const char **argv);
int cmd_flamegraph(int argc, const char **argv);
int cmd_help(int argc, const char **argv);
int cmd_info(int argc, const char **argv);
int cmd_leaks(int argc, const char **argv);
int cmd_lines(int argc, const char **argv);
int cmd_paths(int argc, const char **argv);
int cmd_plot(int argc, const char **argv);
int cmd_record(int argc, const char **argv);
int cmd_retained(int argc, const char **argv);
int cmd_run(int argc, const char **argv);
int cmd_stats(int argc, const char **argv);
int cmd_summary(int argc, const char **argv);
int cmd_timeline(int argc, const char **argv);

extern const hs_cli_option hs_cli_opts_diff[];
extern const hs_cli_option hs_cli_opts_dominators[];
extern const hs_cli_option hs_cli_opts_dump[];
extern const hs_cli_option hs_cli_opts_garbage[];
extern const hs_cli_option hs_cli_opts_graph[];
extern const hs_cli_option hs_cli_opts_flamegraph[];
extern const hs_cli_option hs_cli_opts_help[];
extern const hs_cli_option hs_cli_opts_info[];
extern const hs_cli_option hs_cli_opts_leaks[];
extern const hs_cli_option hs_cli_opts_lines[];
extern const hs_cli_option hs_cli_opts_paths[];
extern const hs_cli_option hs_cli_opts_plot[];
extern const hs_cli_option hs_cli_opts_record[];
extern const hs_cli_option hs_cli_opts_retained[];
extern const hs_cli_option hs_cli_opts_run[];
extern const hs_cli_option hs_cli_opts_stats[];
extern const hs_cli_option hs_cli_opts_summary[];
extern const hs_cli_option hs_cli_opts_timeline[];

#endif
