"""Several nodes as one cluster (DESIGN §11): membership, placement, reconciliation.

* :class:`Membership` announces this node on the bus (heartbeat + TTL) and keeps the live
  members and what each runs (the cluster-wide view of owners and statuses).
* :func:`place` (pure) assigns every session that should run to one live member: rendezvous
  hashing weighted by capacity, within each member's capacity.
* :func:`plan` (pure) says what one node must start and hand off to converge.
* :class:`StoredCredentials` keeps the simulated driver's credentials in the store, so the
  node that takes a session over logs in without a new QR code.

The session manager (``actors.node``) applies the plans; the fenced session lease
(``actors.bus.Lease``) guarantees that, whatever the views say, one node at a time connects.
"""

from ._credentials import StoredCredentials
from ._membership import CHANNEL, Membership, Peer
from ._placement import Member, place, ranking, score
from ._reconcile import HANDOFF_BATCH, Plan, plan

__all__ = [
    "CHANNEL",
    "HANDOFF_BATCH",
    "Member",
    "Membership",
    "Peer",
    "Plan",
    "place",
    "plan",
    "ranking",
    "StoredCredentials",
    "score",
]
