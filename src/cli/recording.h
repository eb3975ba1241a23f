/* cli/recording.h: CLI glue for recordings (cli/recording.c). */
#ifndef HS_CLI_RECORDING_H
#define HS_CLI_RECORDING_H

#include "heapsnap/recording.h"
#include "heapsnap/timeline.h"

/* Open a recording, or report the error (returns 2); a recording that
 * ended abruptly loads with a warning on stderr. */
int hs_cli_recording_open(hs_recording **out, const char *path);
/* 1 when path is a heapsnap recording (by its header), else 0. */
int hs_cli_is_recording(const char *path);
/* `info REC` / `summary REC`: the overview, text or JSON; an exit status. */
int hs_cli_recording_overview(const char *path, int json);

#endif
