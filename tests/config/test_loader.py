"""Layering of defaults, file and environment; unknown keys; file errors; derived paths."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from config import ConfigError, Reaction, load_settings

from ._helpers import assert_error, load, load_error, write_toml


def _defaults() -> dict:
    return tomllib.loads(resources.files("config").joinpath("defaults.toml").read_text())


def test_defaults_are_exactly_defaults_toml() -> None:
    settings = load_settings(env={})
    for section, table in _defaults().items():
        for key, value in table.items():
            actual = getattr(getattr(settings, section), key)
            if isinstance(value, dict):
                assert {str(code): name.value for code, name in actual.items()} == value
            elif isinstance(actual, Path):
                assert actual == Path(value).absolute(), f"{section}.{key}"
            elif isinstance(value, list):
                assert list(actual) == value, f"{section}.{key}"
            else:
                assert actual == value, f"{section}.{key}"


def test_optional_keys_default_to_unset() -> None:
    settings = load_settings(env={})
    assert settings.store.postgres_dsn is None
    assert settings.bus.redis_url is None
    assert settings.api.admin_token is None
    assert settings.api.jwt_secret is None
    assert settings.webhooks.admin_notify_url is None


def test_relative_paths_are_made_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load(tmp_path, env={"ZAPVISOR_NODE__DATA_DIR": "state"})
    assert settings.node.data_dir == tmp_path / "state"


def test_derived_paths_follow_data_dir(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "d")})
    assert settings.store.sqlite_path == tmp_path / "d" / "zapvisor.sqlite3"
    assert settings.media.dir == tmp_path / "d" / "media"


def test_explicit_paths_win_over_derived_ones(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f'[store]\nsqlite_path = "{tmp_path}/db.sqlite3"\n[media]\ndir = "{tmp_path}/files"\n',
    )
    assert settings.store.sqlite_path == tmp_path / "db.sqlite3"
    assert settings.media.dir == tmp_path / "files"


def test_file_overrides_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, '[api]\nport = 9000\n[logging]\nformat = "json"\n')
    assert settings.api.port == 9000
    assert settings.logging.format == "json"
    assert settings.api.host == _defaults()["api"]["host"]


def test_env_overrides_file(tmp_path: Path) -> None:
    settings = load(tmp_path, "[api]\nport = 9000\n", env={"ZAPVISOR_API__PORT": "9001"})
    assert settings.api.port == 9001


def test_reaction_tables_merge_entry_by_entry(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[sessions.reactions]\n440 = "reconnect"\n599 = "banned"\n',
        env={"ZAPVISOR_SESSIONS__REACTIONS__599": "logout"},
    )
    reactions = settings.sessions.reactions
    assert reactions[440] is Reaction.RECONNECT
    assert reactions[599] is Reaction.LOGOUT
    assert reactions[401] is Reaction(_defaults()["sessions"]["reactions"]["401"])
    assert len(reactions) == len(_defaults()["sessions"]["reactions"]) + 1


def test_env_values_are_parsed_by_type(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        env={
            "ZAPVISOR_API__PORT": " 8123 ",
            "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "1",
            "ZAPVISOR_SUPERVISION__BACKOFF_MULTIPLIER": "1.5",
            "ZAPVISOR_SESSIONS__RESTORE_ON_BOOT": "off",
            "ZAPVISOR_SESSIONS__PROBE_INTERVAL": "10, 20.5",
            "ZAPVISOR_STORE__BACKEND": "POSTGRES",
            "ZAPVISOR_STORE__POSTGRES_DSN": "postgresql://zv@localhost/zv",
            "ZAPVISOR_SESSIONS__REACTION_DEFAULT": "Banned",
            "ZAPVISOR_NODE__NODE_ID": "007",
        },
    )
    assert settings.api.port == 8123
    assert settings.supervision.backoff_min == 1.0
    assert isinstance(settings.supervision.backoff_min, float)
    assert settings.supervision.backoff_multiplier == 1.5
    assert settings.sessions.restore_on_boot is False
    assert settings.sessions.probe_interval == (10.0, 20.5)
    assert settings.store.backend == "postgres"
    assert settings.store.postgres_dsn == "postgresql://zv@localhost/zv"
    assert settings.sessions.reaction_default is Reaction.BANNED
    assert settings.node.node_id == "007"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True)]
    + [("0", False), ("false", False), ("no", False), ("Off", False)],
)
def test_env_booleans(tmp_path: Path, text: str, expected: bool) -> None:
    settings = load(tmp_path, env={"ZAPVISOR_SESSIONS__RESTORE_ON_BOOT": text})
    assert settings.sessions.restore_on_boot is expected


def test_env_list_accepts_a_toml_array(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"ZAPVISOR_SESSIONS__PROBE_INTERVAL": "[5, 7.5]"})
    assert settings.sessions.probe_interval == (5.0, 7.5)


def test_env_names_are_case_insensitive_after_the_prefix(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"ZAPVISOR_api__Port": "7000"})
    assert settings.api.port == 7000


def test_empty_env_value_unsets_an_optional_key(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[webhooks]\nadmin_notify_url = "https://ops.example/hook"\n',
        env={"ZAPVISOR_WEBHOOKS__ADMIN_NOTIFY_URL": ""},
    )
    assert settings.webhooks.admin_notify_url is None


def test_empty_env_value_of_a_required_key_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, env={"ZAPVISOR_NODE__NODE_ID": ""})
    assert_error(error, "node.node_id", r"non-empty string.*\(in ZAPVISOR_NODE__NODE_ID\)")


def test_unrelated_and_non_setting_variables_are_ignored(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        env={"ZAPVISOR_PG_BINDIR": "/nowhere", "ZAPVISOR_CONFIG": "x", "HOME": "/root"},
    )
    assert settings == load_settings(env={})


def test_default_env_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPVISOR_API__PORT", "8765")
    assert load_settings().api.port == 8765


def test_unknown_section_in_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[stor]\nbackend = 'sqlite'\n")
    assert_error(error, "stor", r"unknown section \(in .*zapvisor\.toml\); did you mean 'store'\?")


def test_unknown_key_in_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[store]\nbakend = 'sqlite'\n")
    assert_error(error, "store.bakend", r"unknown setting \(in .*\); did you mean 'backend'\?")


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[api]\nzzz = 1\n")
    assert_error(error, "api.zzz", r"^unknown setting \(in [^)]*\)$")


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, "node = 5\n")
    assert_error(error, "node", r"must be a \[node\] table")


def test_unknown_section_in_env(tmp_path: Path) -> None:
    error = load_error(tmp_path, env={"ZAPVISOR_STOR__BACKEND": "sqlite"})
    assert_error(error, "stor", r"unknown section \(in ZAPVISOR_STOR__BACKEND\)")


def test_unknown_key_in_env(tmp_path: Path) -> None:
    error = load_error(tmp_path, env={"ZAPVISOR_STORE__BAKEND": "sqlite"})
    assert_error(error, "store.bakend", r"unknown setting \(in ZAPVISOR_STORE__BAKEND\)")


def test_table_setting_needs_an_entry_in_env(tmp_path: Path) -> None:
    error = load_error(tmp_path, env={"ZAPVISOR_SESSIONS__REACTIONS": "logout"})
    assert_error(error, "sessions.reactions", r"is a table: set one entry with")


def test_plain_setting_takes_no_entry_in_env(tmp_path: Path) -> None:
    error = load_error(tmp_path, env={"ZAPVISOR_API__PORT__X": "1"})
    assert_error(error, "api.port", r"is not a table \(in ZAPVISOR_API__PORT__X\)")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, env={})
    assert_error(caught.value, str(missing), "no such file")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert_error(caught.value, str(tmp_path), "is a directory")


def test_invalid_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[api\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert_error(caught.value, str(path), r"invalid TOML: .*line 1")


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[node]\nnode_id = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert_error(caught.value, str(path), "invalid TOML")


def test_error_names_the_file_that_set_the_bad_value(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[store]\nbackend = "mysql"\n')
    assert str(error) == (
        f"store.backend: must be one of 'sqlite', 'postgres', got 'mysql' "
        f"(in {tmp_path / 'zapvisor.toml'})"
    )


def test_error_names_the_variable_that_set_the_bad_value(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[store]\nbackend = "mysql"\n', {"ZAPVISOR_STORE__BACKEND": "db2"})
    assert_error(error, "store.backend", r"got 'db2' \(in ZAPVISOR_STORE__BACKEND\)$")


def test_error_in_a_table_entry_names_the_entry_source(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[sessions.reactions]\n440 = "fight"\n')
    assert_error(error, "sessions.reactions.440", r"got 'fight' \(in .*zapvisor\.toml\)$")
