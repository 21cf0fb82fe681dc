"""Configuration of the simulated WhatsApp server (frozen, validated at construction)."""

from __future__ import annotations

from pathlib import Path

import attrs


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"SimulatorConfig.{attribute.name} must be > 0, got {value!r}")


DELIVERY_MODES = ("whatsmeow", "idealised")
"""How inbound messages leave an account's queue (see :attr:`SimulatorConfig.delivery`)."""


def _delivery_mode(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in DELIVERY_MODES:
        raise ValueError(f"SimulatorConfig.delivery must be one of {', '.join(DELIVERY_MODES)}, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"SimulatorConfig.{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class SimulatorConfig:
    """How the simulator listens, persists and paces itself.

    The defaults mimic WhatsApp closely enough for the demo; tests shrink the
    intervals.
    """

    state_dir: Path = attrs.field(converter=Path)
    host: str = "127.0.0.1"
    port: int = attrs.field(default=0, validator=_non_negative)  # 0 = pick a free port
    # WhatsApp shows a new QR code about every 20 s and gives up after ~6 of them (then 408).
    qr_interval: float = attrs.field(default=20.0, validator=_positive)
    qr_count: int = attrs.field(default=6, validator=_positive)
    # A pairing code stays valid for about 3 minutes on WhatsApp.
    pairing_code_ttl: float = attrs.field(default=180.0, validator=_positive)
    # Unacknowledged messages in flight per connection: like a transport window, it
    # bounds what a slow session has buffered and what a dropped link must re-deliver.
    # WhatsApp itself has no such window (whatsmeow acknowledges on receipt), so the default
    # is what a session holds at most (actors.sessions INBOUND_HELD, 256): a window below it
    # would cap a busy session at window / store latency, a limit of this server, not of ours.
    delivery_window: int = attrs.field(default=256, validator=_positive)
    # When an inbound message counts as delivered (leaves the queue, never re-delivered):
    # "whatsmeow" (the default, real WhatsApp through whatsmeow/neonize, DESIGN §9): as soon as
    # the client's transport has it - its ``received`` receipt, sent before any application
    # code ran; "idealised": only once the client acks it after its store commit (kinder than
    # real WhatsApp; kept for comparison).
    delivery: str = attrs.field(default="whatsmeow", validator=_delivery_mode)
    # Delivered/read receipts follow an accepted send after these delays (seconds).
    receipt_delay: float = attrs.field(default=0.05, validator=_non_negative)
    read_delay: float = attrs.field(default=0.2, validator=_non_negative)
    # Extra latency of every handshake: makes "concurrent connects" measurable.
    handshake_delay: float = attrs.field(default=0.0, validator=_non_negative)
    # Pair unknown accounts without a QR code (benchmarks provisioning 1,000 sessions).
    auto_pair: bool = False
    # Group commit window of the state file: many changes, one atomic write.
    flush_interval: float = attrs.field(default=0.05, validator=_non_negative)
    # A client that connects but never says hello is dropped after this long.
    hello_timeout: float = attrs.field(default=10.0, validator=_positive)
    # Outbound messages kept per account for inspection through the control API.
    sent_log: int = attrs.field(default=1000, validator=_positive)

    @property
    def state_file(self) -> Path:
        """The JSON file holding accounts, credentials and offline queues."""
        return self.state_dir / "simulator.json"

    @property
    def media_dir(self) -> Path:
        """Where scripted media bytes live (generated media are recomputed from their ref)."""
        return self.state_dir / "media"
