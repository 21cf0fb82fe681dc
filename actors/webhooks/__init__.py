"""Webhooks and admin notifications (issue 6 §3, seed 003).

Per-tenant subscriptions (URL, event names, secret) live in the store; each event becomes one
delivery row per subscribed webhook in the store's persistent queue (surviving restarts), POSTed
with an HMAC-SHA256 signature of the body (``X-Zapvisor-Signature: sha256=<hex>``), retried with
exponential backoff, then dead-lettered and replayable. Targets are public addresses only unless
``webhooks.allow_targets`` lists them (:class:`TargetPolicy`, checked at registration and on every
resolved address at delivery). Admin notifications carry a seed severity
(HIGH/MEDIUM/LOW). Run :class:`Webhooks` with ``nursery.start(webhooks.run, system)``.
"""

from ._errors import DeliveryNotFound, InvalidWebhookEvent, WebhookError
from ._events import EVENTS, Notification, Severity, check_event, status_events, status_notification
from ._http import HttpPoster, PostFailed, Poster
from ._targets import TargetPolicy, UnsafeTarget, not_public, target_policy
from ._service import POLL_INTERVAL, REQUEST_TIMEOUT, STALE_AFTER, Webhooks
from ._sign import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign, verify

__all__ = [
    "DELIVERY_HEADER",
    "EVENTS",
    "EVENT_HEADER",
    "POLL_INTERVAL",
    "REQUEST_TIMEOUT",
    "SIGNATURE_HEADER",
    "STALE_AFTER",
    "DeliveryNotFound",
    "HttpPoster",
    "InvalidWebhookEvent",
    "Notification",
    "PostFailed",
    "Poster",
    "Severity",
    "TargetPolicy",
    "UnsafeTarget",
    "WebhookError",
    "Webhooks",
    "check_event",
    "sign",
    "status_events",
    "not_public",
    "status_notification",
    "target_policy",
    "verify",
]
