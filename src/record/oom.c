/*
 * record/oom.c: telling an OOM kill from any other SIGKILL.
 *
 * Two witnesses, either enough:
 *  - the memory cgroup's OOM kill counter (cgroup v2 memory.events
 *    "oom_kill", v1 memory.oom_control "oom_kill"), read when the process
 *    is first seen and again when it dies of SIGKILL: it rose;
 *  - the kernel log (/dev/kmsg, readable by root), opened at the start and
 *    read from its end: "Killed process PID" / "oom-kill:...,pid=PID,".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/record_internal.h"
#include "util/alloc.h"

#define MAX_TRACKED 4096
#define MAX_KILLED 64

typedef struct tracked {
	int pid;
	char *counter; /* path of the file holding oom_kill */
	int64_t base;
} tracked;

struct hs_oom_watch {
	tracked *t;
	size_t n, cap;
	int kmsg;
	int killed[MAX_KILLED]; /* pids the kernel log named, newest last */
	size_t killed_n;
};

int hs_oom_watch_new(hs_oom_watch **out)
{
	hs_oom_watch *w = hs_calloc(1, sizeof(*w));
	if (!w)
		return HS_ENOMEM;
	w->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->kmsg >= 0)
		lseek(w->kmsg, 0, SEEK_END);
	*out = w;
	return 0;
}

static int64_t read_oom_kill(const char *path)
{
	char buf[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (char *s = buf; s && *s;) {
		if (!strncmp(s, "oom_kill ", 9))
			return strtoll(s + 9, NULL, 10);
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return -1;
}

/* The file with the oom_kill count of pid's memory cgroup, or NULL. */
static char *counter_path(int pid)
{
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *controllers = c1 + 1, *cg = c2 + 1;
		char cand[2][1200];
		int ncand = 0;
		if (!strcmp(line, "0") && !*controllers) {
			snprintf(cand[ncand++], sizeof(cand[0]), "/sys/fs/cgroup%s/memory.events", cg);
			snprintf(cand[ncand++], sizeof(cand[0]), "/sys/fs/cgroup/unified%s/memory.events", cg);
		} else if (strstr(controllers, "memory")) {
			snprintf(cand[ncand++], sizeof(cand[0]), "/sys/fs/cgroup/memory%s/memory.oom_control", cg);
			/* inside a cgroup namespace the path may be relative to our root */
			snprintf(cand[ncand++], sizeof(cand[0]), "/sys/fs/cgroup/memory/memory.oom_control");
		}
		for (int i = 0; i < ncand && !found; i++)
			if (read_oom_kill(cand[i]) >= 0)
				found = hs_strdup(cand[i]);
	}
	fclose(f);
	return found;
}

void hs_oom_watch_track(hs_oom_watch *w, int pid)
{
	if (w->n >= MAX_TRACKED)
		return;
	char *p = counter_path(pid);
	if (!p)
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		tracked *t = hs_reallocarray(w->t, cap, sizeof(*t));
		if (!t) {
			hs_free(p);
			return;
		}
		w->t = t;
		w->cap = cap;
	}
	w->t[w->n].pid = pid;
	w->t[w->n].counter = p;
	w->t[w->n].base = read_oom_kill(p);
	w->n++;
}

static void drain_kmsg(hs_oom_watch *w)
{
	if (w->kmsg < 0)
		return;
	char rec[8192];
	for (;;) {
		ssize_t n = read(w->kmsg, rec, sizeof(rec) - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE) /* overwritten while we were away: go on */
				continue;
			break;
		}
		if (n == 0)
			break;
		rec[n] = '\0';
		const char *msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		int pid = 0;
		const char *p;
		if ((p = strstr(msg, "Killed process ")))
			pid = atoi(p + 15);
		else if (!strncmp(msg, "oom-kill:", 9) && (p = strstr(msg, ",pid=")))
			pid = atoi(p + 5);
		if (pid > 0) {
			if (w->killed_n == MAX_KILLED) {
				memmove(w->killed, w->killed + 1, (MAX_KILLED - 1) * sizeof(int));
				w->killed_n--;
			}
			w->killed[w->killed_n++] = pid;
		}
	}
}

unsigned hs_oom_watch_check(hs_oom_watch *w, int pid)
{
	unsigned flags = 0;
	for (size_t i = 0; i < w->n; i++) {
		if (w->t[i].pid != pid)
			continue;
		int64_t now = read_oom_kill(w->t[i].counter);
		if (now >= 0 && w->t[i].base >= 0 && now > w->t[i].base) {
			flags |= HS_REC_EXIT_OOM_CGROUP;
			/* that kill is accounted for: another SIGKILL in the same
			 * cgroup needs a new one */
			for (size_t k = 0; k < w->n; k++)
				if (!strcmp(w->t[k].counter, w->t[i].counter))
					w->t[k].base = now;
		}
	}
	drain_kmsg(w);
	for (size_t i = 0; i < w->killed_n; i++)
		if (w->killed[i] == pid)
			flags |= HS_REC_EXIT_OOM_KERNEL;
	return flags;
}

void hs_oom_watch_forget(hs_oom_watch *w, int pid)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->t[i].pid != pid)
			continue;
		hs_free(w->t[i].counter);
		w->t[i] = w->t[--w->n];
		return;
	}
}

void hs_oom_watch_free(hs_oom_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		hs_free(w->t[i].counter);
	hs_free(w->t);
	if (w->kmsg >= 0)
		close(w->kmsg);
	hs_free(w);
}
