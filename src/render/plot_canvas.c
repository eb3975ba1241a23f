/*
 * render/plot_canvas.c: the plot's drawing surface. PNG and PDF are drawn
 * with cairo (an image surface, a PDF surface); SVG is written as text
 * here, so labels stay <text> elements with <title> tooltips and classes,
 * and the same input gives the same bytes (numbers printed with one
 * decimal, no ids but the ones the plot names). Text is measured with
 * cairo in every format (a 1x1 image surface for SVG) with hinting off,
 * so the three formats share one layout.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cairo.h>
#include <cairo-pdf.h>
#include "render/plot_internal.h"
#include "util/alloc.h"

#define FONT_FAMILY "DejaVu Sans"
#define SVG_FONTS "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

static void fail(hs_plot__canvas *cv, int code)
{
	if (!cv->failed)
		cv->failed = code;
}

static void put(hs_plot__canvas *cv, hs_buf *b, const char *s, size_t len)
{
	if (cv->failed)
		return;
	if (hs_buf_put(b, s, len) < 0)
		fail(cv, HS_ENOMEM);
}

/* a string literal */
#define PUTS(b, lit) put(cv, (b), (lit), sizeof(lit) - 1)

static void putf(hs_plot__canvas *cv, hs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void putf(hs_plot__canvas *cv, hs_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(tmp))
		n = (int)sizeof(tmp) - 1; /* callers print numbers and short words */
	put(cv, b, tmp, (size_t)n);
}

/* a coordinate with one decimal, "12", "12.5", never "-0" */
static void num(hs_plot__canvas *cv, hs_buf *b, double v)
{
	char tmp[32];
	if (!isfinite(v))
		v = 0;
	long long tenths = llround(v * 10);
	if (tenths % 10 == 0)
		snprintf(tmp, sizeof(tmp), "%lld", tenths / 10);
	else
		snprintf(tmp, sizeof(tmp), "%s%lld.%lld", tenths < 0 ? "-" : "", llabs(tenths) / 10,
		         llabs(tenths) % 10);
	put(cv, b, tmp, strlen(tmp));
}

static void indent(hs_plot__canvas *cv)
{
	static const char spaces[] = "                ";
	int n = cv->indent < 8 ? cv->indent : 8;
	put(cv, &cv->svg, spaces, (size_t)n * 2);
}

int hs_plot__xml_escape(hs_buf *b, const char *text)
{
	for (const char *s = text; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: break;
		}
		int rc = rep ? hs_buf_put(b, rep, strlen(rep)) : hs_buf_put(b, s, 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void esc(hs_plot__canvas *cv, hs_buf *b, const char *text)
{
	if (!cv->failed && hs_plot__xml_escape(b, text) < 0)
		fail(cv, HS_ENOMEM);
}

static void colour(hs_plot__canvas *cv, uint32_t rgb, double alpha)
{
	cairo_set_source_rgba(cv->cr, ((rgb >> 16) & 0xff) / 255.0, ((rgb >> 8) & 0xff) / 255.0,
	                      (rgb & 0xff) / 255.0, alpha);
}

static void font(cairo_t *cr, double size, int bold)
{
	cairo_select_font_face(cr, FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL,
	                       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

static int cairo_failed(cairo_status_t st, const char *what)
{
	return hs_error_set(st == CAIRO_STATUS_NO_MEMORY ? HS_ENOMEM : HS_EIO,
	                    "cannot draw the plot: cairo %s failed: %s", what,
	                    cairo_status_to_string(st));
}

int hs_plot__canvas_open(hs_plot__canvas *cv, hs_plot_format format, double width,
                         double height, cairo_write_func_t stream, void *closure,
                         const char *title)
{
	memset(cv, 0, sizeof(*cv));
	cv->format = format;
	cv->width = width;
	cv->height = height;
	switch (format) {
	case HS_PLOT_PNG:
		cv->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)width, (int)height);
		break;
	case HS_PLOT_PDF:
		cv->surface = cairo_pdf_surface_create_for_stream(stream, closure, width, height);
		break;
	case HS_PLOT_SVG:
		cv->surface = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
		break;
	default:
		return hs_error_set(HS_EINVAL, "cannot draw the plot: unknown format %d", (int)format);
	}
	cairo_status_t st = cairo_surface_status(cv->surface);
	if (st != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(cv->surface);
		cv->surface = NULL;
		return cairo_failed(st, "surface");
	}
	if (format == HS_PLOT_PDF) {
		cairo_pdf_surface_set_metadata(cv->surface, CAIRO_PDF_METADATA_TITLE, title);
		cairo_pdf_surface_set_metadata(cv->surface, CAIRO_PDF_METADATA_CREATOR, "heapsnap plot");
	}
	cv->cr = cairo_create(cv->surface);
	if ((st = cairo_status(cv->cr)) != CAIRO_STATUS_SUCCESS) {
		hs_plot__canvas_release(cv);
		return cairo_failed(st, "context");
	}
	/* metrics independent of the device: one layout for every format */
	cairo_font_options_t *fo = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
	cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
	cairo_set_font_options(cv->cr, fo);
	cairo_font_options_destroy(fo);
	cairo_set_line_join(cv->cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_cap(cv->cr, CAIRO_LINE_CAP_ROUND);
	if (format == HS_PLOT_SVG) {
		putf(cv, &cv->svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
		     "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"" SVG_FONTS "\">\n",
		     (int)width, (int)height, (int)width, (int)height);
		PUTS(&cv->svg, "<title>");
		esc(cv, &cv->svg, title);
		PUTS(&cv->svg, "</title>\n<desc>drawn by heapsnap plot</desc>\n");
		cv->indent = 0;
	}
	/* a white page: PNG has no background otherwise */
	hs_plot__rect(cv, 0, 0, width, height);
	hs_plot__fill(cv, 0xffffff, 1, "background", NULL, NULL);
	return cv->failed;
}

int hs_plot__canvas_finish(hs_plot__canvas *cv, cairo_write_func_t stream, void *closure)
{
	if (cv->failed)
		return cv->failed == HS_ENOMEM ? hs_error_set(HS_ENOMEM, "cannot draw the plot: out of "
		                                              "memory") : cv->failed;
	cairo_status_t st = cairo_status(cv->cr);
	if (st != CAIRO_STATUS_SUCCESS)
		return cairo_failed(st, "drawing");
	switch (cv->format) {
	case HS_PLOT_PNG:
		cairo_surface_flush(cv->surface);
		st = cairo_surface_write_to_png_stream(cv->surface, stream, closure);
		if (st != CAIRO_STATUS_SUCCESS)
			return cairo_failed(st, "PNG writing");
		break;
	case HS_PLOT_PDF:
		cairo_show_page(cv->cr);
		cairo_destroy(cv->cr);
		cv->cr = NULL;
		cairo_surface_finish(cv->surface);
		st = cairo_surface_status(cv->surface);
		if (st != CAIRO_STATUS_SUCCESS)
			return cairo_failed(st, "PDF writing");
		break;
	case HS_PLOT_SVG:
		PUTS(&cv->svg, "</svg>\n");
		if (cv->failed)
			return hs_error_set(HS_ENOMEM, "cannot draw the plot: out of memory");
		break;
	default:
		break;
	}
	return 0;
}

void hs_plot__canvas_release(hs_plot__canvas *cv)
{
	if (cv->cr)
		cairo_destroy(cv->cr);
	if (cv->surface)
		cairo_surface_destroy(cv->surface);
	cv->cr = NULL;
	cv->surface = NULL;
	hs_buf_release(&cv->svg);
	hs_buf_release(&cv->path);
}

/* ------------------------------------------------------------------ */
/* groups and clips                                                    */

void hs_plot__group(hs_plot__canvas *cv, const char *cls, const char *id, const char *tooltip)
{
	if (cv->format != HS_PLOT_SVG)
		return;
	indent(cv);
	PUTS(&cv->svg, "<g");
	if (cls) {
		PUTS(&cv->svg, " class=\"");
		esc(cv, &cv->svg, cls);
		PUTS(&cv->svg, "\"");
	}
	if (id) {
		PUTS(&cv->svg, " id=\"");
		esc(cv, &cv->svg, id);
		PUTS(&cv->svg, "\"");
	}
	PUTS(&cv->svg, ">\n");
	cv->indent++;
	if (tooltip) {
		indent(cv);
		PUTS(&cv->svg, "<title>");
		esc(cv, &cv->svg, tooltip);
		PUTS(&cv->svg, "</title>\n");
	}
}

void hs_plot__group_end(hs_plot__canvas *cv)
{
	if (cv->format != HS_PLOT_SVG)
		return;
	if (cv->indent > 0)
		cv->indent--;
	indent(cv);
	PUTS(&cv->svg, "</g>\n");
}

void hs_plot__clip(hs_plot__canvas *cv, const char *id, double x, double y, double w, double h)
{
	if (cv->format != HS_PLOT_SVG) {
		cairo_save(cv->cr);
		cairo_rectangle(cv->cr, x, y, w, h);
		cairo_clip(cv->cr);
		return;
	}
	indent(cv);
	PUTS(&cv->svg, "<clipPath id=\"");
	esc(cv, &cv->svg, id);
	PUTS(&cv->svg, "\"><rect x=\"");
	num(cv, &cv->svg, x);
	PUTS(&cv->svg, "\" y=\"");
	num(cv, &cv->svg, y);
	PUTS(&cv->svg, "\" width=\"");
	num(cv, &cv->svg, w);
	PUTS(&cv->svg, "\" height=\"");
	num(cv, &cv->svg, h);
	PUTS(&cv->svg, "\"/></clipPath>\n");
	indent(cv);
	PUTS(&cv->svg, "<g clip-path=\"url(#");
	esc(cv, &cv->svg, id);
	PUTS(&cv->svg, ")\">\n");
	cv->indent++;
}

void hs_plot__clip_end(hs_plot__canvas *cv)
{
	if (cv->format != HS_PLOT_SVG) {
		cairo_restore(cv->cr);
		return;
	}
	hs_plot__group_end(cv);
}

/* ------------------------------------------------------------------ */
/* paths                                                               */

static void path_cmd(hs_plot__canvas *cv, char c, double x, double y)
{
	char s[2] = { c, '\0' };
	if (cv->path.len)
		PUTS(&cv->path, " ");
	put(cv, &cv->path, s, 1);
	num(cv, &cv->path, x);
	PUTS(&cv->path, " ");
	num(cv, &cv->path, y);
}

void hs_plot__move(hs_plot__canvas *cv, double x, double y)
{
	if (cv->format == HS_PLOT_SVG)
		path_cmd(cv, 'M', x, y);
	else
		cairo_move_to(cv->cr, x, y);
	cv->cx = x;
	cv->cy = y;
	cv->path_points++;
}

void hs_plot__line(hs_plot__canvas *cv, double x, double y)
{
	if (cv->format == HS_PLOT_SVG)
		path_cmd(cv, 'L', x, y);
	else
		cairo_line_to(cv->cr, x, y);
	cv->cx = x;
	cv->cy = y;
	cv->path_points++;
}

void hs_plot__close(hs_plot__canvas *cv)
{
	if (cv->format == HS_PLOT_SVG)
		PUTS(&cv->path, " Z");
	else
		cairo_close_path(cv->cr);
}

void hs_plot__rect(hs_plot__canvas *cv, double x, double y, double w, double h)
{
	hs_plot__move(cv, x, y);
	hs_plot__line(cv, x + w, y);
	hs_plot__line(cv, x + w, y + h);
	hs_plot__line(cv, x, y + h);
	hs_plot__close(cv);
}

void hs_plot__circle(hs_plot__canvas *cv, double x, double y, double r)
{
	if (cv->format != HS_PLOT_SVG) {
		cairo_new_sub_path(cv->cr);
		cairo_arc(cv->cr, x, y, r, 0, 2 * M_PI);
		cairo_close_path(cv->cr);
		cv->path_points++;
		return;
	}
	path_cmd(cv, 'M', x + r, y);
	PUTS(&cv->path, " A");
	num(cv, &cv->path, r);
	PUTS(&cv->path, " ");
	num(cv, &cv->path, r);
	PUTS(&cv->path, " 0 1 0 ");
	num(cv, &cv->path, x - r);
	PUTS(&cv->path, " ");
	num(cv, &cv->path, y);
	PUTS(&cv->path, " A");
	num(cv, &cv->path, r);
	PUTS(&cv->path, " ");
	num(cv, &cv->path, r);
	PUTS(&cv->path, " 0 1 0 ");
	num(cv, &cv->path, x + r);
	PUTS(&cv->path, " ");
	num(cv, &cv->path, y);
	PUTS(&cv->path, " Z");
	cv->path_points++;
}

static void svg_element_open(hs_plot__canvas *cv, const char *cls)
{
	indent(cv);
	PUTS(&cv->svg, "<path");
	if (cls) {
		PUTS(&cv->svg, " class=\"");
		esc(cv, &cv->svg, cls);
		PUTS(&cv->svg, "\"");
	}
	PUTS(&cv->svg, " d=\"");
	put(cv, &cv->svg, (const char *)cv->path.data, cv->path.len);
	PUTS(&cv->svg, "\"");
}

static void svg_element_close(hs_plot__canvas *cv, const char *attrs, const char *tooltip)
{
	if (attrs) {
		PUTS(&cv->svg, " ");
		put(cv, &cv->svg, attrs, strlen(attrs));
	}
	if (tooltip) {
		PUTS(&cv->svg, "><title>");
		esc(cv, &cv->svg, tooltip);
		PUTS(&cv->svg, "</title></path>\n");
	} else {
		PUTS(&cv->svg, "/>\n");
	}
	hs_buf_clear(&cv->path);
}

static void svg_alpha(hs_plot__canvas *cv, const char *attr, double alpha)
{
	if (alpha >= 1)
		return;
	/* not "%.2f": a library user's locale may write a decimal comma */
	long pct = lround(alpha * 100);
	putf(cv, &cv->svg, " %s=\"0.%02ld\"", attr, pct < 0 ? 0 : pct > 99 ? 99 : pct);
}

void hs_plot__stroke(hs_plot__canvas *cv, uint32_t rgb, double alpha, double width,
                     hs_plot__dash dash, const char *cls, const char *attrs, const char *tooltip)
{
	if (!cv->path_points)
		return;
	cv->path_points = 0;
	if (cv->format != HS_PLOT_SVG) {
		static const double dashed[] = { 6, 4 }, dotted[] = { 1, 4 };
		colour(cv, rgb, alpha);
		cairo_set_line_width(cv->cr, width);
		if (dash == HS_PLOT_DASHED)
			cairo_set_dash(cv->cr, dashed, 2, 0);
		else if (dash == HS_PLOT_DOTTED)
			cairo_set_dash(cv->cr, dotted, 2, 0);
		else
			cairo_set_dash(cv->cr, NULL, 0, 0);
		cairo_stroke(cv->cr);
		return;
	}
	svg_element_open(cv, cls);
	putf(cv, &cv->svg, " fill=\"none\" stroke=\"#%06x\" stroke-width=\"", rgb & 0xffffffu);
	num(cv, &cv->svg, width);
	PUTS(&cv->svg, "\"");
	svg_alpha(cv, "stroke-opacity", alpha);
	if (dash == HS_PLOT_DASHED)
		PUTS(&cv->svg, " stroke-dasharray=\"6 4\"");
	else if (dash == HS_PLOT_DOTTED)
		PUTS(&cv->svg, " stroke-dasharray=\"1 4\"");
	PUTS(&cv->svg, " stroke-linejoin=\"round\" stroke-linecap=\"round\"");
	svg_element_close(cv, attrs, tooltip);
}

void hs_plot__fill(hs_plot__canvas *cv, uint32_t rgb, double alpha, const char *cls,
                   const char *attrs, const char *tooltip)
{
	if (!cv->path_points)
		return;
	cv->path_points = 0;
	if (cv->format != HS_PLOT_SVG) {
		colour(cv, rgb, alpha);
		cairo_fill(cv->cr);
		return;
	}
	svg_element_open(cv, cls);
	putf(cv, &cv->svg, " fill=\"#%06x\"", rgb & 0xffffffu);
	svg_alpha(cv, "fill-opacity", alpha);
	PUTS(&cv->svg, " stroke=\"none\"");
	svg_element_close(cv, attrs, tooltip);
}

/* ------------------------------------------------------------------ */
/* text                                                                */

double hs_plot__text_width(hs_plot__canvas *cv, const char *text, double size, int bold)
{
	cairo_text_extents_t e;
	font(cv->cr, size, bold);
	cairo_text_extents(cv->cr, text, &e);
	return e.x_advance;
}

void hs_plot__text(hs_plot__canvas *cv, double x, double y, const char *text, double size,
                   int bold, hs_plot__anchor anchor, uint32_t rgb, int vertical, const char *cls)
{
	if (!text[0])
		return;
	if (cv->format != HS_PLOT_SVG) {
		double w = hs_plot__text_width(cv, text, size, bold);
		double off = anchor == HS_PLOT_CENTER ? w / 2 : anchor == HS_PLOT_RIGHT ? w : 0;
		cairo_save(cv->cr);
		cairo_translate(cv->cr, x, y);
		if (vertical)
			cairo_rotate(cv->cr, -M_PI / 2);
		cairo_move_to(cv->cr, -off, 0);
		colour(cv, rgb, 1);
		cairo_show_text(cv->cr, text);
		cairo_new_path(cv->cr);
		cairo_restore(cv->cr);
		return;
	}
	indent(cv);
	PUTS(&cv->svg, "<text");
	if (cls) {
		PUTS(&cv->svg, " class=\"");
		esc(cv, &cv->svg, cls);
		PUTS(&cv->svg, "\"");
	}
	PUTS(&cv->svg, " x=\"");
	num(cv, &cv->svg, x);
	PUTS(&cv->svg, "\" y=\"");
	num(cv, &cv->svg, y);
	PUTS(&cv->svg, "\" font-size=\"");
	num(cv, &cv->svg, size);
	PUTS(&cv->svg, "\"");
	if (bold)
		PUTS(&cv->svg, " font-weight=\"bold\"");
	if (anchor == HS_PLOT_CENTER)
		PUTS(&cv->svg, " text-anchor=\"middle\"");
	else if (anchor == HS_PLOT_RIGHT)
		PUTS(&cv->svg, " text-anchor=\"end\"");
	if ((rgb & 0xffffffu) != 0)
		putf(cv, &cv->svg, " fill=\"#%06x\"", rgb & 0xffffffu);
	if (vertical) {
		PUTS(&cv->svg, " transform=\"rotate(-90 ");
		num(cv, &cv->svg, x);
		PUTS(&cv->svg, " ");
		num(cv, &cv->svg, y);
		PUTS(&cv->svg, ")\"");
	}
	PUTS(&cv->svg, ">");
	esc(cv, &cv->svg, text);
	PUTS(&cv->svg, "</text>\n");
}
