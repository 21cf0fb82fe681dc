"""Serve the API: Hypercorn in the caller's nursery, with the status history beside it.

Used by the daemon (``api._daemon``) and by the tests, so both run the same thing::

    urls = await nursery.start(serve_api, node, stop)       # returns once listening

Stopping: set ``stop``; Hypercorn stops accepting, finishes in-flight requests
within ``graceful_timeout`` and returns; then the history task is cancelled.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from actors.node import Node

from ._app import create_app

GRACEFUL_TIMEOUT = 10.0
"""Seconds in-flight requests get to finish after ``stop`` (a connect may wait up to its own timeout)."""


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.accesslog = None  # one line per lifecycle event, not per request (issue 6 §4)
    config.errorlog = logging.getLogger("zapvisor.http")  # through the daemon's log format (JSON or console)
    return config


async def serve_api(
    node: Node, stop: trio.Event, *, host: str | None = None, port: int | None = None, app: Any = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``node``'s API (or ``app``, made by :func:`create_app`) until ``stop`` is set;
    ``task_status.started(urls)`` once listening. Runs the app's status history beside it.

    ``host``/``port`` default to ``api.host``/``api.port`` (port 0: any free port, see the URLs).
    """
    settings = node.settings.api
    app = app or create_app(node)
    config = hypercorn_config(host or settings.host, settings.port if port is None else port)
    async with trio.open_nursery() as outer:
        await outer.start(app.extensions["zapvisor"].history.run)
        async with trio.open_nursery() as inner:
            urls = await inner.start(functools.partial(serve, app, config, shutdown_trigger=stop.wait))
            if node.settings.node.advertised_url is None:
                node.membership.advertise(urls[0])  # where the other nodes forward requests
            task_status.started(urls)
        outer.cancel_scope.cancel()  # Hypercorn returned: requests drained; the history can go
