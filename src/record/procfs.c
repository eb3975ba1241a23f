/*
 * record/procfs.c: the /proc reads behind every sample, kept cheap: the
 * files read at the tick rate stay open and are re-read with pread at
 * offset 0 (the kernel regenerates them), parsed in place without stdio.
 *
 * What they cost here (see docs in the report): statm about 1.3 us with
 * the file open, status 6.6 us, stat 3 us, smaps_rollup 10 ms for a 1 GiB
 * process (about 9 us per MiB of RSS): that one is read at a budgeted rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/record_internal.h"
#include "util/alloc.h"

static long page_kib(void)
{
	static long k;
	if (!k) {
		long ps = sysconf(_SC_PAGESIZE);
		k = ps > 0 ? ps / 1024 : 4;
	}
	return k;
}

int64_t hs_procfs_tick_us(void)
{
	static int64_t us;
	if (!us) {
		long hz = sysconf(_SC_CLK_TCK);
		us = hz > 0 ? 1000000 / hz : 10000;
	}
	return us;
}

static int open_file(int pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int hs_procfs_open(hs_procfs *p, int pid)
{
	p->pid = pid;
	p->status_fd = p->stat_fd = p->smaps_fd = -1;
	p->statm_fd = open_file(pid, "statm");
	if (p->statm_fd < 0) {
		int e = p->statm_fd;
		p->statm_fd = -1;
		return e;
	}
	return 0;
}

void hs_procfs_close(hs_procfs *p)
{
	int *fds[4] = { &p->statm_fd, &p->status_fd, &p->stat_fd, &p->smaps_fd };
	for (int i = 0; i < 4; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Read a whole small file through a kept fd into buf (NUL-terminated). */
static ssize_t read_kept(hs_procfs *p, int *fd, const char *name, char *buf, size_t size)
{
	if (*fd < 0) {
		*fd = open_file(p->pid, name);
		if (*fd < 0) {
			int e = *fd;
			*fd = -1;
			return e;
		}
	}
	ssize_t n;
	do
		n = pread(*fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

/* A decimal number; values beyond INT64_MAX (stat's rsslim is often
 * ULONG_MAX) saturate. */
static const char *next_num(const char *s, int64_t *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return NULL;
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s++ - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	*out = v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
	return s;
}

int hs_procfs_statm(hs_procfs *p, int64_t *rss, int64_t *vms, int64_t *shared)
{
	char buf[256];
	ssize_t n = read_kept(p, &p->statm_fd, "statm", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	int64_t size, res, sh;
	const char *s = buf;
	if (!(s = next_num(s, &size)) || !(s = next_num(s, &res)) || !(s = next_num(s, &sh)))
		return -EINVAL;
	long k = page_kib();
	*vms = size * k;
	*rss = res * k;
	*shared = sh * k;
	return 0;
}

/* Value in kB of "Key:   123 kB" lines. */
static int64_t field_kib(const char *buf, const char *key)
{
	size_t kl = strlen(key);
	const char *s = buf;
	while (s && *s) {
		if (!strncmp(s, key, kl) && s[kl] == ':') {
			int64_t v;
			return next_num(s + kl + 1, &v) ? v : -1;
		}
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return -1;
}

int hs_procfs_status(hs_procfs *p, int64_t *anon, int64_t *file, int64_t *shmem, int64_t *swap)
{
	char buf[4096];
	ssize_t n = read_kept(p, &p->status_fd, "status", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	*anon = field_kib(buf, "RssAnon");
	*file = field_kib(buf, "RssFile");
	*shmem = field_kib(buf, "RssShmem");
	*swap = field_kib(buf, "VmSwap");
	return 0;
}

static int parse_stat(const char *buf, hs_proc_stat *out)
{
	const char *s = strrchr(buf, ')');
	if (!s || s[1] != ' ')
		return -EINVAL;
	s += 2;
	out->state = *s;
	s++;
	/* fields 4.. as numbers; 52 is exit_code */
	int64_t f[53];
	int k = 4;
	for (; k <= 52; k++) {
		while (*s == ' ')
			s++;
		if (!*s || *s == '\n')
			break;
		int neg = 0;
		if (*s == '-') {
			neg = 1;
			s++;
		}
		int64_t v;
		const char *e = next_num(s, &v);
		if (!e)
			return -EINVAL;
		f[k] = neg ? -v : v; /* v <= INT64_MAX: negation is defined */
		s = e;
	}
	if (k <= 22)
		return -EINVAL;
	int64_t tick_ms = hs_procfs_tick_us() / 1000;
	out->ppid = (int)f[4];
	out->utime_ms = (uint64_t)f[14] * (uint64_t)tick_ms;
	out->stime_ms = (uint64_t)f[15] * (uint64_t)tick_ms;
	out->threads = (int)f[20];
	out->starttime = (uint64_t)f[22];
	out->exit_code = k > 52 ? (int)f[52] : -1;
	return 0;
}

int hs_procfs_stat(hs_procfs *p, hs_proc_stat *out)
{
	char buf[1024];
	ssize_t n = read_kept(p, &p->stat_fd, "stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return parse_stat(buf, out);
}

int hs_procfs_stat_pid(int pid, hs_proc_stat *out)
{
	char buf[1024];
	int fd = open_file(pid, "stat");
	if (fd < 0)
		return fd;
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -e : -ESRCH;
	buf[n] = '\0';
	return parse_stat(buf, out);
}

int hs_procfs_smaps(hs_procfs *p, hs_proc_smaps *out)
{
	char buf[2048];
	ssize_t n = read_kept(p, &p->smaps_fd, "smaps_rollup", buf, sizeof(buf));
	if (n == 0) {
		/* The file holds the memory map it was opened on: after an exec it
		 * reads empty. Open it again (empty again: a zombie, no map left). */
		close(p->smaps_fd);
		p->smaps_fd = -1;
		n = read_kept(p, &p->smaps_fd, "smaps_rollup", buf, sizeof(buf));
	}
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ESRCH;
	out->pss = field_kib(buf, "Pss");
	int64_t pc = field_kib(buf, "Private_Clean"), pd = field_kib(buf, "Private_Dirty");
	out->uss = pc >= 0 && pd >= 0 ? pc + pd : -1;
	out->pss_anon = field_kib(buf, "Pss_Anon");
	out->pss_file = field_kib(buf, "Pss_File");
	out->pss_shmem = field_kib(buf, "Pss_Shmem");
	out->swap = field_kib(buf, "Swap");
	out->swap_pss = field_kib(buf, "SwapPss");
	return out->pss >= 0 ? 0 : -EINVAL;
}

int hs_procfs_cmdline(int pid, char ***argv_out, size_t *argc_out)
{
	*argv_out = NULL;
	*argc_out = 0;
	int fd = open_file(pid, "cmdline");
	if (fd < 0)
		return fd;
	size_t cap = 4096, len = 0;
	char *buf = hs_malloc(cap);
	if (!buf) {
		close(fd);
		return HS_ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= 256 * 1024)
				break; /* enough of a huge command line */
			char *nb = hs_reallocarray(buf, cap * 2, 1);
			if (!nb) {
				hs_free(buf);
				close(fd);
				return HS_ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	size_t argc = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			argc++;
	if (len && buf[len - 1] != '\0')
		argc++;
	/* one allocation: the pointer array, then the strings */
	char **argv = hs_malloc((argc + 1) * sizeof(char *) + len + 1);
	if (!argv) {
		hs_free(buf);
		return HS_ENOMEM;
	}
	char *strs = (char *)(argv + argc + 1);
	memcpy(strs, buf, len);
	strs[len] = '\0';
	hs_free(buf);
	size_t k = 0;
	for (size_t i = 0; i < len && k < argc;) {
		argv[k++] = strs + i;
		i += strlen(strs + i) + 1;
	}
	argv[k] = NULL;
	*argv_out = argv;
	*argc_out = k;
	return 0;
}

void hs_procfs_exe(int pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ssize_t n = readlink(path, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}
