/*
 * render/graphviz_render.c: the finished model handed to cgraph and laid
 * out and written by libgvc (svg, png, pdf) or written unlaid (dot).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#include "heapsnap/graphviz.h"
#include "render/graphviz_internal.h"
#include "util/alloc.h"
#include "util/file.h"


const char *hs_graphviz_format_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/'))
		return NULL;
	static const char *const fmts[] = { "svg", "png", "pdf", "dot" };
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (!strcmp(dot + 1, fmts[i]))
			return fmts[i];
	if (!strcmp(dot + 1, "gv"))
		return "dot";
	return NULL;
}

static char gv_err[512];

/* Graphviz messages, kept on one line for our one-line errors */
static int capture_err(char *msg)
{
	size_t n = strlen(gv_err);
	for (; *msg && n + 1 < sizeof(gv_err); msg++)
		gv_err[n++] = *msg == '\n' || *msg == '\r' ? ' ' : *msg;
	gv_err[n] = '\0';
	while (n && gv_err[n - 1] == ' ')
		gv_err[--n] = '\0';
	return 0;
}

static void set(void *obj, const char *name, const char *value)
{
	agsafeset(obj, (char *)name, (char *)value, "");
}

static Agraph_t *to_cgraph(const hs_graphviz *g)
{
	Agraph_t *ag = agopen("heapsnap", Agdirected, NULL);
	if (!ag)
		return NULL;
	agattr(ag, AGRAPH, "rankdir", g->rankdir_lr ? "LR" : "BT");
	agattr(ag, AGNODE, "shape", "box");
	agattr(ag, AGNODE, "style", "rounded,filled");
	agattr(ag, AGNODE, "fillcolor", "white");
	agattr(ag, AGNODE, "fontname", "Helvetica");
	agattr(ag, AGNODE, "fontsize", "10");
	agattr(ag, AGNODE, "peripheries", "1");
	agattr(ag, AGEDGE, "fontname", "Helvetica");
	agattr(ag, AGEDGE, "fontsize", "9");
	agattr(ag, AGEDGE, "style", "solid");
	agattr(ag, AGEDGE, "label", "");
	agattr(ag, AGNODE, "label", "");
	Agnode_t **nodes = hs_reallocarray(NULL, g->nn + 1, sizeof(Agnode_t *));
	if (!nodes) {
		agclose(ag);
		return NULL;
	}
	char name[32];
	for (size_t i = 0; i < g->nn; i++) {
		const gnode *x = &g->n[i];
		snprintf(name, sizeof(name), "n%zu", i);
		Agnode_t *an = agnode(ag, name, 1);
		nodes[i] = an;
		set(an, "label", x->label);
		const char *fill = "white";
		if (x->flags & GN_HOLDER)
			fill = "#ffb3a7";
		else if (x->flags & GN_SELECTED)
			fill = "#ffe08a";
		else if (x->flags & GN_ROOT)
			fill = "#b7dcff";
		set(an, "fillcolor", fill);
		if (x->flags & GN_COLLAPSED)
			set(an, "peripheries", "2");
	}
	for (size_t i = 0; i < g->ne; i++) {
		const gedge *e = &g->e[i];
		Agedge_t *ae = agedge(ag, nodes[e->from], nodes[e->to], NULL, 1);
		if (!ae)
			continue;
		set(ae, "label", e->label ? e->label : "");
		if (e->weak)
			set(ae, "style", "dashed");
	}
	hs_free(nodes);
	return ag;
}

int hs_graphviz_render(const hs_graphviz *g, const char *path, const char *format)
{
	HS_RETURN_IF(!format || (strcmp(format, "dot") && strcmp(format, "svg") &&
	                         strcmp(format, "png") && strcmp(format, "pdf")),
	             HS_EINVAL, "cannot write '%s': unknown graph format '%s' (svg, png, pdf or dot)",
	             path, format ? format : "");
	gv_err[0] = '\0';
	agusererrf old = agseterrf(capture_err);
	agseterr(AGERR);
	Agraph_t *ag = to_cgraph(g);
	int rc = 0;
	if (!ag) {
		rc = hs_error_set(HS_ENOMEM, "cannot build the graph for '%s': out of memory", path);
	} else if (!strcmp(format, "dot")) {
		/* a temporary file beside the output, renamed once complete (util/file.h) */
		hs_file_out file = HS_FILE_OUT_INIT;
		FILE *f = NULL;
		if ((rc = hs_file_out_open(&file, path)) == 0 && !(f = hs_file_out_stream(&file, "w")))
			rc = HS_EIO;
		if (f) {
			if (agwrite(ag, f) != 0) {
				fclose(f);
				rc = hs_error_set(HS_EIO, "cannot write '%s': %s", path, strerror(errno));
			} else {
				rc = hs_file_out_commit_stream(&file, f, 0);
			}
		}
		hs_file_out_release(&file);
	} else {
		GVC_t *gvc = gvContext();
		if (!gvc) {
			rc = hs_error_set(HS_EIO, "cannot draw '%s': Graphviz did not start", path);
		} else {
			if (gvLayout(gvc, ag, "dot") != 0) {
				rc = hs_error_set(HS_EIO, "cannot draw '%s': Graphviz layout failed%s%s", path,
				                  gv_err[0] ? ": " : "", gv_err);
			} else {
				hs_file_out file = HS_FILE_OUT_INIT;
				FILE *f = NULL;
				if ((rc = hs_file_out_open(&file, path)) == 0 &&
				    !(f = hs_file_out_stream(&file, "wb")))
					rc = HS_EIO;
				if (!f) {
					/* rc and the message are set */
				} else if (gvRender(gvc, ag, format, f) != 0) {
					fclose(f);
					rc = hs_error_set(HS_EIO, "cannot write '%s': Graphviz cannot render %s "
					                  "here (plugin missing?)%s%s", path, format,
					                  gv_err[0] ? ": " : "", gv_err);
				} else {
					rc = hs_file_out_commit_stream(&file, f, 0);
				}
				hs_file_out_release(&file);
				gvFreeLayout(gvc, ag);
			}
			gvFreeContext(gvc);
		}
	}
	if (ag)
		agclose(ag);
	agseterrf(old);
	return rc;
}
