"""Root conftest: registers every fixture module under ``tests/fixtures`` as a plugin.

Each module there owns one kind of throwaway server or shared helper (PostgreSQL,
Redis, the simulator...). Registering them by globbing keeps this file free of
merge conflicts as components add their own fixtures.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if not path.stem.startswith("_")
)
