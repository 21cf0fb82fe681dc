"""A campaign definition checked whole before anything is written (DESIGN §10: a refused campaign
leaves nothing behind; the error names the row and field).

Recipients come as a table — JSON ``{"columns": [...], "rows": [[...], ...]}`` or CSV text whose
header names the columns —: ``phone`` is required, every other column is a variable of the row.
Refused, naming the row (``recipients.rows[0]`` is the first JSON row, ``recipients_csv[1]`` the
first CSV row after the header):

* a row with more or fewer fields than there are columns, an empty ``phone``, no ``phone`` column;
* a row lacking a variable the template uses (``{{name}}`` with no ``name`` for that row).

Kept but skipped at once, because a contact list from a CRM always has some (refusing the whole
list for one would help nobody): a phone that is not a possible number after removing spaces,
dashes, dots and parentheses (8 to 15 digits, optional leading ``+``) — ``invalid_number`` —, and
a number already listed earlier in the same campaign — ``duplicate``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from actors.store import NewRecipient

from ._errors import CampaignInvalid
from ._policy import Pacing, Schedule, placeholders

MAX_RECIPIENTS = 100_000
"""Recipients one campaign takes (one transaction writes them all)."""

PHONE_NOISE = re.compile(r"[\s\-.()]")
"""Separators people write in phone numbers."""

PHONE = re.compile(r"\+?([0-9]{8,15})")
"""A possible number once the separators are gone (E.164: at most 15 digits)."""

JID_SERVER = "s.whatsapp.net"


@attrs.frozen
class RecipientInput:
    """A recipient as given: ``where`` names it in refusals (``recipients_csv[3]``)."""

    phone: str
    variables: Mapping[str, str]
    where: str


@attrs.frozen
class CampaignDefinition:
    """What the store's ``create_campaign`` takes, checked."""

    name: str
    template: dict
    sessions: tuple[str, ...]
    schedule: Schedule
    pacing: Pacing
    recipients: tuple[NewRecipient, ...]


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, columns_field: str = "recipients.columns",
          field: str = "recipients.rows", first: int = 0) -> list[RecipientInput]:
    """Rows of values under ``columns`` (one named ``phone``; the others are variables) as recipients.
    Rows are named ``field[first + index]``. Raises CampaignInvalid naming the row (and column), or
    ``columns_field``."""
    columns = [name.strip() for name in columns]
    if "phone" not in columns:
        raise CampaignInvalid(columns_field, f"the columns must include phone, got {columns}")
    if len(set(columns)) != len(columns) or not all(columns):
        raise CampaignInvalid(columns_field, f"column names must be non-empty and distinct, got {columns}")
    recipients = []
    for index, row in enumerate(rows):
        where = f"{field}[{first + index}]"
        if len(row) != len(columns):
            raise CampaignInvalid(where, f"{len(row)} fields, there are {len(columns)} columns")
        values = dict(zip(columns, (value.strip() for value in row)))
        phone = values.pop("phone")
        if not phone:
            raise CampaignInvalid(f"{where}.phone", "empty")
        recipients.append(RecipientInput(phone, values, where))
    return recipients


def parse_csv(text: str, field: str = "recipients_csv") -> list[RecipientInput]:
    """CSV text (header first) as recipients (:func:`table`; rows counted from 1 after the header,
    blank lines ignored). Raises CampaignInvalid naming the row and column."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise CampaignInvalid(field, f"malformed CSV: {exc}") from None
    if not rows:
        raise CampaignInvalid(field, "empty: a header row naming the columns (one of them phone) comes first")
    return table(rows[0], rows[1:], columns_field=f"{field}[0]", field=field, first=1)


def normalise_phone(phone: str) -> str | None:
    """The digits of a possible number (``+55 (11) 9999-0000`` → ``551199990000``), else None."""
    match = PHONE.fullmatch(PHONE_NOISE.sub("", phone))
    return match.group(1) if match else None


def build_campaign(
    *, name: str, text: str, media: dict | None, sessions: Sequence[str], schedule: Schedule, pacing: Pacing,
    recipients: Sequence[RecipientInput],
) -> CampaignDefinition:
    """Check a definition whole. Raises CampaignInvalid naming the first fault."""
    if not recipients:
        raise CampaignInvalid("recipients", "at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise CampaignInvalid("recipients", f"at most {MAX_RECIPIENTS} recipients, got {len(recipients)}")
    if len(set(sessions)) != len(sessions):
        raise CampaignInvalid("sessions", "a session is listed twice")
    low, high = pacing.delay
    if not 0 < low <= high:
        raise CampaignInvalid("pacing.delay", f"must be [low, high] seconds with 0 < low <= high, got {[low, high]}")
    used = placeholders(text)
    seen: set[str] = set()
    built = []
    for recipient in recipients:
        variables = dict(recipient.variables)
        missing = sorted(used - set(variables) - {"phone"})
        if missing:
            raise CampaignInvalid(f"{recipient.where}.{missing[0]}",
                                  "missing: the template uses {{" + missing[0] + "}}")
        variables.setdefault("phone", recipient.phone)
        digits = normalise_phone(recipient.phone)
        skip = None
        if digits is None:
            skip = "invalid_number"
        elif digits in seen:
            skip = "duplicate"
        else:
            seen.add(digits)
        jid = f"{digits}@{JID_SERVER}" if digits else recipient.phone
        built.append(NewRecipient(recipient.phone, jid, variables, skip))
    template: dict[str, Any] = {"text": text}
    if media is not None:
        template["media"] = media
    return CampaignDefinition(name, template, tuple(sessions), schedule, pacing, tuple(built))
