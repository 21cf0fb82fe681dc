"""The simulated WhatsApp server (``zapvisor simulate`` / ``python -m actors.simulator``).

A separate process, reached over real websockets, good enough to test and
benchmark the whole product: accounts, QR and pairing-code login, contacts that
send text and media (scripted or from a seeded generator), an offline queue that
delivers like whatsmeow (a message is gone once the client's transport receipted
it; an idealised mode re-delivers everything not acknowledged after the store),
outbound sends named by the server (as WhatsApp does) with delivered/read/played
receipts carrying that id, and fault injection. State that must survive
``kill -9`` (accounts, credentials, offline queues) lives in
``<state_dir>/simulator.json``, replaced atomically.

Public API: :func:`serve` (inside trio), :func:`main` (process entry),
:class:`SimulatorProcess` (run it as a child process: start, ``kill -9``,
restart on the same port and state), :class:`SimulatorConfig`,
:class:`SimulatorControl` (control client),
:class:`SimulatorStats`, :class:`TrafficSpec`, errors rooted at
:class:`SimulatorError`.

Running it::

    python -m actors.simulator --port 8765 --state-dir data/simulator [--auto-pair]
    # prints "SIMULATOR_READY ws://127.0.0.1:8765" once listening; SIGTERM/SIGINT stop it
    # cleanly (state written); `zapvisor simulate` runs the same entry, actors.simulator.main(argv).

Session protocol (path ``/wa``; JSON text frames)
--------------------------------------------------
Client → server. Requests carry ``rid``; the answer is ``{"re": rid, "ok": true, ...}``
or ``{"re": rid, "ok": false, "code": 400|404, "error": "..."}``.

* ``{"op": "hello", "session": id, "creds": blob|null}`` - first frame. The
  account is created on first sight. Answer: ``{"ev": "welcome", "paired": bool,
  "delivery": "whatsmeow"|"idealised"}`` or a ``close`` frame (below) when refused. ``delivery``
  names the one signal below (``received`` or ``ack``) that this server acts on: a client sends
  only that one (the other would cost a frame each way per batch for nothing).
* ``{"op": "ping", "rid": n}`` → ``{"re": n, "ok": true}`` (the probe round trip).
* ``{"op": "received", "ids": [message_id, ...]}`` - the client's transport has
  these messages (sent as soon as a ``messages`` frame is read, before any
  application code runs: whatsmeow's delivery receipt); no answer. In the
  default ``whatsmeow`` delivery mode this is when a message leaves the offline
  queue for good: a client that dies after it loses the message unless it
  journaled it (DESIGN §9).
* ``{"op": "ack", "ids": [message_id, ...]}`` - these messages are stored; no
  answer. In the ``idealised`` delivery mode (``--delivery idealised``, kinder
  than real WhatsApp, kept for comparison) only acked messages leave the
  offline queue and everything unacked is re-delivered on the next connection.
* ``{"op": "send", "rid", "to", "text", "media": null|{"kind", "mimetype",
  "file_name", "data": base64}}`` → ``{"ok", "id", "ts"}``: the server names the
  message (the client chooses no id, like neonize's SendMessage), so repeating a
  send makes a second message. Receipts carrying that ``id`` follow (``played``
  too for audio and video). A send to another simulated account's JID lands in
  that account's queue (same id). With ``"kind": "reaction"|"edit"|"revoke"`` and
  ``"target_id"`` it is an operation on a sent or received message (``text``: the
  emoji or the new text): answered alike, recorded in ``sent``, no receipts.
* ``{"op": "mark_read", "rid", "chat", "ids": [...]}`` → ``{"ok": true}``.
* ``{"op": "download", "rid", "ref"}`` → ``{"ok": true, "data": base64}`` or 404.
* ``{"op": "pair_phone", "rid", "number": digits}`` (only while QR codes are
  shown) → ``{"ok", "code": "ABCD-EFGH", "expires_at"}``; QR codes stop.
* ``{"op": "reject_call", "rid", "call_id", "call_from"}`` → ``{"ok": true}`` (recorded, see ``_identity``).
* ``{"op": "presence", "rid", "state"}``, ``{"op": "chat_state", "rid", "chat", "state"}``,
  ``{"op": "subscribe_presence", "rid", "jid"}`` → ``{"ok": true}`` (recorded, see ``_identity``).
* ``{"op": "logout", "rid"}`` → ``{"ok": true}``, then ``close`` 401 with ``local: true``.

Server → client events (``{"ev": ...}``); timestamps are epoch seconds:

* ``qr`` ``{code, index (from 1), expires_at}`` every ``qr_interval``; after
  ``qr_count`` codes the connection closes with 408.
* ``pairing_code`` ``{code, expires_at}``; ``pair_success`` ``{jid, creds}``
  (the driver stores ``creds`` for its next hello); ``connected`` ``{jid}``.
* ``messages`` ``{msgs: [{id, chat, sender, from_me, ts, text, media: null|{ref,
  kind, mimetype, size, file_name, sha256}, is_group, is_broadcast, push_name,
  quoted_id, kind, payload, target_id}, ...]}`` (``kind``/``payload``: the message's kind and
  its description, ``actors.drivers.MessageKind``; ``target_id``: the message a reaction, edit,
  delete or poll vote acts on) - what is deliverable at once travels in one frame, in
  queue order; at most ``delivery_window`` messages in flight (not yet receipted,
  or not yet acked in the idealised mode) at a time.
* ``offline_sync_done`` ``{count}`` after the backlog queued before ``connected``.
* ``receipt`` ``{ids, chat, kind: delivered|read|played, ts}``;
  ``presence`` ``{jid, state, chat, last_seen}``; ``lid_mapping`` ``{lid, pn}``;
  ``call_offer`` ``{call_id, from, from_alt, ts, video}``; ``history`` ``{chats: [{jid, name,
  is_group, msgs}], progress, sync_type}``; a message sent as a LID carries
  ``sender_alt`` when its phone number is shown (commands: ``_identity``);
  ``undecryptable`` ``{id, chat, sender, ts, unavailable}``.
* ``close`` ``{code, reason, expires_at?, ban_code?, local?}`` - sent just
  before the websocket closes with code ``4000 + code``. Codes: 401 logged out,
  402 temporary ban (``expires_at``), 403 forbidden, 405 client outdated, 406
  banned, 408 QR/pairing timed out, 411, 428, 440 replaced (a newer connection
  of the same session, or injected), 500, 503, 515 restart required. A dropped
  connection ends with no ``close`` frame (websocket 1006).

Control protocol (path ``/control``)
------------------------------------
``{"rid", "cmd", "args": {...}}`` → ``{"re", "ok", "result"|"error"}``. Commands
(``SimulatorControl`` has one method each): ``stats``, ``account``, ``sent``,
``flush``, ``create_account``, ``scan``, ``confirm_pairing``, ``send_message``,
``presence``, ``undecryptable``, ``send_as_lid``, ``reveal_lid``, ``call``, ``rejected_calls``, ``history``, ``presence_sent``, ``traffic_start``/``traffic_stop``; faults
``drop``, ``disconnect(code)``, ``stall``, ``lose_answers`` (accept a send, then
drop the link before answering it), ``slow_connect``, ``ban``/``unban``,
``replace``, ``logout``, ``refuse_qr``, ``outdated``, ``reset_faults``, ``exit``.
"""

from ._client import SimulatorControl, SimulatorStats
from ._config import SimulatorConfig
from ._errors import ControlConnectionError, ControlError, SimulatorError, StateFileError
from ._process import SimulatorProcess
from ._serve import READY_PREFIX, main, serve
from ._traffic import TrafficSpec

__all__ = [
    "READY_PREFIX",
    "ControlConnectionError",
    "ControlError",
    "SimulatorConfig",
    "SimulatorControl",
    "SimulatorError",
    "SimulatorProcess",
    "SimulatorStats",
    "StateFileError",
    "TrafficSpec",
    "main",
    "serve",
]
