"""A tenant's webhook subscriptions (list, create, get, delete) and its deliveries: list by state,
replay a dead letter. Deliveries themselves are ``actors.webhooks``' job (``node.webhooks``)."""

from __future__ import annotations

import re

from quart import Blueprint, request

from actors.store import Conflict as StoreConflict
from actors.store import JobStatus, Queue
from actors.webhooks import EVENTS, DeliveryNotFound

from ._audit import audited
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound
from ._routing import MAX_ID, Auth, Param, endpoint, path_param, state
from ._tenants import tenant_or_404
from ._validate import choice, json_object, query_limit, text

bp = Blueprint("webhooks", __name__)

path_param("webhook_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
path_param("delivery_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})

EVENT_PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.([a-z0-9_]+|\*))+)$"
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


def _known(event: str) -> bool:
    """``*``, a known name, or a family wildcard (``ticket.*``) of known names."""
    if event == "*" or event in EVENTS:
        return True
    if event.endswith(".*"):
        family = event[:-1]
        return any(known.startswith(family) for known in EVENTS)
    return any(known.endswith(".*") and event.startswith(known[:-1]) for known in EVENTS)


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
    unknown = [e for e in events if not _known(e)]
    if unknown:
        raise BadRequest(f"unknown events {unknown}; known: {', '.join(EVENTS)} (or '*', 'ticket.*')", "events")
    secret = text(body, "secret", required=False, max_length=256)
    await tenant_or_404(tenant_id)
    webhook = await state().node.store.create_webhook(tenant_id, url, tuple(events), secret=secret)
    state().node.webhooks.subscriptions_changed(tenant_id)
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
    state().node.webhooks.subscriptions_changed(tenant_id)
    return None


STATES = tuple(status.value for status in JobStatus)


@endpoint(bp, "GET", "/tenants/{tenant_id}/webhooks/deliveries", summary="The tenant's webhook deliveries "
          "(state=dead: the dead letters), oldest first", auth=Auth.TENANT_ADMIN,
          query=(Param("state", {"type": "string", "enum": list(STATES)}),
                 Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})))
async def list_deliveries(who: Principal, tenant_id: str):
    status = request.args.get("state")
    status = None if status is None else JobStatus(choice(status, "state", STATES))
    await tenant_or_404(tenant_id)
    return await state().node.store.list_jobs(Queue.WEBHOOKS, status, tenant_id=tenant_id, limit=query_limit())


@endpoint(bp, "POST", "/tenants/{tenant_id}/webhooks/deliveries/{delivery_id}/replay",
          summary="Deliver a dead (or waiting) delivery again now, with fresh attempts", auth=Auth.TENANT_ADMIN)
async def replay_delivery(who: Principal, tenant_id: str, delivery_id: int):
    job = await state().node.store.get_job(Queue.WEBHOOKS, delivery_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"no delivery {delivery_id}", "delivery_id")

    async def replay():
        try:
            return await state().node.webhooks.replay(delivery_id)
        except DeliveryNotFound:
            raise NotFound(f"no delivery {delivery_id}", "delivery_id") from None
        except StoreConflict as error:
            raise Conflict(f"delivery {delivery_id} is running or done: {error}", "delivery_id") from None

    return await audited(who, "replay_delivery", f"/tenants/{tenant_id}/webhooks/deliveries/{delivery_id}",
                         replay())
