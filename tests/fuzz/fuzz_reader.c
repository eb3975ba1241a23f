/* libFuzzer driver for the snapshot reader: any input must give 0 or a
 * clean error, never a crash, hang, leak or huge allocation. */
#include <stddef.h>
#include <stdint.h>
#include "heapsnap/format.h"

static int on_node(const hs_node_record *n, void *p)
{
	uint64_t *sum = p;
	*sum += n->size + n->value_len;
	if (n->value_len)
		*sum += (uint8_t)n->value[n->value_len - 1];
	return 0;
}
static int on_edge(const hs_edge_record *e, void *p)
{
	uint64_t *sum = p;
	*sum += e->target ^ e->label;
	return 0;
}
static int on_string(uint32_t id, const char *s, size_t len, void *p)
{
	uint64_t *sum = p;
	for (size_t i = 0; i < len; i++)
		*sum += (uint8_t)s[i];
	return 0;
}

static int on_size(uint64_t a, uint64_t n, void *p)
{
	uint64_t *sum = p;
	*sum += a ^ n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t sum = 0;
	hs_read_visitor v = { HS_READ_VISITOR_VERSION, 0, 0, on_string, 0, on_node, on_edge, 0, 0, on_size };
	hs_format_read_memory(data, size, "fuzz", &v, &sum);
	return 0;
}
