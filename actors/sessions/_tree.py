"""Where sessions live in the supervision tree, as specs (DESIGN §3).

::

    /tenants                      dynamic, one_for_one
    └── /tenants/<tenant>         one_for_one
        ├── .../sessions          dynamic; transient sessions with backoff + breaker
        ├── .../tickets           dynamic (the ticket actors)
        └── .../campaigns         dynamic (one actor per running campaign)

Restarts of sessions are not put through a supervisor-level limiter: a restart
is cheap (no network). What reaches WhatsApp is the *connect*, and every
connect goes through the node's shared :class:`~supervisor.RestartLimiter`.
Failures therefore come at most as fast as connects are allowed, which is why
:func:`sessions_intensity` derives the sessions supervisor's intensity from the
limiter: a WhatsApp-wide outage parks sessions in backoff and breakers, it never
escalates a tenant.
"""

from __future__ import annotations

import math

from supervisor import Backoff, ChildSpec, CircuitBreaker, Restart, RestartLimiter, Strategy, Supervisor

from ._session import SessionActor, SessionDeps

SESSIONS_PERIOD = 10.0
"""Window of the sessions supervisor's restart intensity (seconds)."""

SESSION_SHUTDOWN = 10.0
"""Grace for a session to close its connection politely on shutdown."""


def sessions_intensity(limiter: RestartLimiter, period: float = SESSIONS_PERIOD) -> int:
    """Restarts a sessions supervisor must tolerate per ``period``: all the limiter lets through."""
    return math.ceil(limiter.rate * period) + limiter.burst + limiter.max_concurrent


def session_spec(
    session_id: str,
    tenant_id: str,
    deps: SessionDeps,
    *,
    backoff: Backoff = Backoff(),
    breaker: CircuitBreaker | None = CircuitBreaker(),
) -> ChildSpec:
    """A transient child: restarted after failures, not after a deliberate stop."""
    return ChildSpec(
        id=session_id,
        factory=lambda: SessionActor(session_id, tenant_id, deps),
        restart=Restart.TRANSIENT,
        shutdown=SESSION_SHUTDOWN,
        backoff=backoff,
        breaker=breaker,
    )


def tenant_spec(tenant_id: str, limiter: RestartLimiter) -> ChildSpec:
    """A tenant subtree with empty ``sessions``, ``tickets`` and ``campaigns`` supervisors."""
    intensity = sessions_intensity(limiter)

    def tenant() -> Supervisor:
        return Supervisor(
            [
                ChildSpec("sessions", lambda: Supervisor(intensity=intensity, period=SESSIONS_PERIOD)),
                ChildSpec("tickets", lambda: Supervisor(intensity=intensity, period=SESSIONS_PERIOD)),
                ChildSpec("campaigns", lambda: Supervisor(intensity=intensity, period=SESSIONS_PERIOD)),
            ],
            strategy=Strategy.ONE_FOR_ONE,
        )

    return ChildSpec(id=tenant_id, factory=tenant, restart=Restart.PERMANENT)


def tenants_spec() -> ChildSpec:
    """The dynamic ``/tenants`` supervisor: tenants are added with ``start_child(tenant_spec(...))``."""
    return ChildSpec("tenants", lambda: Supervisor(intensity=10, period=10.0))
