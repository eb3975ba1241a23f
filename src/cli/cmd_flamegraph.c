/* cli/cmd_flamegraph.c: `heapsnap flamegraph REC [--live|--peak|--allocated] [--pid P]
 * -o FILE.svg`: allocation stacks as a flame graph, written by heapsnap itself. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/recording.h"
#include "heapsnap/lines.h"
#include "util/alloc.h"
#include "util/file.h"

typedef struct flame_args {
	int live, peak, allocated;
	const char *pid;
	const char *out;
	const char *title;
	size_t width;
} flame_args;

const hs_cli_option hs_cli_opts_flamegraph[] = {
	{ HS_OPT_FLAG, "live", 0, NULL, "widths: bytes live at the end (default)", offsetof(flame_args, live) },
	{ HS_OPT_FLAG, "peak", 0, NULL, "widths: bytes live at the peak", offsetof(flame_args, peak) },
	{ HS_OPT_FLAG, "allocated", 0, NULL, "widths: bytes allocated over the run",
	  offsetof(flame_args, allocated) },
	{ HS_OPT_STRING, "pid", 'p', "PID", "only process PID (default: every tracked process)",
	  offsetof(flame_args, pid) },
	{ HS_OPT_STRING, "out", 'o', "FILE.svg", "write the SVG to FILE.svg (required)", offsetof(flame_args, out) },
	{ HS_OPT_STRING, "title", 0, "T", "the graph's title", offsetof(flame_args, title) },
	{ HS_OPT_SIZE, "width", 0, "W", "width in pixels (default 1200)", offsetof(flame_args, width) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_flamegraph(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("flamegraph");
	flame_args a = { 0, 0, 0, NULL, NULL, NULL, 1200 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &a, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one recording");
	if (a.live + a.peak + a.allocated > 1)
		return hs_cli_usage_error(self, "give one of --live, --peak and --allocated");
	if (!a.out)
		return hs_cli_usage_error(self, "expected -o FILE.svg");
	if (a.width < 200 || a.width > 100000)
		return hs_cli_usage_error(self, "--width expects 200 to 100000 pixels");
	hs_flame_options o = HS_FLAME_OPTIONS_INIT;
	o.by = a.peak ? HS_LINES_BY_PEAK : a.allocated ? HS_LINES_BY_ALLOCATED : HS_LINES_BY_LIVE;
	o.title = a.title;
	o.width = (int)a.width;
	if (a.pid) {
		char *end;
		long v = strtol(a.pid, &end, 10);
		if (!a.pid[0] || *end || v <= 0 || v > 0x7fffffff)
			return hs_cli_usage_error(self, "'%s' is not a process id", a.pid);
		o.pid = (int)v;
	}
	hs_recording *r;
	if ((rc = hs_cli_recording_open(&r, pos[0])) != 0)
		return rc;
	/* a temporary file beside the output (0600, O_EXCL|O_NOFOLLOW), renamed
	 * once complete (util/file.h) */
	hs_file_out file = HS_FILE_OUT_INIT;
	FILE *f = NULL;
	if (hs_file_out_open(&file, a.out) < 0 || !(f = hs_file_out_stream(&file, "w"))) {
		rc = hs_cli_error();
		goto done;
	}
	if (hs_flamegraph_svg(f, r, &o) < 0) {
		rc = hs_cli_errorf("cannot draw the flame graph of '%s': %s", pos[0], hs_error_last());
		fclose(f);
		goto done;
	}
	rc = hs_file_out_commit_stream(&file, f, 0) < 0 ? hs_cli_error() : 0;
done:
	hs_file_out_release(&file);
	hs_recording_free(r);
	return rc;
}
