/* tests/unit/testutil.h: helpers shared by the Criterion unit tests. */
#ifndef HS_TESTUTIL_H
#define HS_TESTUTIL_H
#include <stddef.h>
/* A fresh path in a private temporary directory; static buffer per call slot. */
const char *hs_test_tmppath(const char *name);
/* Read a whole file into a malloc'd buffer (caller frees with free()). */
void *hs_test_read_file(const char *path, size_t *len);
int hs_test_write_file(const char *path, const void *data, size_t len);
#endif
