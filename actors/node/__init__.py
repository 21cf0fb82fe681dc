"""One zapvisor node: components built from the settings, composed into the supervision tree."""

from ._host import Hosted, HostedWithSystem
from ._manager import (
    DELETED,
    RESTORE,
    CreateSession,
    DeleteSession,
    ListSessions,
    LogoutSession,
    Refused,
    RestartSession,
    RestoreSessions,
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
    "Hosted",
    "HostedWithSystem",
    "ListSessions",
    "LogoutSession",
    "Node",
    "Refused",
    "RestartSession",
    "RestoreSessions",
    "SessionManager",
    "StartSession",
    "StopSession",
    "build_node",
    "open_node",
]
