/*
 * cli/cmd_plot.c: `heapsnap plot REC -o FILE.{png,svg,pdf} [--metric rss|uss|pss]
 * [--stacked] [--from T] [--to T] [--width W] [--height H] [--title T] [--top N]
 * [--types N] [--json]`: memory over time, drawn in-process with cairo.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/recording.h"
#include "heapsnap/plot.h"

typedef struct plot_args {
	const char *out, *metric, *from, *to, *title;
	int stacked, json;
	size_t width, height, top, types;
} plot_args;

const hs_cli_option hs_cli_opts_plot[] = {
	{ HS_OPT_STRING, "output", 'o', "FILE",
	  "write the plot to FILE; its extension names the format: png, svg or pdf",
	  offsetof(plot_args, out) },
	{ HS_OPT_STRING, "metric", 0, "M", "rss, uss or pss (default: pss when the recording "
	  "measured it, else rss)", offsetof(plot_args, metric) },
	{ HS_OPT_FLAG, "stacked", 0, NULL, "stack the processes: the top is the whole tree",
	  offsetof(plot_args, stacked) },
	{ HS_OPT_STRING, "from", 0, "T", "start at T from the start of the recording (90, 90s, "
	  "2min, 1m30s, 1:30)", offsetof(plot_args, from) },
	{ HS_OPT_STRING, "to", 0, "T", "end at T from the start of the recording",
	  offsetof(plot_args, to) },
	{ HS_OPT_SIZE, "width", 0, "W", "width in pixels (default 1200)",
	  offsetof(plot_args, width) },
	{ HS_OPT_SIZE, "height", 0, "H", "height in pixels (default 600, 800 with the Python "
	  "types panel)", offsetof(plot_args, height) },
	{ HS_OPT_STRING, "title", 0, "T", "the title (default: Memory of <command>)",
	  offsetof(plot_args, title) },
	{ HS_OPT_SIZE, "top", 0, "N", "draw the N processes with the highest peaks on their own, "
	  "the others as one series (default 10)", offsetof(plot_args, top) },
	{ HS_OPT_SIZE, "types", 0, "N", "Python types in the second panel (default 6, at most 10; "
	  "0: no panel)", offsetof(plot_args, types) },
	{ HS_OPT_FLAG, "json", 0, NULL, "print what was drawn as JSON (formats/plot.schema.json)",
	  offsetof(plot_args, json) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

static int report(const plot_args *a, const hs_plot_stats *st)
{
	const char *metric = st->metric == HS_REC_RSS ? "rss" : st->metric == HS_REC_USS_EST ? "uss"
	                                                                                     : "pss";
	if (a->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "output", a->out);
		cJSON_AddStringToObject(j, "format", hs_plot_format_name(st->format));
		cJSON_AddNumberToObject(j, "width", st->width);
		cJSON_AddNumberToObject(j, "height", st->height);
		cJSON_AddStringToObject(j, "metric", metric);
		cJSON_AddBoolToObject(j, "stacked", st->stacked);
		cJSON_AddNumberToObject(j, "from", st->from);
		cJSON_AddNumberToObject(j, "to", st->to);
		cJSON_AddNumberToObject(j, "processes", (double)st->processes);
		cJSON_AddNumberToObject(j, "drawn", (double)st->drawn);
		cJSON_AddNumberToObject(j, "fallback", (double)st->fallback);
		cJSON_AddNumberToObject(j, "markers", (double)st->markers);
		cJSON_AddNumberToObject(j, "snapshots", (double)st->snapshots);
		cJSON *types = cJSON_AddObjectToObject(j, "types");
		if (types) {
			cJSON_AddNumberToObject(types, "count", (double)st->types);
			if (st->types_pid)
				cJSON_AddNumberToObject(types, "pid", st->types_pid);
			else
				cJSON_AddNullToObject(types, "pid");
		}
		cJSON *peak = cJSON_AddObjectToObject(j, "peak");
		if (peak) {
			cJSON_AddNumberToObject(peak, "bytes", (double)st->peak);
			cJSON_AddNumberToObject(peak, "t", st->peak_t);
			if (st->peak_pid)
				cJSON_AddNumberToObject(peak, "pid", st->peak_pid);
			else
				cJSON_AddNullToObject(peak, "pid");
		}
		cJSON_AddNumberToObject(j, "bytes", (double)st->bytes);
		return hs_cli_print_json(j);
	}
	char size[32];
	hs_render_size(size, sizeof(size), st->peak > 0 ? (uint64_t)st->peak : 0);
	printf("wrote %s: %ux%u, %s%s, %zu process%s", a->out, st->width, st->height, metric,
	       st->stacked ? " stacked" : "", st->processes, st->processes == 1 ? "" : "es");
	if (st->drawn < st->processes)
		printf(" (%zu drawn on their own)", st->drawn);
	printf(", %zu marker%s, %zu snapshot%s", st->markers, st->markers == 1 ? "" : "s",
	       st->snapshots, st->snapshots == 1 ? "" : "s");
	if (st->types)
		printf(", %zu Python types of pid %d", st->types, st->types_pid);
	if (st->peak >= 0) {
		printf("; %s %s at %.2f s", st->peak_pid ? "peak" : "tree peak", size, st->peak_t);
		if (st->peak_pid)
			printf(" (pid %d)", st->peak_pid);
	}
	printf("\n");
	return hs_cli_finish_output();
}

int cmd_plot(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("plot");
	plot_args a;
	memset(&a, 0, sizeof(a));
	a.types = SIZE_MAX; /* not given */
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &a, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected one recording");
	if (!a.out)
		return hs_cli_usage_error(self, "name the output file with -o FILE.{png,svg,pdf}");
	hs_plot_options o = HS_PLOT_OPTIONS_INIT;
	o.format = hs_plot_format_of(a.out);
	if (!o.format)
		return hs_cli_usage_error(self, "cannot tell the format of '%s': use a .png, .svg or "
		                          ".pdf file name", a.out);
	if (a.metric) {
		if (!strcmp(a.metric, "rss"))
			o.metric = HS_REC_RSS;
		else if (!strcmp(a.metric, "pss"))
			o.metric = HS_REC_PSS;
		else if (!strcmp(a.metric, "uss"))
			o.metric = HS_REC_USS;
		else
			return hs_cli_usage_error(self, "--metric expects rss, uss or pss, not '%s'",
			                          a.metric);
	}
	if (a.from && hs_plot_parse_time(&o.from, a.from) < 0)
		return hs_cli_usage_error(self, "--from: %s", hs_error_last());
	if (a.to && hs_plot_parse_time(&o.to, a.to) < 0)
		return hs_cli_usage_error(self, "--to: %s", hs_error_last());
	if (a.from && a.to && !(o.from < o.to))
		return hs_cli_usage_error(self, "the window is empty: --from %s is not before --to %s",
		                          a.from, a.to);
	if ((a.width && (a.width < 200 || a.width > 20000)) ||
	    (a.height && (a.height < 200 || a.height > 20000)))
		return hs_cli_usage_error(self, "--width and --height expect 200 to 20000 pixels");
	o.width = (unsigned)a.width;
	o.height = (unsigned)a.height;
	o.stacked = a.stacked;
	o.title = a.title;
	o.top = a.top;
	if (a.types == 0)
		o.types = SIZE_MAX;
	else if (a.types != SIZE_MAX)
		o.types = a.types;
	if (a.types != SIZE_MAX && a.types > 10)
		return hs_cli_usage_error(self, "--types expects 0 to 10");
	hs_recording *r;
	if ((rc = hs_cli_recording_open(&r, pos[0])) != 0)
		return rc;
	hs_plot_stats st;
	if (hs_plot_render(r, a.out, &o, &st) < 0)
		rc = hs_cli_error();
	else
		rc = report(&a, &st);
	hs_recording_free(r);
	return rc;
}
