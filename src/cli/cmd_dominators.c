/* cli/cmd_dominators.c: `heapsnap dominators SNAP --address A [--json]`. */
#include <stddef.h>
#include "cli/cli.h"
#include "util/alloc.h"

typedef struct dominators_args {
	int json;
	const char *address;
} dominators_args;

const hs_cli_option hs_cli_opts_dominators[] = {
	{ HS_OPT_STRING, "address", 0, "A", "the object at address A (0x... or decimal)",
	  offsetof(dominators_args, address) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/dominators.schema.json)",
	  offsetof(dominators_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

int cmd_dominators(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("dominators");
	dominators_args args = { 0, NULL };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one snapshot");
	if (!args.address)
		return hs_cli_usage_error(self, "name the object with --address");
	uint64_t address;
	if ((rc = hs_cli__address(self, args.address, &address)) >= 0)
		return rc;
	hs_snapshot *s = NULL;
	hs_dominators *d = NULL;
	hs_reach *r = NULL;
	uint32_t *chain = NULL, node;
	size_t n = 0;
	if ((rc = hs_cli_open(&s, pos[0])) != 0 || (rc = hs_cli__find_address(&node, s, address)) != 0)
		goto done;
	hs_dominators_options dopt = HS_DOMINATORS_OPTIONS_INIT;
	dopt.type_sizes = 0;
	if (hs_dominators_compute(&d, s, &dopt) < 0 || hs_reach_compute(&r, s, NULL) < 0 ||
	    hs_dominators_chain(&chain, &n, d, node) < 0) {
		rc = hs_cli_error();
	} else if (args.json) {
		cJSON *j;
		rc = hs_render_dominators_json(&j, s, d, r, node, chain, n) < 0 ? hs_cli_error()
		                                                                : hs_cli_print_json(j);
	} else {
		rc = hs_render_dominators_text(stdout, s, d, r, node, chain, n) < 0
		     ? hs_cli_error() : hs_cli_finish_output();
	}
done:
	hs_free(chain);
	hs_reach_free(r);
	hs_dominators_free(d);
	hs_snapshot_free(s);
	return rc;
}
