"""Events: the validated values the hub fans out, and the control frames around them.

An :class:`Event` is what a websocket client receives for something that happened
(``message.created``, ``connection.update``...). Its ``seq`` is the room's sequence number on
this node: it only grows, by one per event, so a client that saw seq 41 and reconnects asks for
"after 41" and gets exactly what it missed (see :class:`RoomLog`).

Each event is encoded to its JSON frame at most once, whatever the number of receivers.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import re
from typing import Any

import attrs

from ._errors import InvalidEvent

#: Event type names: dotted lower-case words (``message.created``, ``ticket.accepted``).
_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")

#: Control frame types the hub itself sends; never valid as event types.
CONTROL_TYPES = frozenset({"joined", "left", "lagged", "resync", "pong", "error", "sent"})


def check_type(event_type: object) -> str:
    """``event_type`` if it is a dotted event name, else InvalidEvent naming the field."""
    if not isinstance(event_type, str) or not _is_type(event_type):
        raise InvalidEvent(f"type: must be a dotted lower-case name like 'message.created', got {event_type!r}")
    return event_type


def _check_at(at: object) -> None:
    if not isinstance(at, (int, float)) or not math.isfinite(at):
        raise InvalidEvent(f"at: must be a finite Unix time in seconds, got {at!r}")


@functools.lru_cache(maxsize=1024)  # a node publishes a few dozen types, every event checks one
def _is_type(name: str) -> bool:
    return _TYPE.fullmatch(name) is not None


#: Built once: ``json.dumps`` with options builds an encoder per call, a third of a small payload's cost.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(data: dict) -> str:
    """Compact JSON text of a frame; InvalidEvent if JSON cannot carry it."""
    try:
        return _ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"payload: not JSON-serialisable ({exc})") from None


@attrs.frozen
class Event:
    """One event in one room: ``type`` (dotted name), ``room`` (the client's room name), ``seq``
    (1, 2, 3... per room on this node), ``payload`` (JSON object), ``at`` (Unix seconds).

    ``payload_json`` is the payload's JSON text, encoded (and so validated) at construction
    unless the caller passes the text it already has: one event published to several rooms,
    or forwarded to other nodes, encodes its payload once. ``frame`` — what clients receive,
    and what the room's replay buffer keeps — is assembled around it, once.
    """

    type: str = attrs.field(validator=lambda _i, _a, v: check_type(v))
    room: str
    seq: int
    payload: dict = attrs.field(validator=attrs.validators.instance_of(dict))
    at: float = attrs.field(validator=lambda _i, _a, v: _check_at(v))
    payload_json: str = attrs.field(eq=False, repr=False)

    @payload_json.default
    def _payload_json(self) -> str:
        return encode(self.payload)

    @functools.cached_property
    def frame(self) -> str:
        """The client frame ``{"type", "room", "seq", "payload", "at"}`` as compact JSON text."""
        return (f'{{"type":"{self.type}","room":{json.dumps(self.room)},"seq":{self.seq},'
                f'"payload":{self.payload_json},"at":{self.at!r}}}')  # a finite number: its repr is JSON


def control(frame_type: str, **fields: Any) -> str:
    """Encode a control frame (``joined``, ``lagged``, ``resync``, ``pong``, ``error``...)."""
    assert frame_type in CONTROL_TYPES, frame_type
    return encode({"type": frame_type, **fields})


@attrs.define(eq=False)
class RoomLog:
    """A room's sequence counter and bounded replay buffer.

    ``epoch`` names this incarnation of the room's numbering (a hub restart or an evicted room
    starts a new one): a resume that names another epoch must resync, whatever its seq.
    """

    epoch: str
    capacity: int
    seq: int = 0
    # Frames, not Events: a string is invisible to the garbage collector, while an Event and its
    # payload dicts would be walked by every collection for as long as the room keeps them.
    _recent: collections.deque[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._recent = collections.deque(maxlen=self.capacity)

    def append(self, event: Event) -> None:
        self.seq = event.seq
        self._recent.append(event.frame)

    def since(self, seq: int) -> list[str] | None:
        """The frames of the events after ``seq``, oldest first; None when some of them are no
        longer kept (or ``seq`` is from the future, i.e. from another incarnation): the client
        must resync."""
        if seq > self.seq or seq < 0:
            return None
        missing = self.seq - seq
        if missing > len(self._recent):
            return None
        return list(self._recent)[len(self._recent) - missing:] if missing else []
