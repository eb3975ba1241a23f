/*
 * util/file.h: how heapsnap creates its output files and opens its inputs.
 *
 * Every file heapsnap or its hook writes (snapshots, recordings, indexes,
 * plots, graphs, flame graphs, fork-mode status files) is created as a
 * temporary file beside its final name and renamed into place:
 *
 *   "<final>.tmp.<pid>.XXXXXX", created with O_CREAT|O_EXCL|O_NOFOLLOW,
 *   mode 0600, through a descriptor of the final name's directory, so a
 *   name planted by another user (a symbolic link in /tmp) is never
 *   followed and never written through.
 *
 * The final name is checked (lstat, never followed) before the temporary
 * file is made and again just before the rename: a symbolic link, anything
 * but a regular file, or a file of another user is refused with a message
 * naming the file, the problem and a remedy. Our own regular file is
 * replaced (renamed over). The writer's pid in the temporary name lets the
 * next writer of the same output remove what a killed one left: only files
 * of dead processes, owned by the same user.
 *
 * Inputs are opened with hs_file_open_input: O_NONBLOCK so that a FIFO
 * cannot block, and anything but a regular file is refused at once.
 */
#ifndef HS_UTIL_FILE_H
#define HS_UTIL_FILE_H

#include <stdio.h>
#include "heapsnap/common.h"

/** An output being written: a temporary file beside its final name. */
typedef struct hs_file_out {
	int fd;               /* the temporary file, open for writing; -1 once closed
	                         or handed to a stream (hs_file_out_stream) */
	int dirfd;            /* O_PATH descriptor of the final name's directory */
	char *path;           /* the final path as given (for messages) */
	char *tmp_path;       /* the temporary file's path (for messages) */
	const char *name;     /* the final name inside dirfd (points into path) */
	const char *tmp_name; /* the temporary name inside dirfd (into tmp_path) */
	int committed;        /* renamed into place: release keeps it */
} hs_file_out;

#define HS_FILE_OUT_INIT { .fd = -1, .dirfd = -1 }

/* hs_file_out_commit flags */
#define HS_FILE_SYNC 1      /* fsync the file before the rename */
#define HS_FILE_KEEP_OPEN 2 /* keep writing through fd after the rename
                               (recordings: later chunks append in place) */

/* What a temporary name of `path` is: "<path>.tmp.<pid>.XXXXXX". */
#define HS_FILE_TMP_INFIX ".tmp."

/**
 * Check that `path` may be written: it does not exist, or it is a regular
 * file of ours. Nothing is followed.
 * @return 0 or a negative hs_error_code (HS_EIO, the message names the file,
 *         the problem and a remedy)
 */
HS_EXTERN(int) hs_file_check_output(const char *path);

/**
 * Start writing `path`: check the final name, remove stale temporary files
 * of dead writers of the same output (same user), create the temporary file
 * (mode 0600) and open it for writing in `f->fd`. `f` must be
 * HS_FILE_OUT_INIT; on failure it is left released.
 * @return 0 or a negative hs_error_code
 */
HS_EXTERN(int) hs_file_out_open(hs_file_out *f, const char *path);

/**
 * A stdio stream over the temporary file (mode "w"/"wb"); the stream owns
 * the descriptor from then on (f->fd becomes -1): finish with
 * hs_file_out_commit_stream, or fclose it before hs_file_out_release.
 * @return the stream, or NULL with the last error set
 */
HS_EXTERN(FILE *) hs_file_out_stream(hs_file_out *f, const char *mode);

/**
 * Put the file in place: fsync it (HS_FILE_SYNC), close it (unless
 * HS_FILE_KEEP_OPEN), check the final name again and rename the temporary
 * file over it.
 * @return 0 or a negative hs_error_code; on failure the temporary file is
 *         still there and hs_file_out_release removes it
 */
HS_EXTERN(int) hs_file_out_commit(hs_file_out *f, unsigned flags);

/**
 * hs_file_out_commit for a file written through `stream`
 * (hs_file_out_stream): flush, check for write errors, sync, fclose (always,
 * even on failure), then check and rename.
 * @return 0 or a negative hs_error_code
 */
HS_EXTERN(int) hs_file_out_commit_stream(hs_file_out *f, FILE *stream, unsigned flags);

/**
 * Close what is open and, unless committed, remove the temporary file.
 * Safe on HS_FILE_OUT_INIT and after a failed open; the struct can be
 * reused after it.
 */
HS_EXTERN(void) hs_file_out_release(hs_file_out *f);

/**
 * Remove the temporary files "<path>.tmp.<pid>.XXXXXX" left by dead writers
 * (any pid that no longer exists) that belong to this user. Never a live
 * writer's, never another user's.
 * @return the number of files removed
 */
HS_EXTERN(int) hs_file_clean_stale(const char *path);

/**
 * Remove the temporary files of `path` written by process `pid`, whoever
 * owns them, provided that process is gone: for a caller that knows the
 * writer died (a forked dump child it watched). With HS_FILE_ANY_WRITER,
 * every temporary file of `path`, alive or not: for a dump that failed and
 * whose writer may outlive it (the child forked by a target that died), so
 * that nothing appears after "no snapshot was written".
 * @return the number of files removed
 */
#define HS_FILE_ANY_WRITER (-1)
HS_EXTERN(int) hs_file_remove_temps(const char *path, int pid);

/**
 * Open `path` for reading without blocking on a FIFO, refusing anything but
 * a regular file (FIFO, socket, device, directory) at once. `what` names
 * the expected content for the message ("a snapshot", "a recording"...).
 * The descriptor is blocking again when returned (*out, O_CLOEXEC).
 * @return 0 or a negative hs_error_code (HS_EIO, naming the file)
 */
HS_EXTERN(int) hs_file_open_input(int *out, const char *path, const char *what);

/**
 * hs_file_open_input as a stdio stream ("re").
 * @return 0 or a negative hs_error_code; *out is NULL on failure
 */
HS_EXTERN(int) hs_file_fopen_input(FILE **out, const char *path, const char *what);

#endif
