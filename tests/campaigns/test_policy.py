"""The schedule window in a time zone, the template, and a definition checked whole."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from actors.campaigns import CampaignInvalid, Pacing, Schedule, build_campaign, parse_csv, render, table

SP = zoneinfo.ZoneInfo("America/Sao_Paulo")  # UTC-3, no daylight saving time since 2019


def at(*fields: int) -> float:
    return dt.datetime(*fields, tzinfo=SP).timestamp()


def test_the_window_opens_on_allowed_hours_and_days_in_the_zone() -> None:
    office = Schedule("America/Sao_Paulo", (9, 18), ("mon", "tue", "wed", "thu", "fri"))
    wednesday_noon = at(2026, 12, 2, 12, 0)
    assert office.next_open(wednesday_noon) == wednesday_noon  # inside: now
    assert office.next_open(at(2026, 12, 2, 7, 30)) == at(2026, 12, 2, 9, 0)  # before: today's opening
    assert office.next_open(at(2026, 12, 2, 18, 0)) == at(2026, 12, 3, 9, 0)  # closed at 18: tomorrow
    assert office.next_open(at(2026, 12, 4, 19, 0)) == at(2026, 12, 7, 9, 0)  # friday night: monday
    assert office.next_open(at(2026, 12, 5, 10, 0)) == at(2026, 12, 7, 9, 0)  # saturday: monday
    later = Schedule("America/Sao_Paulo", start_at=at(2026, 12, 10, 15, 0))
    assert later.next_open(wednesday_noon) == at(2026, 12, 10, 15, 0)  # not before its start


def test_the_caps_day_is_the_zones() -> None:
    schedule = Schedule("America/Sao_Paulo")
    late = at(2026, 12, 2, 23, 30)  # already the 3rd in UTC
    assert schedule.day_start(late) == at(2026, 12, 2, 0, 0)
    assert schedule.next_day(late) == at(2026, 12, 3, 0, 0)


@pytest.mark.parametrize(("field", "build"), [
    ("schedule.timezone", lambda: Schedule("Mars/Olympus")),
    ("schedule.hours", lambda: Schedule("UTC", (18, 9))),
    ("schedule.days", lambda: Schedule("UTC", days=("someday",))),
])
def test_bad_schedules_name_their_field(field, build) -> None:
    with pytest.raises(CampaignInvalid) as refused:
        build()
    assert refused.value.field == field


def test_csv_with_quotes_and_variables_and_the_template() -> None:
    rows = parse_csv('phone,name,city\n"+55 (21) 99999-0001","Silva, Ana",Rio\n\n5521999990002,Bia,"São Paulo"\n')
    assert [(r.phone, dict(r.variables), r.where) for r in rows] == [
        ("+55 (21) 99999-0001", {"name": "Silva, Ana", "city": "Rio"}, "recipients_csv[1]"),
        ("5521999990002", {"name": "Bia", "city": "São Paulo"}, "recipients_csv[2]")]
    assert render("Olá {{ name }} de {{city}} ({{phone}})", {**rows[0].variables, "phone": "x"}) == \
        "Olá Silva, Ana de Rio (x)"


def test_a_definition_keeps_junk_numbers_as_skipped_and_refuses_missing_variables() -> None:
    pacing = Pacing((1.0, 2.0), 10, 5, 3)
    recipients = table(["phone", "name"], [["+55 21 99999-0001", "A"], ["call me", "B"], ["5521999990001", "C"]])
    definition = build_campaign(name="n", text="hi {{name}}", media=None, sessions=["s1"], schedule=Schedule("UTC"),
                                pacing=pacing, recipients=recipients)
    assert [(r.jid, r.skip_reason) for r in definition.recipients] == [
        ("5521999990001@s.whatsapp.net", None), ("call me", "invalid_number"),
        ("5521999990001@s.whatsapp.net", "duplicate")]
    with pytest.raises(CampaignInvalid) as refused:
        build_campaign(name="n", text="hi {{surname}}", media=None, sessions=["s1"], schedule=Schedule("UTC"),
                       pacing=pacing, recipients=recipients)
    assert refused.value.field == "recipients.rows[0].surname"
    with pytest.raises(CampaignInvalid) as refused:
        build_campaign(name="n", text="hi", media=None, sessions=["s1", "s1"], schedule=Schedule("UTC"),
                       pacing=pacing, recipients=recipients)
    assert refused.value.field == "sessions"
