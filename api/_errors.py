"""The API's errors: each one is an HTTP status, a stable ``code`` and maybe the ``field`` at fault.

Every 4xx/5xx the app answers has the body ``{"error": {"code", "message", "field"?}}``
(issue 6 §1); :func:`error_body` builds it and ``api._app`` installs the handlers that
turn these exceptions (and Quart's own 404/405, and anything unexpected as a 500) into it.
"""

from __future__ import annotations


class ApiError(Exception):
    """Root of the API's errors. ``status`` is the HTTP status code."""

    status = 500
    code = "internal"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict:
        return error_body(self.code, self.message, self.field)


class BadRequest(ApiError, ValueError):
    """Malformed or invalid input; ``field`` names it."""

    status, code = 400, "invalid"


class Unauthorized(ApiError, PermissionError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError, PermissionError):
    status, code = 403, "forbidden"


class NotFound(ApiError, LookupError):
    """Unknown resource — also another tenant's resource (its existence is never revealed)."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unavailable(ApiError):
    """A component did not answer in time, or the node is shutting down."""

    status, code = 503, "unavailable"


def error_body(code: str, message: str, field: str | None = None) -> dict:
    """The JSON error envelope (``field`` only when one is at fault)."""
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}
