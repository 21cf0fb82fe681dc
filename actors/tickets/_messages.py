"""The messages a :class:`~actors.tickets.TicketActor` answers, and its reply values.

A closed set of frozen classes. Expected outcomes (a conflict, a closed ticket) are reply
values, never exceptions: two agents racing for one ticket is business as usual.
"""

from __future__ import annotations

import attrs

from actors.store import AlreadyStored, Inserted, NewMessage, Ticket


@attrs.frozen
class AppendInbound:
    """Store a run of the contact's messages on this ticket, in order, in one write (idempotent
    by WhatsApp id).

    Reply: :class:`Appended`, or :class:`MovedTo` when the ticket was closed and the contact's
    messages belong to another ticket (outside the reopen window: a new one), or
    :class:`TicketRefused` ``invalid`` when the store refused the run (nothing stored). ``known`` is the
    ticket as the sender just found or created it (a new conversation): an actor that has not
    read its ticket yet starts from it instead of reading the store.
    """

    messages: tuple[NewMessage, ...]
    known: Ticket | None = None


@attrs.frozen
class Accept:
    """Assign ``user_id`` and open the ticket. Reply: Ticket or TicketRefused(conflict)."""

    user_id: int


@attrs.frozen
class Transfer:
    """Move to ``queue`` and/or ``user_id`` (no user: back to pending). Reply: Ticket or TicketRefused."""

    queue: str | None = None
    user_id: int | None = None


@attrs.frozen
class Close:
    """Close (idempotent). Reply: Ticket."""


@attrs.frozen
class Reopen:
    """Reopen a closed ticket (``open`` with ``user_id``, else ``pending``). Reply: Ticket or TicketRefused."""

    user_id: int | None = None


@attrs.frozen
class MarkTicketRead:
    """The agent saw the conversation: unread goes to 0. Reply: Ticket."""


@attrs.frozen
class GetTicket:
    """Reply: the ticket as this actor knows it."""


@attrs.frozen
class PassivateIfIdle:
    """Stop (a normal stop: passivation) if no other message came for ``idle_timeout`` seconds.
    Sent by the directory's periodic check; the mailbox orders it after any pending message."""


@attrs.frozen
class Appended:
    """One result per appended message: Inserted, or AlreadyStored (a re-delivery: nothing changed)."""

    results: tuple[Inserted | AlreadyStored, ...]
    ticket: Ticket


@attrs.frozen
class MovedTo:
    """This ticket is closed for good; the message goes to ``ticket`` (a new pending one)."""

    ticket: Ticket


@attrs.frozen
class TicketRefused:
    """``code``: conflict | not_found | busy (another node holds the ticket's lock) | invalid (the
    store refused the request's or the messages' content: nothing was written, the actor goes on)."""

    code: str
    message: str
