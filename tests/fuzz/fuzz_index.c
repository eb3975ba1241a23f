/*
 * libFuzzer driver for the index reader (graph/procset.c, formats/index-v1.md):
 * any input must load or fail cleanly, never crash, hang, leak or allocate
 * beyond what its bytes justify; a loaded index must survive being written
 * back as JSON.
 *
 * hs_procset_open reads a path (it checks the file and resolves members
 * against the index's directory), so each input is written to one file in
 * a private directory that also holds the member snapshots the seeds name
 * (fixtures/indexes/: set-100.hsnap, set-101.hsnap), letting inputs that
 * keep those names reach the code after the existence check.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "heapsnap/errors.h"
#include "heapsnap/procset.h"

static char index_path[256], dir_path[200];

/* the private directory goes when the fuzzer exits */
static void remove_dir(void)
{
	static const char *const names[] = { "fuzz.hsidx", "set-100.hsnap", "set-101.hsnap" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char p[256];
		snprintf(p, sizeof(p), "%s/%s", dir_path, names[i]);
		unlink(p);
	}
	rmdir(dir_path);
}

static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[200];
	snprintf(dir, sizeof(dir), "%s/heapsnap-fuzz-index-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(dir_path, sizeof(dir_path), "%s", dir);
	atexit(remove_dir);
	static const char *const members[] = { "set-100.hsnap", "set-101.hsnap" };
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		char p[256];
		snprintf(p, sizeof(p), "%s/%s", dir, members[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
		close(fd);
	}
	snprintf(index_path, sizeof(index_path), "%s/fuzz.hsidx", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!index_path[0])
		make_dir();
	int fd = open(index_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	close(fd);
	hs_procset *set = NULL;
	if (hs_procset_open(&set, index_path) < 0) {
		/* every failure explains itself */
		if (!hs_error_last()[0])
			abort();
		return 0;
	}
	uint64_t sum = set->count;
	for (size_t i = 0; i < set->count; i++) {
		const hs_procset_proc *p = &set->procs[i];
		char label[64];
		hs_procset_proc_label(p, label, sizeof(label), 20);
		sum += (uint8_t)label[0] + (uint64_t)p->pid + p->argc;
		sum += (uint8_t)hs_procset_status_name(p->status)[0];
	}
	cJSON *j = NULL;
	if (hs_procset_to_json(&j, set) == 0) {
		char *text = cJSON_PrintUnformatted(j);
		sum += text ? strlen(text) : 0;
		cJSON_free(text);
		cJSON_Delete(j);
	}
	hs_procset_free(set);
	return sum == 42 ? 0 : 0;
}
