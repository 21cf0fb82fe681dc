"""Pins the public face of ``actors.lifecycle``."""

import actors.lifecycle


def test_public_face_is_pinned():
    assert sorted(actors.lifecycle.__all__) == [
        "Janitor", "LEASE_RESOURCE", "LifecycleStatistics", "PURGE", "RunNow", "RunReport", "Skipped", "Sweeper",
    ]
    for name in actors.lifecycle.__all__:
        assert getattr(actors.lifecycle, name) is not None
