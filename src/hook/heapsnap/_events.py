"""Markers and garbage-collection events: two bounded rings kept in the
process, with or without the agent (heapsnap.agent serves them as MARKS and
GCEVENTS; formats/agent-protocol.md).

    heapsnap.mark("request 42 done")     # cheap: one append to a deque
    heapsnap.marks(since=0)              # {"next", "marks": [...], "dropped"}
    heapsnap.gc_events(since=0)          # {"next", "events": [...], "dropped"}

The GC ring (in C) is fed by a gc.callbacks entry installed when this module
is imported (by `import heapsnap`): about a microsecond per collection.
"""
import collections
import gc
import itertools
import time

from heapsnap import _heapsnap

RING = 4096          # entries kept per ring
LABEL_MAX = 1024     # characters kept of a marker's label

_mono = time.monotonic
_wall = time.time

_marks = collections.deque(maxlen=RING)   # (seq, t, wall, label)
_mark_seq = itertools.count()             # next() is atomic under the GIL

# The GC ring is C (src/hook/events.c): Python tuples and floats appended on
# every collection would show up in snapshots as a growing population.
since = _heapsnap._gc_since()             # when the GC ring started


def mark(label):
    """Record a marker (label, monotonic time, wall time) in the ring read
    by `heapsnap.marks()` and the agent's MARKS command. Works with or
    without the agent; keeps the newest 4096; labels are cut at 1024
    characters. Returns the marker's sequence number."""
    if not isinstance(label, str):
        label = str(label)
    if len(label) > LABEL_MAX:
        label = label[:LABEL_MAX]
    seq = next(_mark_seq)
    _marks.append((seq, _mono(), _wall(), label))
    return seq


def _since(ring, since):
    """(entries with seq >= since, the seq the next entry will get, how
    many entries with seq >= since the ring no longer holds)."""
    items = list(ring)  # a copy: other threads go on appending
    if not items:
        return [], 0, 0  # nothing recorded yet: the ring only ever grows
    since = max(0, since)
    first, last = items[0][0], items[-1][0]
    out = [e for e in items if e[0] >= since] if since > first else items
    return out, last + 1, max(0, first - since)


def marks(since=0):
    """Markers with a sequence number >= since:
    {"next": seq to ask for next time, "marks": [{"seq", "t", "wall",
    "label"}], "dropped": markers asked for but no longer in the ring}."""
    out, nxt, dropped = _since(_marks, int(since))
    r = {"next": nxt, "marks": [{"seq": s, "t": t, "wall": w, "label": l} for s, t, w, l in out]}
    if dropped:
        r["dropped"] = dropped
    return r


def gc_events(since=0):
    """Collections (from gc.callbacks) with a sequence number >= since:
    {"next", "events": [{"seq", "generation", "t" (start, monotonic),
    "seconds", "collected", "uncollectable"}], "dropped"}."""
    return _heapsnap._gc_events(max(0, int(since)))


def gc_pause_seconds():
    """Total seconds spent in collections per generation since the ring
    started (module `since`)."""
    return _heapsnap._gc_pause_seconds()


def _install():
    # a C function: about a microsecond per collection, no Python objects kept
    if _heapsnap._gc_callback not in gc.callbacks:
        gc.callbacks.append(_heapsnap._gc_callback)


_install()
