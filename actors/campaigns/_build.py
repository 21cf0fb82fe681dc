"""A campaign definition checked whole before anything is written (DESIGN §10: a refused campaign
leaves nothing behind; the error names the row and field).

Recipients come as a list (``phone`` + ``variables``) or as CSV text whose header names the columns:
``phone`` is required, every other column is a variable of the row. Refused, naming the row:

* a CSV row with more or fewer fields than the header, a missing or empty ``phone``;
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
    phone: str
    variables: Mapping[str, str]


@attrs.frozen
class CampaignDefinition:
    """What the store's ``create_campaign`` takes, checked."""

    name: str
    template: dict
    sessions: tuple[str, ...]
    schedule: Schedule
    pacing: Pacing
    recipients: tuple[NewRecipient, ...]


def parse_csv(text: str, field: str = "recipients_csv") -> list[RecipientInput]:
    """CSV text (header first) as recipients. Raises CampaignInvalid naming ``field[row]`` (rows
    counted from 1, the header not counted) and the column."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise CampaignInvalid(field, "empty: a header row naming the columns (one of them phone) comes first") from None
    except csv.Error as exc:
        raise CampaignInvalid(f"{field}[0]", f"malformed CSV header: {exc}") from None
    if "phone" not in header:
        raise CampaignInvalid(f"{field}[0]", f"the header must have a phone column, got {header}")
    if len(set(header)) != len(header) or not all(header):
        raise CampaignInvalid(f"{field}[0]", f"column names must be non-empty and distinct, got {header}")
    recipients = []
    row_number = 0
    try:
        for row_number, row in enumerate(reader, start=1):
            if not row:
                continue  # blank line
            if len(row) != len(header):
                raise CampaignInvalid(f"{field}[{row_number}]", f"{len(row)} fields, the header has {len(header)}")
            values = dict(zip(header, (value.strip() for value in row)))
            phone = values.pop("phone")
            if not phone:
                raise CampaignInvalid(f"{field}[{row_number}].phone", "empty")
            recipients.append(RecipientInput(phone, values))
    except csv.Error as exc:
        raise CampaignInvalid(f"{field}[{row_number + 1}]", f"malformed CSV: {exc}") from None
    return recipients


def normalise_phone(phone: str) -> str | None:
    """The digits of a possible number (``+55 (11) 9999-0000`` → ``551199990000``), else None."""
    match = PHONE.fullmatch(PHONE_NOISE.sub("", phone))
    return match.group(1) if match else None


def build_campaign(
    *, name: str, text: str, media: dict | None, sessions: Sequence[str], schedule: Schedule, pacing: Pacing,
    recipients: Sequence[RecipientInput], field: str = "recipients",
) -> CampaignDefinition:
    """Check a definition whole. Raises CampaignInvalid naming the first fault."""
    if not recipients:
        raise CampaignInvalid(field, "at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise CampaignInvalid(field, f"at most {MAX_RECIPIENTS} recipients, got {len(recipients)}")
    if len(set(sessions)) != len(sessions):
        raise CampaignInvalid("sessions", "a session is listed twice")
    low, high = pacing.delay
    if not 0 < low <= high:
        raise CampaignInvalid("pacing.delay", f"must be [low, high] seconds with 0 < low <= high, got {[low, high]}")
    used = placeholders(text)
    seen: set[str] = set()
    built = []
    for index, recipient in enumerate(recipients):
        variables = dict(recipient.variables)
        missing = sorted(used - set(variables) - {"phone"})
        if missing:
            raise CampaignInvalid(f"{field}[{_row(field, index)}].{missing[0]}", "missing: the template uses {{"
                                  + missing[0] + "}}")
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


def _row(field: str, index: int) -> int:
    """How the refusal numbers a row: CSV rows from 1 (after the header), list items from 0."""
    return index + 1 if field.endswith("csv") else index
