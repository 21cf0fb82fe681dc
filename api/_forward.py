"""Any node answers any request: a session operation goes to the node that runs the session.

A session's operations (connect, pairing, QR, logout, restart, delete) need its live actor,
which exists on one node only. :func:`forward_to_owner` finds that node — the one whose
heartbeat says it runs the session, else the first choice of placement (the node that will
start it) — and, when it is another node, replays the request against its advertised URL with
the caller's own credentials, returning its answer unchanged. The owner audits and answers as
if it had been asked directly. A forwarded request carries :data:`FORWARDED_BY` and is never
forwarded again (views that disagree for a moment cannot bounce a request between nodes).
"""

from __future__ import annotations

import httpx
from quart import Response, request

from actors.cluster import ranking

from ._errors import Unavailable
from ._routing import state

FORWARDED_BY = "X-Zapvisor-Forwarded-By"
"""Header naming the node that forwarded a request (it is then handled where it lands)."""

FORWARD_TIMEOUT = 150.0
"""Seconds a forwarded request may take: a connect may wait 120 s for its QR code or connected."""

PASSED_HEADERS = ("authorization", "content-type", "accept", "idempotency-key")
"""Request headers the owner needs to answer as if asked directly."""


def owner_url(session_id: str) -> tuple[str, str] | None:
    """(node id, URL) of the node that should handle ``session_id`` when it is another live node."""
    node = state().node
    membership = node.membership
    if session_id in node.local or request.headers.get(FORWARDED_BY):
        return None
    target = membership.runner(session_id) or next(iter(ranking(session_id, membership.members())), None)
    member = None if target in (None, membership.me.node_id) else membership.member(target)
    if member is None or member.url is None:
        return None
    return member.node_id, member.url


async def forward_to_owner(session_id: str) -> Response | None:
    """The owner's answer when another node should handle this request, None to handle it here.

    Raises:
        Unavailable: the owner did not answer (it may just have died: placement moves its
            sessions within ``node.member_ttl``; the caller may retry).
    """
    owner = owner_url(session_id)
    if owner is None:
        return None
    node_id, url = owner
    headers = {name: value for name, value in request.headers.items() if name.lower() in PASSED_HEADERS}
    headers[FORWARDED_BY] = state().node.membership.me.node_id
    query = request.query_string.decode()
    target = url.rstrip("/") + request.path + (f"?{query}" if query else "")
    async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT) as client:
        try:
            reply = await client.request(request.method, target, content=await request.get_data(), headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"node {node_id!r}, which runs session {session_id!r}, did not answer: {exc}") from None
    return Response(reply.content, status=reply.status_code, content_type=reply.headers.get("content-type"))
