/*
 * record/agents.h: Python figures for `heapsnap record`, from the heapsnap
 * agent running inside each Python process of the tree (protocol:
 * /work/briefs/agent-protocol.md, client: heapsnap/agent.h). One thread of
 * the recorder talks to every agent, so that a slow answer (the agent needs
 * the target's GIL) never delays a memory sample.
 */
#ifndef HS_RECORD_AGENTS_H
#define HS_RECORD_AGENTS_H

#include <pthread.h>
#include "record/record_internal.h"

typedef struct hs_agents hs_agents;

/* Set up (nothing runs yet); `lock` guards the writer shared with the sampler. */
int hs_agents_new(hs_agents **out, const hs_record_options *o, pthread_mutex_t *lock);
/* The writer and the recording's t = 0 (CLOCK_MONOTONIC ns). */
void hs_agents_attach(hs_agents *a, hs_rec_writer *w, int64_t t0_ns);
/* The environment a command needs to start an agent in every Python process:
 * set in this process before the fork (PYTHONPATH, HEAPSNAP_AGENT, _DIR). */
int hs_agents_environment(hs_agents *a);
int hs_agents_start(hs_agents *a);
/* A Python process of the tree appeared (or exec'd into Python) / ended. */
void hs_agents_add(hs_agents *a, int pid, size_t index, int root);
void hs_agents_remove(hs_agents *a, int pid);
/* The sampler's latest RSS of pid, KiB (for --snapshot-on-growth). */
void hs_agents_rss(hs_agents *a, int pid, int64_t rss_kib);
/* Stop the thread and wait for it; the writer is the caller's again. */
void hs_agents_stop(hs_agents *a);
void hs_agents_free(hs_agents *a);

#endif
