"""Helpers shared by the config tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings


def write_toml(directory: Path, text: str) -> Path:
    path = directory / "zapvisor.toml"
    path.write_text(text)
    return path


def load_error(
    tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None
) -> ConfigError:
    """The ConfigError that loading ``toml`` (a file body) and ``env`` raises."""
    path = write_toml(tmp_path, toml) if toml is not None else None
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env or {})
    return caught.value


def load(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None) -> Settings:
    path = write_toml(tmp_path, toml) if toml is not None else None
    return load_settings(path, env=env or {})


def assert_error(error: ConfigError, key: str, problem_pattern: str) -> None:
    """``error`` names ``key``, its problem matches the regex, and the message starts with it."""
    assert error.key == key, str(error)
    assert re.search(problem_pattern, error.problem), str(error)
    assert str(error).startswith(f"{key}: ")
