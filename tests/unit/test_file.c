/* Unit tests: util/file.c, how heapsnap creates its outputs (a temporary
 * file beside the name, O_EXCL|O_NOFOLLOW, 0600, checked and renamed) and
 * opens its inputs (regular files only, never blocking on a FIFO); the
 * writers that use it; a recording cut in its footer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "heapsnap/errors.h"
#include "heapsnap/format.h"
#include "heapsnap/recording.h"
#include "util/file.h"
#include "testutil.h"

#define VICTIM "precious contents\n"

/* A file with known contents, standing for what an attacker aims at. */
static const char *victim(void)
{
	const char *v = hs_test_tmppath("victim");
	cr_assert_eq(hs_test_write_file(v, VICTIM, strlen(VICTIM)), 0);
	return v;
}

static void assert_victim_intact(const char *v)
{
	size_t len;
	char *data = hs_test_read_file(v, &len);
	cr_assert(data);
	cr_assert_eq(len, strlen(VICTIM));
	cr_assert_eq(memcmp(data, VICTIM, len), 0, "the victim file was written through");
	free(data);
}

/* Entries of the directory of `path` whose name starts with its base name
 * and ".tmp." */
static int count_temps(const char *path)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	const char *name = slash + 1;
	char prefix[512];
	snprintf(prefix, sizeof(prefix), "%s.tmp.", path + (name - dir));
	DIR *d = opendir(dir);
	cr_assert(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

/* A pid that no longer exists: a child that has been reaped. */
static pid_t dead_pid(void)
{
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

static void write_str(int fd, const char *s)
{
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

Test(file, output_is_0600_temp_beside_then_renamed)
{
	const char *path = hs_test_tmppath("out.bin");
	umask(022);
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	/* the temporary name carries the writer's pid */
	char infix[64];
	snprintf(infix, sizeof(infix), ".tmp.%ld.", (long)getpid());
	cr_assert(strstr(f.tmp_path, infix) != NULL, "%s", f.tmp_path);
	cr_assert_eq(access(path, F_OK), -1, "the final name appears only at the commit");
	struct stat st;
	cr_assert_eq(stat(f.tmp_path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	write_str(f.fd, "hello");
	cr_assert_eq(hs_file_out_commit(&f, HS_FILE_SYNC), 0, "%s", hs_error_last());
	hs_file_out_release(&f);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(st.st_size, 5);
	cr_assert_eq(count_temps(path), 0);
}

Test(file, replaces_own_regular_file)
{
	const char *path = hs_test_tmppath("own.bin");
	cr_assert_eq(hs_test_write_file(path, "old", 3), 0);
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	write_str(f.fd, "new!");
	cr_assert_eq(hs_file_out_commit(&f, 0), 0, "%s", hs_error_last());
	hs_file_out_release(&f);
	size_t len;
	char *d = hs_test_read_file(path, &len);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(d, "new!", 4), 0);
	free(d);
}

Test(file, refuses_a_symlink_at_the_final_name)
{
	const char *v = victim();
	const char *path = hs_test_tmppath("planted.hsnap");
	cr_assert_eq(symlink(v, path), 0);
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), HS_EIO);
	cr_assert(strstr(hs_error_last(), "refusing to replace") != NULL, "%s", hs_error_last());
	cr_assert(strstr(hs_error_last(), "symbolic link") != NULL, "%s", hs_error_last());
	cr_assert(strstr(hs_error_last(), path) != NULL, "%s", hs_error_last());
	cr_assert_eq(f.fd, -1);
	hs_file_out_release(&f);
	assert_victim_intact(v);
	cr_assert_eq(count_temps(path), 0);
	/* the early check says the same */
	cr_assert_eq(hs_file_check_output(path), HS_EIO);
}

Test(file, refuses_a_symlink_planted_before_the_rename)
{
	const char *v = victim();
	const char *path = hs_test_tmppath("late.hsnap");
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	write_str(f.fd, "snapshot");
	cr_assert_eq(symlink(v, path), 0);
	cr_assert_eq(hs_file_out_commit(&f, HS_FILE_SYNC), HS_EIO);
	cr_assert(strstr(hs_error_last(), "symbolic link") != NULL, "%s", hs_error_last());
	hs_file_out_release(&f);
	assert_victim_intact(v);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the planted link is left alone");
	cr_assert_eq(count_temps(path), 0, "the temporary file is removed");
}

Test(file, refuses_what_is_not_a_regular_file)
{
	const char *fifo = hs_test_tmppath("fifo.out");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, fifo), HS_EIO);
	cr_assert(strstr(hs_error_last(), "FIFO") != NULL, "%s", hs_error_last());
	const char *dir = hs_test_tmppath("dir.out");
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(hs_file_out_open(&f, dir), HS_EIO);
	cr_assert(strstr(hs_error_last(), "directory") != NULL, "%s", hs_error_last());
	char slash[600];
	snprintf(slash, sizeof(slash), "%s/", dir);
	cr_assert_eq(hs_file_out_open(&f, slash), HS_EIO);
	cr_assert_eq(hs_file_out_open(&f, "/nonexistent-dir/x.hsnap"), HS_EIO);
	cr_assert(strstr(hs_error_last(), "/nonexistent-dir") != NULL, "%s", hs_error_last());
}

Test(file, refuses_another_users_file)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to make a file of another user");
	const char *path = hs_test_tmppath("theirs.hsnap");
	cr_assert_eq(hs_test_write_file(path, VICTIM, strlen(VICTIM)), 0);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), HS_EIO);
	cr_assert(strstr(hs_error_last(), "belongs to another user") != NULL, "%s", hs_error_last());
	assert_victim_intact(path);
	/* the CLI's early look for a target that writes with its own
	 * credentials leaves ownership to the target */
	cr_assert_eq(hs_file_check_output(path), 0, "%s", hs_error_last());
}

Test(file, stream_commit)
{
	const char *path = hs_test_tmppath("stream.svg");
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	FILE *s = hs_file_out_stream(&f, "w");
	cr_assert(s);
	cr_assert_eq(f.fd, -1, "the stream owns the descriptor");
	fputs("<svg/>", s);
	cr_assert_eq(hs_file_out_commit_stream(&f, s, 0), 0, "%s", hs_error_last());
	hs_file_out_release(&f);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 6);
	cr_assert_eq(st.st_mode & 07777, 0600);
}

Test(file, release_without_commit_leaves_nothing)
{
	const char *path = hs_test_tmppath("aborted.hsnap");
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	write_str(f.fd, "partial");
	hs_file_out_release(&f);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(count_temps(path), 0);
	hs_file_out_release(&f); /* twice: harmless */
}

/* A temporary name of `path` as a writer with `pid` would make it. */
static const char *fake_temp(const char *path, long pid, const char *sfx)
{
	static char buf[8][600];
	static int next;
	char *p = buf[next++ % 8];
	snprintf(p, 600, "%s.tmp.%ld.%s", path, pid, sfx);
	cr_assert_eq(hs_test_write_file(p, "x", 1), 0);
	return p;
}

Test(file, next_writer_removes_stale_temps_of_dead_writers_only)
{
	const char *path = hs_test_tmppath("stale.hsnap");
	pid_t dead = dead_pid();
	const char *stale = fake_temp(path, dead, "aB3dE9");
	const char *live = fake_temp(path, (long)getppid(), "zzzzzz"); /* a live writer's */
	const char *other = NULL;
	if (geteuid() == 0) {
		other = fake_temp(path, dead, "OTHER1"); /* another user's, dead too */
		cr_assert_eq(chown(other, 65534, 65534), 0);
	}
	const char *unrelated = fake_temp(path, dead, "toolong7"); /* not our pattern */
	hs_file_out f = HS_FILE_OUT_INIT;
	cr_assert_eq(hs_file_out_open(&f, path), 0, "%s", hs_error_last());
	cr_assert_eq(access(stale, F_OK), -1, "a dead writer's temporary file stays");
	cr_assert_eq(access(live, F_OK), 0, "a live writer's temporary file was removed");
	if (other)
		cr_assert_eq(access(other, F_OK), 0, "another user's temporary file was removed");
	cr_assert_eq(access(unrelated, F_OK), 0);
	hs_file_out_release(&f);
}

Test(file, remove_temps_of_one_dead_writer_whoever_owns_them)
{
	const char *path = hs_test_tmppath("child.hsnap");
	pid_t dead = dead_pid();
	const char *a = fake_temp(path, dead, "aaaaaa");
	if (geteuid() == 0)
		cr_assert_eq(chown(a, 65534, 65534), 0);
	const char *b = fake_temp(path, dead + 100000, "bbbbbb");
	const char *mine = fake_temp(path, (long)getpid(), "cccccc");
	cr_assert_eq(hs_file_remove_temps(path, (int)dead), 1);
	cr_assert_eq(access(a, F_OK), -1);
	cr_assert_eq(access(b, F_OK), 0, "another pid's file was removed");
	/* a live process's: never */
	cr_assert_eq(hs_file_remove_temps(path, (int)getpid()), 0);
	cr_assert_eq(access(mine, F_OK), 0);
}

/* ------------------------------------------------------------------ */
/* inputs                                                              */

static void assert_refused(const char *path, const char *kind)
{
	int fd = 123;
	cr_assert_eq(hs_file_open_input(&fd, path, "a snapshot"), HS_EIO, "%s accepted", path);
	cr_assert_eq(fd, -1);
	cr_assert(strstr(hs_error_last(), path) != NULL, "%s", hs_error_last());
	cr_assert(strstr(hs_error_last(), kind) != NULL, "%s", hs_error_last());
	cr_assert(strchr(hs_error_last(), '\n') == NULL);
}

Test(file, inputs_that_are_not_regular_files_are_refused_at_once)
{
	const char *fifo = hs_test_tmppath("in.fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	assert_refused(fifo, "FIFO"); /* would block forever without O_NONBLOCK */
	assert_refused("/dev/null", "character device");
	const char *dir = hs_test_tmppath("in.dir");
	cr_assert_eq(mkdir(dir, 0700), 0);
	assert_refused(dir, "directory");
	const char *sock = hs_test_tmppath("in.sock");
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_refused(sock, "socket");
	close(s);
	FILE *f = (FILE *)1;
	cr_assert_eq(hs_file_fopen_input(&f, fifo, "an index"), HS_EIO);
	cr_assert_null(f);
}

Test(file, regular_inputs_open_blocking)
{
	const char *path = hs_test_tmppath("in.bin");
	cr_assert_eq(hs_test_write_file(path, "abc", 3), 0);
	int fd;
	cr_assert_eq(hs_file_open_input(&fd, path, "a snapshot"), 0, "%s", hs_error_last());
	cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	cr_assert_neq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	close(fd);
	cr_assert_eq(hs_file_open_input(&fd, hs_test_tmppath("missing"), "a snapshot"), HS_EIO);
	cr_assert(strstr(hs_error_last(), "no such file") != NULL, "%s", hs_error_last());
}

Test(file, readers_refuse_a_fifo)
{
	const char *fifo = hs_test_tmppath("r.fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, fifo, NULL), HS_EIO);
	cr_assert(strstr(hs_error_last(), "FIFO") != NULL, "%s", hs_error_last());
	cr_assert_lt(hs_file_kind_of(fifo), 0);
	cr_assert_eq(hs_format_read(fifo, NULL, NULL), HS_EIO);
	cr_assert(strstr(hs_error_last(), "not a snapshot") != NULL, "%s", hs_error_last());
}

/* ------------------------------------------------------------------ */
/* writers                                                             */

static hs_rec_writer *rec_open(const char *path)
{
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	o.wall_start = 1700000000.0;
	o.interval_us = 10000;
	cr_assert_eq(hs_rec_writer_open(&w, path, "{\"format\":\"heapsnap-recording\"}", &o), 0, "%s",
	             hs_error_last());
	return w;
}

static void rec_sample(hs_rec_writer *w, size_t p, int64_t t)
{
	int64_t v[HS_REC_MEM_COLUMNS] = { t, 1000 + t / 1000, 2000, 10 };
	cr_assert_eq(hs_rec_writer_sample(w, p, HS_REC_SERIES_MEM, v, HS_REC_MEM_COLUMNS), 0);
}

static size_t rec_proc(hs_rec_writer *w)
{
	const char *argv[] = { "python3", "job.py" };
	size_t p;
	hs_rec_proc_start ps = { 10, 1, -1, 0, HS_REC_PROC_ROOT | HS_REC_PROC_FROM_BIRTH,
	                         "/usr/bin/python3", 2, argv };
	cr_assert_eq(hs_rec_writer_process(w, &p, &ps), 0);
	return p;
}

Test(file, recording_takes_its_name_at_its_first_chunk)
{
	const char *path = hs_test_tmppath("r.hsrec");
	cr_assert_eq(hs_test_write_file(path, "old recording", 13), 0);
	hs_rec_writer *w = rec_open(path);
	size_t p = rec_proc(w);
	rec_sample(w, p, 0);
	/* before its first chunk the name still holds what was there */
	size_t len;
	char *d = hs_test_read_file(path, &len);
	cr_assert_eq(len, 13);
	free(d);
	cr_assert_not(hs_rec_writer_in_place(w));
	cr_assert_eq(count_temps(path), 1);
	cr_assert_eq(hs_rec_writer_flush(w, 10000), 0, "%s", hs_error_last());
	cr_assert(hs_rec_writer_in_place(w));
	cr_assert_eq(count_temps(path), 0);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	/* killed now: the valid prefix is readable under the final name */
	hs_recording *r;
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0, "%s", hs_error_last());
	cr_assert_not_null(hs_recording_info(r)->warning);
	hs_recording_free(r);
	/* later chunks append in place */
	rec_sample(w, p, 20000);
	cr_assert_eq(hs_rec_writer_close(w, 30000, HS_REC_STOP_EXITED, 0, NULL, NULL), 0, "%s",
	             hs_error_last());
	hs_rec_writer_free(w);
	cr_assert_eq(hs_recording_open(&r, path, NULL), 0, "%s", hs_error_last());
	cr_assert(hs_recording_info(r)->complete);
	cr_assert_null(hs_recording_info(r)->warning);
	hs_recording_free(r);
}

Test(file, recording_stopped_before_its_first_chunk_leaves_nothing)
{
	const char *path = hs_test_tmppath("none.hsrec");
	hs_rec_writer *w = rec_open(path);
	rec_proc(w);
	hs_rec_writer_free(w);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(count_temps(path), 0);
}

Test(file, recording_refuses_a_planted_symlink)
{
	const char *v = victim();
	const char *path = hs_test_tmppath("link.hsrec");
	cr_assert_eq(symlink(v, path), 0);
	hs_rec_writer *w;
	hs_rec_writer_options o = HS_REC_WRITER_OPTIONS_INIT;
	cr_assert_eq(hs_rec_writer_open(&w, path, NULL, &o), HS_EIO);
	cr_assert(strstr(hs_error_last(), "symbolic link") != NULL, "%s", hs_error_last());
	assert_victim_intact(v);
	/* and one planted while it runs, before its first chunk */
	const char *path2 = hs_test_tmppath("late.hsrec");
	w = rec_open(path2);
	rec_sample(w, rec_proc(w), 0);
	cr_assert_eq(symlink(v, path2), 0);
	cr_assert_eq(hs_rec_writer_flush(w, 10000), HS_EIO);
	hs_rec_writer_free(w);
	assert_victim_intact(v);
	cr_assert_eq(count_temps(path2), 0);
}

Test(file, snapshot_writer_refuses_a_planted_symlink)
{
	const char *v = victim();
	const char *path = hs_test_tmppath("s.hsnap");
	cr_assert_eq(symlink(v, path), 0);
	hs_writer *w;
	cr_assert_eq(hs_writer_open(&w, path, NULL), HS_EIO);
	cr_assert(strstr(hs_error_last(), "refusing to replace") != NULL, "%s", hs_error_last());
	assert_victim_intact(v);
	cr_assert_eq(count_temps(path), 0);
}

/* ------------------------------------------------------------------ */
/* a recording cut in its footer                                       */

Test(file, recording_cut_in_its_footer_reads_back)
{
	const char *path = hs_test_tmppath("foot.hsrec");
	hs_rec_writer *w = rec_open(path);
	size_t p = rec_proc(w);
	for (int k = 0; k < 50; k++)
		rec_sample(w, p, k * 10000);
	cr_assert_eq(hs_rec_writer_flush(w, 250000), 0);
	cr_assert_eq(hs_rec_writer_close(w, 500000, HS_REC_STOP_EXITED, 0, "{\"stop\":\"exited\"}",
	                                 NULL), 0);
	hs_rec_writer_free(w);
	size_t len;
	uint8_t *data = hs_test_read_file(path, &len);
	cr_assert_gt(len, 24 + 32);
	for (size_t cut = len - 24; cut < len; cut++) {
		hs_recording *r;
		cr_assert_eq(hs_recording_open_memory(&r, data, cut, "cut.hsrec", NULL), 0,
		             "cut at %zu of %zu: %s", cut, len, hs_error_last());
		const hs_rec_info *i = hs_recording_info(r);
		cr_assert_not_null(i->warning, "cut at %zu: no warning", cut);
		cr_assert(strstr(i->warning, "footer") != NULL, "%s", i->warning);
		cr_assert_float_eq(i->duration, 0.5, 1e-9);
		hs_recording_free(r);
		/* strict readers refuse it */
		hs_recording_options o = HS_RECORDING_OPTIONS_INIT;
		o.strict = 1;
		cr_assert_eq(hs_recording_open_memory(&r, data, cut, "cut.hsrec", &o), HS_EFORMAT);
	}
	/* zeros where the footer should be (a power cut) read back too */
	uint8_t *z = malloc(len);
	memcpy(z, data, len);
	memset(z + len - 10, 0, 10);
	hs_recording *r;
	cr_assert_eq(hs_recording_open_memory(&r, z, len - 3, "z.hsrec", NULL), 0, "%s",
	             hs_error_last());
	hs_recording_free(r);
	/* a whole footer that does not match is damage */
	z[len - 1] ^= 0x55;
	memcpy(z, data, len - 1);
	cr_assert_eq(hs_recording_open_memory(&r, z, len, "bad.hsrec", NULL), HS_EFORMAT);
	cr_assert(strstr(hs_error_last(), "corrupt footer") != NULL, "%s", hs_error_last());
	/* a cut footer whose bytes do not match is damage too */
	memcpy(z, data, len);
	z[len - 20] ^= 0x55;
	cr_assert_eq(hs_recording_open_memory(&r, z, len - 10, "bad.hsrec", NULL), HS_EFORMAT);
	/* the whole file is clean */
	cr_assert_eq(hs_recording_open_memory(&r, data, len, "ok.hsrec", NULL), 0);
	cr_assert_null(hs_recording_info(r)->warning);
	hs_recording_free(r);
	free(z);
	free(data);
}

Test(file, a_failed_dump_removes_every_temp_of_its_output)
{
	const char *path = hs_test_tmppath("failed.hsnap");
	const char *live = fake_temp(path, (long)getppid(), "livexx"); /* an orphaned writer */
	const char *dead = fake_temp(path, dead_pid(), "deadxx");
	const char *other = fake_temp(hs_test_tmppath("other.hsnap"), (long)getppid(), "keepme");
	cr_assert_eq(hs_file_remove_temps(path, HS_FILE_ANY_WRITER), 2);
	cr_assert_eq(access(live, F_OK), -1);
	cr_assert_eq(access(dead, F_OK), -1);
	cr_assert_eq(access(other, F_OK), 0, "another output's temporary file was removed");
	cr_assert_eq(hs_file_remove_temps(path, 0), 0, "pid 0 names no writer");
}
