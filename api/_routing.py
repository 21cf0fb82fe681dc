"""Endpoints as data: one declaration gives the Quart route, its auth rule, its validation and its
OpenAPI entry.

Each area module declares its endpoints with :func:`endpoint`, naming pydantic models
(:mod:`api._validate`) for the body, the query string and the headers it reads; the
wrapper authenticates the caller, enforces tenant scoping (another tenant's resources
answer 404, never 403: their existence is not revealed), validates every part of the
request before the handler runs (so a refused request writes nothing) and serialises the
handler's return value. :data:`ENDPOINTS` is what ``api._openapi`` documents, from the
same models, so the spec cannot drift from the routes or from what they accept.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import Any, Awaitable, Callable, NoReturn

import attrs
from pydantic import BaseModel, TypeAdapter, ValidationError
from quart import Blueprint, Response, current_app, jsonify, request

from ._auth import Principal
from ._errors import BadRequest, Forbidden, NotFound
from ._state import ApiState
from ._validate import Body, Query, check_strings, has_required, parse_json, safe, validate


class Auth(enum.Enum):
    NONE = "none"  # health, docs, the dashboard
    ADMIN = "admin"  # the admin token only
    TENANT = "tenant"  # the admin token, or a JWT of the path's tenant
    TENANT_ADMIN = "tenant_admin"  # the admin token, or a JWT with role admin of the path's tenant


@attrs.frozen
class Endpoint:
    method: str
    path: str  # OpenAPI template, e.g. /tenants/{tenant_id}
    summary: str
    auth: Auth
    tag: str
    body: type[Body] | None
    query: type[Query] | None
    headers: type[Query] | None
    status: int
    produces: tuple[str, ...]
    path_params: tuple[str, ...]  # names, in template order (their types: PATH_PARAMS)


ENDPOINTS: list[Endpoint] = []
"""Every declared endpoint, in declaration order."""

PATH_PARAMS: dict[str, TypeAdapter] = {}
"""Path parameters' declared types by name (filled by the area modules via :func:`path_param`)."""

INTEGER_PATH_PARAMS: set[str] = set()
"""The declared path parameters that are integers (parsed from their segment's digits)."""


def path_param(name: str, kind: Any) -> None:
    """Declare the type of a path parameter used in templates as ``{name}``. Every parameter is
    routed as a string and checked here, so a value outside its type (``/tickets/abc``, an id past
    2^63) answers our 404 naming it for ``*_id`` parameters (it names nothing), else a 400 naming
    the parameter - never the framework's bare 404."""
    PATH_PARAMS[name] = TypeAdapter(kind)
    if PATH_PARAMS[name].json_schema().get("type") == "integer":
        INTEGER_PATH_PARAMS.add(name)


def path_schema(name: str) -> dict:
    """The JSON schema of a declared path parameter (a plain string when undeclared)."""
    adapter = PATH_PARAMS.get(name)
    return {"type": "string"} if adapter is None else adapter.json_schema()


class NoBody(Body):
    """What an operation without a body accepts when a client sends one anyway: ``{}``."""


def state() -> ApiState:
    """The app's :class:`ApiState` (the node, the authority...)."""
    return current_app.extensions["zapvisor"]


def endpoint(
    blueprint: Blueprint, method: str, path: str, *, summary: str, auth: Auth, body: type[Body] | None = None,
    query: type[Query] | None = None, headers: type[Query] | None = None, status: int = 200,
    produces: tuple[str, ...] = ("application/json",),
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register ``handler(who, **path_params[, body=, query=, headers=])`` for ``method path``.

    ``body``/``query``/``headers`` are the models the request is validated against; the
    handler receives the validated instances under those names (only the declared ones).
    The handler returns a JSON-able value (attrs instances and enums are converted),
    ``None`` (204), or a ready :class:`quart.Response`. Path parameters are validated
    against their declared types; integer ones arrive as ints.
    """
    names = re.findall(r"{(\w+)}", path)
    rule = path
    for name in names:
        rule = rule.replace(f"{{{name}}}", f"<string:{name}>")  # typed by _path_value, not the router

    def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(handler)
        async def view(**params: Any) -> Response:
            who = _authorize(auth, params.get("tenant_id"))
            params = {name: _path_value(name, value) for name, value in params.items()}
            parts: dict[str, Any] = {}
            arguments = validate(query or Query, _single(request.args), "query")  # none declared: none taken
            if query is not None:
                parts["query"] = arguments
            if headers is not None:
                present = {alias: request.headers[alias] for alias in _aliases(headers) if alias in request.headers}
                parts["headers"] = validate(headers, present, "headers")
            parsed = await _body(body)
            if body is not None:
                parts["body"] = parsed
            result = await handler(who, **params, **parts)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response("", status=204)
            response = jsonify(to_json(result))
            response.status_code = status
            return response

        blueprint.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
        ENDPOINTS.append(Endpoint(method, path, summary, auth, blueprint.name, body, query, headers, status,
                                  produces, tuple(names)))
        return handler

    return register


def _path_value(name: str, value: str) -> Any:
    """A path segment as its declared type (see :func:`path_param`)."""
    check_strings(value, name)
    adapter = PATH_PARAMS.get(name)
    if adapter is None:
        return value
    if name in INTEGER_PATH_PARAMS:
        if not (value.isascii() and value.isdigit()):
            _refuse_path_value(name, value, "must be a whole number")
        value = int(value)
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as error:
        _refuse_path_value(name, value, error.errors(include_url=False, include_input=False)[0]["msg"])


def _refuse_path_value(name: str, value: Any, problem: str) -> NoReturn:
    if name.endswith("_id"):
        raise NotFound(f"no {name.removesuffix('_id')} {safe(str(value))!r}", name)
    raise BadRequest(f"{name}: {problem}", name)


def _single(args: Any) -> dict[str, str]:
    """A query string as a dict; a parameter given twice is refused (which one would count?)."""
    values = {}
    for name in args:
        given = args.getlist(name)
        if len(given) > 1:
            raise BadRequest(f"{safe(name)}: given {len(given)} times", safe(name))
        values[name] = given[0]
    return values


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


async def _body(model: type[Body] | None) -> Body | None:
    """The request body validated as ``model`` (empty: the model's defaults, when it has no required
    field). An operation without a body accepts none, or ``{}``."""
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        if model is not None and has_required(model):
            raise BadRequest("the body must be a JSON object (UTF-8)", "body")
        return None if model is None else model()
    return validate(model or NoBody, parse_json(raw), "body")


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
