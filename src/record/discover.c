/*
 * record/discover.c: how the recorder finds the processes of the tree.
 *
 * 1. The kernel's proc connector (a netlink multicast of fork, exec and
 *    exit events, needing CAP_NET_ADMIN in the initial user and pid
 *    namespaces): nothing to do between events, every child seen at its
 *    fork, and the exit status of every process, including grandchildren
 *    the recorder cannot wait for. The kernel acknowledges the subscription;
 *    no acknowledgement, no connector.
 * 2. Otherwise, or when the socket overflowed and events were lost, a scan
 *    of /proc: one getdents pass (about 30 us for 130 processes here), and
 *    /proc/PID/stat read only for pids not seen before. A pid is "seen"
 *    with its /proc inode number, which changes when the pid is reused, so
 *    a recycled pid is looked at again. (/proc/PID/task/TID/children would
 *    need a read per thread per process per tick, and is missing on
 *    kernels built without CONFIG_PROC_CHILDREN.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "record/record_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

struct hs_connector {
	int fd;
	_Alignas(8) uint8_t buf[16384];
};

int hs_connector_fd(const hs_connector *c) { return c->fd; }

static int send_op(int fd, enum proc_cn_mcast_op op)
{
	struct {
		struct nlmsghdr h;
		struct cn_msg m;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) msg;
	memset(&msg, 0, sizeof(msg));
	msg.h.nlmsg_len = sizeof(msg);
	msg.h.nlmsg_type = NLMSG_DONE;
	msg.h.nlmsg_pid = 0;
	msg.m.id.idx = CN_IDX_PROC;
	msg.m.id.val = CN_VAL_PROC;
	msg.m.len = sizeof(enum proc_cn_mcast_op);
	msg.op = op;
	return send(fd, &msg, sizeof(msg), 0) < 0 ? -errno : 0;
}

int hs_connector_open(hs_connector **out)
{
	*out = NULL;
	int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (fd < 0)
		return hs_error_set(HS_EIO, "no proc connector: %s", strerror(errno));
	struct sockaddr_nl a;
	memset(&a, 0, sizeof(a));
	a.nl_family = AF_NETLINK;
	a.nl_groups = CN_IDX_PROC;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "no proc connector: %s", strerror(e));
	}
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	int rc = send_op(fd, PROC_CN_MCAST_LISTEN);
	if (rc < 0) {
		close(fd);
		return hs_error_set(HS_EIO, "no proc connector: %s", strerror(-rc));
	}
	/* Wait for the kernel's acknowledgement (err 0): it refuses
	 * subscribers outside the initial namespaces (pids would not match). */
	hs_connector *c = hs_calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return HS_ENOMEM;
	}
	c->fd = fd;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= 200 || poll(&p, 1, (int)(200 - waited)) <= 0)
			break;
		ssize_t n = recv(fd, c->buf, sizeof(c->buf), 0);
		if (n <= 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)c->buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct cn_msg *m = NLMSG_DATA(h);
			struct proc_event ev, *e = &ev;
			/* the event sits 4 bytes off its 8-byte alignment: copy it */
			memset(&ev, 0, sizeof(ev));
			memcpy(&ev, m->data, m->len < sizeof(ev) ? m->len : sizeof(ev));
			if (e->what == PROC_EVENT_NONE) {
				if (e->event_data.ack.err == 0) {
					*out = c;
					return 0;
				}
				hs_connector_free(c);
				return hs_error_set(HS_EIO, "no proc connector: the kernel refused (%u)",
				                    e->event_data.ack.err);
			}
		}
	}
	hs_connector_free(c);
	return hs_error_set(HS_EIO, "no proc connector: no acknowledgement from the kernel");
}

int hs_connector_drain(hs_connector *c, void (*fn)(const hs_proc_event *e, void *payload),
                       void *payload)
{
	int lost = 0;
	for (;;) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				lost = 1; /* the socket overflowed: events were dropped */
				continue;
			}
			break; /* EAGAIN: drained */
		}
		if (n == 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)c->buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP)
				continue;
			struct cn_msg *m = NLMSG_DATA(h);
			if (m->id.idx != CN_IDX_PROC || m->id.val != CN_VAL_PROC)
				continue;
			struct proc_event pe, *e = &pe;
			memset(&pe, 0, sizeof(pe));
			memcpy(&pe, m->data, m->len < sizeof(pe) ? m->len : sizeof(pe));
			hs_proc_event ev;
			memset(&ev, 0, sizeof(ev));
			ev.mono_ns = e->timestamp_ns;
			switch (e->what) {
			case PROC_EVENT_FORK:
				/* threads are forks within a thread group: not processes */
				if (e->event_data.fork.child_pid != e->event_data.fork.child_tgid)
					continue;
				ev.kind = HS_PEV_FORK;
				ev.pid = e->event_data.fork.child_tgid;
				ev.ppid = e->event_data.fork.parent_tgid;
				break;
			case PROC_EVENT_EXEC:
				ev.kind = HS_PEV_EXEC;
				ev.pid = e->event_data.exec.process_tgid;
				break;
			case PROC_EVENT_EXIT:
				if (e->event_data.exit.process_pid != e->event_data.exit.process_tgid)
					continue;
				ev.kind = HS_PEV_EXIT;
				ev.pid = e->event_data.exit.process_tgid;
				ev.status = (int)e->event_data.exit.exit_code;
				break;
			default:
				continue;
			}
			fn(&ev, payload);
		}
	}
	return lost;
}

void hs_connector_free(hs_connector *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		send_op(c->fd, PROC_CN_MCAST_IGNORE);
		close(c->fd);
	}
	hs_free(c);
}

/* ------------------------------------------------------------------ */
/* /proc scan                                                          */

typedef struct seen_slot {
	int pid;          /* 0 = empty */
	uint64_t ino;
	uint32_t epoch;   /* last scan that listed it */
} seen_slot;

struct hs_proc_scan {
	int fd;
	seen_slot *slots;
	size_t mask, used;
	uint32_t epoch;
	_Alignas(8) uint8_t buf[32768]; /* getdents records are 8-byte aligned */
};

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int hs_proc_scan_new(hs_proc_scan **out)
{
	hs_proc_scan *s = hs_calloc(1, sizeof(*s));
	if (!s)
		return HS_ENOMEM;
	s->mask = 1023;
	s->slots = hs_calloc(s->mask + 1, sizeof(seen_slot));
	s->fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!s->slots || s->fd < 0) {
		int e = errno, nomem = !s->slots;
		hs_proc_scan_free(s);
		return nomem ? HS_ENOMEM : hs_error_set(HS_EIO, "cannot read '/proc': %s", strerror(e));
	}
	*out = s;
	return 0;
}

static seen_slot *find_slot(seen_slot *slots, size_t mask, int pid)
{
	size_t i = hs_hash_u64((uint64_t)pid) & mask;
	while (slots[i].pid && slots[i].pid != pid)
		i = (i + 1) & mask;
	return &slots[i];
}

/* Grow (keeping every entry), or drop the pids the last scan did not list. */
static int rebuild(hs_proc_scan *s, int grow)
{
	size_t cap = (s->mask + 1) * (grow ? 2 : 1);
	seen_slot *n = hs_calloc(cap, sizeof(*n));
	if (!n)
		return HS_ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i <= s->mask; i++) {
		if (!s->slots[i].pid || (!grow && s->slots[i].epoch != s->epoch))
			continue;
		*find_slot(n, cap - 1, s->slots[i].pid) = s->slots[i];
		used++;
	}
	hs_free(s->slots);
	s->slots = n;
	s->mask = cap - 1;
	s->used = used;
	return 0;
}

int hs_proc_scan_run(hs_proc_scan *s, void (*fn)(int pid, const hs_proc_stat *st, void *payload),
                     void *payload)
{
	s->epoch++;
	if (lseek(s->fd, 0, SEEK_SET) < 0)
		return hs_error_set(HS_EIO, "cannot read '/proc': %s", strerror(errno));
	for (;;) {
		long n = syscall(SYS_getdents64, s->fd, s->buf, sizeof(s->buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hs_error_set(HS_EIO, "cannot read '/proc': %s", strerror(errno));
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(s->buf + off);
			off += d->d_reclen;
			const char *name = d->d_name;
			if (name[0] < '1' || name[0] > '9')
				continue;
			int pid = 0;
			for (; *name >= '0' && *name <= '9'; name++)
				pid = pid * 10 + (*name - '0');
			if (*name)
				continue;
			seen_slot *e = find_slot(s->slots, s->mask, pid);
			int fresh = !e->pid || e->ino != d->d_ino;
			if (!e->pid)
				s->used++;
			e->pid = pid;
			e->ino = d->d_ino;
			e->epoch = s->epoch;
			if (fresh) {
				hs_proc_stat st;
				if (hs_procfs_stat_pid(pid, &st) == 0)
					fn(pid, &st, payload);
			}
			if (s->used * 2 > s->mask)
				HS_TRY(rebuild(s, 1));
		}
	}
	/* forget pids that are gone, now and then */
	if ((s->epoch & 63) == 0)
		HS_TRY(rebuild(s, 0));
	return 0;
}

void hs_proc_scan_free(hs_proc_scan *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	hs_free(s->slots);
	hs_free(s);
}
