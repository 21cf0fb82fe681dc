"""One zapvisor node: components built from the settings, composed into the supervision tree."""

from ._host import Hosted, HostedWithSystem
from ._manager import (
    DELETED,
    RESTORE,
    CreateSession,
    DeleteSession,
    Drain,
    ListSessions,
    LogoutSession,
    Refused,
    RestartSession,
    Reconcile,
    SessionManager,
    StartSession,
    StopSession,
)
from ._node import Node, build_node, open_node

__all__ = [
    "DELETED",
    "RESTORE",
    "CreateSession",
    "DeleteSession",
    "Drain",
    "Hosted",
    "HostedWithSystem",
    "ListSessions",
    "LogoutSession",
    "Node",
    "Refused",
    "RestartSession",
    "Reconcile",
    "SessionManager",
    "StartSession",
    "StopSession",
    "build_node",
    "open_node",
]
