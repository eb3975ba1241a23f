/*
 * util/file.c: output files created beside their final name and renamed
 * into place, inputs opened without blocking (util/file.h).
 *
 * Everything on an output's final name goes through a descriptor of its
 * directory (fstatat/openat/renameat with no following), so a directory
 * entry changed between two calls can at worst make the write fail: rename
 * replaces a symbolic link itself, it never writes through it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap/errors.h"
#include "util/alloc.h"
#include "util/file.h"

/* "a FIFO (named pipe)"...: what a non-regular file is, for messages. */
static const char *kind_of(mode_t m)
{
	if (S_ISLNK(m)) return "a symbolic link";
	if (S_ISDIR(m)) return "a directory";
	if (S_ISFIFO(m)) return "a FIFO (named pipe)";
	if (S_ISSOCK(m)) return "a socket";
	if (S_ISCHR(m)) return "a character device";
	if (S_ISBLK(m)) return "a block device";
	return "not a regular file";
}

/* The directory part of `path` ("." when none), as a new string. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return hs_strdup(".");
	if (slash == path)
		return hs_strdup("/");
	return hs_strndup(path, (size_t)(slash - path));
}

static int open_dir(const char *path, const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hs_error_set(HS_EIO, "cannot write '%s': directory '%s': %s", path, dir,
		                    errno == ENOENT ? "no such directory" : strerror(errno));
	return fd;
}

/*
 * The final name may be replaced: absent, or a regular file of ours (of
 * anyone with any_owner: the CLI's early look on behalf of a target that
 * writes with its own credentials and checks ownership itself).
 */
static int check_target(int dirfd, const char *name, const char *path, int any_owner)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return 0;
		return hs_error_set(HS_EIO, "cannot write '%s': %s", path, strerror(errno));
	}
	if (S_ISLNK(st.st_mode))
		return hs_error_set(HS_EIO, "refusing to replace '%s': it is a symbolic link (another "
		                    "user may have planted it); choose another output path or remove it",
		                    path);
	if (S_ISDIR(st.st_mode))
		return hs_error_set(HS_EIO, "refusing to write '%s': it is a directory; give the path "
		                    "of a file", path);
	if (!S_ISREG(st.st_mode))
		return hs_error_set(HS_EIO, "refusing to replace '%s': it is %s, not a regular file; "
		                    "choose another output path", path, kind_of(st.st_mode));
	if (!any_owner && st.st_uid != geteuid())
		return hs_error_set(HS_EIO, "refusing to replace '%s': it belongs to another user "
		                    "(uid %u); choose another output path, or remove it first",
		                    path, (unsigned)st.st_uid);
	return 0;
}

/* The base name of `path`, refusing names that cannot be a file. */
static int base_of(const char **out, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return hs_error_set(HS_EIO, "refusing to write '%s': it names a directory; give the "
		                    "path of a file", path);
	*out = name;
	return 0;
}

int hs_file_check_output(const char *path)
{
	const char *name;
	if (!path || !*path)
		return hs_error_set(HS_EINVAL, "no output path given");
	HS_TRY(base_of(&name, path));
	char *dir = dir_of(path);
	if (!dir)
		return HS_ENOMEM;
	int dirfd = open_dir(path, dir);
	hs_free(dir);
	if (dirfd < 0)
		return dirfd;
	int rc = check_target(dirfd, name, path, 1);
	close(dirfd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* stale temporary files                                               */

/* The process exists and can still write: not gone, not a zombie. A pid
 * of another user (EPERM) counts as alive: we cannot tell more. */
static int process_alive(long pid)
{
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return 0;
	char fn[64], buf[512];
	snprintf(fn, sizeof(fn), "/proc/%ld/stat", pid);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 1;
	return p[2] != 'Z' && p[2] != 'X';
}

/* The writer's pid in "<name>.tmp.<pid>.XXXXXX", or 0 when `entry` is not
 * one of name's temporary files. */
static long temp_pid(const char *entry, const char *name, size_t nl)
{
	size_t il = strlen(HS_FILE_TMP_INFIX);
	if (strncmp(entry, name, nl) || strncmp(entry + nl, HS_FILE_TMP_INFIX, il))
		return 0;
	const char *s = entry + nl + il;
	long pid = 0;
	while (isdigit((unsigned char)*s) && pid < INT_MAX)
		pid = pid * 10 + (*s++ - '0');
	if (pid <= 0 || pid > INT_MAX || *s != '.' || strlen(s + 1) != 6)
		return 0;
	return pid;
}

/* Remove name's temporary files: of dead writers of any pid owned by us
 * (only == 0), of the dead writer `only` whoever owns them (only > 0), or
 * all of them (only == HS_FILE_ANY_WRITER). */
static int clean_at(int dirfd, const char *name, long only)
{
	int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0; /* a directory we may write but not list: nothing to clean */
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	size_t nl = strlen(name);
	long self = (long)getpid();
	uid_t me = geteuid();
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long pid = temp_pid(e->d_name, name, nl);
		if (pid == 0 || pid == self || (only > 0 && pid != only))
			continue;
		if (only != HS_FILE_ANY_WRITER && process_alive(pid))
			continue;
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (only == 0 && st.st_uid != me)
			continue; /* never another user's */
		if (unlinkat(dirfd, e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

static int clean_path(const char *path, long only)
{
	const char *name;
	if (!path || !*path || base_of(&name, path) < 0)
		return 0;
	char *dir = dir_of(path);
	if (!dir)
		return 0;
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	hs_free(dir);
	if (dirfd < 0)
		return 0;
	int n = clean_at(dirfd, name, only);
	close(dirfd);
	return n;
}

int hs_file_clean_stale(const char *path) { return clean_path(path, 0); }

int hs_file_remove_temps(const char *path, int pid)
{
	return pid > 0 || pid == HS_FILE_ANY_WRITER ? clean_path(path, pid) : 0;
}

/* ------------------------------------------------------------------ */
/* outputs                                                             */

static void random_suffix(char out[7])
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char r[6];
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* no entropy yet (early boot): the name only has to be new, and
		 * O_EXCL makes sure it is */
		static unsigned counter;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		unsigned long v = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^
		                  (unsigned long)__atomic_add_fetch(&counter, 7919, __ATOMIC_RELAXED);
		for (int i = 0; i < 6; i++, v /= 62)
			r[i] = (unsigned char)v;
	}
	for (int i = 0; i < 6; i++)
		out[i] = set[r[i] % 62];
	out[6] = '\0';
}

int hs_file_out_open(hs_file_out *f, const char *path)
{
	*f = (hs_file_out)HS_FILE_OUT_INIT;
	const char *name;
	if (!path || !*path)
		return hs_error_set(HS_EINVAL, "no output path given");
	HS_TRY(base_of(&name, path));
	int rc = HS_ENOMEM;
	size_t plen = strlen(path);
	char *dir = dir_of(path);
	f->path = hs_strdup(path);
	f->tmp_path = hs_malloc(plen + 48);
	if (!dir || !f->path || !f->tmp_path)
		goto fail;
	f->name = f->path + (name - path);
	f->dirfd = open_dir(path, dir);
	if (f->dirfd < 0) {
		rc = f->dirfd;
		f->dirfd = -1;
		goto fail;
	}
	if ((rc = check_target(f->dirfd, f->name, path, 0)) < 0)
		goto fail;
	clean_at(f->dirfd, f->name, 0);
	f->tmp_name = f->tmp_path + (name - path);
	for (int tries = 0; tries < 100; tries++) {
		char sfx[7];
		random_suffix(sfx);
		snprintf(f->tmp_path, plen + 48, "%s%s%ld.%s", path, HS_FILE_TMP_INFIX, (long)getpid(),
		         sfx);
		f->fd = openat(f->dirfd, f->tmp_name,
		               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f->fd >= 0 || errno != EEXIST)
			break;
	}
	if (f->fd < 0) {
		rc = hs_error_set(HS_EIO, "cannot write '%s': cannot create '%s': %s", path,
		                  f->tmp_path, strerror(errno));
		f->tmp_name = NULL;
		goto fail;
	}
	/* exactly 0600 whatever the umask: command lines and environments in
	 * the metadata can hold secrets */
	(void)fchmod(f->fd, 0600);
	hs_free(dir);
	return 0;
fail:
	hs_free(dir);
	hs_file_out_release(f);
	return rc;
}

FILE *hs_file_out_stream(hs_file_out *f, const char *mode)
{
	FILE *s = f->fd >= 0 ? fdopen(f->fd, mode) : NULL;
	if (!s) {
		hs_error_set(HS_EIO, "cannot write '%s': %s", f->path ? f->path : "",
		             strerror(f->fd >= 0 ? errno : EBADF));
		return NULL;
	}
	f->fd = -1;
	return s;
}

/* Check the final name again and rename over it (the file is closed or
 * kept open by the caller). */
static int put_in_place(hs_file_out *f)
{
	HS_TRY(check_target(f->dirfd, f->name, f->path, 0));
	if (renameat(f->dirfd, f->tmp_name, f->dirfd, f->name) != 0)
		return hs_error_set(HS_EIO, "cannot write '%s': cannot rename '%s' to it: %s", f->path,
		                    f->tmp_path, strerror(errno));
	f->committed = 1;
	return 0;
}

int hs_file_out_commit(hs_file_out *f, unsigned flags)
{
	if (f->committed)
		return 0;
	if (f->fd < 0 || !f->tmp_name)
		return hs_error_set(HS_EINVAL, "cannot write '%s': the file is not open",
		                    f->path ? f->path : "");
	if ((flags & HS_FILE_SYNC) && fsync(f->fd) != 0 && errno != EINVAL)
		return hs_error_set(HS_EIO, "cannot write '%s': cannot sync '%s': %s", f->path,
		                    f->tmp_path, strerror(errno));
	if (!(flags & HS_FILE_KEEP_OPEN)) {
		int rc = close(f->fd);
		f->fd = -1;
		if (rc != 0 && errno != EINTR)
			return hs_error_set(HS_EIO, "cannot write '%s': %s", f->path, strerror(errno));
	}
	return put_in_place(f);
}

int hs_file_out_commit_stream(hs_file_out *f, FILE *stream, unsigned flags)
{
	int failed = fflush(stream) != 0 || ferror(stream);
	int e = errno;
	if (!failed && (flags & HS_FILE_SYNC) && fsync(fileno(stream)) != 0 && errno != EINVAL) {
		failed = 1;
		e = errno;
	}
	if (fclose(stream) != 0 && !failed) {
		failed = 1;
		e = errno;
	}
	if (failed)
		return hs_error_set(HS_EIO, "cannot write '%s': %s", f->path ? f->path : "",
		                    strerror(e ? e : EIO));
	return put_in_place(f);
}

void hs_file_out_release(hs_file_out *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (!f->committed && f->tmp_name && f->dirfd >= 0)
		unlinkat(f->dirfd, f->tmp_name, 0);
	if (f->dirfd >= 0)
		close(f->dirfd);
	hs_free(f->path);
	hs_free(f->tmp_path);
	*f = (hs_file_out)HS_FILE_OUT_INIT;
}

/* ------------------------------------------------------------------ */
/* inputs                                                              */

static int refuse_input(const char *path, mode_t mode, const char *what)
{
	return hs_error_set(HS_EIO, "cannot read '%s': it is %s, not %s", path, kind_of(mode),
	                    what ? what : "a regular file");
}

int hs_file_open_input(int *out, const char *path, const char *what)
{
	*out = -1;
	/* O_NONBLOCK: opening a FIFO with no writer would wait forever */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (e == ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			return refuse_input(path, st.st_mode, what); /* a socket */
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path,
		                    e == ENOENT ? "no such file" : strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return refuse_input(path, st.st_mode, what);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	*out = fd;
	return 0;
}

int hs_file_fopen_input(FILE **out, const char *path, const char *what)
{
	*out = NULL;
	int fd;
	HS_TRY(hs_file_open_input(&fd, path, what));
	FILE *f = fdopen(fd, "re");
	if (!f) {
		int e = errno;
		close(fd);
		return hs_error_set(HS_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	*out = f;
	return 0;
}
