/*
 * heapsnap.h: the umbrella header of libheapsnap.
 *
 * Ownership, stated once for the whole API: what a function gives through
 * `**out` belongs to the caller, who frees it with that type's `_free`; a
 * pointer returned directly is borrowed from its parent and lives as long
 * as it. Every `_free(NULL)` is a no-op. Functions return 0 or a negative
 * hs_error_code; the detail is in hs_error_last().
 */
#ifndef HEAPSNAP_H
#define HEAPSNAP_H

#include "heapsnap/common.h"
#include "heapsnap/errors.h"
#include "heapsnap/format.h"
#include "heapsnap/graph.h"
#include "heapsnap/snapshot.h"
#include "heapsnap/analysis.h"
#include "heapsnap/retention.h"
#include "heapsnap/leaks.h"
#include "heapsnap/render.h"
#include "heapsnap/graphviz.h"
#include "heapsnap/procset.h"
#include "heapsnap/recording.h"
#include "heapsnap/timeline.h"
#include "heapsnap/plot.h"

#endif
