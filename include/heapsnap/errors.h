/*
 * heapsnap/errors.h: error codes and the thread-local last error.
 *
 * Library calls return 0 or a negative hs_error_code. The detail goes into a
 * thread-local message set once where the failure happens (callers never
 * overwrite it); read it with hs_error_last().
 */
#ifndef HEAPSNAP_ERRORS_H
#define HEAPSNAP_ERRORS_H

#include "common.h"

/* Fixed values: never renumber, only append. */
typedef enum hs_error_code {
	HS_OK = 0,
	HS_ENOMEM = -1,    /* out of memory */
	HS_EIO = -2,       /* read/write/open failure (errno in the message) */
	HS_EFORMAT = -3,   /* input is not a valid snapshot: corrupt, truncated */
	HS_EVERSION = -4,  /* a snapshot of a format version we cannot read */
	HS_ENOTFOUND = -5, /* a requested object, type or file does not exist */
	HS_EINVAL = -6,    /* bad argument from the caller */
	HS_EZSTD = -7,     /* compression library failure */
	HS_ELIMIT = -8,    /* input exceeds a sanity limit (absurd counts) */
	HS_EUSER = -9,     /* aborted by a callback */
} hs_error_code;

/**
 * The message of the last error raised on this thread.
 * @return never NULL; "" when no error was recorded. Owned by the library,
 *         valid until the next failing call on this thread.
 */
HS_EXTERN(const char *) hs_error_last(void);

/** The code of the last error on this thread (HS_OK if none). */
HS_EXTERN(int) hs_error_last_code(void);

/**
 * Record an error (printf-style) and return `code`, so call sites read
 * `return hs_error_set(HS_EFORMAT, "...")`.
 */
HS_EXTERN(int) hs_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Forget the last error on this thread. */
HS_EXTERN(void) hs_error_clear(void);

/** Short name of a code, e.g. "format error". Never NULL. */
HS_EXTERN(const char *) hs_error_name(int code);

/* Internal helpers used across modules. */
#define HS_TRY(expr) do { int hs__e = (expr); if (hs__e < 0) return hs__e; } while (0)
#define HS_RETURN_IF(cond, code, ...) \
	do { if (cond) return hs_error_set((code), __VA_ARGS__); } while (0)
/* Broken invariant (never bad input): abort with file and line. */
#define HS_BUG(msg) hs__bug(__FILE__, __LINE__, (msg))
HS_EXTERN(void) hs__bug(const char *file, int line, const char *msg)
	__attribute__((noreturn));

#endif
