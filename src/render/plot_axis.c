/*
 * render/plot_axis.c: what the plot's axes and legend say: nice tick
 * values, their labels in human units, times, and command lines short
 * enough for a legend.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "render/plot_internal.h"

/* ------------------------------------------------------------------ */
/* ticks                                                               */

/* The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x (x > 0). */
static double nice_ceil(double x)
{
	double e = floor(log10(x));
	double p = pow(10.0, e);
	double f = x / p;
	static const double ms[] = { 1, 2, 2.5, 5, 10 };
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (f <= ms[i] * (1 + 1e-9))
			return ms[i] * p;
	return 10 * p;
}

/* digits after the point that multiples of `step` need (0..6) */
static int decimals_of(double step)
{
	int d = 0;
	double s = step;
	while (d < 6 && fabs(s - round(s)) > 1e-6 * (s > 1 ? s : 1)) {
		s *= 10;
		d++;
	}
	return d;
}

static int clamp_target(int target)
{
	if (target < 2)
		return 2;
	if (target > HS_PLOT_MAX_TICKS - 1)
		return HS_PLOT_MAX_TICKS - 1;
	return target;
}

void hs_plot__size_ticks(hs_plot__ticks *out, double hi, int target)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	memset(out, 0, sizeof(*out));
	out->kind = HS_PLOT_AXIS_BYTES;
	target = clamp_target(target);
	if (target > 20)
		target = 20; /* 1.4 x 20 intervals: 29 ticks at most */
	if (!(hi > 0))
		hi = 1024;
	size_t u = 0;
	double unit = 1;
	while (u + 1 < sizeof(names) / sizeof(names[0]) && hi >= unit * 1024) {
		unit *= 1024;
		u++;
	}
	double x = hi / unit;
	/* up to 1.4 times the intervals asked for: a top closer to the data */
	double step = nice_ceil(x / (target * 1.4));
	if (u == 0 && step < 1)
		step = 1; /* no fractions of a byte */
	double top = ceil(x / step - 1e-9) * step;
	if (top <= 0)
		top = step;
	size_t n = (size_t)llround(top / step) + 1;
	if (n > HS_PLOT_MAX_TICKS)
		n = HS_PLOT_MAX_TICKS;
	for (size_t i = 0; i < n; i++)
		out->v[i] = (double)i * step * unit;
	out->count = n;
	out->lo = 0;
	out->hi = top * unit;
	out->step = step * unit;
	out->unit = unit;
	out->unit_name = names[u];
	out->decimals = decimals_of(step);
}

void hs_plot__time_ticks(hs_plot__ticks *out, double lo, double hi, int target)
{
	static const double steps[] = {
		0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
		60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
	};
	memset(out, 0, sizeof(*out));
	out->kind = HS_PLOT_AXIS_TIME;
	target = clamp_target(target);
	if (!(hi > lo))
		hi = lo + 1;
	double raw = (hi - lo) / target, step = 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i] >= raw * (1 - 1e-9)) {
			step = steps[i];
			break;
		}
	if (step == 0) /* longer than days: 1, 2, 2.5, 5 times a power of ten days */
		step = 86400 * nice_ceil(raw / 86400);
	double first = ceil(lo / step - 1e-9) * step;
	size_t n = 0;
	for (double v = first; v <= hi + step * 1e-9 && n < HS_PLOT_MAX_TICKS; v = first + (double)n * step)
		out->v[n++] = fabs(v) < step * 1e-9 ? 0 : v;
	out->count = n;
	out->lo = lo;
	out->hi = hi;
	out->step = step;
	out->unit = 1;
	out->unit_name = "s";
	out->decimals = decimals_of(step);
}

/* "%.*f" without trailing zeros after the point */
static size_t put_number(char *buf, size_t size, double v, int decimals)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
	if (strchr(tmp, '.')) {
		size_t n = strlen(tmp);
		while (n && tmp[n - 1] == '0')
			tmp[--n] = '\0';
		if (n && tmp[n - 1] == '.')
			tmp[--n] = '\0';
	}
	if (!strcmp(tmp, "-0"))
		strcpy(tmp, "0");
	return (size_t)snprintf(buf, size, "%s", tmp);
}

static size_t time_label(char *buf, size_t size, const hs_plot__ticks *t, double v)
{
	if (fabs(v) < t->step * 1e-6)
		return (size_t)snprintf(buf, size, "0");
	char num[48];
	if (t->step < 1) {
		if (t->hi < 1) {
			put_number(num, sizeof(num), v * 1000, decimals_of(t->step * 1000));
			return (size_t)snprintf(buf, size, "%s ms", num);
		}
		put_number(num, sizeof(num), v, t->decimals);
		return (size_t)snprintf(buf, size, "%s s", num);
	}
	/* whole seconds from here on */
	long long s = llround(v);
	long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
	if (s >= 3600 && t->step < 60)
		return (size_t)snprintf(buf, size, "%lld:%02lld:%02lld", s / 3600, m, sec);
	char out[64];
	size_t n = 0;
	const long long parts[] = { d, h, m, sec };
	const char *const units[] = { "d", "h", "min", "s" };
	for (int i = 0; i < 4; i++) {
		if (!parts[i])
			continue;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%lld %s", n ? " " : "", parts[i],
		                      units[i]);
		if (n >= sizeof(out))
			break;
	}
	return (size_t)snprintf(buf, size, "%s", out);
}

size_t hs_plot__tick_label(char *buf, size_t size, const hs_plot__ticks *t, double v)
{
	if (t->kind == HS_PLOT_AXIS_TIME)
		return time_label(buf, size, t, v);
	if (fabs(v) < t->step * 1e-6)
		return (size_t)snprintf(buf, size, "0");
	char num[48];
	put_number(num, sizeof(num), v / t->unit, t->decimals);
	return (size_t)snprintf(buf, size, "%s %s", num, t->unit_name);
}

/* "12.34 s", "2:05.3", "1:02:03" (the words of `heapsnap timeline`) */
size_t hs_plot__time_text(char *buf, size_t size, double s)
{
	if (fabs(s) < 100)
		return (size_t)snprintf(buf, size, "%.2f s", s);
	const char *sign = s < 0 ? "-" : "";
	s = fabs(s);
	long h = (long)(s / 3600);
	long m = (long)((s - (double)h * 3600) / 60);
	double sec = s - (double)h * 3600 - (double)m * 60;
	if (h)
		return (size_t)snprintf(buf, size, "%s%ld:%02ld:%02.0f", sign, h, m, floor(sec));
	return (size_t)snprintf(buf, size, "%s%ld:%04.1f", sign, m, floor(sec * 10) / 10);
}

size_t hs_plot__span_text(char *buf, size_t size, double s)
{
	char num[48];
	if (s < 100) {
		put_number(num, sizeof(num), s, s < 10 ? 2 : 1);
		return (size_t)snprintf(buf, size, "%s s", num);
	}
	if (s < 3600) {
		put_number(num, sizeof(num), s / 60, 1);
		return (size_t)snprintf(buf, size, "%s min", num);
	}
	put_number(num, sizeof(num), s / 3600, s < 360000 ? 1 : 0);
	return (size_t)snprintf(buf, size, "%s h", num);
}

/* ------------------------------------------------------------------ */
/* text                                                                */

/* Decode one UTF-8 character at s (n bytes available): its length, or 0
 * when the bytes are not well-formed UTF-8 (overlong forms and surrogates
 * included). */
static size_t utf8_char(const unsigned char *s, size_t n, unsigned *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len;
	unsigned c, min;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1fu, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0fu, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t hs_plot__clean_text(char *buf, size_t size, const char *in)
{
	if (!size)
		return 0;
	const unsigned char *s = (const unsigned char *)(in ? in : "");
	size_t n = strlen((const char *)s), o = 0;
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t len = utf8_char(s + i, n - i, &cp);
		const char *rep = NULL;
		if (!len) {
			rep = "?";
			len = 1;
		} else if (cp == '\t' || cp == '\n' || cp == '\r') {
			rep = " ";
		} else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0xfffe ||
		           cp == 0xffff) {
			rep = "?"; /* not allowed in XML, or invisible */
		}
		const char *src = rep ? rep : (const char *)s + i;
		size_t w = rep ? strlen(rep) : len;
		if (o + w >= size)
			break;
		memcpy(buf + o, src, w);
		o += w;
		i += len;
	}
	buf[o] = '\0';
	return o;
}

size_t hs_plot__utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

void hs_plot__utf8_cut(char *buf, size_t size, size_t max_chars)
{
	if (!max_chars || hs_plot__utf8_len(buf) <= max_chars)
		return;
	/* keep max_chars - 1 characters, then the ellipsis */
	size_t chars = 0, i = 0;
	for (; buf[i]; i++) {
		if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			if (chars == max_chars - 1)
				break;
			chars++;
		}
	}
	while (i > 0 && buf[i - 1] == ' ')
		i--;
	while (i + 4 > size && i > 0) { /* room for "…" and the NUL */
		i--;
		while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
			i--;
	}
	if (i + 4 > size) {
		buf[0] = '\0';
		return;
	}
	memcpy(buf + i, "\xe2\x80\xa6", 4);
}

static const char *base_name(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--; /* "dir/" names dir */
	const char *end = path + n;
	const char *s = end;
	while (s > path && s[-1] != '/')
		s--;
	return s < end ? s : path;
}

static int is_python(const char *prog)
{
	return !strncmp(prog, "python", 6) || !strncmp(prog, "pypy", 4);
}

/* multiprocessing's helper processes, by their -c code */
static const char *mp_role(const char *code)
{
	if (strstr(code, "multiprocessing.spawn") || strstr(code, "spawn_main"))
		return "multiprocessing spawn";
	if (strstr(code, "multiprocessing.forkserver"))
		return "multiprocessing forkserver";
	if (strstr(code, "multiprocessing.resource_tracker") ||
	    strstr(code, "multiprocessing.semaphore_tracker"))
		return "multiprocessing resource tracker";
	return NULL;
}

static size_t append(char *buf, size_t size, size_t o, const char *s, size_t len)
{
	if (o >= size)
		return o;
	if (len > size - 1 - o)
		len = size - 1 - o;
	memcpy(buf + o, s, len);
	o += len;
	buf[o] = '\0';
	return o;
}

size_t hs_plot__short_command(char *buf, size_t size, const hs_rec_process *p, size_t max_chars)
{
	char raw[1024];
	size_t o = 0;
	raw[0] = '\0';
	const char *prog = p->argc && p->argv[0] && p->argv[0][0] ? p->argv[0] : p->exe;
	if (!prog || !prog[0]) {
		snprintf(raw, sizeof(raw), "pid %d", p->pid);
		o = strlen(raw);
	} else {
		prog = base_name(prog);
		o = append(raw, sizeof(raw), o, prog, strlen(prog));
	}
	for (size_t i = 1; i < p->argc && o + 1 < sizeof(raw); i++) {
		const char *a = p->argv[i] ? p->argv[i] : "";
		if (i == 1 && is_python(prog) && !strcmp(a, "-c") && i + 1 < p->argc) {
			const char *role = mp_role(p->argv[i + 1] ? p->argv[i + 1] : "");
			if (role) {
				o = append(raw, sizeof(raw), o, " (", 2);
				o = append(raw, sizeof(raw), o, role, strlen(role));
				o = append(raw, sizeof(raw), o, ")", 1);
				break;
			}
		}
		o = append(raw, sizeof(raw), o, " ", 1);
		if (strchr(a, '/') && strlen(a) > 24 && a[0] != '-') {
			const char *b = base_name(a);
			o = append(raw, sizeof(raw), o, "\xe2\x80\xa6/", 4);
			o = append(raw, sizeof(raw), o, b, strlen(b));
		} else {
			/* code given with -c: its first line with text is enough */
			a += strspn(a, " \t\r\n");
			size_t len = strcspn(a, "\n");
			o = append(raw, sizeof(raw), o, a, len);
		}
	}
	size_t n = hs_plot__clean_text(buf, size, raw);
	/* multiple spaces from empty arguments or cleaned controls read as one */
	char *w = buf;
	for (const char *r = buf; *r; r++)
		if (!(*r == ' ' && w > buf && w[-1] == ' '))
			*w++ = *r;
	while (w > buf && w[-1] == ' ')
		w--;
	*w = '\0';
	n = (size_t)(w - buf);
	if (max_chars) {
		hs_plot__utf8_cut(buf, size, max_chars);
		n = strlen(buf);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* --from / --to                                                       */

static int parse_number(const char **s, double *out)
{
	const char *p = *s;
	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return -1;
	char *end;
	double v = strtod(p, &end);
	if (end == p || !isfinite(v))
		return -1;
	/* strtod also takes "1e3" and hex: allow plain decimals only */
	for (const char *q = p; q < end; q++)
		if (!isdigit((unsigned char)*q) && *q != '.')
			return -1;
	*s = end;
	*out = v;
	return 0;
}

int hs_plot_parse_time(double *out, const char *text)
{
	const char *s = text ? text : "";
	while (*s == ' ')
		s++;
	HS_RETURN_IF(!*s, HS_EINVAL, "cannot read '%s' as a time: it is empty; write e.g. 90s, "
	             "2min, 1m30s or 1:30", text ? text : "");
	HS_RETURN_IF(*s == '-', HS_EINVAL, "cannot read '%s' as a time: times are counted from "
	             "the start of the recording and cannot be negative", text);
	double total = 0;
	if (strchr(s, ':')) {
		/* [h:]m:s, as `heapsnap timeline` prints times above 100 s */
		double parts[3];
		int n = 0;
		for (;;) {
			if (n == 3 || parse_number(&s, &parts[n]) < 0)
				goto bad;
			n++;
			if (*s != ':')
				break;
			s++;
		}
		while (*s == ' ')
			s++;
		if (*s || n < 2)
			goto bad;
		for (int i = 0; i < n; i++)
			total = total * 60 + parts[i];
		*out = total;
		return 0;
	}
	int terms = 0, bare = 0;
	while (*s) {
		double v;
		if (bare || parse_number(&s, &v) < 0)
			goto bad;
		while (*s == ' ')
			s++;
		const char *u = s;
		while (isalpha((unsigned char)*s))
			s++;
		size_t len = (size_t)(s - u);
		double mult;
		if (!len)
			mult = 1, bare = 1;
		else if ((len == 2 && !strncmp(u, "ms", 2)))
			mult = 0.001;
		else if ((len == 1 && *u == 's') || (len == 3 && !strncmp(u, "sec", 3)))
			mult = 1;
		else if ((len == 1 && *u == 'm') || (len == 3 && !strncmp(u, "min", 3)))
			mult = 60;
		else if ((len == 1 && *u == 'h') || (len == 2 && !strncmp(u, "hr", 2)))
			mult = 3600;
		else if (len == 1 && *u == 'd')
			mult = 86400;
		else
			goto bad;
		if (bare && terms)
			goto bad; /* "1m30": say the unit */
		total += v * mult;
		terms++;
		while (*s == ' ')
			s++;
	}
	*out = total;
	return 0;
bad:
	return hs_error_set(HS_EINVAL, "cannot read '%s' as a time; write seconds (90, 1.5) or "
	                    "a time with units (500ms, 90s, 2min, 1h, 1m30s) or m:ss (1:30)", text);
}
