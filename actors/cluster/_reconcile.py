"""What one node must change so the cluster converges on the placement (pure).

Given the sessions that should run, their owners (:func:`~actors.cluster.place`) and the
sessions this node runs, a :class:`Plan` says which to start here and which to hand off. Hand-offs
are bounded per pass (:data:`HANDOFF_BATCH`): when a node joins, the sessions it takes over move
a batch at a time, each pass after the previous batch's leases were released, so a join is a
steady trickle of reconnects, never a thundering rebalance. Sessions that should not run at all
(stopped, logged out by their owner) are only forgotten, never counted against the batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs

HANDOFF_BATCH = 50
"""Sessions a node hands off per reconcile pass when placement moves them (a join): at the
connect limiter's default rate that is about what the new owners connect per pass."""


@attrs.frozen
class Plan:
    start: tuple[str, ...]  # should run here and does not
    hand_off: tuple[str, ...]  # runs here, another node should own it
    forget: tuple[str, ...]  # runs (or ran) here, should not run anywhere


def plan(me: str, wanted: Collection[str], owners: Mapping[str, str], running: Collection[str],
         batch: int = HANDOFF_BATCH) -> Plan:
    """The changes that bring this node (``me``) in line with ``owners``.

    ``owners`` maps sessions to their owner (sessions it omits have none: no member may own
    them; this node keeps what it runs rather than dropping it on the floor).
    """
    wanted = set(wanted)
    start = sorted(s for s in wanted if owners.get(s) == me and s not in running)
    moving = sorted(s for s in running if s in wanted and owners.get(s, me) != me)
    forget = sorted(s for s in running if s not in wanted)
    return Plan(tuple(start), tuple(moving[:batch]), tuple(forget))
