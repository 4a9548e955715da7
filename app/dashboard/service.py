"""The dashboard's figures: every one is counted by the database (GROUP BY, COUNT, CASE), so
the number of queries and the rows they return do not grow with the number of incidents.

No query here returns a name, a description or anything else about a person: the dashboard is
for counts, and senior leaders who are not DSLs see it too."""

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from app.auth.models import User
from app.checklists.models import ChecklistRun, ChecklistTemplate
from app.core.sql import median_of, seconds_between
from app.core.types import UTCDateTime
from app.dashboard.periods import Period, Week
from app.escalation.models import Escalation, EscalationRule
from app.incidents.models import Incident, IncidentStatus, Severity
from app.policies import service as policies_service
from app.policies.models import (
    Audience,
    Policy,
    PolicyAcknowledgement,
    PolicyVersion,
    VersionStatus,
)

SPLITS = {
    "platform": Incident.platform,
    "category": Incident.category,
    "offender_type": Incident.offender_type,
}
OPEN_STATUSES = (IncidentStatus.open, IncidentStatus.in_progress, IncidentStatus.escalated)


def for_aggregates(*, session: Session) -> None:
    """Ready this transaction for the aggregate queries below. PostgreSQL would compile the
    larger of them to machine code first (JIT), which costs more than it saves: 50 to 350 ms a
    query over 100,000 incidents, against queries that take tens of milliseconds without it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL jit = off"))


def _in(column, period: Period):
    return and_(column >= period.starts_at, column < period.ends_at)


# Incidents ------------------------------------------------------------------------------------


@dataclass
class Weekly:
    """Incidents a week, split by one field: `counts[key][week number]`."""

    weeks: list[Week]
    counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def totals(self) -> list[int]:
        return [sum(column) for column in zip(*self.counts.values(), strict=True)] or [
            0 for _ in self.weeks
        ]

    @property
    def total(self) -> int:
        return sum(self.totals)

    def series_total(self, key: str) -> int:
        return sum(self.counts[key])


def incidents_per_week(*, session: Session, school_id: int, period: Period, split: str) -> Weekly:
    """Incidents reported each week of the period, by `split`. The weeks are a table of their
    own (their bounds are the school's local midnights, summer time included) joined to the
    incidents, so a week without any still comes back, counted as zero."""
    column = SPLITS[split]
    weeks = period.weeks()
    table = (
        sa.values(
            sa.column("number", sa.Integer),
            sa.column("starts_at", UTCDateTime),
            sa.column("ends_at", UTCDateTime),
            name="weeks",
        )
        .data([(w.number, w.starts_at, w.ends_at) for w in weeks])
        .cte("weeks")
    )
    rows = session.execute(
        select(table.c.number, column, func.count(Incident.id))
        .select_from(table)
        .outerjoin(
            Incident,
            and_(
                Incident.school_id == school_id,
                Incident.reported_at >= table.c.starts_at,
                Incident.reported_at < table.c.ends_at,
            ),
        )
        .group_by(table.c.number, column)
    ).all()
    result = Weekly(weeks)
    for number, key, count in rows:
        if key is not None:
            result.counts.setdefault(key.value, [0] * len(weeks))[number] = count
    return result


@dataclass
class Change:
    key: str
    current: int
    previous: int


def incident_changes(
    *, session: Session, school_id: int, period: Period, split: str
) -> list[Change]:
    """Incidents in the period and in the one of the same length before it, by `split`."""
    column = SPLITS[split]
    previous = period.previous()
    rows = session.execute(
        select(
            column,
            func.count(Incident.id).filter(_in(Incident.reported_at, period)),
            func.count(Incident.id).filter(_in(Incident.reported_at, previous)),
        )
        .where(
            Incident.school_id == school_id,
            Incident.reported_at >= previous.starts_at,
            Incident.reported_at < period.ends_at,
        )
        .group_by(column)
    ).all()
    changes = [Change(key.value, current, before) for key, current, before in rows]
    return sorted(changes, key=lambda c: (-c.current, -c.previous, c.key))


def open_by_severity(*, session: Session, school_id: int) -> dict[str, int]:
    """Incidents open today (open, in progress or escalated), whenever they were reported."""
    rows = session.execute(
        select(Incident.severity, func.count(Incident.id))
        .where(Incident.school_id == school_id, Incident.status.in_(OPEN_STATUSES))
        .group_by(Incident.severity)
    ).all()
    found = {severity.value: count for severity, count in rows}
    return {severity.value: found.get(severity.value, 0) for severity in Severity}


@dataclass
class Median:
    what: str
    seconds: float | None
    count: int


def response_times(*, session: Session, school_id: int, period: Period) -> list[Median]:
    """Median time from report to first action, for incidents reported in the period (those
    acted on), and from report to close, for incidents closed in the period."""
    dialect = session.get_bind().dialect.name
    to_first_action = median_of(
        select(seconds_between(Incident.first_action_at, Incident.reported_at)).where(
            Incident.school_id == school_id, _in(Incident.reported_at, period)
        ),
        name="to_first_action",
        dialect=dialect,
    ).add_columns(sa.literal("first_action").label("what"))
    to_close = median_of(
        select(seconds_between(Incident.closed_at, Incident.reported_at)).where(
            Incident.school_id == school_id,
            Incident.status == IncidentStatus.closed,
            _in(Incident.closed_at, period),
        ),
        name="to_close",
        dialect=dialect,
    ).add_columns(sa.literal("closed").label("what"))
    rows = session.execute(sa.union_all(to_first_action, to_close)).all()
    found = {
        what: Median(what, None if median is None else float(median), count or 0)
        for median, count, what in rows
    }
    return [found.get(what, Median(what, None, 0)) for what in ("first_action", "closed")]


# Escalations ----------------------------------------------------------------------------------


@dataclass
class RuleCount:
    key: str
    name: str
    current: int
    previous: int


def escalations_by_rule(*, session: Session, school_id: int, period: Period) -> list[RuleCount]:
    """Escalations each rule caused in the period and in the one before it: every active rule,
    and inactive ones that fired in either."""
    previous = period.previous()
    current_count = func.count(Escalation.id).filter(_in(Escalation.created_at, period))
    previous_count = func.count(Escalation.id).filter(_in(Escalation.created_at, previous))
    rows = session.execute(
        select(EscalationRule.key, EscalationRule.name, current_count, previous_count)
        .outerjoin(
            Escalation,
            and_(
                Escalation.rule_id == EscalationRule.id,
                Escalation.created_at >= previous.starts_at,
                Escalation.created_at < period.ends_at,
            ),
        )
        .where(EscalationRule.school_id == school_id)
        .group_by(EscalationRule.id, EscalationRule.key, EscalationRule.name)
        .having(sa.or_(EscalationRule.is_active.is_(True), func.count(Escalation.id) > 0))
        .order_by(current_count.desc(), EscalationRule.name)
    ).all()
    return [RuleCount(*row) for row in rows]


# Checklists and policies ----------------------------------------------------------------------


@dataclass
class Completion:
    title: str
    given: int
    completed: int
    overdue: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.completed / self.given) if self.given else None


def checklist_completion(
    *, session: Session, school_id: int, period: Period, now: datetime
) -> list[Completion]:
    """Per checklist: how many were given to people in the period, and how many of those are
    finished, or unfinished and past their due date, now. Incident playbooks are not counted."""
    overdue = and_(ChecklistRun.completed_at.is_(None), ChecklistRun.due_at < now)
    rows = session.execute(
        select(
            ChecklistTemplate.title,
            func.count(ChecklistRun.id),
            func.count(ChecklistRun.completed_at),
            func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
        )
        .join(ChecklistRun, ChecklistRun.template_id == ChecklistTemplate.id)
        .where(
            ChecklistRun.school_id == school_id,
            ChecklistRun.assignee_id.is_not(None),
            _in(ChecklistRun.created_at, period),
        )
        .group_by(ChecklistTemplate.id, ChecklistTemplate.title)
        .order_by(ChecklistTemplate.title)
    ).all()
    return [Completion(*row) for row in rows]


@dataclass
class Acknowledged:
    title: str
    version: int
    acknowledged: int
    staff: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.acknowledged / self.staff) if self.staff else None


def acknowledgement_rates(*, session: Session, school_id: int) -> list[Acknowledged]:
    """Per published staff policy version: how many of today's active accounts acknowledged it
    (everyone with an account is asked to)."""
    accounts = (
        select(func.count(User.id))
        .where(User.school_id == school_id, User.is_active.is_(True))
        .scalar_subquery()
    )
    rows = session.execute(
        select(Policy.title, PolicyVersion.number, func.count(User.id), accounts)
        .join(PolicyVersion, PolicyVersion.policy_id == Policy.id)
        .outerjoin(PolicyAcknowledgement, PolicyAcknowledgement.version_id == PolicyVersion.id)
        .outerjoin(User, and_(User.id == PolicyAcknowledgement.user_id, User.is_active.is_(True)))
        .where(
            Policy.school_id == school_id,
            Policy.audience == Audience.staff,
            PolicyVersion.status == VersionStatus.published,
        )
        .group_by(Policy.id, Policy.title, PolicyVersion.id, PolicyVersion.number)
        .order_by(Policy.title, PolicyVersion.number)
    ).all()
    return [Acknowledged(*row) for row in rows]


@dataclass
class ReviewDue:
    title: str
    version: int
    review_due: date


def reviews_due(*, session: Session, school_id: int, today: date) -> list[ReviewDue]:
    """Published versions whose review is due within 30 days, or overdue."""
    return [
        ReviewDue(w.policy.title, w.version.number, w.version.review_due)
        for w in policies_service.reviews_due(session=session, school_id=school_id, today=today)
    ]
