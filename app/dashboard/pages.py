"""The dashboard for the DSL, deputies and senior leaders: counts over a period, drawn as charts
with their tables, each downloadable as CSV, and a printable report for governors. It never shows
a name or an incident's details."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from sqlmodel import Session

from app.auth.dependencies import require_roles
from app.auth.models import Role, User
from app.core.db import DbSession
from app.core.downloads import csv_download
from app.core.errors import InvalidInput, NotFound
from app.core.routing import page_router
from app.core.templating import render
from app.core.types import utcnow
from app.dashboard import charts, service
from app.dashboard.periods import TERM_NOTE, Period, choose, presets
from app.incidents.pages import LABELS

router = page_router(prefix="/dashboard")

DashboardUser = Annotated[User, Depends(require_roles(Role.dsl, Role.deputy_dsl, Role.slt))]
From = Annotated[str, Query(alias="from", max_length=20)]
To = Annotated[str, Query(alias="to", max_length=20)]
Split = Annotated[str, Query(max_length=20)]

SPLIT_NAMES = {"platform": "platform", "category": "kind", "offender_type": "who was responsible"}
SPLIT_SLUGS = {"platform": "platform", "category": "category", "offender_type": "offender"}
CHART_SERIES = 8  # the chart draws the most frequent seven and the rest together; the table all
SEVERITY_LABELS = {s: s.capitalize() for s in ("low", "medium", "high", "critical")}
MEDIAN_LABELS = {
    "first_action": "Report to first action",
    "closed": "Report to close",
}


def _school_day(request: Request) -> tuple[ZoneInfo, date]:
    zone = ZoneInfo(request.app.state.settings.timezone)
    return zone, utcnow().astimezone(zone).date()


def _period(request: Request, start: str, end: str) -> Period:
    zone, today = _school_day(request)
    return choose(start=start, end=end, today=today, zone=zone)


def _day(value: date) -> str:
    return f"{value.day} {value.strftime('%b %Y')}"


def _week_label(monday: date) -> str:
    return f"{monday.day} {monday.strftime('%b')}"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def duration(seconds: float | None) -> str:
    """A span of time in words a reader takes in at once: minutes, hours or days."""
    if seconds is None:
        return "no incidents"
    minutes = round(seconds / 60)
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _plural(hours, "hour") + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return _plural(days, "day") + (f" {_plural(hours, 'hour')}" if hours else "")


# The figures ----------------------------------------------------------------------------------


@dataclass
class WeeklyChart:
    split: str
    slug: str
    title: str
    weekly: service.Weekly
    labels: dict[str, str]

    @property
    def series(self) -> list[tuple[str, str, list[int]]]:
        """(key, label, counts) of the values that occur, the most frequent first."""
        keys = sorted(self.weekly.counts, key=lambda k: (-self.weekly.series_total(k), k))
        return [(k, self.labels.get(k, k), self.weekly.counts[k]) for k in keys]

    @property
    def summary(self) -> str:
        weekly = self.weekly
        if not weekly.total:
            return "No incidents in this period."
        busiest = max(weekly.weeks, key=lambda w: weekly.totals[w.number])
        top = ", ".join(f"{label} ({sum(counts)})" for _, label, counts in self.series[:3])
        return (
            f"{_plural(weekly.total, 'incident')} in {_plural(len(weekly.weeks), 'week')}; the "
            f"most in the week beginning {_day(busiest.monday)} "
            f"({weekly.totals[busiest.number]}). By {SPLIT_NAMES[self.split]}, the most: {top}."
        )

    def svg(self):
        series = [(label, counts) for _, label, counts in self.series]
        if len(series) > CHART_SERIES:
            others = series[CHART_SERIES - 1 :]
            rest = [sum(week) for week in zip(*(c for _, c in others), strict=True)]
            series = [*series[: CHART_SERIES - 1], ("All others", rest)]
        return charts.stacked_bars(
            chart_id="chart-weekly",
            title=self.title,
            description=self.summary,
            x_labels=[_week_label(w.monday) for w in self.weekly.weeks],
            series=series,
        )


def _weekly_chart(session: Session, user: User, period: Period, split: str) -> WeeklyChart:
    weekly = service.incidents_per_week(
        session=session, school_id=user.school_id, period=period, split=split
    )
    title = f"Incidents each week by {SPLIT_NAMES[split]}"
    return WeeklyChart(split, SPLIT_SLUGS[split], title, weekly, LABELS[split])


def _open_summary(open_now: dict[str, int]) -> str:
    total = sum(open_now.values())
    if not total:
        return "No incidents are open."
    parts = ", ".join(f"{count} {severity}" for severity, count in reversed(open_now.items()))
    return f"{_plural(total, 'incident is', 'incidents are')} open: {parts}."


def _escalation_summary(rules: list[service.RuleCount]) -> str:
    total = sum(r.current for r in rules)
    if not total:
        return "No escalations in this period."
    top = rules[0]
    return (
        f"{_plural(total, 'escalation')} in this period; the rule that fired most: "
        f"{top.name} ({top.current})."
    )


def _checklist_summary(rows: list[service.Completion]) -> str:
    given = sum(r.given for r in rows)
    if not given:
        return "No checklists were given out in this period."
    done = sum(r.completed for r in rows)
    return (
        f"Of {_plural(given, 'checklist')} given out in this period, {done} "
        f"{'is' if done == 1 else 'are'} finished ({round(100 * done / given)}%)."
    )


def _acknowledgement_summary(rows: list[service.Acknowledged]) -> str:
    if not rows:
        return "No staff policy is published."
    lowest = min(rows, key=lambda r: r.percent or 0)
    return (
        f"{_plural(len(rows), 'published staff policy', 'published staff policies')}; the "
        f"lowest acknowledgement rate: {lowest.title} (version {lowest.version}), "
        f"{lowest.percent or 0}%."
    )


def _split(split: str) -> str:
    if split not in service.SPLITS:
        raise InvalidInput(
            "Choose how to split the incidents: by platform, kind or who was responsible.",
            errors=[{"field": "split", "message": "unknown"}],
        )
    return split


def _figures(
    session: Session, user: User, period: Period, request: Request, split: str = "platform"
) -> dict:
    """Everything the dashboard and the report show, in a fixed number of queries."""
    _, today = _school_day(request)
    service.for_aggregates(session=session)
    weekly = _weekly_chart(session, user, period, split)
    open_now = service.open_by_severity(session=session, school_id=user.school_id)
    medians = service.response_times(session=session, school_id=user.school_id, period=period)
    rules = service.escalations_by_rule(session=session, school_id=user.school_id, period=period)
    checklists = service.checklist_completion(
        session=session, school_id=user.school_id, period=period, now=utcnow()
    )
    acknowledgements = service.acknowledgement_rates(session=session, school_id=user.school_id)
    reviews = service.reviews_due(session=session, school_id=user.school_id, today=today)
    return {
        "weekly": weekly,
        "incident_total": weekly.weekly.total,
        "open_now": open_now,
        "open_total": sum(open_now.values()),
        "open_summary": _open_summary(open_now),
        "medians": medians,
        "rules": rules,
        "escalation_total": sum(r.current for r in rules),
        "escalation_summary": _escalation_summary(rules),
        "checklists": checklists,
        "checklist_summary": _checklist_summary(checklists),
        "acknowledgements": acknowledgements,
        "acknowledgement_summary": _acknowledgement_summary(acknowledgements),
        "reviews": reviews,
        "today": today,
    }


def _bar_charts(figures: dict) -> list[tuple]:
    """(key, title, summary, anything to draw, (label, value) pairs, series, in percent)."""
    return [
        (
            "open",
            "Open incidents by severity",
            figures["open_summary"],
            figures["open_total"],
            [(SEVERITY_LABELS[s], n) for s, n in reversed(figures["open_now"].items())],
            "Open incidents",
            False,
        ),
        (
            "escalations",
            "Escalations by rule",
            figures["escalation_summary"],
            figures["escalation_total"],
            [(r.name, r.current) for r in figures["rules"]],
            "Escalations",
            False,
        ),
        (
            "checklists",
            "Checklist completion",
            figures["checklist_summary"],
            figures["checklists"],
            [(r.title, r.percent or 0) for r in figures["checklists"]],
            "Finished",
            True,
        ),
        (
            "acknowledgements",
            "Policy acknowledgements",
            figures["acknowledgement_summary"],
            figures["acknowledgements"],
            [(f"{r.title} (v{r.version})", r.percent or 0) for r in figures["acknowledgements"]],
            "Acknowledged",
            True,
        ),
    ]


def _charts(figures: dict) -> dict:
    """The SVG of each chart that has something to draw."""
    weekly = figures["weekly"]
    drawn = {"weekly": weekly.svg()} if weekly.weekly.total else {}
    for key, title, summary, shown, points, series, percent in _bar_charts(figures):
        if shown:
            drawn[key] = charts.bars(
                chart_id=f"chart-{key}",
                title=title,
                description=summary,
                labels=[label for label, _ in points],
                values=[value for _, value in points],
                series=series,
                percent=percent,
            )
    return drawn


def _chooser(
    request: Request, period: Period | None, start: str, end: str, split: str = "platform"
) -> dict:
    _, today = _school_day(request)
    choices = presets(today)
    current = next(
        (
            p.key
            for p in choices
            if period and (p.start, min(p.end, today)) == (period.start, period.end)
        ),
        None,
    )
    return {
        "current_preset": current,
        "split": split,
        "splits": SPLIT_NAMES,
        "split_slugs": SPLIT_SLUGS,
        "presets": choices,
        "today": today,
        "period": period,
        "form": {
            "from": period.start.isoformat() if period else start,
            "to": period.end.isoformat() if period else end,
        },
        "term_note": TERM_NOTE,
        "query": f"from={period.start.isoformat()}&to={period.end.isoformat()}" if period else "",
        "day": _day,
        "duration": duration,
        "labels": LABELS,
        "severity_labels": SEVERITY_LABELS,
        "median_labels": MEDIAN_LABELS,
    }


@router.get("")
def dashboard(
    request: Request,
    session: DbSession,
    user: DashboardUser,
    start: From = "",
    end: To = "",
    split: Split = "platform",
):
    try:
        period = _period(request, start, end)
        split = _split(split)
    except InvalidInput as exc:
        context = {**_chooser(request, None, start, end), "error": exc.detail}
        return render(
            request, "dashboard/dashboard.html", context, block="dashboard", status_code=422
        )
    figures = _figures(session, user, period, request, split)
    context = {
        **_chooser(request, period, start, end, split),
        **figures,
        "charts": _charts(figures),
    }
    return render(request, "dashboard/dashboard.html", context, block="dashboard")


@router.get("/governors-report")
def governors_report(
    request: Request, session: DbSession, user: DashboardUser, start: From = "", end: To = ""
):
    period = _period(request, start, end)
    previous = period.previous()
    figures = _figures(session, user, period, request)
    changes = {
        split: service.incident_changes(
            session=session, school_id=user.school_id, period=period, split=split
        )
        for split in ("category", "platform")
    }
    context = {
        **_chooser(request, period, start, end),
        **figures,
        "previous": previous,
        "previous_total": sum(c.previous for c in changes["category"]),
        "previous_escalations": sum(r.previous for r in figures["rules"]),
        "changes": changes,
        "generated_at": utcnow(),
    }
    return render(request, "dashboard/governors_report.html", context)


# CSV of each chart ----------------------------------------------------------------------------


def _weekly_csv(split: str):
    keys = list(LABELS[split])

    def rows(session: Session, user: User, period: Period, request: Request):
        weekly = service.incidents_per_week(
            session=session, school_id=user.school_id, period=period, split=split
        )
        header = ["week beginning", "from", "to", "incidents", *keys]
        if not weekly.total:
            return header, []
        return header, [
            [
                week.monday.isoformat(),
                week.first.isoformat(),
                week.last.isoformat(),
                weekly.totals[week.number],
                *(weekly.counts.get(key, [0] * len(weekly.weeks))[week.number] for key in keys),
            ]
            for week in weekly.weeks
        ]

    return rows


def _open_csv(session: Session, user: User, period: Period, request: Request):
    open_now = service.open_by_severity(session=session, school_id=user.school_id)
    _, today = _school_day(request)
    header = ["severity", "open incidents", "on"]
    if not sum(open_now.values()):
        return header, []
    return header, [[severity, count, today.isoformat()] for severity, count in open_now.items()]


def _response_csv(session: Session, user: User, period: Period, request: Request):
    medians = service.response_times(session=session, school_id=user.school_id, period=period)
    header = ["measure", "incidents", "median hours"]
    rows = [[m.what, m.count, round(m.seconds / 3600, 2)] for m in medians if m.seconds is not None]
    return header, rows


def _escalations_csv(session: Session, user: User, period: Period, request: Request):
    rules = service.escalations_by_rule(session=session, school_id=user.school_id, period=period)
    header = ["rule", "name", "escalations", "previous period"]
    if not any(r.current for r in rules):
        return header, []
    return header, [[r.key, r.name, r.current, r.previous] for r in rules]


def _checklists_csv(session: Session, user: User, period: Period, request: Request):
    rows = service.checklist_completion(
        session=session, school_id=user.school_id, period=period, now=utcnow()
    )
    header = ["checklist", "given", "finished", "overdue", "percent finished"]
    return header, [[r.title, r.given, r.completed, r.overdue, r.percent] for r in rows]


def _acknowledgements_csv(session: Session, user: User, period: Period, request: Request):
    rows = service.acknowledgement_rates(session=session, school_id=user.school_id)
    header = ["policy", "version", "acknowledged", "accounts", "percent acknowledged"]
    return header, [[r.title, r.version, r.acknowledged, r.staff, r.percent] for r in rows]


def _reviews_csv(session: Session, user: User, period: Period, request: Request):
    _, today = _school_day(request)
    rows = service.reviews_due(session=session, school_id=user.school_id, today=today)
    header = ["policy", "version", "review due"]
    return header, [[r.title, r.version, r.review_due.isoformat()] for r in rows]


CSV_CHARTS: dict[str, Callable] = {
    "incidents-by-platform": _weekly_csv("platform"),
    "incidents-by-category": _weekly_csv("category"),
    "incidents-by-offender": _weekly_csv("offender_type"),
    "open-by-severity": _open_csv,
    "response-times": _response_csv,
    "escalations-by-rule": _escalations_csv,
    "checklist-completion": _checklists_csv,
    "policy-acknowledgements": _acknowledgements_csv,
    "policy-reviews": _reviews_csv,
}


@router.get("/{chart}.csv")
def chart_csv(
    request: Request,
    session: DbSession,
    user: DashboardUser,
    chart: str,
    start: From = "",
    end: To = "",
):
    if chart not in CSV_CHARTS:
        raise NotFound("There is no such chart.")
    period = _period(request, start, end)
    service.for_aggregates(session=session)
    header, rows = CSV_CHARTS[chart](session, user, period, request)
    name = f"{chart}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return csv_download(header, rows, filename=name)
