"""zapvisor settings: a frozen attrs tree loaded from defaults, a TOML file and the environment.

Usage::

    from config import load_settings
    settings = load_settings(Path("/etc/zapvisor.toml"))   # or load_settings() for defaults + env
    settings.store.backend, settings.sessions.reactions[401]

Every package may read `config`; `config` imports nothing from the others.
"""

from ._errors import ConfigError
from ._loader import ENV_PREFIX, ENV_SEPARATOR, load_settings
from ._settings import (
    ApiSettings,
    BusSettings,
    LoggingSettings,
    MediaSettings,
    NodeSettings,
    OutboxSettings,
    Reaction,
    RetentionSettings,
    SessionsSettings,
    Settings,
    StoreSettings,
    SupervisionSettings,
    TicketsSettings,
    WebhooksSettings,
    WorkersSettings,
)

__all__ = [
    "ENV_PREFIX",
    "ENV_SEPARATOR",
    "ApiSettings",
    "BusSettings",
    "ConfigError",
    "LoggingSettings",
    "MediaSettings",
    "NodeSettings",
    "OutboxSettings",
    "Reaction",
    "RetentionSettings",
    "SessionsSettings",
    "Settings",
    "StoreSettings",
    "SupervisionSettings",
    "TicketsSettings",
    "WebhooksSettings",
    "WorkersSettings",
    "load_settings",
]
