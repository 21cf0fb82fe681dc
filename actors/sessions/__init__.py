"""WhatsApp sessions as actors: the connection policy, status board, pool and caches.

See :mod:`actors.sessions._session` for the life of a session and
:mod:`actors.sessions._policy` for the disconnect-reason table (DESIGN §4).
"""

from ._cache import BoundedCache, CacheLimits, ExpiringCache, SessionCaches
from ._errors import ConnectionDead, OwnershipLost, SessionDisconnected, SessionError, StuckConnecting
from ._policy import DEFAULT_REACTIONS, Outcome, SessionPolicy, outcome_for, reaction_for
from ._pool import PoolStatistics, SessionPool
from ._session import (
    DownloadMedia,
    GetCacheSizes,
    GetStatus,
    HandOver,
    InboundSink,
    Logout,
    MarkRead,
    PairPhone,
    Probe,
    RequestFailed,
    SendMedia,
    SendOperation,
    SendText,
    SessionActor,
    SessionDeps,
    lease_resource,
)
from ._options import InboundDefaults, SessionOptions
from ._status import TERMINAL, BoardStatistics, SessionInfo, SessionStatus, StatusBoard
from ._upstream import Attempt, UpstreamGate, UpstreamMode, UpstreamStatistics
from ._dependencies import GatedStore, bus_gate, bus_unavailable, store_gate, store_unavailable
from ._tree import session_spec, sessions_intensity, tenant_spec, tenants_spec

__all__ = [
    "lease_resource",
    "Attempt",
    "BoardStatistics",
    "BoundedCache",
    "CacheLimits",
    "ExpiringCache",
    "ConnectionDead",
    "DEFAULT_REACTIONS",
    "DownloadMedia",
    "GetCacheSizes",
    "GetStatus",
    "HandOver",
    "GatedStore",
    "InboundDefaults",
    "InboundSink",
    "Logout",
    "MarkRead",
    "Outcome",
    "OwnershipLost",
    "PairPhone",
    "PoolStatistics",
    "Probe",
    "RequestFailed",
    "SendMedia",
    "SendOperation",
    "SendText",
    "SessionActor",
    "SessionCaches",
    "SessionDeps",
    "SessionDisconnected",
    "SessionError",
    "SessionInfo",
    "SessionOptions",
    "SessionPolicy",
    "SessionPool",
    "SessionStatus",
    "StatusBoard",
    "StuckConnecting",
    "TERMINAL",
    "UpstreamGate",
    "UpstreamMode",
    "UpstreamStatistics",
    "bus_gate",
    "bus_unavailable",
    "outcome_for",
    "reaction_for",
    "session_spec",
    "sessions_intensity",
    "store_gate",
    "store_unavailable",
    "tenant_spec",
    "tenants_spec",
]
