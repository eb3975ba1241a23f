/* cli/cmd_info.c: `heapsnap info SNAP|REC [--json]`: a snapshot's metadata and
 * contents, or a recording's overview (cli/recording.c). */
#include <stddef.h>
#include "cli/cli.h"
#include "cli/recording.h"

typedef struct info_args {
	int json;
} info_args;

const hs_cli_option hs_cli_opts_info[] = {
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/info.schema.json)",
	  offsetof(info_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_info(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("info");
	info_args args = { 0 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot");
	if (hs_cli_is_recording(pos[0]))
		return hs_cli_recording_overview(pos[0], args.json);
	hs_snapshot *s;
	if ((rc = hs_cli_open(&s, pos[0])) != 0)
		return rc;
	if (args.json) {
		cJSON *j;
		rc = hs_render_info_json(&j, s) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_info_text(stdout, s) < 0 ? hs_cli_error() : hs_cli_finish_output();
	}
	hs_snapshot_free(s);
	return rc;
}
