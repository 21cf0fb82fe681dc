"""Loading settings: built-in defaults, then a TOML file, then the environment.

Layers, lowest first:

1. ``defaults.toml`` shipped inside this package (every key that has a default);
2. the user's TOML file, if given (same layout: ``[section]`` tables of ``key = value``);
3. environment variables ``ZAPVISOR_<SECTION>__<KEY>`` (double underscore between section and
   key, case-insensitive after the prefix), e.g. ``ZAPVISOR_STORE__BACKEND=postgres``.
   Table settings take one entry per variable: ``ZAPVISOR_SESSIONS__REACTIONS__440=reconnect``.
   An empty value unsets an optional key. Variables with the prefix but no double underscore
   (``ZAPVISOR_PG_BINDIR``, used by the test tooling) are not settings and are ignored.

A later layer replaces a key; table settings are merged entry by entry. Unknown sections or
keys in any layer, and values that fail validation, raise `ConfigError` naming the key and
where it was set.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ._errors import ConfigError
from ._fields import KIND
from ._settings import SECTIONS, NodeSettings, Settings

ENV_PREFIX = "ZAPVISOR_"
ENV_SEPARATOR = "__"
DEFAULTS_SOURCE = "defaults.toml"

_DERIVED: dict[str, dict[str, Callable[[NodeSettings], Path]]] = {
    "store": {"sqlite_path": lambda node: node.data_dir / "zapvisor.sqlite3"},
    "media": {"dir": lambda node: node.data_dir / "media"},
}
"""Keys whose default depends on another section; filled when the layers leave them unset."""


def load_settings(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Build the daemon's `Settings` from defaults, the optional TOML file at ``path`` and ``env``.

    Blocking (reads files): call it before ``trio.run`` or through ``trio.to_thread``.

    Raises:
        ConfigError: the file is missing or not valid TOML, a section or key is unknown, or a
            value is invalid. The message names the key and the layer that set it.
    """
    layers = _Layers()
    layers.apply_document(_read_defaults(), DEFAULTS_SOURCE)
    if path is not None:
        layers.apply_document(_read_file(Path(path)), str(path))
    layers.apply_env(env)
    return layers.build()


def _read_defaults() -> dict[str, Any]:
    return tomllib.loads(resources.files(__package__).joinpath(DEFAULTS_SOURCE).read_text())


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(str(path), "permission denied") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), f"invalid TOML: {error}") from None


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@attrs.define(eq=False)
class _Layers:
    """The raw values merged so far, and which layer set each dotted key."""

    raw: dict[str, dict[str, Any]] = attrs.Factory(lambda: {name: {} for name in SECTIONS})
    sources: dict[str, str] = attrs.Factory(dict)

    def _field(self, section: str, key: str, source: str) -> attrs.Attribute:
        cls = SECTIONS.get(section)
        if cls is None:
            raise ConfigError(section, f"unknown section (in {source}){_suggest(section, SECTIONS)}")
        fields = attrs.fields_dict(cls)
        if key not in fields:
            raise ConfigError(
                f"{section}.{key}", f"unknown setting (in {source}){_suggest(key, fields)}"
            )
        return fields[key]

    def _set(self, section: str, key: str, value: Any, source: str) -> None:
        self.raw[section][key] = value
        self.sources[f"{section}.{key}"] = source

    def _set_entry(self, section: str, key: str, entry: str, value: Any, source: str) -> None:
        table = self.raw[section].setdefault(key, {})
        if isinstance(table, dict):
            table[entry] = value
        else:
            self.raw[section][key] = {entry: value}
        self.sources[f"{section}.{key}.{entry}"] = source

    def apply_document(self, document: Mapping[str, Any], source: str) -> None:
        """Merge a parsed TOML document: ``{section: {key: value}}``."""
        for section, table in document.items():
            if section not in SECTIONS:
                self._field(section, "", source)  # raises: unknown section
            if not isinstance(table, dict):
                raise ConfigError(section, f"must be a [{section}] table (in {source})")
            for key, value in table.items():
                field = self._field(section, key, source)
                if field.metadata[KIND].table and isinstance(value, dict):
                    for entry, entry_value in value.items():
                        self._set_entry(section, key, str(entry), entry_value, source)
                else:
                    self._set(section, key, value, source)

    def apply_env(self, env: Mapping[str, str]) -> None:
        """Merge every ``ZAPVISOR_<SECTION>__<KEY>[__<ENTRY>]`` variable of ``env``."""
        for name in sorted(env):
            rest = name.removeprefix(ENV_PREFIX)
            if rest == name or ENV_SEPARATOR not in rest:
                continue
            section, key, *entry = rest.lower().split(ENV_SEPARATOR)
            field = self._field(section, key, name)
            kind = field.metadata[KIND]
            dotted = f"{section}.{key}"
            text = env[name]
            if kind.table and len(entry) == 1:
                self._set_entry(section, key, entry[0], self._parse(kind, text, dotted, name), name)
            elif kind.table:
                raise ConfigError(dotted, f"is a table: set one entry with {name}__<KEY>")
            elif entry:
                raise ConfigError(dotted, f"is not a table (in {name})")
            elif text == "" and field.default is None:
                self.raw[section].pop(key, None)
                self.sources[dotted] = name
            else:
                self._set(section, key, self._parse(kind, text, dotted, name), name)

    @staticmethod
    def _parse(kind: Any, text: str, dotted: str, name: str) -> Any:
        try:
            return kind.parse_env(text)
        except ValueError as error:
            raise ConfigError(dotted, f"{error} (in {name})") from None

    def _source_of(self, key: str) -> str | None:
        while key:
            if key in self.sources:
                return self.sources[key]
            key = key.rpartition(".")[0]
        return None

    def build(self) -> Settings:
        """Validate every section, in declaration order, and assemble `Settings`."""
        built: dict[str, Any] = {}
        for name, cls in SECTIONS.items():
            values = dict(self.raw[name])
            for key, derive in _DERIVED.get(name, {}).items():
                if key not in values:
                    values[key] = derive(built["node"])
            try:
                built[name] = cls(**values)
            except ConfigError as error:
                source = self._source_of(error.key)
                if source is None:
                    raise
                raise ConfigError(error.key, f"{error.problem} (in {source})") from None
        return Settings(**built)
