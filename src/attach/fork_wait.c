/*
 * attach/fork_wait.c: the injector's side of fork mode: wait for the status
 * file the target's forked child writes (heapsnap/attach.h), and remove a
 * dump's partial files when it fails.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach_internal.h"

void hs_attach__remove_partial(const char *path)
{
	char pat[HS_ATTACH_PATH_MAX + 16];
	snprintf(pat, sizeof(pat), "%s.tmp.??????", path);
	glob_t g;
	if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
		globfree(&g);
	}
}

/* The child is alive (not a zombie, not gone). */
static int child_alive(int pid)
{
	hs_proc_status st;
	if (hs_attach__status(&st, (pid_t)pid) < 0)
		return 0;
	return st.state != 'Z' && st.state != 'X';
}

/*
 * Fork mode: the target forked a child that walks and writes; it is not our
 * child, so wait for its status file (heapsnap/attach.h), polling, until
 * the watchdog's timeout and a margin have passed or the child is gone.
 */
int hs_attach__wait_fork_child(hs_fork_status *fs, int pid, int child, const char *path, double timeout)
{
	char status[HS_ATTACH_PATH_MAX + 32];
	snprintf(status, sizeof(status), "%s%s", path, HS_ATTACH_STATUS_SUFFIX);
	if (child <= 0)
		return hs_error_set(HS_EIO, "process %d did not report its forked child", pid);
	double deadline = hs_attach__now() + timeout + 10;
	int gone_polls = 0;
	FILE *f = NULL;
	for (;;) {
		f = fopen(status, "re");
		if (f)
			break;
		if (!child_alive(child)) {
			/* its last write may have raced with our look: look twice */
			if (++gone_polls > 2)
				break;
		}
		if (hs_attach__now() > deadline)
			break;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (!f) {
		hs_attach__remove_partial(path);
		if (child_alive(child))
			return hs_error_set(HS_EIO, "the child forked by process %d (pid %d) did not finish "
			                    "within %.3g s; no snapshot was written", pid, child, timeout + 10);
		return hs_error_set(HS_EIO, "the child forked by process %d (pid %d) ended without "
		                    "writing the snapshot (killed by its %.3g s watchdog, or by a "
		                    "signal); nothing was written", pid, child, timeout);
	}
	char line[2048], message[1024] = "";
	int ok = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "ok"))
			ok = atoi(v);
		else if (!strcmp(line, "objects"))
			fs->objects = strtoull(v, NULL, 10);
		else if (!strcmp(line, "edges"))
			fs->edges = strtoull(v, NULL, 10);
		else if (!strcmp(line, "bytes"))
			fs->bytes = strtoull(v, NULL, 10);
		else if (!strcmp(line, "child_seconds"))
			fs->child_seconds = strtod(v, NULL);
		else if (!strcmp(line, "child_private_dirty_bytes"))
			fs->private_dirty = strtoll(v, NULL, 10);
		else if (!strcmp(line, "message"))
			snprintf(message, sizeof(message), "%s", v);
	}
	fclose(f);
	unlink(status);
	if (!ok)
		return hs_error_set(HS_EIO, "the child forked by process %d could not write the "
		                    "snapshot: %s", pid, message[0] ? message : "no message");
	return 0;
}

