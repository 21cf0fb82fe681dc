"""A tenant's webhook subscriptions: list, create, get, delete (deliveries: ``actors/webhooks``)."""

from __future__ import annotations

import re

from quart import Blueprint

from ._auth import Principal
from ._errors import BadRequest, NotFound
from ._routing import MAX_ID, Auth, endpoint, path_param, state
from ._tenants import tenant_or_404
from ._validate import json_object, text

bp = Blueprint("webhooks", __name__)

path_param("webhook_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})

EVENT_PATTERN = r"^(\*|[a-z]+(\.[a-z*]+)+)$"
"""Event names are dotted (``connection.update``, ``ticket.*``), or ``*`` for all."""
_EVENT = re.compile(EVENT_PATTERN)

MAX_EVENTS = 64

WEBHOOK_BODY = {
    "type": "object", "required": ["url", "events"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS,
                   "items": {"type": "string", "pattern": EVENT_PATTERN}},
        "secret": {"type": "string", "minLength": 1},
    },
}


def public(webhook) -> dict:
    """A subscription without its secret (it signs deliveries; it is never read back)."""
    return {"id": webhook.id, "tenant_id": webhook.tenant_id, "url": webhook.url, "events": list(webhook.events),
            "active": webhook.active, "has_secret": webhook.secret is not None}


async def _webhook_or_404(tenant_id: str, webhook_id: int):
    for webhook in await state().node.store.list_webhooks(tenant_id):
        if webhook.id == webhook_id:
            return webhook
    raise NotFound(f"no webhook {webhook_id}", "webhook_id")


@endpoint(bp, "GET", "/tenants/{tenant_id}/webhooks", summary="List the tenant's webhooks",
          auth=Auth.TENANT_ADMIN)
async def list_webhooks(who: Principal, tenant_id: str):
    await tenant_or_404(tenant_id)
    return [public(w) for w in await state().node.store.list_webhooks(tenant_id)]


@endpoint(bp, "POST", "/tenants/{tenant_id}/webhooks", summary="Subscribe a URL to events",
          auth=Auth.TENANT_ADMIN, body=WEBHOOK_BODY, status=201)
async def create_webhook(who: Principal, tenant_id: str):
    body = await json_object()
    url = text(body, "url", max_length=2048)
    if not re.match(r"^https?://[^\s/]+", url):
        raise BadRequest("url must be an http:// or https:// URL", "url")
    events = body.get("events")
    if (not isinstance(events, list) or not 0 < len(events) <= MAX_EVENTS
            or not all(isinstance(e, str) and _EVENT.match(e) for e in events)):
        raise BadRequest(f"events must be a list of 1 to {MAX_EVENTS} event names matching {EVENT_PATTERN}",
                         "events")
    secret = text(body, "secret", required=False, max_length=256)
    await tenant_or_404(tenant_id)
    webhook = await state().node.store.create_webhook(tenant_id, url, tuple(events), secret=secret)
    return public(webhook)


@endpoint(bp, "GET", "/tenants/{tenant_id}/webhooks/{webhook_id}", summary="Get a webhook",
          auth=Auth.TENANT_ADMIN)
async def get_webhook(who: Principal, tenant_id: str, webhook_id: int):
    return public(await _webhook_or_404(tenant_id, webhook_id))


@endpoint(bp, "DELETE", "/tenants/{tenant_id}/webhooks/{webhook_id}", summary="Delete a webhook",
          auth=Auth.TENANT_ADMIN)
async def delete_webhook(who: Principal, tenant_id: str, webhook_id: int):
    await _webhook_or_404(tenant_id, webhook_id)
    await state().node.store.delete_webhook(webhook_id)
    return None
