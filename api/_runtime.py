"""What the daemon's process holds right now: the figures a soak test watches for growth.

``GET /supervision/runtime`` (admin only) answers :func:`runtime_stats`: resident memory, open file
descriptors, threads, live actors, trio tasks, trio's deadline heap, asyncio tasks (the trio-asyncio
loops of asyncpg and Redis), Python's allocated blocks, the C heap's bytes in use and free
(:mod:`api._malloc`) and, with ``?objects=N``, the N most numerous Python object types (and, when
tracemalloc traces, the N source lines holding the most memory). A leak shows as one of these
climbing while the load stays the same (``bench/soak.py`` samples it); RSS climbing while
``python_blocks`` and the C heap's ``in_use`` stay flat is the allocators' holes, not a leak.

Counting objects walks the whole heap (``gc.get_objects()``: tens of milliseconds per 100k objects,
on the trio thread), so it is asked for explicitly and capped; everything else is cheap. Trio's
deadline heap and asyncio's task registry are private attributes: read defensively (``None`` when a
version moves them), since a stats endpoint must never be what breaks.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import resource
import sys
import threading
import tracemalloc
from typing import Any

import trio

from ._malloc import malloc_stats

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size now (``/proc/self/statm``; the peak from getrusage where there is no /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_fds() -> int | None:
    """File descriptors open in this process (``/proc/self/fd``), None where there is no /proc."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def trio_tasks() -> int:
    """Tasks alive in this trio run: the root task and everything under its nurseries."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def trio_deadlines() -> dict[str, int] | None:
    """Trio's deadline heap: ``active`` cancel scopes with a deadline, ``heap`` entries (stale ones
    included, pruned lazily by trio); None if this trio keeps them elsewhere."""
    try:
        deadlines = trio._core._run.GLOBAL_RUN_CONTEXT.runner.deadlines  # noqa: SLF001 (read-only)
        return {"active": int(deadlines._active), "heap": len(deadlines._heap)}  # noqa: SLF001
    except AttributeError:
        return None


def asyncio_tasks() -> int | None:
    """asyncio tasks not yet collected, over every loop (the trio-asyncio loops of asyncpg and Redis)."""
    registry = getattr(asyncio.tasks, "_all_tasks", None)
    return len(registry) if registry is not None else None


def object_counts(top: int) -> dict[str, int]:
    """The ``top`` most numerous object types on the heap (tracked by the collector), by type name.

    Frozen objects included: ``gc.get_objects()`` skips the permanent generation, where the daemon's
    GC policy (:mod:`api._gc`) keeps everything that survived a full collection — nearly the whole
    heap — so the count unfreezes, walks, and freezes again (what was young is frozen with the rest
    and given back by the next sweep). Before, a soak's ``top_growth`` saw only the few thousand
    objects allocated since the last collection."""
    frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    try:
        counts = collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())
    finally:
        if frozen:
            gc.freeze()
    return dict(counts.most_common(top))


def allocation_sites(top: int) -> dict[str, int] | None:
    """Bytes held per allocating source line, the ``top`` largest; None unless tracemalloc traces
    (``PYTHONTRACEMALLOC=1`` at start: it slows the process, a diagnosis run's setting)."""
    if not tracemalloc.is_tracing():
        return None
    stats = tracemalloc.take_snapshot().statistics("lineno")[:top]
    return {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": s.size for s in stats}


def runtime_stats(actors: int, objects: int = 0) -> dict[str, Any]:
    """The process's figures now; ``actors`` is the node's live actor count (its tree's size)."""
    stats: dict[str, Any] = {
        "rss_bytes": rss_bytes(),
        "fds": open_fds(),
        "threads": threading.active_count(),
        "actors": actors,
        "trio_tasks": trio_tasks(),
        "trio_deadlines": trio_deadlines(),
        "asyncio_tasks": asyncio_tasks(),
        "gc_counts": list(gc.get_count()),
        "gc_frozen": gc.get_freeze_count(),  # api/_gc.py freezes survivors; its sweep gives them back
        "python_blocks": sys.getallocatedblocks(),  # blocks Python's allocator handed out (live objects)
        "malloc": malloc_stats(),  # the C heap: bytes in use vs free inside it (api/_malloc.py)
    }
    if objects:
        stats["objects"] = object_counts(objects)
        stats["allocations"] = allocation_sites(objects)
    return stats
