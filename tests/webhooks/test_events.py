import hashlib
import hmac

import pytest

import actors.webhooks
from actors.webhooks import InvalidWebhookEvent, Severity, check_event, sign, status_events, status_notification, verify


def test_public_face_is_pinned():
    assert sorted(actors.webhooks.__all__) == sorted([
        "DELIVERY_HEADER", "EVENTS", "EVENT_HEADER", "POLL_INTERVAL", "REQUEST_TIMEOUT", "SIGNATURE_HEADER",
        "STALE_AFTER", "DeliveryNotFound", "HttpPoster", "InvalidWebhookEvent", "Notification", "PostFailed",
        "Poster", "Severity", "TargetPolicy", "UnsafeTarget", "WebhookError", "Webhooks", "check_event",
        "not_public", "sign", "status_events", "status_notification", "target_policy", "verify",
    ])
    for error in (actors.webhooks.InvalidWebhookEvent, actors.webhooks.DeliveryNotFound, actors.webhooks.PostFailed,
                  actors.webhooks.UnsafeTarget):
        assert issubclass(error, actors.webhooks.WebhookError)
    assert issubclass(actors.webhooks.InvalidWebhookEvent, ValueError)
    assert issubclass(actors.webhooks.DeliveryNotFound, LookupError)
    assert issubclass(actors.webhooks.PostFailed, ConnectionError)


def test_the_seed_event_names_are_all_there():
    assert set(actors.webhooks.EVENTS) >= {
        "connection.update", "qrcode.updated", "status.instance", "logout.instance", "remove.instance",
        "reconnect.failed", "no.connection", "message.created", "message.updated", "ticket.*",
    }


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"a":1}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign("k", body) == f"sha256={expected}"
    assert verify("k", body, f"sha256={expected}")
    assert not verify("k", body + b" ", f"sha256={expected}")
    assert not verify("k", body, None)


@pytest.mark.parametrize(
    ("status", "qr", "events"),
    [
        ("connected", False, ["connection.update"]),
        ("qr", True, ["connection.update", "qrcode.updated"]),
        ("logged_out", False, ["connection.update", "status.instance", "logout.instance"]),
        ("failed", False, ["connection.update", "status.instance", "reconnect.failed"]),
        ("disconnected", False, ["connection.update", "no.connection"]),
        ("banned", False, ["connection.update", "status.instance"]),
    ],
)
def test_status_changes_map_to_seed_events(status, qr, events):
    assert status_events(status, qr) == events


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("failed", ("RECONNECT_FAILED", Severity.HIGH)),
        ("banned", ("BANNED", Severity.HIGH)),
        ("logged_out", ("LOGOUT", Severity.HIGH)),
        ("disconnected", ("NO_CONNECTION", Severity.MEDIUM)),
        ("connected", None),
    ],
)
def test_severities(status, expected):
    assert status_notification(status) == expected


@pytest.mark.parametrize("bad", ["", "update", "Connection.update", None, "a..b"])
def test_bad_event_names_are_refused_naming_the_field(bad):
    with pytest.raises(InvalidWebhookEvent, match="event"):
        check_event(bad)
