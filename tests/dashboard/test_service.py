"""The dashboard's figures, the periods they cover and the charts drawn from them."""

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.audit.service import Actor
from app.auth.models import Role, Scope
from app.core.errors import InvalidInput
from app.dashboard import charts, service
from app.dashboard.periods import Period, choose, presets
from app.incidents import service as service_incidents
from app.incidents.models import TimelineKind
from tests.dashboard.data import ZONE, local
from tests.factories import make_incident, make_token, make_user

LONDON = ZoneInfo("Europe/London")


def _reported(db, at, **fields):
    incident = make_incident(db, **fields)
    incident.reported_at = at
    db.add(incident)
    db.commit()
    return incident


def test_weeks_follow_the_school_clock_in_summer_time(db):
    """Monday 00:30 in British Summer Time is Sunday 23:30 UTC: it counts in Monday's week."""
    school_id = make_user(db, role=Role.dsl).school_id
    monday = date(2025, 6, 9)
    _reported(db, local(monday, 0, 30))
    _reported(db, local(monday - timedelta(days=1), 23, 59), platform="snapchat")
    period = Period(monday - timedelta(days=7), monday + timedelta(days=13), ZONE)
    weekly = service.incidents_per_week(
        session=db, school_id=school_id, period=period, split="platform"
    )
    assert [w.monday for w in weekly.weeks] == [
        monday - timedelta(days=7),
        monday,
        monday + timedelta(days=7),
    ]
    assert weekly.counts == {"snapchat": [1, 0, 0], "tiktok": [0, 1, 0]}
    assert weekly.totals == [1, 1, 0]


def test_a_period_cut_mid_week_counts_only_its_own_days(db):
    school_id = make_user(db).school_id
    _reported(db, local(date(2025, 3, 3), 9))  # Monday, before the period
    _reported(db, local(date(2025, 3, 5), 9))  # Wednesday, its first day
    period = Period(date(2025, 3, 5), date(2025, 3, 11), LONDON)
    weekly = service.incidents_per_week(
        session=db, school_id=school_id, period=period, split="category"
    )
    assert [(w.monday, w.first, w.last) for w in weekly.weeks] == [
        (date(2025, 3, 3), date(2025, 3, 5), date(2025, 3, 9)),
        (date(2025, 3, 10), date(2025, 3, 10), date(2025, 3, 11)),
    ]
    assert weekly.totals == [1, 0]


def _entry(db, incident, kind: TimelineKind, at, actor: Actor) -> None:
    service_incidents.add_entry(
        session=db, incident=incident, kind=kind, text="Done.", actor=actor, at=at
    )
    db.commit()


def test_medians_average_the_middle_two_of_an_even_count(db):
    dsl = make_user(db, role=Role.dsl)
    by_dsl = Actor(user_id=dsl.id)
    by_mis = Actor(token_id=make_token(db, Scope.incidents_write)[1].id)
    day = date(2025, 5, 12)
    for hours in (1, 3, 10, 30):
        incident = _reported(db, local(day, 9))
        # Entries Haven writes itself, or an API client, are not a person's first action.
        _entry(db, incident, TimelineKind.escalation, incident.reported_at, by_dsl)
        _entry(db, incident, TimelineKind.note, incident.reported_at, by_mis)
        at = incident.reported_at + timedelta(hours=hours)
        _entry(db, incident, TimelineKind.decision, at, by_dsl)
        _entry(db, incident, TimelineKind.note, at + timedelta(days=2), by_dsl)  # not the first
    _reported(db, local(day, 10))  # not acted on: not counted
    period = Period(day, day + timedelta(days=6), LONDON)
    first, closed = service.response_times(session=db, school_id=dsl.school_id, period=period)
    assert (first.what, first.count) == ("first_action", 4)
    assert first.seconds == pytest.approx(6.5 * 3600, abs=1)
    assert (closed.count, closed.seconds) == (0, None)


@pytest.mark.parametrize(
    ("today", "term", "last"),
    [
        (date(2026, 10, 5), (date(2026, 9, 1), date(2026, 12, 31)), date(2026, 7, 31)),
        (date(2027, 2, 14), (date(2027, 1, 1), date(2027, 3, 31)), date(2026, 12, 31)),
        (date(2027, 5, 1), (date(2027, 4, 1), date(2027, 7, 31)), date(2027, 3, 31)),
        (date(2027, 8, 20), (date(2027, 4, 1), date(2027, 7, 31)), date(2027, 3, 31)),
    ],
)
def test_presets_follow_the_approximate_school_terms(today, term, last):
    this_term, last_term, year, weeks = presets(today)
    assert (this_term.start, this_term.end) == term
    assert last_term.end == last
    assert year.start.month == 9 and year.end == date(year.start.year + 1, 8, 31)
    assert year.start <= today <= year.end
    assert (weeks.end - weeks.start).days == 83 and weeks.end == today


def test_a_period_is_cut_at_today_and_defaults_to_this_term():
    today = date(2026, 10, 5)
    assert choose(start="", end="", today=today, zone=LONDON) == Period(
        date(2026, 9, 1), today, LONDON
    )
    period = choose(start="2026-09-01", end="2026-12-31", today=today, zone=LONDON)
    assert period.end == today
    assert period.previous() == Period(date(2026, 7, 28), date(2026, 8, 31), LONDON)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-09-02", "2026-09-01"),
        ("2026-9-1", "2026-10-01"),
        ("2022-01-01", "2025-06-01"),
        ("2026-11-01", "2026-12-01"),
        ("", "2026-10-01"),
    ],
)
def test_bad_periods_are_refused(start, end):
    with pytest.raises(InvalidInput):
        choose(start=start, end=end, today=date(2026, 10, 5), zone=LONDON)


def _svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own output


def test_charts_carry_no_style_or_script_and_are_named_images():
    svg = charts.stacked_bars(
        chart_id="chart-x",
        title="Incidents each week",
        description="3 incidents",
        x_labels=["1 Sep", "8 Sep"],
        series=[("TikTok", [1, 0]), ("Snapchat & co", [0, 2])],
    )
    root = _svg(svg)
    ns = "{http://www.w3.org/2000/svg}"
    tags = {element.tag.removeprefix(ns) for element in root.iter()}
    assert not tags & {"style", "script", "foreignObject"}
    assert not [e for e in root.iter() if "style" in e.attrib]
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-x-title chart-x-desc"
    assert root.find(f"{ns}title").text == "Incidents each week"
    assert root.find(f"{ns}desc").text == "3 incidents"
    assert "Snapchat &amp; co" in svg  # escaped, not markup
    # Each series is filled with its own pattern, defined in the chart.
    patterns = {p.get("id") for p in root.iter(f"{ns}pattern")}
    assert patterns == {"chart-x-p0", "chart-x-p1"}
    fills = {r.get("fill") for r in root.iter(f"{ns}rect") if r.get("fill")}
    assert fills == {"url(#chart-x-p0)", "url(#chart-x-p1)"}
    # Only ids it made itself, so several charts can share a page.
    assert {e.get("id") for e in root.iter() if e.get("id")} == patterns | {
        "chart-x-title",
        "chart-x-desc",
    }


def test_count_axes_have_whole_numbers_only():
    svg = charts.bars(
        chart_id="c", title="t", description="d", labels=["a", "b"], values=[3, 1], series="s"
    )
    ns = "{http://www.w3.org/2000/svg}"
    axis = [t.text for t in _svg(svg).iter(f"{ns}text") if t.text and t.text[0].isdigit()]
    assert axis and all("." not in label for label in axis)


def test_the_weekly_chart_draws_seven_series_and_the_rest_together():
    from app.dashboard.pages import WeeklyChart

    period = Period(date(2025, 3, 3), date(2025, 3, 16), LONDON)
    weekly = service.Weekly(period.weeks(), {f"k{n}": [n, 1] for n in range(10)})
    chart = WeeklyChart("platform", "platform", "Incidents", weekly, {})
    assert len(chart.series) == 10  # the table keeps every one
    root = _svg(chart.svg())
    ns = "{http://www.w3.org/2000/svg}"
    assert len(list(root.iter(f"{ns}pattern"))) == 8
    assert "All others" in {t.text for t in root.iter(f"{ns}text")}
