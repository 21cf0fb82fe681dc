"""Simulated contacts send every kind of message, and operate on earlier ones.

:data:`SAMPLES` holds one realistic message per kind (``actors.drivers.MessageKind``): its text
and payload as the wire carries them (``kind``, ``payload`` and ``target_id`` beside ``text`` in
a ``messages`` frame; see the package docstring). Media kinds also carry a generated attachment
(``MEDIA``: the wire media kind and mimetype). :func:`sample` draws one, pure in its ``rng``, for
the traffic generator (``TrafficSpec.kinds_share``); the control API sends any kind with any
payload (``send_message(kind=..., payload=..., target_id=...)``), checked by :func:`check`.
"""

from __future__ import annotations

import random
from typing import Any, Final

from actors.drivers._kinds import OPERATIONS, MessageKind, check_payload

from ._errors import ControlError

VCARD: Final = (
    "BEGIN:VCARD\nVERSION:3.0\nN:Silva;Ana;;;\nFN:Ana Silva\n"
    "TEL;type=CELL;type=VOICE;waid=5521999990000:+55 21 99999-0000\nEND:VCARD"
)

SAMPLES: Final[dict[MessageKind, tuple[str, dict[str, Any]]]] = {
    MessageKind.TEXT: ("hello", {}),
    MessageKind.IMAGE: ("a photo", {"mimetype": "image/jpeg"}),
    MessageKind.VIDEO: ("", {"mimetype": "video/mp4", "duration": 12}),
    MessageKind.AUDIO: ("", {"mimetype": "audio/mpeg", "duration": 95}),
    MessageKind.PTT: ("", {"mimetype": "audio/ogg; codecs=opus", "duration": 7}),
    MessageKind.DOCUMENT: ("the invoice", {"mimetype": "application/pdf", "file_name": "invoice.pdf", "pages": 2}),
    MessageKind.STICKER: ("", {"mimetype": "image/webp", "animated": False}),
    MessageKind.LOCATION: ("", {"latitude": -22.9068, "longitude": -43.1729, "name": "Office",
                                "address": "Av. Rio Branco 1", "url": None}),
    MessageKind.LIVE_LOCATION: ("on my way", {"latitude": -22.9, "longitude": -43.2, "caption": "on my way",
                                              "sequence": 1}),
    MessageKind.CONTACTS: ("", {"contacts": [{"name": "Ana Silva", "vcard": VCARD, "phones": [
        {"number": "+55 21 99999-0000", "wa_id": "5521999990000", "type": "cell"}]}]}),
    MessageKind.POLL: ("", {"name": "Best time to call?", "options": ["morning", "afternoon"], "selectable": 1}),
    MessageKind.BUTTON_REPLY: ("", {"id": "yes", "text": "Yes, please"}),
    MessageKind.LIST_REPLY: ("", {"id": "plan-2", "title": "Plan 2", "description": "100 GB"}),
    MessageKind.UNKNOWN: ("", {"type": "groupInviteMessage", "raw": '{"groupInviteMessage": {}}'}),
}
"""One message of each kind a contact sends without a target (text, payload)."""

MEDIA: Final[dict[MessageKind, tuple[str, str]]] = {
    MessageKind.IMAGE: ("image", "image/jpeg"), MessageKind.VIDEO: ("video", "video/mp4"),
    MessageKind.AUDIO: ("audio", "audio/mpeg"), MessageKind.PTT: ("audio", "audio/ogg"),
    MessageKind.DOCUMENT: ("document", "application/pdf"), MessageKind.STICKER: ("sticker", "image/webp"),
}
"""The attachment of each media kind: the wire media kind and mimetype."""

_DRAWN: Final = tuple(kind for kind in SAMPLES if kind is not MessageKind.TEXT)


def check(kind: str, payload: dict[str, Any] | None, target_id: str | None) -> MessageKind:
    """The kind, or ControlError naming what a driver would refuse (an unknown kind or payload
    key, an operation or a vote without ``target_id``)."""
    try:
        checked = MessageKind(kind)
        check_payload(checked, payload or {})
    except ValueError as exc:
        raise ControlError(f"kind/payload: {exc}") from exc
    if (checked in OPERATIONS or checked is MessageKind.POLL_VOTE) and not target_id:
        raise ControlError(f"a {checked} message needs target_id")
    return checked


def sample(rng: random.Random) -> tuple[MessageKind, str, dict[str, Any]]:
    """A kind other than text drawn with ``rng``, with its sample text and payload."""
    kind = _DRAWN[rng.randrange(len(_DRAWN))]
    text, payload = SAMPLES[kind]
    return kind, text, dict(payload)
