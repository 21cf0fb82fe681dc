"""Pins the public face of ``actors.drivers`` and the rules of its event values."""

import subprocess
import sys

import attrs
import pytest

import actors.drivers as drivers

EXPECTED = {
    "ENDING_EVENTS", "ClientOutdated", "Connected", "Disconnected", "Driver", "DriverConnectError",
    "DriverError", "DriverFactory", "DriverStateError", "Event", "KeepaliveLost", "KeepaliveRestored",
    "LoggedOut", "MediaKind", "MediaNotFoundError", "MediaRef", "Message", "NeonizeDriver", "NotConnectedError",
    "OfflineSyncDone", "OutboundMedia", "OutboundOperation", "PairSuccess", "PairingCode", "Presence", "PresenceState",
    "ProbeTimeoutError", "Qr", "Quote", "ReasonCode", "Receipt", "ReceiptKind", "Replaced", "RequestError",
    "LidMapped", "CallOffer", "HistoryChat", "HistoryChunk",
    "RequestInterruptedError", "RequestTimeoutError", "SendResult", "SimulatedDriver", "SimulatedDriverConfig", "TemporaryBan", "Undecryptable",
    "MEDIA_KINDS", "MessageKind", "OPERATIONS", "PLACEHOLDER_TEXT", "parse_vcards", "summary",
}


def test_all_is_pinned():
    assert set(drivers.__all__) == EXPECTED
    for name in drivers.__all__:
        assert getattr(drivers, name) is not None


def test_importing_drivers_never_imports_neonize():
    code = "import sys, actors.drivers; from actors.drivers import *; print('neonize' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_neonize_driver_is_exported_lazily():
    from actors.drivers.neonize import NeonizeDriver

    assert drivers.NeonizeDriver is NeonizeDriver


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchDriver"):
        drivers.NoSuchDriver  # noqa: B018


def test_errors_share_one_root_and_resemble_stdlib():
    assert issubclass(drivers.DriverConnectError, ConnectionError)
    assert issubclass(drivers.NotConnectedError, ConnectionError)
    assert issubclass(drivers.ProbeTimeoutError, TimeoutError)
    assert issubclass(drivers.MediaNotFoundError, LookupError)
    assert issubclass(drivers.MediaNotFoundError, drivers.RequestError)
    for name in drivers.__all__:
        obj = getattr(drivers, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, drivers.DriverError)
    assert drivers.DriverConnectError("x", code=402).code == 402


def test_events_are_frozen_and_ending_events_carry_codes():
    event = drivers.Disconnected(code=428)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.code = 500  # type: ignore[misc]
    codes = {
        drivers.LoggedOut("x").code,
        drivers.TemporaryBan(expires_at=None).code,
        drivers.Replaced().code,
        drivers.ClientOutdated().code,
    }
    assert codes == {401, 402, 440, 405}
    for cls in drivers.ENDING_EVENTS:
        assert "code" in attrs.fields_dict(cls)


def test_bad_values_name_the_field():
    with pytest.raises(ValueError, match="Message.id"):
        drivers.Message(id="", chat_jid="c@s.whatsapp.net", sender_jid="s", from_me=False, timestamp=0.0)
    with pytest.raises(ValueError, match="MediaRef.size"):
        drivers.MediaRef(ref="r", kind=drivers.MediaKind.IMAGE, mimetype="image/jpeg", size=-1)


def test_receipt_ids_become_a_tuple():
    receipt = drivers.Receipt(["a", "b"], "c@s.whatsapp.net", drivers.ReceiptKind.READ, 1.0)
    assert receipt.message_ids == ("a", "b")
    assert hash(receipt)


def test_outbound_media_repr_hides_bytes():
    media = drivers.OutboundMedia(b"x" * 1000, drivers.MediaKind.DOCUMENT, "application/pdf")
    assert "1000 bytes" in repr(media)
