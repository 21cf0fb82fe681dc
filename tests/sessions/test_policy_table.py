"""The reason → reaction table (pure): defaults, configurability, 408 only while pairing."""

from __future__ import annotations

import attrs
import pytest

from actors.drivers import ClientOutdated, Disconnected, LoggedOut, Replaced, TemporaryBan
from actors.sessions import SessionDisconnected, SessionPolicy, SessionStatus, outcome_for, reaction_for
from config import Reaction
from supervisor import RetryAfter, StopForGood

POLICY = SessionPolicy()


@pytest.mark.parametrize(
    ("event", "reaction", "status", "exit_type"),
    [
        (LoggedOut("phone", code=401), Reaction.LOGOUT, SessionStatus.LOGGED_OUT, StopForGood),
        (TemporaryBan(expires_at=1_000.0), Reaction.WAIT_BAN, SessionStatus.BANNED, RetryAfter),
        (LoggedOut("forbidden", code=403), Reaction.BANNED, SessionStatus.BANNED, StopForGood),
        (ClientOutdated(), Reaction.OUTDATED, SessionStatus.OUTDATED, StopForGood),
        (LoggedOut("banned", code=406), Reaction.BANNED, SessionStatus.BANNED, StopForGood),
        (Disconnected(411), Reaction.STOP_NOTIFY, SessionStatus.STOPPED, StopForGood),
        (Disconnected(428), Reaction.RECONNECT, SessionStatus.DISCONNECTED, SessionDisconnected),
        (Replaced(), Reaction.REPLACED, SessionStatus.REPLACED, StopForGood),
        (Disconnected(500), Reaction.RECONNECT, SessionStatus.DISCONNECTED, SessionDisconnected),
        (Disconnected(503), Reaction.RECONNECT, SessionStatus.DISCONNECTED, SessionDisconnected),
        (Disconnected(None), Reaction.RECONNECT, SessionStatus.DISCONNECTED, SessionDisconnected),
        (Disconnected(999), Reaction.RECONNECT, SessionStatus.DISCONNECTED, SessionDisconnected),
    ],
)
def test_default_table(event, reaction, status, exit_type):
    assert reaction_for(POLICY, event) is reaction
    outcome = outcome_for(reaction, event, now=900.0)
    assert outcome.status is status
    assert isinstance(outcome.exit, exit_type)


def test_restart_required_515_reconnects_in_place():
    outcome = outcome_for(reaction_for(POLICY, Disconnected(515)), Disconnected(515), now=0.0)
    assert outcome.exit is None and outcome.status is SessionStatus.CONNECTING


def test_408_is_needs_auth_only_while_pairing():
    assert reaction_for(POLICY, Disconnected(408), pairing=True) is Reaction.NEEDS_AUTH
    assert reaction_for(POLICY, Disconnected(408), pairing=False) is Reaction.RECONNECT


def test_ban_waits_until_its_expiry_or_an_hour_when_unknown():
    outcome = outcome_for(Reaction.WAIT_BAN, TemporaryBan(expires_at=1_600.0), now=1_000.0)
    assert outcome.exit.seconds == 600.0 and outcome.until == 1_600.0
    unknown = outcome_for(Reaction.WAIT_BAN, TemporaryBan(expires_at=None), now=1_000.0)
    assert unknown.exit.seconds == 3600.0
    expired = outcome_for(Reaction.WAIT_BAN, TemporaryBan(expires_at=10.0), now=1_000.0)
    assert expired.exit.seconds == 0.0


def test_every_entry_is_configurable():
    policy = attrs.evolve(POLICY, reactions={440: Reaction.RECONNECT, 503: Reaction.BANNED},
                          reaction_default=Reaction.STOP_NOTIFY)
    assert reaction_for(policy, Replaced()) is Reaction.RECONNECT
    assert reaction_for(policy, Disconnected(503)) is Reaction.BANNED
    assert reaction_for(policy, Disconnected(428)) is Reaction.STOP_NOTIFY  # not in the table


def test_policy_from_settings_reads_the_config():
    from config import load_settings

    settings = load_settings(env={"ZAPVISOR_SESSIONS__QR_LIMIT": "5", "ZAPVISOR_SESSIONS__REACTIONS__440": "reconnect"})
    policy = SessionPolicy.from_settings(settings.sessions)
    assert policy.qr_limit == 5
    assert policy.reactions[440] is Reaction.RECONNECT
    assert policy.reactions[401] is Reaction.LOGOUT


def test_not_an_ending_event():
    with pytest.raises(TypeError):
        reaction_for(POLICY, object())
