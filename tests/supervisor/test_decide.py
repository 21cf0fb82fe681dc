"""The supervisor's pure decision table: no event loop, just data in and out."""

from __future__ import annotations

import random

import pytest

from supervisor import (
    NO_BACKOFF,
    Action,
    Backoff,
    Escalate,
    Exit,
    ExitKind,
    Jitter,
    Restart,
    RetryAfter,
    Shutdown,
    StopForGood,
    Strategy,
    add_restart,
    classify,
    decide,
    intensity_exceeded,
    restart_delay,
    restart_group,
    unwrap,
)

NORMAL = Exit(ExitKind.NORMAL)
ABNORMAL = Exit(ExitKind.ABNORMAL, "RuntimeError", "boom")
KILLED = Exit(ExitKind.KILLED, "Cancelled", "killed")
RETRY = Exit(ExitKind.RETRY_AFTER, "RetryAfter", "banned", 60.0)
FOR_GOOD = Exit(ExitKind.STOP_FOR_GOOD, "StopForGood", "logged out")
ESCALATE = Exit(ExitKind.ESCALATE, "Escalate", "cannot cope")

R, K, X, E = Action.RESTART, Action.KEEP_STOPPED, Action.REMOVE, Action.ESCALATE

TABLE = {
    #                     NORMAL ABNORMAL KILLED RETRY FOR_GOOD ESCALATE
    Restart.PERMANENT: (R, R, R, R, K, E),
    Restart.TRANSIENT: (K, R, R, R, K, E),
    Restart.TEMPORARY: (X, X, X, X, X, E),
}
EXITS = (NORMAL, ABNORMAL, KILLED, RETRY, FOR_GOOD, ESCALATE)


@pytest.mark.parametrize("restart", list(Restart))
@pytest.mark.parametrize("index", range(len(EXITS)))
def test_decide_table(restart, index):
    """OTP's table (permanent always, transient on failure, temporary never) plus
    StopForGood (never restarted, spec kept) and Escalate (always escalates)."""
    assert decide(restart, EXITS[index]) is TABLE[restart][index]


def test_failure_kinds():
    assert [e.is_failure for e in EXITS] == [False, True, True, True, False, False]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, Exit(ExitKind.NORMAL)),
        (Shutdown("bye"), Exit(ExitKind.NORMAL, "Shutdown", "bye")),
        (RetryAfter(7.5, "ban"), Exit(ExitKind.RETRY_AFTER, "RetryAfter", "ban", 7.5)),
        (StopForGood("out"), Exit(ExitKind.STOP_FOR_GOOD, "StopForGood", "out")),
        (Escalate("up"), Exit(ExitKind.ESCALATE, "Escalate", "up")),
        (KeyError("k"), Exit(ExitKind.ABNORMAL, "KeyError", "'k'")),
        # trio wraps a task's error in a one-member group: classified by what is inside
        (ExceptionGroup("g", [ExceptionGroup("h", [RetryAfter(3)])]), Exit(ExitKind.RETRY_AFTER, "RetryAfter", "", 3.0)),
    ],
)
def test_classify(error, expected):
    assert classify(error) == expected


def test_classify_keeps_a_real_group_abnormal():
    group = ExceptionGroup("two", [ValueError("a"), KeyError("b")])
    assert classify(group).kind is ExitKind.ABNORMAL


def test_unwrap_peels_one_member_groups_only():
    inner = RetryAfter(3)
    assert unwrap(ExceptionGroup("a", [ExceptionGroup("b", [inner])])) is inner
    assert unwrap(inner) is inner
    two = ExceptionGroup("two", [ValueError("a"), KeyError("b")])
    assert unwrap(ExceptionGroup("outer", [two])) is two


def test_retry_after_rejects_negative_seconds():
    with pytest.raises(ValueError, match="seconds"):
        RetryAfter(-1)


def test_add_restart_is_a_sliding_window():
    """Restarts older than ``period`` fall out; one exactly ``period`` old stays (OTP)."""
    history: tuple[float, ...] = ()
    for now in (0.0, 1.0, 2.0):
        history = add_restart(history, now, 5.0)
    assert history == (0.0, 1.0, 2.0)
    assert add_restart(history, 5.0, 5.0) == (0.0, 1.0, 2.0, 5.0)
    assert add_restart(history, 6.5, 5.0) == (2.0, 6.5)
    assert add_restart(history, 100.0, 5.0) == (100.0,)


def test_intensity_exceeded_means_more_than_intensity():
    assert not intensity_exceeded((), 0)
    assert intensity_exceeded((1.0,), 0)
    assert not intensity_exceeded((1.0, 2.0, 3.0), 3)
    assert intensity_exceeded((1.0, 2.0, 3.0, 4.0), 3)


def test_restart_delay_is_the_backoff():
    backoff = Backoff(min=2, max=30, jitter=Jitter.NONE)
    rng = random.Random(0)
    assert [restart_delay(backoff, n, 0.0, ABNORMAL, rng) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    assert restart_delay(NO_BACKOFF, 9, 0.0, ABNORMAL, rng) == 0


def test_restart_delay_honours_retry_after():
    """A RetryAfter exit waits at least its seconds; a longer backoff still wins."""
    backoff = Backoff(min=2, max=120, jitter=Jitter.NONE)
    rng = random.Random(0)
    assert restart_delay(backoff, 0, 0.0, RETRY, rng) == 60
    assert restart_delay(backoff, 6, 0.0, RETRY, rng) == 120
    assert restart_delay(NO_BACKOFF, 0, 0.0, RETRY, rng) == 60


ORDER = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("strategy", "failed", "group"),
    [
        (Strategy.ONE_FOR_ONE, "b", ("b",)),
        (Strategy.ONE_FOR_ALL, "b", ORDER),
        (Strategy.ONE_FOR_ALL, "d", ORDER),
        (Strategy.REST_FOR_ONE, "a", ORDER),
        (Strategy.REST_FOR_ONE, "b", ("b", "c", "d")),
        (Strategy.REST_FOR_ONE, "d", ("d",)),
    ],
)
def test_restart_group(strategy, failed, group):
    """Which children a failure restarts, in start order."""
    assert restart_group(strategy, ORDER, failed) == group
