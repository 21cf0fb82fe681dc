"""The campaign's exactly-once check after a kill, shared by the single-daemon and the cluster tests."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def assert_each_recipient_at_most_once(received: Sequence[str], recipients: Sequence, counts: dict,
                                       total: int, sessions: Collection[str]) -> None:
    """Every recipient got the message exactly once, except a send the kill caught inside the driver:
    ``failed`` with an ``unknown:`` error, never sent again (at most one in flight per session)."""
    assert len(received) == len(set(received))  # never twice
    unknown = {r.jid for r in recipients if r.state == "failed" and (r.error or "").startswith("unknown")}
    assert counts["sent"] + len(unknown) == total and counts["failed"] == len(unknown)
    everyone = {r.jid for r in recipients}
    assert set(received) <= everyone and everyone - set(received) <= unknown  # nothing lost but a caught send
    assert len(unknown) <= len(sessions)  # one send in flight per session at most
