"""Errors of the neonize driver: its worker processes and their pipe protocol.

The root, :class:`NeonizeDriverError`, is a :class:`~actors.drivers.DriverError`,
so a session's generic driver-error handling covers these too. Each error also
subclasses the stdlib error it resembles.
"""

from __future__ import annotations

import signal
from typing import ClassVar

from .._errors import DriverError


class NeonizeDriverError(DriverError):
    """Root of the errors raised by the neonize driver's own machinery (pool, workers, pipe)."""


class WorkerDied(NeonizeDriverError, ConnectionError):
    """The worker process hosting this session's neonize client died (crash, SIGKILL, Go abort).

    This says nothing about WhatsApp: the account, its credentials and
    WhatsApp's view of it are untouched. The session should restart **at once**
    on a fresh worker, without a WhatsApp backoff and without counting a
    breaker failure; :attr:`restart_immediately` marks that for the policy.

    ``pid`` is the dead worker's process id; ``returncode`` its exit status
    (negative: killed by that signal, e.g. ``-9`` for SIGKILL, ``-6`` for the
    SIGABRT of a Go fatal error).
    """

    restart_immediately: ClassVar[bool] = True

    def __init__(self, pid: int, returncode: int | None) -> None:
        self.pid = pid
        self.returncode = returncode
        super().__init__(f"neonize worker {pid} died ({describe_exit(returncode)})")


class WorkerStartError(NeonizeDriverError, OSError):
    """A worker process could not be started or did not say hello in time."""


class WorkerProtocolError(NeonizeDriverError, ValueError):
    """A frame on the worker pipe was malformed (bad length, not JSON, unknown kind)."""


class PoolClosedError(NeonizeDriverError, RuntimeError):
    """The worker pool is not running (not started yet, or shut down)."""


def describe_exit(returncode: int | None) -> str:
    """Human form of a process exit status: ``"killed by SIGKILL"``, ``"exit status 1"``."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
