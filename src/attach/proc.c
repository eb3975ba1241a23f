/*
 * attach/proc.c: readers of /proc/PID/{maps,status} and the target's
 * memory. Everything read is bounded and validated: the target may be
 * hostile (a process can rename itself, map files with odd names).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "util/alloc.h"

void hs_attach__maps_release(hs_maps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		hs_free(m->v[i].path);
	hs_free(m->v);
	m->v = NULL;
	m->n = 0;
}

int hs_attach__maps_read(hs_maps *out, pid_t pid)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/maps", (int)pid);
	out->v = NULL;
	out->n = 0;
	FILE *f = fopen(fn, "re");
	if (!f)
		return hs_error_set(errno == ENOENT ? HS_ENOTFOUND : HS_EIO,
		                    "cannot read '%s': %s", fn, strerror(errno));
	size_t cap = 0;
	int rc = 0;
	char line[4096 + 256];
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		if (len && line[len - 1] != '\n' && !feof(f)) {
			/* a path longer than PATH_MAX: skip the rest of the line */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		unsigned long long s, e, off;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s%n", &s, &e, perms, &off, &pos) != 4 || e <= s)
			continue;
		if (out->n == HS_MAPS_MAX) {
			rc = hs_error_set(HS_ELIMIT, "'%s' has more than %d mappings", fn, HS_MAPS_MAX);
			break;
		}
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			hs_map *nv = hs_reallocarray(out->v, nc, sizeof(*nv));
			if (!nv) {
				rc = HS_ENOMEM;
				break;
			}
			out->v = nv;
			cap = nc;
		}
		hs_map *m = &out->v[out->n];
		memset(m, 0, sizeof(*m));
		m->start = s;
		m->end = e;
		m->offset = off;
		memcpy(m->perms, perms, 4);
		const char *p = line + pos;
		while (*p == ' ')
			p++;
		if (*p == '/') {
			m->path = hs_strdup(p);
			if (!m->path) {
				rc = HS_ENOMEM;
				break;
			}
		}
		out->n++;
	}
	fclose(f);
	if (rc == 0 && out->n == 0)
		rc = hs_error_set(HS_ENOTFOUND, "process %d has no memory mappings (a zombie or a kernel "
		                  "thread?)", (int)pid);
	if (rc < 0)
		hs_attach__maps_release(out);
	return rc;
}

const hs_map *hs_attach__maps_first(const hs_maps *m, const char *path)
{
	const hs_map *best = NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].path && !strcmp(m->v[i].path, path) && (!best || m->v[i].start < best->start))
			best = &m->v[i];
	return best;
}

/* The parent of `pid` (/proc/PID/stat), 0 when unknown. */
int hs_attach__parent_of(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

int hs_attach__status(hs_proc_status *out, pid_t pid)
{
	char fn[64], line[512];
	memset(out, 0, sizeof(*out));
	out->ruid = out->euid = (uid_t)-1;
	snprintf(fn, sizeof(fn), "/proc/%d/status", (int)pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return hs_error_set(errno == ENOENT ? HS_ENOTFOUND : HS_EIO, "%s %d: %s",
		                    errno == ENOENT ? "no such process:" : "cannot read the status of process",
		                    (int)pid, errno == ENOENT ? "nothing to attach to" : strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		unsigned long long blk;
		int t;
		if (!strncmp(line, "Name:\t", 6)) {
			size_t k = strcspn(line + 6, "\n");
			if (k >= sizeof(out->name))
				k = sizeof(out->name) - 1;
			memcpy(out->name, line + 6, k);
			out->name[k] = '\0';
		} else if (sscanf(line, "Uid: %lu %lu", &a, &b) == 2) {
			out->ruid = (uid_t)a;
			out->euid = (uid_t)b;
		} else if (sscanf(line, "TracerPid: %d", &t) == 1) {
			out->tracer = t;
		} else if (!strncmp(line, "State:\t", 7)) {
			out->state = line[7];
		} else if (sscanf(line, "SigBlk: %llx", &blk) == 1) {
			out->sigblk = (uint64_t)blk;
		} else if (!strncmp(line, "x86_Thread_features:", 20)) {
			out->shadow_stack = strstr(line + 20, "shstk") != NULL;
		}
	}
	fclose(f);
	return 0;
}

int hs_attach__peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (n != (ssize_t)len)
		return hs_error_set(HS_EIO, "cannot read %zu bytes at 0x%llx in process %d: %s", len,
		                    (unsigned long long)addr, (int)pid, n < 0 ? strerror(errno) : "short read");
	return 0;
}

int hs_attach__poke(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	/* no PTRACE_POKEDATA fallback: it writes through page protections, and
	 * heapsnap must never be able to modify the target's code */
	return hs_error_set(HS_EIO, "cannot write %zu bytes at 0x%llx in process %d: %s", len,
	                    (unsigned long long)addr, (int)pid, n < 0 ? strerror(errno) : "short write");
}
