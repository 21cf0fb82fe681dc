"""Field builders for the settings schema.

Each builder returns an `attrs.field` with three parts that belong together:

- a lenient *converter* that only normalises values it recognises (an int where a float is
  expected becomes a float, a string path becomes an absolute `Path`, a TOML array becomes a
  tuple) and leaves anything else untouched for the validator to reject;
- a *validator* that raises `ConfigError` naming the dotted key (``api.port``) and the problem;
- a `FieldKind` in the field's metadata, which tells the loader how to parse the same setting
  from an environment variable (always a string) and whether a layer merges into it entry by
  entry (tables) or replaces it (everything else).

The section classes declare ``SECTION`` (a class variable) so that a validator can name the
full key from the instance it is validating.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._errors import ConfigError

KIND = "zapvisor.kind"
"""Metadata key under which every settings field stores its `FieldKind`."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@attrs.frozen
class FieldKind:
    """How the loader treats one field: its env parser and whether layers merge into it."""

    parse_env: Callable[[str], Any]
    """Turns the text of a ``ZAPVISOR_*`` variable into a value; raises `ValueError` with a
    human message (without the key: the loader adds it)."""

    table: bool = False
    """True for mapping fields: each layer updates entries instead of replacing the table, and
    ``ZAPVISOR_<SECTION>__<KEY>__<ENTRY>`` sets a single entry."""


def key_of(instance: object, attribute: attrs.Attribute) -> str:
    """The dotted key (``section.field``) of ``attribute`` on a settings section instance."""
    return f"{type(instance).SECTION}.{attribute.name}"


def _fail(instance: object, attribute: attrs.Attribute, problem: str) -> ConfigError:
    return ConfigError(key_of(instance, attribute), problem)


# --- environment parsers -------------------------------------------------------------------


def _parse_text(text: str) -> str:
    return text


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"must be a boolean (true/false, yes/no, on/off, 1/0), got {text!r}")


def _parse_float_list(text: str) -> list[float]:
    """``"30,60"`` or the TOML array ``"[30, 60]"``."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError:
            raise ValueError(f"must be a list of numbers, got {text!r}") from None
        return [_parse_float(str(item)) for item in items]
    return [_parse_float(item) for item in stripped.split(",")]


def _parse_text_list(text: str) -> list[str]:
    """``"10.0.0.0/8,hooks.internal"`` or the TOML array ``'["10.0.0.0/8"]'``; empty: none."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError:
            raise ValueError(f"must be a list of strings, got {text!r}") from None
        return [str(item) for item in items]
    return [item.strip() for item in stripped.split(",") if item.strip()]


# --- normalising converters (lenient: unknown shapes pass through to the validator) ---------


def _as_float(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _as_path(value: Any) -> Any:
    if isinstance(value, Path) or (isinstance(value, str) and value):
        return Path(value).expanduser().absolute()
    return value


def _as_folded(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _as_pair(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_as_float(item) for item in value)
    return value


# --- checks shared by several kinds ---------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range_problem(value: float, ge: float | None, gt: float | None, le: float | None) -> str | None:
    if ge is not None and value < ge:
        return f"must be >= {ge}, got {value!r}"
    if gt is not None and value <= gt:
        return f"must be > {gt}, got {value!r}"
    if le is not None and value > le:
        return f"must be <= {le}, got {value!r}"
    return None


# --- field builders -------------------------------------------------------------------------


def integer(*, ge: int | None = None, le: int | None = None) -> Any:
    """A whole number within ``[ge, le]`` (booleans are refused: TOML ``true`` is not 1)."""

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(instance, attribute, f"must be an integer, got {value!r}")
        problem = _range_problem(value, ge, None, le)
        if problem:
            raise _fail(instance, attribute, problem)

    return attrs.field(validator=check, metadata={KIND: FieldKind(_parse_int)})


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A finite real number (seconds, ratios...) within the given bounds; ints are accepted."""

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not _is_number(value) or not math.isfinite(value):
            raise _fail(instance, attribute, f"must be a finite number, got {value!r}")
        problem = _range_problem(value, ge, gt, le)
        if problem:
            raise _fail(instance, attribute, problem)

    return attrs.field(
        converter=_as_float, validator=check, metadata={KIND: FieldKind(_parse_float)}
    )


def boolean() -> Any:
    """``true`` or ``false`` (in the environment also yes/no, on/off, 1/0)."""

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, bool):
            raise _fail(instance, attribute, f"must be true or false, got {value!r}")

    return attrs.field(validator=check, metadata={KIND: FieldKind(_parse_bool)})


def choice(*options: str) -> Any:
    """One of ``options`` (case-insensitive; stored lower-case)."""
    listed = ", ".join(repr(option) for option in options)

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value not in options:
            raise _fail(instance, attribute, f"must be one of {listed}, got {value!r}")

    return attrs.field(
        converter=_as_folded, validator=check, metadata={KIND: FieldKind(_parse_text)}
    )


def text(*, pattern: str | None = None, hint: str = "") -> Any:
    """A non-empty string, optionally matching ``pattern`` (explained to the user by ``hint``)."""
    compiled = re.compile(pattern) if pattern else None

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise _fail(instance, attribute, f"must be a non-empty string, got {value!r}")
        if compiled and not compiled.fullmatch(value):
            raise _fail(instance, attribute, f"must be {hint}, got {value!r}")

    return attrs.field(validator=check, metadata={KIND: FieldKind(_parse_text)})


def secret(*, min_length: int) -> Any:
    """An optional secret string of at least ``min_length`` characters, kept out of ``repr``.

    Unset is ``None``. The value never appears in the error message, only its length.
    """

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            raise _fail(instance, attribute, f"must be a string, got a {type(value).__name__}")
        if len(value) < min_length:
            raise _fail(
                instance,
                attribute,
                f"must be at least {min_length} characters long, got {len(value)}",
            )

    return attrs.field(
        default=None, repr=False, validator=check, metadata={KIND: FieldKind(_parse_text)}
    )


def url(*schemes: str, optional: bool, hide: bool = False) -> Any:
    """A URL with one of ``schemes`` and a host (or a path, for ``unix://``).

    ``optional`` fields default to ``None``; ``hide`` keeps the value (which may embed a
    password) out of ``repr`` and out of error messages.
    """
    listed = ", ".join(f"{scheme}://" for scheme in schemes)

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        shown = "<hidden>" if hide else repr(value)
        if not isinstance(value, str):
            raise _fail(instance, attribute, f"must be a URL string, got {shown}")
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise _fail(instance, attribute, f"must be a URL starting with {listed}, got {shown}")
        if not (parts.netloc or (parts.scheme == "unix" and parts.path)):
            raise _fail(instance, attribute, f"must name a host, got {shown}")

    extra = {"default": None} if optional else {}
    return attrs.field(
        repr=not hide, validator=check, metadata={KIND: FieldKind(_parse_text)}, **extra
    )


def path() -> Any:
    """A filesystem path; relative paths are made absolute against the working directory."""

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, Path):
            raise _fail(instance, attribute, f"must be a non-empty path, got {value!r}")

    return attrs.field(converter=_as_path, validator=check, metadata={KIND: FieldKind(_parse_text)})


_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$")


def networks_or_hosts() -> Any:
    """A list of CIDR networks (``10.0.0.0/8``, ``::1/128``, a bare address) or host names."""

    def convert(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
            raise _fail(instance, attribute, f"must be a list of CIDR networks or host names, got {value!r}")
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                if not _HOST_NAME.match(item.lower()):
                    raise _fail(instance, attribute, f"{item!r} is neither a CIDR network nor a host name") from None

    return attrs.field(converter=convert, validator=check, metadata={KIND: FieldKind(_parse_text_list)})


def words() -> Any:
    """A list of words (non-empty, no surrounding spaces; stored lower-case)."""

    def convert(value: Any) -> Any:
        return tuple(str(item).strip().casefold() for item in value) if isinstance(value, list) else value

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, tuple) or not all(isinstance(item, str) and item for item in value):
            raise _fail(instance, attribute, f"must be a list of non-empty words, got {value!r}")

    return attrs.field(converter=convert, validator=check, metadata={KIND: FieldKind(_parse_text_list)})


def interval(*, gt: float) -> Any:
    """A ``[low, high]`` pair of seconds with ``gt < low <= high`` (a random draw in between)."""

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not (isinstance(value, tuple) and len(value) == 2 and all(map(_is_number, value))):
            raise _fail(instance, attribute, f"must be a [low, high] pair of numbers, got {value!r}")
        low, high = value
        if low <= gt:
            raise _fail(instance, attribute, f"low end must be > {gt}, got {low!r}")
        if high < low:
            raise _fail(instance, attribute, f"high end must be >= low end, got {list(value)!r}")

    return attrs.field(
        converter=_as_pair, validator=check, metadata={KIND: FieldKind(_parse_float_list)}
    )


def enum_table(enum: type[StrEnum], *, ge: int, le: int) -> Any:
    """A table from integer codes in ``[ge, le]`` to members of ``enum`` (by value).

    TOML table keys are strings, so ``"401"`` is accepted for ``401``. The result is a
    read-only mapping; it is left out of the hash (equality still compares it).
    """
    members = ", ".join(repr(member.value) for member in enum)

    def convert(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        converted = {}
        for raw_code, raw_name in value.items():
            code = int(raw_code) if isinstance(raw_code, str) and raw_code.isdigit() else raw_code
            folded = _as_folded(raw_name)
            name = enum(folded) if folded in enum._value2member_map_ else raw_name
            converted[code] = name
        return types.MappingProxyType(converted)

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise _fail(instance, attribute, f"must be a table of code = name, got {value!r}")
        for code, name in value.items():
            entry = f"{key_of(instance, attribute)}.{code}"
            if not isinstance(code, int) or isinstance(code, bool) or not ge <= code <= le:
                raise ConfigError(entry, f"key must be an integer code from {ge} to {le}")
            if not isinstance(name, enum):
                raise ConfigError(entry, f"must be one of {members}, got {name!r}")

    return attrs.field(
        converter=convert,
        validator=check,
        hash=False,
        metadata={KIND: FieldKind(_parse_text, table=True)},
    )


def member(enum: type[StrEnum]) -> Any:
    """One member of ``enum``, given by its value (case-insensitive)."""
    members = ", ".join(repr(item.value) for item in enum)

    def convert(value: Any) -> Any:
        folded = _as_folded(value)
        return enum(folded) if folded in enum._value2member_map_ else value

    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, enum):
            raise _fail(instance, attribute, f"must be one of {members}, got {value!r}")

    return attrs.field(converter=convert, validator=check, metadata={KIND: FieldKind(_parse_text)})

