"""Coordination between actors and nodes: cache, fenced locks, ownership leases, pub/sub.

Two backends with one interface (:class:`Bus`) and the same semantics: :class:`MemoryBus`
(single node, the default, trio time throughout) and :class:`RedisBus` (shared by every node;
redis-py's asyncio client kept inside the backend through trio-asyncio). Pick one with
:func:`bus_from_url`; run it with ``nursery.start(bus.run)`` (or :func:`open_bus`).

* Cache: ``set/get/delete/delete_pattern/exists/incr/decr/expire/ttl`` with JSON values.
* Locks: ``acquire(resource, ttl) -> LockToken`` whose ``token`` (an int) only grows; release and
  renew act only for the current token; pass the token to store writes for fencing.
* Leases: :class:`Lease` keeps a resource owned by one node and tells the holder at once (the
  :class:`Tenure`'s ``lost`` event and cancel scope) when it must stop, with ttl/3 to spare.
* Pub/sub: ``publish(channel, data)``; ``async with bus.subscribe(...) as sub`` yields
  :class:`Message` and :class:`Gap` items (fire-and-forget: a Gap means resync).

Failures surface as :class:`BusUnavailable` within the backend's timeouts; every error derives
from :class:`BusError`.
"""

from ._codec import next_fence
from ._errors import BusError, BusUnavailable, BusValueError, LockBusy
from ._fanout import SUBSCRIPTION_CAPACITY, Subscription
from ._lease import Lease, Tenure
from ._memory import MemoryBus
from ._open import MEMORY_URL, bus_from_url, open_bus
from ._protocol import Bus
from ._redis import RedisBus
from ._values import (
    BusStatistics,
    Gap,
    GapReason,
    LeasePhase,
    LeaseState,
    LeaseStatistics,
    LockToken,
    Message,
)

__all__ = [
    "MEMORY_URL",
    "SUBSCRIPTION_CAPACITY",
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
    "MemoryBus",
    "Message",
    "RedisBus",
    "Subscription",
    "Tenure",
    "bus_from_url",
    "next_fence",
    "open_bus",
]
