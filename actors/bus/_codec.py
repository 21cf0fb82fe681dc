"""Argument checks, JSON coding, Redis-style glob matching and the fencing-token rule.

Both backends go through these helpers so that they accept and reject exactly the same input.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ._errors import BusValueError
from ._values import LockToken

#: Seconds a resource's last fencing token is remembered after its last acquire. Tokens are
#: floored by the wall clock (see ``next_fence``), so forgetting is safe unless the clock steps
#: back by more than this meanwhile; an hour covers NTP corrections while bounding memory.
FENCE_RETENTION = 3600.0


def check_name(field: str, value: object) -> str:
    """Return ``value`` if it is a non-empty str, else raise BusValueError naming ``field``."""
    if not isinstance(value, str) or not value:
        raise BusValueError(f"{field} must be a non-empty string, got {value!r}")
    return value


def check_ttl(field: str, value: object) -> float:
    """Return ``value`` as float seconds if it is a finite number > 0, else raise BusValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BusValueError(f"{field} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise BusValueError(f"{field} must be > 0 and finite, got {value!r}")
    return float(value)


def check_amount(field: str, value: object) -> int:
    """Return ``value`` if it is an int (not bool), else raise BusValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BusValueError(f"{field} must be an integer, got {value!r}")
    return value


def check_lock(value: object) -> LockToken:
    """Return ``value`` if it is a LockToken, else raise BusValueError."""
    if not isinstance(value, LockToken):
        raise BusValueError(f"lock must be a LockToken from acquire(), got {value!r}")
    return value


def ttl_ms(ttl: float) -> int:
    """Seconds → whole milliseconds for Redis PX, rounded up so a lock never lives shorter than asked."""
    return max(1, math.ceil(ttl * 1000))


#: Built once: ``json.dumps`` with options builds an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(field: str, value: Any) -> str:
    """Serialise ``value`` to compact JSON.

    Raises:
        BusValueError: the value is not JSON-serialisable (NaN/Infinity included: not JSON).
    """
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise BusValueError(f"{field} is not JSON-serialisable: {exc}") from None


def decode(text: str) -> Any:
    """Parse JSON text; raises ValueError (json.JSONDecodeError) when it is not JSON."""
    return json.loads(text)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a Redis glob (``*``, ``?``, ``[abc]``, ``[^a-z]``, ``\\x`` escapes) to a regex.

    The in-memory backend uses this so ``delete_pattern`` and pattern subscriptions match exactly
    the keys and channels Redis would match (``fnmatch`` differs: ``[!x]``, no escapes).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            close = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1)
            if close == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : close]
                negate = body.startswith("^")
                body = body[1:] if negate else body
                members = re.sub(r"([\\\]\[^])", r"\\\1", body)
                out.append(f"[{'^' if negate else ''}{members}]")
                i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def next_fence(last: int, wall_us: int) -> int:
    """The next fencing token: one more than the last one, but never below the wall clock in µs.

    A plain counter restarts at 1 when its store is lost (in-memory bus restarted with the daemon,
    Redis restarted without persistence), while the store remembers the highest token it has seen
    per resource and would then refuse every new holder. Flooring the counter with the wall clock
    (microseconds since the epoch, ~2^51 today, far inside BIGINT) keeps tokens increasing across
    such restarts as long as the clock does not step back by more than the downtime. The Redis
    backend applies the same rule inside its Lua script with the server's ``TIME``.
    """
    return max(last + 1, wall_us)
