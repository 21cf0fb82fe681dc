"""The shipped systemd unit: restarts on failure only, runs the installed console script, stops by SIGTERM."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "config" / "zapvisor.service"


def test_unit_restarts_on_failure_and_stops_gracefully() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"].split()[0].endswith("/zapvisor") and " run " in service["ExecStart"] + " "
    assert service["RestartPreventExitStatus"] == "2 5"  # bad config (2), unwritable data_dir (5): not retried
    assert float(service["TimeoutStopSec"]) > 60  # beyond the runtime's 60 s control timeout
    assert parser["Install"]["WantedBy"] == "multi-user.target"
