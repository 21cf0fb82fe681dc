"""Pins the public face of ``actors.simulator``."""

import actors.simulator as simulator


def test_all_is_pinned():
    assert set(simulator.__all__) == {
        "READY_PREFIX", "ControlConnectionError", "ControlError", "SimulatorConfig", "SimulatorControl",
        "SimulatorError", "SimulatorProcess", "SimulatorStats", "StateFileError", "TrafficSpec", "main", "serve",
    }
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None


def test_errors_share_one_root_and_resemble_stdlib():
    assert issubclass(simulator.ControlError, RuntimeError)
    assert issubclass(simulator.ControlConnectionError, ConnectionError)
    assert issubclass(simulator.StateFileError, ValueError)
    for cls in (simulator.ControlError, simulator.ControlConnectionError, simulator.StateFileError):
        assert issubclass(cls, simulator.SimulatorError)


def test_the_simulator_never_imports_neonize_or_the_drivers():
    import subprocess
    import sys

    code = "import sys, actors.simulator; print(sorted(m for m in sys.modules if m.startswith(('neonize', 'actors.drivers'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
