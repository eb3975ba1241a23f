/*
 * cli/cmd_summary.c: `heapsnap summary SNAP|INDEX [--top N] [--by type|module] [--json]`.
 * An index (`dump --children`, heapsnap/procset.h) is told from a snapshot by
 * its name (.hsidx) or its first byte ('{'); snapshots behave as always.
 */
#include <stddef.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/recording.h"
#include "heapsnap/procset.h"

typedef struct summary_args {
	int json;
	size_t top;
	const char *by;
} summary_args;

const hs_cli_option hs_cli_opts_summary[] = {
	{ HS_OPT_SIZE, "top", 0, "N", "show the N largest rows (default 25; 0: all)",
	  offsetof(summary_args, top) },
	{ HS_OPT_STRING, "by", 0, "type|module|site",
	  "group by type (default), the module that defines each type, or allocation site "
	  "(dumped while tracking)",
	  offsetof(summary_args, by) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/summary.schema.json)",
	  offsetof(summary_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

/* shared with cmd_diff.c */
int hs_cli__group_by(const hs_cli_command *cmd, const char *by, hs_group_by *out)
{
	if (!by || !strcmp(by, "type"))
		*out = HS_GROUP_TYPE;
	else if (!strcmp(by, "module"))
		*out = HS_GROUP_MODULE;
	else
		return hs_cli_usage_error(cmd, "--by expects 'type' or 'module', not '%s'", by);
	return -1;
}

/* `summary INDEX`: per process, totals (PSS, USS), types summed over the set. */
static int summary_set(const char *path, const hs_summary_options *so, size_t top, int json)
{
	hs_procset *set;
	if (hs_procset_open(&set, path) < 0)
		return hs_cli_error();
	hs_procset_summary *sum = NULL;
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = top;
	int rc;
	if (hs_procset_summary_build(&sum, set, so) < 0) {
		rc = hs_cli_error();
	} else if (json) {
		cJSON *j;
		rc = hs_render_procset_summary_json(&j, sum, &ro) < 0 ? hs_cli_error()
		                                                     : hs_cli_print_json(j);
	} else {
		rc = hs_render_procset_summary_text(stdout, sum, &ro) < 0 ? hs_cli_error()
		                                                          : hs_cli_finish_output();
	}
	hs_procset_summary_free(sum);
	hs_procset_free(set);
	return rc;
}

int cmd_summary(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("summary");
	summary_args args = { 0, 25, NULL };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	hs_summary_options so = HS_SUMMARY_OPTIONS_INIT;
	int by_site = args.by && !strcmp(args.by, "site");
	if (by_site)
		so.by = HS_GROUP_SITE;
	else if ((rc = hs_cli__group_by(self, args.by, &so.by)) >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot, index or recording");
	if (by_site && (hs_procset_sniff(pos[0]) || hs_cli_is_recording(pos[0])))
		return hs_cli_usage_error(self, "--by site needs a snapshot, not an index or a recording");
	if (hs_procset_sniff(pos[0]))
		return summary_set(pos[0], &so, args.top, args.json);
	if (hs_cli_is_recording(pos[0]))
		return hs_cli_recording_overview(pos[0], args.json);
	hs_snapshot *s;
	if ((rc = hs_cli_open(&s, pos[0])) != 0)
		return rc;
	hs_summary *sum = NULL;
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = args.top;
	if (hs_analysis_summary(&sum, s, &so) < 0) {
		rc = hs_cli_error();
	} else if (args.json) {
		cJSON *j;
		rc = hs_render_summary_json(&j, s, sum, &ro) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_summary_text(stdout, s, sum, &ro) < 0 ? hs_cli_error()
		                                                     : hs_cli_finish_output();
	}
	hs_summary_free(sum);
	hs_snapshot_free(s);
	return rc;
}
