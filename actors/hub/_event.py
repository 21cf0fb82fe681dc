"""Events: their validation, their frames, and the control frames around them.

An event is what a websocket client receives for something that happened (``message.created``,
``connection.update``...): the frame ``{"type", "room", "seq", "payload", "at"}``. Its ``seq`` is
the room's sequence number on this node: it only grows, by one per event, so a client that saw
seq 41 and reconnects asks for "after 41" and gets exactly what it missed (see :class:`RoomLog`).

A payload is encoded once (:func:`encode`), whatever the number of rooms, receivers and nodes; a
frame (:func:`event_frame`) is assembled around that text only when someone receives it, so an
event published to rooms nobody is in costs no frame at all.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import math
import re
from typing import Any

import attrs

from ._errors import InvalidEvent

#: Event type names: dotted lower-case words (``message.created``, ``ticket.accepted``).
_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")

#: Control frame types the hub itself sends; never valid as event types.
CONTROL_TYPES = frozenset({"joined", "left", "lagged", "resync", "pong", "error", "sent", "updated"})


def check_type(event_type: object) -> str:
    """``event_type`` if it is a dotted event name, else InvalidEvent naming the field."""
    if not isinstance(event_type, str) or not _is_type(event_type):
        raise InvalidEvent(f"type: must be a dotted lower-case name like 'message.created', got {event_type!r}")
    return event_type


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


def check_payload(payload: object) -> str:
    """The JSON text of ``payload``; InvalidEvent unless it is a JSON object (NaN is not JSON)."""
    if not isinstance(payload, dict):
        raise InvalidEvent(f"payload: must be a JSON object, got {type(payload).__name__}")
    return encode(payload)


def check_at(at: object) -> float:
    """``at`` if it is a finite Unix time in seconds, else InvalidEvent naming the field."""
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise InvalidEvent(f"at: must be a finite Unix time in seconds, got {at!r}")
    return at


def event_frame(type: str, room: str, seq: int, payload_json: str, at: float) -> str:
    """The frame of one event as compact JSON text, around the payload's JSON text (used as is).

    ``type`` and ``at`` must have passed :func:`check_type` and :func:`check_at`: a dotted
    lower-case name needs no escaping, and a finite number's repr is its JSON.
    """
    return (f'{{"type":"{type}","room":{json.dumps(room)},"seq":{seq},'
            f'"payload":{payload_json},"at":{at!r}}}')


def control(frame_type: str, **fields: Any) -> str:
    """Encode a control frame (``joined``, ``lagged``, ``resync``, ``pong``, ``error``...)."""
    assert frame_type in CONTROL_TYPES, frame_type
    return encode({"type": frame_type, **fields})


@attrs.define(eq=False)
class RoomLog:
    """A room's sequence counter and bounded replay buffer.

    ``epoch`` names this incarnation of the room's numbering (a hub restart or an evicted room
    starts a new one): a resume that names another epoch must resync, whatever its seq.

    The buffer keeps at most ``capacity`` events, and each append drops those more than
    ``max_age`` seconds older than the new one — but never the last ``min_kept``: a resume is for
    a dropped connection, and without the age bound every busy ticket's room held its last
    ``capacity`` events for the ticket's whole life (found with ``bench/soak.py``: a few hundred open
    tickets' logs filling towards 256 events each, ~25 MB/h of RSS for the first hour), while a
    quiet ticket's whole short history (created, a message, accepted, a reply: README's walkthrough
    replays it with ``--since 0``) stays however slowly it was written.
    """

    room: str  # the name clients use, as it appears in frames
    epoch: str
    capacity: int
    max_age: float = math.inf
    min_kept: int = 0
    seq: int = 0
    last_at: float = 0.0  # the time of the last event (0: none yet)
    # The recent events' types, payload JSONs and times, in three deques kept aligned (each
    # append goes to all three): strings and floats only, which the garbage collector never
    # tracks. A (type, payload, at) tuple per event would be tracked until a collection first
    # walked it: thousands of young objects a second for every collection to walk once.
    _types: collections.deque[str] = attrs.field(init=False)
    _payloads: collections.deque[str] = attrs.field(init=False)
    _ats: collections.deque[float] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._types = collections.deque(maxlen=self.capacity)
        self._payloads = collections.deque(maxlen=self.capacity)
        self._ats = collections.deque(maxlen=self.capacity)

    def append(self, type: str, payload_json: str, at: float) -> int:
        """Record the next event; returns its seq."""
        self.seq += 1
        self.last_at = at
        self._types.append(type)
        self._payloads.append(payload_json)
        self._ats.append(at)
        horizon = at - self.max_age
        while len(self._ats) > self.min_kept and self._ats[0] < horizon:
            self._types.popleft()
            self._payloads.popleft()
            self._ats.popleft()
        return self.seq

    def since(self, seq: int) -> list[str] | None:
        """The frames of the events after ``seq``, oldest first; None when some of them are no
        longer kept (or ``seq`` is from the future, i.e. from another incarnation): the client
        must resync."""
        if seq > self.seq or seq < 0:
            return None
        missing = self.seq - seq
        kept = len(self._types)
        if missing > kept:
            return None
        recent = zip(*(itertools.islice(log, kept - missing, None) for log in (self._types, self._payloads, self._ats)))
        return [event_frame(type, self.room, seq + 1 + i, payload_json, at)
                for i, (type, payload_json, at) in enumerate(recent)]
