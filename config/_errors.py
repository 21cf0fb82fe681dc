"""The one error of the config package.

Every problem found while loading or validating settings surfaces as a `ConfigError` whose
message starts with the dotted key at fault (``store.backend: must be one of ...``), so an
operator reading the start-up failure knows exactly which line of which file, or which
environment variable, to fix.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is unknown, malformed or out of range.

    Subclasses `ValueError` because that is what it is: a bad value. ``key`` is the dotted
    setting name (``"api.port"``), or the file / variable at fault when no single key is;
    ``problem`` is the human explanation without the key.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
