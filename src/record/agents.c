/*
 * record/agents.c: Python figures for `heapsnap record`, asked of the
 * heapsnap agent in each Python process of the tree (the in-process agent;
 * protocol in formats/agent-protocol.md, client heapsnap/agent.h).
 *
 * One thread, so that the sampler never waits for a target: an agent
 * answers once its thread gets the GIL, which a busy program may hold for
 * its whole switch interval (5 ms) or longer in C code. Per process:
 *  - MARKS and GCEVENTS every POLL_NS, 250 ms (markers from heapsnap.mark(), and
 *    one GC series sample per collection with its pause);
 *  - STATS fast every --heap-every (objects tracked by the GC, pymalloc,
 *    collections and pause per generation);
 *  - TYPES N every --heap-every, but never more than 1% of the time: a
 *    TYPES walk pauses the target, so a slow one spaces the next ones out;
 *  - DUMP for --snapshot-every and --snapshot-on-growth, the file named
 *    beside the recording: NAME.PID.N.hsnap.
 * A `record -- CMD` puts the package's _bootstrap directory on PYTHONPATH
 * and sets HEAPSNAP_AGENT=1 and HEAPSNAP_AGENT_DIR (a private directory):
 * every Python process of the tree starts its agent at start-up.
 *
 * That directory, /tmp/heapsnap-rec-<pid>-XXXXXX with an "owner" file
 * ("<pid> <start time in clock ticks>"), is removed on every exit the
 * recorder sees (recorder.c turns the stop signals into a clean end); a
 * SIGKILL leaves it, so each recorder first removes the directories of
 * recorders of this user that are gone (see clean_stale).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "heapsnap/agent.h"
#include "record/agents.h"
#include "util/alloc.h"

#define POLL_NS 250000000LL          /* markers and GC events: every 250 ms (each request
                                        takes the GIL in the target) */
#define CONNECT_RETRY_NS 100000000LL /* while an interpreter starts its agent */
#define CONNECT_PATIENCE_NS 10000000000LL /* give up on an agent after 10 s */
#define REQUEST_TIMEOUT 2.0
#define DUMP_TIMEOUT 300.0
#define TRACK_POLL_NS 1000000000LL /* --lines: figures once a second */
#define TYPES_SHARE 0.01             /* TYPES pauses the target: at most 1% of the time */

typedef struct target {
	int pid;
	size_t index;
	int root;
	int gone;               /* ended: dropped at the next pass */
	hs_agent *a;
	int gave_up;
	int64_t first_try, next_try;
	int64_t next_stats, next_types, next_snap, next_poll;
	uint64_t marks_next, gc_next;
	int64_t rss_kib;        /* the sampler's latest */
	int64_t snap_base_kib;  /* RSS at the last snapshot (--snapshot-on-growth) */
	int snap_seq;
	int track;              /* --lines: 1 tracking asked/started, 2 finished */
	int64_t next_track;
	/* what the recording has of the process's tracking (the agent's replies
	 * are absolute: this turns them into new definitions and deltas) */
	int track_settings;     /* TRACK block written */
	uint32_t known_locs, known_stacks;
	int64_t known_peak;
	int64_t (*prev)[4];     /* per stack id: allocations, bytes, live blocks, live bytes */
	size_t prev_cap;
} target;

struct hs_agents {
	const hs_record_options *o;
	pthread_mutex_t *wlock;
	hs_rec_writer *w;
	int64_t t0_ns;
	pthread_t thread;
	int started;
	pthread_mutex_t lock; /* targets and stop */
	pthread_cond_t cond;
	int stop;
	target **t;
	size_t n, cap;
	char dir[PATH_MAX];     /* HEAPSNAP_AGENT_DIR we made ("" if none) */
	char snap_dir[PATH_MAX];
	char snap_base[PATH_MAX];
	int env_note;           /* why the environment could not be set, for a note */
	char env_why[PATH_MAX + 128];
};

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t rel_us(const hs_agents *a, int64_t ns) { return (ns - a->t0_ns) / 1000; }

/* An agent time (CLOCK_MONOTONIC seconds) in recording microseconds. */
static int64_t agent_us(const hs_agents *a, const cJSON *t)
{
	if (!cJSON_IsNumber(t))
		return rel_us(a, mono_ns());
	return (int64_t)(t->valuedouble * 1e6) - a->t0_ns / 1000;
}

static int64_t num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int64_t)v->valuedouble : -1;
}

static int64_t num_at(const cJSON *arr, int i)
{
	const cJSON *v = cJSON_IsArray(arr) ? cJSON_GetArrayItem(arr, i) : NULL;
	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int64_t)v->valuedouble : -1;
}

/* Writer calls: under the recorder's writer lock. */
#define W(a, expr)                      \
	do {                                \
		pthread_mutex_lock((a)->wlock); \
		(void)(expr);                   \
		pthread_mutex_unlock((a)->wlock); \
	} while (0)

static void note(hs_agents *a, ptrdiff_t proc, int warning, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(hs_agents *a, ptrdiff_t proc, int warning, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	W(a, hs_rec_writer_note(a->w, proc, rel_us(a, mono_ns()), warning, buf));
}

int hs_agents_new(hs_agents **out, const hs_record_options *o, pthread_mutex_t *lock)
{
	hs_agents *a = hs_calloc(1, sizeof(*a));
	if (!a)
		return HS_ENOMEM;
	a->o = o;
	a->wlock = lock;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	/* snapshots go beside the recording, named after it */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", o->output);
	char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (slash) {
		*slash = '\0';
		if (!realpath(path[0] ? path : "/", a->snap_dir))
			snprintf(a->snap_dir, sizeof(a->snap_dir), "%s", path);
	} else if (!getcwd(a->snap_dir, sizeof(a->snap_dir))) {
		snprintf(a->snap_dir, sizeof(a->snap_dir), ".");
	}
	snprintf(a->snap_base, sizeof(a->snap_base), "%s", base);
	size_t bl = strlen(a->snap_base);
	if (bl > 6 && !strcmp(a->snap_base + bl - 6, ".hsrec"))
		a->snap_base[bl - 6] = '\0';
	*out = a;
	return 0;
}

void hs_agents_attach(hs_agents *a, hs_rec_writer *w, int64_t t0_ns)
{
	a->w = w;
	a->t0_ns = t0_ns;
	if (a->env_note)
		note(a, -1, 1, "%s", a->env_why);
}

#define REC_DIR_PARENT "/tmp"
#define REC_DIR_PREFIX "heapsnap-rec-"
#define LEGACY_STALE_SECONDS 3600 /* old-style names carry no owner pid */

/* Whether a socket in the directory `dfd` has a listener (a process of a
 * killed recorder's command may still run its agent there). */
static int socket_alive(int dfd, const char *name)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, name);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return 1; /* cannot tell: keep */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 1;
	int alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
	            errno == EINPROGRESS;
	close(fd);
	return alive;
}

/* Whether the recorder that made the directory `dfd` (named after `pid`)
 * still runs: its pid alive with the start time in its "owner" file. */
static int owner_alive(int dfd, int pid)
{
	hs_proc_stat st;
	if (hs_procfs_stat_pid(pid, &st) != 0)
		return 0;
	int fd = openat(dfd, "owner", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 1; /* being made right now, or not ours to judge */
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	int opid;
	unsigned long long start;
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	if (sscanf(buf, "%d %llu", &opid, &start) != 2 || opid != pid)
		return 1;
	return st.starttime == start; /* else the pid was reused */
}

/*
 * Remove the socket directories of this user's recorders that are gone
 * (killed with SIGKILL: nothing ran at their end). Only directories named
 * heapsnap-rec-*, owned by our effective uid, found and entered without
 * following a symbolic link (fstatat/openat with O_NOFOLLOW, then the
 * descriptor checked to be that same directory); another user's entries
 * are never touched. Kept: a directory whose recorder runs, or in which an
 * agent still listens (the killed recorder's command runs on).
 */
static void clean_stale(void)
{
	int top = open(REC_DIR_PARENT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		return;
	int lfd = dup(top);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		close(top);
		return;
	}
	uid_t me = geteuid();
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		if (strncmp(name, REC_DIR_PREFIX, strlen(REC_DIR_PREFIX)) != 0)
			continue;
		struct stat st, dst;
		if (fstatat(top, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != me)
			continue;
		/* heapsnap-rec-<pid>-XXXXXX, or the old heapsnap-rec-XXXXXX */
		const char *p = name + strlen(REC_DIR_PREFIX);
		char *end;
		long pid = strtol(p, &end, 10);
		int legacy = !(end != p && *end == '-' && pid > 0 && pid <= INT_MAX && strlen(end + 1) == 6);
		if (legacy && now - st.st_mtime < LEGACY_STALE_SECONDS)
			continue;
		int dfd = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue;
		if (fstat(dfd, &dst) != 0 || dst.st_dev != st.st_dev || dst.st_ino != st.st_ino ||
		    dst.st_uid != me || (!legacy && owner_alive(dfd, (int)pid))) {
			close(dfd);
			continue;
		}
		int sfd = dup(dfd);
		DIR *sd = sfd >= 0 ? fdopendir(sfd) : NULL;
		if (!sd) {
			if (sfd >= 0)
				close(sfd);
			close(dfd);
			continue;
		}
		/* first pass: anybody still listening? then leave it all */
		int keep = 0;
		struct dirent *f;
		while (!keep && (f = readdir(sd)) != NULL) {
			struct stat fs;
			if (fstatat(dfd, f->d_name, &fs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(fs.st_mode))
				keep = socket_alive(dfd, f->d_name);
		}
		if (!keep) {
			rewinddir(sd);
			while ((f = readdir(sd)) != NULL) {
				struct stat fs;
				if (fstatat(dfd, f->d_name, &fs, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(fs.st_mode) &&
				    fs.st_uid == me)
					unlinkat(dfd, f->d_name, 0);
			}
			unlinkat(top, name, AT_REMOVEDIR); /* fails, harmlessly, if not empty */
		}
		closedir(sd);
		close(dfd);
	}
	closedir(d);
	close(top);
}

/* The private directory for the agents' sockets, with its owner file. */
static int make_dir(hs_agents *a)
{
	clean_stale();
	snprintf(a->dir, sizeof(a->dir), REC_DIR_PARENT "/" REC_DIR_PREFIX "%d-XXXXXX", (int)getpid());
	if (!mkdtemp(a->dir)) {
		int e = errno;
		a->dir[0] = '\0';
		return hs_error_set(HS_EIO, "cannot create a directory for the agents' sockets in "
		                    REC_DIR_PARENT ": %s; record without Python figures with --no-agent",
		                    strerror(e));
	}
	hs_proc_stat st;
	unsigned long long start = hs_procfs_stat_pid((int)getpid(), &st) == 0 ? st.starttime : 0;
	int fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ofd = fd >= 0 ? openat(fd, "owner", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	                          0600) : -1;
	if (ofd >= 0) {
		char line[64];
		int n = snprintf(line, sizeof(line), "%d %llu\n", (int)getpid(), start);
		if (write(ofd, line, (size_t)n) != n)
			unlinkat(fd, "owner", 0); /* no owner file: judged by its pid alone */
		close(ofd);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int hs_agents_environment(hs_agents *a)
{
	const char *pkg = a->o->package_dir;
	char boot[PATH_MAX], parent[PATH_MAX];
	if (!pkg) {
		a->env_note = 1;
		snprintf(a->env_why, sizeof(a->env_why), "no Python figures: heapsnap's Python package "
		         "was not found beside this heapsnap");
		return 0;
	}
	snprintf(boot, sizeof(boot), "%s/_bootstrap", pkg);
	if (!is_dir(boot)) {
		a->env_note = 1;
		snprintf(a->env_why, sizeof(a->env_why), "no Python figures: '%s' is missing", boot);
		return 0;
	}
	snprintf(parent, sizeof(parent), "%s", pkg);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	int mrc = make_dir(a);
	if (mrc < 0)
		return mrc;
	const char *old = getenv("PYTHONPATH");
	size_t n = strlen(boot) + strlen(parent) + (old ? strlen(old) : 0) + 3;
	char *v = hs_malloc(n);
	if (!v)
		return HS_ENOMEM;
	snprintf(v, n, "%s:%s%s%s", boot, parent, old && old[0] ? ":" : "", old && old[0] ? old : "");
	int rc = setenv("PYTHONPATH", v, 1) | setenv("HEAPSNAP_AGENT", "1", 1) |
	         setenv("HEAPSNAP_AGENT_DIR", a->dir, 1);
	hs_free(v);
	if (rc == 0 && a->o->lines)
		rc = setenv("HEAPSNAP_TRACK", a->o->track_opts && a->o->track_opts[0] ? a->o->track_opts : "on", 1);
	if (rc == 0 && a->o->lines && a->o->preload) {
		const char *pre = getenv("LD_PRELOAD");
		size_t m = strlen(a->o->preload) + (pre ? strlen(pre) : 0) + 2;
		char *pv = hs_malloc(m);
		if (!pv)
			return HS_ENOMEM;
		snprintf(pv, m, "%s%s%s", a->o->preload, pre && pre[0] ? ":" : "", pre && pre[0] ? pre : "");
		rc = setenv("LD_PRELOAD", pv, 1);
		hs_free(pv);
	}
	return rc == 0 ? 0 : hs_error_set(HS_ENOMEM, "cannot set the environment: %s", strerror(errno));
}

void hs_agents_add(hs_agents *a, int pid, size_t index, int root)
{
	target *t = hs_calloc(1, sizeof(*t));
	if (!t)
		return;
	t->pid = pid;
	t->index = index;
	t->root = root;
	t->snap_base_kib = -1;
	t->known_peak = -1;
	pthread_mutex_lock(&a->lock);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		target **nt = hs_reallocarray(a->t, cap, sizeof(*nt));
		if (!nt) {
			pthread_mutex_unlock(&a->lock);
			hs_free(t);
			return;
		}
		a->t = nt;
		a->cap = cap;
	}
	a->t[a->n++] = t;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void hs_agents_remove(hs_agents *a, int pid)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i]->pid == pid && !a->t[i]->gone)
			a->t[i]->gone = 1;
	pthread_mutex_unlock(&a->lock);
}

void hs_agents_rss(hs_agents *a, int pid, int64_t rss_kib)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i]->pid == pid && !a->t[i]->gone)
			a->t[i]->rss_kib = rss_kib;
	pthread_mutex_unlock(&a->lock);
}

/* One request; the parsed reply (ok true, fields validated by
 * hs_agent_call) or NULL. A broken connection is dropped and tried again;
 * a socket that answers invalid replies is not a working agent: it is
 * dropped for good, with a note, and the process keeps its /proc figures. */
static cJSON *ask(hs_agents *a, target *t, const char *cmd, double timeout, char *why, size_t wsize)
{
	cJSON *j = NULL;
	int rc = hs_agent_call(t->a, cmd, &j, timeout);
	if (rc < 0) {
		snprintf(why, wsize, "%s", hs_error_last());
		/* too long (HS_ELIMIT): dropped, asked again later (TYPES backs off) */
		if (rc == HS_EIO || rc == HS_EFORMAT || rc == HS_ELIMIT) {
			hs_agent_free(t->a);
			t->a = NULL;
			t->next_try = mono_ns() + CONNECT_RETRY_NS;
		}
		if (rc == HS_EFORMAT) {
			t->gave_up = 1;
			note(a, (ptrdiff_t)t->index, 1, "%s: Python figures of process %d stop here", why,
			     t->pid);
		}
		return NULL;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
		snprintf(why, wsize, "%s", hs_agent_reply_error(j));
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static void poll_events(hs_agents *a, target *t)
{
	char cmd[64], why[512];
	snprintf(cmd, sizeof(cmd), "MARKS %llu", (unsigned long long)t->marks_next);
	cJSON *j = ask(a, t, cmd, REQUEST_TIMEOUT, why, sizeof(why));
	if (j) {
		const cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "marks")) {
			const cJSON *label = cJSON_GetObjectItemCaseSensitive(m, "label");
			W(a, hs_rec_writer_mark(a->w, t->index, agent_us(a, cJSON_GetObjectItem(m, "t")),
			                        cJSON_IsString(label) ? label->valuestring : ""));
		}
		int64_t next = num(j, "next");
		if (next >= 0)
			t->marks_next = (uint64_t)next;
		if (num(j, "dropped") > 0)
			note(a, (ptrdiff_t)t->index, 1, "%lld markers were lost (more than the agent keeps "
			     "between two polls)", (long long)num(j, "dropped"));
		cJSON_Delete(j);
	}
	if (!t->a)
		return;
	snprintf(cmd, sizeof(cmd), "GCEVENTS %llu", (unsigned long long)t->gc_next);
	j = ask(a, t, cmd, REQUEST_TIMEOUT, why, sizeof(why));
	if (j) {
		const cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "events")) {
			const cJSON *sec = cJSON_GetObjectItemCaseSensitive(e, "seconds");
			int64_t v[HS_REC_GC_COLUMNS] = {
				agent_us(a, cJSON_GetObjectItem(e, "t")), num(e, "generation"),
				cJSON_IsNumber(sec) ? (int64_t)(sec->valuedouble * 1e6 + 0.5) : -1,
				num(e, "collected"), num(e, "uncollectable"),
			};
			W(a, hs_rec_writer_sample(a->w, t->index, HS_REC_SERIES_GC, v, HS_REC_GC_COLUMNS));
		}
		int64_t next = num(j, "next");
		if (next >= 0)
			t->gc_next = (uint64_t)next;
		cJSON_Delete(j);
	}
}

static void heap_figures(hs_agents *a, target *t, int64_t now)
{
	char why[512];
	cJSON *j = ask(a, t, "STATS fast", REQUEST_TIMEOUT, why, sizeof(why));
	if (j) {
		const cJSON *gc = cJSON_GetObjectItemCaseSensitive(j, "gc");
		const cJSON *pm = cJSON_GetObjectItemCaseSensitive(j, "pymalloc");
		const cJSON *coll = cJSON_GetObjectItemCaseSensitive(gc, "collections");
		const cJSON *pause = cJSON_GetObjectItemCaseSensitive(gc, "pause_seconds");
		int64_t collected = 0, uncollectable = 0;
		for (int g = 0; g < 3; g++) {
			int64_t c = num_at(cJSON_GetObjectItemCaseSensitive(gc, "collected"), g);
			int64_t u = num_at(cJSON_GetObjectItemCaseSensitive(gc, "uncollectable"), g);
			collected += c > 0 ? c : 0;
			uncollectable += u > 0 ? u : 0;
		}
		int64_t p[3];
		for (int g = 0; g < 3; g++) {
			const cJSON *v = cJSON_IsArray(pause) ? cJSON_GetArrayItem(pause, g) : NULL;
			p[g] = cJSON_IsNumber(v) ? (int64_t)(v->valuedouble * 1e6 + 0.5) : -1;
		}
		int64_t v[HS_REC_PY_COLUMNS] = {
			agent_us(a, cJSON_GetObjectItem(j, "t")), num(gc, "tracked_objects"),
			num(pm, "bytes_in_use"), num(pm, "arenas_allocated"), num(pm, "arenas_highwater"),
			num(pm, "blocks_in_use"), num_at(coll, 0), num_at(coll, 1), num_at(coll, 2),
			collected, uncollectable, p[0], p[1], p[2],
		};
		W(a, hs_rec_writer_sample(a->w, t->index, HS_REC_SERIES_PY, v, HS_REC_PY_COLUMNS));
		cJSON_Delete(j);
	}
	t->next_stats = now + a->o->heap_every_us * 1000;
	if (!t->a || a->o->types <= 0)
		return;
	if (now < t->next_types)
		return;
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "TYPES %d", a->o->types);
	j = ask(a, t, cmd, REQUEST_TIMEOUT * 5, why, sizeof(why));
	int64_t every = a->o->heap_every_us * 1000;
	if (j) {
		const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "types");
		int n = cJSON_GetArraySize(types);
		hs_rec_type_row *rows = hs_calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
		if (rows) {
			int k = 0;
			const cJSON *e;
			cJSON_ArrayForEach(e, types) {
				const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
				rows[k].name = cJSON_IsString(name) ? name->valuestring : "?";
				rows[k].count = num(e, "count");
				rows[k].bytes = num(e, "bytes");
				k++;
			}
			const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "seconds");
			double s = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
			W(a, hs_rec_writer_types(a->w, t->index, agent_us(a, cJSON_GetObjectItem(j, "t")),
			                         num(j, "objects"), num(j, "bytes"), (int64_t)(s * 1e6), rows,
			                         (size_t)k));
			hs_free(rows);
			/* keep the walks under TYPES_SHARE of the target's time */
			int64_t spaced = (int64_t)(s / TYPES_SHARE * 1e9);
			if (spaced > every)
				every = spaced;
		}
		cJSON_Delete(j);
	} else if (t->a) {
		note(a, (ptrdiff_t)t->index, 1, "TYPES failed: %s", why);
		every *= 10;
	}
	t->next_types = now + every;
}

static void snapshot(hs_agents *a, target *t, hs_rec_snapshot_trigger trigger)
{
	char name[PATH_MAX + 64], path[2 * PATH_MAX + 128], cmd[HS_AGENT_LINE_MAX], why[512];
	t->snap_seq++;
	snprintf(name, sizeof(name), "%s.%d.%d.hsnap", a->snap_base, t->pid, t->snap_seq);
	snprintf(path, sizeof(path), "%s/%s", a->snap_dir, name);
	int64_t t0 = mono_ns();
	if (strlen(path) + 6 > sizeof(cmd)) {
		W(a, hs_rec_writer_snapshot(a->w, t->index, rel_us(a, t0), trigger, NULL, -1, -1, -1,
		                            "the snapshot's path is too long for the agent protocol"));
		return;
	}
	snprintf(cmd, sizeof(cmd), "DUMP %.*s", (int)(sizeof(cmd) - 6), path);
	struct timespec sent;
	clock_gettime(CLOCK_REALTIME, &sent);
	cJSON *j = ask(a, t, cmd, DUMP_TIMEOUT, why, sizeof(why));
	if (j && hs_agent_check_dump(t->a, j, path, (double)sent.tv_sec + (double)sent.tv_nsec * 1e-9) < 0) {
		/* the reply names no snapshot of that process: not a working agent */
		snprintf(why, sizeof(why), "%s", hs_error_last());
		cJSON_Delete(j);
		j = NULL;
		hs_agent_free(t->a);
		t->a = NULL;
		t->gave_up = 1;
	}
	if (j) {
		const cJSON *pause = cJSON_GetObjectItemCaseSensitive(j, "pause_seconds");
		W(a, hs_rec_writer_snapshot(a->w, t->index, rel_us(a, t0), trigger, name,
		                            num(j, "objects"), num(j, "bytes"),
		                            cJSON_IsNumber(pause) ? (int64_t)(pause->valuedouble * 1e6) : -1,
		                            NULL));
		cJSON_Delete(j);
	} else {
		W(a, hs_rec_writer_snapshot(a->w, t->index, rel_us(a, t0), trigger, NULL, -1, -1, -1, why));
	}
	t->snap_base_kib = t->rss_kib;
}

/* ---- --lines: the agent's TRACK replies into TRACK/SITES/SITE_DELTA/PEAK blocks ---- */

static int64_t inum(const cJSON *v)
{
	return cJSON_IsNumber(v) ? (int64_t)(v->valuedouble < 0 ? v->valuedouble - 0.5 : v->valuedouble + 0.5) : 0;
}

static int64_t inum_at(const cJSON *arr, int i)
{
	return inum(cJSON_IsArray(arr) ? cJSON_GetArrayItem(arr, i) : NULL);
}

static const char *str_at(const cJSON *arr, int i)
{
	const cJSON *v = cJSON_IsArray(arr) ? cJSON_GetArrayItem(arr, i) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void track_reply(hs_agents *a, target *t, const cJSON *j)
{
	int64_t now = agent_us(a, cJSON_GetObjectItemCaseSensitive(j, "t"));
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(j, "settings");
	if (cJSON_IsObject(set) && !t->track_settings) {
		t->track_settings = 1;
		hs_rec_track_settings s = { 0 };
		const cJSON *seed = cJSON_GetObjectItemCaseSensitive(set, "seed");
		const cJSON *basis = cJSON_GetObjectItemCaseSensitive(set, "peak_basis");
		s.flags = (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "exact")) ? HS_REC_TRACK_EXACT : 0) |
		          (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "native")) ? HS_REC_TRACK_NATIVE : 0) |
		          (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "all_frames")) ? HS_REC_TRACK_ALL_FRAMES : 0) |
		          (cJSON_IsNumber(seed) ? HS_REC_TRACK_SEEDED : 0) |
		          (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "from_now")) ? HS_REC_TRACK_FROM_NOW : 0);
		s.sample_bytes = inum(cJSON_GetObjectItemCaseSensitive(set, "sample_bytes"));
		s.seed = cJSON_IsNumber(seed) ? (uint64_t)seed->valuedouble : 0;
		s.peak_basis = cJSON_IsString(basis) ? basis->valuestring : "";
		W(a, hs_rec_writer_track(a->w, t->index, agent_us(a, cJSON_GetObjectItemCaseSensitive(set, "t")), &s));
	}
	const cJSON *locs = cJSON_GetObjectItemCaseSensitive(j, "locs");
	const cJSON *stacks = cJSON_GetObjectItemCaseSensitive(j, "stacks");
	int nl = cJSON_GetArraySize(locs), ns = cJSON_GetArraySize(stacks);
	if (nl > 0 || ns > 0) {
		hs_rec_site_loc *l = hs_calloc(nl > 0 ? (size_t)nl : 1, sizeof(*l));
		hs_rec_site_stack *st = hs_calloc(ns > 0 ? (size_t)ns : 1, sizeof(*st));
		uint32_t **fr = hs_calloc(ns > 0 ? (size_t)ns : 1, sizeof(*fr));
		int ok = l && st && fr;
		int k = 0;
		const cJSON *e;
		cJSON_ArrayForEach(e, locs) {
			if (!ok)
				break;
			/* dense ids: take the next one expected, skip what we have */
			if (inum_at(e, 0) != (int64_t)t->known_locs + k)
				continue;
			l[k].id = (uint32_t)inum_at(e, 0);
			l[k].file = str_at(e, 1);
			l[k].function = str_at(e, 2);
			l[k].line = (int32_t)inum_at(e, 3);
			l[k].first_line = (int32_t)inum_at(e, 4);
			l[k].flags = (unsigned)inum_at(e, 5);
			k++;
		}
		int kl = k;
		k = 0;
		cJSON_ArrayForEach(e, stacks) {
			if (!ok)
				break;
			if (inum_at(e, 0) != (int64_t)t->known_stacks + k)
				continue;
			const cJSON *frames = cJSON_GetArrayItem(e, 5);
			int nf = cJSON_GetArraySize(frames);
			fr[k] = hs_calloc(nf > 0 ? (size_t)nf : 1, sizeof(uint32_t));
			if (!fr[k]) {
				ok = 0;
				break;
			}
			for (int f = 0; f < nf; f++)
				fr[k][f] = (uint32_t)inum_at(frames, f);
			st[k].id = (uint32_t)inum_at(e, 0);
			st[k].defined = 1;
			st[k].kind = (unsigned)inum_at(e, 1);
			st[k].tid = inum_at(e, 2);
			st[k].thread = str_at(e, 3);
			st[k].truncated = (int)inum_at(e, 4);
			st[k].n = (size_t)nf;
			st[k].locs = fr[k];
			k++;
		}
		int ks = k;
		if (ok && (kl || ks)) {
			int wrc;
			pthread_mutex_lock(a->wlock);
			wrc = hs_rec_writer_sites(a->w, t->index, l, (size_t)kl, st, (size_t)ks);
			pthread_mutex_unlock(a->wlock);
			if (wrc == 0) {
				t->known_locs += (uint32_t)kl;
				t->known_stacks += (uint32_t)ks;
			}
		}
		for (int i = 0; fr && i < ns; i++)
			hs_free(fr[i]);
		hs_free(fr);
		hs_free(st);
		hs_free(l);
	}
	const cJSON *figs = cJSON_GetObjectItemCaseSensitive(j, "figures");
	int nd = cJSON_GetArraySize(figs);
	if (nd > 0 && t->known_stacks > 0) {
		if (t->prev_cap < t->known_stacks) {
			size_t cap = t->prev_cap ? t->prev_cap : 64;
			while (cap < t->known_stacks)
				cap *= 2;
			int64_t (*np)[4] = hs_reallocarray(t->prev, cap, sizeof(*np));
			if (np) {
				memset(np + t->prev_cap, 0, (cap - t->prev_cap) * sizeof(*np));
				t->prev = np;
				t->prev_cap = cap;
			}
		}
		hs_rec_site_fig *rows = hs_calloc((size_t)nd, sizeof(*rows));
		if (rows) {
			int k = 0;
			const cJSON *e;
			cJSON_ArrayForEach(e, figs) {
				int64_t id = inum_at(e, 0);
				if (id < 0 || (uint64_t)id >= t->known_stacks || (size_t)id >= t->prev_cap)
					continue; /* a stack not defined in the recording yet: next time */
				int64_t v[4] = { inum_at(e, 1), inum_at(e, 2), inum_at(e, 3), inum_at(e, 4) };
				int64_t *p = t->prev[id];
				if (v[0] == p[0] && v[1] == p[1] && v[2] == p[2] && v[3] == p[3])
					continue;
				rows[k].stack = (uint32_t)id;
				rows[k].alloc_n = v[0] - p[0];
				rows[k].alloc_b = v[1] - p[1];
				rows[k].live_n = v[2] - p[2];
				rows[k].live_b = v[3] - p[3];
				memcpy(p, v, sizeof(v));
				k++;
			}
			if (k > 0)
				W(a, hs_rec_writer_site_delta(a->w, t->index, now, rows, (size_t)k));
			hs_free(rows);
		}
	}
	const cJSON *peak = cJSON_GetObjectItemCaseSensitive(j, "peak");
	if (cJSON_IsObject(peak) && inum(cJSON_GetObjectItemCaseSensitive(peak, "bytes")) != t->known_peak) {
		t->known_peak = inum(cJSON_GetObjectItemCaseSensitive(peak, "bytes"));
		const cJSON *ps = cJSON_GetObjectItemCaseSensitive(peak, "stacks");
		int np = cJSON_GetArraySize(ps);
		hs_rec_site_fig *rows = hs_calloc(np > 0 ? (size_t)np : 1, sizeof(*rows));
		if (rows) {
			int k = 0;
			const cJSON *e;
			cJSON_ArrayForEach(e, ps) {
				if (inum_at(e, 0) < 0 || (uint64_t)inum_at(e, 0) >= t->known_stacks)
					continue;
				rows[k].stack = (uint32_t)inum_at(e, 0);
				rows[k].live_n = inum_at(e, 1);
				rows[k].live_b = inum_at(e, 2);
				k++;
			}
			W(a, hs_rec_writer_peak(a->w, t->index, now, t->known_peak, rows, (size_t)k));
			hs_free(rows);
		}
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "final")))
		t->track = 2;
}

static void track_ask(hs_agents *a, target *t, const char *verb)
{
	char why[512], cmd[400];
	if (!strncmp(verb, "TRACK START", 11))
		snprintf(cmd, sizeof(cmd), "%s", verb);
	else
		snprintf(cmd, sizeof(cmd), "%s %u %u %lld", verb, t->known_locs, t->known_stacks,
		         (long long)t->known_peak);
	cJSON *j = ask(a, t, cmd, REQUEST_TIMEOUT * 5, why, sizeof(why));
	if (j) {
		track_reply(a, t, j);
		cJSON_Delete(j);
	} else if (t->a) {
		note(a, (ptrdiff_t)t->index, 1, "allocation tracking: %s failed: %s", verb, why);
		if (!strncmp(verb, "TRACK START", 11))
			t->track = 2; /* refused: no figures from this process */
	}
}

/* The figures a process wrote at its exit (its agent's atexit): the last
 * second that no poll could read. */
static void track_final_file(hs_agents *a, target *t)
{
	if (!a->o->lines || !a->dir[0] || t->track == 2)
		return;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/track-%d.json", a->dir, t->pid);
	FILE *f = fopen(path, "rbe");
	if (!f)
		return;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len > HS_AGENT_REPLY_MAX_LARGE) { /* bounded like a reply */
			hs_free(buf);
			buf = NULL;
			break;
		}
		if (len + 65536 > cap) {
			cap = cap ? cap * 2 : 131072;
			char *nb = hs_reallocarray(buf, cap + 1, 1);
			if (!nb)
				break;
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	fclose(f);
	unlink(path);
	if (!buf)
		return;
	buf[len] = '\0';
	cJSON *j = cJSON_Parse(buf);
	hs_free(buf);
	if (j && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")))
		track_reply(a, t, j);
	else
		note(a, (ptrdiff_t)t->index, 1, "allocation tracking: the figures process %d wrote at its "
		     "exit do not parse", t->pid);
	cJSON_Delete(j);
	t->track = 2;
}

static void serve(hs_agents *a, target *t, int64_t now)
{
	const hs_record_options *o = a->o;
	if (!t->a) {
		if (t->gave_up || now < t->next_try)
			return;
		if (!t->first_try)
			t->first_try = now;
		hs_agent *ag;
		int rc = hs_agent_connect(&ag, t->pid, REQUEST_TIMEOUT);
		if (rc < 0) {
			/* an interpreter starts its agent during start-up: try again
			 * for a while; a --pid target has one or not. A child just
			 * forked still holds its parent's agent socket (HS_EFORMAT:
			 * served by the parent) until its own agent starts. */
			int64_t patience = o->argv ? CONNECT_PATIENCE_NS : 0;
			if (now - t->first_try >= patience ||
			    (rc != HS_ENOTFOUND && rc != HS_EIO && rc != HS_EFORMAT)) {
				t->gave_up = 1;
				note(a, (ptrdiff_t)t->index, 0, "no heapsnap agent in process %d (%s): /proc "
				     "figures only", t->pid, hs_error_last());
			}
			t->next_try = now + CONNECT_RETRY_NS;
			return;
		}
		t->a = ag;
		W(a, hs_rec_writer_proc_flags(a->w, t->index, rel_us(a, now), HS_REC_PROC_AGENT));
		t->next_stats = t->next_types = t->next_poll = now;
		t->next_snap = o->snapshot_every_us ? now + o->snapshot_every_us * 1000 : INT64_MAX;
	}
	if (t->a && o->lines && t->track != 2 && now >= t->next_track) {
		if (!t->track) {
			t->track = 1;
			if (!o->argv) { /* --pid: "growth from now on" */
				char cmd[300];
				snprintf(cmd, sizeof(cmd), "TRACK START %s", o->track_opts ? o->track_opts : "");
				track_ask(a, t, cmd);
			} else {
				track_ask(a, t, "TRACK READ");
			}
		} else {
			track_ask(a, t, "TRACK READ");
		}
		t->next_track = mono_ns() + TRACK_POLL_NS;
	}
	if (t->a && now >= t->next_poll) {
		poll_events(a, t);
		t->next_poll = now + POLL_NS;
	}
	if (t->a && o->heap_every_us > 0 && now >= t->next_stats)
		heap_figures(a, t, now);
	if (t->a && o->snapshot_every_us && now >= t->next_snap) {
		snapshot(a, t, HS_REC_SNAP_SCHEDULE);
		t->next_snap = mono_ns() + o->snapshot_every_us * 1000;
	}
	if (t->a && o->snapshot_growth > 0) {
		pthread_mutex_lock(&a->lock);
		int64_t rss = t->rss_kib;
		pthread_mutex_unlock(&a->lock);
		if (t->snap_base_kib < 0 && rss > 0)
			t->snap_base_kib = rss;
		else if (rss > 0 && (double)rss >= (double)t->snap_base_kib * (1.0 + o->snapshot_growth))
			snapshot(a, t, HS_REC_SNAP_GROWTH);
	}
}

static void *run(void *arg)
{
	hs_agents *a = arg;
	for (;;) {
		pthread_mutex_lock(&a->lock);
		if (a->stop) {
			pthread_mutex_unlock(&a->lock);
			break;
		}
		/* drop the targets that ended */
		for (size_t i = 0; i < a->n;) {
			if (a->t[i]->gone) {
				track_final_file(a, a->t[i]);
				hs_free(a->t[i]->prev);
				hs_agent_free(a->t[i]->a);
				hs_free(a->t[i]);
				a->t[i] = a->t[--a->n];
			} else {
				i++;
			}
		}
		size_t n = a->n;
		target **list = hs_malloc((n ? n : 1) * sizeof(*list));
		if (list && n)
			memcpy(list, a->t, n * sizeof(*list));
		pthread_mutex_unlock(&a->lock);
		/* targets are freed only by this thread: the copy stays valid */
		for (size_t i = 0; list && i < n; i++)
			serve(a, list[i], mono_ns());
		hs_free(list);
		pthread_mutex_lock(&a->lock);
		if (!a->stop) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_nsec -= 1000000000;
				until.tv_sec++;
			}
			pthread_cond_timedwait(&a->cond, &a->lock, &until);
		}
		pthread_mutex_unlock(&a->lock);
	}
	return NULL;
}

int hs_agents_start(hs_agents *a)
{
	if (pthread_create(&a->thread, NULL, run, a) != 0)
		return hs_error_set(HS_EIO, "cannot start the agents' thread: %s", strerror(errno));
	a->started = 1;
	return 0;
}

void hs_agents_stop(hs_agents *a)
{
	if (!a->started)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = 1;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	a->started = 0;
	/* the last markers of the processes still running */
	for (size_t i = 0; i < a->n; i++)
		if (a->t[i]->a && !a->t[i]->gone)
			poll_events(a, a->t[i]);
	/* --lines: the last figures; tracking stops and the allocators are
	 * restored in the processes that go on */
	for (size_t i = 0; a->o->lines && i < a->n; i++) {
		target *t = a->t[i];
		if (t->gone)
			track_final_file(a, t);
		else if (t->a && t->track == 1)
			track_ask(a, t, "TRACK STOP");
		if (t->track != 2)
			track_final_file(a, t);
	}
}

void hs_agents_free(hs_agents *a)
{
	if (!a)
		return;
	hs_agents_stop(a);
	for (size_t i = 0; i < a->n; i++) {
		hs_agent_free(a->t[i]->a);
		hs_free(a->t[i]->prev);
		hs_free(a->t[i]);
	}
	hs_free(a->t);
	if (a->dir[0]) {
		/* sockets of agents that did not clean up after themselves */
		DIR *d = opendir(a->dir);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strncmp(e->d_name, "agent-", 6) || !strncmp(e->d_name, "track-", 6) ||
			    !strcmp(e->d_name, "owner")) {
				char p[PATH_MAX + 300];
				snprintf(p, sizeof(p), "%s/%s", a->dir, e->d_name);
				unlink(p);
			}
		}
		if (d)
			closedir(d);
		rmdir(a->dir);
	}
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	hs_free(a);
}
