/*
 * hook/native.h: native memory owned by Python objects (numpy data buffers,
 * torch storages, array.array items, mmap mappings, pyarrow buffers), found
 * in C without running Python code so that the walk (walk.c), in-process or
 * in a forked child, counts each buffer once as a node of its own.
 */
#ifndef HS_HOOK_NATIVE_H
#define HS_HOOK_NATIVE_H

#include <Python.h>
#include <stdint.h>

typedef struct hs_native_state hs_native_state; /* probed library layouts */

enum { HS_NATIVE_HOST = 0, HS_NATIVE_DEVICE = 1, HS_NATIVE_MAPPED = 2 };

typedef struct hs_native_buffer {
	uintptr_t address;     /* identity: the same buffer always gives the same address */
	uint64_t bytes;        /* bytes it holds (0 for a meta tensor) */
	const char *type_name; /* static: "<native> numpy data", "<native> torch storage", ... */
	const char *label;     /* static edge label: "data", "storage" or "mapping" */
	int where;             /* HS_NATIVE_* */
} hs_native_buffer;

/* With the GIL, before the walk (in the parent before a fork-mode fork):
 * look at sys.modules for known libraries and probe their layouts; may run
 * Python code. NULL only when out of memory (with no library loaded the
 * state matches nothing). */
hs_native_state *hs_native_prepare(void);
void hs_native_free(hs_native_state *st);

/* What prepare could not use, for the dump's notes: "" when every loaded
 * library it knows was checked and enabled, else one clause per library,
 * "; "-separated ("torch: tensor layout not found: tensor storages not
 * counted"). Borrowed from `st`; "" for NULL. */
const char *hs_native_notes(const hs_native_state *st);

/* Once per type: the recipe that finds its buffers, 0 when it owns none.
 * No Python code. */
int hs_native_recipe(const hs_native_state *st, PyTypeObject *tp);

/* The buffers `op` (of a type with recipe != 0) owns: fills at most `max`,
 * returns how many. No Python code, no allocation, no reference taken:
 * safe in a forked child. */
int hs_native_buffers(const hs_native_state *st, int recipe, PyObject *op,
                      hs_native_buffer *out, int max);

/* The Python objects held in the native buffer `op` owns (a numpy array of
 * dtype object): *items = the first of *count object slots (a slot may be
 * NULL) and 1, or 0 when it holds no objects. numpy's ndarray has no
 * tp_traverse, so without this the walk would never reach them (a pandas
 * object column's strings). No Python code, no allocation. */
int hs_native_object_items(const hs_native_state *st, int recipe, PyObject *op,
                           PyObject *const **items, size_t *count);

#endif
