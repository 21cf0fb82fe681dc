"""The connection policy: what a session does about each way a connection ends.

Pure functions of frozen data: :func:`reaction_for` maps an ending event to a
:class:`~config.Reaction` through the configurable reason-code table, and
:func:`outcome_for` turns the reaction into the status to show and the exit to
take. The defaults are DESIGN §4's table. The last column says how a code can
reach a session on real WhatsApp (neonize/whatsmeow, see
``actors/drivers/neonize/_convert.py``); the simulator can send any of them.

=====  ==============  ===============================================  ==========================================
code   reaction        outcome                                          via neonize
=====  ==============  ===============================================  ==========================================
401    logout          ``logged_out``; stop for good (creds wiped)      LoggedOut (failure 401, or stream error
                                                                        401 device_removed); device deleted
402    wait_ban        ``banned`` until expiry; restart after it        TemporaryBan: WhatsApp's ban code 101-106
                                                                        and the expiry
403    banned          ``banned``; stop for good                        LoggedOut (main device gone); device deleted
405    outdated        ``outdated``; stop for good (no reconnect loop)  ClientOutdated
406    banned          ``banned``; stop for good                        LoggedOut (unknown logout); device deleted
408    needs_auth      while pairing: ``needs_auth``; else reconnect    the driver's own QR limit (also a phone
                                                                        without multi-device)
411    stop_notify     ``stopped``; stop for good, the user is told     never (simulator only)
428    reconnect       ``disconnected``; restart with backoff           never: a closed socket is a code-less
                                                                        Disconnected
440    replaced        ``replaced``; stop for good — never fight        StreamReplaced
500    reconnect       ``disconnected``; restart with backoff           as a stream error code only; a 500
                                                                        failure is retried inside whatsmeow
503    reconnect       ``disconnected``; restart with backoff           never: whatsmeow reconnects by itself
                                                                        (the session may see a code-less
                                                                        Disconnected)
515    restart_now     reconnect at once, in place: not a failure       never: whatsmeow restarts the stream itself
=====  ==============  ===============================================  ==========================================

Through neonize a ``ConnectFailure`` carries only the codes whatsmeow leaves
to its user: 400, 409 and 501 (415, 418 and unknown codes neonize 0.5.2 cannot
encode: the driver reports them as 400, saying so; an unknown ban code arrives
as a ban without code or expiry, which waits ``UNKNOWN_BAN_WAIT``). None has an
entry, so ``reaction_default`` (reconnect with backoff, under the breaker) applies.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

import attrs

from actors.drivers import (
    ClientOutdated,
    Disconnected,
    LoggedOut,
    ReasonCode,
    Replaced,
    TemporaryBan,
)
from config import Reaction
from supervisor import RetryAfter, StopForGood

from ._errors import SessionDisconnected
from ._status import SessionStatus

DEFAULT_REACTIONS: Mapping[int, Reaction] = MappingProxyType(
    {
        401: Reaction.LOGOUT,
        402: Reaction.WAIT_BAN,
        403: Reaction.BANNED,
        405: Reaction.OUTDATED,
        406: Reaction.BANNED,
        408: Reaction.NEEDS_AUTH,
        411: Reaction.STOP_NOTIFY,
        428: Reaction.RECONNECT,
        440: Reaction.REPLACED,
        500: Reaction.RECONNECT,
        503: Reaction.RECONNECT,
        515: Reaction.RESTART_NOW,
    }
)

UNKNOWN_BAN_WAIT = 3600.0
"""A temporary ban without an announced expiry: try again in an hour, not in 2 s."""


@attrs.frozen
class SessionPolicy:
    """Every knob of a session's connection policy (defaults: the seeds')."""

    qr_limit: int = 3
    never_connected_timeout: float = 60.0
    stuck_connecting_timeout: float = 30.0
    probe_interval: tuple[float, float] = (30.0, 60.0)
    probe_timeout: float = 10.0
    probe_failures: int = 2  # consecutive failed probes that make a "connected but dead" session
    degraded_timeout: float = 30.0  # keepalive lost this long → restart
    inbound_silence: float = 300.0
    reactions: Mapping[int, Reaction] = DEFAULT_REACTIONS
    reaction_default: Reaction = Reaction.RECONNECT
    allow_groups: bool = False
    lease_ttl: float = 15.0
    # A session waits for its lease only while another node hands it over (placement starts
    # it nowhere else): retry every second, so a drained node's sessions move within one.
    lease_retry: float = 1.0

    @classmethod
    def from_settings(cls, sessions) -> "SessionPolicy":
        """Build from ``config.SessionsSettings``."""
        return cls(
            qr_limit=sessions.qr_limit,
            never_connected_timeout=sessions.never_connected_timeout,
            stuck_connecting_timeout=sessions.stuck_connecting_timeout,
            probe_interval=tuple(sessions.probe_interval),
            inbound_silence=sessions.inbound_silence,
            reactions=MappingProxyType(dict(sessions.reactions)),
            reaction_default=sessions.reaction_default,
        )


def reaction_for(policy: SessionPolicy, event: object, *, pairing: bool = False) -> Reaction:
    """The reaction to an ending event.

    A transport break with no code reconnects; 408 means "QR not scanned" only
    while ``pairing`` (showing QR codes), otherwise it is a plain timeout.
    """
    match event:
        case Disconnected(code=None):
            return Reaction.RECONNECT
        case Disconnected(code=ReasonCode.TIMED_OUT) if not pairing:
            return Reaction.RECONNECT
        case Disconnected(code=code) | LoggedOut(code=code) | TemporaryBan(code=code):
            return policy.reactions.get(int(code), policy.reaction_default)
        case Replaced():
            return policy.reactions.get(int(ReasonCode.REPLACED), Reaction.REPLACED)
        case ClientOutdated():
            return policy.reactions.get(int(ReasonCode.CLIENT_OUTDATED), Reaction.OUTDATED)
    raise TypeError(f"not an ending event: {event!r}")


@attrs.frozen
class Outcome:
    """What the session shows and does: ``exit`` is raised (None: reconnect in place)."""

    status: SessionStatus
    reason: str
    exit: BaseException | None
    until: float | None = None


def outcome_for(reaction: Reaction, event: object, now: float) -> Outcome:
    """Carry out the table above; ``now`` is Unix time (ban expiries are Unix times)."""
    code = getattr(event, "code", None)
    detail = getattr(event, "reason", "") or ""
    reason = f"{code} {reaction.value}{': ' + detail if detail else ''}" if code else reaction.value
    match reaction:
        case Reaction.RESTART_NOW:
            return Outcome(SessionStatus.CONNECTING, reason, None)
        case Reaction.RECONNECT:
            return Outcome(SessionStatus.DISCONNECTED, reason, SessionDisconnected(code, detail))
        case Reaction.WAIT_BAN:
            expires = getattr(event, "expires_at", None)
            wait = max(0.0, expires - now) if expires is not None else UNKNOWN_BAN_WAIT
            return Outcome(SessionStatus.BANNED, reason, RetryAfter(wait, reason), until=now + wait)
        case Reaction.LOGOUT:
            return Outcome(SessionStatus.LOGGED_OUT, reason, StopForGood(reason))
        case Reaction.BANNED:
            return Outcome(SessionStatus.BANNED, reason, StopForGood(reason))
        case Reaction.OUTDATED:
            return Outcome(SessionStatus.OUTDATED, reason, StopForGood(reason))
        case Reaction.NEEDS_AUTH:
            return Outcome(SessionStatus.NEEDS_AUTH, reason, StopForGood(reason))
        case Reaction.STOP_NOTIFY:
            return Outcome(SessionStatus.STOPPED, reason, StopForGood(reason))
        case Reaction.REPLACED:
            return Outcome(SessionStatus.REPLACED, reason, StopForGood(reason))
    raise ValueError(f"unknown reaction {reaction!r}")

