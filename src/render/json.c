/* render/json.c: JSON printing and metadata helpers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "graph/meta.h"
#include "render/render_internal.h"

int hs_render__oom(void) { return hs_error_set(HS_ENOMEM, "out of memory building JSON"); }

cJSON *hs_render__num(uint64_t v) { return cJSON_CreateNumber((double)v); }
cJSON *hs_render__snum(int64_t v) { return cJSON_CreateNumber((double)v); }

int hs_render_json_print(FILE *f, const cJSON *json)
{
	char *text = cJSON_Print(json);
	if (!text)
		return hs_render__oom();
	fputs(text, f);
	fputc('\n', f);
	cJSON_free(text);
	return ferror(f) ? hs_error_set(HS_EIO, "cannot write the output") : 0;
}

const cJSON *hs_render__meta(const hs_snapshot *s, const char *path)
{
	return hs_meta_at(hs_snapshot_meta(s), path);
}

int hs_render__meta_u64(const hs_snapshot *s, const char *path, uint64_t *out)
{
	const cJSON *v = hs_render__meta(s, path);
	*out = 0;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1.8e19)
		return 0;
	*out = (uint64_t)v->valuedouble;
	return 1;
}

static size_t short_into(const cJSON *v, char *buf, size_t size)
{
	if (!size)
		return 0;
	buf[0] = '\0';
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 9e15)
			return (size_t)snprintf(buf, size, "%.0f", d);
		return (size_t)snprintf(buf, size, "%g", d);
	}
	if (cJSON_IsString(v))
		return (size_t)snprintf(buf, size, "%s", v->valuestring);
	if (cJSON_IsBool(v))
		return (size_t)snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "yes" : "no");
	if (cJSON_IsNull(v))
		return (size_t)snprintf(buf, size, "-");
	if (cJSON_IsArray(v)) {
		size_t len = 0;
		const cJSON *e;
		cJSON_ArrayForEach(e, v) {
			if (len && len + 1 < size)
				buf[len++] = '/';
			if (len >= size - 1)
				break;
			/* a dict per generation (gc.get_stats()): show its collections */
			const cJSON *x = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "collections") : e;
			size_t n = short_into(x, buf + len, size - len);
			len += n < size - len ? n : size - len - 1;
		}
		buf[len < size ? len : size - 1] = '\0';
		return len;
	}
	if (cJSON_IsObject(v)) {
		char *t = cJSON_PrintUnformatted(v);
		size_t n = (size_t)snprintf(buf, size, "%s", t ? t : "{}");
		cJSON_free(t);
		return n;
	}
	return 0;
}

void hs_render__json_short(const cJSON *v, char *buf, size_t size)
{
	short_into(v, buf, size);
}
