/* render/human.c: sizes and counts for people. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "heapsnap/render.h"

size_t hs_render_size(char *buf, size_t size, uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024)
		return (size_t)snprintf(buf, size, "%" PRIu64 " B", bytes);
	double v = (double)bytes / 1024.0;
	size_t u = 0;
	/* switch unit where the rounded figure would print as 1024.0 */
	while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	return (size_t)snprintf(buf, size, "%.1f %s", v, units[u]);
}

size_t hs_render_size_delta(char *buf, size_t size, int64_t bytes)
{
	if (bytes == 0)
		return (size_t)snprintf(buf, size, "0 B");
	uint64_t mag = bytes < 0 ? (uint64_t)0 - (uint64_t)bytes : (uint64_t)bytes;
	char tmp[32];
	hs_render_size(tmp, sizeof(tmp), mag);
	return (size_t)snprintf(buf, size, "%c%s", bytes < 0 ? '-' : '+', tmp);
}

size_t hs_render_count(char *buf, size_t size, uint64_t n)
{
	char digits[24], out[32];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, n);
	size_t o = 0;
	for (int i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	return (size_t)snprintf(buf, size, "%s", out);
}

size_t hs_render_count_delta(char *buf, size_t size, int64_t n)
{
	if (n == 0)
		return (size_t)snprintf(buf, size, "0");
	uint64_t mag = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
	char tmp[32];
	hs_render_count(tmp, sizeof(tmp), mag);
	return (size_t)snprintf(buf, size, "%c%s", n < 0 ? '-' : '+', tmp);
}
