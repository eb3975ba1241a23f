/*
 * hook/sizes.c: object sizes as sys.getsizeof reports them, computed in C
 * for the types whose __sizeof__ is a known builtin (object, str, int, list,
 * dict, set, frozenset, bytearray), shared by the dump's walk (walk.c) and
 * the agent's TYPES walk (stats.c) so that both follow one set of rules.
 */
#define Py_BUILD_CORE_MODULE 1
#include "pycore.h"

#include <stddef.h>

/* What sys.getsizeof adds to __sizeof__() (_PySys_GetSizeOf). */
Py_ssize_t hs_hook__presize(PyTypeObject *tp, PyObject *op, int is_gc)
{
#if PY_VERSION_HEX < 0x030B0000
	(void)tp;
	(void)op;
	return is_gc ? (Py_ssize_t)sizeof(PyGC_Head) : 0;
#elif PY_VERSION_HEX < 0x030D0000
	(void)op;
	(void)is_gc;
	return (Py_ssize_t)_PyType_PreHeaderSize(tp);
#else
	(void)is_gc;
	if (tp == &PyType_Type && !(((PyTypeObject *)op)->tp_flags & Py_TPFLAGS_HEAPTYPE))
		return 0;
	return (Py_ssize_t)_PyType_PreHeaderSize(tp);
#endif
}

Py_ssize_t hs_hook__presize_alloc(PyTypeObject *tp)
{
#if PY_VERSION_HEX < 0x030B0000
	/* _PyObject_GC_Malloc: sizeof(PyGC_Head) + basicsize */
	return PyType_IS_GC(tp) ? (Py_ssize_t)sizeof(PyGC_Head) : 0;
#else
	/* _PyType_AllocNoTrack / gc_alloc: GC header + managed dict/weakref */
	return (Py_ssize_t)_PyType_PreHeaderSize(tp);
#endif
}

const void *hs_hook__str_data(PyObject *op)
{
	PyASCIIObject *a = (PyASCIIObject *)op;
	if (a->state.compact)
		return a->state.ascii ? (const void *)(a + 1) : (const void *)((PyCompactUnicodeObject *)op + 1);
	return ((PyUnicodeObject *)op)->data.any;
}

/* unicode_sizeof_impl, field by field (its macros assert readiness). */
static Py_ssize_t str_size(PyObject *op)
{
	PyASCIIObject *a = (PyASCIIObject *)op;
	Py_ssize_t len = a->length;
	Py_ssize_t kind = a->state.kind;
	Py_ssize_t size;
	int compact_ascii = a->state.compact && a->state.ascii;
	if (compact_ascii)
		size = (Py_ssize_t)sizeof(PyASCIIObject) + len + 1;
	else if (a->state.compact)
		size = (Py_ssize_t)sizeof(PyCompactUnicodeObject) + (len + 1) * kind;
	else {
		size = (Py_ssize_t)sizeof(PyUnicodeObject);
		if (((PyUnicodeObject *)op)->data.any)
			size += (len + 1) * kind;
	}
#if PY_VERSION_HEX < 0x030C0000
	if (a->wstr && (!a->state.ready || (const void *)a->wstr != hs_hook__str_data(op))) {
		Py_ssize_t wlen = compact_ascii ? a->length : ((PyCompactUnicodeObject *)op)->wstr_length;
		size += (wlen + 1) * (Py_ssize_t)sizeof(wchar_t);
	}
#endif
	if (!compact_ascii) {
		PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)op;
		if (c->utf8 && (const void *)c->utf8 != hs_hook__str_data(op))
			size += c->utf8_length + 1;
	}
	return size;
}

static Py_ssize_t long_size(PyTypeObject *tp, PyObject *op)
{
#if PY_VERSION_HEX < 0x030B0000
	(void)tp;
	Py_ssize_t n = ((PyVarObject *)op)->ob_size;
	if (n < 0)
		n = -n;
	return (Py_ssize_t)offsetof(PyLongObject, ob_digit) + n * (Py_ssize_t)sizeof(digit);
#elif PY_VERSION_HEX < 0x030C0000
	(void)tp;
	Py_ssize_t n = ((PyVarObject *)op)->ob_size;
	if (n < 0)
		n = -n;
	if (n < 1)
		n = 1;
	return (Py_ssize_t)offsetof(PyLongObject, ob_digit) + n * (Py_ssize_t)sizeof(digit);
#else
	Py_ssize_t n = (Py_ssize_t)(((PyLongObject *)op)->long_value.lv_tag >> _PyLong_NON_SIZE_BITS);
	if (n < 1)
		n = 1;
	return tp->tp_basicsize + n * tp->tp_itemsize;
#endif
}

int hs_hook__size_rules_init(hs_size_rules *r)
{
	static const struct { PyTypeObject *tp; int kind; } builtins[HS_SIZE_BUILTINS] = {
		{ &PyBaseObject_Type, HS_SK_DEFAULT }, { &PyUnicode_Type, HS_SK_STR },
		{ &PyLong_Type, HS_SK_LONG },          { &PyList_Type, HS_SK_LIST },
		{ &PyDict_Type, HS_SK_DICT },          { &PySet_Type, HS_SK_SET },
		{ &PyFrozenSet_Type, HS_SK_SET },      { &PyByteArray_Type, HS_SK_BYTEARRAY },
		/* tuple_sizeof, bytes_sizeof: basicsize + ob_size * itemsize */
		{ &PyTuple_Type, HS_SK_DEFAULT },      { &PyBytes_Type, HS_SK_DEFAULT },
	};
	/* the C __sizeof__ methods whose buffers blocks.c counts itself */
	static PyTypeObject *const modeled[HS_SIZE_MODELED] = {
		&PyBaseObject_Type, &PyUnicode_Type, &PyLong_Type, &PyList_Type, &PyDict_Type,
		&PySet_Type, &PyFrozenSet_Type, &PyByteArray_Type, &PyTuple_Type, &PyBytes_Type,
		&PyType_Type, &PyCode_Type,
	};
	if (!r->name && !(r->name = PyUnicode_InternFromString("__sizeof__")))
		return -1;
	for (int i = 0; i < HS_SIZE_BUILTINS; i++) {
		r->builtin_sizeof[i] = _PyType_Lookup(builtins[i].tp, r->name);
		r->builtin_kind[i] = builtins[i].kind;
	}
	for (int i = 0; i < HS_SIZE_MODELED; i++) {
		r->modeled[i] = _PyType_Lookup(modeled[i], r->name);
	}
	return 0;
}

int hs_hook__size_kind(const hs_size_rules *r, PyTypeObject *tp)
{
	PyObject *d = _PyType_Lookup(tp, r->name);
	if (d == NULL)
		return HS_SK_NONE;
	for (int i = 0; i < HS_SIZE_BUILTINS; i++)
		if (r->builtin_sizeof[i] == d)
			return r->builtin_kind[i];
	if (Py_TYPE(d) == &PyMethodDescr_Type)
		return HS_SK_CALL_C;
	return HS_SK_CALL_PY;
}

int hs_hook__size_native(int kind, PyTypeObject *tp, PyObject *op, Py_ssize_t *out)
{
	Py_ssize_t s;
	switch (kind) {
	case HS_SK_DEFAULT:
		s = tp->tp_basicsize;
		if (tp->tp_itemsize > 0)
			s += ((PyVarObject *)op)->ob_size * tp->tp_itemsize;
		break;
	case HS_SK_STR:
		s = str_size(op);
		break;
	case HS_SK_LONG:
		s = long_size(tp, op);
		break;
	case HS_SK_LIST:
		s = tp->tp_basicsize + ((PyListObject *)op)->allocated * (Py_ssize_t)sizeof(void *);
		break;
	case HS_SK_DICT:
		s = _PyDict_SizeOf((PyDictObject *)op);
		break;
	case HS_SK_SET: {
		PySetObject *so = (PySetObject *)op;
		s = tp->tp_basicsize;
		if (so->table != so->smalltable)
			s += (so->mask + 1) * (Py_ssize_t)sizeof(setentry);
		break;
	}
	case HS_SK_BYTEARRAY:
		s = tp->tp_basicsize + ((PyByteArrayObject *)op)->ob_alloc;
		break;
	default:
		return 0;
	}
	*out = s;
	return 1;
}

