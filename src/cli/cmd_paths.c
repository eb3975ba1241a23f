/* cli/cmd_paths.c: `heapsnap paths SNAP (--type T | --address A) [--limit N] [--max-depth D] [--json]`. */
#include <inttypes.h>
#include <stddef.h>
#include "cli/cli.h"
#include "util/alloc.h"

typedef struct paths_args {
	int json;
	const char *type, *address;
	size_t limit, max_depth;
} paths_args;

const hs_cli_option hs_cli_opts_paths[] = {
	{ HS_OPT_STRING, "type", 0, "T", "the objects of type T (full name, e.g. app.models.User)",
	  offsetof(paths_args, type) },
	{ HS_OPT_STRING, "address", 0, "A", "the object at address A (0x... or decimal)",
	  offsetof(paths_args, address) },
	{ HS_OPT_SIZE, "limit", 0, "N", "show the N largest aggregated paths (default 20; 0: all)",
	  offsetof(paths_args, limit) },
	{ HS_OPT_SIZE, "max-depth", 0, "D",
	  "keep D references from the root side of each path, elide the rest "
	  "(default 64; 0: all, which can be slow on very deep structures)",
	  offsetof(paths_args, max_depth) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/paths.schema.json)",
	  offsetof(paths_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_paths(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("paths");
	/* 64 steps: deeper paths are unreadable, and a million-long linked
	 * list would otherwise cost a walk of every path to its root */
	paths_args args = { 0, NULL, NULL, 20, 64 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot");
	if (!args.type == !args.address)
		return hs_cli_usage_error(self, "select objects with either --type or --address");
	if (args.max_depth > UINT32_MAX)
		return hs_cli_usage_error(self, "--max-depth is too large");
	uint64_t address = 0;
	if (args.address && (rc = hs_cli__address(self, args.address, &address)) >= 0)
		return rc;
	hs_snapshot *s = NULL;
	uint32_t *sel = NULL;
	size_t n = 0;
	hs_paths *p = NULL;
	if ((rc = hs_cli_open(&s, pos[0])) != 0 || (rc = hs_cli__select(&sel, &n, s, args.type, address)) != 0)
		goto done;
	hs_paths_options po = HS_PATHS_OPTIONS_INIT;
	po.limit = args.limit;
	po.max_depth = (uint32_t)args.max_depth;
	if (hs_paths_find(&p, s, NULL, sel, n, &po) < 0) {
		rc = hs_cli_error();
		goto done;
	}
	if (args.json) {
		cJSON *j;
		if (hs_render_paths_json(&j, s, p) < 0) {
			rc = hs_cli_error();
			goto done;
		}
		cJSON *q = cJSON_CreateObject();
		if (args.type)
			cJSON_AddStringToObject(q, "type", args.type);
		else {
			char a[24];
			snprintf(a, sizeof(a), "0x%" PRIx64, address);
			cJSON_AddStringToObject(q, "address", a);
		}
		cJSON_AddNumberToObject(q, "limit", (double)args.limit);
		cJSON_AddNumberToObject(q, "max_depth", (double)args.max_depth);
		cJSON_AddItemToObject(j, "query", q);
		rc = hs_cli_print_json(j);
	} else {
		char what[512];
		if (args.type)
			snprintf(what, sizeof(what), "objects of type '%s'", args.type);
		else
			snprintf(what, sizeof(what), "the object at 0x%" PRIx64, address);
		rc = hs_render_paths_text(stdout, s, p, what) < 0 ? hs_cli_error() : hs_cli_finish_output();
	}
done:
	hs_paths_free(p);
	hs_free(sel);
	hs_snapshot_free(s);
	return rc;
}
