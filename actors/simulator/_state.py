"""The simulator's durable state: accounts, credentials, offline queues.

Everything here survives ``kill -9`` of the simulator: changes mark the state
dirty and a single writer task commits them as one JSON file replaced
atomically (write to a temporary file, then ``os.replace``), batching the
changes of ``flush_interval`` seconds into one write (group commit). Callers
that must not lose a change across a crash (a scripted inbound message)
``await state.flush()``, which returns once a write containing it has landed.
The file survives process death, not power loss (no fsync: this is a test
server).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any

import attrs
import trio

from ._errors import StateFileError

STATE_VERSION = 1
# Wait at least this many times the last serialization's cost between writes.
SNAPSHOT_COST_FACTOR = 10.0


def account_jid(session_id: str) -> str:
    """The phone-number JID the simulator gives a session's account (stable per session id)."""
    digits = int(hashlib.sha256(session_id.encode()).hexdigest(), 16) % 10**9
    return f"55119{digits:09d}@s.whatsapp.net"


def new_credentials() -> str:
    """A fresh opaque credentials blob, handed to the driver at pairing."""
    return "creds-" + secrets.token_hex(16)


@attrs.define(eq=False)
class Account:
    """One WhatsApp account known to the simulator.

    ``queue`` holds inbound items not yet acknowledged, in delivery order
    (message id → wire message); ``events`` holds frames that need no ack
    (receipts, presences) waiting for the next connection.
    """

    session_id: str
    jid: str
    creds: str | None = None
    banned_until: float | None = None
    ban_code: int | None = None
    queue: OrderedDict[str, dict[str, Any]] = attrs.field(factory=OrderedDict)
    events: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def paired(self) -> bool:
        return self.creds is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "jid": self.jid,
            "creds": self.creds,
            "banned_until": self.banned_until,
            "ban_code": self.ban_code,
            "queue": list(self.queue.values()),
            "events": self.events,
        }

    @classmethod
    def from_json(cls, session_id: str, data: dict[str, Any]) -> Account:
        return cls(
            session_id=session_id,
            jid=data["jid"],
            creds=data["creds"],
            banned_until=data["banned_until"],
            ban_code=data["ban_code"],
            queue=OrderedDict((item["id"], item) for item in data["queue"]),
            events=list(data["events"]),
        )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@attrs.define(eq=False)
class State:
    """Accounts by session id, persisted by :meth:`run` (see the module docstring)."""

    path: Path
    flush_interval: float
    accounts: dict[str, Account] = attrs.field(factory=dict)
    _by_jid: dict[str, str] = attrs.field(factory=dict)  # account JID → session id
    _generation: int = 0  # bumped by every change
    _written: int = 0  # generation of the last completed write
    _dirty: trio.Event = attrs.field(factory=trio.Event)
    _wrote: trio.Event = attrs.field(factory=trio.Event)
    _snapshot_cost: float = 0.0  # seconds the last serialization held the trio thread

    @classmethod
    async def load(cls, path: Path, flush_interval: float) -> State:
        """Read the state file if there is one.

        Raises :class:`StateFileError` when it exists but is not a state file of
        this version.
        """
        state = cls(path=path, flush_interval=flush_interval)
        text = await trio.to_thread.run_sync(_read, path)
        if text is None:
            return state
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise StateFileError(f"{path}: version {data.get('version')!r}, expected {STATE_VERSION}")
            state.accounts = {sid: Account.from_json(sid, acc) for sid, acc in data["accounts"].items()}
            state._by_jid = {account.jid: sid for sid, account in state.accounts.items()}
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, StateFileError):
                raise
            raise StateFileError(f"{path}: not a simulator state file ({exc})") from exc
        return state

    def account(self, session_id: str) -> Account:
        """The account of ``session_id``, created unpaired on first use."""
        account = self.accounts.get(session_id)
        if account is None:
            account = self.accounts[session_id] = Account(session_id=session_id, jid=account_jid(session_id))
            self._by_jid[account.jid] = session_id
            self.changed()
        return account

    def session_of(self, jid: str) -> str | None:
        """The session whose account has this JID, if the simulator knows one."""
        return self._by_jid.get(jid)

    def changed(self) -> None:
        """Record that something must be written; the writer task picks it up."""
        self._generation += 1
        self._dirty.set()

    async def flush(self) -> None:
        """Return once every change made before this call is on disk."""
        target = self._generation
        while self._written < target:
            await self._wrote.wait()

    def _snapshot(self) -> str:
        return json.dumps(
            {"version": STATE_VERSION, "accounts": {sid: acc.to_json() for sid, acc in self.accounts.items()}},
            separators=(",", ":"),
        )

    async def write_now(self) -> None:
        """Write the current state at once (used at shutdown)."""
        generation = self._generation
        started = trio.current_time()
        snapshot = self._snapshot()  # on the trio thread: the dicts must not change under it
        self._snapshot_cost = trio.current_time() - started
        await trio.to_thread.run_sync(_write_atomically, self.path, snapshot)
        self._written = max(self._written, generation)
        wrote, self._wrote = self._wrote, trio.Event()
        wrote.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task: commits batched changes until cancelled."""
        task_status.started()
        while True:
            await self._dirty.wait()
            # Group commit: collect more changes. Serializing blocks the trio thread, so a
            # big state is written less often, keeping that share of the loop under ~10%.
            await trio.sleep(max(self.flush_interval, SNAPSHOT_COST_FACTOR * self._snapshot_cost))
            self._dirty = trio.Event()
            await self.write_now()
