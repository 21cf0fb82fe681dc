"""The daemon's garbage-collector policy (process-global state: tests/fixtures/gc_state.py undoes it)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

import api
from api._runtime import object_counts
from api._gc import (
    COLLECT_INTERVAL,
    GC_THRESHOLDS,
    SWEEP_CHECK,
    SWEEP_INTERVAL,
    SWEEP_MIN_GROWTH,
    sweep_gc,
    untune_gc,
)


class Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_tune_gc_freezes_what_lives_and_raises_the_thresholds() -> None:
    assert gc.get_threshold() != GC_THRESHOLDS and gc.get_freeze_count() == 0
    api.tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0  # the full collection's survivors
    untune_gc()
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_every_full_collection_freezes_its_survivors() -> None:
    api.tune_gc()
    alive = [Cycle() for _ in range(1000)]
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= before + len(alive)
    gc.collect(0)  # a young collection freezes nothing
    assert gc.get_freeze_count() >= before + len(alive)


async def test_the_sweep_frees_cycles_that_died_frozen(autojump_clock) -> None:
    api.tune_gc()
    dead = Cycle()
    gc.collect()  # dead is alive here: frozen with the survivors
    assert gc.get_freeze_count() > 0
    del dead  # now garbage, but frozen: no collection looks at it
    gc.collect()
    assert _frozen_cycles()
    async with trio.open_nursery() as nursery:
        await nursery.start(sweep_gc)
        await trio.sleep(SWEEP_INTERVAL + 1)
        nursery.cancel_scope.cancel()
    assert not _frozen_cycles()


async def test_churn_garbage_is_swept_long_before_the_hour(autojump_clock) -> None:
    """Found by bench/soak.py: stopped actors are cycles that a full collection froze while they
    lived; with an hourly sweep only, a churning daemon grew by ~100 MB/h. Frozen garbage that
    grows the frozen set by SWEEP_GROWTH is swept within SWEEP_CHECK; a little garbage waits."""
    api.tune_gc()
    async with trio.open_nursery() as nursery:
        await nursery.start(sweep_gc)
        churn = [Cycle() for _ in range(SWEEP_MIN_GROWTH + gc.get_freeze_count())]
        gc.collect()  # they live now: frozen with the survivors
        del churn  # the actors stop: frozen garbage
        await trio.sleep(SWEEP_CHECK * 2)
        assert not _frozen_cycles()
        few = [Cycle() for _ in range(100)]
        gc.collect()
        del few  # a little frozen garbage: not worth a full pause yet
        await trio.sleep(SWEEP_CHECK * 10)
        assert len(_frozen_cycles()) == 100
        nursery.cancel_scope.cancel()


async def test_old_garbage_that_is_not_frozen_is_collected_every_minute(autojump_clock) -> None:
    """Steady traffic frees about what it allocates, so the thresholds alone almost never reach a
    full collection: objects that outlived the young collections and then died would wait for the
    hourly sweep. A full collection of what is not frozen comes every COLLECT_INTERVAL."""
    api.tune_gc()
    async with trio.open_nursery() as nursery:
        await nursery.start(sweep_gc)
        old = [Cycle() for _ in range(100)]
        gc.collect(1)  # they outlive the young collections: in the oldest generation, not frozen
        del old
        gc.collect(1)  # young collections never look there
        assert len([o for o in gc.get_objects(generation=2) if isinstance(o, Cycle)]) == 100
        await trio.sleep(COLLECT_INTERVAL + SWEEP_CHECK)
        assert not _frozen_cycles()
        nursery.cancel_scope.cancel()


HOLES = 500
"""60 KB holes the heap tests leave: ~30 MB, far above the RSS noise of a fresh interpreter."""

_HOLES_IN_THE_HEAP = f"""
def holes_in_the_heap():
    # what 64 KiB socket receive buffers shrunk to what arrived do to the C heap: free 60 KB chunks,
    # each held apart from the next by a small live block (returned: keep it alive)
    big, pins = [], []
    for i in range({HOLES}):
        big.append(b"x" * 60_000)  # > 512 bytes: from malloc, not pymalloc
        pins.append(b"p" * (1000 + i % 7))  # a varying size: not one folded constant
    del big
    return pins
"""


def _in_a_fresh_interpreter(body: str) -> dict:
    """Run ``body`` (which sets ``result``) in a new Python process and return ``result``: the C
    heap of a process that already ran other tests is full of resident holes of its own, which
    new blocks reuse unseen (seen in the full suite: RSS grew by 2 MB for 30 MB of blocks)."""
    script = "import json\n" + _HOLES_IN_THE_HEAP + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_free_holes_in_the_heap_stay_resident_until_released() -> None:
    """The premise of the trim: glibc's free() keeps holes resident; malloc_trim gives them back."""
    result = _in_a_fresh_interpreter("""
        from api._malloc import malloc_stats, release_free_memory
        from api._runtime import rss_bytes
        before = rss_bytes()
        pins = holes_in_the_heap()
        holding = rss_bytes()
        free = malloc_stats()["free"]
        release_free_memory()
        result = {"kept": holding - before, "free": free, "released": holding - rss_bytes()}
    """)
    assert result["kept"] > HOLES * 60_000 // 2  # freed, yet still resident
    assert result["free"] > HOLES * 60_000 // 2  # the allocator's, not the program's
    assert result["released"] > HOLES * 60_000 // 2


def test_the_periodic_collection_gives_the_heaps_free_pages_back() -> None:
    """Found by bench/soak.py: under churn the daemon's RSS climbed while the C heap's bytes in use
    stayed flat: its free holes grew. The collection every COLLECT_INTERVAL now releases
    them (without it RSS stays where the holes left it). Trio's clock jumps (MockClock)."""
    result = _in_a_fresh_interpreter("""
        import trio, trio.testing
        import api
        from api._gc import COLLECT_INTERVAL, SWEEP_CHECK, sweep_gc
        from api._runtime import rss_bytes

        async def main():
            api.tune_gc()
            async with trio.open_nursery() as nursery:
                await nursery.start(sweep_gc)
                pins = holes_in_the_heap()
                holding = rss_bytes()
                await trio.sleep(COLLECT_INTERVAL + SWEEP_CHECK)
                released = holding - rss_bytes()
                nursery.cancel_scope.cancel()
            return released

        result = {"released": trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))}
    """)
    assert result["released"] > HOLES * 60_000 // 2


def _frozen_cycles() -> list[Cycle]:
    """The Cycle objects still in memory, frozen or not (gc.get_objects skips frozen ones)."""
    gc.unfreeze()
    found = [o for o in gc.get_objects() if isinstance(o, Cycle)]
    gc.freeze()
    return found


class Frozen:
    """A type only the test below creates."""


def test_object_counts_see_frozen_objects() -> None:
    """``/supervision/runtime?objects=N`` counts the whole heap, frozen part included (the soak's
    ``top_growth`` was blind to it: nearly the whole heap is frozen by the GC policy)."""
    kept = [Frozen() for _ in range(50_000)]
    gc.freeze()
    try:
        assert object_counts(1_000).get("Frozen") == 50_000
        assert gc.get_freeze_count() >= 50_000  # frozen again afterwards
    finally:
        gc.unfreeze()
    del kept
