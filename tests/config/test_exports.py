"""Pins the public face of `config`."""

import config


def test_all_is_pinned() -> None:
    assert len(set(config.__all__)) == len(config.__all__)
    assert set(config.__all__) == {
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
    }


def test_every_export_resolves() -> None:
    for name in config.__all__:
        assert getattr(config, name) is not None, name


def test_config_error_is_a_value_error_with_key_and_problem() -> None:
    error = config.ConfigError("api.port", "must be >= 0, got -1")
    assert isinstance(error, ValueError)
    assert (error.key, error.problem) == ("api.port", "must be >= 0, got -1")
    assert str(error) == "api.port: must be >= 0, got -1"
