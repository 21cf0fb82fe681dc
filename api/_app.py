"""The Quart-Trio app: blueprints per area, JSON errors everywhere, the dashboard at ``/``.

:func:`create_app` only builds the app around a running :class:`~actors.node.Node`;
it starts nothing (DESIGN §8: actors never live in Quart's ``app.nursery``).
:func:`api._server.serve_api` serves it with Hypercorn in the daemon's nursery.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from actors.node import Node
from actors.store import Conflict as StoreConflict
from actors.store import InvalidInput, StoreClosed, StoreUnavailable
from actors.store import NotFound as StoreNotFound

from . import (
    _asyncapi, _cluster, _dashboard, _health, _metrics, _openapi, _queues, _session_options, _sessions, _supervision,
    _tenants, _tickets, _webhooks,
)
from ._auth import Authority
from ._errors import ApiError, error_body
from ._history import StatusHistory
from ._state import ApiState
from ._ws import register_websocket

log = logging.getLogger("zapvisor.api")

BLUEPRINTS = (_health.bp, _metrics.bp, _openapi.bp, _asyncapi.bp, _tenants.bp, _sessions.bp, _tickets.bp,
              _webhooks.bp, _supervision.bp, _queues.bp, _cluster.bp, _dashboard.bp, _session_options.bp)

MAX_BODY = 1024 * 1024
"""Largest request body: JSON commands are small; media travel by URL, not in the API's bodies."""

STATIC = Path(__file__).parent / "static"

_STORE_ERRORS = ((InvalidInput, 400, "invalid"), (StoreNotFound, 404, "not_found"), (StoreConflict, 409, "conflict"),
                 (StoreClosed, 503, "unavailable"), (StoreUnavailable, 503, "unavailable"))
"""Store errors that escape a handler, as HTTP statuses (handlers map the expected ones themselves)."""


def create_app(node: Node, *, authority: Authority | None = None,
               history: StatusHistory | None = None) -> QuartTrio:
    """The app for ``node`` (its tree must be running). ``authority`` defaults to the settings' secrets
    with the actor system's wall clock; ``history`` to a fresh one (someone must run it)."""
    api = node.settings.api
    if authority is None:
        authority = Authority(api.admin_token, api.jwt_secret, api.jwt_ttl,
                              clock=lambda: node.system.wall_time(trio.current_time()))
    app = QuartTrio(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["zapvisor"] = ApiState(node, authority, history or StatusHistory(node.board))
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    _install_error_handlers(app)
    register_websocket(app, node)
    return app


def set_websocket_clients(app: QuartTrio, count: Callable[[], int]) -> None:
    """Let ``/metrics`` report the websocket clients (called by the websocket module)."""
    app.extensions["zapvisor"].websocket_clients = count


def _json_error(status: int, code: str, message: str, field: str | None = None) -> Response:
    response = jsonify(error_body(code, message, field))
    response.status_code = status
    return response


def _install_error_handlers(app: QuartTrio) -> None:
    @app.before_request
    async def read_the_body() -> None:
        # Read every body before routing can refuse the request (405, 404...): a refused request
        # whose body stays unread leaves a kept-alive connection out of step, and the client's
        # next request on it waits forever. Bodies are bounded by MAX_BODY.
        await request.get_data(as_text=False)

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return _json_error(error.status, error.code, error.message, error.field)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        response = _json_error(error.code or 500, code, error.description or error.name)
        valid_methods = getattr(error, "valid_methods", None)
        if valid_methods:  # a 405 names what the resource does take (RFC 9110 §15.5.6)
            response.headers["Allow"] = ", ".join(sorted(valid_methods))
        return response

    for kind, status, code in _STORE_ERRORS:
        async def handler(error: Exception, status: int = status, code: str = code) -> Response:
            return _json_error(status, code, str(error), _field_of(error))

        app.register_error_handler(kind, handler)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("request failed: %s", type(error).__name__)
        return _json_error(500, "internal", f"internal error ({type(error).__name__}); see the daemon's log")


def _field_of(error: Exception) -> str | None:
    """The store names the field first in its messages (``"name: must be ..."``)."""
    head, sep, _ = str(error).partition(":")
    return head if sep and head.isidentifier() else None
