"""Media of simulated contacts: stored scripted files and reproducible generated ones.

A generated attachment is never stored: its ref (``gen-<size>-<token>``) is
enough to recompute the same bytes on every download, so the traffic generator
can hand out thousands of attachments at no storage cost and a restart loses
none of them. Scripted attachments (sent through the control API) are written
under ``<state_dir>/media/<ref>`` before the message is queued.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from pathlib import Path

import attrs
import trio

_GENERATED = re.compile(r"^gen-(\d{1,8})-([0-9a-f]{8,32})$")
_STORED = re.compile(r"^m-[0-9a-f]{32}$")
# Generated files stay small: they stand for images/audio in benchmarks where the
# media pipeline's behaviour matters, not the bytes.
MAX_GENERATED_SIZE = 10_000_000


def generated_ref(rng: random.Random, size: int) -> str:
    """A new generated-media ref whose bytes are ``size`` long."""
    if not 0 < size <= MAX_GENERATED_SIZE:
        raise ValueError(f"media size must be in 1..{MAX_GENERATED_SIZE}, got {size}")
    return f"gen-{size}-{rng.getrandbits(64):016x}"


def generated_bytes(ref: str) -> bytes:
    """The bytes of a generated ref (same ref, same bytes). Raises ``KeyError`` for other refs."""
    match = _GENERATED.match(ref)
    if match is None:
        raise KeyError(ref)
    return random.Random(ref).randbytes(int(match.group(1)))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@attrs.define(eq=False)
class MediaStore:
    """Scripted media files under one directory."""

    directory: Path

    async def put(self, data: bytes) -> str:
        """Store ``data``; returns its new ref."""
        ref = "m-" + secrets.token_hex(16)
        await trio.to_thread.run_sync(self._write, ref, data)
        return ref

    def _write(self, ref: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / (ref + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(self.directory / ref)

    async def get(self, ref: str) -> bytes:
        """The bytes behind ``ref``; raises ``KeyError`` when unknown."""
        if _GENERATED.match(ref):
            return generated_bytes(ref)
        if not _STORED.match(ref):
            raise KeyError(ref)
        try:
            return await trio.to_thread.run_sync((self.directory / ref).read_bytes)
        except FileNotFoundError:
            raise KeyError(ref) from None
