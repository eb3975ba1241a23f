/*
 * render/table.c: aligned text tables. Columns grow to their widest cell,
 * measured in display columns (UTF-8 code points), so type names are never
 * cut into something ambiguous.
 */
#include <string.h>
#include "heapsnap/render.h"
#include "util/alloc.h"
#include "util/buf.h"

typedef struct column {
	char *header;
	hs_align align;
} column;

struct hs_table {
	size_t ncols;
	column *cols;
	char **cells;   /* rows * ncols; a row with cells[r*ncols] == NULL and
	                   rule[r] set is a separator */
	uint8_t *rule;
	size_t rows, cap;
};

static size_t display_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

int hs_table_new(hs_table **out, size_t columns)
{
	*out = NULL;
	if (!columns)
		return hs_error_set(HS_EINVAL, "hs_table_new: a table needs a column");
	hs_table *t = hs_calloc(1, sizeof(*t));
	if (!t)
		return HS_ENOMEM;
	t->ncols = columns;
	t->cols = hs_calloc(columns, sizeof(column));
	if (!t->cols) {
		hs_free(t);
		return HS_ENOMEM;
	}
	*out = t;
	return 0;
}

int hs_table_column(hs_table *t, size_t col, const char *header, hs_align align)
{
	if (col >= t->ncols)
		return hs_error_set(HS_EINVAL, "hs_table_column: no column %zu", col);
	char *h = hs_strdup(header ? header : "");
	if (!h)
		return HS_ENOMEM;
	hs_free(t->cols[col].header);
	t->cols[col].header = h;
	t->cols[col].align = align;
	return 0;
}

static int add(hs_table *t, const char *const *cells, int rule)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **c = hs_reallocarray(t->cells, cap * t->ncols, sizeof(char *));
		if (!c)
			return HS_ENOMEM;
		t->cells = c;
		uint8_t *r = hs_reallocarray(t->rule, cap, 1);
		if (!r)
			return HS_ENOMEM;
		t->rule = r;
		t->cap = cap;
	}
	char **row = t->cells + t->rows * t->ncols;
	memset(row, 0, t->ncols * sizeof(char *));
	t->rule[t->rows] = (uint8_t)rule;
	t->rows++;
	for (size_t c = 0; cells && c < t->ncols; c++) {
		if (!cells[c])
			continue;
		if (!(row[c] = hs_strdup(cells[c])))
			return HS_ENOMEM;
	}
	return 0;
}

int hs_table_row(hs_table *t, const char *const *cells) { return add(t, cells, 0); }
int hs_table_rule(hs_table *t) { return add(t, NULL, 1); }

static void pad(hs_buf *b, size_t n)
{
	while (n--)
		hs_buf_put_u8(b, ' ');
}

static void emit(hs_buf *b, FILE *f)
{
	size_t n = b->len;
	while (n && b->data[n - 1] == ' ')
		n--;
	if (n)
		fwrite(b->data, 1, n, f);
	fputc('\n', f);
	hs_buf_clear(b);
}

int hs_table_print(const hs_table *t, FILE *f, int indent)
{
	size_t *w = hs_calloc(t->ncols, sizeof(size_t));
	if (!w)
		return HS_ENOMEM;
	int has_header = 0;
	for (size_t c = 0; c < t->ncols; c++) {
		const char *h = t->cols[c].header ? t->cols[c].header : "";
		w[c] = display_width(h);
		has_header |= h[0] != '\0';
	}
	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (cell && display_width(cell) > w[c])
				w[c] = display_width(cell);
		}
	hs_buf line = HS_BUF_INIT;
	for (size_t r = (size_t)(has_header ? 0 : 1); r <= t->rows; r++) {
		int header = r == 0;
		size_t row = r - 1;
		pad(&line, indent > 0 ? (size_t)indent : 0);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell;
			if (header)
				cell = t->cols[c].header ? t->cols[c].header : "";
			else if (t->rule[row])
				cell = NULL;
			else
				cell = t->cells[row * t->ncols + c] ? t->cells[row * t->ncols + c] : "";
			if (c)
				pad(&line, 2);
			if (!cell) {
				for (size_t i = 0; i < w[c]; i++)
					hs_buf_put_u8(&line, '-');
				continue;
			}
			size_t dw = display_width(cell);
			if (t->cols[c].align == HS_ALIGN_RIGHT)
				pad(&line, w[c] - dw);
			hs_buf_put(&line, cell, strlen(cell));
			if (t->cols[c].align == HS_ALIGN_LEFT)
				pad(&line, w[c] - dw);
		}
		emit(&line, f);
	}
	hs_buf_release(&line);
	hs_free(w);
	return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
}

void hs_table_free(hs_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		hs_free(t->cells[i]);
	for (size_t c = 0; c < t->ncols; c++)
		hs_free(t->cols[c].header);
	hs_free(t->cols);
	hs_free(t->cells);
	hs_free(t->rule);
	hs_free(t);
}
