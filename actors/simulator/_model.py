"""Plain values shared by the server and the control API: counters, injected faults, the wall clock."""

from __future__ import annotations

import time

import attrs

# Receipts/presences kept for an offline account: enough for any test or demo
# backlog, bounded so an account that never returns cannot grow without end.
MAX_OFFLINE_EVENTS = 1000


def wall_clock() -> float:
    """WhatsApp-side timestamps are wall-clock epoch seconds; durations still go through trio."""
    return time.time()


@attrs.define
class Stats:
    """Counters since this process started (see ``SimulatorControl.stats``)."""

    tcp_accepts: int = 0
    connect_attempts: int = 0  # hellos received
    connecting: int = 0  # handshakes in progress now
    peak_concurrent_connects: int = 0
    connects: int = 0  # connections that reached "connected"
    connected: int = 0
    peak_connected: int = 0
    refused: int = 0  # handshakes answered with a close reason
    replaced: int = 0  # connections ended (440) by a second connection of the same account
    messages_enqueued: int = 0
    messages_delivered: int = 0
    messages_redelivered: int = 0
    messages_acked: int = 0
    messages_receipted: int = 0  # left the queue at the client's transport receipt (whatsmeow delivery)
    sends_received: int = 0
    answers_lost: int = 0  # sends accepted whose answer a lose_answers fault withheld
    receipts_sent: int = 0
    marks_read: int = 0
    downloads: int = 0
    traffic_generated: int = 0
    started_at: float = attrs.field(factory=wall_clock)
    last_connected_at: float | None = None


@attrs.define
class Faults:
    """Injected faults; ``*_all`` apply to every session, the dicts/sets to named ones."""

    stall_all: bool = False
    stalled: set[str] = attrs.field(factory=set)
    slow_all: float = 0.0
    slow: dict[str, float] = attrs.field(factory=dict)
    refuse_qr_all: int | None = None
    refuse_qr: dict[str, int] = attrs.field(factory=dict)
    outdated_all: bool = False
    outdated: set[str] = attrs.field(factory=set)
    lost_answers: dict[str, int] = attrs.field(factory=dict)  # session -> sends left whose answer is lost

    def is_stalled(self, session: str) -> bool:
        return self.stall_all or session in self.stalled

    def take_lost_answer(self, session: str) -> bool:
        """Whether this send's answer is to be lost (counts one down)."""
        left = self.lost_answers.get(session, 0)
        if left <= 0:
            return False
        if left == 1:
            del self.lost_answers[session]
        else:
            self.lost_answers[session] = left - 1
        return True
