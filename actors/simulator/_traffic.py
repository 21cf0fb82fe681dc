"""Simulated contacts: how inbound messages are built, and the seeded traffic generator.

Contacts, groups and the broadcast list follow fixed JID conventions so tests
can predict them: contact ``i`` of any account is ``55219<i:08d>@s.whatsapp.net``,
group ``g`` is ``1203630000<g:08d>@g.us``, broadcasts come from
``status@broadcast``.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ._kinds import MEDIA, sample
from ._media import generated_ref

BROADCAST_JID = "status@broadcast"
# Generator granularity: messages of one tick are produced together, so a high
# rate does not cost one wake-up per message; 10 ms keeps the bursts short (10 messages
# at 1,000 msg/s) for latency measurements.
TICK = 0.01
MEDIA_KINDS = (("image", "image/jpeg", "photo.jpg"), ("audio", "audio/ogg", "voice.ogg"),
               ("document", "application/pdf", "file.pdf"), ("video", "video/mp4", "clip.mp4"))


def contact_jid(index: int) -> str:
    return f"55219{index:08d}@s.whatsapp.net"


def group_jid(index: int) -> str:
    return f"1203630000{index:08d}@g.us"


def new_message_id() -> str:
    """A WhatsApp-looking message id (uppercase hex, 20 chars)."""
    return "3EB0" + secrets.token_hex(8).upper()


def build_message(
    *,
    sender: str,
    timestamp: float,
    text: str = "",
    media: dict[str, Any] | None = None,
    chat: str | None = None,
    message_id: str | None = None,
    push_name: str | None = None,
    from_me: bool = False,
    quoted_id: str | None = None,
    kind: str = "text",
    payload: dict[str, Any] | None = None,
    target_id: str | None = None,
) -> dict[str, Any]:
    """The wire form of an inbound message (see the protocol in the package docstring).

    ``chat`` defaults to the sender (a one-to-one chat); a ``@g.us`` chat makes
    it a group message, ``status@broadcast`` a broadcast. ``kind``, ``payload`` and
    ``target_id``: see :mod:`._kinds`.
    """
    chat = chat or sender
    return {
        "id": message_id or new_message_id(),
        "chat": chat,
        "sender": sender,
        "from_me": from_me,
        "ts": timestamp,
        "text": text,
        "media": media,
        "is_group": chat.endswith("@g.us"),
        "is_broadcast": chat.endswith("@broadcast"),
        "push_name": push_name,
        "quoted_id": quoted_id,
        "kind": kind,
        "payload": payload or {},
        "target_id": target_id,
    }


def _share(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"TrafficSpec.{attribute.name} must be within 0..1, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"TrafficSpec.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class TrafficSpec:
    """What the traffic generator produces.

    ``rate`` messages per second in total, spread over ``sessions`` (``None``:
    every paired account, re-read each tick), each account talking with
    ``contacts`` contacts and ``groups`` groups. ``media_share`` of messages carry
    a generated attachment of ``media_size`` bytes; ``kinds_share`` are of a kind drawn
    from every other kind (location, contact card, poll, voice note...: :mod:`._kinds`), and
    ``operations_share`` react to, edit or delete the sender's previous message; ``group_share`` are group
    messages, ``broadcast_share`` come from ``status@broadcast``. ``count`` stops
    the generator after that many messages (``None``: until stopped). The same
    ``seed`` over the same accounts yields the same traffic.
    """

    rate: float = attrs.field(default=10.0, validator=_positive)
    contacts: int = attrs.field(default=20, validator=_positive)
    groups: int = attrs.field(default=3, validator=_positive)
    media_share: float = attrs.field(default=0.1, validator=_share)
    kinds_share: float = attrs.field(default=0.0, validator=_share)
    operations_share: float = attrs.field(default=0.0, validator=_share)
    group_share: float = attrs.field(default=0.2, validator=_share)
    broadcast_share: float = attrs.field(default=0.0, validator=_share)
    media_size: int = attrs.field(default=2048, validator=_positive)
    seed: int = 0
    count: int | None = attrs.field(default=None, validator=_positive)
    sessions: tuple[str, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))

    def __attrs_post_init__(self) -> None:
        if self.group_share + self.broadcast_share > 1.0:
            raise ValueError("TrafficSpec.group_share + broadcast_share must not exceed 1")


_OPERATIONS = (("reaction", "", {"emoji": "👍"}), ("reaction", "", {"emoji": ""}), ("edit", "edited text", {}),
               ("revoke", "", {}))


def _kind_of(spec: TrafficSpec, rng: random.Random, previous: str | None) -> dict[str, Any] | None:
    """The kind, text, payload (and target) of a message that is not plain text, or None."""
    roll = rng.random()
    if previous is not None and roll < spec.operations_share:
        kind, text, payload = _OPERATIONS[rng.randrange(len(_OPERATIONS))]
        return {"kind": kind, "text": text, "payload": payload, "target_id": previous}
    if rng.random() < spec.kinds_share:
        kind, text, payload = sample(rng)
        return {"kind": kind, "text": text, "payload": payload}
    return None


def generate_one(
    spec: TrafficSpec, rng: random.Random, timestamp: float, previous: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One message drawn from ``spec`` with ``rng`` (pure: same rng state, same message).

    ``previous`` maps a chat to its last message id: operations act on it (and it is updated).
    """
    previous = {} if previous is None else previous
    sender = contact_jid(rng.randrange(spec.contacts))
    roll = rng.random()
    if roll < spec.group_share:
        chat = group_jid(rng.randrange(spec.groups))
    elif roll < spec.group_share + spec.broadcast_share:
        chat = BROADCAST_JID
    else:
        chat = sender
    media = None
    if rng.random() < spec.media_share:
        kind, mimetype, file_name = MEDIA_KINDS[rng.randrange(len(MEDIA_KINDS))]
        media = {"ref": generated_ref(rng, spec.media_size), "kind": kind, "mimetype": mimetype,
                 "size": spec.media_size, "file_name": file_name, "sha256": None}
    message_id = "3EB0" + f"{rng.getrandbits(64):016X}"
    fields: dict[str, Any] = {"text": f"msg {message_id[-6:]}"}
    other = _kind_of(spec, rng, previous.get(chat)) if spec.kinds_share or spec.operations_share else None
    if other is not None:
        fields = other
        media = None
        if other["kind"] in MEDIA:
            kind, mimetype = MEDIA[other["kind"]]
            media = {"ref": generated_ref(rng, spec.media_size), "kind": kind, "mimetype": mimetype,
                     "size": spec.media_size, "file_name": other["payload"].get("file_name"), "sha256": None}
    if fields.get("target_id") is None:
        previous[chat] = message_id
    return build_message(sender=sender, timestamp=timestamp, chat=chat, media=media, message_id=message_id,
                         push_name=f"Contact {sender[5:13]}", **fields)


async def run_traffic(
    spec: TrafficSpec,
    candidates: Callable[[], Sequence[str]],
    enqueue: Callable[[str, dict[str, Any]], None],
    wall_clock: Callable[[], float],
) -> int:
    """Produce messages until ``spec.count`` is reached or cancelled; returns how many.

    ``candidates()`` lists the sessions to pick from (sorted, for determinism);
    ``enqueue(session, message)`` queues one message for one account.
    """
    rng = random.Random(spec.seed)
    previous: dict[str, str] = {}  # chat -> its last message id (the target of operations)
    produced = 0
    started = trio.current_time()
    while spec.count is None or produced < spec.count:
        await trio.sleep(TICK)
        sessions = spec.sessions if spec.sessions is not None else candidates()
        if not sessions:
            started = trio.current_time()  # the rate applies from when there is someone to talk to
            continue
        # owed from the elapsed time, not per tick: a late wake-up (a busy process) catches up
        owed = int(spec.rate * (trio.current_time() - started)) - produced
        if spec.count is not None:
            owed = min(owed, spec.count - produced)
        for _ in range(owed):
            session = sessions[rng.randrange(len(sessions))]
            enqueue(session, generate_one(spec, rng, wall_clock(), previous))
        produced += max(owed, 0)
    return produced
