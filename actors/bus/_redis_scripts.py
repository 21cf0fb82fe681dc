"""Lua scripts that make the Redis lock operations atomic (one round trip, no interleaving).

A lock is the key ``<ns>:l:<resource>`` holding ``"<token>/<owner>"`` with a PX expiry; the
fence counter ``<ns>:f:<resource>`` survives the lock so tokens keep increasing. Release and
renew compare the whole stored value with the caller's, so a holder whose lock expired and was
re-granted can neither delete nor extend the new holder's lock (the seed's ticketLock bug).
"""

from __future__ import annotations

import hashlib

#: KEYS: lock, fence. ARGV: ttl ms, owner, fence retention ms.
#: Returns {token} on success, {0, current value} when the lock is held.
#: The token is INCR of the fence counter, floored by the server clock in µs (``next_fence``):
#: Redis restarted empty must not hand out tokens lower than ones a store has already seen.
#: string.format('%d') because Lua would print a 16-digit double in exponent notation.
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local token = redis.call('INCR', KEYS[2])
if token < floor then
  token = floor
  redis.call('SET', KEYS[2], string.format('%d', token), 'PX', ARGV[3])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('SET', KEYS[1], string.format('%d', token) .. '/' .. ARGV[2], 'PX', ARGV[1])
return {token}
"""

#: KEYS: lock. ARGV: the holder's value. Deletes only the caller's own lock; returns 1 or 0.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS: lock. ARGV: the holder's value, ttl ms. Extends only the caller's own lock; returns 1 or 0.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


SCRIPTS = {"acquire": ACQUIRE, "release": RELEASE, "renew": RENEW}
"""The scripts by name (the Redis bus sends them by SHA1, loading them when Redis lacks one)."""

SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}
"""Each script's SHA1, the name EVALSHA knows it by."""


def lock_value(token: int, owner: str) -> str:
    """The string a lock key holds for ``token`` and ``owner`` (must match ACQUIRE's)."""
    return f"{token}/{owner}"


def lock_owner_of(value: str) -> str:
    """The owner part of a stored lock value (owners may contain '/', tokens cannot)."""
    return value.partition("/")[2]
