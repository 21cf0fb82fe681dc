"""The daemon: owns ``trio.run``, the actor system, the network services and the stop signals.

Shape (DESIGN §8)::

    trio.run
    └── root nursery
        ├── signal watcher: SIGTERM / SIGINT -> stop event
        └── the node (actors.node.open_node: the actor system and its tree)
            └── services nursery: each service runs until ``stop`` is set
                (the HTTP API: ``api._server.serve_api`` = ``hypercorn.trio.serve(app, cfg, shutdown_trigger=stop.wait)``)

Stopping: a signal sets ``stop``; services finish (they stop accepting work); then the actor
system context exits, which stops the tree gracefully in reverse start order; then the
process exits with code 0.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from config import Settings
from actors.node import Node, open_node

from ._gc import sweep_gc, tune_gc
from ._server import serve_api
from ._secrets import Kept, KeptSecretError, keep_secrets
from ._startup import EXIT_PATH, StartupError, explain, preflight

log = logging.getLogger("zapvisor.daemon")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""SIGTERM is what systemd and container runtimes send; SIGINT is Ctrl-C in a terminal."""

Service = Callable[..., Awaitable[None]]
"""``async def service(node, stop, *, task_status)``: calls ``task_status.started()`` once it
serves, and returns soon after ``stop`` is set. Started in order, before the up line."""

SERVICES: Sequence[Service] = (serve_api,)
"""The network services of the daemon, in start order: the HTTP API (REST, dashboard)."""


def run_daemon(settings: Settings, services: Sequence[Service] = SERVICES) -> int:
    """Run the daemon in this (main) thread until a stop signal; returns the exit code.

    Blocks; checks first that ``node.data_dir`` can be written and that PostgreSQL and Redis
    (when configured) accept connections (``api._startup``). With no ``api.admin_token`` or
    ``api.jwt_secret`` configured, uses the one kept under ``data_dir``, generated on the first run
    (``api._secrets``), and logs the dashboard's URL with the admin token once the API listens.
    Returns 0 after a clean stop. A start-up failure the user can fix (a server unreachable, the
    port taken, a path not writable, a kept secret unreadable) is one line on stderr and its
    documented exit code (3, 4, 5; see ``api._startup``); any other exception that escapes the actor system or a service is logged with its traceback
    and gives exit code 1.
    """
    try:
        preflight(settings)
        settings, kept = keep_secrets(settings)
    except StartupError as error:
        return _refuse(error)
    except KeptSecretError as error:
        return _refuse(StartupError(str(error), EXIT_PATH))
    try:
        trio.run(serve, settings, services, kept)
    except Exception as exc:
        known = explain(exc, settings)
        if known is not None:
            return _refuse(known)
        log.exception("zapvisor crashed")
        return 1
    return 0


def _refuse(error: StartupError) -> int:
    print(f"zapvisor: {error}", file=sys.stderr)
    return error.exit_code


async def serve(settings: Settings, services: Sequence[Service], kept: Kept | None = None) -> None:
    """Run the actor system and ``services`` until SIGTERM or SIGINT, then stop them cleanly.

    ``kept``: the credentials :func:`api._secrets.keep_secrets` filled in (the admin token's gets
    the dashboard URL logged). Must run in the main thread (signal handling). Returns after the
    stop completed.
    """
    stop = trio.Event()
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, signals, stop)
            async with open_node(settings) as node:
                await _run_services(node, services, stop, nursery, kept)
            log.info("stopped")
            nursery.cancel_scope.cancel()


async def _run_services(node: Node, services: Sequence[Service], stop: trio.Event, root: trio.Nursery,
                        kept: Kept | None) -> None:
    settings = node.settings
    api_urls: list[str] = []
    async with trio.open_nursery() as service_nursery:
        for service in services:
            started = await service_nursery.start(service, node, stop)
            if service is serve_api:  # the URLs it listens on (the port may be 0: picked by the OS)
                api_urls = started
        tune_gc()  # the node is up: what exists now lives as long as the process
        root.start_soon(sweep_gc)
        log.info(
            "zapvisor up node=%s store=%s bus=%s",
            settings.node.node_id,
            settings.store.backend,
            settings.bus.backend,
            extra={
                "node": settings.node.node_id,
                "store": settings.store.backend,
                "bus": settings.bus.backend,
            },
        )
        if kept is not None and "admin_token" in kept.paths and api_urls:
            _log_dashboard(api_urls[0], settings.api.admin_token, kept)
        await stop.wait()
        log.info("stopping")
        await node.drain()  # hand the sessions over now, while the API finishes its requests


def _log_dashboard(url: str, admin_token: str, kept: Kept) -> None:
    """One line a first run ends with: the dashboard, ready to open, and where its token lives."""
    how = "generated on this first run" if "admin_token" in kept.generated else "reused"
    log.warning("dashboard: %s/#token=%s (no api.admin_token configured: %s, kept in %s; set api.admin_token "
                "to choose your own)", url.rstrip("/"), admin_token, how, kept.paths["admin_token"])


async def _stop_on_signal(signals: Any, stop: trio.Event) -> None:
    """Set ``stop`` on every stop signal (repeats are logged and change nothing)."""
    async for signum in signals:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
