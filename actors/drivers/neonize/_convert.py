"""neonize events -> zapvisor's normalized driver events. Worker-side only: imports neonize.

Pure functions of a protobuf message (plus our own JID and the wall clock),
so every mapping decision is in one place:

* Units (checked against neonize's Go encoder, ``goneonize/utils/encoder.go``):
  ``MessageInfo.Timestamp`` is **milliseconds** (``UnixMilli``); receipt,
  presence and send timestamps are **seconds** (``Unix``);
  ``TemporaryBan.Expire`` is a **duration** in seconds (``Expire.Seconds()``),
  so its absolute end is ``now + Expire``.
* ``@lid`` JIDs are replaced by the phone-number alternative WhatsApp sends
  along (``SenderAlt`` / ``RecipientAlt``, a call's ``callCreatorAlt``) whenever
  there is one; :func:`lid_mappings` names each such pair (the worker emits it
  as a ``LidMapped`` event before the event itself). A LID without one stays a
  LID: neonize's lookup (``get_pn_from_lid``) is not called (see ``_host``).
* JIDs are rendered ``user@server`` without the device part: a contact's
  phone and its linked devices are one chat participant for zapvisor.
* Reason codes, as whatsmeow (``connectionevents.go``) and neonize's encoder
  (``goneonize/utils/encoder.go``) really deliver them:

  - whatsmeow handles 500/503 connect failures, 503 stream errors and 515
    ("restart required") itself: it reconnects, and the session sees at most a
    ``Disconnected`` without a code (converted to ``Disconnected(code=None)``).
  - 401/403/406 failures and the 401 ``device_removed`` stream error become
    ``LoggedOut`` with that reason (whatsmeow has already deleted the device);
    402 becomes ``TemporaryBan`` (its ``code`` attribute and ``expire`` seconds);
    405 becomes ``ClientOutdated``; the ``replaced`` conflict ``StreamReplaced``.
  - ``ConnectFailure`` is left for every other code: 400, 409, 415, 418, 501 and
    any code whatsmeow does not know. neonize's ``ConnectFailureReason`` enum is
    its own numbering (1..10) with values for 400, 409 and 501 only among them;
    the code is read from the raw ``<failure reason="...">`` node first, the
    enum only when the node lacks it.
  - **Events neonize 0.5.2 cannot encode.** For 415, 418 and unknown codes its
    encoder leaves ``ConnectFailure.Reason`` unset, and for a ban code outside
    its enum (101-104, 106) ``TemporaryBan.Code``; both fields are proto2
    *required*, so Go's ``proto.Marshal`` fails, neonize's event loop returns
    that error and the connection's Go call ends with it ("proto: required field
    neonize.ConnectFailure.Reason not set"). :func:`lost_ending` recognizes those
    errors: a refusal (code 400, the reason saying what was lost) and a ban
    without code or expiry (the session waits ``UNKNOWN_BAN_WAIT``).
  - 411 and 428 never arrive through neonize (a phone without multi-device
    ends a QR session with 408; a closed socket is ``Disconnected``).
  - Other stream error codes (``StreamError``) pass through with their code.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
from neonize.events import (
    CallOfferEv,
    HistorySyncEv,
    ChatPresenceEv,
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    OfflineSyncCompletedEv,
    PairStatusEv,
    PresenceEv,
    ReceiptEv,
    StreamErrorEv,
    StreamReplacedEv,
    TemporaryBanEv,
    UndecryptableMessageEv,
)
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from .._events import (
    CallOffer,
    ClientOutdated,
    Connected,
    Disconnected,
    Event,
    KeepaliveLost,
    KeepaliveRestored,
    LidMapped,
    LoggedOut,
    MediaKind,
    MediaRef,
    Message,
    OfflineSyncDone,
    PairSuccess,
    Presence,
    PresenceState,
    ReasonCode,
    Receipt,
    ReceiptKind,
    Replaced,
    TemporaryBan,
    Undecryptable,
)
from ._content import MEDIA_FIELDS, VoteDecrypter, content
from ._wire import b64encode

# neonize's ConnectFailureReason numbering -> WhatsApp's code (whatsmeow's constants). Only
# GENERIC, BAD_USER_AGENT and EXPERIMENTAL can reach ConnectFailure (see the module docstring);
# LoggedOut carries LOGGED_OUT, MAIN_DEVICE_GONE or UNKNOWN_LOGOUT.
FAILURE_CODES: Final[dict[int, int]] = {
    pb.GENERIC: 400,
    pb.LOGGED_OUT: ReasonCode.LOGGED_OUT,
    pb.TEMP_BANNED: ReasonCode.TEMPORARY_BAN,
    pb.MAIN_DEVICE_GONE: ReasonCode.FORBIDDEN,
    pb.UNKNOWN_LOGOUT: ReasonCode.BANNED,
    pb.CLIENT_OUTDATED: ReasonCode.CLIENT_OUTDATED,
    pb.BAD_USER_AGENT: 409,
    pb.INTERNAL_SERVER_ERROR: ReasonCode.BAD_SESSION,
    pb.EXPERIMENTAL: 501,
    pb.SERVICE_UNAVAILABLE: ReasonCode.UNAVAILABLE,
}

CONNECT_FAILURE_NAMES: Final[dict[int, str]] = {
    400: "generic failure",
    409: "client user agent was rejected",
    415: "not found",
    418: "client unknown",
    501: "experimental",
}
"""whatsmeow's names of the codes that reach ``ConnectFailure`` (the reason when the node has no message)."""

# neonize's TempBanReason numbering -> WhatsApp's ban code (whatsmeow's events.TempBanReason).
BAN_CODES: Final[dict[int, int]] = {
    pb.TemporaryBan.SEND_TO_TOO_MANY_PEOPLE: 101,
    pb.TemporaryBan.BLOCKED_BY_USERS: 102,
    pb.TemporaryBan.CREATED_TOO_MANY_GROUPS: 103,
    pb.TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE: 104,
    pb.TemporaryBan.BROADCAST_LIST: 106,
}

_RECEIPT_KINDS: Final[dict[int, ReceiptKind]] = {
    pb.Receipt.DELIVERED: ReceiptKind.DELIVERED,
    pb.Receipt.READ: ReceiptKind.READ,
    pb.Receipt.READ_SELF: ReceiptKind.READ,
    pb.Receipt.PLAYED: ReceiptKind.PLAYED,
    pb.Receipt.PLAYED_SELF: ReceiptKind.PLAYED,
}

MS_PER_S: Final = 1000.0


@attrs.frozen
class Refused:
    """The server refused the connection (``ConnectFailureEv``) with a WhatsApp ``code``.

    Not a normalized event: before the handshake it becomes the
    ``DriverConnectError`` of ``connect()``; after it, an ending ``Disconnected``.
    """

    code: int
    reason: str


def jid_str(jid: pb.JID) -> str:
    """``user@server`` (device and agent dropped); ``""`` for an empty JID."""
    if jid.IsEmpty or not (jid.User or jid.Server):
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


UNENCODABLE_REFUSAL_CODE: Final = 400
"""The code given to a refusal neonize could not pass on (415, 418 or a code whatsmeow
does not know): whatsmeow's "generic failure", so the session treats it as a refusal
by WhatsApp (reaction_default), not as WhatsApp being unreachable."""

_REQUIRED_NOT_SET: Final = "required field {} not set"  # protobuf-go's error (internal/errors.RequiredNotSet)


def lost_ending(error: str | None, *, now: float) -> Refused | TemporaryBan | None:
    """The ending event behind a Go call that returned ``error`` because neonize could not encode it.

    ``None`` for any other error (a failed dial, a closed stream). See the
    module docstring: the event's code and details are lost with it.
    """
    if not error:
        return None
    if _REQUIRED_NOT_SET.format(pb.ConnectFailure.DESCRIPTOR.fields_by_name["Reason"].full_name) in error:
        return Refused(
            code=UNENCODABLE_REFUSAL_CODE,
            reason="WhatsApp refused the connection with a code neonize 0.5.2 cannot pass on (415, 418 or unknown)",
        )
    if _REQUIRED_NOT_SET.format(pb.TemporaryBan.DESCRIPTOR.fields_by_name["Code"].full_name) in error:
        return TemporaryBan(expires_at=None, ban_code=None)
    return None


def device_jid_str(jid: pb.JID) -> str | None:
    """A linked device's full JID, ``user[.agent]:device@server``, as whatsmeow stores it; else ``None``.

    The form whatsmeow's ``JID.String`` writes into ``whatsmeow_device.jid`` and
    the only one ``GetDevice`` finds (device 0 is the phone itself, never a
    stored companion).
    """
    if jid.IsEmpty or not jid.User or not jid.Server or jid.Device == 0:
        return None
    agent = f".{jid.RawAgent}" if jid.RawAgent else ""
    return f"{jid.User}{agent}:{jid.Device}@{jid.Server}"


def _phone_jid(jid: pb.JID, alternative: pb.JID) -> str:
    """The phone-number form of ``jid``: its alternative when ``jid`` is an ``@lid`` alias."""
    if jid.Server == "lid" and jid_str(alternative):
        return jid_str(alternative)
    return jid_str(jid)


def _chat_jid(source: pb.MessageSource) -> str:
    """The chat's JID, resolved to a phone number when it is a one-to-one ``@lid`` chat."""
    chat = source.Chat
    if chat.Server != "lid":
        return jid_str(chat)
    if source.IsFromMe:
        return _phone_jid(chat, source.RecipientAlt)
    if chat.User == source.Sender.User:
        return _phone_jid(chat, source.SenderAlt)
    return jid_str(chat)


def _sender_jid(source: pb.MessageSource) -> str:
    return _phone_jid(source.Sender, source.SenderAlt)


def _media(attachment: tuple[str, Any] | None) -> MediaRef | None:
    """The attachment (its E2E field and sub-message) as a download reference."""
    if attachment is None:
        return None
    field, part = attachment
    kind, default_mime = MEDIA_FIELDS[field]
    # The ref is the media sub-message alone (thumbnail dropped: it can weigh
    # kilobytes and is not needed to download the file).
    only = E2EMessage()
    getattr(only, field).CopyFrom(part)
    if getattr(part, "JPEGThumbnail", b""):
        getattr(only, field).ClearField("JPEGThumbnail")
    return MediaRef(
        ref=b64encode(only.SerializeToString()),
        kind=kind,
        mimetype=part.mimetype or default_mime,
        size=part.fileLength if part.HasField("fileLength") else None,
        file_name=(part.fileName or None) if kind is MediaKind.DOCUMENT else None,
        sha256=part.fileSHA256.hex() if part.fileSHA256 else None,
    )


def _message(ev: pb.Message, decrypt_vote: VoteDecrypter | None = None) -> Message | None:
    """The normalized message (its kind and payload: :mod:`._content`); ``None`` for a protocol
    message that is no operation on a message."""
    info = ev.Info
    source = info.MessageSource
    view_once = ev.IsViewOnce or ev.IsViewOnceV2 or ev.IsViewOnceV2Extension
    found = content(ev.Message, view_once=view_once,
                    decrypt_vote=None if decrypt_vote is None else lambda: decrypt_vote(ev))
    if found is None:
        return None
    return Message(
        id=info.ID,
        chat_jid=_chat_jid(source),
        sender_jid=_sender_jid(source),
        from_me=source.IsFromMe,
        timestamp=info.Timestamp / MS_PER_S,
        text=found.text,
        media=_media(found.media),
        is_group=source.IsGroup,
        is_broadcast=source.Chat.Server == "broadcast",
        push_name=info.Pushname or None,
        quoted_id=found.quoted_id,
        kind=found.kind,
        payload=found.payload,
        target_id=found.target_id,
    )


def _receipt(ev: pb.Receipt) -> Receipt | None:
    kind = _RECEIPT_KINDS.get(ev.Type)
    if kind is None:  # retries, server errors, history-sync and peer receipts: not about delivery
        return None
    source = ev.MessageSource
    return Receipt(
        message_ids=tuple(ev.MessageIDs),
        chat_jid=_chat_jid(source),
        kind=kind,
        timestamp=float(ev.Timestamp),
        sender_jid=_sender_jid(source) if source.IsGroup else None,
    )


def _logged_out(ev: pb.LoggedOut) -> LoggedOut:
    name = pb.ConnectFailureReason.Name(ev.Reason) if ev.HasField("Reason") else "LOGGED_OUT"
    code = FAILURE_CODES.get(ev.Reason, ReasonCode.LOGGED_OUT)
    if code not in (ReasonCode.LOGGED_OUT, ReasonCode.FORBIDDEN, ReasonCode.BANNED):
        code = ReasonCode.LOGGED_OUT
    return LoggedOut(reason=name.lower() + (" (on connect)" if ev.OnConnect else ""), code=code)


def _node_attr(node: pb.Node, name: str) -> str | None:
    """An attribute of a raw XML node as text (whatsmeow decodes them as strings), or ``None``."""
    for attr in node.Attrs:
        if attr.name == name:
            which = attr.WhichOneof("Value")
            return None if which is None else str(getattr(attr, which))
    return None


def _refused(ev: pb.ConnectFailure) -> Refused:
    """The real code: the raw node's ``reason`` (neonize leaves its enum unset for 413/414/415/418)."""
    raw = _node_attr(ev.Raw, "reason") if ev.HasField("Raw") else None
    if raw is not None and raw.isdigit():
        code = int(raw)
    elif ev.HasField("Reason"):
        code = FAILURE_CODES.get(ev.Reason, 400)
    else:
        code = 400
    return Refused(code=code, reason=ev.Message or CONNECT_FAILURE_NAMES.get(code, f"connect failure {code}"))


def _stream_error(ev: pb.StreamError) -> Disconnected:
    return Disconnected(code=int(ev.Code) if ev.Code.isdigit() else None, reason=f"stream error {ev.Code}")


def _chat_presence(ev: pb.ChatPresence) -> Presence:
    if ev.State == pb.ChatPresence.COMPOSING:
        state = PresenceState.RECORDING if ev.Media == pb.ChatPresence.AUDIO else PresenceState.COMPOSING
    else:
        state = PresenceState.PAUSED
    return Presence(jid=_sender_jid(ev.MessageSource), state=state, chat_jid=_chat_jid(ev.MessageSource))


def _presence(ev: pb.Presence) -> Presence:
    return Presence(
        jid=jid_str(ev.From),
        state=PresenceState.UNAVAILABLE if ev.Unavailable else PresenceState.AVAILABLE,
        last_seen=float(ev.LastSeen) if ev.LastSeen > 0 else None,
    )


def _call_offer(ev: pb.CallOffer) -> CallOffer:
    meta = ev.basicCallMeta
    call_from = jid_str(meta.callCreator) or jid_str(getattr(meta, "from"))
    video = ev.HasField("data") and any(child.Tag == "video" for child in ev.data.Nodes)
    return CallOffer(
        call_id=meta.callID, caller=_phone_jid(meta.callCreator, meta.callCreatorAlt) or call_from,
        call_from=call_from, timestamp=float(meta.timestamp), is_video=video,
    )


def _identity_pairs(ev: object) -> list[tuple[pb.JID, pb.JID]]:
    """The (JID, alternate JID) pairs an event carries about its sender or caller."""
    match ev:
        case MessageEv() | UndecryptableMessageEv():
            source = ev.Info.MessageSource
        case ReceiptEv() | ChatPresenceEv():
            source = ev.MessageSource
        case CallOfferEv():
            return [(ev.basicCallMeta.callCreator, ev.basicCallMeta.callCreatorAlt)]
        case _:
            return []
    pairs = [(source.Sender, source.SenderAlt)]
    if source.IsFromMe and not source.IsGroup:
        pairs.append((source.Chat, source.RecipientAlt))
    return pairs


def lid_mappings(ev: object) -> list[LidMapped]:
    """Every LID ↔ phone JID pair WhatsApp named in ``ev`` (a LID with its alternate field)."""
    found = []
    for jid, alternative in _identity_pairs(ev):
        for lid, pn in ((jid, alternative), (alternative, jid)):
            if lid.Server == "lid" and pn.Server == "s.whatsapp.net" and jid_str(lid) and jid_str(pn):
                found.append(LidMapped(lid=jid_str(lid), pn=jid_str(pn)))
                break
    return found


def convert(
    ev: object, *, me: str | None, now: float, decrypt_vote: VoteDecrypter | None = None,
) -> Event | Refused | None:
    """The normalized form of one neonize event, or ``None`` for events zapvisor ignores.

    ``me`` is our own JID when known (neonize's ``Device`` event sets it), ``now``
    the wall clock in epoch seconds (for the ban's absolute expiry). Raises
    ``ValueError`` when the event lacks what the normalized type requires (e.g.
    a message without an id). ``decrypt_vote`` decrypts poll votes when given (it needs the
    live client: see :mod:`._content`).
    """
    match ev:
        case ConnectedEv():
            return Connected(jid=me)
        case DisconnectedEv():
            return Disconnected(code=None, reason="stream closed")
        case LoggedOutEv():
            return _logged_out(ev)
        case StreamReplacedEv():
            return Replaced()
        case TemporaryBanEv():
            return TemporaryBan(
                expires_at=now + ev.Expire if ev.Expire > 0 else None,
                ban_code=BAN_CODES.get(ev.Code) if ev.HasField("Code") else None,
            )
        case ConnectFailureEv():
            return _refused(ev)
        case ClientOutdatedEv():
            return ClientOutdated()
        case StreamErrorEv():
            return _stream_error(ev)
        case KeepAliveTimeoutEv():
            return KeepaliveLost(error_count=max(1, ev.ErrorCount))
        case KeepAliveRestoredEv():
            return KeepaliveRestored()
        case PairStatusEv():
            if ev.Status == pb.PairStatus.SUCCESS:
                return PairSuccess(jid=jid_str(ev.ID))
            return Disconnected(code=None, reason=f"pairing failed: {ev.Error or 'unknown error'}")
        case MessageEv():
            return _message(ev, decrypt_vote)
        case ReceiptEv():
            return _receipt(ev)
        case OfflineSyncCompletedEv():
            return OfflineSyncDone(count=ev.Count)
        case UndecryptableMessageEv():
            source = ev.Info.MessageSource
            return Undecryptable(
                id=ev.Info.ID,
                chat_jid=_chat_jid(source),
                sender_jid=_sender_jid(source),
                timestamp=ev.Info.Timestamp / MS_PER_S,
                is_unavailable=ev.IsUnavailable,
            )
        case ChatPresenceEv():
            return _chat_presence(ev)
        case PresenceEv():
            return _presence(ev)
        case CallOfferEv():
            return _call_offer(ev)
    return None


SUBSCRIBED: Final = (
    ConnectedEv,
    DisconnectedEv,
    LoggedOutEv,
    StreamReplacedEv,
    TemporaryBanEv,
    ConnectFailureEv,
    ClientOutdatedEv,
    StreamErrorEv,
    KeepAliveTimeoutEv,
    KeepAliveRestoredEv,
    PairStatusEv,
    MessageEv,
    ReceiptEv,
    OfflineSyncCompletedEv,
    UndecryptableMessageEv,
    ChatPresenceEv,
    PresenceEv,
    CallOfferEv,
    HistorySyncEv,  # converted by ``_history`` (one blob, many events)
)
"""The neonize event classes a worker registers callbacks for (Go only sends subscribed ones)."""
