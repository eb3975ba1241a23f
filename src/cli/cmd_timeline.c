/* cli/cmd_timeline.c: `heapsnap timeline REC [--json] [--samples] [--max-samples N]`. */
#include <stddef.h>
#include "cli/cli.h"
#include "cli/recording.h"

typedef struct timeline_args {
	int json;
	int samples;
	size_t max_samples;
} timeline_args;

const hs_cli_option hs_cli_opts_timeline[] = {
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON with every sample (formats/timeline.schema.json)",
	  offsetof(timeline_args, json) },
	{ HS_OPT_FLAG, "samples", 0, NULL, "list each process's samples too",
	  offsetof(timeline_args, samples) },
	{ HS_OPT_SIZE, "max-samples", 0, "N", "at most N samples per process (each kept sample the "
	  "highest RSS of its stretch; default: all)", offsetof(timeline_args, max_samples) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_timeline(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("timeline");
	timeline_args args = { 0, 0, 0 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one recording");
	hs_recording *r;
	if ((rc = hs_cli_recording_open(&r, pos[0])) != 0)
		return rc;
	hs_timeline *t;
	if (hs_timeline_build(&t, r, NULL) < 0) {
		hs_recording_free(r);
		return hs_cli_error();
	}
	hs_timeline_render_options o = HS_TIMELINE_RENDER_OPTIONS_INIT;
	o.samples = args.samples;
	o.max_samples = args.max_samples;
	if (args.json) {
		cJSON *j;
		rc = hs_render_timeline_json(&j, r, t, &o) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_timeline_text(stdout, r, t, &o) < 0 ? hs_cli_error()
		                                                   : hs_cli_finish_output();
	}
	hs_timeline_free(t);
	hs_recording_free(r);
	return rc;
}
