/*
 * hook/pycore.h: the CPython internal headers the walk and its size models
 * read (GC lists, dict keys and values, frames, type pre-headers), each for
 * the versions that have it: one list for walk.c, blocks.c and sizes.c.
 * The includer defines Py_BUILD_CORE_MODULE first (internal headers refuse
 * otherwise), before any other include.
 */
#ifndef HS_HOOK_PYCORE_H
#define HS_HOOK_PYCORE_H

#ifndef Py_BUILD_CORE_MODULE
#error "define Py_BUILD_CORE_MODULE before including hook/pycore.h"
#endif
#include "hook_internal.h"

#if PY_VERSION_HEX >= 0x03090000
#include "internal/pycore_gc.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#else
#include "internal/pycore_pystate.h"
#endif
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_code.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_object.h"
#endif
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_typeobject.h"
#endif
#include <frameobject.h>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#endif

#endif
