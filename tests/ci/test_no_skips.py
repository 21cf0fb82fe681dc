"""The CI guard against skipped tests (`tests/fixtures/no_skips.py`), run in a real pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

REPO = Path(__file__).resolve().parents[2]

RUN_TIMEOUT = 60.0
"""Seconds for an inner pytest run of four trivial tests (imports dominate)."""

TESTS = """
import pytest

def test_skipped_at_run_time():
    pytest.skip("not today")

@pytest.mark.skipif(True, reason="never")
def test_skipped_by_marker():
    pass

def test_passes():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""

SKIPPED_MODULE = """
import pytest
pytest.importorskip("zapvisor_no_such_module")

def test_never_collected():
    pass
"""


async def _inner_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugin under test: fast and isolated
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.fixtures.no_skips", str(tmp_path)]
    with trio.fail_after(RUN_TIMEOUT):
        return await trio.run_process(
            command, cwd=tmp_path, env=env, capture_stdout=True, capture_stderr=True, check=False
        )


@pytest.mark.parametrize("ci", ["1", "true"])
async def test_skips_fail_in_ci(tmp_path: Path, ci: str) -> None:
    (tmp_path / "test_inner.py").write_text(TESTS)
    result = await _inner_pytest(tmp_path, ci)
    out = result.stdout.decode()
    assert result.returncode == 1, out
    # a run-time skip becomes a failure; a skipif marker acts at set-up, so it becomes an error
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in out
    assert "skipped in CI (CI runs every test): not today" in out
    assert "skipped in CI (CI runs every test): never" in out


@pytest.mark.parametrize("ci", [None, "false"])
async def test_skips_are_reported_outside_ci(tmp_path: Path, ci: str | None) -> None:
    (tmp_path / "test_inner.py").write_text(TESTS)
    result = await _inner_pytest(tmp_path, ci)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert "1 passed, 2 skipped, 1 xfailed" in out


async def test_module_level_skip_fails_collection_in_ci(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(SKIPPED_MODULE)
    result = await _inner_pytest(tmp_path, "1")
    out = result.stdout.decode()
    assert result.returncode != 0, out
    assert "skipped in CI (CI runs every test)" in out
    assert "zapvisor_no_such_module" in out
