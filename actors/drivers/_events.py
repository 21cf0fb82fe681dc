"""Normalized driver events: the only shapes a session actor ever sees.

Every driver (the real ``neonize`` driver, the ``simulated`` driver) translates
what its library or server says into these frozen values, so the session's
policy is written once. They form a closed set (:data:`Event`), dispatched with
``match``.

Units and clocks
----------------
* Every ``timestamp`` and every ``expires_at`` is **wall-clock epoch seconds as
  a float, as reported by the WhatsApp side** (never ``trio.current_time()``:
  these values cross processes and restarts). Drivers convert: neonize's
  ``MessageEv`` timestamps are milliseconds, its send/receipt timestamps are
  seconds - both arrive here as float seconds.
* ``expires_at`` of ``None`` means "unknown / no expiry announced".

JIDs
----
JIDs are plain strings (``"5511999990000@s.whatsapp.net"``,
``"120363000000000000@g.us"``, ``"status@broadcast"``). Drivers prefer the
phone-number JID when WhatsApp hands out an ``@lid`` alias.

Connection lifetime
-------------------
After a successful :meth:`Driver.connect`, a connection produces zero or more
events and then **exactly one ending event** (:data:`ENDING_EVENTS`):
:class:`Disconnected`, :class:`LoggedOut`, :class:`TemporaryBan`,
:class:`Replaced` or :class:`ClientOutdated`. Ending events carry the WhatsApp
reason ``code`` (see :class:`ReasonCode`) so the session's reason → reaction
table can be keyed on it, and a ``local`` flag that is true when zapvisor
itself ended the connection (``stop()`` / ``logout()``).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ._kinds import OPERATIONS, MessageKind, check_payload


class ReasonCode(enum.IntEnum):
    """WhatsApp's disconnect / connect-failure reason codes (Baileys' names).

    The session policy (DESIGN §4) maps each one to a reaction; drivers only
    report them. Unknown codes are passed through as plain ``int``.
    """

    LOGGED_OUT = 401
    TEMPORARY_BAN = 402
    FORBIDDEN = 403
    CLIENT_OUTDATED = 405
    BANNED = 406
    TIMED_OUT = 408
    MULTIDEVICE_MISMATCH = 411
    CONNECTION_CLOSED = 428
    REPLACED = 440
    BAD_SESSION = 500
    UNAVAILABLE = 503
    RESTART_REQUIRED = 515


class ReceiptKind(enum.Enum):
    """What a :class:`Receipt` confirms about our outbound messages."""

    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"


class MediaKind(enum.Enum):
    """The WhatsApp message type carrying a media attachment."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"


class PresenceState(enum.Enum):
    """Availability (``chat_jid is None``) or chat state (typing...) of a contact."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    COMPOSING = "composing"
    RECORDING = "recording"
    PAUSED = "paused"


def _non_empty(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be a non-empty string, got {value!r}")


def _optional_non_negative(instance: object, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class MediaRef:
    """Where to fetch an inbound attachment: pass it back to ``Driver.download_media``.

    ``ref`` is opaque and driver-specific (the simulator's media id; the neonize
    driver's encoded message). The other fields describe the file so the media
    job can decide before downloading (size limits, file extension).
    """

    ref: str = attrs.field(validator=_non_empty)
    kind: MediaKind
    mimetype: str = attrs.field(validator=_non_empty)
    size: int | None = attrs.field(default=None, validator=_optional_non_negative)
    file_name: str | None = None
    sha256: str | None = None  # hex digest, when the sender announced one


# -- connection lifecycle -------------------------------------------------------


@attrs.frozen
class Connected:
    """The account is logged in and the stream is open; ``jid`` is our own JID."""

    jid: str | None = None


@attrs.frozen
class Disconnected:
    """The connection ended without a verdict on the account (ending event).

    ``code`` is the WhatsApp reason code (408, 411, 428, 500, 503, 515...) or
    ``None`` when the transport just broke (socket closed, server gone).
    ``local`` is true when ``Driver.stop()`` ended it.
    """

    code: int | None
    reason: str = ""
    local: bool = False


@attrs.frozen
class LoggedOut:
    """The account's credentials are no longer valid (ending event).

    ``code`` is 401 (logged out from the phone), 403 (forbidden) or 406
    (banned / unknown logout). ``local`` is true when ``Driver.logout()`` did it.
    The driver has already discarded its stored credentials.
    """

    reason: str
    code: int = ReasonCode.LOGGED_OUT
    local: bool = False


@attrs.frozen
class TemporaryBan:
    """WhatsApp banned the account until ``expires_at`` (ending event, code 402).

    ``ban_code`` is WhatsApp's ban category (neonize ``TemporaryBanEv.Code``),
    ``None`` when unknown.
    """

    expires_at: float | None
    ban_code: int | None = None
    code: int = ReasonCode.TEMPORARY_BAN


@attrs.frozen
class Replaced:
    """Another client took over this account's stream (ending event, code 440). Never fight it."""

    code: int = ReasonCode.REPLACED


@attrs.frozen
class ClientOutdated:
    """WhatsApp refuses this client version (ending event, code 405); reconnecting will not help."""

    code: int = ReasonCode.CLIENT_OUTDATED


@attrs.frozen
class KeepaliveLost:
    """Keepalive pings are failing; the stream may be dead while still open."""

    error_count: int = 1


@attrs.frozen
class KeepaliveRestored:
    """Keepalive pings answer again after a :class:`KeepaliveLost`."""


# -- authentication -------------------------------------------------------------


@attrs.frozen
class Qr:
    """A QR code to show the user; ``index`` counts from 1 within one connection."""

    code: str = attrs.field(validator=_non_empty)
    index: int
    expires_at: float | None


@attrs.frozen
class PairingCode:
    """The 8-character code to type on the phone (answer to ``Driver.pair_phone``)."""

    code: str = attrs.field(validator=_non_empty)
    expires_at: float | None


@attrs.frozen
class PairSuccess:
    """The phone accepted the pairing; credentials are stored; :class:`Connected` follows."""

    jid: str = attrs.field(validator=_non_empty)


# -- traffic --------------------------------------------------------------------


@attrs.frozen
class Message:
    """One message in a chat of this account, inbound or sent from the phone (``from_me``).

    Acknowledge it with ``Driver.ack(id)`` **after** storing it: drivers that can
    defer WhatsApp's acknowledgement re-deliver unacknowledged messages after a
    reconnect. ``text`` is the body or the media caption (``""`` when none).

    ``kind`` and ``payload`` describe what the message is (see :mod:`._kinds`: the payload
    keys per kind). An operation (a reaction, an edit - whose new text is ``text`` - or a
    delete for everyone) names the message it acts on in ``target_id``.
    """

    id: str = attrs.field(validator=_non_empty)
    chat_jid: str = attrs.field(validator=_non_empty)
    sender_jid: str = attrs.field(validator=_non_empty)
    from_me: bool
    timestamp: float
    text: str = ""
    media: MediaRef | None = None
    is_group: bool = False
    is_broadcast: bool = False
    push_name: str | None = None
    quoted_id: str | None = None
    kind: MessageKind = attrs.field(default=MessageKind.TEXT, converter=MessageKind)
    payload: dict[str, Any] = attrs.field(factory=dict, hash=False)
    target_id: str | None = None

    def __attrs_post_init__(self) -> None:
        check_payload(self.kind, self.payload)
        if (self.kind in OPERATIONS or self.kind is MessageKind.POLL_VOTE) and not self.target_id:
            raise ValueError(f"a {self.kind} message needs the target_id of the message it acts on")


@attrs.frozen
class Receipt:
    """Delivery/read confirmation for some of our outbound messages in ``chat_jid``."""

    message_ids: tuple[str, ...] = attrs.field(converter=tuple)
    chat_jid: str
    kind: ReceiptKind
    timestamp: float
    sender_jid: str | None = None  # who read it (groups); None for one-to-one chats


@attrs.frozen
class OfflineSyncDone:
    """Everything queued while we were offline has been handed over (``count`` items)."""

    count: int = 0


@attrs.frozen
class Undecryptable:
    """A message arrived that could not be decrypted; its content is lost, its id is not."""

    id: str
    chat_jid: str
    sender_jid: str
    timestamp: float
    is_unavailable: bool = False

    def placeholder(self) -> Message:
        """The message that keeps this one's place in its chat until WhatsApp re-sends it (same id)."""
        return Message(
            id=self.id, chat_jid=self.chat_jid, sender_jid=self.sender_jid, from_me=False, timestamp=self.timestamp,
            is_group=self.chat_jid.endswith("@g.us"), is_broadcast=self.chat_jid.endswith("@broadcast"),
            kind=MessageKind.UNDECRYPTABLE, payload={"unavailable": self.is_unavailable},
        )


@attrs.frozen
class Presence:
    """A contact's availability (``chat_jid is None``) or chat state in ``chat_jid``.

    Published to subscribers, never stored unbounded.
    """

    jid: str
    state: PresenceState
    chat_jid: str | None = None
    last_seen: float | None = None


@attrs.frozen
class LidMapped:
    """WhatsApp revealed that the LID ``lid`` (``user@lid``) is the phone JID ``pn``.

    Drivers emit it when an event carries both forms (neonize's ``SenderAlt`` /
    ``RecipientAlt``), when a lookup in the library's LID store answers, or when the
    simulator reveals it. The session stores it and merges the customer's two contacts.
    """

    lid: str = attrs.field(validator=_non_empty)
    pn: str = attrs.field(validator=_non_empty)


@attrs.frozen
class CallOffer:
    """A contact is calling this account (``caller`` resolved to a phone JID when known).

    ``call_from`` is the caller exactly as WhatsApp named it (a LID, maybe): rejecting the
    call (``Driver.reject_call``) must name that form.
    """

    call_id: str = attrs.field(validator=_non_empty)
    caller: str = attrs.field(validator=_non_empty)
    call_from: str = attrs.field(validator=_non_empty)
    timestamp: float
    is_video: bool = False
    is_group: bool = False


@attrs.frozen
class HistoryChat:
    """One chat's past messages from WhatsApp's history sync (oldest first); ``name`` as the phone knows it."""

    jid: str = attrs.field(validator=_non_empty)
    messages: tuple[Message, ...] = attrs.field(converter=tuple)
    name: str = ""
    is_group: bool = False


@attrs.frozen
class HistoryChunk:
    """A part of the history sync WhatsApp sends after a first pairing (and on demand).

    Never journaled nor acknowledged: history is a bonus, a lost chunk is not a lost message.
    ``progress`` is WhatsApp's percentage when it announces one; ``sync_type`` its kind
    (``INITIAL_BOOTSTRAP``, ``RECENT``, ``FULL``...).
    """

    chats: tuple[HistoryChat, ...] = attrs.field(converter=tuple)
    progress: int | None = None
    sync_type: str = ""


Event = (
    Connected
    | Disconnected
    | LoggedOut
    | TemporaryBan
    | Replaced
    | ClientOutdated
    | KeepaliveLost
    | KeepaliveRestored
    | Qr
    | PairingCode
    | PairSuccess
    | Message
    | Receipt
    | OfflineSyncDone
    | Undecryptable
    | Presence
    | LidMapped
    | CallOffer
    | HistoryChunk
)
"""The closed set of events a driver emits."""

ENDING_EVENTS: tuple[type, ...] = (Disconnected, LoggedOut, TemporaryBan, Replaced, ClientOutdated)
"""Event types that end a connection; exactly one closes every connection."""


@attrs.frozen
class SendResult:
    """WhatsApp's answer to a send: the id **WhatsApp gave** the message and its server
    timestamp (epoch s). Receipts, quotes, edits and reactions refer to ``message_id``.

    ``duplicate`` is true when the driver still remembered the request's key and answered a
    repeat with the first result instead of sending again (see the protocol's rules on sends).
    """

    message_id: str
    timestamp: float
    duplicate: bool = False


@attrs.frozen
class OutboundMedia:
    """An attachment to send with ``Driver.send_media``."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    kind: MediaKind
    mimetype: str = attrs.field(validator=_non_empty)
    file_name: str | None = None
    caption: str = ""


@attrs.frozen
class Quote:
    """The message a sent text replies to (quotes): WhatsApp's id for it, whether we wrote it,
    and its text (shown in the quote bubble)."""

    wa_id: str = attrs.field(validator=_non_empty)
    from_me: bool = False
    text: str = ""


@attrs.frozen
class OutboundOperation:
    """A reaction, edit or delete for everyone to send with ``Driver.send_operation``.

    ``target_id`` is WhatsApp's id of the message acted on and ``target_from_me`` whether we
    wrote it (WhatsApp's message keys name the author). ``text`` is the new text of an edit or
    the emoji of a reaction (``""`` removes ours). Only our own messages can be edited or
    deleted for everyone.
    """

    kind: MessageKind = attrs.field(converter=MessageKind)
    target_id: str = attrs.field(validator=_non_empty)
    target_from_me: bool = True
    text: str = ""

    def __attrs_post_init__(self) -> None:
        if self.kind not in OPERATIONS:
            raise ValueError(f"OutboundOperation.kind must be one of {sorted(OPERATIONS)}, got {self.kind!r}")
        if self.kind in (MessageKind.EDIT, MessageKind.REVOKE) and not self.target_from_me:
            raise ValueError(f"only our own messages can take a {self.kind}")
        if self.kind is MessageKind.EDIT and not self.text:
            raise ValueError("an edit needs the new text")
