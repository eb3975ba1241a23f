/*
 * cli/cmd_graph.c:
 *   heapsnap graph SNAP (--type T | --address A) [--backrefs|--refs] [--depth N]
 *                  [--max-nodes N] [--filter EXPR] -o OUT.{svg,png,pdf,dot} [--json]
 *   heapsnap graph --leak A B C... -o OUT.{svg,png,pdf,dot} [--json]
 */
#include <stddef.h>
#include "cli/cli.h"
#include "heapsnap/graphviz.h"
#include "util/alloc.h"

#define MAX_SNAPSHOTS 256

typedef struct graph_args {
	int json, backrefs, refs, leak;
	const char *type, *address, *filter, *out;
	size_t depth, max_nodes, fanin;
} graph_args;

const hs_cli_option hs_cli_opts_graph[] = {
	{ HS_OPT_STRING, "type", 0, "T", "start from the objects of type T",
	  offsetof(graph_args, type) },
	{ HS_OPT_STRING, "address", 0, "A", "start from the object at address A",
	  offsetof(graph_args, address) },
	{ HS_OPT_FLAG, "backrefs", 0, NULL, "draw what refers to them, up to the roots (default)",
	  offsetof(graph_args, backrefs) },
	{ HS_OPT_FLAG, "refs", 0, NULL, "draw what they refer to", offsetof(graph_args, refs) },
	{ HS_OPT_SIZE, "depth", 0, "N", "follow references N steps away (default 5)",
	  offsetof(graph_args, depth) },
	{ HS_OPT_SIZE, "max-nodes", 0, "N", "draw N nodes at most (default 100; 0: no limit)",
	  offsetof(graph_args, max_nodes) },
	{ HS_OPT_SIZE, "fanin", 0, "N",
	  "collapse more than N objects of one type meeting one object into one node (default 8)",
	  offsetof(graph_args, fanin) },
	{ HS_OPT_STRING, "filter", 0, "EXPR",
	  "draw only types passing EXPR: comma-separated type=NAME, type!=NAME, type=~REGEX, "
	  "type!~REGEX (all must hold)", offsetof(graph_args, filter) },
	{ HS_OPT_FLAG, "leak", 0, NULL,
	  "draw the root cause of the biggest leak across the snapshots given (as 'leaks')",
	  offsetof(graph_args, leak) },
	{ HS_OPT_STRING, "output", 'o', "FILE",
	  "write the graph to FILE; its extension names the format: svg, png, pdf or dot",
	  offsetof(graph_args, out) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print what was drawn as JSON (formats/graph.schema.json)",
	  offsetof(graph_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

static int report(const graph_args *a, const hs_graphviz *g, const char *fmt, const char *what)
{
	const hs_graphviz_stats *st = hs_graphviz_stats_get(g);
	if (a->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "output", a->out);
		cJSON_AddStringToObject(j, "format", fmt);
		cJSON_AddStringToObject(j, "kind", a->leak ? "leak" : a->refs ? "refs" : "backrefs");
		cJSON_AddNumberToObject(j, "nodes", (double)st->nodes);
		cJSON_AddNumberToObject(j, "edges", (double)st->edges);
		cJSON_AddNumberToObject(j, "selected", (double)st->selected);
		cJSON_AddNumberToObject(j, "roots", (double)st->roots);
		cJSON_AddNumberToObject(j, "collapsed", (double)st->collapsed);
		cJSON_AddNumberToObject(j, "objects", (double)st->objects);
		cJSON_AddBoolToObject(j, "truncated", st->truncated);
		if (what)
			cJSON_AddStringToObject(j, "leak", what);
		return hs_cli_print_json(j);
	}
	printf("wrote %s: %zu nodes (%zu collapsed), %zu edges%s\n", a->out, st->nodes, st->collapsed,
	       st->edges, st->truncated ? "; cut at --max-nodes" : "");
	return hs_cli_finish_output();
}

int hs_cli__leaks(hs_leaks **out, hs_snapshot **snaps, const char **paths, int n, size_t top);

int cmd_graph(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("graph");
	graph_args a = { 0 };
	a.depth = 5;
	a.max_nodes = 100;
	a.fanin = 8;
	const char *pos[MAX_SNAPSHOTS];
	int npos, rc = hs_cli_parse(self, argc, argv, &a, pos, MAX_SNAPSHOTS, &npos, 0);
	if (rc >= 0)
		return rc;
	if (!a.out)
		return hs_cli_usage_error(self, "name the output file with -o FILE.{svg,png,pdf,dot}");
	const char *fmt = hs_graphviz_format_of(a.out);
	if (!fmt)
		return hs_cli_usage_error(self, "cannot tell the format of '%s': use a .svg, .png, .pdf "
		                          "or .dot file name", a.out);
	if (a.backrefs && a.refs)
		return hs_cli_usage_error(self, "--backrefs and --refs exclude each other");
	if (a.depth > UINT32_MAX)
		return hs_cli_usage_error(self, "--depth is too large");
	hs_snapshot *snaps[MAX_SNAPSHOTS] = { 0 };
	int nsnaps = 0;
	hs_graphviz *g = NULL;
	hs_graphviz_filter *filter = NULL;
	uint32_t *sel = NULL;
	size_t nsel = 0;
	hs_leaks *l = NULL;
	hs_dominators *d = NULL;
	char what[1024];
	if (a.leak) {
		if (a.type || a.address || a.filter || a.refs || a.backrefs)
			return hs_cli_usage_error(self, "--leak draws the root cause of the biggest leak: "
			                          "--type, --address, --filter, --refs and --backrefs do not apply");
		if (npos < 3)
			return hs_cli_usage_error(self, "--leak expects 3 or more snapshots of one process, "
			                          "oldest first (%d given)", npos);
		nsnaps = npos;
		if ((rc = hs_cli__leaks(&l, snaps, pos, npos, 1)) != 0)
			goto done;
		if (!l->type_count) {
			rc = hs_cli_errorf("nothing to draw: no type grows in every interval across %d "
			                   "snapshots", npos);
			goto done;
		}
		const hs_snapshot *last = snaps[npos - 1];
		hs_render_leak_cause(what, sizeof(what), last, l, &l->types[0]);
		if (hs_graphviz_build_leak(&g, last, l, 0) < 0) {
			rc = hs_cli_error();
			goto done;
		}
	} else {
		if (npos != 1)
			return hs_cli_usage_error(self, "expected one snapshot (or --leak and 3 or more)");
		if (!a.type == !a.address)
			return hs_cli_usage_error(self, "select objects with either --type or --address");
		uint64_t address = 0;
		if (a.address && (rc = hs_cli__address(self, a.address, &address)) >= 0)
			return rc;
		if (a.filter && hs_graphviz_filter_parse(&filter, a.filter) < 0)
			return hs_cli_usage_error(self, "%s", hs_error_last());
		nsnaps = 1;
		if ((rc = hs_cli_open(&snaps[0], pos[0])) != 0 ||
		    (rc = hs_cli__select(&sel, &nsel, snaps[0], a.type, address)) != 0)
			goto done;
		if (!nsel) {
			rc = hs_cli_errorf("nothing to draw: no object of type '%s' in '%s'", a.type,
			                   hs_snapshot_path(snaps[0]));
			goto done;
		}
		hs_dominators_options dopt = HS_DOMINATORS_OPTIONS_INIT;
		dopt.type_sizes = 0;
		hs_graphviz_options go = HS_GRAPHVIZ_OPTIONS_INIT;
		go.direction = a.refs ? HS_GRAPHVIZ_REFS : HS_GRAPHVIZ_BACKREFS;
		go.depth = (uint32_t)a.depth;
		go.max_nodes = a.max_nodes;
		go.fanin = a.fanin;
		go.filter = filter;
		if (hs_dominators_compute(&d, snaps[0], &dopt) < 0) {
			rc = hs_cli_error();
			goto done;
		}
		go.dominators = d;
		if (hs_graphviz_build(&g, snaps[0], sel, nsel, &go) < 0) {
			rc = hs_cli_error();
			goto done;
		}
	}
	if (hs_graphviz_render(g, a.out, fmt) < 0) {
		rc = hs_cli_error();
		goto done;
	}
	rc = report(&a, g, fmt, a.leak ? what : NULL);
done:
	hs_graphviz_free(g);
	hs_graphviz_filter_free(filter);
	hs_dominators_free(d);
	hs_leaks_free(l);
	hs_free(sel);
	for (int i = 0; i < nsnaps; i++)
		hs_snapshot_free(snaps[i]);
	return rc;
}
