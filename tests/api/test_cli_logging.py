"""Log formatting and set-up used by the daemon and the CLI (`api._logging`)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from api._logging import configure_logging
from config import load_settings


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _configure(format: str, level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    defaults = load_settings(env={}).logging
    configure_logging(attrs.evolve(defaults, format=format, level=level), stream)
    return stream


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_carry_fields_extras_and_exceptions() -> None:
    stream = _configure("json")
    log = logging.getLogger("zapvisor.test")
    log.info("hello %s", "wörld", extra={"session": 42, "path": "/tenants/t1"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "hello wörld"
    assert (first["level"], first["logger"]) == ("info", "zapvisor.test")
    assert (first["session"], first["path"]) == (42, "/tenants/t1")
    assert first["ts"].endswith("+00:00")
    assert "exc" not in first
    assert second["level"] == "error"
    assert "RuntimeError: boom" in second["exc"]


@pytest.mark.usefixtures("restore_root_logger")
def test_json_renders_unserialisable_extras_as_text() -> None:
    stream = _configure("json")
    logging.getLogger("zapvisor.test").info("x", extra={"where": Path("/srv/zapvisor")})
    assert json.loads(stream.getvalue())["where"] == "/srv/zapvisor"


@pytest.mark.usefixtures("restore_root_logger")
def test_console_lines_are_readable() -> None:
    stream = _configure("console")
    log = logging.getLogger("zapvisor.test")
    log.warning("disk %d%% full", 91)
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("oops")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" WARNING zapvisor.test: disk 91% full")
    assert lines[1].endswith(" ERROR   zapvisor.test: oops")
    assert lines[-1] == "ValueError: bad"


@pytest.mark.usefixtures("restore_root_logger")
def test_level_filters_records() -> None:
    stream = _configure("console", level="warning")
    log = logging.getLogger("zapvisor.test")
    log.info("hidden")
    log.warning("shown")
    assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == ["shown"]


@pytest.mark.usefixtures("restore_root_logger")
def test_configure_replaces_handlers_installed_by_libraries() -> None:
    logging.basicConfig(force=True)  # what neonize does on import
    stream = _configure("console")
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("zapvisor.test").info("once")
    assert stream.getvalue().count("once") == 1
