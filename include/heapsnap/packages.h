/*
 * heapsnap/packages.h: what each top-level package costs
 * (`heapsnap retained --by package`).
 *
 * A package's retained size is what its modules retain as a set: the
 * objects reachable only through the modules in sys.modules whose name
 * starts with it (`json`, `json.decoder`, `json.scanner` make `json`), their
 * namespaces included. An object two of its modules share counts for it;
 * one shared with another package counts for neither. A standard library
 * C accelerator _X (_json, _decimal, _pickle) belongs to X when X is
 * imported: X re-exports what _X defines. All packages come
 * from one dominator computation over the graph with each package's
 * modules (and their __dict__s) contracted into one virtual object: the
 * references into any of them lead to it, and it leads to them.
 *
 * Its mapped size is the resident bytes of the files it maps (its extension
 * modules and their bundled libraries), from the snapshot's memory maps
 * (META `memory.files`), attributed by path: .../site-packages/<pkg>/...,
 * .../site-packages/<pkg>.libs/..., .../site-packages/<pkg>.cpython-*.so
 * (dist-packages alike), and .../lib-dynload/<name>.cpython-*.so for the
 * standard library's extension modules.
 *
 * This header also declares the command's renderers.
 */
#ifndef HEAPSNAP_PACKAGES_H
#define HEAPSNAP_PACKAGES_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "common.h"
#include "errors.h"
#include "snapshot.h"

/* hs_package.mapped when the snapshot has no memory maps */
#define HS_PACKAGE_MAPPED_UNKNOWN UINT64_MAX

typedef struct hs_package_file {
	char *path;
	uint64_t rss;             /* resident bytes of its mappings */
} hs_package_file;

typedef struct hs_package {
	char *name;               /* top-level package (first component) */
	uint32_t modules;         /* its modules in sys.modules */
	uint64_t count;           /* objects reachable only through them */
	uint64_t retained;        /* their bytes (modules and namespaces included) */
	uint64_t mapped;          /* resident bytes of its files; HS_PACKAGE_MAPPED_UNKNOWN */
	size_t file_count;
	hs_package_file *files;   /* biggest first */
} hs_package;

typedef struct hs_packages {
	size_t count;
	hs_package *packages;     /* by retained + mapped desc, then name */
	int mappings_known;       /* the snapshot has META memory.files */
	uint64_t retained;        /* sum over packages: bytes modules retain */
	uint64_t reachable_bytes; /* every reachable object */
	uint64_t mapped_other;    /* resident file bytes no package owns (interpreter, libc) */
} hs_packages;

/**
 * Per top-level package, what its modules retain as a set and the resident
 * size of its files (see above). Time: one dominator computation on a copy
 * of the graph (5 bytes per reference and 8 per object more while running).
 * @return 0 or a negative hs_error_code; *out belongs to the caller
 *         (hs_packages_free).
 */
HS_EXTERN(int) hs_packages_compute(hs_packages **out, const hs_snapshot *s);
HS_EXTERN(void) hs_packages_free(hs_packages *p);

/**
 * The package a mapped file belongs to, written to `buf` (NUL-terminated,
 * truncated to `size`): numpy for .../site-packages/numpy/core/x.so and
 * .../site-packages/numpy.libs/libopenblas.so, _decimal for
 * .../lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so.
 * @return 1 when the path belongs to a package, else 0 (buf set to "").
 */
HS_EXTERN(int) hs_package_of_path(char *buf, size_t size, const char *path);

/** `heapsnap retained --by package` as an aligned table, the `top` largest
 *  (0: all). @return 0 or a negative hs_error_code. */
HS_EXTERN(int) hs_render_packages_text(FILE *f, const hs_snapshot *s, const hs_packages *p,
                                       size_t top);
/** The same as JSON (formats/retained.schema.json, by "package").
 *  @return 0 or a negative hs_error_code; *out belongs to the caller
 *  (cJSON_Delete). */
HS_EXTERN(int) hs_render_packages_json(cJSON **out, const hs_snapshot *s, const hs_packages *p,
                                       size_t top);

#endif
