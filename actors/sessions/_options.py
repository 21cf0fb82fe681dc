"""Per-session options: what of WhatsApp's traffic reaches the helpdesk, and what calls get.

Kept in the store (``session_options``, a JSON document), set through
``PUT /tenants/{tenant}/sessions/{session}/options``, read by the inbound sink and the session
actor (cached a few seconds, so a change applies within ``actors.tickets.POLICY_TTL``). Missing
keys take their defaults: a session that never set options ignores status broadcasts and
newsletters and lets calls ring.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

MAX_CALL_REPLY = 4096
"""Longest automatic reply to a call (WhatsApp's own cap on a text message)."""


@attrs.frozen
class SessionOptions:
    """``status_broadcasts``: a contact's status post becomes a message of that contact's ticket
    (default: ignored). ``newsletters``: a channel (``@newsletter``) post opens a ticket for the
    channel (default: ignored). ``reject_calls``: incoming calls are declined at once;
    ``call_reply`` (when not empty) is then sent to the caller as a text message."""

    status_broadcasts: bool = False
    newsletters: bool = False
    reject_calls: bool = False
    call_reply: str = ""

    @classmethod
    def from_json(cls, text: str | None) -> SessionOptions:
        """The options stored as ``text`` (None: the defaults). Keys this version does not know
        are ignored (a newer node may have written them)."""
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        known = {field.name for field in attrs.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)
