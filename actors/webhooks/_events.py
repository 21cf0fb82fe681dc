"""Which webhook events and admin notifications a session status change produces (seed 003).

Event names are the seed's (Evolution API's ``WAMonitoringService``): ``connection.update``,
``qrcode.updated``, ``status.instance``, ``logout.instance``, ``remove.instance``,
``reconnect.failed``, ``no.connection``; the flows add ``message.created``, ``message.updated``,
``message.send_unknown`` and ``ticket.*``.

Severities (seed 003 "Níveis de Severidade", with one deliberate change): HIGH when a human must act
now — the breaker opened (``reconnect.failed``), the number was banned, logged out, replaced by
another client, or the client is outdated; MEDIUM for trouble that may heal or needs a re-scan
(no connection, QR limit reached); LOW for housekeeping (an instance removed). The seed files a
logout as MEDIUM because there it was usually an operator's own action; here ``logged_out`` is
WhatsApp ending the pairing (401), which stops the helpdesk's number until someone re-pairs it.
"""

from __future__ import annotations

import enum
import re

import attrs

from ._errors import InvalidWebhookEvent

CONNECTION_UPDATE = "connection.update"
QRCODE_UPDATED = "qrcode.updated"
STATUS_INSTANCE = "status.instance"
LOGOUT_INSTANCE = "logout.instance"
REMOVE_INSTANCE = "remove.instance"
RECONNECT_FAILED = "reconnect.failed"
NO_CONNECTION = "no.connection"
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
#: A send handed to WhatsApp whose outcome is unknown (see :mod:`actors.outbox`): a human decides.
MESSAGE_SEND_UNKNOWN = "message.send_unknown"

#: An incoming call (announced, maybe declined: see ``actors.tickets._identity``).
CALL_RECEIVED = "call.received"
#: A customer's LID contact merged into their phone number's contact.
CONTACT_MERGED = "contact.merged"
#: A contact's availability or typing (only with the session's ``subscribe_presence``/``available``).
PRESENCE_UPDATED = "presence.updated"
#: A history sync chunk imported (chats, new messages, WhatsApp's progress).
HISTORY_PROGRESS = "history.progress"

#: Every event name a subscription may list (``ticket.*`` covers every ticket event, ``*`` all).
EVENTS = (
    CONNECTION_UPDATE, QRCODE_UPDATED, STATUS_INSTANCE, LOGOUT_INSTANCE, REMOVE_INSTANCE,
    RECONNECT_FAILED, NO_CONNECTION, MESSAGE_CREATED, MESSAGE_UPDATED, MESSAGE_SEND_UNKNOWN, "ticket.*",
    CALL_RECEIVED, CONTACT_MERGED, PRESENCE_UPDATED, HISTORY_PROGRESS,
)

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")


def check_event(name: object) -> str:
    """``name`` if it is a dotted event name, else InvalidWebhookEvent naming the field."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidWebhookEvent(f"event: must be a dotted lower-case name like 'message.created', got {name!r}")
    return name


class Severity(enum.StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@attrs.frozen
class Notification:
    """An admin notification (the seed's shape): what happened to which instance, how serious."""

    event_type: str  # RECONNECT_FAILED, LOGOUT, BANNED...
    severity: Severity
    tenant_id: str
    instance: str  # the session id
    reason: str
    at: float  # Unix time

    def to_dict(self) -> dict:
        return {
            "timestamp": self.at, "eventType": self.event_type, "severity": str(self.severity),
            "tenantId": self.tenant_id, "instanceName": self.instance, "reason": self.reason,
        }


#: Statuses that are the instance's lifecycle rather than its connection: ``status.instance``.
_LIFECYCLE = frozenset({"stopped", "queued", "starting", "logged_out", "banned", "replaced", "outdated", "failed",
                        "needs_auth"})

#: Status → the extra seed event it is (beyond connection.update / status.instance).
_SPECIFIC = {"logged_out": LOGOUT_INSTANCE, "failed": RECONNECT_FAILED, "disconnected": NO_CONNECTION}

#: Status → (notification type, severity) for the admins.
_NOTIFY = {
    "failed": ("RECONNECT_FAILED", Severity.HIGH),
    "banned": ("BANNED", Severity.HIGH),
    "logged_out": ("LOGOUT", Severity.HIGH),
    "replaced": ("REPLACED", Severity.HIGH),
    "outdated": ("OUTDATED", Severity.HIGH),
    "disconnected": ("NO_CONNECTION", Severity.MEDIUM),
    "needs_auth": ("NEEDS_AUTH", Severity.MEDIUM),
}

#: Events announced through ``emit`` that also notify the admins.
EVENT_NOTIFY = {REMOVE_INSTANCE: ("REMOVED", Severity.LOW)}


def status_events(status: str, has_qr: bool) -> list[str]:
    """The webhook events one status change produces, in order."""
    events = [CONNECTION_UPDATE]
    if status == "qr" and has_qr:
        events.append(QRCODE_UPDATED)
    if status in _LIFECYCLE:
        events.append(STATUS_INSTANCE)
    if status in _SPECIFIC:
        events.append(_SPECIFIC[status])
    return events


def status_notification(status: str) -> tuple[str, Severity] | None:
    """(type, severity) of the admin notification a status deserves, or None."""
    return _NOTIFY.get(status)
