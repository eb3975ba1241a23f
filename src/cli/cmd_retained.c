/* cli/cmd_retained.c: `heapsnap retained SNAP [--top N] [--by object|type|package] [--json]`. */
#include <stddef.h>
#include <string.h>
#include "cli/cli.h"
#include "heapsnap/packages.h"

typedef struct retained_args {
	int json;
	size_t top;
	const char *by;
} retained_args;

const hs_cli_option hs_cli_opts_retained[] = {
	{ HS_OPT_SIZE, "top", 0, "N", "show the N largest rows (default 25; 0: all)",
	  offsetof(retained_args, top) },
	{ HS_OPT_STRING, "by", 0, "object|type|package",
	  "objects with the largest retained size, each with its path (default), retained "
	  "size per type, or per top-level package (what its modules retain, and the resident "
	  "size of its extension modules)", offsetof(retained_args, by) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/retained.schema.json)",
	  offsetof(retained_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

static int by_package(const char *path, const retained_args *args)
{
	hs_snapshot *s = NULL;
	hs_packages *p = NULL;
	int rc = hs_cli_open(&s, path);
	if (rc != 0)
		return rc;
	if (hs_packages_compute(&p, s) < 0) {
		rc = hs_cli_error();
	} else if (args->json) {
		cJSON *j;
		rc = hs_render_packages_json(&j, s, p, args->top) < 0 ? hs_cli_error()
		                                                      : hs_cli_print_json(j);
	} else {
		rc = hs_render_packages_text(stdout, s, p, args->top) < 0 ? hs_cli_error()
		                                                          : hs_cli_finish_output();
	}
	hs_packages_free(p);
	hs_snapshot_free(s);
	return rc;
}

int cmd_retained(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("retained");
	retained_args args = { 0, 25, NULL };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	int by_type;
	if (!args.by || !strcmp(args.by, "object"))
		by_type = 0;
	else if (!strcmp(args.by, "type"))
		by_type = 1;
	else if (!strcmp(args.by, "package"))
		by_type = 2;
	else
		return hs_cli_usage_error(self, "--by expects 'object', 'type' or 'package', not '%s'",
		                          args.by);
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot");
	if (by_type == 2)
		return by_package(pos[0], &args);
	hs_snapshot *s = NULL;
	hs_dominators *d = NULL;
	hs_reach *r = NULL;
	if ((rc = hs_cli_open(&s, pos[0])) != 0)
		return rc;
	hs_dominators_options dopt = HS_DOMINATORS_OPTIONS_INIT;
	dopt.type_sizes = by_type;
	if (hs_dominators_compute(&d, s, &dopt) < 0 || (!by_type && hs_reach_compute(&r, s, NULL) < 0)) {
		rc = hs_cli_error();
	} else if (args.json) {
		cJSON *j;
		rc = hs_render_retained_json(&j, s, d, r, by_type, args.top) < 0 ? hs_cli_error()
		                                                                 : hs_cli_print_json(j);
	} else {
		rc = hs_render_retained_text(stdout, s, d, r, by_type, args.top) < 0
		     ? hs_cli_error() : hs_cli_finish_output();
	}
	hs_reach_free(r);
	hs_dominators_free(d);
	hs_snapshot_free(s);
	return rc;
}
