"""The settings schema: one frozen attrs class per section, gathered in `Settings`.

The classes carry no defaults (except optional keys, which default to ``None`` = unset):
the defaults live in ``defaults.toml`` next to this module, the single place an operator
reads them. Build a `Settings` with `config.load_settings`; tests that need a variant use
``attrs.evolve(settings, store=attrs.evolve(settings.store, backend="postgres", ...))``.

Every field validates itself on construction and raises `ConfigError` naming its dotted key.
Durations are in seconds unless the name says otherwise (``batch_max_ms``).

This module deliberately does not use ``from __future__ import annotations``: the loader
reads the section classes from the real annotations of `Settings`.
"""

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import attrs

from ._errors import ConfigError
from ._fields import (
    boolean,
    choice,
    enum_table,
    integer,
    interval,
    key_of,
    member,
    networks_or_hosts,
    number,
    path,
    secret,
    text,
    url,
)


class Reaction(StrEnum):
    """What a session does when WhatsApp disconnects it with a given reason code.

    The session layer dispatches on these; ``sessions.reactions`` maps codes to them.
    """

    LOGOUT = "logout"
    """Logged out from the phone (401): stop for good, wipe credentials, notify."""
    WAIT_BAN = "wait_ban"
    """Temporary ban (402): stop, pause outbound, retry after the ban's expiry."""
    BANNED = "banned"
    """Forbidden / banned (403, 406): stop for good and alert."""
    OUTDATED = "outdated"
    """Client outdated (405): stop and alert; reconnecting would only loop."""
    NEEDS_AUTH = "needs_auth"
    """QR never scanned (408): park the session as needing authentication."""
    STOP_NOTIFY = "stop_notify"
    """Multi-device mismatch (411): stop and tell the user."""
    RECONNECT = "reconnect"
    """Transient loss (428, 500, 503, keepalive): reconnect with backoff."""
    REPLACED = "replaced"
    """Another client took over (440): never fight; check the lease, stop, alert."""
    RESTART_NOW = "restart_now"
    """Restart required (515): reconnect at once; not counted as a failure."""


def _require_for_backend(
    section: object, attribute: attrs.Attribute, value: object, backend: str
) -> None:
    """Refuse an unset ``value`` while the section's ``backend`` is ``backend``."""
    if value is None and section.backend == backend:
        raise ConfigError(
            key_of(section, attribute),
            f"required when {type(section).SECTION}.backend is {backend!r}",
        )


@attrs.frozen(kw_only=True)
class NodeSettings:
    """Identity and local state of this daemon."""

    SECTION: ClassVar[str] = "node"
    node_id: str = text(
        pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}",
        hint="1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    """Names this node in session ownership leases and logs; unique per cluster."""
    data_dir: Path = path()
    """Root of this node's local state (SQLite file, media; credentials only without PostgreSQL)."""
    advertised_url: str | None = url("http", "https", optional=True)
    """The API URL other nodes forward requests to; unset: the address the API listens on."""
    heartbeat_interval: float = number(gt=0)
    """Seconds between this node's membership announcements on the bus."""
    member_ttl: float = number(gt=0)
    """A node not heard from for this long has left the cluster (its sessions are placed elsewhere)."""

    @member_ttl.validator
    def _ttl_above_heartbeat(self, attribute: attrs.Attribute, value: float) -> None:
        if value <= self.heartbeat_interval:
            raise ConfigError(key_of(self, attribute),
                              f"must be > node.heartbeat_interval ({self.heartbeat_interval}), got {value!r}")


@attrs.frozen(kw_only=True)
class SupervisionSettings:
    """Restart policy of the root supervisor and defaults for every child."""

    SECTION: ClassVar[str] = "supervision"
    root_intensity: int = integer(ge=0)
    root_period: float = number(gt=0)
    backoff_min: float = number(gt=0)
    backoff_max: float = number(gt=0)
    backoff_multiplier: float = number(ge=1)
    backoff_jitter: str = choice("full", "equal", "decorrelated", "none")
    backoff_reset_after: float = number(gt=0)
    breaker_threshold: int = integer(ge=1)
    breaker_window: float = number(gt=0)
    breaker_cooldown: float = number(gt=0)
    breaker_half_open_trials: int = integer(ge=1)
    restart_rate: float = number(gt=0)
    """Restarts per second the shared limiter lets through (sustained)."""
    restart_burst: int = integer(ge=1)
    restart_max_concurrent: int = integer(ge=1)

    @backoff_max.validator
    def _not_below_min(self, attribute: attrs.Attribute, value: float) -> None:
        if value < self.backoff_min:
            raise ConfigError(
                key_of(self, attribute),
                f"must be >= supervision.backoff_min ({self.backoff_min}), got {value!r}",
            )


@attrs.frozen(kw_only=True)
class SessionsSettings:
    """WhatsApp sessions: driver, pairing limits, watchdog, caches, disconnect reactions."""

    SECTION: ClassVar[str] = "sessions"
    driver: str = choice("simulated", "neonize")
    simulator_url: str = url("ws", "wss", optional=False)
    max_sessions: int = integer(ge=1)
    """Sessions this node runs at once; further ones wait in the pool's queue."""
    restore_on_boot: bool = boolean()
    qr_limit: int = integer(ge=1)
    never_connected_timeout: float = number(gt=0)
    stuck_connecting_timeout: float = number(gt=0)
    probe_interval: tuple[float, float] = interval(gt=0)
    inbound_silence: float = number(gt=0)
    status_debounce: float = number(ge=0)
    cache_chats: int = integer(ge=0)
    cache_contacts: int = integer(ge=0)
    cache_messages: int = integer(ge=0)
    reactions: Mapping[int, Reaction] = enum_table(Reaction, ge=100, le=999)
    """Disconnect reason code -> reaction (read-only mapping)."""
    reaction_default: Reaction = member(Reaction)
    """Reaction for a code absent from ``reactions``."""


@attrs.frozen(kw_only=True)
class WorkersSettings:
    """neonize worker processes (each hosts a few clients)."""

    SECTION: ClassVar[str] = "workers"
    clients_per_worker: int = integer(ge=1)
    max_connect_cycles: int = integer(ge=1)
    """A worker is recycled after this many connects (each connect leaks a descriptor)."""


@attrs.frozen(kw_only=True)
class StoreSettings:
    """The database behind the store actor."""

    SECTION: ClassVar[str] = "store"
    backend: str = choice("sqlite", "postgres")
    sqlite_path: Path = path()
    postgres_dsn: str | None = url("postgresql", "postgres", optional=True, hide=True)
    batch_max_ops: int = integer(ge=1)
    batch_max_ms: float = number(ge=0)

    @postgres_dsn.validator
    def _dsn_when_postgres(self, attribute: attrs.Attribute, value: str | None) -> None:
        _require_for_backend(self, attribute, value, "postgres")


@attrs.frozen(kw_only=True)
class BusSettings:
    """Cache, locks, leases and cross-node pub/sub."""

    SECTION: ClassVar[str] = "bus"
    backend: str = choice("memory", "redis")
    redis_url: str | None = url("redis", "rediss", "unix", optional=True, hide=True)

    @redis_url.validator
    def _url_when_redis(self, attribute: attrs.Attribute, value: str | None) -> None:
        _require_for_backend(self, attribute, value, "redis")


@attrs.frozen(kw_only=True)
class ApiSettings:
    """The HTTP API (REST + websocket) and its credentials."""

    SECTION: ClassVar[str] = "api"
    host: str = text()
    port: int = integer(ge=0, le=65535)
    """0 lets the OS pick a free port."""
    jwt_ttl: float = number(gt=0)
    admin_token: str | None = secret(min_length=16)
    jwt_secret: str | None = secret(min_length=32)
    """HS256 key; 32 characters at least (RFC 7518 §3.2: key as long as the hash)."""


@attrs.frozen(kw_only=True)
class LoggingSettings:
    SECTION: ClassVar[str] = "logging"
    format: str = choice("console", "json")
    level: str = choice("debug", "info", "warning", "error", "critical")


@attrs.frozen(kw_only=True)
class MediaSettings:
    """Media download jobs."""

    SECTION: ClassVar[str] = "media"
    dir: Path = path()
    max_bytes: int = integer(ge=1)
    concurrency: int = integer(ge=1)
    attempts: int = integer(ge=1)


@attrs.frozen(kw_only=True)
class OutboxSettings:
    """Outbound message queue."""

    SECTION: ClassVar[str] = "outbox"
    attempts: int = integer(ge=1)
    pacing_interval: float = number(ge=0)
    """Minimum seconds between two sends of one session."""
    pacing_jitter: float = number(ge=0)
    """Up to this many seconds added at random to each pause."""


@attrs.frozen(kw_only=True)
class TicketsSettings:
    """Ticket actors and the find-or-create rule."""

    SECTION: ClassVar[str] = "tickets"
    idle_timeout: float = number(gt=0)
    """A ticket actor with no message for this long is passivated (rebuilt from the store on demand);
    checked four times per period, so it stops within 1.25 times this."""
    reopen_window: float = number(ge=0)
    """A contact writing within this long after its ticket closed reopens it; later, a new ticket starts."""
    show_deleted_text: bool = boolean()
    """Whether agents (and websocket events, webhooks) still read the text of a message its sender
    deleted for everyone; admins always do through the REST API."""


@attrs.frozen(kw_only=True)
class WebhooksSettings:
    """Webhook deliveries and admin notifications."""

    SECTION: ClassVar[str] = "webhooks"
    attempts: int = integer(ge=1)
    backoff_initial: float = number(gt=0)
    concurrency: int = integer(ge=1)
    admin_notify_url: str | None = url("http", "https", optional=True)
    allow_targets: tuple[str, ...] = networks_or_hosts()
    """Webhook targets allowed besides public addresses (CIDRs, host names): on-premise receivers."""


@attrs.frozen(kw_only=True)
class Settings:
    """Every setting of the daemon, one attribute per section."""

    node: NodeSettings
    supervision: SupervisionSettings
    sessions: SessionsSettings
    workers: WorkersSettings
    store: StoreSettings
    bus: BusSettings
    api: ApiSettings
    logging: LoggingSettings
    media: MediaSettings
    outbox: OutboxSettings
    tickets: TicketsSettings
    webhooks: WebhooksSettings

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            if not isinstance(getattr(self, field.name), field.type):
                raise TypeError(f"Settings.{field.name} must be a {field.type.__name__}")


SECTIONS: dict[str, type] = {field.name: field.type for field in attrs.fields(Settings)}
"""Section name -> section class, in declaration order (read by the loader and the docs test)."""
