"""What request handlers share: the node, the authority, and the API's own live views."""

from __future__ import annotations

from typing import Callable

import attrs

from actors.node import Node

from ._auth import Authority
from ._history import StatusHistory


@attrs.define(eq=False)
class ApiState:
    """Held in ``app.extensions["zapvisor"]``; handlers reach it through ``_routing.state()``.

    ``websocket_clients`` reports the connected websocket clients for ``/metrics``;
    the websocket module (``api._ws``) replaces it when it is mounted.
    """

    node: Node
    authority: Authority
    history: StatusHistory
    websocket_clients: Callable[[], int] = lambda: 0
