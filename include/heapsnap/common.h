/*
 * heapsnap/common.h: export macro and ownership rule shared by every module.
 *
 * Ownership, stated once: what a function gives through `**out` belongs to
 * the caller, who frees it with that type's `_free`; a pointer returned
 * directly is borrowed from its parent and lives as long as it. Every
 * `_free(NULL)` is a no-op.
 */
#ifndef HEAPSNAP_COMMON_H
#define HEAPSNAP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#  define HS_EXTERN(type) __attribute__((visibility("default"))) type
#else
#  define HS_EXTERN(type) type
#endif

#endif
