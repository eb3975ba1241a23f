/*
 * hook/native.c: native buffers owned by objects (see native.h).
 * First cut: knows no library yet (owner H2 fills it in).
 */
#include "native.h"
#include "util/alloc.h"

struct hs_native_state {
	int unused;
};

hs_native_state *hs_native_prepare(void)
{
	return hs_calloc(1, sizeof(hs_native_state));
}

void hs_native_free(hs_native_state *st)
{
	hs_free(st);
}

int hs_native_recipe(const hs_native_state *st, PyTypeObject *tp)
{
	(void)st;
	(void)tp;
	return 0;
}

int hs_native_buffers(const hs_native_state *st, int recipe, PyObject *op,
                      hs_native_buffer *out, int max)
{
	(void)st;
	(void)recipe;
	(void)op;
	(void)out;
	(void)max;
	return 0;
}
