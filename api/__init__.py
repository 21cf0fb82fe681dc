"""zapvisor's edges: the REST app, the daemon and the CLI (DESIGN §7).

- :func:`create_app` builds the Quart-Trio app around a running node;
  :func:`serve_api` serves it with Hypercorn (the daemon and the tests use it).
- :class:`Authority` verifies the admin token and agent JWTs (HS256) and issues
  JWTs; :class:`Principal` is the authenticated caller. The websocket uses them too.
- :func:`tune_gc` sets up the garbage collector as the daemon runs it (the benchmarks too).
- :class:`ApiError` and its subclasses are the JSON errors
  ``{"error": {"code", "message", "field"?}}``.
"""

from ._app import create_app, set_websocket_clients
from ._auth import ALGORITHM, ROLES, Authority, Principal
from ._gc import tune_gc
from ._errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable, error_body
from ._server import serve_api

__all__ = [
    "ALGORITHM",
    "ROLES",
    "ApiError",
    "Authority",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Principal",
    "Unauthorized",
    "Unavailable",
    "create_app",
    "error_body",
    "serve_api",
    "set_websocket_clients",
    "tune_gc",
]
