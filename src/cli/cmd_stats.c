/*
 * cli/cmd_stats.c: `heapsnap stats PID [--json] [--fast] [--types N]
 * [--timeout S]`: the cheap figures of a running process, without a
 * snapshot.
 *
 * Memory and threads come from /proc/PID (any process of the same user, or
 * any when root). The Python figures (objects tracked by the GC,
 * collections and their pauses, pymalloc) come from the process's agent
 * (heapsnap.agent, include/heapsnap/agent.h: STATS, and TYPES with
 * --types) when it runs one; without an agent they are not known, and the
 * output says how to get them. An agent that answers a command with an
 * error ("ok": false) is reported as a warning on stderr and the /proc
 * figures are still printed; a socket that answers something that is not a
 * valid reply, closes the connection or does not answer in time is an
 * error (exit 2): its figures cannot be trusted, and a script should not
 * take the output for the process's.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "heapsnap/agent.h"

typedef struct stats_args {
	int json;
	int fast;
	size_t types;
	const char *timeout;
} stats_args;

const hs_cli_option hs_cli_opts_stats[] = {
	{ HS_OPT_FLAG, "json", 0, NULL, "print JSON (formats/stats.schema.json)",
	  offsetof(stats_args, json) },
	{ HS_OPT_FLAG, "fast", 0, NULL, "leave out USS and PSS (reading them costs about 20 ms "
	  "per GiB of RSS)", offsetof(stats_args, fast) },
	{ HS_OPT_SIZE, "types", 0, "N", "with an agent: also the N types holding the most bytes "
	  "(a walk of the heap, writing nothing: about 40 ms per million objects)",
	  offsetof(stats_args, types) },
	{ HS_OPT_STRING, "timeout", 0, "S", "wait at most S seconds for the agent (default 10)",
	  offsetof(stats_args, timeout) },
	{ HS_OPT_END, NULL, 0, NULL, NULL, 0 },
};

#define NO_AGENT_NOTE "no agent: Python figures need `heapsnap.agent.start()` or HEAPSNAP_AGENT=1"

typedef struct proc_figs {
	char name[64];
	long long rss, vms, swap, threads, uss, pss;
} proc_figs;

/* "Key:  123 kB" fields of a /proc file; kB values made bytes. */
static int proc_read(const char *path, const char *const *keys, long long *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = -1;
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			if (strncmp(line, keys[i], kl) != 0 || line[kl] != ':')
				continue;
			char *end;
			long long v = strtoll(line + kl + 1, &end, 10);
			if (strstr(end, "kB"))
				v *= 1024;
			out[i] = (out[i] < 0 ? 0 : out[i]) + v;
		}
	}
	fclose(f);
	return 0;
}

static int proc_figures(proc_figs *p, int pid, int smaps)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	static const char *const skeys[] = { "VmRSS", "VmSize", "VmSwap", "Threads" };
	long long s[4];
	if (proc_read(path, skeys, s, 4) < 0)
		return hs_cli_errorf("no such process: %d", pid);
	p->rss = s[0];
	p->vms = s[1];
	p->swap = s[2];
	p->threads = s[3];
	p->name[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "Name:", 5)) {
				char *v = line + 5;
				v += strspn(v, " \t");
				v[strcspn(v, "\n")] = '\0';
				snprintf(p->name, sizeof(p->name), "%s", v);
				break;
			}
		}
		fclose(f);
	}
	p->uss = p->pss = -1;
	if (smaps) {
		static const char *const rkeys[] = { "Pss", "Private_Clean", "Private_Dirty" };
		long long r[3];
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
		if (proc_read(path, rkeys, r, 3) == 0) {
			p->pss = r[0];
			if (r[1] >= 0 && r[2] >= 0)
				p->uss = r[1] + r[2];
		}
	}
	return 0;
}

/* Whether `pid` runs as our user (or we are root): its agent is then ours
 * to use, and failing to use it is an error rather than a note. */
static int owned_by_us(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	struct stat st;
	return stat(path, &st) == 0 && (geteuid() == 0 || st.st_uid == geteuid());
}

static double num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/*
 * The agent's reply, validated (hs_agent_call): 0 with *out set; 0 with
 * *out NULL and a warning on stderr when the agent answered an error;
 * a negative code when the exchange failed or the reply is not valid.
 */
static int ask(cJSON **out, hs_agent *a, const char *cmd, double timeout, int pid)
{
	cJSON *j = NULL;
	*out = NULL;
	int rc = hs_agent_call(a, cmd, &j, timeout);
	if (rc < 0)
		return rc;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
		fprintf(stderr, "heapsnap: warning: the agent of process %d answered %s with an error: %s\n",
		        pid, cmd, hs_agent_reply_error(j));
		cJSON_Delete(j);
		return 0;
	}
	*out = j;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

static void add_figure(cJSON *o, const char *key, long long v)
{
	if (v >= 0)
		cJSON_AddNumberToObject(o, key, (double)v);
}

/* Move member `key` of `from` into `to` (absent: nothing). */
static void move_item(cJSON *to, cJSON *from, const char *key)
{
	cJSON *v = from ? cJSON_DetachItemFromObjectCaseSensitive(from, key) : NULL;
	if (v)
		cJSON_AddItemToObject(to, key, v);
}

static int print_json(int pid, const proc_figs *p, hs_agent *a, cJSON *hello, cJSON *st,
                      cJSON *ty, const char *note)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "pid", pid);
	cJSON_AddStringToObject(j, "name", p->name);
	cJSON *mem = cJSON_AddObjectToObject(j, "memory");
	add_figure(mem, "rss", p->rss);
	add_figure(mem, "vms", p->vms);
	add_figure(mem, "swap", p->swap);
	/* USS/PSS: ours when /proc let us read them, else the agent's */
	add_figure(mem, "uss", p->uss >= 0 ? p->uss : (long long)num(st, "uss", -1));
	add_figure(mem, "pss", p->pss >= 0 ? p->pss : (long long)num(st, "pss", -1));
	add_figure(j, "threads", p->threads);
	if (st) {
		cJSON *ag = cJSON_AddObjectToObject(j, "agent");
		cJSON_AddStringToObject(ag, "socket", hs_agent_socket(a));
		move_item(ag, hello, "python");
		move_item(ag, hello, "heapsnap");
		move_item(ag, hello, "started");
		cJSON_AddNumberToObject(ag, "python_threads", num(st, "threads", 0));
		cJSON_AddNumberToObject(ag, "agent_threads", num(st, "agent_threads", 0));
		move_item(ag, st, "gc");
		move_item(ag, st, "pymalloc");
		move_item(ag, st, "seconds");
	} else {
		cJSON_AddNullToObject(j, "agent");
	}
	if (ty) {
		cJSON *t = cJSON_AddObjectToObject(j, "types");
		move_item(t, ty, "objects");
		move_item(t, ty, "bytes");
		move_item(t, ty, "seconds");
		move_item(t, ty, "types");
	}
	if (note)
		cJSON_AddStringToObject(j, "note", note);
	return hs_cli_print_json(j);
}

/* ------------------------------------------------------------------ */
/* Text                                                                */

/* "a, b, c" of a JSON array of numbers, each through `fmt`. */
static void per_gen(char *buf, size_t size, const cJSON *arr, int seconds)
{
	size_t n = 0;
	buf[0] = '\0';
	const cJSON *v;
	int i = 0;
	cJSON_ArrayForEach(v, arr) {
		if (!cJSON_IsNumber(v) || n >= size)
			break;
		char c[32];
		if (seconds)
			snprintf(c, sizeof(c), "%.3f s", v->valuedouble);
		else
			hs_render_count(c, sizeof(c), (uint64_t)v->valuedouble);
		n += (size_t)snprintf(buf + n, size - n, "%sgen%d %s", i ? ", " : "", i, c);
		i++;
	}
}

static double sum_of(const cJSON *arr)
{
	double s = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, arr) {
		if (cJSON_IsNumber(v))
			s += v->valuedouble;
	}
	return s;
}

static int row(hs_table *t, const char *a, const char *b, const char *c)
{
	const char *cells[3] = { a, b, c };
	return hs_table_row(t, cells);
}

static int print_text(int pid, const proc_figs *p, hs_agent *a, const cJSON *hello,
                      const cJSON *st, const cJSON *ty, const char *note)
{
	const cJSON *pyv = cJSON_GetObjectItemCaseSensitive(hello, "python");
	printf("process %d (%s)", pid, p->name[0] ? p->name : "?");
	if (st && cJSON_IsString(pyv))
		printf(": Python %s, heapsnap agent at %s", pyv->valuestring, hs_agent_socket(a));
	printf("\n\n");

	hs_table *t;
	if (hs_table_new(&t, 3) < 0)
		return hs_cli_error();
	char h[64], line[512];
	int rc = 0;
	long long uss = p->uss >= 0 ? p->uss : (long long)num(st, "uss", -1);
	long long pss = p->pss >= 0 ? p->pss : (long long)num(st, "pss", -1);
	static const char *const what[] = {
		"resident: physical memory of the process",
		"resident, shared pages divided among the processes sharing them",
		"resident and private: freed if the process exits",
		"virtual address space",
		"swapped out",
	};
	const char *label[] = { "RSS", "PSS", "USS", "VMS", "swap" };
	long long vals[] = { p->rss, pss, uss, p->vms, p->swap };
	for (int i = 0; i < 5 && rc == 0; i++) {
		if (vals[i] < 0)
			continue;
		hs_render_size(h, sizeof(h), (uint64_t)vals[i]);
		rc = row(t, label[i], h, what[i]);
	}
	const cJSON *pm = cJSON_GetObjectItemCaseSensitive(st, "pymalloc");
	if (rc == 0 && pm && num(pm, "bytes_in_arenas", -1) >= 0) {
		char used[32], blocks[32];
		hs_render_size(h, sizeof(h), (uint64_t)num(pm, "bytes_in_arenas", 0));
		hs_render_size(used, sizeof(used), (uint64_t)num(pm, "bytes_in_use", 0));
		hs_render_count(blocks, sizeof(blocks), (uint64_t)num(pm, "blocks_in_use", 0));
		snprintf(line, sizeof(line), "in %.0f arenas; %s in %s blocks in use (small objects)",
		         num(pm, "arenas_allocated", 0), used, blocks);
		rc = row(t, "pymalloc", h, line);
	}
	if (rc == 0) {
		hs_table_column(t, 0, "memory", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "bytes", HS_ALIGN_RIGHT);
		hs_table_column(t, 2, "", HS_ALIGN_LEFT);
		rc = hs_table_print(t, stdout, 0);
	}
	hs_table_free(t);
	if (rc < 0)
		return hs_cli_error();

	if (hs_table_new(&t, 3) < 0)
		return hs_cli_error();
	if (st) {
		const cJSON *gc = cJSON_GetObjectItemCaseSensitive(st, "gc");
		char c[32];
		hs_render_count(c, sizeof(c), (uint64_t)num(st, "threads", 0));
		snprintf(line, sizeof(line), "running Python, %.0f of them the agent's; %.0f threads in all",
		         num(st, "agent_threads", 0), num(st, "os_threads", (double)p->threads));
		rc = row(t, "threads", c, line);
		const cJSON *tracked = cJSON_GetObjectItemCaseSensitive(gc, "tracked_objects");
		if (rc == 0 && cJSON_IsNumber(tracked)) {
			hs_render_count(c, sizeof(c), (uint64_t)tracked->valuedouble);
			per_gen(line, sizeof(line), cJSON_GetObjectItemCaseSensitive(gc, "tracked_per_generation"), 0);
			/* generation 3 is the permanent one (gc.freeze) */
			char *g3 = strstr(line, "gen3");
			if (g3)
				memcpy(g3, "frzn", 4);
			rc = row(t, "tracked by the GC", c, line);
		} else if (rc == 0) {
			rc = row(t, "tracked by the GC", "?", "a collection was running");
		}
		if (rc == 0) {
			const cJSON *col = cJSON_GetObjectItemCaseSensitive(gc, "collections");
			hs_render_count(c, sizeof(c), (uint64_t)sum_of(col));
			char gens[256], coll[32], unc[32];
			per_gen(gens, sizeof(gens), col, 0);
			hs_render_count(coll, sizeof(coll),
			                (uint64_t)sum_of(cJSON_GetObjectItemCaseSensitive(gc, "collected")));
			hs_render_count(unc, sizeof(unc),
			                (uint64_t)sum_of(cJSON_GetObjectItemCaseSensitive(gc, "uncollectable")));
			snprintf(line, sizeof(line), "%s; %s objects collected, %s uncollectable%s", gens, coll,
			         unc, cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(gc, "enabled"))
			                  ? "; the GC is disabled" : "");
			rc = row(t, "collections", c, line);
		}
		if (rc == 0) {
			const cJSON *ps = cJSON_GetObjectItemCaseSensitive(gc, "pause_seconds");
			snprintf(c, sizeof(c), "%.3f s", sum_of(ps));
			char gens[256];
			per_gen(gens, sizeof(gens), ps, 1);
			snprintf(line, sizeof(line), "%s (since heapsnap was imported)", gens);
			rc = row(t, "time in the GC", c, line);
		}
	} else {
		char c[32] = "?";
		if (p->threads >= 0)
			hs_render_count(c, sizeof(c), (uint64_t)p->threads);
		rc = row(t, "threads", c, "");
	}
	if (rc == 0) {
		hs_table_column(t, 0, st ? "Python" : "process", HS_ALIGN_LEFT);
		hs_table_column(t, 1, "count", HS_ALIGN_RIGHT);
		hs_table_column(t, 2, "", HS_ALIGN_LEFT);
		printf("\n");
		rc = hs_table_print(t, stdout, 0);
	}
	hs_table_free(t);
	if (rc < 0)
		return hs_cli_error();

	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(ty, "types");
	if (ty && cJSON_IsArray(rows)) {
		if (hs_table_new(&t, 4) < 0)
			return hs_cli_error();
		double total = num(ty, "bytes", 0);
		const cJSON *r;
		cJSON_ArrayForEach(r, rows) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
			char c[32], pct[32];
			hs_render_count(c, sizeof(c), (uint64_t)num(r, "count", 0));
			hs_render_size(h, sizeof(h), (uint64_t)num(r, "bytes", 0));
			snprintf(pct, sizeof(pct), "%.1f%%", total > 0 ? 100.0 * num(r, "bytes", 0) / total : 0.0);
			const char *cells[4] = { cJSON_IsString(name) ? name->valuestring : "?", c, h, pct };
			if ((rc = hs_table_row(t, cells)) < 0)
				break;
		}
		if (rc == 0) {
			char c[32];
			hs_render_count(c, sizeof(c), (uint64_t)num(ty, "objects", 0));
			hs_render_size(h, sizeof(h), (uint64_t)total);
			const char *cells[4] = { "all types", c, h, "100.0%" };
			rc = hs_table_rule(t);
			if (rc == 0)
				rc = hs_table_row(t, cells);
		}
		if (rc == 0) {
			hs_table_column(t, 0, "type", HS_ALIGN_LEFT);
			hs_table_column(t, 1, "objects", HS_ALIGN_RIGHT);
			hs_table_column(t, 2, "bytes", HS_ALIGN_RIGHT);
			hs_table_column(t, 3, "share", HS_ALIGN_RIGHT);
			printf("\n");
			rc = hs_table_print(t, stdout, 0);
			printf("(counted in %.3f s in the process, as a snapshot counts them)\n",
			       num(ty, "seconds", 0));
		}
		hs_table_free(t);
		if (rc < 0)
			return hs_cli_error();
	}
	if (note)
		printf("\n%s\n", note);
	return hs_cli_finish_output();
}

int cmd_stats(int argc, const char **argv)
{
	const hs_cli_command *self = hs_cli_find("stats");
	stats_args args = { 0 };
	const char *pos[1];
	int npos, rc = hs_cli_parse(self, argc, argv, &args, pos, 1, &npos, 0);
	if (rc >= 0)
		return rc;
	if (npos != 1)
		return hs_cli_usage_error(self, "expected the id of a running process");
	char *end;
	errno = 0;
	long pid = strtol(pos[0], &end, 10);
	if (!pos[0][0] || *end || errno || pid <= 0 || pid > INT_MAX)
		return hs_cli_usage_error(self, "'%s' is not a process id", pos[0]);
	double timeout = 10;
	if (args.timeout) {
		timeout = strtod(args.timeout, &end);
		if (!args.timeout[0] || *end || !(timeout > 0) || timeout > 86400)
			return hs_cli_usage_error(self, "--timeout expects a positive number of seconds, "
			                          "not '%s'", args.timeout);
	}
	if (args.types > 100000)
		return hs_cli_usage_error(self, "--types expects at most 100000");

	proc_figs p;
	if ((rc = proc_figures(&p, (int)pid, !args.fast)) != 0)
		return rc;

	hs_agent *a = NULL;
	cJSON *hello = NULL, *st = NULL, *ty = NULL;
	char note[1024];
	const char *note_p = NULL;
	int arc = hs_agent_connect(&a, (int)pid, timeout);
	if (arc == HS_EFORMAT || arc == HS_ELIMIT ||
	    (arc < 0 && arc != HS_ENOTFOUND && owned_by_us((int)pid))) {
		/* something answers on the agent's socket, wrongly: no figures */
		return hs_cli_error();
	} else if (arc == 0) {
		hello = cJSON_Parse(hs_agent_hello(a));
		int qrc = ask(&st, a, args.fast ? "STATS fast" : "STATS", timeout, (int)pid);
		if (qrc == 0 && st && args.types) {
			char cmd[64];
			snprintf(cmd, sizeof(cmd), "TYPES %zu", args.types);
			qrc = ask(&ty, a, cmd, timeout + 60, (int)pid);
		}
		if (qrc < 0) {
			rc = hs_cli_error();
			goto done;
		}
		if (!st) {
			snprintf(note, sizeof(note), "the agent of process %ld failed: Python figures unknown",
			         pid);
			note_p = note;
		}
	} else if (arc == HS_ENOTFOUND) {
		note_p = NO_AGENT_NOTE;
		if (args.types)
			fprintf(stderr, "heapsnap: warning: --types needs the process's agent\n");
	} else {
		fprintf(stderr, "heapsnap: warning: %s\n", hs_error_last());
		snprintf(note, sizeof(note), "the agent of process %ld could not be used: Python figures "
		         "unknown", pid);
		note_p = note;
	}
	if (args.json)
		rc = print_json((int)pid, &p, a, hello, st, ty, note_p);
	else
		rc = print_text((int)pid, &p, a, hello, st, ty, note_p);
done:
	cJSON_Delete(hello);
	cJSON_Delete(st);
	cJSON_Delete(ty);
	hs_agent_free(a);
	return rc;
}
