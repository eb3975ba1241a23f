/* cli/select.c: selecting objects by --type or --address, shared by paths,
 * dominators and graph. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "util/alloc.h"

int hs_cli__address(const hs_cli_command *cmd, const char *text, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 0);
	if (!text[0] || *end || errno || text[0] == '-')
		return hs_cli_usage_error(cmd, "--address expects an address such as 0x7f3a2c1b4d90, "
		                          "not '%s'", text);
	*out = (uint64_t)v;
	return -1;
}

int hs_cli__find_address(uint32_t *out, const hs_snapshot *s, uint64_t address)
{
	*out = hs_snapshot_find(s, address);
	if (*out == HS_NO_NODE)
		return hs_cli_errorf("no object at address 0x%" PRIx64 " in '%s'", address,
		                     hs_snapshot_path(s));
	return 0;
}

int hs_cli__select(uint32_t **out, size_t *count, const hs_snapshot *s, const char *type,
                   uint64_t address)
{
	*out = NULL;
	*count = 0;
	if (type) {
		if (hs_retention_select_type(out, count, s, type) < 0)
			return hs_cli_error();
		return 0;
	}
	uint32_t v;
	int rc = hs_cli__find_address(&v, s, address);
	if (rc)
		return rc;
	*out = hs_reallocarray(NULL, 1, sizeof(uint32_t));
	if (!*out)
		return hs_cli_errorf("out of memory");
	(*out)[0] = v;
	*count = 1;
	return 0;
}
