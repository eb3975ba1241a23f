/*
 * hook/text.c: UTF-8 from Python str objects without creating objects or
 * caching a UTF-8 copy in them (PyUnicode_AsUTF8 would grow the string,
 * and with it the size the snapshot reports), and a small JSON writer for
 * the META section.
 */
#include "hook_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int put_cp(hs_buf *out, Py_UCS4 c)
{
	uint8_t tmp[8];
	size_t n;
	if (c < 0x80) {
		tmp[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		tmp[0] = (uint8_t)(0xC0 | (c >> 6));
		tmp[1] = (uint8_t)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c >= 0xD800 && c <= 0xDFFF) {
		/* A lone surrogate has no UTF-8 form: escape it as text. */
		static const char hex[] = "0123456789abcdef";
		char esc[6] = { '\\', 'u', hex[(c >> 12) & 15], hex[(c >> 8) & 15],
		                hex[(c >> 4) & 15], hex[c & 15] };
		return hs_buf_put(out, esc, sizeof(esc));
	} else if (c < 0x10000) {
		tmp[0] = (uint8_t)(0xE0 | (c >> 12));
		tmp[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		tmp[2] = (uint8_t)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		tmp[0] = (uint8_t)(0xF0 | (c >> 18));
		tmp[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
		tmp[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		tmp[3] = (uint8_t)(0x80 | (c & 0x3F));
		n = 4;
	}
	return hs_buf_put(out, tmp, n);
}

int hs_hook__str_utf8(hs_buf *out, PyObject *s, Py_ssize_t max_cp, int *truncated)
{
	*truncated = 0;
#if PY_VERSION_HEX < 0x030C0000
	/* Legacy strings built through the deprecated Py_UNICODE API may not
	 * be "ready": reading them needs PyUnicode_READY, which allocates. */
	if (!PyUnicode_IS_READY(s))
		return 1;
#endif
	Py_ssize_t len = PyUnicode_GET_LENGTH(s);
	int kind = PyUnicode_KIND(s);
	const void *data = PyUnicode_DATA(s);
	Py_ssize_t n = len;
	if (max_cp >= 0 && n > max_cp) {
		n = max_cp;
		*truncated = 1;
	}
	if (kind == PyUnicode_1BYTE_KIND) {
		const Py_UCS1 *p = data;
		/* ASCII fast path */
		Py_ssize_t i = 0;
		while (i < n && p[i] < 0x80)
			i++;
		if (hs_buf_put(out, p, (size_t)i) < 0)
			return HS_ENOMEM;
		for (; i < n; i++)
			if (put_cp(out, p[i]) < 0)
				return HS_ENOMEM;
		return 0;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		Py_UCS4 c = PyUnicode_READ(kind, data, i);
		if (put_cp(out, c) < 0)
			return HS_ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

void hs_json_init(hs_json *j)
{
	memset(j, 0, sizeof(*j));
	j->first[0] = 1;
}

void hs_json_release(hs_json *j)
{
	hs_buf_release(&j->b);
}

static void raw(hs_json *j, const char *s, size_t n)
{
	if (!j->err && hs_buf_put(&j->b, s, n) < 0)
		j->err = HS_ENOMEM;
}

static void escaped(hs_json *j, const char *s, size_t n)
{
	raw(j, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		raw(j, s + start, i - start);
		char esc[8];
		switch (c) {
		case '"': raw(j, "\\\"", 2); break;
		case '\\': raw(j, "\\\\", 2); break;
		case '\n': raw(j, "\\n", 2); break;
		case '\r': raw(j, "\\r", 2); break;
		case '\t': raw(j, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			raw(j, esc, 6);
		}
		start = i + 1;
	}
	raw(j, s + start, n - start);
	raw(j, "\"", 1);
}

static void member(hs_json *j, const char *key)
{
	if (!j->first[j->depth])
		raw(j, ",", 1);
	j->first[j->depth] = 0;
	if (key) {
		escaped(j, key, strlen(key));
		raw(j, ":", 1);
	}
}

void hs_json_open(hs_json *j, const char *key, char brace)
{
	member(j, key);
	raw(j, &brace, 1);
	if (j->depth + 1 < (int)sizeof(j->first))
		j->depth++;
	else
		j->err = HS_EINVAL;
	j->first[j->depth] = 1;
}

void hs_json_close(hs_json *j, char brace)
{
	raw(j, &brace, 1);
	if (j->depth > 0)
		j->depth--;
}

void hs_json_str(hs_json *j, const char *key, const char *s, size_t len)
{
	member(j, key);
	escaped(j, s, len);
}

void hs_json_cstr(hs_json *j, const char *key, const char *s)
{
	if (!s) {
		hs_json_null(j, key);
		return;
	}
	hs_json_str(j, key, s, strlen(s));
}

void hs_json_pystr(hs_json *j, const char *key, PyObject *s)
{
	if (!s || !PyUnicode_Check(s)) {
		hs_json_null(j, key);
		return;
	}
	hs_buf tmp = HS_BUF_INIT;
	int trunc;
	int rc = hs_hook__str_utf8(&tmp, s, -1, &trunc);
	if (rc < 0)
		j->err = rc;
	if (rc != 0)
		hs_json_null(j, key);
	else
		hs_json_str(j, key, (const char *)tmp.data, tmp.len);
	hs_buf_release(&tmp);
}

void hs_json_int(hs_json *j, const char *key, long long v)
{
	char t[32];
	member(j, key);
	raw(j, t, (size_t)snprintf(t, sizeof(t), "%lld", v));
}

void hs_json_uint(hs_json *j, const char *key, unsigned long long v)
{
	char t[32];
	member(j, key);
	raw(j, t, (size_t)snprintf(t, sizeof(t), "%llu", v));
}

void hs_json_double(hs_json *j, const char *key, double v)
{
	char t[40];
	member(j, key);
	if (!isfinite(v)) {
		raw(j, "null", 4);
		return;
	}
	raw(j, t, (size_t)snprintf(t, sizeof(t), "%.17g", v));
}

void hs_json_bool(hs_json *j, const char *key, int v)
{
	member(j, key);
	if (v)
		raw(j, "true", 4);
	else
		raw(j, "false", 5);
}

void hs_json_null(hs_json *j, const char *key)
{
	member(j, key);
	raw(j, "null", 4);
}
