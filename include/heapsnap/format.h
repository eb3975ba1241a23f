/*
 * heapsnap/format.h: the snapshot file format (formats/snapshot-v1.md).
 *
 * One writer and one reader, shared by the hook (which writes) and the
 * analyzer (which reads). The container is generic: a fixed header, typed
 * sections (each checksummed and zstd-compressed), a section index and a
 * footer. A snapshot is the container with file kind HS_FILE_SNAPSHOT and
 * the section kinds below.
 */
#ifndef HEAPSNAP_FORMAT_H
#define HEAPSNAP_FORMAT_H

#include "common.h"
#include "errors.h"

#define HS_FORMAT_MAJOR 1
#define HS_FORMAT_MINOR 1 /* snapshots: 1.1 adds REPORTED, real sizes, native types */
#define HS_RECORDING_FORMAT_MINOR 0

#define HS_HEADER_SIZE 32
#define HS_SECTION_HEADER_SIZE 24
#define HS_FOOTER_SIZE 24
/* Limit on one section's raw (decompressed) size: chunks are far smaller,
 * so a larger claim is corruption and must not size an allocation. */
#define HS_SECTION_MAX_RAW (64u * 1024u * 1024u)

typedef enum hs_file_kind {
	HS_FILE_SNAPSHOT = 1,
	HS_FILE_RECORDING = 2,
} hs_file_kind;

typedef enum hs_section_kind {
	HS_SECTION_META = 1,    /* JSON metadata (UTF-8) */
	HS_SECTION_STRINGS = 2, /* string table chunk */
	HS_SECTION_TYPES = 3,   /* type table chunk */
	HS_SECTION_NODES = 4,   /* objects and their outgoing edges, columnar */
	HS_SECTION_ROOTS = 5,   /* roots chunk */
	HS_SECTION_META_END = 6, /* JSON known only after the walk, merged over META */
	HS_SECTION_SIZES = 7,    /* sizes measured after the walk, replacing estimates */
	HS_SECTION_SITES = 8,    /* allocation sites: locations and stacks (optional) */
	HS_SECTION_ALLOCS = 9,   /* tracked blocks: address -> stack, size, time (optional) */
	HS_SECTION_REPORTED = 10, /* 1.1: what sys.getsizeof reports, per record of the NODES before */
	HS_SECTION_INDEX = 15,  /* section index + totals; last before footer */
} hs_section_kind;

/* Node flags (one byte per node in the file). */
#define HS_NODE_GC_TRACKED      0x01u /* tracked by the cyclic GC */
#define HS_NODE_HAS_VALUE       0x02u /* a short value follows (str/int/float/bytes) */
#define HS_NODE_VALUE_TRUNCATED 0x04u /* the value is a prefix */
#define HS_NODE_SIZE_ESTIMATED  0x08u /* 1.1: the real size is a lower bound (a type with its
                                         own C __sizeof__ we do not model); 1.0: __sizeof__
                                         failed or was not called, basic size */
#define HS_NODE_IMMORTAL        0x10u /* refcount is the immortal marker (3.12+) */
#define HS_NODE_FLAGS_KNOWN     0x1fu

/* Edge kinds (low 2 bits of the edge byte). */
#define HS_EDGE_STRONG 0u
#define HS_EDGE_WEAK   1u /* a weak reference: never retains */

/* Edge label kinds (bits 2..5 of the edge byte). */
typedef enum hs_label_kind {
	HS_LABEL_NONE = 0,
	HS_LABEL_INDEX = 1,     /* label = index                 -> [3]      */
	HS_LABEL_KEY = 2,       /* label = address of key object -> ['k']    */
	HS_LABEL_ATTR = 3,      /* label = address of str object -> .name    */
	HS_LABEL_NAME = 4,      /* label = string id             -> __dict__ */
	HS_LABEL_ATTR_NAME = 5, /* label = string id             -> .name    */
	HS_LABEL_DICT_KEY = 6,  /* edge to a dict's key object, no payload   */
	HS_LABEL_LOCAL = 7,     /* label = string id of a frame local name   */
	HS_LABEL_KIND_COUNT = 8
} hs_label_kind;

/* Type flags. */
#define HS_TYPE_GC        0x01u /* Py_TPFLAGS_HAVE_GC */
#define HS_TYPE_HEAP      0x02u /* Py_TPFLAGS_HEAPTYPE */
#define HS_TYPE_SIZEOF_PY 0x04u /* 1.0: sizes came from a __sizeof__ call; 1.1: the type has
                                   its own C __sizeof__ we do not model */
#define HS_TYPE_NATIVE    0x08u /* 1.1: nodes are native buffers, not Python objects */
#define HS_TYPE_DEVICE    0x10u /* 1.1: native memory on a device (never host RSS) */
#define HS_TYPE_MAPPED    0x20u /* 1.1: a file or anonymous mapping owned by an object */
#define HS_TYPE_FLAGS_KNOWN 0x3fu

typedef enum hs_root_kind {
	HS_ROOT_MODULE = 1,      /* sys.modules[name]; name = module name */
	HS_ROOT_FRAME = 2,       /* a frame object; name = thread, detail = frame */
	HS_ROOT_LOCAL = 3,       /* a frame's local/stack value; name = thread and
	                            frame, detail = local name */
	HS_ROOT_HELD = 4,        /* held from C (derived by readers, see spec) */
	HS_ROOT_INTERPRETER = 5, /* interpreter state (sys dict, builtins...) */
	HS_ROOT_KIND_MAX = 5
} hs_root_kind;

#define HS_NO_STRING UINT32_MAX

typedef struct hs_type_record {
	uint64_t address;    /* the type object */
	uint32_t name;       /* string id of "module.QualName" */
	uint32_t flags;      /* HS_TYPE_* */
	uint64_t basic_size; /* tp_basicsize */
} hs_type_record;

typedef struct hs_node_record {
	uint64_t address;
	uint32_t type;      /* type id (index into the type table) */
	uint32_t flags;     /* HS_NODE_* */
	uint64_t size;      /* 1.1: real bytes (allocator blocks owned); 1.0: sys.getsizeof */
	uint64_t refcount;  /* ob_refcnt at dump time (0 if immortal) */
	const char *value;  /* HS_NODE_HAS_VALUE: value bytes (not NUL-terminated) */
	uint32_t value_len;
	uint32_t edge_count; /* reader: edges that follow; writer: ignored */
} hs_node_record;

typedef struct hs_edge_record {
	uint64_t target;    /* address of the referenced object */
	uint8_t kind;       /* HS_EDGE_STRONG / HS_EDGE_WEAK */
	uint8_t label_kind; /* hs_label_kind */
	uint64_t label;     /* index, string id or key address by label_kind */
} hs_edge_record;

typedef struct hs_root_record {
	uint8_t kind;     /* hs_root_kind */
	uint64_t target;  /* address */
	uint32_t name;    /* string id or HS_NO_STRING */
	uint32_t detail;  /* string id or HS_NO_STRING */
} hs_root_record;

/* Allocation sites (SITES / ALLOCS sections, written while tracking). */
#define HS_SITE_LIBRARY 0x01u /* a location in the stdlib, site-packages, heapsnap... */
#define HS_SITE_FLAGS_KNOWN 0x01u
#define HS_SITE_MAX_FRAMES 256u /* frames per stack a reader accepts */

typedef struct hs_site_loc {
	uint32_t file;     /* string id or HS_NO_STRING */
	uint32_t function; /* string id or HS_NO_STRING */
	uint32_t line;     /* 0 unknown */
	uint32_t flags;    /* HS_SITE_* */
} hs_site_loc;

typedef struct hs_alloc_record {
	uint64_t address;  /* start of the allocated block (see the spec: the
	                      object may start after a pre-header) */
	uint32_t stack;    /* stack id */
	uint64_t size;     /* bytes requested for the block */
	uint64_t time_ms;  /* ms since tracking started */
} hs_alloc_record;

typedef struct hs_totals {
	uint64_t nodes, edges, strings, types, roots;
	uint32_t minor; /* reader: the file's format minor version (0: 1.0, 1: 1.1) */
} hs_totals;

/* ------------------------------------------------------------------ */
/* Writer                                                              */

typedef struct hs_writer hs_writer;

typedef struct hs_writer_options {
	unsigned version;
	int compression_level;   /* zstd level; default 3 */
	uint32_t python_version; /* PY_VERSION_HEX of the target, 0 if none */
	uint32_t chunk_nodes;    /* nodes per NODES section; default 65536 */
	int threaded;            /* compress and write on a second thread */
} hs_writer_options;

#define HS_WRITER_OPTIONS_VERSION 1
#define HS_WRITER_OPTIONS_INIT { HS_WRITER_OPTIONS_VERSION, 3, 0, 65536, 1 }

typedef struct hs_write_stats {
	uint64_t nodes, edges, strings, types, roots;
	uint64_t raw_bytes;      /* before compression */
	uint64_t file_bytes;     /* final file size */
	uint64_t peak_buffer_bytes; /* writer's own peak memory */
} hs_write_stats;

/**
 * Start a snapshot at `path`: the data goes to a temporary file
 * "<path>.tmp.XXXXXX" (mode 0600) in the same directory, renamed onto
 * `path` only by hs_writer_commit().
 * @return 0 or a negative hs_error_code; *out belongs to the caller.
 */
HS_EXTERN(int) hs_writer_open(hs_writer **out, const char *path,
                              const hs_writer_options *opts);
/** Write the JSON metadata section (call once, before nodes). */
HS_EXTERN(int) hs_writer_meta(hs_writer *w, const char *json, size_t len);
/**
 * Write the closing metadata section: JSON figures known only at the end
 * (pause and walk times...). Readers merge its keys over META's. Optional,
 * at most once.
 */
HS_EXTERN(int) hs_writer_meta_end(hs_writer *w, const char *json, size_t len);
/**
 * Correct the size of an object written earlier: a SIZES section (format
 * 1.0: a Python `__sizeof__` run once the walk was over). Readers replace
 * its size and clear its HS_NODE_SIZE_ESTIMATED flag. Call after every
 * node, before commit. The hook no longer writes them (1.1 sizes are
 * computed in C); kept to write 1.0-style files in tests.
 */
HS_EXTERN(int) hs_writer_size(hs_writer *w, uint64_t address, uint64_t size);
/**
 * Record what sys.getsizeof reports for the node just written (call after
 * hs_writer_node for that node, before its edges overflow into a new
 * section and before the next node; `address` must be that node's).
 * Written positionally as a REPORTED section right after that node's NODES
 * section; a node without a call is "unknown".
 */
HS_EXTERN(int) hs_writer_reported(hs_writer *w, uint64_t address, uint64_t getsizeof);
/** Intern a string; *out receives its id (the same bytes give the same id). */
HS_EXTERN(int) hs_writer_string(hs_writer *w, uint32_t *out, const char *s, size_t len);
/** Define the next type; *out receives its id (0, 1, 2, ... in call order). */
HS_EXTERN(int) hs_writer_type(hs_writer *w, uint32_t *out, const hs_type_record *t);
/**
 * Write the allocation-site tables: `sample_bytes` is the tracker's mean
 * sampling interval (0: every allocation recorded), `locs` the locations
 * (ids 0.. in order, continuing across calls), then `nstacks` stacks whose
 * frames (location ids, innermost first) are `frames`, `stack_len[i]` each.
 * Call after the nodes, before hs_writer_alloc.
 */
HS_EXTERN(int) hs_writer_sites(hs_writer *w, uint64_t sample_bytes, const hs_site_loc *locs,
                               uint32_t nlocs, const uint32_t *frames, const uint32_t *stack_len,
                               uint32_t nstacks);
/** Append a tracked block (its stack written by hs_writer_sites before). */
HS_EXTERN(int) hs_writer_alloc(hs_writer *w, const hs_alloc_record *a);
/** Append a node; the edges added after it, until the next node, are its own. */
HS_EXTERN(int) hs_writer_node(hs_writer *w, const hs_node_record *n);
HS_EXTERN(int) hs_writer_edge(hs_writer *w, const hs_edge_record *e);
HS_EXTERN(int) hs_writer_root(hs_writer *w, const hs_root_record *r);
/**
 * Flush everything, write index and footer, fsync, rename onto the final
 * path. After a failure the temporary file is removed.
 * @param stats optional, filled on success.
 */
HS_EXTERN(int) hs_writer_commit(hs_writer *w, hs_write_stats *stats);
/** Free the writer; if not committed, remove the temporary file. */
HS_EXTERN(void) hs_writer_free(hs_writer *w);

/* ------------------------------------------------------------------ */
/* Reader                                                              */

/*
 * The reader validates the whole container before it reports anything
 * (header, footer, index, every section's checksums), then decodes the
 * sections in file order and reports records through a visitor. Any
 * callback may return a negative code to stop; that code is returned.
 * Edges are reported right after the node they belong to. A visitor with
 * no `edge` callback skips decoding the edge streams (a fast address-only
 * pass); they are then checked only for their counts.
 */
typedef struct hs_read_visitor {
	unsigned version;
	int (*totals)(const hs_totals *t, uint32_t python_version, void *payload);
	int (*meta)(const char *json, size_t len, void *payload);
	int (*string)(uint32_t id, const char *s, size_t len, void *payload);
	int (*type)(uint32_t id, const hs_type_record *t, void *payload);
	int (*node)(const hs_node_record *n, void *payload);
	int (*edge)(const hs_edge_record *e, void *payload);
	int (*root)(const hs_root_record *r, void *payload);
	/* the META_END section, if any (reported after every other section) */
	int (*meta_end)(const char *json, size_t len, void *payload);
	/* a size correction from a SIZES section (after the nodes it names) */
	int (*size)(uint64_t address, uint64_t size, void *payload);
	/* allocation sites (SITES / ALLOCS sections; absent unless tracking
	 * was on): the header of each SITES section, its locations, its
	 * stacks (frames innermost first), then each tracked block */
	int (*sites)(uint64_t sample_bytes, void *payload);
	int (*site_loc)(uint32_t id, const hs_site_loc *l, void *payload);
	int (*site_stack)(uint32_t id, const uint32_t *locs, uint32_t n, void *payload);
	int (*alloc)(const hs_alloc_record *a, void *payload);
	/* 1.1: what sys.getsizeof reports for the object at `address`, the
	 * `node`-th object of the file (0-based, file order, continuation
	 * records not counted), already passed to `node` (REPORTED sections) */
	int (*reported)(uint64_t node, uint64_t address, uint64_t getsizeof, void *payload);
} hs_read_visitor;

#define HS_READ_VISITOR_VERSION 1

/**
 * Read a snapshot file through `v` (NULL callbacks are skipped).
 * Errors carry a message naming `path` and the problem.
 * @return 0 or a negative hs_error_code (HS_EIO, HS_EFORMAT, HS_EVERSION,
 *         HS_ELIMIT, HS_ENOMEM, or what a callback returned).
 */
HS_EXTERN(int) hs_format_read(const char *path, const hs_read_visitor *v, void *payload);

/** Same, from memory (for the fuzzer and tests); `name` is used in messages. */
HS_EXTERN(int) hs_format_read_memory(const void *data, size_t len, const char *name,
                                     const hs_read_visitor *v, void *payload);

#endif
