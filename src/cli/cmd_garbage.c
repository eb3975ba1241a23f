/* cli/cmd_garbage.c: `heapsnap garbage SNAP [--top N] [--json]`. */
#include <stddef.h>
#include "cli/cli.h"

typedef struct garbage_args {
	int json;
	size_t top;
} garbage_args;

const hs_cli_option hs_cli_opts_garbage[] = {
	{ HS_OPT_SIZE, "top", 0, "N", "show the N largest types and cycles (default 25; 0: all)",
	  offsetof(garbage_args, top) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/garbage.schema.json)",
	  offsetof(garbage_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_garbage(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("garbage");
	garbage_args args = { 0, 25 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot");
	hs_snapshot *s = NULL;
	hs_garbage *g = NULL;
	if ((rc = hs_cli_open(&s, pos[0])) != 0)
		return rc;
	hs_garbage_options go = HS_GARBAGE_OPTIONS_INIT;
	go.cycle_limit = args.top;
	if (hs_garbage_compute(&g, s, NULL, &go) < 0) {
		rc = hs_cli_error();
	} else if (args.json) {
		cJSON *j;
		rc = hs_render_garbage_json(&j, s, g, args.top) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_garbage_text(stdout, s, g, args.top) < 0 ? hs_cli_error()
		                                                        : hs_cli_finish_output();
	}
	hs_garbage_free(g);
	hs_snapshot_free(s);
	return rc;
}
