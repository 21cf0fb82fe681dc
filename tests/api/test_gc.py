"""The daemon's garbage-collector policy (process-global state: tests/fixtures/gc_state.py undoes it)."""

from __future__ import annotations

import gc

import trio

import api
from api._gc import GC_THRESHOLDS, SWEEP_INTERVAL, sweep_gc, untune_gc


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


def _frozen_cycles() -> list[Cycle]:
    """The Cycle objects still in memory, frozen or not (gc.get_objects skips frozen ones)."""
    gc.unfreeze()
    found = [o for o in gc.get_objects() if isinstance(o, Cycle)]
    gc.freeze()
    return found
