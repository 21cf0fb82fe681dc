"""The webhooks service's errors: one root, each also the stdlib error it resembles."""

from __future__ import annotations


class WebhookError(Exception):
    """Root of every error the webhooks service raises."""


class InvalidWebhookEvent(WebhookError, ValueError):
    """An event name or payload that cannot be queued (the message names the field)."""


class DeliveryNotFound(WebhookError, LookupError):
    """No webhook delivery with that id."""
