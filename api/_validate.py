"""Input validation at the edges: one declaration per request part, checked before anything is written.

Every REST body, query string, header set and websocket frame is declared once as a
pydantic v2 model (:class:`Body`, :class:`Query`); :mod:`api._routing` validates the
request against it before calling the handler, and :mod:`api._openapi` publishes the
same model's JSON Schema, so the two cannot disagree (DESIGN §10, issue 13).

Why pydantic v2 directly and not quart-schema (0.25, tried on a QuartTrio app: it runs there):
it reads bodies with ``request.get_json()``, the stdlib parser, so a 5,000-deep body answered
500 (RecursionError, Quart's HTML error page), and ``{"name": "\\ud800"}`` or a NUL reached the
handler (200) through a strict pydantic model; its errors have their own shape and it generates
its own OpenAPI document around its own decorators, while the endpoint registry here already
joins the route, its auth rule and its OpenAPI entry. What it would add on top of pydantic is
that glue; pydantic (strict mode, ``extra="forbid"``) gives the part worth a library: typed,
bounded validation with precise error locations, and the JSON Schema of the same declaration.

What every edge enforces, whatever the model:

- the raw text is UTF-8 and at most :data:`MAX_DEPTH` levels deep, checked *before*
  parsing (no RecursionError, whatever the nesting); bodies are capped by the app's
  ``MAX_CONTENT_LENGTH`` and frames by the websocket's ``MAX_FRAME``;
- no string anywhere (keys included) holds a lone surrogate or a NUL: neither can be
  stored (UTF-8 and PostgreSQL text refuse them) nor sent;
- strict types: ``"1"`` is not an integer, ``null`` is not a value of a typed field,
  unknown fields are refused by name; integers and strings are bounded.

Refusals are :class:`~api._errors.BadRequest` naming the field (dotted for nested
objects, ``media.kind``; list positions are in the message, not the field).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ._errors import BadRequest

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Tenant and session ids: they appear in actor paths and URLs, so no slashes, no spaces, bounded."""

PHONE_PATTERN = r"^\+?[0-9]{8,15}$"
"""E.164 without separators: what WhatsApp's pairing-code request takes."""

MAX_TEXT = 4096
"""Longest name/label/message text accepted: enough for any display name or chat message
(WhatsApp's own cap is 4096 characters), small enough to bound a row."""

MAX_LIMIT = 1000
"""Largest page a list endpoint returns (the store refuses bigger ones too)."""

MAX_ID = 2**63 - 1
"""Largest integer id (a signed 64-bit database key): a bigger one names nothing."""

MAX_KEY = 200
"""Longest idempotency key (REST header and websocket field alike): a UUID or a client's own
request id fits many times over."""

MAX_DEPTH = 32
"""Deepest JSON nesting accepted: the deepest request declared is 3 levels; the margin is for
clients, the bound keeps a parser's recursion and our walk far from any limit."""

_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[^\[\]{}]+')
"""Strings (whose brackets do not nest) and every character that is not a bracket."""
_BRACES = str.maketrans("{}", "[]")
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
"""The only ways valid UTF-8 JSON text can carry a surrogate or a NUL: ``\\uD8xx``-``\\uDFxx``
and ``\\u0000`` escapes (a raw control character is invalid JSON already)."""


class NotJson(BadRequest):
    """The text is not JSON at all (undecodable or unparsable), as opposed to JSON that breaks a rule."""


class Body(BaseModel):
    """Base of request bodies and websocket frames: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Query(BaseModel):
    """Base of query-string and header declarations: values arrive as text, so numbers are
    parsed from it (``?limit=5``); unknown query parameters are refused like unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def text(max_length: int = MAX_TEXT, pattern: str = r"\S", min_length: int = 1) -> Any:
    """A string of ``min_length``..``max_length`` characters with something besides whitespace;
    surrounding whitespace is stripped first. ``pattern`` (JSON Schema semantics: a match
    anywhere) narrows it."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length,
                                            pattern=pattern)]


Text = text()
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
Key = text(MAX_KEY)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]

Model = TypeVar("Model", bound=BaseModel)


def parse_json(raw: bytes | str, field: str = "body") -> Any:
    """Decode and parse JSON text within the edge's limits (UTF-8, :data:`MAX_DEPTH`, clean strings).

    Raises:
        NotJson: naming ``field`` for undecodable or unparsable text.
        BadRequest: naming ``field`` for too deep text, or the dotted path of a string (or key)
        holding a lone surrogate or a NUL.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJson(f"{field}: must be UTF-8 text", field) from None
    if _too_deep(raw):
        raise BadRequest(f"{field}: JSON nested deeper than {MAX_DEPTH} levels", field)
    try:
        value = json.loads(raw)
    except ValueError:
        raise NotJson(f"{field}: not valid JSON", field) from None
    if _SUSPECT_ESCAPE.search(raw):
        check_strings(value, field)
    return value


def _too_deep(raw: str) -> bool:
    """True when JSON text nests deeper than :data:`MAX_DEPTH`, found in C-speed passes (no recursion,
    no per-character Python loop): strings and everything but brackets are dropped, braces become
    brackets, then each pass removes the innermost ``[]`` pairs — one level — so text of depth d is
    gone after d passes."""
    if raw.count("[") + raw.count("{") <= MAX_DEPTH:
        return False  # the usual body: too few brackets to nest that deep
    brackets = _BRACKETS.sub("", raw).translate(_BRACES)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "")
    return "[]" in brackets


def check_strings(value: Any, field: str = "body") -> None:
    """Refuse any string (or object key) in ``value`` holding a lone surrogate or a NUL.

    Raises:
        BadRequest: naming the dotted path of the first one found (``field`` for the root).
    """
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            _check_string(item, path or field)
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = _join(path, key)
                _check_string(key, name)
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((path, inner) for inner in item)


def _check_string(value: str, field: str) -> None:
    if "\x00" in value:
        raise BadRequest(f"{safe(field)}: NUL characters are not accepted", safe(field))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{safe(field)}: not valid Unicode (a lone surrogate)", safe(field)) from None


def _join(path: str | None, key: str) -> str:
    return key if path is None else f"{path}.{key}"


def safe(name: str) -> str:
    """``name`` fit for an error body: lone surrogates and NULs shown as escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def validate(model: type[Model], data: Any, field: str = "body") -> Model:
    """``data`` (parsed JSON, a query dict...) as ``model``.

    Raises:
        BadRequest: naming the first field at fault (``field`` when the whole value is).
    """
    check_strings(data, field)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _refusal(model, error.errors(include_url=False, include_input=False)[0], field) from None


def _refusal(model: type[BaseModel], problem: dict, root: str) -> BadRequest:
    keys = [str(part) for part in problem["loc"] if isinstance(part, str)]
    positions = [part for part in problem["loc"] if isinstance(part, int)]
    name = safe(".".join(keys)) if keys else root
    where = f" (item {positions[-1]})" if positions else ""
    match problem["type"]:
        case "missing":
            message = f"{name} is required"
        case "extra_forbidden":
            known = ", ".join(f.alias or n for n, f in model.model_fields.items()) if len(keys) == 1 else ""
            message = f"{name}: unknown field" + (f" (known: {known})" if known else "")
        case "model_type" | "model_attributes_type" | "dict_type" if not keys:
            message = f"{root}: must be a JSON object"
        case _:
            message = f"{name}{where}: {problem['msg']}"
    return BadRequest(message, name)


def has_required(model: type[BaseModel]) -> bool:
    """True when ``model`` has a field that must be given (an empty body cannot satisfy it)."""
    return any(f.is_required() for f in model.model_fields.values())
