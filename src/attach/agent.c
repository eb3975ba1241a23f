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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attach/attach_internal.h"
#include "heapsnap/agent.h"
#include "util/alloc.h"

struct hs_agent {
	int fd;
	int pid;
	char path[HS_ATTACH_PATH_MAX];
	char *hello;
	char *buf; /* bytes received after the last reply line */
	size_t len, cap;
};

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

/* HELLO: the protocol, and that it answers for `pid`. */
static int check_hello(const char *reply, int pid)
{
	cJSON *j = cJSON_Parse(reply);
	if (!j)
		return hs_error_set(HS_EFORMAT, "the agent of process %d sent an unreadable HELLO", pid);
	int rc = 0;
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
	const cJSON *proto = cJSON_GetObjectItemCaseSensitive(j, "protocol");
	const cJSON *apid = cJSON_GetObjectItemCaseSensitive(j, "pid");
	if (!cJSON_IsTrue(ok) || !cJSON_IsNumber(proto) || !cJSON_IsNumber(apid))
		rc = hs_error_set(HS_EFORMAT, "the socket of process %d does not speak the heapsnap "
		                  "agent protocol", pid);
	else if (proto->valuedouble < 1)
		rc = hs_error_set(HS_EFORMAT, "the agent of process %d speaks protocol %g, not %d", pid,
		                  proto->valuedouble, HS_AGENT_PROTOCOL);
	else if ((int)apid->valuedouble != pid && (int)apid->valuedouble != own_pid(pid))
		rc = hs_error_set(HS_EIO, "the socket found for process %d answers for process %d: "
		                  "not used", pid, (int)apid->valuedouble);
	cJSON_Delete(j);
	return rc;
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
	if (rc == 0)
		rc = open_socket(&a->fd, a->path, pid, deadline);
	if (rc == 0) {
		char *hello = NULL;
		rc = hs_agent_request(a, "HELLO", &hello, deadline > 0 ? deadline - now() : 0);
		if (rc == 0 && deadline > 0 && now() > deadline) {
			hs_agent_reply_free(hello);
			rc = hs_error_set(HS_EIO, "the agent of process %d did not answer within %.3g s",
			                  pid, timeout);
		} else if (rc == 0 && (rc = check_hello(hello, pid)) < 0) {
			hs_agent_reply_free(hello);
		} else if (rc == 0) {
			a->hello = hello;
		}
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
	char *line = hs_malloc(cl + 1);
	if (!line)
		return HS_ENOMEM;
	memcpy(line, command, cl);
	line[cl] = '\n';
	int rc = send_all(a, line, cl + 1, deadline);
	hs_free(line);
	for (size_t scanned = 0; rc == 0;) {
		char *nl = a->len > scanned ? memchr(a->buf + scanned, '\n', a->len - scanned) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - a->buf);
			if (n == 0 || a->buf[0] != '{' || (n > 0 && a->buf[n - 1 - (a->buf[n - 1] == '\r')] != '}')) {
				rc = hs_error_set(HS_EFORMAT, "the agent of process %d sent a reply that is not a "
				                  "JSON object", a->pid);
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
		if (a->len >= HS_AGENT_REPLY_MAX) {
			rc = hs_error_set(HS_EFORMAT, "the agent of process %d sent a reply over %u bytes",
			                  a->pid, HS_AGENT_REPLY_MAX);
			break;
		}
		if (a->cap - a->len < 65536) {
			size_t cap = a->cap ? a->cap * 2 : 65536;
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
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			rc = hs_error_set(HS_EIO, "the agent of process %d did not answer within %.3g s",
			                  a->pid, timeout);
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
