"""Process-wide logging for the daemon and the CLI: console lines or JSON lines, to stderr.

One line per event. In JSON mode each line is an object with ``ts`` (UTC, ISO 8601),
``level``, ``logger``, ``msg``, every ``extra=`` field given by the caller, and ``exc`` when
an exception is attached. Secrets never reach a log line: settings that hold them are kept
out of ``repr`` (see `config`), and callers log identifiers, not credentials.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from config import LoggingSettings

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
"""Attributes every LogRecord has; anything else on a record came from ``extra=``."""


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (no newlines inside: tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_FIELDS
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """``2026-01-01T12:00:00.000+00:00 INFO    zapvisor.daemon: message``, for humans."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Send every logger's records to ``stream`` (default stderr) in the configured format.

    Replaces the root logger's handlers, so a library that called ``logging.basicConfig`` on
    import (neonize does) cannot duplicate or reformat our lines.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
