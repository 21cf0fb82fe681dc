"""A tenant's webhook subscriptions (list, create, get, delete) and its deliveries: list by state,
replay a dead letter. Deliveries themselves are ``actors.webhooks``' job (``node.webhooks``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from quart import Blueprint

from actors.store import Conflict as StoreConflict
from actors.store import JobStatus, Queue
from actors.webhooks import EVENTS, DeliveryNotFound, UnsafeTarget

from ._audit import audited
from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound
from ._routing import Auth, endpoint, path_param, state
from ._tenants import tenant_or_404
from ._validate import Body, Id, Limit, Query, text

bp = Blueprint("webhooks", __name__)

path_param("webhook_id", Id)
path_param("delivery_id", Id)

EVENT_PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.([a-z0-9_]+|\*))+)$"
"""Event names are dotted (``connection.update``, ``ticket.*``), or ``*`` for all."""

MAX_EVENTS = 64
MAX_URL = 2048
"""Longest webhook URL: what browsers and proxies reliably carry."""


class WebhookBody(Body):
    url: Annotated[text(MAX_URL, pattern=r"^https?://[^\s/]+"), Field(
        description="http(s) URL of a public receiver (private, loopback, link-local and metadata addresses "
                    "are refused unless webhooks.allow_targets lists them)")]
    events: Annotated[list[text(100, pattern=EVENT_PATTERN)], Field(min_length=1, max_length=MAX_EVENTS)]
    secret: text(256) = None


STATES = tuple(status.value for status in JobStatus)


class DeliveriesQuery(Query):
    state: Literal[STATES] = None
    limit: Limit = 100


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
          auth=Auth.TENANT_ADMIN, body=WebhookBody, status=201)
async def create_webhook(who: Principal, tenant_id: str, body: WebhookBody):
    unknown = [e for e in body.events if not _known(e)]
    if unknown:
        raise BadRequest(f"unknown events {unknown}; known: {', '.join(EVENTS)} (or '*', 'ticket.*')", "events")
    try:
        state().node.webhooks.targets.check_url(body.url)
    except UnsafeTarget as refused:
        raise BadRequest(str(refused), "url") from None
    await tenant_or_404(tenant_id)
    webhook = await state().node.store.create_webhook(tenant_id, body.url, tuple(body.events), secret=body.secret)
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


@endpoint(bp, "GET", "/tenants/{tenant_id}/webhooks/deliveries", summary="The tenant's webhook deliveries "
          "(state=dead: the dead letters), oldest first", auth=Auth.TENANT_ADMIN, query=DeliveriesQuery)
async def list_deliveries(who: Principal, tenant_id: str, query: DeliveriesQuery):
    status = None if query.state is None else JobStatus(query.state)
    await tenant_or_404(tenant_id)
    return await state().node.store.list_jobs(Queue.WEBHOOKS, status, tenant_id=tenant_id, limit=query.limit)


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
