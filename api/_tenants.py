"""Tenants, their users and agent tokens (admin endpoints; a tenant's own token may read itself)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from quart import Blueprint

from actors.store import Conflict as StoreConflict

from ._audit import record
from ._auth import ROLES, Principal
from ._errors import Conflict, NotFound
from ._routing import Auth, endpoint, path_param, state
from ._validate import Body, Id, Identifier, Text, text

bp = Blueprint("tenants", __name__)

path_param("tenant_id", Identifier)
path_param("user_id", Id)

MAX_TOKEN_TTL = 30 * 86400.0
"""Longest agent token we sign: a month; longer-lived credentials belong in a real identity provider."""

MAX_EMAIL = 320
"""RFC 5321's longest address (64 + @ + 255)."""


class TenantBody(Body):
    id: Identifier
    name: Text


class UserBody(Body):
    email: text(MAX_EMAIL, min_length=3)
    name: Text
    role: Literal[ROLES] = "agent"


class TokenBody(Body):
    user_id: Id
    ttl: Annotated[float, Field(ge=1, le=MAX_TOKEN_TTL, description="seconds; default api.jwt_ttl")] = None


async def tenant_or_404(tenant_id: str):
    """The tenant; an unknown or deleted one (see ``DELETE /tenants/{id}``) is 404."""
    store = state().node.store
    tenant = await store.get_tenant(tenant_id)
    if tenant is None or await store.tenant_deleted_at(tenant_id) is not None:
        raise NotFound(f"no tenant {tenant_id!r}", "tenant_id")
    return tenant


@endpoint(bp, "POST", "/tenants", summary="Create (or rename) a tenant", auth=Auth.ADMIN, body=TenantBody,
          status=201)
async def create_tenant(who: Principal, body: TenantBody):
    store = state().node.store
    if await store.tenant_deleted_at(body.id) is not None:
        raise Conflict(f"tenant {body.id!r} is deleted and awaits its purge: choose another id, or purge it "
                       "first (DELETE /tenants/{id}?purge=now)", "id")
    return await store.upsert_tenant(body.id, body.name)


@endpoint(bp, "GET", "/tenants", summary="List tenants", auth=Auth.ADMIN)
async def list_tenants(who: Principal):
    store = state().node.store
    live = set(await store.live_tenant_ids())
    return [tenant for tenant in await store.list_tenants() if tenant.id in live]


@endpoint(bp, "GET", "/tenants/{tenant_id}", summary="Get a tenant", auth=Auth.TENANT)
async def get_tenant(who: Principal, tenant_id: str):
    return await tenant_or_404(tenant_id)


@endpoint(bp, "POST", "/tenants/{tenant_id}/users", summary="Create a user of the tenant", auth=Auth.ADMIN,
          body=UserBody, status=201)
async def create_user(who: Principal, tenant_id: str, body: UserBody):
    await tenant_or_404(tenant_id)
    try:
        return await state().node.store.create_user(tenant_id, body.email, body.name, body.role)
    except StoreConflict:
        raise Conflict(f"{body.email!r} is already a user of {tenant_id!r}", "email") from None


@endpoint(bp, "GET", "/tenants/{tenant_id}/users", summary="List the tenant's users", auth=Auth.TENANT_ADMIN)
async def list_users(who: Principal, tenant_id: str):
    await tenant_or_404(tenant_id)
    return await state().node.store.list_users(tenant_id)


@endpoint(bp, "POST", "/tenants/{tenant_id}/tokens", summary="Issue an agent JWT for a user of the tenant",
          auth=Auth.ADMIN, body=TokenBody, status=201)
async def issue_token(who: Principal, tenant_id: str, body: TokenBody):
    await tenant_or_404(tenant_id)
    user = await state().node.store.get_user(body.user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"no user {body.user_id} in tenant {tenant_id!r}", "user_id")
    token, expires = state().authority.issue(tenant_id, user.id, user.role, body.ttl)
    await record(who, "issue_token", f"/tenants/{tenant_id}/users/{user.id}", "ok", f"expires {expires:.0f}")
    return {"token": token, "expires_at": expires, "tenant": tenant_id, "user": user.id, "role": user.role}
