"""Endpoints as data: one declaration gives the Quart route, its auth rule and its OpenAPI entry.

Each area module declares its endpoints with :func:`endpoint`; the wrapper
authenticates the caller, enforces tenant scoping (another tenant's resources
answer 404, never 403: their existence is not revealed) and serialises the
handler's return value. :data:`ENDPOINTS` is what ``api._openapi`` documents, so
the spec cannot drift from the routes.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import Any, Awaitable, Callable

import attrs
from quart import Blueprint, Response, current_app, jsonify, request

from ._auth import Principal
from ._errors import Forbidden, NotFound
from ._state import ApiState


class Auth(enum.Enum):
    NONE = "none"  # health, docs, the dashboard
    ADMIN = "admin"  # the admin token only
    TENANT = "tenant"  # the admin token, or a JWT of the path's tenant
    TENANT_ADMIN = "tenant_admin"  # the admin token, or a JWT with role admin of the path's tenant


@attrs.frozen
class Param:
    """A query (or header) parameter, for the OpenAPI document (handlers validate it themselves)."""

    name: str
    schema: dict
    description: str = ""
    required: bool = False
    location: str = "query"  # "query" | "header"


@attrs.frozen
class Endpoint:
    method: str
    path: str  # OpenAPI template, e.g. /tenants/{tenant_id}
    summary: str
    auth: Auth
    tag: str
    body: dict | None
    query: tuple[Param, ...]
    status: int
    produces: tuple[str, ...]
    path_params: dict[str, dict]


MAX_ID = 2**63 - 1
"""Largest integer id (a signed 64-bit database key): a bigger one in a URL names nothing."""

ENDPOINTS: list[Endpoint] = []
"""Every declared endpoint, in declaration order."""

PATH_PARAMS: dict[str, dict] = {}
"""JSON schemas of path parameters by name (filled by the area modules via :func:`path_param`)."""


def path_param(name: str, schema: dict) -> None:
    """Declare the schema of a path parameter used in templates as ``{name}``."""
    PATH_PARAMS[name] = schema


def state() -> ApiState:
    """The app's :class:`ApiState` (the node, the authority...)."""
    return current_app.extensions["zapvisor"]


def endpoint(
    blueprint: Blueprint, method: str, path: str, *, summary: str, auth: Auth, body: dict | None = None,
    query: tuple[Param, ...] = (), status: int = 200, produces: tuple[str, ...] = ("application/json",),
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register ``handler(who, **path_params)`` for ``method path``.

    The handler returns a JSON-able value (attrs instances and enums are converted),
    ``None`` (204), or a ready :class:`quart.Response`. Path parameters are strings
    except ``*_id`` ones declared as integers, which arrive as ints.
    """
    names = re.findall(r"{(\w+)}", path)
    rule = path
    for name in names:
        converter = "int" if PATH_PARAMS.get(name, {}).get("type") == "integer" else "string"
        rule = rule.replace(f"{{{name}}}", f"<{converter}:{name}>")

    def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(handler)
        async def view(**params: Any) -> Response:
            who = _authorize(auth, params.get("tenant_id"))
            for name, value in params.items():
                if isinstance(value, int) and value > MAX_ID:
                    raise NotFound(f"no {name.removesuffix('_id')} {value}", name)
            result = await handler(who, **params)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response("", status=204)
            response = jsonify(to_json(result))
            response.status_code = status
            return response

        blueprint.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
        ENDPOINTS.append(Endpoint(method, path, summary, auth, blueprint.name, body, query, status, produces,
                                  {n: PATH_PARAMS.get(n, {"type": "string"}) for n in names}))
        return handler

    return register


def _authorize(auth: Auth, tenant_id: str | None) -> Principal | None:
    if auth is Auth.NONE:
        return None
    who = state().authority.authenticate(request.headers.get("Authorization"))
    if auth is Auth.ADMIN:
        if not who.is_admin:
            raise Forbidden("this endpoint takes the admin token")
        return who
    if tenant_id is not None and not who.sees(tenant_id):
        # 404 whether or not the tenant exists: a token learns nothing about other tenants
        raise NotFound(f"token for tenant {who.tenant!r} cannot reach tenant {tenant_id!r}", "tenant_id")
    if auth is Auth.TENANT_ADMIN and not who.manages_tenant:
        raise Forbidden("this endpoint needs the admin token or a token with role admin")
    return who


def to_json(value: Any) -> Any:
    """attrs instances, enums, tuples and dicts of them as JSON-able values."""
    if attrs.has(type(value)):
        return {f.name: to_json(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [to_json(v) for v in value]
    return value
