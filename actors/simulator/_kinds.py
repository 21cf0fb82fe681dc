"""Simulated contacts send every kind of message, and operate on earlier ones.

The simulator is WhatsApp's stand-in and never imports zapvisor's drivers: the kinds below are
its wire vocabulary, the same names as ``actors.drivers.MessageKind`` (pinned by
``tests/simulator/test_kinds.py``); the simulated driver checks each payload and skips (logs) a
message it cannot read, like WhatsApp's undecodable nodes.

:data:`SAMPLES` holds one realistic message per kind: its text
and payload as the wire carries them (``kind``, ``payload`` and ``target_id`` beside ``text`` in
a ``messages`` frame; see the package docstring). Media kinds also carry a generated attachment
(``MEDIA``: the wire media kind and mimetype). :func:`sample` draws one, pure in its ``rng``, for
the traffic generator (``TrafficSpec.kinds_share``); the control API sends any kind with any
payload (``send_message(kind=..., payload=..., target_id=...)``), checked by :func:`check`.
"""

from __future__ import annotations

import random
from typing import Any, Final

from ._errors import ControlError

OPERATIONS: Final = ("reaction", "edit", "revoke")
"""Kinds acting on an earlier message (``target_id``)."""
TARGETED: Final = (*OPERATIONS, "poll_vote")

VCARD: Final = (
    "BEGIN:VCARD\nVERSION:3.0\nN:Silva;Ana;;;\nFN:Ana Silva\n"
    "TEL;type=CELL;type=VOICE;waid=5521999990000:+55 21 99999-0000\nEND:VCARD"
)

SAMPLES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "text": ("hello", {}),
    "image": ("a photo", {"mimetype": "image/jpeg"}),
    "video": ("", {"mimetype": "video/mp4", "duration": 12}),
    "audio": ("", {"mimetype": "audio/mpeg", "duration": 95}),
    "ptt": ("", {"mimetype": "audio/ogg; codecs=opus", "duration": 7}),
    "document": ("the invoice", {"mimetype": "application/pdf", "file_name": "invoice.pdf", "pages": 2}),
    "sticker": ("", {"mimetype": "image/webp", "animated": False}),
    "location": ("", {"latitude": -22.9068, "longitude": -43.1729, "name": "Office",
                                "address": "Av. Rio Branco 1", "url": None}),
    "live_location": ("on my way", {"latitude": -22.9, "longitude": -43.2, "caption": "on my way",
                                              "sequence": 1}),
    "contacts": ("", {"contacts": [{"name": "Ana Silva", "vcard": VCARD, "phones": [
        {"number": "+55 21 99999-0000", "wa_id": "5521999990000", "type": "cell"}]}]}),
    "poll": ("", {"name": "Best time to call?", "options": ["morning", "afternoon"], "selectable": 1}),
    "button_reply": ("", {"id": "yes", "text": "Yes, please"}),
    "list_reply": ("", {"id": "plan-2", "title": "Plan 2", "description": "100 GB"}),
    "unknown": ("", {"type": "groupInviteMessage", "raw": '{"groupInviteMessage": {}}'}),
}
"""One message of each kind a contact sends without a target (text, payload)."""

MEDIA: Final[dict[str, tuple[str, str]]] = {
    "image": ("image", "image/jpeg"), "video": ("video", "video/mp4"),
    "audio": ("audio", "audio/mpeg"), "ptt": ("audio", "audio/ogg"),
    "document": ("document", "application/pdf"), "sticker": ("sticker", "image/webp"),
}
"""The attachment of each media kind: the wire media kind and mimetype."""

_DRAWN: Final = tuple(kind for kind in SAMPLES if kind != "text")

KINDS: Final = (*SAMPLES, "poll_vote", *OPERATIONS)
"""Every kind a simulated contact may send."""


def check(kind: str, payload: dict[str, Any] | None, target_id: str | None) -> None:
    """Raise ControlError for an unknown kind, a payload that is no JSON object, or an operation
    or a vote without ``target_id``."""
    if kind not in KINDS:
        raise ControlError(f"kind must be one of {KINDS}, got {kind!r}")
    if payload is not None and not isinstance(payload, dict):
        raise ControlError(f"payload must be a JSON object, got {type(payload).__name__}")
    if kind in TARGETED and not target_id:
        raise ControlError(f"a {kind} message needs target_id")


def sample(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """A kind other than text drawn with ``rng``, with its sample text and payload."""
    kind = _DRAWN[rng.randrange(len(_DRAWN))]
    text, payload = SAMPLES[kind]
    return kind, text, dict(payload)
