/* cli/cmd_leaks.c: `heapsnap leaks A B C... [--top N] [--json] [--exit-code]`. */
#include <stddef.h>
#include "cli/cli.h"
#include "util/alloc.h"

#define MAX_SNAPSHOTS 256

typedef struct leaks_args {
	int json;
	int exit_code;
	size_t top;
} leaks_args;

const hs_cli_option hs_cli_opts_leaks[] = {
	{ HS_OPT_SIZE, "top", 0, "N",
	  "describe the N leaking types and growing objects that grew most (default 10; 0: all)",
	  offsetof(leaks_args, top) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/leaks.schema.json)",
	  offsetof(leaks_args, json) },
	{ HS_OPT_FLAG, "exit-code", 0, NULL, "exit with 1 when something grows, 0 otherwise",
	  offsetof(leaks_args, exit_code) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

/* Open the snapshots and find the leaks (shared with `graph --leak`).
 * Returns 0 or an exit status (error already reported). */
int hs_cli__leaks(hs_leaks **out, hs_snapshot **snaps, const char **paths, int n, size_t top)
{
	*out = NULL;
	for (int i = 0; i < n; i++) {
		int rc = hs_cli_open(&snaps[i], paths[i]);
		if (rc)
			return rc;
	}
	hs_leaks_options lo = HS_LEAKS_OPTIONS_INIT;
	lo.top_types = top;
	lo.top_objects = top;
	if (hs_leaks_find(out, (const hs_snapshot *const *)snaps, (size_t)n, &lo) < 0)
		return hs_cli_error();
	return 0;
}

int cmd_leaks(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("leaks");
	leaks_args args = { 0, 0, 10 };
	const char *pos[MAX_SNAPSHOTS];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, MAX_SNAPSHOTS, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos < 3)
		return hs_cli_usage_error(self, "expected 3 or more snapshots of one process, oldest "
		                          "first (%d given)", npos);
	hs_snapshot *snaps[MAX_SNAPSHOTS] = { 0 };
	hs_leaks *l = NULL;
	if ((rc = hs_cli__leaks(&l, snaps, pos, npos, args.top)) != 0)
		goto done;
	const hs_snapshot *const *cs = (const hs_snapshot *const *)snaps;
	if (args.json) {
		cJSON *j;
		rc = hs_render_leaks_json(&j, cs, l) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_leaks_text(stdout, cs, l) < 0 ? hs_cli_error() : hs_cli_finish_output();
	}
	if (rc == 0 && args.exit_code && l->found)
		rc = HS_EXIT_FOUND;
done:
	hs_leaks_free(l);
	for (int i = 0; i < npos; i++)
		hs_snapshot_free(snaps[i]);
	return rc;
}
