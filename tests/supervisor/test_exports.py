"""Pins the public face of ``supervisor``: its ``__all__``, that every name resolves,
the error hierarchy, and that spec validation names the bad field."""

from __future__ import annotations

import pytest

import supervisor
from supervisor import ChildSpec, SpecError, Supervisor

EXPECTED = [
    "Action",
    "Actor",
    "ActorContext",
    "ActorExit",
    "ActorFailed",
    "ActorRef",
    "ActorSnapshot",
    "ActorStopped",
    "ActorSystem",
    "AlreadyPresent",
    "AlreadyStarted",
    "AskTimeout",
    "BRUTAL_KILL",
    "Backoff",
    "BreakerAction",
    "BreakerMode",
    "BreakerState",
    "ChildCounts",
    "ChildError",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildSpec",
    "ChildState",
    "CircuitBreaker",
    "Escalate",
    "Escalated",
    "EventKind",
    "Exit",
    "ExitKind",
    "Failure",
    "Hung",
    "IntensityExceeded",
    "Jitter",
    "LifecycleEvent",
    "LimiterStatistics",
    "MailboxFull",
    "NO_BACKOFF",
    "Reply",
    "Restart",
    "RestartLimiter",
    "RetryAfter",
    "Shutdown",
    "SpecError",
    "StartFailed",
    "StopForGood",
    "Strategy",
    "Subscription",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "add_restart",
    "classify",
    "decide",
    "intensity_exceeded",
    "open_actor_system",
    "restart_delay",
    "restart_group",
    "unwrap",
]


def test_all_is_pinned():
    assert sorted(supervisor.__all__) == EXPECTED
    assert len(set(supervisor.__all__)) == len(supervisor.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_name_resolves(name):
    assert getattr(supervisor, name) is not None


@pytest.mark.parametrize(
    ("error", "stdlib"),
    [
        ("SpecError", ValueError),
        ("MailboxFull", BufferError),
        ("ActorStopped", LookupError),
        ("AskTimeout", TimeoutError),
        ("ActorFailed", RuntimeError),
        ("StartFailed", RuntimeError),
        ("IntensityExceeded", RuntimeError),
        ("Escalated", RuntimeError),
        ("Hung", TimeoutError),
        ("ChildError", LookupError),
        ("ChildNotFound", KeyError),
    ],
)
def test_errors_share_one_root_and_resemble_the_stdlib(error, stdlib):
    cls = getattr(supervisor, error)
    assert issubclass(cls, supervisor.SupervisorError)
    assert issubclass(cls, stdlib)


def noop():
    return supervisor.Actor()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"id": "a/b"}, "ChildSpec.id"),
        ({"id": ""}, "ChildSpec.id"),
        ({"factory": 42}, "ChildSpec.factory"),
        ({"restart": "permanent"}, "ChildSpec.restart"),
        ({"shutdown": -1}, "ChildSpec.shutdown"),
        ({"backoff": 2}, "ChildSpec.backoff"),
        ({"breaker": "on"}, "ChildSpec.breaker"),
        ({"mailbox": 0}, "ChildSpec.mailbox"),
        ({"start_timeout": float("nan")}, "ChildSpec.start_timeout"),
        ({"start_timeout": 0}, "ChildSpec.start_timeout"),  # could never report readiness in time
        ({"liveness_timeout": 0}, "ChildSpec.liveness_timeout"),
        ({"limiter": object()}, "ChildSpec.limiter"),
    ],
)
def test_bad_child_spec_names_the_field(fields, named):
    values = {"id": "ok", "factory": noop} | fields
    with pytest.raises(SpecError, match=named):
        ChildSpec(**values)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"strategy": "one_for_one"}, "Supervisor.strategy"),
        ({"intensity": -1}, "Supervisor.intensity"),
        ({"period": 0}, "Supervisor.period"),
        ({"period": float("inf")}, "Supervisor.period"),
        ({"children": [ChildSpec("a", noop), ChildSpec("a", noop)]}, "unique"),
    ],
)
def test_bad_supervisor_flags_name_the_field(flags, named):
    with pytest.raises(SpecError, match=named):
        Supervisor(**flags)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"rate": 0}, "RestartLimiter.rate"),
        ({"burst": 0}, "RestartLimiter.burst"),
        ({"max_concurrent": 1.5}, "RestartLimiter.max_concurrent"),
    ],
)
def test_bad_limiter_names_the_field(fields, named):
    with pytest.raises(SpecError, match=named):
        supervisor.RestartLimiter(**fields)
