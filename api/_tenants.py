"""Tenants, their users and agent tokens (admin endpoints; a tenant's own token may read itself)."""

from __future__ import annotations

from quart import Blueprint

from actors.store import Conflict as StoreConflict

from ._audit import record
from ._auth import ROLES, Principal
from ._errors import Conflict, NotFound
from ._routing import MAX_ID, Auth, endpoint, path_param, state
from ._validate import ID_PATTERN, choice, identifier, integer, json_object, number, text

bp = Blueprint("tenants", __name__)

path_param("tenant_id", {"type": "string", "pattern": ID_PATTERN})
path_param("user_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})

MAX_TOKEN_TTL = 30 * 86400.0
"""Longest agent token we sign: a month; longer-lived credentials belong in a real identity provider."""

TENANT_BODY = {
    "type": "object", "required": ["id", "name"],
    "properties": {"id": {"type": "string", "pattern": ID_PATTERN}, "name": {"type": "string", "minLength": 1}},
}
USER_BODY = {
    "type": "object", "required": ["email", "name"],
    "properties": {"email": {"type": "string", "minLength": 3}, "name": {"type": "string", "minLength": 1},
                   "role": {"type": "string", "enum": list(ROLES)}},
}
TOKEN_BODY = {
    "type": "object", "required": ["user_id"],
    "properties": {"user_id": {"type": "integer", "minimum": 1},
                   "ttl": {"type": "number", "minimum": 1, "maximum": MAX_TOKEN_TTL}},
}


async def tenant_or_404(tenant_id: str):
    tenant = await state().node.store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id!r}", "tenant_id")
    return tenant


@endpoint(bp, "POST", "/tenants", summary="Create (or rename) a tenant", auth=Auth.ADMIN, body=TENANT_BODY,
          status=201)
async def create_tenant(who: Principal):
    body = await json_object()
    tenant_id = identifier(body.get("id"), "id")
    name = text(body, "name")
    return await state().node.store.upsert_tenant(tenant_id, name)


@endpoint(bp, "GET", "/tenants", summary="List tenants", auth=Auth.ADMIN)
async def list_tenants(who: Principal):
    return await state().node.store.list_tenants()


@endpoint(bp, "GET", "/tenants/{tenant_id}", summary="Get a tenant", auth=Auth.TENANT)
async def get_tenant(who: Principal, tenant_id: str):
    return await tenant_or_404(tenant_id)


@endpoint(bp, "POST", "/tenants/{tenant_id}/users", summary="Create a user of the tenant", auth=Auth.ADMIN,
          body=USER_BODY, status=201)
async def create_user(who: Principal, tenant_id: str):
    body = await json_object()
    email, name = text(body, "email", max_length=320), text(body, "name")
    role = choice(body.get("role", "agent"), "role", ROLES)
    await tenant_or_404(tenant_id)
    try:
        return await state().node.store.create_user(tenant_id, email, name, role)
    except StoreConflict:
        raise Conflict(f"{email!r} is already a user of {tenant_id!r}", "email") from None


@endpoint(bp, "GET", "/tenants/{tenant_id}/users", summary="List the tenant's users", auth=Auth.TENANT_ADMIN)
async def list_users(who: Principal, tenant_id: str):
    await tenant_or_404(tenant_id)
    return await state().node.store.list_users(tenant_id)


@endpoint(bp, "POST", "/tenants/{tenant_id}/tokens", summary="Issue an agent JWT for a user of the tenant",
          auth=Auth.ADMIN, body=TOKEN_BODY, status=201)
async def issue_token(who: Principal, tenant_id: str):
    body = await json_object()
    user_id = integer(body.get("user_id"), "user_id", minimum=1)
    ttl = None if body.get("ttl") is None else number(body["ttl"], "ttl", minimum=1.0, maximum=MAX_TOKEN_TTL)
    await tenant_or_404(tenant_id)
    user = await state().node.store.get_user(user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"no user {user_id} in tenant {tenant_id!r}", "user_id")
    token, expires = state().authority.issue(tenant_id, user.id, user.role, ttl)
    await record(who, "issue_token", f"/tenants/{tenant_id}/users/{user.id}", "ok", f"expires {expires:.0f}")
    return {"token": token, "expires_at": expires, "tenant": tenant_id, "user": user.id, "role": user.role}
