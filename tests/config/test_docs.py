"""The shipped documentation of the settings stays true: README tables and config/example.toml."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path

import attrs

from config import ENV_PREFIX, ENV_SEPARATOR, load_settings
from config._settings import SECTIONS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example.toml"

SETTING_ROW = re.compile(r"^\| `(?P<key>[a-z_]+\.[a-z_]+)` \| (?P<default>[^|]+) \| `(?P<env>[^`]+)` \|")
REACTION_ROW = re.compile(r"^\| `(?P<code>\d{3})` \| `(?P<reaction>[a-z_]+)` \|")
COMMENTED_SETTING = re.compile(r"^# (?=[\w\"]+ = )")
"""A commented-out ``key = value`` line of the example (prose comments have no `` = ``)."""


def _defaults() -> dict:
    return tomllib.loads(resources.files("config").joinpath("defaults.toml").read_text())


def _literal(value: object) -> str:
    """How the README writes a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]"
    return repr(value)


def _readme_rows(pattern: re.Pattern[str]) -> list[re.Match[str]]:
    lines = (REPO / "README.md").read_text().splitlines()
    return [match for line in lines if (match := pattern.match(line))]


def test_readme_lists_every_setting_once_with_its_env_variable() -> None:
    rows = _readme_rows(SETTING_ROW)
    keys = [row["key"] for row in rows]
    expected = [f"{name}.{field.name}" for name, cls in SECTIONS.items() for field in attrs.fields(cls)]
    assert keys == expected
    for row in rows:
        section, key = row["key"].split(".")
        env = f"{ENV_PREFIX}{section.upper()}{ENV_SEPARATOR}{key.upper()}"
        table = attrs.fields_dict(SECTIONS[section])[key].metadata["zapvisor.kind"].table
        assert row["env"] == (f"{env}{ENV_SEPARATOR}<CODE>" if table else env)


def test_readme_defaults_match_defaults_toml() -> None:
    defaults = _defaults()
    for row in _readme_rows(SETTING_ROW):
        section, key = row["key"].split(".")
        value = defaults[section].get(key)
        shown = row["default"].strip()
        if isinstance(value, dict):
            assert shown == "see below"
        elif value is None:
            assert shown == "unset" or shown.startswith("`<data_dir>/"), row["key"]
        else:
            assert shown == f"`{_literal(value)}`", row["key"]


def test_readme_reaction_table_matches_defaults() -> None:
    rows = {row["code"]: row["reaction"] for row in _readme_rows(REACTION_ROW)}
    assert rows == _defaults()["sessions"]["reactions"]


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE, env={})
    assert settings.logging.format == "json"


def test_example_with_every_commented_setting_enabled_loads(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    enabled = [COMMENTED_SETTING.sub("", line) for line in lines]
    assert enabled != lines
    path = tmp_path / "enabled.toml"
    path.write_text("\n".join(enabled) + "\n")
    settings = load_settings(path, env={})
    assert settings.api.admin_token is not None
    assert settings.store.postgres_dsn is not None
