"""What the client commands (``tree``, ``sessions``) share: reaching a running daemon's REST API.

``--url`` defaults to ``http://<api.host>:<api.port>`` and ``--token`` to ``api.admin_token`` (or
the one ``zapvisor run`` kept under ``node.data_dir`` when none is configured), both from the settings (``--config`` file and ``ZAPVISOR_*`` environment), so on the daemon's
own machine no flag is needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from config import load_settings

REQUEST_TIMEOUT = 130.0
"""Seconds one request may take: a connect waits up to 120 s for a QR code or a pairing code."""

EXIT_FAILED = 1
"""The daemon refused the request or could not be reached (usage errors are 2, as everywhere)."""


class CommandFailed(Exception):
    """A request failed; the message is for the user."""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="PATH", help="TOML settings file (for the defaults below)")
    parser.add_argument("--url", help="the daemon's API (default: http://<api.host>:<api.port> from the settings)")
    parser.add_argument("--token", help="admin token or agent JWT (default: api.admin_token from the settings, else "
                                          "the one `zapvisor run` kept in <node.data_dir>/admin_token)")


def request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    """Send one request; returns the decoded JSON (or the text). Raises CommandFailed."""
    import httpx

    settings = load_settings(args.config)
    url = args.url or f"http://{settings.api.host}:{settings.api.port}"
    token = args.token or admin_token(settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs)
    except httpx.HTTPError as error:
        raise CommandFailed(f"cannot reach the daemon at {url}: {error}") from None
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            detail = error["message"] + (f" (field: {error['field']})" if "field" in error else "")
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200]
        raise CommandFailed(f"{method} {path}: {response.status_code} {detail}")
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def admin_token(settings: Any) -> str | None:
    """``api.admin_token``, else the one ``zapvisor run`` generated and kept under ``node.data_dir``.
    Raises CommandFailed when the kept file cannot be read. Blocking (a small file)."""
    from .._secrets import KeptSecretError, with_kept_secrets

    try:
        return with_kept_secrets(settings).api.admin_token
    except KeptSecretError as error:
        raise CommandFailed(str(error)) from None


def run(handler: Any, args: argparse.Namespace) -> int:
    """Run ``handler(args)``; a CommandFailed becomes a message on stderr and exit code 1."""
    try:
        return handler(args)
    except CommandFailed as error:
        print(f"zapvisor: {error}", file=sys.stderr)
        return EXIT_FAILED
