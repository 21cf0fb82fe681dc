"""A campaign's pacing policy and schedule window, and its message template.

**Pacing** (per session, every campaign on it together — see the README's "Campaigns" for why
these defaults): a random delay in ``[low, high]`` seconds between two campaign sends of one
session (counted from the moment the previous one was answered by WhatsApp), a daily cap of
campaign messages per session, a smaller daily cap on messages to contacts who never wrote to that
number ("cold" contacts: what gets numbers reported), and a number of failed sends in a row that
pauses the campaign. The days of the caps are the schedule's time zone's.

**Schedule**: a start time (wall clock, optional), the allowed hours ``[from, to)`` and the allowed
week days, in an IANA time zone (:mod:`zoneinfo`). :meth:`Schedule.next_open` answers when sending
is allowed next.

**Template**: text with ``{{variable}}`` placeholders filled from each recipient's variables
(``{{phone}}`` is always defined); a placeholder a recipient lacks is refused at creation.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import CampaignInvalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Week day names, in ``datetime.weekday()`` order."""

PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
"""``{{name}}`` in a template (spaces inside the braces allowed)."""


@attrs.frozen
class Pacing:
    delay: tuple[float, float]
    daily_cap: int
    cold_daily_cap: int
    failure_threshold: int

    @classmethod
    def from_document(cls, document: Mapping[str, Any], defaults: Any) -> Pacing:
        """The policy a campaign stored (``pacing``), the settings' ``campaigns`` section filling what it
        leaves out."""
        low, high = document.get("delay", defaults.delay)
        return cls((float(low), float(high)), int(document.get("daily_cap", defaults.daily_cap)),
                   int(document.get("cold_daily_cap", defaults.cold_daily_cap)),
                   int(document.get("failure_threshold", defaults.failure_threshold)))

    def to_document(self) -> dict[str, Any]:
        return {"delay": list(self.delay), "daily_cap": self.daily_cap, "cold_daily_cap": self.cold_daily_cap,
                "failure_threshold": self.failure_threshold}


@attrs.frozen
class Schedule:
    timezone: str
    hours: tuple[int, int] = (0, 24)
    days: tuple[str, ...] = DAYS
    start_at: float | None = None

    def __attrs_post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise CampaignInvalid("schedule.timezone", f"not an IANA time zone: {self.timezone!r}") from None
        start, end = self.hours
        if not 0 <= start < end <= 24:
            raise CampaignInvalid("schedule.hours",
                                  f"must be [from, to) with 0 <= from < to <= 24, got {list(self.hours)}")
        if not self.days or any(day not in DAYS for day in self.days):
            raise CampaignInvalid("schedule.days", f"must be a non-empty list of {', '.join(DAYS)}")

    @classmethod
    def from_document(cls, document: Mapping[str, Any], default_timezone: str) -> Schedule:
        hours = document.get("hours", (0, 24))
        return cls(str(document.get("timezone") or default_timezone), (int(hours[0]), int(hours[1])),
                   tuple(document.get("days", DAYS)), document.get("start_at"))

    def to_document(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "hours": list(self.hours), "days": list(self.days),
                "start_at": self.start_at}

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def day_start(self, now: float) -> float:
        """Wall-clock start of ``now``'s day in the schedule's time zone (the caps' day)."""
        local = dt.datetime.fromtimestamp(now, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def next_day(self, now: float) -> float:
        """Wall-clock start of the day after ``now``'s, in the schedule's time zone."""
        local = dt.datetime.fromtimestamp(now, self.zone).date() + dt.timedelta(days=1)
        return dt.datetime.combine(local, dt.time(), self.zone).timestamp()

    def next_open(self, now: float) -> float:
        """The first wall-clock time at or after ``now`` when sending is allowed: ``now`` itself inside
        the window. Searches at most two weeks ahead (a window exists in every week)."""
        now = max(now, self.start_at or now)
        local = dt.datetime.fromtimestamp(now, self.zone)
        start, end = self.hours
        for offset in range(15):
            day = local.date() + dt.timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days:
                continue
            opens = dt.datetime.combine(day, dt.time(start), self.zone)
            closes = (dt.datetime.combine(day, dt.time(), self.zone) + dt.timedelta(hours=end))
            if local < closes:
                return max(now, opens.timestamp())
        raise AssertionError("a schedule with allowed days always opens within two weeks")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, variables: Mapping[str, Any]) -> str:
    """``text`` with each ``{{name}}`` replaced by ``variables[name]`` (checked at creation)."""
    return PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]), text)
