/*
 * attach/agent.c: the client of the in-process agent (heapsnap/agent.h,
 * formats/agent-protocol.md).
 *
 * Finding the socket: the agent names it after its own pid in a directory
 * of its user; the client reads the target's environment and uid in /proc
 * and goes through /proc/PID/root, so a target in another mount namespace
 * (a container) is reached by the path it bound. When neither place has
 * it, the target's open sockets are matched against /proc/PID/net/unix
 * (the bound path of each listening socket in the target's network
 * namespace): that finds an agent whose pid differs in the target's pid
 * namespace, or whose HEAPSNAP_AGENT_DIR was set after the program
 * started. A socket is used only when it belongs to the target's
 * effective uid: another user's socket under a predictable name could
 * otherwise impersonate the agent.
 *
 * A path too long for sockaddr_un (108 bytes) is reached through an
 * O_PATH descriptor of its directory: /proc/self/fd/N/NAME.
 *
 * Every wait has a deadline (poll); writes use MSG_NOSIGNAL, so a closed
 * connection is an error, not a SIGPIPE.
 *
 * Nothing an agent sends is trusted: a socket of the right owner may still
 * be answered by another program (one that inherited the descriptor, or a
 * process of the same user that bound the name first). The peer must be
 * the target or its descendant (SO_PEERCRED), a reply line is bounded
 * (HS_AGENT_REPLY_MAX), and hs_agent_call checks every field the clients
 * read before they use it: a count of -1 or 1e300 would otherwise become
 * 18446744073709551615 objects.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attach/attach_internal.h"
#include "heapsnap/agent.h"
#include "heapsnap/format.h"
#include "util/alloc.h"

struct hs_agent {
	int fd;
	int pid;
	unsigned uid;  /* the target's effective uid */
	char path[HS_ATTACH_PATH_MAX];
	char *hello;
	char *buf; /* bytes received after the last reply line */
	size_t len, cap;
};

static int validate_reply(const hs_agent *a, const char *command, const char *text, cJSON **out);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Milliseconds left before `deadline` (0: none) for poll(); -1 forever. */
static int ms_left(double deadline)
{
	if (deadline <= 0)
		return -1;
	double left = deadline - now();
	if (left <= 0)
		return 0;
	return left > 86400.0 ? 86400000 : (int)(left * 1000.0) + 1;
}

/* ------------------------------------------------------------------ */
/* Finding the socket                                                  */

/* HEAPSNAP_AGENT_DIR from the target's initial environment; 1 if unset. */
static int environ_dir(int pid, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 1;
	static const char key[] = "HEAPSNAP_AGENT_DIR=";
	char item[4096 + sizeof(key)];
	size_t n = 0;
	int c, found = 1;
	for (;;) {
		c = getc(f);
		if (c == EOF || c == '\0') {
			item[n] = '\0';
			if (n > sizeof(key) - 1 && !strncmp(item, key, sizeof(key) - 1) &&
			    strlen(item + sizeof(key) - 1) < size) {
				strcpy(out, item + sizeof(key) - 1);
				found = 0;
			}
			n = 0;
			if (c == EOF)
				break;
			continue;
		}
		if (n + 1 < sizeof(item))
			item[n++] = (char)c;
	}
	fclose(f);
	return found;
}

/*
 * Is `path` a socket of `uid`? 0 yes; 1 no such file (or not reachable);
 * HS_EIO when it exists but is no socket or belongs to someone else
 * (message set).
 */
static int check_socket(const char *path, unsigned uid, int pid)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 1;
	if (!S_ISSOCK(st.st_mode))
		return hs_error_set(HS_EIO, "'%s' is not a socket: not the agent of process %d", path, pid);
	if (st.st_uid != uid)
		return hs_error_set(HS_EIO, "'%s' belongs to uid %u, not to the user of process %d "
		                    "(uid %u): not used", path, (unsigned)st.st_uid, pid, uid);
	return 0;
}

/* "agent-<digits>.sock" */
static int agent_name(const char *base)
{
	if (strncmp(base, "agent-", 6) != 0)
		return 0;
	const char *p = base + 6;
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return !strcmp(p, ".sock");
}

/* The bound path of a listening socket named agent-N.sock among the open
 * descriptors of `pid`; 1 if none. */
static int scan_fds(int pid, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/net/unix", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 1;
	/* candidates: inode -> path, listening sockets with an agent's name */
	struct cand {
		unsigned long inode;
		char *path;
	} *c = NULL;
	size_t nc = 0;
	char line[4096 + 256];
	int rc = 1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long flags, inode;
		unsigned type, st;
		int off = 0;
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %lx %x %x %lu %n", &flags, &type, &st, &inode, &off) != 4 || !off)
			continue;
		if (!(flags & 0x10000) || type != 1) /* __SO_ACCEPTCON, SOCK_STREAM */
			continue;
		char *p = line + off;
		p[strcspn(p, "\n")] = '\0';
		const char *base = strrchr(p, '/');
		if (p[0] != '/' || !base || !agent_name(base + 1) || nc >= 4096)
			continue;
		struct cand *nv = hs_reallocarray(c, nc + 1, sizeof(*c));
		char *dup = nv ? hs_strdup(p) : NULL;
		if (!nv || !dup) {
			hs_free(dup);
			if (nv)
				c = nv;
			break;
		}
		c = nv;
		c[nc].inode = inode;
		c[nc].path = dup;
		nc++;
	}
	fclose(f);
	if (nc) {
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && rc == 1 && (e = readdir(d)) != NULL) {
			char link[320], target[64];
			if (e->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "/proc/%d/fd/%s", pid, e->d_name);
			ssize_t n = readlink(link, target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			unsigned long inode;
			if (sscanf(target, "socket:[%lu]", &inode) != 1)
				continue;
			for (size_t i = 0; i < nc; i++) {
				if (c[i].inode == inode && strlen(c[i].path) < size) {
					strcpy(out, c[i].path);
					rc = 0;
					break;
				}
			}
		}
		if (d)
			closedir(d);
	}
	for (size_t i = 0; i < nc; i++)
		hs_free(c[i].path);
	hs_free(c);
	return rc;
}

int hs_agent_find(char *out, size_t size, int pid)
{
	if (!out || size < 64 || pid <= 0)
		return hs_error_set(HS_EINVAL, "hs_agent_find: bad argument");
	hs_proc_status st;
	if (hs_attach__status(&st, (pid_t)pid) < 0)
		return hs_error_set(HS_ENOTFOUND, "no such process: %d", pid);
	unsigned uid = (unsigned)st.euid;
	if (geteuid() != 0 && (st.euid != geteuid() || st.ruid != geteuid()))
		return hs_error_set(HS_EIO, "process %d belongs to another user (uid %u); run heapsnap "
		                    "as that user, or as root", pid, uid);
	char dir[HS_ATTACH_PATH_MAX], cand[HS_ATTACH_PATH_MAX + 128];
	int refused = 0;

	/* 1. $HEAPSNAP_AGENT_DIR, 2. /tmp/heapsnap-UID */
	for (int i = 0; i < 2; i++) {
		if (i == 0) {
			if (environ_dir(pid, dir, sizeof(dir)) != 0 || dir[0] != '/')
				continue;
		} else {
			snprintf(dir, sizeof(dir), "/tmp/heapsnap-%u", uid);
		}
		int n = snprintf(cand, sizeof(cand), "/proc/%d/root%s/agent-%d.sock", pid, dir, pid);
		if (n < 0 || (size_t)n >= sizeof(cand))
			continue;
		int rc = check_socket(cand, uid, pid);
		if (rc == 0) {
			if ((size_t)n >= size)
				return hs_error_set(HS_EINVAL, "hs_agent_find: path too long");
			memcpy(out, cand, (size_t)n + 1);
			return 0;
		}
		if (rc < 0)
			refused = rc;
	}
	/* 3. an agent's listening socket among its descriptors */
	char bound[HS_ATTACH_PATH_MAX];
	if (scan_fds(pid, bound, sizeof(bound)) == 0) {
		int n = snprintf(cand, sizeof(cand), "/proc/%d/root%s", pid, bound);
		if (n > 0 && (size_t)n < sizeof(cand)) {
			int rc = check_socket(cand, uid, pid);
			if (rc == 0) {
				if ((size_t)n >= size)
					return hs_error_set(HS_EINVAL, "hs_agent_find: path too long");
				memcpy(out, cand, (size_t)n + 1);
				return 0;
			}
			if (rc < 0)
				refused = rc;
		}
	}
	if (refused)
		return refused; /* the message says whose socket it was */
	return hs_error_set(HS_ENOTFOUND, "process %d has no heapsnap agent (no socket "
	                    "/tmp/heapsnap-%u/agent-%d.sock); start one in the program with "
	                    "heapsnap.agent.start(), or run it with HEAPSNAP_AGENT=1", pid, uid, pid);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

/* The pid of `pid` as its own pid namespace sees it (NSpid's last). */
static int own_pid(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	int last = pid;
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6) != 0)
			continue;
		char *p = line + 6, *end;
		for (;;) {
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			last = (int)v;
			p = end;
		}
		break;
	}
	fclose(f);
	return last;
}

static int open_socket(int *out, const char *path, int pid, double deadline)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	int dirfd = -1;
	if (strlen(path) < sizeof(sa.sun_path)) {
		memcpy(sa.sun_path, path, strlen(path) + 1);
	} else {
		/* too long for sun_path: through a descriptor of its directory */
		char dir[HS_ATTACH_PATH_MAX + 128];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (!slash)
			return hs_error_set(HS_EINVAL, "bad socket path '%s'", path);
		*slash = '\0';
		dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return hs_error_set(HS_EIO, "cannot open '%s': %s", dir, strerror(errno));
		int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, slash + 1);
		if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
			close(dirfd);
			return hs_error_set(HS_EINVAL, "the agent's socket name is too long: '%s'", path);
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		if (dirfd >= 0)
			close(dirfd);
		return hs_error_set(HS_EIO, "cannot create a socket: %s", strerror(e));
	}
	int rc = 0;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN) { /* its backlog is full: the agent is busy */
			if (ms_left(deadline) == 0) {
				rc = hs_error_set(HS_EIO, "the agent of process %d accepts no connection "
				                  "(its queue is full); try again", pid);
				break;
			}
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e == ECONNREFUSED || e == ENOENT)
			rc = hs_error_set(HS_ENOTFOUND, "process %d has no heapsnap agent listening ('%s' is "
			                  "left from an earlier one)", pid, path);
		else if (e == EACCES || e == EPERM)
			rc = hs_error_set(HS_EIO, "cannot connect to the agent of process %d ('%s'): "
			                  "permission denied; run heapsnap as the process's user or as root",
			                  pid, path);
		else
			rc = hs_error_set(HS_EIO, "cannot connect to the agent of process %d ('%s'): %s",
			                  pid, path, strerror(e));
		break;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* The name of process `pid` (comm), "?" when unknown. */
static void comm_of(int pid, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	snprintf(out, size, "?");
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/*
 * The peer of the socket (SO_PEERCRED: the process that listens, as it was
 * when it called listen()) must be the target or one of its descendants,
 * with the target's effective uid: the socket file's owner alone does not
 * say who answers on it.
 */
static int check_peer(const hs_agent *a)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(a->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return hs_error_set(HS_EIO, "cannot read who serves the agent socket '%s' of process %d: "
		                    "%s", a->path, a->pid, strerror(errno));
	if ((unsigned)cr.uid != a->uid)
		return hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d is served by uid %u, "
		                    "not by the process's user (uid %u): not used; see what listens there "
		                    "with 'ss -xlp'", a->path, a->pid, (unsigned)cr.uid, a->uid);
	if (cr.pid <= 0)
		return hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d is served by a "
		                    "process outside this pid namespace: not used; run heapsnap in the "
		                    "namespace of the process", a->path, a->pid);
	int p = cr.pid;
	for (int depth = 0; p > 1 && p != a->pid && depth < 4096; depth++)
		p = hs_attach__parent_of(p);
	if (p != a->pid) {
		char name[64];
		comm_of(cr.pid, name, sizeof(name));
		return hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d is served by process "
		                    "%d (%s), neither that process nor one of its children: not used; see "
		                    "what listens there with 'ss -xlp', or stop process %d", a->path, a->pid,
		                    (int)cr.pid, name, (int)cr.pid);
	}
	return 0;
}

/* HELLO (validated by hs_agent_call): ok, and that it answers for `pid`. */
static int check_hello(const hs_agent *a, const cJSON *j)
{
	int pid = a->pid;
	const cJSON *apid = cJSON_GetObjectItemCaseSensitive(j, "pid");
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")))
		return hs_error_set(HS_EIO, "the agent of process %d refused HELLO: %s", pid,
		                    hs_agent_reply_error(j));
	if ((int)apid->valuedouble != pid && (int)apid->valuedouble != own_pid(pid))
		return hs_error_set(HS_EFORMAT, "the agent socket '%s' found for process %d answers for "
		                    "process %d: not used", a->path, pid, (int)apid->valuedouble);
	return 0;
}

int hs_agent_connect(hs_agent **out, int pid, double timeout)
{
	if (!out || pid <= 0)
		return hs_error_set(HS_EINVAL, "hs_agent_connect: bad argument");
	*out = NULL;
	double deadline = timeout > 0 ? now() + timeout : 0;
	hs_agent *a = hs_calloc(1, sizeof(*a));
	if (!a)
		return HS_ENOMEM;
	a->fd = -1;
	a->pid = pid;
	int rc = hs_agent_find(a->path, sizeof(a->path), pid);
	hs_proc_status st;
	if (rc == 0 && hs_attach__status(&st, (pid_t)pid) < 0)
		rc = hs_error_set(HS_ENOTFOUND, "no such process: %d", pid);
	if (rc == 0) {
		a->uid = (unsigned)st.euid;
		rc = open_socket(&a->fd, a->path, pid, deadline);
	}
	if (rc == 0)
		rc = check_peer(a);
	if (rc == 0) {
		char *text = NULL;
		cJSON *hello = NULL;
		double left = deadline > 0 ? deadline - now() : 0;
		if (deadline > 0 && left <= 0)
			rc = hs_error_set(HS_EIO, "the agent of process %d did not answer within %.3g s",
			                  pid, timeout);
		else
			rc = hs_agent_request(a, "HELLO", &text, left);
		if (rc == 0)
			rc = validate_reply(a, "HELLO", text, &hello);
		if (rc == 0)
			rc = check_hello(a, hello);
		if (rc == 0) {
			a->hello = text;
			text = NULL;
		}
		hs_agent_reply_free(text);
		cJSON_Delete(hello);
	}
	if (rc < 0) {
		hs_agent_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static int send_all(hs_agent *a, const char *data, size_t len, double deadline)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(a->fd, data + done, len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { a->fd, POLLOUT, 0 };
			int r = poll(&p, 1, ms_left(deadline));
			if (r == 0)
				return hs_error_set(HS_EIO, "the agent of process %d takes no command (timed "
				                    "out)", a->pid);
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return hs_error_set(HS_EIO, "the agent of process %d closed the connection (it "
			                    "answers only its own user and root)", a->pid);
		return hs_error_set(HS_EIO, "cannot send to the agent of process %d: %s", a->pid,
		                    strerror(errno));
	}
	return 0;
}

int hs_agent_request(hs_agent *a, const char *command, char **out_reply_json, double timeout)
{
	if (!a || !command || !out_reply_json)
		return hs_error_set(HS_EINVAL, "hs_agent_request: bad argument");
	*out_reply_json = NULL;
	size_t cl = strlen(command);
	if (!cl || cl >= HS_AGENT_LINE_MAX || strchr(command, '\n') || strchr(command, '\r'))
		return hs_error_set(HS_EINVAL, "bad agent command (empty, longer than %d bytes, or with "
		                    "a line break)", HS_AGENT_LINE_MAX - 1);
	if (a->fd < 0)
		return hs_error_set(HS_EIO, "the connection to the agent of process %d is closed", a->pid);
	double deadline = timeout > 0 ? now() + timeout : 0;
	/* TRACK and MARKS replies may carry a lot; everything else is small */
	size_t limit = !strncmp(command, "TRACK", 5) || !strncmp(command, "MARKS", 5)
	                   ? HS_AGENT_REPLY_MAX_LARGE : HS_AGENT_REPLY_MAX;
	char *line = hs_malloc(cl + 1);
	if (!line)
		return HS_ENOMEM;
	memcpy(line, command, cl);
	line[cl] = '\n';
	int rc = send_all(a, line, cl + 1, deadline);
	hs_free(line);
	for (size_t scanned = 0; rc == 0;) {
		char *nl = a->len > scanned ? memchr(a->buf + scanned, '\n', a->len - scanned) : NULL;
		if (nl && (size_t)(nl - a->buf) > limit)
			nl = NULL; /* over the limit: reported below */
		if (nl) {
			size_t n = (size_t)(nl - a->buf);
			if (n == 0 || a->buf[0] != '{' || (n > 0 && a->buf[n - 1 - (a->buf[n - 1] == '\r')] != '}')) {
				rc = hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d sent a reply "
				                  "to %.*s that is not a JSON object line: not a heapsnap agent; see "
				                  "what listens there with 'ss -xlp'", a->path, a->pid,
				                  (int)strcspn(command, " "), command);
				break;
			}
			char *r = hs_strndup(a->buf, n);
			if (!r) {
				rc = HS_ENOMEM;
				break;
			}
			memmove(a->buf, nl + 1, a->len - n - 1);
			a->len -= n + 1;
			*out_reply_json = r;
			return 0;
		}
		scanned = a->len;
		if (a->len > limit) {
			rc = hs_error_set(HS_ELIMIT, "the agent socket '%s' of process %d sent a reply to "
			                  "%.*s longer than %zu MiB, the limit: not a heapsnap agent, or "
			                  "asked for too much (fewer --types)", a->path, a->pid,
			                  (int)strcspn(command, " "), command,
			                  limit >> 20);
			break;
		}
		if (a->cap - a->len < 65536) {
			/* grows to the limit and one chunk more, never beyond */
			size_t cap = a->cap ? a->cap * 2 : 65536;
			if (cap > limit + 65536)
				cap = limit + 65536;
			char *nb = hs_reallocarray(a->buf, cap, 1);
			if (!nb) {
				rc = HS_ENOMEM;
				break;
			}
			a->buf = nb;
			a->cap = cap;
		}
		struct pollfd p = { a->fd, POLLIN, 0 };
		int r = poll(&p, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR && hs_attach_interrupted()) {
			/* heapsnap is told to stop (hs_attach_catch_signals): the agent,
			 * in its own process, finishes the request by itself */
			rc = hs_error_set(HS_EUSER, "interrupted by signal %d while the agent of process %d "
			                  "was answering %.*s (it finishes by itself)",
			                  hs_attach_interrupted(), a->pid, (int)strcspn(command, " "), command);
			break;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			rc = hs_error_set(HS_EIO, "the agent socket '%s' of process %d did not answer %.*s "
			                  "within %.1f s; the program may be stuck (a long call holding the "
			                  "GIL), or something else listens there: see 'ss -xlp'", a->path,
			                  a->pid, (int)strcspn(command, " "), command, timeout);
			break;
		}
		ssize_t n = recv(a->fd, a->buf + a->len, a->cap - a->len, 0);
		if (n > 0) {
			a->len += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n == 0 || errno == ECONNRESET)
			rc = hs_error_set(HS_EIO, "the agent of process %d closed the connection without "
			                  "answering (it answers only its own user and root; or the process "
			                  "ended)", a->pid);
		else
			rc = hs_error_set(HS_EIO, "cannot read from the agent of process %d: %s", a->pid,
			                  strerror(errno));
	}
	/* a failed exchange leaves the stream out of step: close it */
	close(a->fd);
	a->fd = -1;
	return rc;
}

void hs_agent_reply_free(char *reply)
{
	hs_free(reply);
}

void hs_agent_free(hs_agent *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	hs_free(a->hello);
	hs_free(a->buf);
	hs_free(a);
}

const char *hs_agent_socket(const hs_agent *a)
{
	return a ? a->path : "";
}

const char *hs_agent_hello(const hs_agent *a)
{
	return a && a->hello ? a->hello : "";
}

/* ------------------------------------------------------------------ */
/* Validating replies                                                  */

/*
 * What each reply must hold before a client reads it: the fields the
 * clients use (formats/agent-protocol.md), each with its type. Unknown
 * fields are ignored (later versions may add some); a field marked
 * optional may be absent (the agent leaves out figures it cannot read) or
 * null where the protocol says so.
 */
enum vkind {
	V_COUNT,   /* integral, 0 .. 2^53 */
	V_INT,     /* integral, -2^53 .. 2^53 */
	V_SECONDS, /* finite, >= 0 */
	V_BOOL,
	V_STRING,
	V_OBJECT,
	V_COUNTS,  /* array of V_COUNT */
	V_SECONDS_ARRAY,
	V_ITEMS,   /* array of objects, each checked with `items` */
	V_ROWS,    /* array of arrays, each checked with `cols` */
};
#define V_REQ 1u  /* must be present */
#define V_NULL 2u /* may be null */

typedef struct vrule {
	const char *key; /* "a.b": member b of object a */
	enum vkind kind;
	unsigned flags;
	const struct vrule *items;
	const char *cols; /* V_ROWS: one letter per column, see check_row */
} vrule;

#define V_END { NULL, V_COUNT, 0, NULL, NULL }

static const vrule hello_rules[] = {
	{ "protocol", V_COUNT, V_REQ, NULL, NULL },
	{ "pid", V_COUNT, V_REQ, NULL, NULL },
	{ "uid", V_COUNT, 0, NULL, NULL },
	{ "python", V_STRING, 0, NULL, NULL },
	{ "hexversion", V_COUNT, 0, NULL, NULL },
	{ "started", V_SECONDS, 0, NULL, NULL },
	V_END,
};
static const vrule stats_rules[] = {
	{ "t", V_SECONDS, V_REQ, NULL, NULL },
	{ "rss", V_COUNT, 0, NULL, NULL },
	{ "vms", V_COUNT, 0, NULL, NULL },
	{ "swap", V_COUNT, 0, NULL, NULL },
	{ "uss", V_COUNT, 0, NULL, NULL },
	{ "pss", V_COUNT, 0, NULL, NULL },
	{ "threads", V_COUNT, 0, NULL, NULL },
	{ "agent_threads", V_COUNT, 0, NULL, NULL },
	{ "os_threads", V_COUNT, 0, NULL, NULL },
	{ "seconds", V_SECONDS, 0, NULL, NULL },
	{ "gc", V_OBJECT, V_REQ, NULL, NULL },
	{ "gc.enabled", V_BOOL, 0, NULL, NULL },
	{ "gc.tracked_objects", V_COUNT, 0, NULL, NULL },
	{ "gc.tracked_per_generation", V_COUNTS, 0, NULL, NULL },
	{ "gc.counts", V_COUNTS, 0, NULL, NULL },
	{ "gc.thresholds", V_COUNTS, 0, NULL, NULL },
	{ "gc.collections", V_COUNTS, 0, NULL, NULL },
	{ "gc.collected", V_COUNTS, 0, NULL, NULL },
	{ "gc.uncollectable", V_COUNTS, 0, NULL, NULL },
	{ "gc.pause_seconds", V_SECONDS_ARRAY, 0, NULL, NULL },
	{ "gc.frozen", V_COUNT, 0, NULL, NULL },
	{ "pymalloc", V_OBJECT, 0, NULL, NULL },
	{ "pymalloc.arenas_allocated", V_COUNT, 0, NULL, NULL },
	{ "pymalloc.arenas_highwater", V_COUNT, 0, NULL, NULL },
	{ "pymalloc.bytes_in_arenas", V_COUNT, 0, NULL, NULL },
	{ "pymalloc.bytes_in_use", V_COUNT, 0, NULL, NULL },
	{ "pymalloc.blocks_in_use", V_COUNT, 0, NULL, NULL },
	V_END,
};
static const vrule type_row_rules[] = {
	{ "name", V_STRING, V_REQ, NULL, NULL },
	{ "count", V_COUNT, V_REQ, NULL, NULL },
	{ "bytes", V_COUNT, V_REQ, NULL, NULL },
	V_END,
};
static const vrule types_rules[] = {
	{ "t", V_SECONDS, V_REQ, NULL, NULL },
	{ "objects", V_COUNT, V_REQ, NULL, NULL },
	{ "bytes", V_COUNT, V_REQ, NULL, NULL },
	{ "seconds", V_SECONDS, V_REQ, NULL, NULL },
	{ "type_names", V_COUNT, 0, NULL, NULL },
	{ "types", V_ITEMS, V_REQ, type_row_rules, NULL },
	V_END,
};
static const vrule mark_rules[] = {
	{ "seq", V_COUNT, V_REQ, NULL, NULL },
	{ "t", V_SECONDS, V_REQ, NULL, NULL },
	{ "label", V_STRING, V_REQ, NULL, NULL },
	V_END,
};
static const vrule marks_rules[] = {
	{ "next", V_COUNT, V_REQ, NULL, NULL },
	{ "dropped", V_COUNT, 0, NULL, NULL },
	{ "marks", V_ITEMS, V_REQ, mark_rules, NULL },
	V_END,
};
static const vrule gcevent_rules[] = {
	{ "seq", V_COUNT, 0, NULL, NULL },
	{ "t", V_SECONDS, V_REQ, NULL, NULL },
	{ "generation", V_COUNT, V_REQ, NULL, NULL },
	{ "seconds", V_SECONDS, V_REQ, NULL, NULL },
	{ "collected", V_COUNT, V_REQ, NULL, NULL },
	{ "uncollectable", V_COUNT, V_REQ, NULL, NULL },
	V_END,
};
static const vrule gcevents_rules[] = {
	{ "next", V_COUNT, V_REQ, NULL, NULL },
	{ "dropped", V_COUNT, 0, NULL, NULL },
	{ "events", V_ITEMS, V_REQ, gcevent_rules, NULL },
	V_END,
};
static const vrule dump_rules[] = {
	{ "path", V_STRING, V_REQ, NULL, NULL },
	{ "objects", V_COUNT, V_REQ, NULL, NULL },
	{ "edges", V_COUNT, V_REQ, NULL, NULL },
	{ "bytes", V_COUNT, V_REQ, NULL, NULL },
	{ "pause_seconds", V_SECONDS, V_REQ, NULL, NULL },
	{ "seconds", V_SECONDS, 0, NULL, NULL },
	{ "fork", V_BOOL, 0, NULL, NULL },
	{ "child_pid", V_COUNT, V_NULL, NULL, NULL },
	{ "child_seconds", V_SECONDS, V_NULL, NULL, NULL },
	{ "child_private_dirty", V_COUNT, V_NULL, NULL, NULL },
	V_END,
};
/* TRACK columns: c count, i integer, s string, S string or null, I
 * integer or null, a array of counts */
static const vrule track_rules[] = {
	{ "t", V_SECONDS, V_REQ, NULL, NULL },
	{ "active", V_BOOL, 0, NULL, NULL },
	{ "final", V_BOOL, 0, NULL, NULL },
	{ "settings", V_OBJECT, 0, NULL, NULL },
	{ "settings.t", V_SECONDS, 0, NULL, NULL },
	{ "settings.sample_bytes", V_COUNT, 0, NULL, NULL },
	{ "settings.seed", V_COUNT, V_NULL, NULL, NULL },
	{ "locs", V_ROWS, 0, NULL, "cSSIIc" },
	{ "stacks", V_ROWS, 0, NULL, "cciSca" },
	{ "figures", V_ROWS, 0, NULL, "ciiii" },
	{ "peak", V_OBJECT, 0, NULL, NULL },
	{ "peak.bytes", V_COUNT, V_REQ, NULL, NULL },
	{ "peak.stacks", V_ROWS, V_REQ, NULL, "cii" },
	{ "final_bytes", V_INT, V_NULL, NULL, NULL },
	V_END,
};

static const struct {
	const char *word;
	const vrule *rules;
} reply_rules[] = {
	{ "HELLO", hello_rules },       { "STATS", stats_rules }, { "TYPES", types_rules },
	{ "MARKS", marks_rules },       { "GCEVENTS", gcevents_rules }, { "DUMP", dump_rules },
	{ "TRACK", track_rules },
};

#define V_INT_MAX 9007199254740992.0 /* 2^53: doubles are exact up to here */

static const char *number_problem(const cJSON *v, enum vkind kind)
{
	if (!cJSON_IsNumber(v))
		return "not a number";
	double d = v->valuedouble;
	if (!isfinite(d))
		return "not a finite number";
	if (kind != V_INT && d < 0)
		return "negative";
	if (kind == V_SECONDS)
		return d > 1e12 ? "out of range" : NULL;
	if (d != floor(d))
		return "not an integer";
	if (fabs(d) > V_INT_MAX)
		return "out of range";
	return NULL;
}

/* The problem with `v` as `kind`, NULL when none; `detail` for arrays. */
static const char *value_problem(const cJSON *v, enum vkind kind, char *detail, size_t size)
{
	const cJSON *e;
	size_t i = 0;
	switch (kind) {
	case V_COUNT:
	case V_INT:
	case V_SECONDS:
		return number_problem(v, kind);
	case V_BOOL:
		return cJSON_IsBool(v) ? NULL : "not true or false";
	case V_STRING:
		return cJSON_IsString(v) ? NULL : "not a string";
	case V_OBJECT:
		return cJSON_IsObject(v) ? NULL : "not an object";
	case V_COUNTS:
	case V_SECONDS_ARRAY:
		if (!cJSON_IsArray(v))
			return "not an array";
		cJSON_ArrayForEach(e, v) {
			const char *p = number_problem(e, kind == V_COUNTS ? V_COUNT : V_SECONDS);
			if (p) {
				snprintf(detail, size, "item %zu is %s", i, p);
				return detail;
			}
			i++;
		}
		return NULL;
	default:
		return cJSON_IsArray(v) ? NULL : "not an array";
	}
}

/* One row of a V_ROWS array against its column letters. */
static const char *row_problem(const cJSON *row, const char *cols, char *detail, size_t size)
{
	if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) < strlen(cols))
		return "not an array of the expected length";
	const cJSON *v = row->child;
	for (size_t c = 0; cols[c]; c++, v = v->next) {
		const char *p = NULL;
		switch (cols[c]) {
		case 'c': p = number_problem(v, V_COUNT); break;
		case 'i': p = number_problem(v, V_INT); break;
		case 'I': p = cJSON_IsNull(v) ? NULL : number_problem(v, V_INT); break;
		case 's': p = cJSON_IsString(v) ? NULL : "not a string"; break;
		case 'S': p = cJSON_IsString(v) || cJSON_IsNull(v) ? NULL : "not a string"; break;
		case 'a': p = value_problem(v, V_COUNTS, detail, size); break;
		default: break;
		}
		if (p) {
			if (p != detail)
				snprintf(detail, size, "column %zu is %s", c, p);
			return detail;
		}
	}
	return NULL;
}

/* Member `key` ("a" or "a.b") of `o`; *parent_missing when a is absent. */
static const cJSON *member(const cJSON *o, const char *key, int *parent_missing)
{
	const char *dot = strchr(key, '.');
	*parent_missing = 0;
	if (!dot)
		return cJSON_GetObjectItemCaseSensitive(o, key);
	char head[64];
	snprintf(head, sizeof(head), "%.*s", (int)(dot - key), key);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, head);
	if (!cJSON_IsObject(p)) {
		*parent_missing = 1;
		return NULL;
	}
	return cJSON_GetObjectItemCaseSensitive(p, dot + 1);
}

/* The first rule `o` breaks, written into `why`; 0 when none. */
static int rules_broken(const cJSON *o, const vrule *rules, char *why, size_t size)
{
	char detail[160];
	for (const vrule *r = rules; r->key; r++) {
		int parent_missing;
		const cJSON *v = member(o, r->key, &parent_missing);
		if (!v) {
			if ((r->flags & V_REQ) && !parent_missing) {
				snprintf(why, size, "'%s' is missing", r->key);
				return 1;
			}
			continue;
		}
		if ((r->flags & V_NULL) && cJSON_IsNull(v))
			continue;
		const char *p = value_problem(v, r->kind, detail, sizeof(detail));
		if (!p && (r->kind == V_ITEMS || r->kind == V_ROWS)) {
			size_t i = 0;
			const cJSON *e;
			char inner[256];
			cJSON_ArrayForEach(e, v) {
				if (r->kind == V_ITEMS && !cJSON_IsObject(e)) {
					snprintf(why, size, "'%s' item %zu is not an object", r->key, i);
					return 1;
				}
				if (r->kind == V_ITEMS && rules_broken(e, r->items, inner, sizeof(inner))) {
					snprintf(why, size, "'%s' item %zu: %s", r->key, i, inner);
					return 1;
				}
				if (r->kind == V_ROWS && (p = row_problem(e, r->cols, detail, sizeof(detail)))) {
					snprintf(why, size, "'%s' item %zu: %s", r->key, i, p);
					return 1;
				}
				i++;
			}
		}
		if (p) {
			char shown[48] = "";
			if (cJSON_IsNumber(v))
				snprintf(shown, sizeof(shown), " (%.17g)", v->valuedouble);
			snprintf(why, size, p == detail ? "'%s' %s%s" : "'%s' is %s%s", r->key, p, shown);
			return 1;
		}
	}
	return 0;
}

static int invalid(const hs_agent *a, const char *command, const char *why)
{
	return hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d sent an invalid reply "
	                    "to %.*s: %s; whatever answers there is not a working heapsnap agent "
	                    "(see what listens with 'ss -xlp'; restart the program's agent)", a->path,
	                    a->pid, (int)strcspn(command, " "), command, why);
}

static int validate_reply(const hs_agent *a, const char *command, const char *text, cJSON **out)
{
	*out = NULL;
	cJSON *j = cJSON_Parse(text);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return invalid(a, command, "not JSON");
	}
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
	char why[512] = "";
	if (!cJSON_IsBool(ok)) {
		snprintf(why, sizeof(why), "'ok' is %s", ok ? "not true or false" : "missing");
	} else if (!cJSON_IsTrue(ok)) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
		const cJSON *en = cJSON_GetObjectItemCaseSensitive(j, "errno");
		if (e && !cJSON_IsString(e))
			snprintf(why, sizeof(why), "'error' is not a string");
		else if (en && !cJSON_IsNull(en) && number_problem(en, V_COUNT))
			snprintf(why, sizeof(why), "'errno' is %s", number_problem(en, V_COUNT));
	} else {
		size_t wl = strcspn(command, " ");
		for (size_t i = 0; i < sizeof(reply_rules) / sizeof(reply_rules[0]); i++) {
			if (strlen(reply_rules[i].word) == wl && !strncmp(command, reply_rules[i].word, wl)) {
				rules_broken(j, reply_rules[i].rules, why, sizeof(why));
				break;
			}
		}
	}
	if (why[0]) {
		cJSON_Delete(j);
		return invalid(a, command, why);
	}
	*out = j;
	return 0;
}

int hs_agent_call(hs_agent *a, const char *command, cJSON **out, double timeout)
{
	if (!out)
		return hs_error_set(HS_EINVAL, "hs_agent_call: bad argument");
	*out = NULL;
	char *text = NULL;
	int rc = hs_agent_request(a, command, &text, timeout);
	if (rc < 0)
		return rc;
	rc = validate_reply(a, command, text, out);
	hs_agent_reply_free(text);
	return rc;
}

const char *hs_agent_reply_error(const cJSON *reply)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	return cJSON_IsString(e) ? e->valuestring : "no message";
}

/* ------------------------------------------------------------------ */
/* The file a DUMP reply names                                         */

static int stop_at_totals(const hs_totals *t, uint32_t python_version, void *payload)
{
	(void)python_version;
	*(hs_totals *)payload = *t;
	return HS_EUSER; /* what follows is the analyzers' business */
}

static int bad_dump(const hs_agent *a, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_dump(const hs_agent *a, const char *path, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return hs_error_set(HS_EFORMAT, "the agent socket '%s' of process %d claims it wrote '%s', "
	                    "but %s: not used; see what listens there with 'ss -xlp', or take the "
	                    "snapshot with ptrace (heapsnap dump --no-agent %d)", a->path, a->pid, path,
	                    why, a->pid);
}

int hs_agent_check_dump(const hs_agent *a, const cJSON *reply, const char *path, double since)
{
	if (!a || !reply || !path)
		return hs_error_set(HS_EINVAL, "hs_agent_check_dump: bad argument");
	const cJSON *rp = cJSON_GetObjectItemCaseSensitive(reply, "path");
	const cJSON *objects = cJSON_GetObjectItemCaseSensitive(reply, "objects");
	if (!cJSON_IsString(rp) || !cJSON_IsNumber(objects))
		return invalid(a, "DUMP", "'path' or 'objects' is missing");
	/* the process wrote it in its own mount namespace (a container) */
	char rooted[HS_ATTACH_PATH_MAX + 64], rooted_rp[HS_ATTACH_PATH_MAX + 64];
	int n = snprintf(rooted, sizeof(rooted), "/proc/%d/root%s", a->pid, path);
	int m = snprintf(rooted_rp, sizeof(rooted_rp), "/proc/%d/root%s", a->pid, rp->valuestring);
	if (path[0] != '/' || n < 0 || (size_t)n >= sizeof(rooted))
		return hs_error_set(HS_EINVAL, "hs_agent_check_dump: bad path '%s'", path);
	if (m < 0 || (size_t)m >= sizeof(rooted_rp) || rp->valuestring[0] != '/')
		return bad_dump(a, path, "the reply names another file ('%.200s')", rp->valuestring);
	int fd = open(rooted, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return bad_dump(a, path, "there is no such file");
		if (e == ELOOP)
			return bad_dump(a, path, "it is a symbolic link");
		return bad_dump(a, path, "it cannot be opened (%s)", strerror(e));
	}
	struct stat st, other;
	int rc = 0;
	void *map = MAP_FAILED;
	hs_totals totals;
	memset(&totals, 0, sizeof(totals));
	if (fstat(fd, &st) != 0) {
		rc = bad_dump(a, path, "it cannot be read (%s)", strerror(errno));
		goto done;
	}
	/* the reply's path is the one asked for, maybe spelled otherwise */
	if (strcmp(rp->valuestring, path) != 0 &&
	    (stat(rooted_rp, &other) != 0 || other.st_dev != st.st_dev || other.st_ino != st.st_ino)) {
		rc = bad_dump(a, path, "the reply names another file ('%.200s')", rp->valuestring);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = bad_dump(a, path, "it is not a regular file");
		goto done;
	}
	if ((unsigned)st.st_uid != a->uid && st.st_uid != geteuid()) {
		rc = bad_dump(a, path, "it belongs to uid %u, neither the process's user (uid %u) nor "
		              "yours (uid %u)", (unsigned)st.st_uid, a->uid, (unsigned)geteuid());
		goto done;
	}
	/* timestamps may lag the clock by a tick: one second of slack */
	double mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
	if (since > 0 && mtime < since - 1.0) {
		rc = bad_dump(a, path, "it was last written %.0f s before the request (an older file)",
		              since - mtime);
		goto done;
	}
	if (st.st_size <= 0) {
		rc = bad_dump(a, path, "it is empty");
		goto done;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = bad_dump(a, path, "it cannot be read (%s)", strerror(errno));
		goto done;
	}
	hs_read_visitor v = { .version = HS_READ_VISITOR_VERSION, .totals = stop_at_totals };
	int frc = hs_format_read_memory(map, (size_t)st.st_size, path, &v, &totals);
	if (frc != HS_EUSER) {
		char why[512];
		snprintf(why, sizeof(why), "%s", frc < 0 ? hs_error_last() : "it holds no metadata");
		rc = bad_dump(a, path, "it is not a heapsnap snapshot (%s)", why);
		goto done;
	}
	hs_error_clear();
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(reply, "bytes");
	if ((double)totals.nodes != objects->valuedouble)
		rc = bad_dump(a, path, "the file holds %llu objects, the reply says %.17g",
		              (unsigned long long)totals.nodes, objects->valuedouble);
	else if (cJSON_IsNumber(bytes) && bytes->valuedouble != (double)st.st_size)
		rc = bad_dump(a, path, "the file has %lld bytes, the reply says %.17g",
		              (long long)st.st_size, bytes->valuedouble);
done:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	close(fd);
	return rc;
}
