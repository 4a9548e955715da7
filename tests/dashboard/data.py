"""A school's term in miniature for the dashboard tests: incidents over four past weeks (one of
them quiet), acted on and closed at known times, escalations, checklists and a policy."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from app.audit.service import SYSTEM, Actor
from app.auth.models import Role, User
from app.escalation.models import Escalation
from app.incidents import flows as incident_flows
from app.incidents import service as incidents_service
from app.incidents.models import Incident, IncidentUpdate, TimelineKind
from app.policies import service as policies_service
from tests.factories import give_checklist, make_incident, make_user, publish_policy

ZONE = ZoneInfo("Europe/London")
SECRET_WORDS = ("Mr Example", "Abusive video", "posted last night", "Jo Pupil")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE).astimezone(UTC)


@dataclass
class Seeded:
    start: date  # a Monday, five weeks before this week's
    end: date  # the Sunday four weeks later
    dsl: User
    reporter: User
    incidents: list[Incident] = field(default_factory=list)

    @property
    def query(self) -> str:
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


def _report(db: Session, reporter: User, at: datetime, **fields) -> Incident:
    incident = make_incident(db, reporter, **fields, occurred_at=at - timedelta(hours=1))
    incident.reported_at = incident.created_at = at
    db.add(incident)  # its chronology cannot be changed: its entries keep today's time
    for escalation in db.exec(select(Escalation).where(Escalation.incident_id == incident.id)):
        escalation.created_at = at
        db.add(escalation)
    db.commit()
    return incident


def _note(db: Session, incident: Incident, dsl: User, at: datetime) -> None:
    """A note by the DSL, written at `at` (entries are never changed once written)."""
    incidents_service.add_entry(
        session=db,
        incident=incident,
        kind=TimelineKind.note,
        text="Looked at it.",
        actor=Actor(user_id=dsl.id),
        at=at,
    )
    db.commit()


def seed(db: Session, today: date | None = None) -> Seeded:
    today = today or datetime.now(ZONE).date()
    monday = today - timedelta(days=today.weekday())
    start = monday - timedelta(weeks=5)
    dsl = make_user(db, role=Role.dsl)
    reporter = make_user(db, role=Role.staff)
    reporter.display_name = "Jo Reporter-Named"
    db.add(reporter)
    seeded = Seeded(start, start + timedelta(days=27), dsl, reporter)
    people = [{"label": "Jo Pupil", "role": "victim"}]
    week0 = [
        # Tuesday 10:00, a pupil responsible: escalated by the pupil-involved rule.
        _report(
            db,
            reporter,
            local(start + timedelta(days=1), 10),
            offender_type="pupil",
            platform="tiktok",
            category="malicious_post",
            people=people,
        ),
        # Wednesday 09:00: closed two days later.
        _report(
            db,
            reporter,
            local(start + timedelta(days=2), 9),
            platform="snapchat",
            category="harassment",
        ),
    ]
    # Monday of week 1 at 00:30 school time: the first minutes of that week.
    week1 = _report(
        db,
        reporter,
        local(start + timedelta(days=7), 0, 30),
        platform="tiktok",
        category="harassment",
        offender_type="unknown",
    )
    # Week 2 is quiet; Thursday of week 3:
    week3 = _report(
        db,
        reporter,
        local(start + timedelta(days=24), 14),
        platform="instagram",
        category="allegation",
        offender_type="other_adult",
    )
    seeded.incidents = [*week0, week1, week3]
    # Outside the period: one the week before (the previous period) and one after it.
    _report(db, reporter, local(start - timedelta(days=3), 12), platform="tiktok")
    _report(db, reporter, local(start + timedelta(days=30), 12), platform="whatsapp")

    _note(db, week0[0], dsl, week0[0].reported_at + timedelta(hours=2))
    _note(db, week0[1], dsl, week0[1].reported_at + timedelta(hours=4))
    _note(db, week3, dsl, week3.reported_at + timedelta(hours=6))
    closing = week0[1]
    incident_flows.update_incident(
        session=db,
        incident=closing,
        data=IncidentUpdate(status="closed", outcome="Resolved with the family."),
        actor=Actor(user_id=dsl.id),
    )
    closing.closed_at = closing.reported_at + timedelta(days=2)
    db.add(closing)

    # Two conduct checklists given in the period, one finished.
    for n, finished in enumerate((True, False)):
        run = give_checklist(db, make_user(db))
        run.created_at = local(start + timedelta(days=3 + n), 9)
        run.due_at = local(start + timedelta(days=20), 17)
        if finished:
            run.completed_at = local(start + timedelta(days=10), 9)
        db.add(run)

    # A published staff policy, due for review in 20 days, acknowledged by the DSL only.
    policy, version = publish_policy(db, review_in=20)
    policies_service.acknowledge(session=db, policy=policy, version=version, user=dsl, actor=SYSTEM)
    db.commit()
    return seeded
