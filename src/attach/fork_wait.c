/*
 * attach/fork_wait.c: the injector's side of fork mode: wait for the status
 * file the target's forked child writes (heapsnap/attach.h), and remove a
 * dump's partial files when it fails.
 *
 * The status file sits beside the output, often in a shared directory: it
 * is read only when it is a regular file (never through a symbolic link) of
 * the target's user or ours, and only when its "pid" line names the child
 * we wait for; one a killed dump left behind is removed once its writer is
 * gone, and never taken for this dump's result.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "util/file.h"

/* The dump of `path` failed: every temporary file of it and of its status
 * file goes, a writer still running included (a fork-mode child whose
 * target died would otherwise put a snapshot in place after we said none
 * was written; its rename then fails). */
void hs_attach__remove_partial(const char *path)
{
	char status[HS_ATTACH_PATH_MAX + 32];
	snprintf(status, sizeof(status), "%s%s", path, HS_ATTACH_STATUS_SUFFIX);
	hs_file_remove_temps(path, HS_FILE_ANY_WRITER);
	hs_file_remove_temps(status, HS_FILE_ANY_WRITER);
}

/* The writer's pid on a "pid N" line of a status text, or 0. */
static long status_pid(const char *text)
{
	const char *p = text;
	while (p && *p) {
		if (!strncmp(p, "pid ", 4))
			return strtol(p + 4, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

static int pid_gone(long pid)
{
	hs_proc_status st;
	return pid <= 0 || hs_attach__status(&st, (pid_t)pid) < 0 || st.state == 'Z' ||
	       st.state == 'X';
}

/*
 * Read the status file into text (NUL-terminated) if it is there and is
 * `child`'s. @return 1 read, 0 not there (yet), or a negative hs_error_code
 * when what is at that name must not be read (message set).
 */
static int read_status(char *text, size_t cap, const char *status, int child, uid_t owner)
{
	int fd = open(status, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			return hs_error_set(HS_EIO, "refusing to read '%s': it is a symbolic link (another "
			                    "user may have planted it); remove it, or choose another output "
			                    "path", status);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", status, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != owner && st.st_uid != geteuid())) {
		close(fd);
		return hs_error_set(HS_EIO, "refusing to read '%s': it is not a regular file of the "
		                    "process's user or ours; remove it, or choose another output path",
		                    status);
	}
	size_t n = 0;
	ssize_t k;
	while (n < cap - 1 && ((k = read(fd, text + n, cap - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
		if (k > 0)
			n += (size_t)k;
	close(fd);
	text[n] = '\0';
	long pid = status_pid(text);
	if (pid != 0 && pid != child) {
		/* a killed dump's: gone once its writer is */
		if (pid_gone(pid))
			unlink(status);
		return 0;
	}
	return 1;
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
	int gone_polls = 0, found = 0;
	hs_proc_status target;
	uid_t owner = hs_attach__status(&target, (pid_t)pid) == 0 ? target.euid : geteuid();
	char text[4096];
	for (;;) {
		if ((found = read_status(text, sizeof(text), status, child, owner)) != 0)
			break;
		if (!child_alive(child)) {
			/* its last write may have raced with our look: look twice */
			if (++gone_polls > 2)
				break;
		}
		if (hs_attach__now() > deadline || hs_attach_interrupted())
			break;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (found < 0)
		return found;
	if (!found && hs_attach_interrupted())
		return hs_error_set(HS_EUSER, "interrupted by signal %d", hs_attach_interrupted());
	if (!found) {
		hs_attach__remove_partial(path);
		if (child_alive(child))
			return hs_error_set(HS_EIO, "the child forked by process %d (pid %d) did not finish "
			                    "within %.3g s; no snapshot was written", pid, child, timeout + 10);
		return hs_error_set(HS_EIO, "the child forked by process %d (pid %d) ended without "
		                    "writing the snapshot (killed by its %.3g s watchdog, or by a "
		                    "signal); nothing was written", pid, child, timeout);
	}
	char message[1024] = "";
	int ok = 0;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
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
	unlink(status);
	if (!ok)
		return hs_error_set(HS_EIO, "the child forked by process %d could not write the "
		                    "snapshot: %s", pid, message[0] ? message : "no message");
	return 0;
}


int hs_attach__fork_writer(const char *path)
{
	char pat[HS_ATTACH_PATH_MAX + 16];
	snprintf(pat, sizeof(pat), "%s" HS_FILE_TMP_INFIX "*", path);
	glob_t g;
	int found = 0;
	if (glob(pat, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g) != 0)
		return 0;
	size_t pl = strlen(path) + strlen(HS_FILE_TMP_INFIX);
	for (size_t i = 0; i < g.gl_pathc && !found; i++) {
		const char *s = g.gl_pathv[i] + pl;
		long pid = 0;
		while (*s >= '0' && *s <= '9' && pid < 1 << 22)
			pid = pid * 10 + (*s++ - '0');
		if (*s == '.' && pid > 0 && child_alive((int)pid))
			found = (int)pid;
	}
	globfree(&g);
	return found;
}
