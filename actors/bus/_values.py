"""Values the bus hands out: lock tokens, pub/sub items, lease states and statistics snapshots."""

from __future__ import annotations

import enum
from typing import Any

import attrs


@attrs.frozen
class LockToken:
    """Proof of holding a lock, carrying its fencing token.

    ``token`` is strictly greater than every token issued before for the same ``resource``
    (also across restarts of the bus or of Redis, see :func:`actors.bus.next_fence`), so a
    store that remembers the highest token it has seen per resource can refuse the late write
    of a holder that was paused past its TTL. ``int(lock)`` gives the token.

    ``acquired_at`` is the trio time just *before* the acquire request was sent: the lock is
    certainly held until ``acquired_at + ttl`` by the server's clock running at our rate.
    """

    resource: str
    token: int
    owner: str
    ttl: float
    acquired_at: float

    def __int__(self) -> int:
        return self.token


@attrs.frozen
class Message:
    """One pub/sub message: the JSON ``data`` published on ``channel``.

    ``pattern`` is the subscribed pattern that matched, None for a plain channel subscription.
    """

    channel: str
    data: Any
    pattern: str | None = None


class GapReason(enum.Enum):
    """Why a subscription may have missed messages."""

    #: the subscriber fell behind and its bounded queue overflowed; ``dropped`` were discarded
    OVERFLOW = "overflow"
    #: the connection to Redis was lost and re-established: messages published meanwhile are gone
    RECONNECTED = "reconnected"


@attrs.frozen
class Gap:
    """Marker in a subscription stream: messages may be missing here; resynchronise from the source.

    The bus is fire-and-forget (like Redis pub/sub): it never replays. Consumers that need every
    event (the Hub) keep their own sequence numbers / replay buffer and resync on a Gap.
    ``dropped`` counts overflowed messages; it is 0 for a reconnect (the loss is unknown).
    """

    reason: GapReason
    dropped: int = 0


class LeasePhase(enum.Enum):
    """Where a :class:`~actors.bus.Lease` stands."""

    #: not started yet, or between attempts: this node does not hold it
    STANDBY = "standby"
    #: this node holds the lease and may use the resource
    HELD = "held"
    #: the bus is unreachable: this node does not hold it (it stepped down if it did)
    UNAVAILABLE = "unavailable"
    #: the lease task ended; the lease was released
    STOPPED = "stopped"


@attrs.frozen
class LeaseState:
    """Snapshot of one lease as seen by its node.

    ``token`` is the fencing token of the current tenure (None unless HELD); ``holder`` the node
    that holds it when known (this node when HELD, another node when it was seen holding it);
    ``valid_until`` the trio time by which this node must have stopped using the resource
    (None unless HELD); ``since`` the trio time the phase began (-inf before the lease first
    ran); ``reason`` says why.
    """

    resource: str
    node_id: str
    phase: LeasePhase
    since: float
    reason: str = ""
    token: int | None = None
    holder: str | None = None
    valid_until: float | None = None

    @property
    def held(self) -> bool:
        return self.phase is LeasePhase.HELD


@attrs.frozen
class BusStatistics:
    """Snapshot of a bus's counters (monotonic since it was created, except the gauges).

    Gauges: ``available`` (the last operation or health probe reached the backend),
    ``subscriptions`` (open local subscriptions), ``names`` (channels + patterns subscribed).
    ``unavailable`` counts operations and health probes that found the backend unreachable;
    ``reconnects`` counts returns of the backend after an outage (commands and pub/sub).
    """

    backend: str
    available: bool
    operations: int
    unavailable: int
    subscriptions: int
    names: int
    published: int
    delivered: int
    dropped: int
    malformed: int
    reconnects: int


@attrs.frozen
class LeaseStatistics:
    """Snapshot of a lease: its current ``state`` and counters since it was created.

    ``tenures`` counts acquisitions, ``renewals`` confirmed renewals, ``losses`` tenures that
    ended because a renewal failed or the lock was found elsewhere (not by stopping).
    """

    state: LeaseState
    tenures: int
    renewals: int
    losses: int
