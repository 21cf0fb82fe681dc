"""The hook the flows call to announce what happened (messages, tickets) in realtime.

The flows (inbound, outbound, tickets) depend on this Protocol, not on the Hub: a node passes
its :class:`~actors.hub.Hub` (which implements it), tests may pass a recorder.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Publisher(Protocol):
    def emit(self, tenant_id: str, type: str, payload: dict, *, ticket_id: int | str | None = None) -> None:
        """Announce event ``type`` (``message.created``, ``message.updated``, ``ticket.accepted``...)
        of ``tenant_id``: to the ``tenant:<id>`` room, to ``ticket:<ticket_id>`` when given, and to
        the tenant's webhooks subscribed to ``type``.

        Non-blocking (call it after the change is durable; it never waits for a client, the bus or
        a webhook). ``payload`` is a JSON object (ids, not records).

        Raises:
            InvalidEvent: ``type`` is not a dotted lower-case name, or ``payload`` is not JSON.
            InvalidRoom: ``tenant_id`` / ``ticket_id`` are not valid ids.
        """
