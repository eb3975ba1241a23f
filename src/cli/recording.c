/*
 * cli/recording.c: CLI glue shared by the commands that read recordings
 * (`timeline`, `info REC`, `summary REC`).
 */
#include <stdio.h>
#include "cli/cli.h"
#include "cli/recording.h"

int hs_cli_recording_open(hs_recording **out, const char *path)
{
	hs_recording_options o = HS_RECORDING_OPTIONS_INIT;
	if (hs_recording_open(out, path, &o) < 0)
		return hs_cli_error();
	const hs_rec_info *i = hs_recording_info(*out);
	if (i->warning)
		fprintf(stderr, "heapsnap: warning: '%s': %s\n", path, i->warning);
	return 0;
}

int hs_cli_is_recording(const char *path)
{
	return hs_file_kind_of(path) == HS_FILE_RECORDING;
}

int hs_cli_recording_overview(const char *path, int json)
{
	hs_recording *r;
	int rc = hs_cli_recording_open(&r, path);
	if (rc)
		return rc;
	hs_timeline *t;
	if (hs_timeline_build(&t, r, NULL) < 0) {
		hs_recording_free(r);
		return hs_cli_error();
	}
	if (json) {
		cJSON *j;
		rc = hs_render_recording_info_json(&j, r, t) < 0 ? hs_cli_error() : hs_cli_print_json(j);
	} else {
		rc = hs_render_recording_info_text(stdout, r, t) < 0 ? hs_cli_error()
		                                                     : hs_cli_finish_output();
	}
	hs_timeline_free(t);
	hs_recording_free(r);
	return rc;
}
