/*
 * hook/track_stack.c: the current thread's Python stack, read inside an
 * allocator hook without allocating or running Python code.
 *
 * Per version (checked against the installed headers of 3.8.18-3.13.0 and
 * CPython's own walker, tracemalloc's traceback_get_frames):
 *   3.8-3.10  tstate->frame, PyFrameObject, f_back; f_lasti is a byte offset
 *             in 3.8/3.9 and a code-unit index in 3.10;
 *   3.11      tstate->cframe->current_frame, _PyInterpreterFrame, previous;
 *             prev_instr; incomplete frames (_PyFrame_IsIncomplete) skipped;
 *   3.12      same, plus the eval loop's shim frames (owner CSTACK) skipped;
 *   3.13      tstate->current_frame; f_executable (a code object, or not: then
 *             skipped); instr_ptr; _PyFrame_IsIncomplete covers CSTACK.
 * Lines come from PyCode_Addr2Line (public, decodes the line table on the C
 * stack). Decoding is linear in the code's size, so a direct-mapped cache
 * maps (code object, instruction) to the interned location; its entries only
 * name code objects the code table holds a reference to, so an address in
 * the cache cannot be reused by another code object while tracking.
 *
 * The GIL: with it (3.8-3.11: the runtime's current tstate is this
 * thread's GILState tstate; 3.12+: this thread's attached tstate is
 * non-NULL) code objects are interned. Without it (a thread that released
 * the GIL around C work: torch's CPU allocator, numpy's loops, BLAS) the
 * thread's own frames are still read, read-only: nobody else changes the
 * frames of a thread while it runs C code (the frame chain of a tstate is
 * only pushed and popped by its own thread, and its frames and their code
 * objects stay alive until the thread returns into them), so the stack is
 * that thread's current Python line. No reference is taken then: a code
 * object never interned is copied by name (detached entries).
 */
#define Py_BUILD_CORE_MODULE 1
#include "track_internal.h"

#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#endif
#include <frameobject.h>

#include <string.h>

#define CACHE_BITS 14

typedef struct fcache {
	const void *code;
	int32_t off;
	uint32_t loc;
} fcache;

static fcache cache[1u << CACHE_BITS];

void hs_tk_capture_reset(void)
{
	memset(cache, 0, sizeof(cache));
}

PyThreadState *hs_tk_gil_tstate(void)
{
#if PY_VERSION_HEX >= 0x030D0000
	return PyThreadState_GetUnchecked();
#elif PY_VERSION_HEX >= 0x030C0000
	return _PyThreadState_UncheckedGet();
#else
	PyThreadState *cur = _PyThreadState_UncheckedGet();
	return cur && cur == PyGILState_GetThisThreadState() ? cur : NULL;
#endif
}

/* UTF-8 of str `s` into buf (at most cap - 1 bytes, cut at a character),
 * reading the string's own storage: no allocation, no Python call, so it is
 * safe without the GIL on a string kept alive by a live frame's code
 * object (strings are immutable; code objects' names are compact). */
static size_t utf8_of(PyObject *s, char *buf, size_t cap)
{
	size_t n = 0;
	if (!s || !PyUnicode_Check(s) || !PyUnicode_IS_COMPACT(s))
		return 0;
	Py_ssize_t len = PyUnicode_GET_LENGTH(s);
	int kind = PyUnicode_KIND(s);
	const void *data = PyUnicode_DATA(s);
	for (Py_ssize_t i = 0; i < len; i++) {
		Py_UCS4 c = PyUnicode_READ(kind, data, i);
		char u[4];
		size_t k;
		if (c < 0x80) {
			u[0] = (char)c;
			k = 1;
		} else if (c < 0x800) {
			u[0] = (char)(0xC0 | (c >> 6));
			u[1] = (char)(0x80 | (c & 0x3F));
			k = 2;
		} else if (c < 0x10000) {
			if (c >= 0xD800 && c < 0xE000)
				c = 0xFFFD; /* a lone surrogate: the replacement character */
			u[0] = (char)(0xE0 | (c >> 12));
			u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
			u[2] = (char)(0x80 | (c & 0x3F));
			k = 3;
		} else {
			u[0] = (char)(0xF0 | (c >> 18));
			u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
			u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
			u[3] = (char)(0x80 | (c & 0x3F));
			k = 4;
		}
		if (n + k >= cap)
			break;
		memcpy(buf + n, u, k);
		n += k;
	}
	return n;
}

/* Without the GIL: the detached entry of `co` (its names copied). */
static uint32_t detach(PyCodeObject *co)
{
	char file[1024], name[256];
#if PY_VERSION_HEX >= 0x030B0000
	PyObject *qn = co->co_qualname;
#else
	PyObject *qn = co->co_name;
#endif
	size_t fl = utf8_of(co->co_filename, file, sizeof(file));
	size_t nl = utf8_of(qn, name, sizeof(name));
	return hs_tk_code_detached(co, co->co_firstlineno, file, fl, name, nl);
}

/* Location of instruction `off` (code units, or bytes in 3.8/3.9: the cache
 * only needs a key) of `co`; HS_TK_NONE when out of memory. With the GIL
 * (`gil` 1) the code object is interned (a reference taken); without it, a
 * code object interned before is found, and one never interned gets a
 * detached entry (its names copied, see track_sites.c). The cache holds
 * interned code objects only: their addresses cannot be reused while
 * tracking, a detached one's can. */
static uint32_t locate(PyCodeObject *co, int off, int addr, int gil)
{
	uintptr_t h = ((uintptr_t)co >> 4) * 0x9E3779B97F4A7C15ULL + (uintptr_t)(uint32_t)off * 0x85EBCA6BU;
	fcache *c = &cache[(h >> 20) & ((1u << CACHE_BITS) - 1)];
	if (c->code == co && c->off == off)
		return c->loc;
	uint32_t ci = gil ? hs_tk_code_intern((PyObject *)co) : hs_tk_code_find((PyObject *)co);
	int detached = 0;
	if (ci == HS_TK_NONE && !gil) {
		ci = detach(co);
		detached = 1;
	}
	if (ci == HS_TK_NONE)
		return HS_TK_NONE;
	int line = addr < 0 ? co->co_firstlineno : PyCode_Addr2Line(co, addr);
	uint32_t loc = hs_tk_loc_intern(ci, line);
	if (loc != HS_TK_NONE && !detached) {
		c->code = co;
		c->off = off;
		c->loc = loc;
	}
	return loc;
}

int hs_tk_capture(uint32_t *locs, int *truncated)
{
	PyThreadState *ts = hs_tk_gil_tstate();
	int n = 0, gil = 1;
	*truncated = 0;
	if (!ts) {
		/* Without the GIL this thread is in C code called from its own
		 * frames, which nobody else changes: they can be read, but no
		 * reference can be taken (see locate). */
		ts = PyGILState_GetThisThreadState();
		gil = 0;
		if (!ts)
			return -1;
	}
#if PY_VERSION_HEX < 0x030B0000
	for (PyFrameObject *f = ts->frame; f; f = f->f_back) {
		if (n == HS_TK_MAX_FRAMES) {
			*truncated = 1;
			break;
		}
		PyCodeObject *co = f->f_code;
		if (!co)
			continue;
		int off = f->f_lasti;
#if PY_VERSION_HEX >= 0x030A0000
		int addr = off < 0 ? -1 : off * 2;
#else
		int addr = off;
#endif
		uint32_t loc = locate(co, off, addr, gil);
		if (loc != HS_TK_NONE)
			locs[n++] = loc;
	}
#else
#if PY_VERSION_HEX >= 0x030D0000
	_PyInterpreterFrame *f = ts->current_frame;
#else
	_PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
#endif
	for (; f; f = f->previous) {
#if PY_VERSION_HEX >= 0x030D0000
		if (f->owner == FRAME_OWNED_BY_CSTACK || !f->f_executable || !PyCode_Check(f->f_executable))
			continue;
		PyCodeObject *co = (PyCodeObject *)f->f_executable;
		if (_PyFrame_IsIncomplete(f))
			continue;
		int off = (int)(f->instr_ptr - _PyCode_CODE(co));
#else
#if PY_VERSION_HEX >= 0x030C0000
		if (f->owner == FRAME_OWNED_BY_CSTACK)
			continue;
#endif
		PyCodeObject *co = f->f_code;
		if (!co || _PyFrame_IsIncomplete(f))
			continue;
		int off = (int)(f->prev_instr - _PyCode_CODE(co));
#endif
		if (n == HS_TK_MAX_FRAMES) {
			*truncated = 1;
			break;
		}
		uint32_t loc = locate(co, off, off < 0 ? -1 : off * (int)sizeof(_Py_CODEUNIT), gil);
		if (loc != HS_TK_NONE)
			locs[n++] = loc;
	}
#endif
	return n;
}
