"""Input validation: every check names the field it refuses (issue 6 §1, DESIGN §7).

Handlers read their input only through these helpers, before doing anything, so a
bad request is refused with 400 and nothing is half-written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from quart import request

from ._errors import BadRequest

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Tenant and session ids: they appear in actor paths and URLs, so no slashes, no spaces, bounded."""
_ID = re.compile(ID_PATTERN)

PHONE_PATTERN = r"^\+?[0-9]{8,15}$"
"""E.164 without separators: what WhatsApp's pairing-code request takes."""
_PHONE = re.compile(PHONE_PATTERN)

MAX_TEXT = 4096
"""Longest name/label accepted: enough for any display name, small enough to bound a row."""

MAX_LIMIT = 1000
"""Largest page a list endpoint returns (the store refuses bigger ones too)."""


async def json_object() -> dict:
    """The request body as a JSON object (UTF-8). Raises BadRequest (field ``body``)."""
    try:
        body = json.loads((await request.get_data(as_text=False)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object (UTF-8)", "body")
    return body


async def optional_json_object() -> dict:
    """The body as a JSON object, or ``{}`` when there is none."""
    if not (await request.get_data()):
        return {}
    return await json_object()


def text(body: dict, name: str, *, required: bool = True, default: str | None = None,
         max_length: int = MAX_TEXT) -> str | None:
    """A non-empty string field (surrounding whitespace kept out)."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", name)
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise BadRequest(f"{name} must be a non-empty string of at most {max_length} characters", name)
    return value.strip()


def identifier(value: Any, name: str) -> str:
    """A tenant/session id (:data:`ID_PATTERN`)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise BadRequest(f"{name} must match {ID_PATTERN}", name)
    return value


def phone(value: Any, name: str = "phone") -> str:
    if not isinstance(value, str) or not _PHONE.match(value):
        raise BadRequest(f"{name} must be a phone number in international format (digits, optional +)", name)
    return value.lstrip("+")


def boolean(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", name)
    return value


def integer(value: Any, name: str, *, minimum: int = 0, maximum: int = 2**53) -> int:
    """An int within bounds; query strings are accepted as decimal text."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,16}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be an integer between {minimum} and {maximum}", name)
    return value


def number(value: Any, name: str, *, minimum: float = 0.0, maximum: float = 10**9) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadRequest(f"{name} must be a number", name) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be a number between {minimum} and {maximum}", name)
    return float(value)


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise BadRequest(f"{name} must be one of {', '.join(options)}", name)
    return value


def query_limit(default: int = 100) -> int:
    """``?limit=`` (1..MAX_LIMIT)."""
    return integer(request.args.get("limit", default), "limit", minimum=1, maximum=MAX_LIMIT)
