"""The daemon/worker pipe protocol: framing, and every normalized event across it."""

import pytest

from actors.drivers import (
    ClientOutdated,
    Connected,
    Disconnected,
    DriverConnectError,
    KeepaliveLost,
    KeepaliveRestored,
    LoggedOut,
    MediaKind,
    MediaNotFoundError,
    MediaRef,
    Message,
    NotConnectedError,
    OfflineSyncDone,
    PairingCode,
    PairSuccess,
    Presence,
    PresenceState,
    Qr,
    Receipt,
    ReceiptKind,
    Replaced,
    TemporaryBan,
    Undecryptable,
)
from actors.drivers.neonize import WorkerProtocolError
from actors.drivers.neonize._wire import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    decode_error,
    decode_event,
    encode_error,
    encode_event,
    encode_frame,
)

EVENTS = [
    Connected(jid="5511999990000@s.whatsapp.net"),
    Disconnected(code=428, reason="closed", local=False),
    LoggedOut(reason="logged_out", code=401, local=True),
    TemporaryBan(expires_at=1_700_003_600.0, ban_code=2),
    Replaced(),
    ClientOutdated(),
    KeepaliveLost(error_count=3),
    KeepaliveRestored(),
    Qr(code="2@abc", index=1, expires_at=1_700_000_060.0),
    PairingCode(code="ABCD1234", expires_at=None),
    PairSuccess(jid="5511999990000@s.whatsapp.net"),
    Message(
        id="M1",
        chat_jid="5511999990000@s.whatsapp.net",
        sender_jid="5511999990000@s.whatsapp.net",
        from_me=False,
        timestamp=1_700_000_000.123,
        text="hi",
        media=MediaRef(ref="b64", kind=MediaKind.DOCUMENT, mimetype="application/pdf", size=10, file_name="a.pdf"),
        push_name="Ana",
        quoted_id="Q1",
    ),
    Receipt(message_ids=("A", "B"), chat_jid="x@s.whatsapp.net", kind=ReceiptKind.READ, timestamp=1.0),
    OfflineSyncDone(count=7),
    Undecryptable(id="U1", chat_jid="c@g.us", sender_jid="s@s.whatsapp.net", timestamp=2.5, is_unavailable=True),
    Presence(jid="s@s.whatsapp.net", state=PresenceState.COMPOSING, chat_jid="s@s.whatsapp.net"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_the_pipe(event):
    frames = FrameDecoder().feed(encode_frame({"kind": "event", "event": encode_event(event)}))
    assert decode_event(frames[0]["event"]) == event


def test_frames_survive_any_chunking():
    stream = b"".join(encode_frame({"kind": "reply", "id": i, "result": {"text": "é" * i}}) for i in range(20))
    decoder = FrameDecoder()
    frames = []
    for start in range(0, len(stream), 7):
        frames += decoder.feed(stream[start : start + 7])
    assert [f["id"] for f in frames] == list(range(20))
    assert frames[5]["result"]["text"] == "é" * 5
    assert decoder.pending_bytes == 0


def test_oversized_or_garbled_frames_are_protocol_errors():
    with pytest.raises(WorkerProtocolError, match="announces"):
        FrameDecoder().feed((MAX_FRAME_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(WorkerProtocolError, match="not JSON"):
        FrameDecoder().feed((3).to_bytes(4, "big") + b"{{{")
    with pytest.raises(WorkerProtocolError, match="unknown event type"):
        decode_event({"type": "Nope"})
    with pytest.raises(WorkerProtocolError, match="bad Qr fields"):
        decode_event({"type": "Qr", "code": "", "index": 1, "expires_at": None})


def test_errors_keep_their_class_and_code():
    again = decode_error(encode_error(DriverConnectError("refused", code=503)))
    assert type(again) is DriverConnectError and again.code == 503 and str(again) == "refused"
    assert type(decode_error(encode_error(MediaNotFoundError("gone", code=404)))) is MediaNotFoundError
    assert type(decode_error(encode_error(NotConnectedError("no")))) is NotConnectedError
    assert type(decode_error(encode_error(ValueError("to must be a JID")))) is ValueError
    unknown = decode_error(encode_error(KeyError("x")))
    assert "KeyError" in str(unknown)
