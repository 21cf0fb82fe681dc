"""At boot, store what this node's inbound journal still holds, whichever node owns its sessions now.

Why. The journal (:mod:`actors.drivers._journal`) keeps what WhatsApp considers delivered
(whatsmeow receipts on arrival) until the store has it. A session's connection replays its own
entries, but only on the node whose journal holds them: after a ``kill -9`` the dead node's
sessions are taken over by the others, and what it had receipted but not stored would wait in its
journal until the same session ran on that node again, perhaps never (``bench/failover.py`` lost
10 and 1 messages so in two ``--quick`` runs). So a node that boots first replays *every* session
of its journal into the store, including sessions now running elsewhere, then releases the
entries and compacts the file.

How it stays exactly once. The entries go through the node's :class:`~actors.sessions.InboundSink`,
the very path a connection's messages take (contact, ticket, ``message.created``, webhooks,
media jobs, reactions/edits/deletes applied to their targets, LID pairs learnt first), so every
side effect follows from a store insert or change, as live. Three cases:

* an entry the store already has (its release was lost: it is written 5 ms after the commit; or
  the new owner was re-delivered it), an undecryptable placeholder aside: filtered out *before* the sink, by WhatsApp id, so it does
  not even look its conversation up (a ticket an agent closed since is not reopened by a replay);
  the sink's own idempotence (``AlreadyStored``, nothing published) covers a race past that check;
* an entry nobody stored: inserted, with its side effects once, each conversation's messages in
  journal order (= arrival order). They land *after* whatever the new owner stored meanwhile for the
  same chat; they keep their WhatsApp timestamps (``sent_at``);
* an operation (reaction, edit, delete for everyone) is no stored message and cannot be filtered
  by id: it is applied to its target again. A delete is idempotent; a reaction or an edit that is
  already the target's state changes nothing (a reaction is published once more). One replayed
  after a newer operation on the same target (the customer reacted or edited again while this node
  was down) undoes the newer one: the journal keeps no order across nodes.

When. The session manager replays before its first reconcile pass, so at boot nothing runs
beside it (a session started by a request meanwhile replays the same entries itself, and the store
dedupes). A running node replays too, leaving out the sessions it runs, after a rebalance pass
that handed off a session that did not answer its hand-over — it timed out (a store so slow that
the session could not store what its connection delivered before it was stopped) or was not running
(stopped, failed: what its last connection receipted may never have been stored); those entries
would otherwise wait for this node's next boot — and at the end of a drain, once every session has
stopped. When the store fails during the replay, what is left stays in the journal for the
next boot (or for the session's next connection here). The window that remains: a node that dies
and never comes back (its disk lost) loses what its journal held; nothing else can read it.

Only the simulated driver's shared journal is replayed here. neonize journals are per session
(``<session>.journal``) and hold whatsmeow's protobuf events, which only a worker decodes: they
are replayed when the session next connects on this node (not yet at boot).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import attrs
import trio

from actors.drivers import OPERATIONS, LidMapped, Message, MessageKind
from actors.drivers._journal import close_shared, open_shared
from actors.drivers._simulated import JOURNAL_FILE, journaled
from actors.sessions import InboundSink
from actors.store import Store, StoreClosed, StoreUnavailable
from supervisor import ActorFailed, AskTimeout

_LOG = logging.getLogger("zapvisor.sessions")

_FAILURES = (StoreUnavailable, StoreClosed, ActorFailed, AskTimeout)
"""What ends a replay early (the store or a ticket actor failing): the rest waits for the next boot."""


@attrs.frozen
class Replayed:
    """What a boot replay did: sessions found in the journal, messages it stored, entries it
    found already stored, entries of sessions the store no longer has, entries left for later."""

    sessions: int = 0
    stored: int = 0
    already: int = 0
    orphaned: int = 0
    left: int = 0


async def replay_journal(journal_dir: Path, store: Store, inbound: InboundSink,
                         running: Collection[str] = ()) -> Replayed:
    """Store what ``<journal_dir>/simulated.journal`` holds, release it and compact the file
    (see the module docstring), the sessions in ``running`` aside (they run here: their
    connections replay their own entries). Blocking file work runs in threads."""
    path = Path(journal_dir) / JOURNAL_FILE
    if not await trio.to_thread.run_sync(path.exists):
        return Replayed()
    journal = await trio.to_thread.run_sync(open_shared, path)
    try:
        pending = await trio.to_thread.run_sync(journal.pending)
        found = [session for session in journaled(pending) if session.session_id not in running]
        counts = {"sessions": len(found), "stored": 0, "already": 0, "orphaned": 0, "left": 0}
        for index, session in enumerate(found):
            try:
                record = await store.get_session(session.session_id)
                if record is None:  # deleted and purged: there is nothing to store its messages into
                    _LOG.warning("journal: %d entries of session %s, which the store no longer has, dropped",
                                 len(session.keys), session.session_id)
                    counts["orphaned"] += len(session.keys)
                else:
                    stored, already = await _replay_session(store, inbound, record.tenant_id, session.session_id,
                                                            session.events)
                    counts["stored"] += stored
                    counts["already"] += already
            except _FAILURES as exc:
                counts["left"] = sum(len(s.keys) for s in found[index:])
                _LOG.warning("journal: replay stopped at session %s (%s: %s); %d entries wait for the next boot",
                             session.session_id, type(exc).__name__, exc, counts["left"])
                break
            await trio.to_thread.run_sync(journal.release, session.keys)
        await trio.to_thread.run_sync(journal.compact)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(close_shared, journal)
    replayed = Replayed(**counts)
    if replayed.sessions:
        _LOG.info("journal replayed: %s", replayed)
    return replayed


async def _replay_session(store: Store, inbound: InboundSink, tenant_id: str, session_id: str,
                          events: tuple[LidMapped | Message, ...]) -> tuple[int, int]:
    """Hand one session's journaled events to the sink, the stored ones left out; returns
    (messages handed over, messages found already stored)."""
    fresh: list[Message] = []
    already = 0
    for event in events:
        if isinstance(event, LidMapped):
            await inbound.learn(session_id, tenant_id, event)
        elif event.kind not in OPERATIONS and await _stored(store, session_id, event.id):
            already += 1
        else:
            fresh.append(event)
    if fresh:
        await inbound.deliver(session_id, tenant_id, fresh)
    return len(fresh), already


async def _stored(store: Store, session_id: str, wa_id: str) -> bool:
    """Whether the store has the message itself: an undecryptable placeholder under its id does not
    count (the sink fills it with the content, as when WhatsApp re-sends it)."""
    stored = await store.get_message(session_id, wa_id)
    return stored is not None and stored.kind != str(MessageKind.UNDECRYPTABLE)
