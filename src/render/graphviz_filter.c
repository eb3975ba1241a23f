/*
 * render/graphviz_filter.c: `--filter` expressions of `heapsnap graph`:
 * type names and regular expressions, negated with '!'.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include "heapsnap/graphviz.h"
#include "util/alloc.h"

typedef struct term {
	int neg, is_regex;
	char *name;
	regex_t re;
} term;

struct hs_graphviz_filter {
	size_t n;
	term *t;
};

void hs_graphviz_filter_free(hs_graphviz_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		if (f->t[i].is_regex)
			regfree(&f->t[i].re);
		hs_free(f->t[i].name);
	}
	hs_free(f->t);
	hs_free(f);
}

int hs_graphviz_filter_parse(hs_graphviz_filter **out, const char *expr)
{
	*out = NULL;
	hs_graphviz_filter *f = hs_calloc(1, sizeof(*f));
	size_t cap = 1;
	for (const char *p = expr; *p; p++)
		cap += *p == ',';
	if (!f || !(f->t = hs_calloc(cap, sizeof(term)))) {
		hs_free(f);
		return HS_ENOMEM;
	}
	const char *p = expr;
	int rc = 0;
	while (rc == 0) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *tx = hs_strndup(p, len);
		if (!tx) {
			rc = HS_ENOMEM;
			break;
		}
		term *t = &f->t[f->n];
		const char *v = NULL;
		if (!strncmp(tx, "type=~", 6))
			t->is_regex = 1, v = tx + 6;
		else if (!strncmp(tx, "type!~", 6))
			t->is_regex = 1, t->neg = 1, v = tx + 6;
		else if (!strncmp(tx, "type!=", 6))
			t->neg = 1, v = tx + 6;
		else if (!strncmp(tx, "type=", 5))
			v = tx + 5;
		if (!v || !*v) {
			rc = hs_error_set(HS_EINVAL, "bad filter term '%s': expected type=NAME, type!=NAME, "
			                  "type=~REGEX or type!~REGEX, separated by commas", tx);
			hs_free(tx);
			break;
		}
		if (t->is_regex) {
			int e = regcomp(&t->re, v, REG_EXTENDED | REG_NOSUB);
			if (e) {
				char msg[128];
				regerror(e, &t->re, msg, sizeof(msg));
				rc = hs_error_set(HS_EINVAL, "bad regular expression in filter term '%s': %s", tx, msg);
				t->is_regex = 0;
				hs_free(tx);
				break;
			}
		}
		t->name = hs_strdup(v);
		hs_free(tx);
		f->n++;
		if (!t->name) {
			rc = HS_ENOMEM;
			break;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (rc < 0) {
		hs_graphviz_filter_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int hs_graphviz_filter_match(const hs_graphviz_filter *f, const char *type_name)
{
	for (size_t i = 0; f && i < f->n; i++) {
		const term *t = &f->t[i];
		int m = t->is_regex ? regexec(&t->re, type_name, 0, NULL, 0) == 0
		                    : strcmp(t->name, type_name) == 0;
		if (m == t->neg)
			return 0;
	}
	return 1;
}
