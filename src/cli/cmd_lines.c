/* cli/cmd_lines.c: `heapsnap lines REC [--by live|peak|allocated] [--top N] [--file F]
 * [--function F] [--pid P] [--json]`: which lines allocated the memory. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/recording.h"
#include "heapsnap/lines.h"

typedef struct lines_args {
	const char *by;
	size_t top;
	const char *file;
	const char *function;
	const char *pid;
	int json;
} lines_args;

const hs_cli_option hs_cli_opts_lines[] = {
	{ HS_OPT_STRING, "by", 0, "live|peak|allocated", "sort by bytes live at the end (default), "
	  "held at the peak, or allocated", offsetof(lines_args, by) },
	{ HS_OPT_SIZE, "top", 0, "N", "show the N first lines (default 20; 0: all)", offsetof(lines_args, top) },
	{ HS_OPT_STRING, "file", 0, "F", "only lines of files whose path contains F", offsetof(lines_args, file) },
	{ HS_OPT_STRING, "function", 0, "F", "only lines of functions whose name contains F",
	  offsetof(lines_args, function) },
	{ HS_OPT_STRING, "pid", 'p', "PID", "only process PID (default: every tracked process)",
	  offsetof(lines_args, pid) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/lines.schema.json)", offsetof(lines_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

/* --by / --live|--peak|--allocated: shared with flamegraph through this parser */
static int parse_by(const char *s, hs_lines_by *out)
{
	if (!strcmp(s, "live"))
		*out = HS_LINES_BY_LIVE;
	else if (!strcmp(s, "peak"))
		*out = HS_LINES_BY_PEAK;
	else if (!strcmp(s, "allocated") || !strcmp(s, "alloc"))
		*out = HS_LINES_BY_ALLOCATED;
	else
		return -1;
	return 0;
}

int cmd_lines(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("lines");
	lines_args a = { NULL, 20, NULL, NULL, NULL, 0 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &a, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one recording");
	hs_lines_options o = HS_LINES_OPTIONS_INIT;
	if (a.by && parse_by(a.by, &o.by) < 0)
		return hs_cli_usage_error(self, "--by expects live, peak or allocated, not '%s'", a.by);
	if (a.pid) {
		char *end;
		long v = strtol(a.pid, &end, 10);
		if (!a.pid[0] || *end || v <= 0 || v > 0x7fffffff)
			return hs_cli_usage_error(self, "'%s' is not a process id", a.pid);
		o.pid = (int)v;
	}
	o.top = a.top;
	o.file = a.file;
	o.function = a.function;
	hs_recording *r;
	if ((rc = hs_cli_recording_open(&r, pos[0])) != 0)
		return rc;
	hs_lines *l;
	if (hs_lines_build(&l, r, &o) < 0) {
		rc = hs_cli_errorf("cannot list the lines of '%s': %s", pos[0], hs_error_last());
		hs_recording_free(r);
		return rc;
	}
	if (a.json) {
		cJSON *j;
		rc = hs_render_lines_json(&j, l, o.by) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_lines_text(stdout, l, o.by) < 0 ? hs_cli_error() : hs_cli_finish_output();
	}
	hs_lines_free(l);
	hs_recording_free(r);
	return rc;
}
