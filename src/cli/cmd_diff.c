/*
 * cli/cmd_diff.c: `heapsnap diff A B [--top N] [--by type|module] [--json] [--exit-code]`.
 * A and B are two snapshots, or two indexes of `dump --children` (compared
 * process by process, heapsnap/procset.h).
 */
#include <stddef.h>
#include "cli/cli.h"
#include "heapsnap/procset.h"

typedef struct diff_args {
	int json;
	int exit_code;
	size_t top;
	const char *by;
} diff_args;

const hs_cli_option hs_cli_opts_diff[] = {
	{ HS_OPT_SIZE, "top", 0, "N", "show the N rows that grew most (default 25; 0: all)",
	  offsetof(diff_args, top) },
	{ HS_OPT_STRING, "by", 0, "type|module", "group by type (default) or by module",
	  offsetof(diff_args, by) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/diff.schema.json)",
	  offsetof(diff_args, json) },
	{ HS_OPT_FLAG, "exit-code", 0, NULL,
	  "exit with 1 when some type grew in objects or bytes, 0 otherwise",
	  offsetof(diff_args, exit_code) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int hs_cli__group_by(const hs_cli_command *cmd, const char *by, hs_group_by *out);

static int stop_at_totals(const hs_totals *t, uint32_t python_version, void *payload)
{
	(void)t;
	(void)python_version;
	(void)payload;
	return HS_EUSER; /* the container is valid up to its index: enough here */
}

/* 0 when `path` is a valid file of the kind sniffed (an index, or a
 * snapshot's container), else the error reported (exit 2). */
static int check_kind(const char *path, int index)
{
	if (index) {
		hs_procset *s = NULL;
		int rc = hs_procset_open(&s, path);
		hs_procset_free(s);
		return rc < 0 ? hs_cli_error() : 0;
	}
	hs_read_visitor v = { .version = HS_READ_VISITOR_VERSION, .totals = stop_at_totals };
	int rc = hs_format_read(path, &v, NULL);
	if (rc < 0 && rc != HS_EUSER)
		return hs_cli_error();
	hs_error_clear();
	return 0;
}

/* `diff INDEX_A INDEX_B`: processes matched by pid, per process and summed. */
static int diff_sets(const char *pa, const char *pb, const hs_diff_options *dopt,
                     const diff_args *args)
{
	hs_procset *a = NULL, *b = NULL;
	hs_procset_diff *d = NULL;
	int rc = 0;
	if (hs_procset_open(&a, pa) < 0 || hs_procset_open(&b, pb) < 0) {
		rc = hs_cli_error();
		goto done;
	}
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = args->top;
	if (hs_procset_diff_build(&d, a, b, dopt) < 0) {
		rc = hs_cli_error();
	} else if (args->json) {
		cJSON *j;
		rc = hs_render_procset_diff_json(&j, d, &ro) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_procset_diff_text(stdout, d, &ro) < 0 ? hs_cli_error()
		                                                     : hs_cli_finish_output();
	}
	if (rc == 0 && args->exit_code && d->grew)
		rc = HS_EXIT_FOUND;
done:
	hs_procset_diff_free(d);
	hs_procset_free(a);
	hs_procset_free(b);
	return rc;
}

int cmd_diff(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("diff");
	diff_args args = { 0, 0, 25, NULL };
	const char *pos[2];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 2, &npos, 0);
	if (rc >= 0)
		return rc;
	hs_diff_options dopt = HS_DIFF_OPTIONS_INIT;
	if ((rc = hs_cli__group_by(self, args.by, &dopt.by)) >= 0)
		return rc;
	if (npos != 2)
		return hs_cli_usage_error(self, "expected two snapshots");
	int ia = hs_procset_sniff(pos[0]), ib = hs_procset_sniff(pos[1]);
	if (ia != ib) {
		/* the sniff only looks at the name and the first byte: a damaged
		 * file is bad input (exit 2), not a mix of kinds (usage) */
		if ((rc = check_kind(pos[0], ia)) != 0 || (rc = check_kind(pos[1], ib)) != 0)
			return rc;
		return hs_cli_usage_error(self, "cannot compare a snapshot with an index: '%s' is %s, "
		                          "'%s' is %s", pos[0], ia ? "an index" : "a snapshot", pos[1],
		                          ib ? "an index" : "a snapshot");
	}
	if (ia)
		return diff_sets(pos[0], pos[1], &dopt, &args);
	hs_snapshot *a = NULL, *b = NULL;
	hs_diff *d = NULL;
	if ((rc = hs_cli_open(&a, pos[0])) != 0 || (rc = hs_cli_open(&b, pos[1])) != 0)
		goto done;
	hs_render_options ro = HS_RENDER_OPTIONS_INIT;
	ro.top = args.top;
	if (hs_analysis_diff(&d, a, b, &dopt) < 0) {
		rc = hs_cli_error();
	} else if (args.json) {
		cJSON *j;
		rc = hs_render_diff_json(&j, a, b, d, &ro) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_diff_text(stdout, a, b, d, &ro) < 0 ? hs_cli_error()
		                                                   : hs_cli_finish_output();
	}
	if (rc == 0 && args.exit_code && d->grew)
		rc = HS_EXIT_FOUND;
done:
	hs_diff_free(d);
	hs_snapshot_free(a);
	hs_snapshot_free(b);
	return rc;
}
