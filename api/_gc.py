"""The daemon's garbage-collector policy: collect the young, leave the long-lived alone.

CPython frees nearly everything by reference counting; the cyclic collector exists for reference
cycles, and it finds them by walking every object it tracks. A daemon keeps a large, slowly
growing set of long-lived objects (the supervision tree, ticket actors, caches) and allocates a
few hundred short-lived ones per message. With CPython's defaults the collector ran some 50 times
a second under load and each full collection walked the whole long-lived set: ~20 % of the
daemon's CPU and pauses of a quarter second (bench/pipeline.py, measured with ``gc.callbacks``).

The policy (:func:`tune_gc`, once the node is up):

* what survived a full collection is frozen (``gc.freeze``): later collections never walk it;
* young collections run every GC_THRESHOLDS[0] net allocations instead of 700;
* what is not frozen gets a full collection every COLLECT_INTERVAL (its survivors are frozen);
* a frozen object that later becomes cyclic garbage (a stopped actor's cycles: its exception's
  traceback holds its frames, which hold the actor) is not freed by the collector, so
  :func:`sweep_gc` unfreezes and collects everything once the frozen set grew by SWEEP_GROWTH
  since the last sweep (looked at every SWEEP_CHECK s), and at least every SWEEP_INTERVAL (four
  minutes): under churn (sessions connected, dropped, deleted; tickets passivated) a sweep comes
  as often as the garbage requires, and garbage that grows the frozen set slowly waits minutes,
  not an hour. Found with ``bench/soak.py``: with an hourly sweep alone, deleted sessions' actors
  (and all they held) stayed in memory for up to an hour.
* after each of those full collections the C heap's free pages go back to the system
  (:func:`api._malloc.release_free_memory`): what the collection freed, and the holes 64 KiB
  socket receive buffers leave in the heap, which glibc alone never returns (found with
  ``bench/soak.py``: under churn RSS climbed with the heap's free bytes, its bytes in use flat).

Process-wide: only the daemon (and the benchmarks, which measure the daemon as it runs) use
this, never a library function.
"""

from __future__ import annotations

import gc
from typing import Any

import trio

from ._malloc import release_free_memory

GC_THRESHOLDS = (10_000, 10, 10)
"""Generation thresholds (CPython's defaults: 700, 10, 10): a young collection after the tracked
objects grew by 10,000 (allocations minus deallocations). On the 2-core test machine that is a few
per second at full load (10-30 ms each: what is young then is the backlog in flight) and none in 20 s
at a steady 1,000 msg/s (bench/pipeline.py): steady traffic allocates as much as it frees."""

SWEEP_INTERVAL = 240.0
"""Longest time between full sweeps of the frozen objects (an idle daemon sweeps this often; each
sweep is a pause proportional to the heap: ~25 ms for 130k objects on the 2-core test machine). Was
an hour: under bench/soak.py's churn the growth trigger alone let frozen garbage pile up for minutes
at a time, and RSS moved in a 104-112 MB saw-tooth whose low points kept rising (Python's arenas,
which go back to the system only once empty, fragmented by the garbage of each cycle). A diagnosis
run collecting everything every four minutes stayed within 103.8-106.9 MB after its warm-up; with
this interval two full soak runs fitted 3.14 and 4.56 MB/h (the target is 5)."""

SWEEP_CHECK = 10.0
"""Seconds between looks at the frozen set's size (``gc.get_freeze_count()``: no walk, no pause)."""

SWEEP_GROWTH = 1.05
"""A sweep comes once the frozen set is this many times what the last sweep left (and at least
SWEEP_MIN_GROWTH objects more): garbage waiting in it stays under a twentieth of what lives, and
sweeps, each a pause proportional to the heap (~25 ms for 130k objects on the loaded 2-core test
machine), come only as often as the churn makes garbage. Was 1.25 with a 50,000 minimum: under
bench/soak.py's churn the frozen garbage then took ~15 min to reach a sweep, and Python's arenas
grew with it all that time (a sawtooth a short run reads as a leak)."""

COLLECT_INTERVAL = 60.0
"""Seconds between full collections of what is not frozen. Steady traffic frees about as much as it
allocates, so the generation thresholds alone almost never reach a full collection: objects that
outlived two young collections and then died in cycles (a stopped actor and its traceback) would
wait in the oldest generation for the hourly sweep. Frozen objects are not walked, so this pause
is proportional to what was allocated since the last one and survived, not to the heap."""

SWEEP_MIN_GROWTH = 5_000
"""Frozen objects added before a small heap is swept again (about a megabyte: not worth a pause)."""


def tune_gc() -> None:
    """Set up the collector (see the module docstring); idempotent."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()  # a full collection: _freeze_survivors freezes what it leaves


def untune_gc() -> None:
    """Undo :func:`tune_gc`: CPython's default thresholds, nothing frozen (tests)."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()


async def sweep_gc(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Give the collector back what was frozen and collect everything, once the frozen set grew by
    SWEEP_GROWTH since the last sweep or SWEEP_INTERVAL passed (see the module docstring)."""
    task_status.started()
    left, swept_at = gc.get_freeze_count(), trio.current_time()
    collected_at = swept_at
    while True:
        await trio.sleep(SWEEP_CHECK)
        now = trio.current_time()
        grown = gc.get_freeze_count() >= max(left * SWEEP_GROWTH, left + SWEEP_MIN_GROWTH)
        if grown or now - swept_at >= SWEEP_INTERVAL:
            gc.unfreeze()
            gc.collect()  # the survivors are frozen again by _freeze_survivors
            left, swept_at, collected_at = gc.get_freeze_count(), now, now
            release_free_memory()
        elif now - collected_at >= COLLECT_INTERVAL:
            gc.collect()  # walks only what is not frozen; its survivors are frozen in turn
            collected_at = now
            release_free_memory()


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: after a full collection, freeze what it left (all of it is live)."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
