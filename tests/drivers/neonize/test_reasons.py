"""Reason codes as whatsmeow emits them, fed through neonize's real callback path, and what the session does.

What reaches a session through neonize (see ``_convert``'s docstring, from
whatsmeow's ``connectionevents.go``): LoggedOut with reason 401/403/406 (the
device already deleted by whatsmeow), TemporaryBan with WhatsApp's ban code and
expiry, StreamReplaced, ClientOutdated, ConnectFailure only for the codes
whatsmeow does not handle itself (400, 409, 415, 418, 501, unknown ones: the
code read from the raw ``<failure reason=...>`` node, since neonize's enum has no
value for 415/418), KeepAliveTimeout/Restored. 500/503/515 never arrive as codes.

415, 418, unknown refusal codes and unknown ban codes cannot even be encoded by
neonize 0.5.2 (a required protobuf field left unset): Go's marshal fails and the
connection's Go call returns that error instead of the event; the last tests
pin how the driver reads such an error.
"""

from __future__ import annotations

import time

import pytest
import trio

from actors.drivers import (
    ClientOutdated,
    Disconnected,
    DriverConnectError,
    KeepaliveLost,
    KeepaliveRestored,
    LoggedOut,
    Replaced,
    TemporaryBan,
)
from actors.drivers.neonize import NeonizeDriver
from actors.sessions import SessionPolicy, reaction_for
from config import Reaction

from .conftest import TEST_TIMEOUT_S, HangingProxy, next_event, open_pool, running


def _failure(code: str, *, reason: str | None = None, message: str = "") -> dict:
    """A ConnectFailure as neonize encodes whatsmeow's: the raw node always, the enum only when neonize has one."""
    fields: dict = {"Message": message, "Raw": {"Tag": "failure", "Attrs": [{"name": "reason", "text": code}]}}
    if reason is not None:
        fields["Reason"] = reason
    return fields


ENDINGS = [
    ("LoggedOutEv", {"OnConnect": True, "Reason": "LOGGED_OUT"}, LoggedOut(reason="logged_out (on connect)", code=401), Reaction.LOGOUT),
    ("LoggedOutEv", {"OnConnect": False, "Reason": "LOGGED_OUT"}, LoggedOut(reason="logged_out", code=401), Reaction.LOGOUT),
    ("LoggedOutEv", {"OnConnect": True, "Reason": "MAIN_DEVICE_GONE"}, LoggedOut(reason="main_device_gone (on connect)", code=403), Reaction.BANNED),
    ("LoggedOutEv", {"OnConnect": True, "Reason": "UNKNOWN_LOGOUT"}, LoggedOut(reason="unknown_logout (on connect)", code=406), Reaction.BANNED),
    ("StreamReplacedEv", {}, Replaced(), Reaction.REPLACED),
    ("ClientOutdatedEv", {}, ClientOutdated(), Reaction.OUTDATED),
    ("ConnectFailureEv", _failure("400", reason="GENERIC"), Disconnected(code=400, reason="generic failure"), Reaction.RECONNECT),
    ("ConnectFailureEv", _failure("409", reason="BAD_USER_AGENT"), Disconnected(code=409, reason="client user agent was rejected"), Reaction.RECONNECT),
    ("ConnectFailureEv", _failure("501", reason="EXPERIMENTAL"), Disconnected(code=501, reason="experimental"), Reaction.RECONNECT),
    ("ConnectFailureEv", {"Reason": "BAD_USER_AGENT"}, Disconnected(code=409, reason="client user agent was rejected"), Reaction.RECONNECT),
    ("DisconnectedEv", {"status": True}, Disconnected(code=None, reason="stream closed"), Reaction.RECONNECT),
    ("StreamErrorEv", {"Code": "500"}, Disconnected(code=500, reason="stream error 500"), Reaction.RECONNECT),
]

BANS = [("SEND_TO_TOO_MANY_PEOPLE", 101), ("BLOCKED_BY_USERS", 102), ("CREATED_TOO_MANY_GROUPS", 103),
        ("SENT_TOO_MANY_SAME_MESSAGE", 104), ("BROADCAST_LIST", 106)]


async def _open(d: NeonizeDriver, proxy: HangingProxy) -> None:
    """A connection held in the dial by the proxy, answered by a Connected fed through the callback path."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(d.connect)
        await proxy.wait_accepted(proxy.accepted + 1)
        await d.inject(event="ConnectedEv", fields={"status": True})
    await next_event(d)


async def test_each_ending_event_and_the_sessions_reaction_to_it(tmp_path, hanging_proxy):
    policy = SessionPolicy()
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            for name, fields, expected, reaction in ENDINGS:
                await _open(d, hanging_proxy)
                await d.inject(event=name, fields=fields)
                event = await next_event(d)
                assert event == expected, name
                assert reaction_for(policy, event) is reaction, (name, event)
                hanging_proxy.release()

            for reason, code in BANS:
                await _open(d, hanging_proxy)
                before = time.time()
                await d.inject(event="TemporaryBanEv", fields={"Code": reason, "Expire": 7200})
                ban = await next_event(d)
                assert isinstance(ban, TemporaryBan) and (ban.ban_code, ban.code) == (code, 402)
                assert before + 7200 <= ban.expires_at <= time.time() + 7200
                assert reaction_for(policy, ban) is Reaction.WAIT_BAN
                hanging_proxy.release()

            await _open(d, hanging_proxy)
            await d.inject(event="KeepAliveTimeoutEv", fields={"ErrorCount": 3, "LastSuccess": 1_700_000_000})
            assert await next_event(d) == KeepaliveLost(error_count=3)
            await d.inject(event="KeepAliveRestoredEv", fields={})
            assert await next_event(d) == KeepaliveRestored()  # the connection lives on
            await d.inject(event="TemporaryBanEv", fields={"Code": "BROADCAST_LIST", "Expire": 0})  # no expiry announced
            assert await next_event(d) == TemporaryBan(expires_at=None, ban_code=106)
            hanging_proxy.release()


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [(_failure("400", reason="GENERIC"), 400, "generic"), (_failure("501", reason="EXPERIMENTAL", message="later?"), 501, "later"),
     (_failure("409", reason="BAD_USER_AGENT"), 409, "user agent")],
)
async def test_a_connect_failure_as_first_answer_fails_connect_with_whatsapps_code(tmp_path, hanging_proxy, fields, code, message):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            caught: list[DriverConnectError] = []

            async def connect() -> None:
                with pytest.raises(DriverConnectError, match=message) as error:
                    await d.connect()
                caught.append(error.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(connect)
                await hanging_proxy.wait_accepted(1)
                await d.inject(event="ConnectFailureEv", fields=fields)
            assert caught[0].code == code
            assert d.events.statistics().current_buffer_used == 0
            hanging_proxy.release()


# neonize is imported inside these tests, never at collection: its import configures the root
# logger and starts a thread (the daemon side never imports it; see test_exports).


def test_neonize_cannot_encode_a_refusal_or_ban_whose_code_it_does_not_know():
    """Python's protobuf refuses what Go's refuses: a proto2 message with a required field unset."""
    from google.protobuf.message import EncodeError
    from neonize.proto import Neonize_pb2 as pb

    for message in (pb.ConnectFailure(Message="", Raw=pb.Node(Tag="failure")), pb.TemporaryBan(Expire=60)):
        with pytest.raises(EncodeError, match="missing required fields"):
            message.SerializeToString()


def test_the_error_such_an_event_ends_the_connection_with_is_read_back_as_that_event():
    from actors.drivers.neonize._convert import Refused, lost_ending

    now = 1_700_000_000.0
    refusal = lost_ending("proto: required field neonize.ConnectFailure.Reason not set", now=now)
    assert refusal == Refused(code=400, reason=refusal.reason) and "cannot pass on" in refusal.reason
    assert reaction_for(SessionPolicy(), Disconnected(code=refusal.code, reason=refusal.reason)) is Reaction.RECONNECT
    ban = lost_ending("proto: required field neonize.TemporaryBan.Code not set", now=now)
    assert ban == TemporaryBan(expires_at=None, ban_code=None)
    assert reaction_for(SessionPolicy(), ban) is Reaction.WAIT_BAN  # waits UNKNOWN_BAN_WAIT, not a reconnect loop
    for other in ("failed to dial whatsapp web websocket: no such host", "", None):
        assert lost_ending(other, now=now) is None
