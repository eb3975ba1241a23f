/* util/errors.c: the thread-local last error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "heapsnap/errors.h"

static _Thread_local char last_message[1024];
static _Thread_local int last_code;

const char *hs_error_last(void) { return last_message; }
int hs_error_last_code(void) { return last_code; }

void hs_error_clear(void)
{
	last_message[0] = '\0';
	last_code = HS_OK;
}

int hs_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	last_code = code;
	return code;
}

const char *hs_error_name(int code)
{
	switch (code) {
	case HS_OK: return "success";
	case HS_ENOMEM: return "out of memory";
	case HS_EIO: return "i/o error";
	case HS_EFORMAT: return "format error";
	case HS_EVERSION: return "unsupported version";
	case HS_ENOTFOUND: return "not found";
	case HS_EINVAL: return "invalid argument";
	case HS_EZSTD: return "compression error";
	case HS_ELIMIT: return "limit exceeded";
	case HS_EUSER: return "aborted";
	default: return "unknown error";
	}
}

void hs__bug(const char *file, int line, const char *msg)
{
	fprintf(stderr, "heapsnap: internal error at %s:%d: %s\n", file, line, msg);
	abort();
}
