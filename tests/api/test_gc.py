"""The daemon's garbage-collector policy: ``tune_gc`` (process-global state, restored after)."""

from __future__ import annotations

import gc

import api
from api._daemon import GC_THRESHOLDS


def test_tune_gc_freezes_what_lives_and_raises_the_thresholds() -> None:
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert thresholds != GC_THRESHOLDS  # else the test would prove nothing
    try:
        api.tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > frozen  # what existed moved to the permanent generation
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0
