"""The cluster as this node sees it (DESIGN §11): ``GET /cluster``.

Every live member (this node included) with its advertised URL, capacity (its
``sessions.max_sessions``), whether it drains, the sessions it runs and its load. Read from the
membership heartbeats (``actors.cluster``), never from the database: a node that died leaves
the list within ``node.member_ttl``.
"""

from __future__ import annotations

from quart import Blueprint

from ._auth import Principal
from ._routing import Auth, endpoint, state

bp = Blueprint("cluster", __name__)


def members() -> list[dict]:
    """Every live member as a JSON object, sorted by node id."""
    node = state().node
    membership = node.membership
    me = {**membership.me.to_dict(), "sessions": sorted(node.local), "load": len(node.local)}
    listed = [me, *(peer.to_dict() for peer in membership.peers())]
    for member in listed:
        member["self"] = member["node_id"] == membership.me.node_id
        member["utilisation"] = member["load"] / member["capacity"]
    return sorted(listed, key=lambda m: m["node_id"])


@endpoint(bp, "GET", "/cluster", summary="Live members, the sessions each runs, and their load", auth=Auth.ADMIN)
async def get_cluster(who: Principal):
    node = state().node
    listed = members()
    return {"node_id": node.membership.me.node_id, "members": listed,
            "sessions": sum(m["load"] for m in listed), "capacity": sum(m["capacity"] for m in listed)}
