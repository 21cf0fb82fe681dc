"""The package's public face is pinned: changing it is a deliberate act."""

import actors.bus


def test_exports_are_pinned():
    assert sorted(actors.bus.__all__) == [
        "Bus",
        "BusError",
        "BusStatistics",
        "BusUnavailable",
        "BusValueError",
        "Gap",
        "GapReason",
        "Lease",
        "LeasePhase",
        "LeaseState",
        "LeaseStatistics",
        "LockBusy",
        "LockToken",
        "MEMORY_URL",
        "MemoryBus",
        "Message",
        "RedisBus",
        "SUBSCRIPTION_CAPACITY",
        "Subscription",
        "Tenure",
        "bus_from_url",
        "next_fence",
        "open_bus",
    ]
    for name in actors.bus.__all__:
        assert getattr(actors.bus, name) is not None


def test_errors_share_one_root_and_resemble_the_stdlib():
    from actors.bus import BusError, BusUnavailable, BusValueError, LockBusy

    assert issubclass(BusUnavailable, BusError) and issubclass(BusUnavailable, ConnectionError)
    assert issubclass(BusValueError, BusError) and issubclass(BusValueError, ValueError)
    assert issubclass(LockBusy, BusError) and issubclass(LockBusy, BlockingIOError)
