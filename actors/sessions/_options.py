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

MAX_HISTORY_DAYS = 3650
MAX_HISTORY_CHATS = 10_000

MAX_TYPING_SECONDS = 5.0
"""Longest "typing..." shown before an agent's reply. A session sends one message at a time, so
typing divides its send rate (5 s: 12 replies a minute at most) and must stay far below the
outbox's send timeout (60 s) even with a few replies queued."""


@attrs.frozen
class SessionOptions:
    """``status_broadcasts``: a contact's status post becomes a message of that contact's ticket
    (default: ignored). ``newsletters``: a channel (``@newsletter``) post opens a ticket for the
    channel (default: ignored). ``reject_calls``: incoming calls are declined at once;
    ``call_reply`` (when not empty) is then sent to the caller as a text message.
    ``available``: the account shows as online while connected (WhatsApp sends contacts' presence
    only to an available account). ``typing_seconds``: "typing..." shown in the chat before each
    text reply, then cleared (0: never; at most ``MAX_TYPING_SECONDS``). ``subscribe_presence``:
    the presence of contacts with an active ticket (at connect) and of each contact who writes is
    asked for; what arrives is published as ``presence.updated``. ``history_days``,
    ``history_chats``, ``history_groups``: WhatsApp's history sync (after a first pairing) is
    imported for messages of the last ``history_days`` days (0: not at all), at most
    ``history_chats`` chats per session (per daemon run), group chats only with ``history_groups``."""

    status_broadcasts: bool = False
    newsletters: bool = False
    reject_calls: bool = False
    call_reply: str = ""
    available: bool = False
    typing_seconds: float = attrs.field(default=0.0, converter=lambda s: min(max(float(s), 0.0), MAX_TYPING_SECONDS))
    subscribe_presence: bool = False
    history_days: int = 7
    history_chats: int = 50
    history_groups: bool = False

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


class InboundDefaults:
    """The parts of an ``InboundSink`` beyond storing messages and receipts, for sinks that only
    store (test and benchmark sinks): every session has the default options, a learned LID
    mapping, a call and history are dropped, no contact's presence is wanted."""

    async def learn(self, session_id: str, tenant_id: str, mapping: object) -> None:
        return None

    async def call(self, session_id: str, tenant_id: str, offer: object) -> SessionOptions:
        return SessionOptions()

    async def options(self, session_id: str) -> SessionOptions:
        return SessionOptions()

    async def presence_targets(self, session_id: str) -> list[str]:
        return []

    async def history(self, session_id: str, tenant_id: str, chunk: object) -> None:
        return None
