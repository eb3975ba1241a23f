/* cli/options.c: option parsing, usage and error reporting for commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "heapsnap/procset.h"

static const hs_cli_option help_option = {
	HS_OPT_FLAG, "help", 'h', NULL, "show this help", 0,
};

void hs_cli_print_command_help(const hs_cli_command *cmd, FILE *f)
{
	fprintf(f, "usage: heapsnap %s\n\n%s\n", cmd->usage, cmd->help);
	const hs_cli_option *o = cmd->options;
	if (!o || o->kind == HS_OPT_END)
		return;
	fputs("\noptions:\n", f);
	char spec[64];
	for (; o->kind != HS_OPT_END; o++) {
		snprintf(spec, sizeof(spec), "%s%c%s--%s%s%s", o->short_name ? "-" : "",
		         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ",
		         o->long_name, o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "   %-24s %s\n", spec + (o->short_name ? 0 : 1), o->help);
	}
}

int hs_cli_usage_error(const hs_cli_command *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "heapsnap %s: %s\nusage: heapsnap %s\n", cmd->name, msg, cmd->usage);
	return HS_EXIT_USAGE;
}

int hs_cli_error(void)
{
	const char *m = hs_error_last();
	fprintf(stderr, "heapsnap: %s\n", m[0] ? m : hs_error_name(hs_error_last_code()));
	return HS_EXIT_ERROR;
}

int hs_cli_errorf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "heapsnap: %s\n", msg);
	return HS_EXIT_ERROR;
}

int hs_cli_finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return hs_cli_errorf("cannot write the output: %s", strerror(errno ? errno : EIO));
	return HS_EXIT_OK;
}

int hs_cli_print_json(cJSON *json)
{
	int rc = hs_render_json_print(stdout, json);
	cJSON_Delete(json);
	if (rc < 0)
		return hs_cli_error();
	return hs_cli_finish_output();
}

/*
 * A snapshot command given an index (`dump --children` writes one beside
 * the per-process snapshots): say so, and name the snapshots it lists,
 * instead of the snapshot reader's "bad magic". A file that only starts
 * like one (a '{') but does not parse gets the index reader's message.
 */
static int index_given(const char *path)
{
	hs_procset *set = NULL;
	if (hs_procset_open(&set, path) < 0)
		return hs_cli_error();
	char names[1024] = "";
	size_t n = 0, shown = 0;
	for (size_t i = 0; i < set->count && n < sizeof(names); i++) {
		const hs_procset_proc *p = &set->procs[i];
		if (p->status != HS_PROC_OK || !p->path)
			continue;
		if (shown == 3) {
			n += (size_t)snprintf(names + n, sizeof(names) - n, ", ...");
			break;
		}
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s'%s'", shown ? ", " : "", p->path);
		shown++;
	}
	int rc = hs_cli_errorf("'%s' is an index of per-process snapshots (heapsnap dump --children), "
	                       "not a snapshot: give this command the snapshots it names%s%s%s, or use "
	                       "'heapsnap summary' or 'heapsnap diff', which take indexes", path,
	                       shown ? " (" : "", names, shown ? ")" : "");
	hs_procset_free(set);
	return rc;
}

int hs_cli_open(hs_snapshot **out, const char *path)
{
	hs_snapshot_options o = HS_SNAPSHOT_OPTIONS_INIT;
	int rc = hs_snapshot_open(out, path, &o);
	if (rc == 0)
		return 0;
	if (rc == HS_EFORMAT) {
		/* the sniff may clear the last error: keep the reader's */
		char why[1024];
		snprintf(why, sizeof(why), "%s", hs_error_last());
		if (hs_procset_sniff(path))
			return index_given(path);
		hs_error_set(rc, "%s", why);
	}
	return hs_cli_error();
}

static const hs_cli_option *find_long(const hs_cli_option *opts, const char *name, size_t len)
{
	for (const hs_cli_option *o = opts; o && o->kind != HS_OPT_END; o++)
		if (strlen(o->long_name) == len && !strncmp(o->long_name, name, len))
			return o;
	if (len == 4 && !strncmp(name, "help", 4))
		return &help_option;
	return NULL;
}

static const hs_cli_option *find_short(const hs_cli_option *opts, char c)
{
	for (const hs_cli_option *o = opts; o && o->kind != HS_OPT_END; o++)
		if (o->short_name == c)
			return o;
	return c == 'h' ? &help_option : NULL;
}

static int store(const hs_cli_command *cmd, const hs_cli_option *o, void *into,
                 const char *shown, const char *value)
{
	char *base = into;
	switch (o->kind) {
	case HS_OPT_FLAG:
		*(int *)(base + o->offset) = 1;
		return -1;
	case HS_OPT_STRING:
		*(const char **)(base + o->offset) = value;
		return -1;
	case HS_OPT_SIZE: {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (!value[0] || *end || errno || value[0] == '-' || v > SIZE_MAX)
			return hs_cli_usage_error(cmd, "%s expects a non-negative integer, not '%s'",
			                          shown, value);
		*(size_t *)(base + o->offset) = (size_t)v;
		return -1;
	}
	default:
		return -1;
	}
}

int hs_cli_parse(const hs_cli_command *cmd, int argc, const char **argv, void *into,
                 const char **pos, int max_pos, int *npos, int stop_at_positional)
{
	*npos = 0;
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_pos || a[0] != '-' || !a[1]) {
			if (*npos >= max_pos)
				return hs_cli_usage_error(cmd, "unexpected argument '%s'", a);
			pos[(*npos)++] = a;
			if (stop_at_positional)
				only_pos = 1;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		const hs_cli_option *o;
		const char *value = NULL;
		char shown[64];
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			o = find_long(cmd->options, a + 2, len);
			snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 40 ? len : 40), a + 2);
			if (!o)
				return hs_cli_usage_error(cmd, "unknown option '%s'", shown);
			if (eq) {
				if (o->kind == HS_OPT_FLAG)
					return hs_cli_usage_error(cmd, "option '%s' takes no value", shown);
				value = eq + 1;
			}
		} else {
			o = find_short(cmd->options, a[1]);
			snprintf(shown, sizeof(shown), "-%c", a[1]);
			if (!o)
				return hs_cli_usage_error(cmd, "unknown option '%s'", shown);
			if (a[2]) {
				if (o->kind == HS_OPT_FLAG)
					return hs_cli_usage_error(cmd, "unknown option '%s'", a);
				value = a + 2;
			}
		}
		if (o == &help_option) {
			hs_cli_print_command_help(cmd, stdout);
			return hs_cli_finish_output();
		}
		if (o->kind != HS_OPT_FLAG && !value) {
			if (i + 1 >= argc)
				return hs_cli_usage_error(cmd, "option '%s' needs a value", shown);
			value = argv[++i];
		}
		int rc = store(cmd, o, into, shown, value);
		if (rc >= 0)
			return rc;
	}
	return -1;
}
