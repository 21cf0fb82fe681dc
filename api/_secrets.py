"""Credentials kept under ``node.data_dir`` so that a first run with no configuration is usable.

With no ``api.admin_token`` (or ``api.jwt_secret``) configured, ``zapvisor run`` generates one on
its first start and keeps it in ``<data_dir>/admin_token`` (``<data_dir>/jwt_secret``), readable by
its owner only (mode 0600); later runs with the same ``data_dir`` reuse it, and the commands that
talk to the daemon or sign tokens for it (``zapvisor token``, ``watch``, ``sessions``...) read it
too. A configured value always wins and nothing is written for it.

Blocking (the file system): call these before ``trio.run`` or from a command, never on the trio
thread.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

import attrs

from config import ConfigError, Settings

KEPT = ("admin_token", "jwt_secret")
"""The ``api`` settings a first run generates and keeps when they are not configured."""

SECRET_BYTES = 32
"""Random bytes per generated secret: 43 URL-safe characters, over both settings' minimum lengths
(16 and 32) and as long as HS256's hash (RFC 7518 §3.2)."""

MODE = 0o600
"""Owner read/write only: whoever reads the file is the node admin."""


class KeptSecretError(OSError):
    """A kept secret cannot be written or read, or its file holds no usable secret (the message
    names the path and what to do)."""


@attrs.frozen
class Kept:
    """Where each generated-or-reused setting lives, and which of them this run generated."""

    paths: dict[str, Path]
    generated: frozenset[str]


def secret_path(settings: Settings, name: str) -> Path:
    return Path(settings.node.data_dir) / name


def keep_secrets(settings: Settings) -> tuple[Settings, Kept]:
    """``settings`` with every unconfigured :data:`KEPT` setting filled from its file under
    ``data_dir``, generating (and keeping) those with no file yet.

    Raises:
        KeptSecretError: a file cannot be written or read, or holds something the setting refuses.
    """
    values, paths, generated = {}, {}, set()
    for name in KEPT:
        if getattr(settings.api, name) is not None:
            continue
        path = paths[name] = secret_path(settings, name)
        value = _read(path, name)
        if value is None:
            if _create(path, name, secrets.token_urlsafe(SECRET_BYTES)):
                generated.add(name)
            value = _read(path, name)  # ours, or another process's that won the race
        values[name] = value
    return _with(settings, values, paths), Kept(paths, frozenset(generated))


def with_kept_secrets(settings: Settings) -> Settings:
    """``settings`` with the unconfigured :data:`KEPT` settings read from their files (those with
    no file stay None): what a command uses to reach or sign for a daemon of the same settings.

    Raises:
        KeptSecretError: a file exists but cannot be read or holds something the setting refuses.
    """
    values, paths = {}, {}
    for name in KEPT:
        path = secret_path(settings, name)
        if getattr(settings.api, name) is None and (value := _read(path, name)) is not None:
            values[name], paths[name] = value, path
    return _with(settings, values, paths)


def _with(settings: Settings, values: dict[str, str], paths: dict[str, Path]) -> Settings:
    """``settings`` with ``values`` in its ``api`` section, checked by the settings' own rules."""
    if not values:
        return settings
    try:
        return attrs.evolve(settings, api=attrs.evolve(settings.api, **values))
    except ConfigError as error:  # names the setting and the length, never the value
        name = error.key.rsplit(".", 1)[-1]
        raise KeptSecretError(f"the kept api.{name} in {paths[name]} is not usable: {error} (delete the file "
                              f"to generate a new one, or set api.{name})") from None


def _read(path: Path, name: str) -> str | None:
    """The file's secret, or None when there is no file."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeptSecretError(f"cannot read the kept api.{name} {path}: {getattr(exc, 'strerror', None) or exc} "
                              f"(check its permissions, or set api.{name})") from None


def _create(path: Path, name: str, value: str) -> bool:
    """Write ``value`` to ``path`` (mode 0600) unless the file exists; True if this call made it.

    The value is written and synced to a private temporary file first, then linked to ``path``:
    the link fails if the file exists, so a concurrent start keeps the first one and nobody ever
    reads a half-written secret.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
        try:
            os.write(descriptor, f"{value}\n".encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise KeptSecretError(f"cannot keep a generated api.{name} in {path}: {exc.strerror or exc} "
                              f"(check node.data_dir, or set api.{name})") from None
    finally:
        temporary.unlink(missing_ok=True)
