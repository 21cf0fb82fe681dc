"""WhatsApp drivers: the :class:`Driver` protocol, its normalized events, and the drivers.

Public face of the package; implementation lives in the ``_private`` modules.

* ``Driver`` (protocol) and ``DriverFactory`` - see ``_protocol`` for the rules
  every driver keeps (one ending event per connection, ack after store, real probes).
* Normalized events (frozen attrs): ``Connected``, ``Disconnected``,
  ``LoggedOut``, ``TemporaryBan``, ``Replaced``, ``ClientOutdated``,
  ``KeepaliveLost``, ``KeepaliveRestored``, ``Qr``, ``PairingCode``,
  ``PairSuccess``, ``Message``, ``Receipt``, ``OfflineSyncDone``,
  ``Undecryptable``, ``Presence``, ``LidMapped``, ``CallOffer``, ``HistoryChunk`` (of ``HistoryChat``); the union
  ``Event`` and ``ENDING_EVENTS``.
* Message kinds (``_kinds``): ``MessageKind``, ``OPERATIONS``, ``MEDIA_KINDS``,
  ``PLACEHOLDER_TEXT`` and ``summary`` (the line agents read for a message of any kind);
  ``parse_vcards`` (``_vcard``): names and numbers of contact cards.
* Values: ``MediaRef``, ``OutboundMedia``, ``OutboundOperation``, ``Quote``, ``SendResult``; enums ``ReasonCode``,
  ``ReceiptKind``, ``MediaKind``, ``PresenceState``.
* ``SimulatedDriver`` / ``SimulatedDriverConfig``: the driver for the simulated
  WhatsApp server (``actors.simulator``).
* Errors: ``DriverError`` and its subclasses.

The neonize driver is exported lazily (``actors.drivers.NeonizeDriver``) so that
importing this package never imports neonize: the daemon process must not.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import (
    DriverConnectError,
    DriverError,
    DriverStateError,
    MediaNotFoundError,
    NotConnectedError,
    ProbeTimeoutError,
    RequestError,
    RequestInterruptedError,
    RequestTimeoutError,
)
from ._events import (
    ENDING_EVENTS,
    ClientOutdated,
    Connected,
    Disconnected,
    Event,
    KeepaliveLost,
    KeepaliveRestored,
    LoggedOut,
    MediaKind,
    MediaRef,
    Message,
    OfflineSyncDone,
    OutboundMedia,
    OutboundOperation,
    PairingCode,
    PairSuccess,
    LidMapped,
    CallOffer,
    HistoryChat,
    HistoryChunk,
    Presence,
    PresenceState,
    Qr,
    Quote,
    ReasonCode,
    Receipt,
    ReceiptKind,
    Replaced,
    SendResult,
    TemporaryBan,
    Undecryptable,
)
from ._kinds import MEDIA_KINDS, OPERATIONS, PLACEHOLDER_TEXT, MessageKind, summary
from ._protocol import Driver, DriverFactory
from ._simulated import SimulatedDriver, SimulatedDriverConfig
from ._vcard import parse_vcards

__all__ = [
    "ENDING_EVENTS",
    "ClientOutdated",
    "Connected",
    "Disconnected",
    "Driver",
    "DriverConnectError",
    "DriverError",
    "DriverFactory",
    "DriverStateError",
    "Event",
    "KeepaliveLost",
    "KeepaliveRestored",
    "LoggedOut",
    "MEDIA_KINDS",
    "MediaKind",
    "MediaNotFoundError",
    "MediaRef",
    "Message",
    "MessageKind",
    "NeonizeDriver",
    "NotConnectedError",
    "OPERATIONS",
    "OfflineSyncDone",
    "OutboundMedia",
    "OutboundOperation",
    "PLACEHOLDER_TEXT",
    "PairSuccess",
    "PairingCode",
    "LidMapped",
    "CallOffer",
    "HistoryChat",
    "HistoryChunk",
    "Presence",
    "PresenceState",
    "ProbeTimeoutError",
    "Qr",
    "Quote",
    "ReasonCode",
    "Receipt",
    "ReceiptKind",
    "Replaced",
    "RequestError",
    "RequestInterruptedError",
    "RequestTimeoutError",
    "SendResult",
    "parse_vcards",
    "summary",
    "SimulatedDriver",
    "SimulatedDriverConfig",
    "TemporaryBan",
    "Undecryptable",
]

# Drivers whose module is imported only when first named: the neonize driver's
# module lives next to the worker code, and the daemon must never load neonize.
_LAZY_EXPORTS = {"NeonizeDriver": "actors.drivers.neonize"}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
