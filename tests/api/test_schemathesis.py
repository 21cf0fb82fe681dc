"""Schemathesis over ``/openapi.json`` against the real app: whatever it sends, never a 5xx.

Run as its own process (its CLI) against the app served on a free port, with the admin
token so that every operation gets past authentication and into validation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from .conftest import ADMIN_TOKEN

EXAMPLES = 8
"""Examples per operation: enough to hit every validation branch the schema describes, within the
suite's time budget (about 40 operations)."""
RUN_TIMEOUT = 240.0
"""Real-time bound for the whole run on a shared 2-core machine."""


async def test_no_server_errors(api_server, tmp_path: Path) -> None:
    await api_server.tenant("t1")
    await api_server.admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "S"})
    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", f"{api_server.url}/openapi.json", "--checks", "not_a_server_error",
               "--header", f"Authorization: Bearer {ADMIN_TOKEN}", "--max-examples", str(EXAMPLES),
               "--seed", "1", "--generation-database", "none", "--request-timeout", "150", "--no-color"]
    with trio.fail_after(RUN_TIMEOUT):
        result = await trio.run_process(command, cwd=tmp_path, capture_stdout=True, stderr=subprocess.STDOUT,
                                        check=False)
    output = result.stdout.decode()
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
