"""Every validation rule of the settings schema, through the loader and by direct construction."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from config import ConfigError, Reaction, Settings, load_settings

from ._helpers import assert_error, load, load_error

# (file body, dotted key, regex the problem must match): one row per validation path.
FILE_CASES = [
    # integer
    ("[api]\nport = '80'", "api.port", r"must be an integer, got '80'"),
    ("[api]\nport = true", "api.port", r"must be an integer, got True"),
    ("[api]\nport = -1", "api.port", r"must be >= 0, got -1"),
    ("[api]\nport = 65536", "api.port", r"must be <= 65535, got 65536"),
    ("[workers]\nclients_per_worker = 0", "workers.clients_per_worker", r"must be >= 1, got 0"),
    # number
    ("[supervision]\nroot_period = 'soon'", "supervision.root_period", r"finite number, got 'soon'"),
    ("[supervision]\nroot_period = false", "supervision.root_period", r"finite number, got False"),
    ("[supervision]\nroot_period = nan", "supervision.root_period", r"finite number, got nan"),
    ("[supervision]\nroot_period = inf", "supervision.root_period", r"finite number, got inf"),
    ("[supervision]\nroot_period = 0", "supervision.root_period", r"must be > 0, got 0\.0"),
    ("[supervision]\nbackoff_multiplier = 0.5", "supervision.backoff_multiplier", r">= 1, got 0\.5"),
    ("[sessions]\nstatus_debounce = -0.1", "sessions.status_debounce", r"must be >= 0, got -0\.1"),
    # boolean
    ("[sessions]\nrestore_on_boot = 'yes'", "sessions.restore_on_boot", r"true or false, got 'yes'"),
    # choice
    ("[store]\nbackend = 'mysql'", "store.backend", r"one of 'sqlite', 'postgres', got 'mysql'"),
    ("[bus]\nbackend = 3", "bus.backend", r"one of 'memory', 'redis', got 3"),
    ("[supervision]\nbackoff_jitter = 'some'", "supervision.backoff_jitter", r"'decorrelated'"),
    ("[logging]\nlevel = 'loud'", "logging.level", r"'debug', 'info'.*got 'loud'"),
    ("[sessions]\ndriver = 'baileys'", "sessions.driver", r"'simulated', 'neonize', got"),
    # text
    ("[node]\nnode_id = ''", "node.node_id", r"non-empty string, got ''"),
    ("[node]\nnode_id = 7", "node.node_id", r"non-empty string, got 7"),
    ("[node]\nnode_id = 'my node'", "node.node_id", r"letters, digits.*got 'my node'"),
    ("[node]\nnode_id = '-x'", "node.node_id", r"starting with a letter or digit"),
    ("[api]\nhost = ''", "api.host", r"non-empty string"),
    # path
    ("[node]\ndata_dir = ''", "node.data_dir", r"non-empty path, got ''"),
    ("[node]\ndata_dir = 1", "node.data_dir", r"non-empty path, got 1"),
    ("[store]\nsqlite_path = ['a']", "store.sqlite_path", r"non-empty path"),
    # secret
    ("[api]\nadmin_token = 'short'", "api.admin_token", r"at least 16 characters long, got 5"),
    ("[api]\nadmin_token = 12345678901234567", "api.admin_token", r"must be a string, got a int"),
    ("[api]\njwt_secret = 'x'", "api.jwt_secret", r"at least 32 characters long, got 1"),
    # url
    ("[sessions]\nsimulator_url = 'http://x'", "sessions.simulator_url", r"starting with ws://, wss://"),
    ("[sessions]\nsimulator_url = 'ws://'", "sessions.simulator_url", r"must name a host"),
    ("[sessions]\nsimulator_url = 5", "sessions.simulator_url", r"must be a URL string, got 5"),
    ("[webhooks]\nadmin_notify_url = 'ftp://x/y'", "webhooks.admin_notify_url", r"http://, https://"),
    ("[bus]\nredis_url = 'unix://'", "bus.redis_url", r"must name a host"),
    # interval
    ("[sessions]\nprobe_interval = [30]", "sessions.probe_interval", r"\[low, high\] pair"),
    ("[sessions]\nprobe_interval = 30", "sessions.probe_interval", r"\[low, high\] pair"),
    ("[sessions]\nprobe_interval = ['a', 'b']", "sessions.probe_interval", r"pair of numbers"),
    ("[sessions]\nprobe_interval = [0, 10]", "sessions.probe_interval", r"low end must be > 0"),
    ("[sessions]\nprobe_interval = [20, 10]", "sessions.probe_interval", r"high end must be >= low"),
    # reaction table and member
    ("[sessions]\nreactions = 5", "sessions.reactions", r"table of code = name, got 5"),
    ("[sessions.reactions]\nabc = 'logout'", "sessions.reactions.abc", r"integer code from 100"),
    ("[sessions.reactions]\n99 = 'logout'", "sessions.reactions.99", r"from 100 to 999"),
    ("[sessions.reactions]\n1000 = 'logout'", "sessions.reactions.1000", r"from 100 to 999"),
    ("[sessions.reactions]\n401 = 'ignore'", "sessions.reactions.401", r"'logout'.*got 'ignore'"),
    ("[sessions.reactions]\n401 = 1", "sessions.reactions.401", r"got 1"),
    ("[sessions]\nreaction_default = 'shrug'", "sessions.reaction_default", r"got 'shrug'"),
    # cross-field rules
    ("[supervision]\nbackoff_max = 1", "supervision.backoff_max", r">= supervision.backoff_min"),
    ("[store]\nbackend = 'postgres'", "store.postgres_dsn", r"required when store.backend is"),
    ("[bus]\nbackend = 'redis'", "bus.redis_url", r"required when bus.backend is 'redis'"),
]


@pytest.mark.parametrize(("toml", "key", "problem"), FILE_CASES, ids=[c[1] for c in FILE_CASES])
def test_bad_value_in_file_is_named(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    assert_error(load_error(tmp_path, toml + "\n"), key, problem)


ENV_CASES = [
    ("ZAPVISOR_API__PORT", "eighty", "api.port", r"must be an integer, got 'eighty'"),
    ("ZAPVISOR_API__PORT", "8.5", "api.port", r"must be an integer, got '8\.5'"),
    ("ZAPVISOR_API__JWT_TTL", "1h", "api.jwt_ttl", r"must be a number, got '1h'"),
    ("ZAPVISOR_API__JWT_TTL", "nan", "api.jwt_ttl", r"finite number, got nan"),
    ("ZAPVISOR_SESSIONS__RESTORE_ON_BOOT", "maybe", "sessions.restore_on_boot", r"boolean"),
    ("ZAPVISOR_SESSIONS__PROBE_INTERVAL", "30,x", "sessions.probe_interval", r"got 'x'"),
    ("ZAPVISOR_SESSIONS__PROBE_INTERVAL", "[30,", "sessions.probe_interval", r"list of numbers"),
    ("ZAPVISOR_SESSIONS__PROBE_INTERVAL", "30", "sessions.probe_interval", r"pair"),
]


@pytest.mark.parametrize(("name", "value", "key", "problem"), ENV_CASES)
def test_bad_value_in_env_is_named(
    tmp_path: Path, name: str, value: str, key: str, problem: str
) -> None:
    error = load_error(tmp_path, env={name: value})
    assert_error(error, key, problem)
    assert error.problem.endswith(f"(in {name})")


def test_valid_alternatives_are_accepted(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[bus]\nbackend = 'redis'\nredis_url = 'unix:///run/redis.sock'\n"
        "[store]\nbackend = 'postgres'\npostgres_dsn = 'postgres://zv:pw@db:5432/zv'\n"
        "[supervision]\nbackoff_min = 3\nbackoff_max = 3\nbackoff_jitter = 'NONE'\n"
        "[sessions]\nprobe_interval = [10, 10]\ndriver = 'simulated'\n"
        "simulator_url = 'wss://sim.example:443/ws'\n"
        "[api]\nport = 0\nadmin_token = '0123456789abcdef'\n"
        "[logging]\nlevel = 'DEBUG'\n",
    )
    assert settings.bus.redis_url == "unix:///run/redis.sock"
    assert settings.store.postgres_dsn == "postgres://zv:pw@db:5432/zv"
    assert (settings.supervision.backoff_max, settings.supervision.backoff_jitter) == (3.0, "none")
    assert settings.sessions.probe_interval == (10.0, 10.0)
    assert settings.api.port == 0
    assert settings.logging.level == "debug"


def test_secrets_stay_out_of_repr_and_errors(tmp_path: Path) -> None:
    token, secret = "admin-token-0123456789", "jwt-secret-" + "s" * 32
    dsn = "postgresql://zv:hunter2-password@db/zv"
    settings = load(
        tmp_path,
        env={
            "ZAPVISOR_API__ADMIN_TOKEN": token,
            "ZAPVISOR_API__JWT_SECRET": secret,
            "ZAPVISOR_STORE__BACKEND": "postgres",
            "ZAPVISOR_STORE__POSTGRES_DSN": dsn,
            "ZAPVISOR_BUS__BACKEND": "redis",
            "ZAPVISOR_BUS__REDIS_URL": "redis://:hunter2-password@cache/0",
        },
    )
    shown = repr(settings)
    assert settings.api.admin_token == token
    for hidden in (token, secret, "hunter2-password"):
        assert hidden not in shown
    error = load_error(tmp_path, env={"ZAPVISOR_STORE__POSTGRES_DSN": "mysql://u:hunter2@x/db"})
    assert_error(error, "store.postgres_dsn", r"got <hidden>")
    assert "hunter2" not in str(error)
    error = load_error(tmp_path, env={"ZAPVISOR_API__JWT_SECRET": "hunter2"})
    assert "hunter2" not in str(error)


def test_direct_construction_validates_and_names_the_key() -> None:
    settings = load_settings(env={})
    with pytest.raises(ConfigError) as caught:
        attrs.evolve(settings.api, port=-1)
    assert str(caught.value) == "api.port: must be >= 0, got -1"
    with pytest.raises(ConfigError) as caught:
        attrs.evolve(settings.store, backend="postgres")
    assert caught.value.key == "store.postgres_dsn"


def test_settings_refuses_a_wrong_section_type() -> None:
    settings = load_settings(env={})
    with pytest.raises(TypeError, match=r"Settings\.store must be a StoreSettings"):
        attrs.evolve(settings, store=settings.bus)


def test_settings_are_frozen_hashable_and_comparable() -> None:
    settings = load_settings(env={})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.api.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sessions.reactions[401] = Reaction.RECONNECT  # type: ignore[index]
    assert hash(settings) == hash(load_settings(env={}))
    assert settings == load_settings(env={})
    changed = load_settings(env={"ZAPVISOR_SESSIONS__REACTIONS__401": "reconnect"})
    assert changed != settings
    assert isinstance(changed, Settings)
