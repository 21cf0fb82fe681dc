"""Errors of the simulated WhatsApp server and its control client (one root: :class:`SimulatorError`)."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every simulator error."""


class StateFileError(SimulatorError, ValueError):
    """The persisted state file exists but cannot be understood (wrong version, bad JSON)."""


class ControlError(SimulatorError, RuntimeError):
    """The simulator rejected a control command (unknown command, bad argument, unknown session)."""


class ControlConnectionError(SimulatorError, ConnectionError):
    """The control client could not reach the simulator, or lost it mid-request."""
