"""Pins the public face of ``actors.drivers.neonize`` and its promise never to import neonize."""

import subprocess
import sys

import pytest

import actors.drivers.neonize as neonize_driver
from actors.drivers import DriverError, Driver
from actors.drivers.neonize import NeonizeDriver, NeonizeDriverError, WorkerDied, WorkerPool


def test_all_is_pinned():
    assert set(neonize_driver.__all__) == {
        "DeviceBook",
        "DeviceStoreError",
        "NeonizeDriver",
        "NeonizeDriverError",
        "PoolClosedError",
        "PoolSettings",
        "PoolStats",
        "WorkerDied",
        "WorkerPool",
        "WorkerProtocolError",
        "WorkerStartError",
        "delete_device",
    }


def test_daemon_side_modules_never_import_neonize():
    code = (
        "import sys\n"
        "import actors.drivers.neonize, actors.drivers.neonize._pool, actors.drivers.neonize._driver\n"
        "import actors.drivers.neonize._wire, actors.drivers.neonize._errors, actors.drivers.neonize._devicestore\n"
        "from actors.drivers import NeonizeDriver\n"
        "print(sorted(m for m in sys.modules if m == 'neonize' or m.startswith('neonize.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_driver_satisfies_the_protocol_and_worker_death_is_marked():
    driver = NeonizeDriver("s1", WorkerPool(), store="/nonexistent/s1.db")
    assert isinstance(driver, Driver)
    died = WorkerDied(1234, -9)
    assert isinstance(died, NeonizeDriverError) and isinstance(died, DriverError)
    assert isinstance(died, ConnectionError)
    assert died.restart_immediately is True
    assert "1234" in str(died) and "SIGKILL" in str(died)


def test_pool_settings_come_from_the_workers_section():
    from config import load_settings

    from actors.drivers.neonize import PoolSettings

    workers = load_settings().workers
    settings = PoolSettings.from_config(workers, stop_grace=1.0)
    assert (settings.clients_per_worker, settings.max_connect_cycles) == (workers.clients_per_worker, workers.max_connect_cycles)
    assert settings.stop_grace == 1.0
    with pytest.raises(ValueError, match="clients_per_worker"):
        PoolSettings(clients_per_worker=0)
