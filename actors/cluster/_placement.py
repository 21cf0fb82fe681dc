"""Which live node owns which session: weighted rendezvous hashing with capacity bounds (pure).

Every node computes the same answer from the same inputs (the live members and the sessions
that should run), with no coordination: the fenced lease enforces it, this only decides who
should try.

* Rendezvous (highest random weight) hashing: each (node, session) pair gets a score from a
  hash; the session goes to the highest-scoring node. Weighted by capacity with the
  logarithmic method (score = -capacity / ln(u), u in (0, 1) from the hash), so a node with
  twice the capacity gets twice the sessions. A node joining takes over only the sessions it
  now scores highest on (about its share), and a node leaving moves only its own sessions:
  bounded moves, never a reshuffle.
* Capacity: a node takes at most ``capacity`` sessions; sessions are assigned in a fixed
  order (by id) to their best-ranked node that has room. Sessions beyond the whole cluster's
  capacity go to their first choice anyway (they queue in its pool).
* Draining members own nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import attrs


@attrs.frozen
class Member:
    """One node as its heartbeat describes it."""

    node_id: str
    url: str | None
    capacity: int
    draining: bool = False

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def score(node_id: str, session_id: str, capacity: int) -> float:
    """The node's weight for the session: higher wins. Deterministic across processes."""
    digest = hashlib.blake2b(f"{node_id}\x00{session_id}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)  # in (0, 1), never 0 or 1
    return -capacity / math.log(unit)


def ranking(session_id: str, members: Iterable[Member]) -> list[str]:
    """Node ids of the members that may own sessions, best first for ``session_id``."""
    eligible = [m for m in members if not m.draining and m.capacity > 0]
    eligible.sort(key=lambda m: (-score(m.node_id, session_id, m.capacity), m.node_id))
    return [m.node_id for m in eligible]


def place(session_ids: Iterable[str], members: Iterable[Member]) -> dict[str, str]:
    """Owner node id of every session (none when no member may own sessions).

    Sessions are taken in id order, each to its best-ranked member with room left; when every
    member is full, to its best-ranked one.
    """
    members = list(members)
    room = {m.node_id: m.capacity for m in members if not m.draining}
    owners: dict[str, str] = {}
    for session_id in sorted(set(session_ids)):
        ranked = ranking(session_id, members)
        if not ranked:
            break
        owner = next((node for node in ranked if room[node] > 0), ranked[0])
        room[owner] -= 1
        owners[session_id] = owner
    return owners
