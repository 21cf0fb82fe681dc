"""The data lifecycle over REST: tenants' retention, deleting (and purging) tenants, janitor runs.

* ``GET|PUT /tenants/{id}/retention`` - the tenant's retention overrides (days per kind; ``null``
  = the configured default, ``0`` = keep forever).
* ``DELETE /tenants/{id}`` - deletes the tenant: its sessions are deleted (logged out if connected,
  stopped), its actors stopped, and its data purged ``retention.purge_grace`` later by the janitor;
  ``?purge=now`` purges at once and answers what was removed. A deleted tenant is 404 everywhere;
  ``DELETE ...?purge=now`` again purges one still in its grace period.
* ``POST /lifecycle/run`` - run the janitor now (admin); answers its report, or 409 when another
  node holds the janitor's lease.

The session counterpart is ``DELETE /tenants/{t}/sessions/{s}?purge=now`` (:mod:`._sessions`).
"""

from __future__ import annotations

import enum
from typing import Annotated

import attrs
from pydantic import Field
from quart import Blueprint

from actors.lifecycle import RunNow, Skipped
from actors.node import DeleteSession
from actors.store import Retention, RetentionKind
from supervisor import ActorStopped, ChildNotFound

from ._audit import audited, record
from ._auth import Principal
from ._errors import Conflict, NotFound
from ._routing import Auth, endpoint, state
from ._tenants import tenant_or_404
from ._validate import Body, Query

bp = Blueprint("lifecycle", __name__)

MAX_DAYS = 36_500
"""Longest retention one may ask for (100 years): beyond that, 0 (forever) says it better."""

Days = Annotated[int | None, Field(ge=0, le=MAX_DAYS, description="days (0: keep forever; null: the default)")]

JANITOR_TIMEOUT = 3600.0
"""How long ``POST /lifecycle/run`` waits for the run (a first run over a large backlog is long)."""


class RetentionBody(Body):
    messages: Days = None
    media: Days = None
    closed_tickets: Days = None
    webhook_deliveries: Days = None
    audit: Days = None


class Purge(enum.StrEnum):
    """When a deleted session's or tenant's data goes: ``now`` (no grace period)."""

    NOW = "now"


class PurgeQuery(Query):
    purge: Annotated[Purge, Field(description="now: purge the data at once, no grace period")] = None


def effective(retention: Retention) -> dict:
    """The overrides and what applies (the override, else the configured default) per kind."""
    settings = state().node.settings.retention
    return {
        "overrides": attrs.asdict(retention),
        "effective": {kind.value: retention.get(kind) if retention.get(kind) is not None
                      else getattr(settings, f"{kind.value}_days") for kind in RetentionKind},
    }


@endpoint(bp, "GET", "/tenants/{tenant_id}/retention", summary="The tenant's retention (days per kind)",
          auth=Auth.TENANT)
async def get_retention(who: Principal, tenant_id: str):
    await tenant_or_404(tenant_id)
    return effective(await state().node.store.get_retention(tenant_id))


@endpoint(bp, "PUT", "/tenants/{tenant_id}/retention", summary="Set the tenant's retention overrides",
          auth=Auth.ADMIN, body=RetentionBody)
async def put_retention(who: Principal, tenant_id: str, body: RetentionBody):
    await tenant_or_404(tenant_id)
    retention = Retention(**body.model_dump())
    await state().node.store.set_retention(tenant_id, retention)
    await record(who, "set_retention", f"/tenants/{tenant_id}", "ok", str(attrs.asdict(retention)))
    return effective(retention)


@endpoint(bp, "DELETE", "/tenants/{tenant_id}", summary="Delete the tenant (its data purged after the grace "
          "period, or now with ?purge=now)", auth=Auth.ADMIN, query=PurgeQuery)
async def delete_tenant(who: Principal, tenant_id: str, query: PurgeQuery):
    node = state().node
    if await node.store.get_tenant(tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id!r}", "tenant_id")
    target = f"/tenants/{tenant_id}"
    if await node.store.tenant_deleted_at(tenant_id) is None:
        await audited(who, "delete_tenant", target, _delete_tenant(tenant_id))
    elif query.purge is None:
        raise NotFound(f"no tenant {tenant_id!r} (deleted; purge it with ?purge=now)", "tenant_id")
    if query.purge is None:
        return None
    report = await node.sweeper.purge_tenant(tenant_id)
    await record(who, "purge_tenant", "/tenants", "ok", f"{tenant_id}: {report.rows} rows, {report.files} files")
    return report


async def _delete_tenant(tenant_id: str) -> None:
    node = state().node
    for session in await node.store.list_sessions(tenant_id):
        if session.status != "deleted":
            await node.manager.ask(DeleteSession(session.id), timeout=65.0)
            state().history.forget(session.id)
    await node.store.mark_tenant_deleted(tenant_id)
    try:  # its ticket actors (sessions are gone already) and its subtree
        tenants = node.system.supervisor("/tenants")
        await tenants.terminate_child(tenant_id)
        await tenants.delete_child(tenant_id)
    except (ChildNotFound, ActorStopped):
        pass  # nothing of it ran on this node (or an operator keeps /tenants stopped)


@endpoint(bp, "POST", "/lifecycle/run", summary="Run the janitor now (retention sweep and due purges)",
          auth=Auth.ADMIN)
async def run_janitor(who: Principal):
    reply = await state().node.system.ref("/services/janitor").ask(RunNow(), timeout=JANITOR_TIMEOUT)
    if isinstance(reply, Skipped):
        await record(who, "run_janitor", "/services/janitor", "refused: conflict", reply.reason)
        raise Conflict(f"janitor run skipped: {reply.reason}", None)
    await record(who, "run_janitor", "/services/janitor", "ok", str(reply)[:500])
    return reply
