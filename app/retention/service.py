"""Retention: the schedule, the review queue, keeping, legal holds, and deletion after review.

The only module that queries the retention tables. It also finds, and after a DSL's review
deletes, the records of the other domains the schedule covers: an incident with everything that
belongs to it, a member of staff's finished checklist, a superseded policy version with its
acknowledgements. Nothing is deleted without that review, nothing held is ever deleted, and the
audit trail is never touched: a deletion adds to it the record's type, id and reference, the
rule and the reviewer, and none of the content.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, delete, func, select

from app.audit.models import AuditEvent
from app.audit.service import Actor, record_event
from app.auth.models import ApiToken, User
from app.checklists.models import ChecklistItem, ChecklistRun, ChecklistTemplate, ItemCompletion
from app.core.db import get_for_school
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.idempotency import IdempotentRequest
from app.core.types import utcnow
from app.escalation.models import Escalation
from app.incidents import service as incidents_service
from app.incidents import uploads
from app.incidents.models import (
    Category,
    Evidence,
    Incident,
    IncidentPerson,
    IncidentStatus,
    InvolvementRole,
    OffenderType,
    Severity,
    TargetType,
    TimelineEntry,
    TimelineKind,
)
from app.patterns.service import low_level_concern
from app.people.models import Person, PersonKind
from app.policies.models import Policy, PolicyAcknowledgement, PolicyVersion, VersionStatus
from app.retention.library import DELETE_REASONS, MAX_YEARS, SHIPPED, SHIPPED_RULES, ShippedRule
from app.retention.models import (
    RecordKind,
    RecordRetention,
    RecordType,
    RetentionCheck,
    RetentionRule,
)
from app.webhooks.models import DeliveryAttempt, EventType, OutboxMessage

INCIDENT_TYPES = [rule.record_type for rule in SHIPPED_RULES if rule.kind == RecordKind.incident]
STAFF_TYPES = (RecordType.incident_staff_allegation, RecordType.incident_staff_low_level)
QUEUE_LIMIT = 50  # records shown per kind; the page says how many more there are
FAR_FUTURE = datetime(3000, 1, 1, tzinfo=UTC)  # every period has ended by then


def years_after(moment: datetime, years: int) -> datetime:
    """The same day and time `years` later (28 February for 29 February in a common year)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def years_before(moment: datetime, years: int) -> datetime:
    return years_after(moment, -years)


# The schedule -----------------------------------------------------------------------------------


@dataclass
class Rule:
    """A line of the schedule: what Haven ships for a type of record, with the school's years."""

    shipped: ShippedRule
    years: int
    updated_at: datetime | None = None
    updated_by_id: int | None = None

    @property
    def record_type(self) -> RecordType:
        return self.shipped.record_type

    @property
    def changed(self) -> bool:
        return self.years != self.shipped.years

    @property
    def in_words(self) -> str:
        unit = "year" if self.years == 1 else "years"
        return f"{self.years} {unit} after {self.shipped.counted_from}"


def install_default_rules(*, session: Session, school_id: int) -> int:
    """Add the shipped schedule lines a school lacks; never changes the years it has set."""
    have = set(
        session.exec(
            select(RetentionRule.record_type).where(RetentionRule.school_id == school_id)
        ).all()
    )
    added = 0
    for shipped in SHIPPED_RULES:
        if shipped.record_type not in have:
            session.add(
                RetentionRule(
                    school_id=school_id, record_type=shipped.record_type, years=shipped.years
                )
            )
            added += 1
    session.flush()
    return added


def schedule(*, session: Session, school_id: int) -> dict[RecordType, Rule]:
    """Every line, in the shipped order; a line the school has not stored yet has its default."""
    stored = {
        row.record_type: row
        for row in session.exec(
            select(RetentionRule).where(RetentionRule.school_id == school_id)
        ).all()
    }
    rules = {}
    for shipped in SHIPPED_RULES:
        row = stored.get(shipped.record_type)
        rules[shipped.record_type] = (
            Rule(shipped, row.years, row.updated_at, row.updated_by_id)
            if row
            else Rule(shipped, shipped.years)
        )
    return rules


def record_type_of(value: str) -> RecordType:
    try:
        return RecordType(value)
    except ValueError:
        raise NotFound("There is no such line in the retention schedule.") from None


def check_years(years: int) -> int:
    if years < 1:
        raise InvalidInput(
            "A retention period must be at least one year. Haven does not delete records "
            "straight away: a record is only ever deleted after a DSL has reviewed it. Nothing "
            "was saved.",
            errors=[{"field": "years", "message": "must be 1 or more"}],
        )
    if years > MAX_YEARS:
        raise InvalidInput(
            f"A retention period can be at most {MAX_YEARS} years. Nothing was saved.",
            errors=[{"field": "years", "message": f"must be {MAX_YEARS} or fewer"}],
        )
    return years


def set_years(
    *, session: Session, school_id: int, record_type: RecordType, years: int, actor: Actor
) -> Rule:
    """Change how long a type of record is kept (a whole number of years, at least one)."""
    check_years(years)
    row = session.exec(
        select(RetentionRule).where(
            RetentionRule.school_id == school_id, RetentionRule.record_type == record_type
        )
    ).first() or RetentionRule(school_id=school_id, record_type=record_type, years=years)
    before = row.years if row.id else SHIPPED[record_type].years
    row.years = years
    row.updated_at = utcnow()
    row.updated_by_id = actor.user_id
    session.add(row)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="retention.rule_changed",
        school_id=school_id,
        entity_type="retention_rule",
        entity_id=row.id,
        detail={"record_type": record_type.value, "years": years, "before": before},
    )
    return Rule(SHIPPED[record_type], row.years, row.updated_at, row.updated_by_id)


# What kind of record an incident is, in SQL -------------------------------------------------------


def _involves_pupil_on_roster():
    return sa.exists(
        select(IncidentPerson.id)
        .join(Person, Person.id == IncidentPerson.person_id)
        .where(IncidentPerson.incident_id == Incident.id, Person.kind == PersonKind.pupil)
    )


def _staff_subject_on_roll():
    """A member of staff linked as the incident's subject is still on the school's roster."""
    return sa.exists(
        select(IncidentPerson.id)
        .join(Person, Person.id == IncidentPerson.person_id)
        .where(
            IncidentPerson.incident_id == Incident.id,
            IncidentPerson.role == InvolvementRole.subject,
            Person.kind == PersonKind.staff,
            Person.is_active.is_(True),
        )
    )


def incident_record_type():
    """SQL: the schedule line an incident falls under (the first that applies)."""
    return sa.case(
        (low_level_concern(), RecordType.incident_staff_low_level.value),
        (Incident.offender_type == OffenderType.staff, RecordType.incident_staff_allegation.value),
        (
            sa.and_(
                Incident.category == Category.phone_misuse,
                col(Incident.severity).in_([Severity.low, Severity.medium]),
                col(Incident.suspected_criminal_offence).is_(False),
            ),
            RecordType.incident_phone_misuse.value,
        ),
        (
            sa.or_(
                Incident.offender_type == OffenderType.pupil,
                Incident.target_type == TargetType.pupil,
                _involves_pupil_on_roster(),
            ),
            RecordType.incident_pupil.value,
        ),
        else_=RecordType.incident_adult.value,
    )


# The review queue -------------------------------------------------------------------------------


@dataclass
class DueRecord:
    """A record past its retention period, waiting for a DSL's review (or held)."""

    kind: RecordKind
    record_id: int
    record_type: RecordType
    label: str
    ended_at: datetime  # when its period began: closed, finished, superseded
    due_since: datetime
    retention: RecordRetention | None = None
    detail: str = ""

    @property
    def held(self) -> bool:
        return self.retention is not None and self.retention.is_held

    @property
    def link(self) -> str:
        return _link(self.kind, self.record_id, self.detail)


def _link(kind: RecordKind, record_id: int, detail: str = "") -> str:
    if kind == RecordKind.incident:
        return f"/incidents/{record_id}"
    if kind == RecordKind.checklist_run:
        return f"/checklists/runs/{record_id}"
    return f"/policies/{detail}" if detail else "/policies"


def _retention_join(kind: RecordKind, record_id):
    return sa.and_(RecordRetention.kind == kind, RecordRetention.record_id == record_id)


def _not_kept(now: datetime):
    return sa.or_(col(RecordRetention.keep_until).is_(None), RecordRetention.keep_until <= now)


def _due_incidents(school_id: int, rules: dict[RecordType, Rule], now: datetime):
    inner = (
        select(
            Incident.id.label("id"),
            Incident.reference.label("reference"),
            Incident.closed_at.label("closed_at"),
            incident_record_type().label("record_type"),
            _staff_subject_on_roll().label("staff_on_roll"),
        )
        .where(
            Incident.school_id == school_id,
            Incident.status == IncidentStatus.closed,  # never an open incident
            col(Incident.closed_at).is_not(None),
        )
        .subquery()
    )
    past = sa.or_(
        *(
            sa.and_(
                inner.c.record_type == kind.value,
                inner.c.closed_at <= years_before(now, rules[kind].years),
            )
            for kind in INCIDENT_TYPES
        )
    )
    left = sa.or_(
        inner.c.record_type.not_in([kind.value for kind in STAFF_TYPES]),
        sa.not_(inner.c.staff_on_roll),
    )
    return (
        select(inner.c.id, inner.c.reference, inner.c.closed_at, inner.c.record_type)
        .add_columns(RecordRetention)
        .outerjoin(RecordRetention, _retention_join(RecordKind.incident, inner.c.id))
        .where(past, left, _not_kept(now))
        .order_by(inner.c.closed_at, inner.c.id)
    ), inner.c.id


def _due_runs(school_id: int, rules: dict[RecordType, Rule], now: datetime):
    cutoff = years_before(now, rules[RecordType.checklist_run].years)
    return (
        select(
            ChecklistRun.id,
            ChecklistTemplate.title,
            User.display_name,
            ChecklistRun.completed_at,
            RecordRetention,
        )
        .join(ChecklistTemplate, ChecklistTemplate.id == ChecklistRun.template_id)
        .join(User, User.id == ChecklistRun.assignee_id)
        .outerjoin(RecordRetention, _retention_join(RecordKind.checklist_run, ChecklistRun.id))
        .where(
            ChecklistRun.school_id == school_id,
            col(ChecklistRun.assignee_id).is_not(None),  # a playbook goes with its incident
            col(ChecklistRun.completed_at).is_not(None),
            ChecklistRun.completed_at <= cutoff,
            _not_kept(now),
        )
        .order_by(ChecklistRun.completed_at, ChecklistRun.id)
    ), ChecklistRun.id


def _superseded_at():
    later = sa.orm.aliased(PolicyVersion)
    return (
        select(func.min(later.published_at))
        .where(
            later.policy_id == PolicyVersion.policy_id,
            later.number > PolicyVersion.number,
            col(later.published_at).is_not(None),
        )
        .scalar_subquery()
    )


def _due_versions(school_id: int, rules: dict[RecordType, Rule], now: datetime):
    cutoff = years_before(now, rules[RecordType.policy_version].years)
    superseded_at = _superseded_at()
    return (
        select(
            PolicyVersion.id,
            Policy.title,
            PolicyVersion.number,
            Policy.id,
            superseded_at,
            RecordRetention,
        )
        .join(Policy, Policy.id == PolicyVersion.policy_id)
        .outerjoin(RecordRetention, _retention_join(RecordKind.policy_version, PolicyVersion.id))
        .where(
            Policy.school_id == school_id,
            PolicyVersion.status == VersionStatus.superseded,
            superseded_at <= cutoff,
            _not_kept(now),
        )
        .order_by(superseded_at, PolicyVersion.id)
    ), PolicyVersion.id


_DUE = {
    RecordKind.incident: _due_incidents,
    RecordKind.checklist_run: _due_runs,
    RecordKind.policy_version: _due_versions,
}


def _due_record(kind: RecordKind, row, rules: dict[RecordType, Rule]) -> DueRecord:
    if kind == RecordKind.incident:
        record_id, reference, ended, record_type, retention = row
        record_type = RecordType(record_type)
        label, detail = reference, ""
    elif kind == RecordKind.checklist_run:
        record_id, title, person, ended, retention = row
        record_type = RecordType.checklist_run
        label, detail = f"{title}: {person}", ""
    else:
        record_id, title, number, policy_id, ended, retention = row
        record_type = RecordType.policy_version
        label, detail = f"{title}, version {number}", str(policy_id)
    due_since = years_after(ended, rules[record_type].years)
    return DueRecord(kind, record_id, record_type, label, ended, due_since, retention, detail)


@dataclass
class Queue:
    records: dict[RecordKind, list[DueRecord]] = field(default_factory=dict)
    totals: dict[RecordKind, int] = field(default_factory=dict)


def review_queue(
    *,
    session: Session,
    school_id: int,
    now: datetime | None = None,
    kinds: list[RecordKind] | None = None,
    limit: int = QUEUE_LIMIT,
) -> Queue:
    """Records past their period (held ones too, marked), oldest first, in two queries a kind."""
    now = now or utcnow()
    rules = schedule(session=session, school_id=school_id)
    queue = Queue()
    for kind in kinds or list(RecordKind):
        query, _ = _DUE[kind](school_id, rules, now)
        queue.totals[kind] = session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        rows = session.execute(query.limit(limit)).all() if queue.totals[kind] else []
        queue.records[kind] = [_due_record(kind, row, rules) for row in rows]
    return queue


def find_due(
    *, session: Session, school_id: int, kind: RecordKind, record_id: int, now: datetime
) -> DueRecord | None:
    """This record, if it is past its period and waiting for review (held or not)."""
    rules = schedule(session=session, school_id=school_id)
    query, id_column = _DUE[kind](school_id, rules, now)
    row = session.execute(query.where(id_column == record_id)).first()
    return _due_record(kind, row, rules) if row else None


def due_on(
    *, session: Session, school_id: int, kind: RecordKind, record_id: int
) -> datetime | None:
    """When a record not yet due will be: the end of its period, or of a longer keep. None when
    no date can be given (an open incident, a member of staff still on the roll)."""
    record = find_due(
        session=session, school_id=school_id, kind=kind, record_id=record_id, now=FAR_FUTURE
    )
    if record is None:
        return None
    keep_until = record.retention.keep_until if record.retention else None
    return max(record.due_since, keep_until) if keep_until else record.due_since


def count_due(*, session: Session, school_id: int, now: datetime | None = None) -> int:
    """How many records wait for review, held ones left out (they cannot be deleted)."""
    now = now or utcnow()
    rules = schedule(session=session, school_id=school_id)
    total = 0
    for build in _DUE.values():
        query, _ = build(school_id, rules, now)
        query = query.where(col(RecordRetention.hold_since).is_(None)).order_by(None)
        total += session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    return total


def refresh_count(*, session: Session, school_id: int, now: datetime | None = None) -> int:
    """Count again and keep the number for the DSL's home page (the daily job, and reviews)."""
    now = now or utcnow()
    due = count_due(session=session, school_id=school_id, now=now)
    check = session.get(RetentionCheck, school_id) or RetentionCheck(school_id=school_id)
    check.due = due
    check.checked_at = now
    session.add(check)
    session.flush()
    return due


def last_count(*, session: Session, school_id: int) -> RetentionCheck | None:
    return session.get(RetentionCheck, school_id)


# One record ---------------------------------------------------------------------------------------


KINDS_IN_PATHS = {
    "incidents": RecordKind.incident,
    "checklist-runs": RecordKind.checklist_run,
    "policy-versions": RecordKind.policy_version,
}
PATHS_OF_KINDS = {kind: path for path, kind in KINDS_IN_PATHS.items()}


@dataclass
class Located:
    kind: RecordKind
    row: Incident | ChecklistRun | PolicyVersion
    label: str  # the name the DSL knows it by (may hold a name: pages only, never the audit)
    reference: str  # what the audit trail may keep: no names, no content
    retention: RecordRetention | None


def kind_of(path: str) -> RecordKind:
    try:
        return KINDS_IN_PATHS[path]
    except KeyError:
        raise NotFound("There is no such kind of record.") from None


class AlreadyDeleted(NotFound):
    """The record was deleted after review: a second click on Delete, or a page left open."""


def locate(
    *,
    session: Session,
    school_id: int,
    kind: RecordKind,
    record_id: int,
    for_update: bool = False,
) -> Located:
    """The record (locked when about to change), with its retention decisions."""
    try:
        return _locate(session, school_id, kind, record_id, for_update)
    except NotFound:
        deleted = select(AuditEvent.seq).where(
            AuditEvent.school_id == school_id,
            AuditEvent.action == "retention.deleted",
            AuditEvent.entity_type == kind.value,
            AuditEvent.entity_id == str(record_id),
        )
        if session.exec(deleted.limit(1)).first() is not None:
            raise AlreadyDeleted(
                "This record has already been deleted. Nothing more was done: the retention "
                "page lists the deletions made after review."
            ) from None
        raise


def _locate(
    session: Session, school_id: int, kind: RecordKind, record_id: int, for_update: bool
) -> Located:
    if kind == RecordKind.incident:
        row = incidents_service.get_incident(
            session=session, school_id=school_id, incident_id=record_id, for_update=for_update
        )
        label = reference = row.reference
    elif kind == RecordKind.checklist_run:
        row = get_for_school(
            session, ChecklistRun, record_id, school_id, "checklist", for_update=for_update
        )
        if row.assignee_id is None:
            raise NotFound("An incident's playbook is kept, and deleted, with its incident.")
        template = session.get(ChecklistTemplate, row.template_id)
        person = session.get(User, row.assignee_id)
        label = f"{template.title}: {person.display_name}"
        reference = f"{template.key} checklist {row.id}"
    else:
        query = (
            select(PolicyVersion, Policy)
            .join(Policy, Policy.id == PolicyVersion.policy_id)
            .where(PolicyVersion.id == record_id, Policy.school_id == school_id)
        )
        if for_update:
            query = query.with_for_update(of=PolicyVersion)
        found = session.execute(query).first()
        if found is None:
            raise NotFound("No such policy version.")
        row, policy = found
        label = f"{policy.title}, version {row.number}"
        reference = f"policy {policy.id} version {row.number}"
    retention = _retention_of(session, kind, row.id)
    return Located(kind, row, label, reference, retention)


def _retention_of(session: Session, kind: RecordKind, record_id: int) -> RecordRetention | None:
    return session.exec(
        select(RecordRetention).where(
            RecordRetention.kind == kind, RecordRetention.record_id == record_id
        )
    ).first()


def retention_of_incident(*, session: Session, incident_id: int) -> RecordRetention | None:
    """What review has decided about an incident (a hold, a longer keep), if anything."""
    return _retention_of(session, RecordKind.incident, incident_id)


def _retention_for(session: Session, school_id: int, found: Located) -> RecordRetention:
    return found.retention or RecordRetention(
        school_id=school_id, kind=found.kind, record_id=found.row.id
    )


def _audit(session, actor, action, school_id, found: Located, **detail) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=school_id,
        entity_type=found.kind.value,
        entity_id=found.row.id,
        detail={"reference": found.reference, **detail},
    )


def _chronicle(session: Session, found: Located, text: str, reason: str, actor: Actor, **detail):
    """Retention decisions about an incident go in its chronology, with their reasons."""
    if found.kind == RecordKind.incident:
        incidents_service.add_entry(
            session=session,
            incident=found.row,
            kind=TimelineKind.decision,
            text=text,
            rationale=reason,
            actor=actor,
            detail={"retention": detail},
        )


def _reason(reason: str, what: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            f"Give the reason for {what}: it is kept with the decision.",
            errors=[{"field": "reason", "message": "required"}],
        )
    return reason


def _not_due(found: Located) -> Conflict:
    if found.kind == RecordKind.incident and found.row.status != IncidentStatus.closed:
        return Conflict(
            f"{found.label} is not closed. Only a closed incident past its retention period is "
            "reviewed for deletion. Nothing was changed."
        )
    return Conflict(
        f"{found.label} is not due for review: its retention period has not ended (or it was "
        "kept for longer at an earlier review). Nothing was changed."
    )


def _decide(
    session: Session,
    school_id: int,
    found: Located,
    actor: Actor,
    *,
    decision: str,
    changes: dict,
    text: str,
    reason: str,
    **detail,
) -> RecordRetention:
    """Store a review decision about a record, tell its chronology (an incident's) and audit it
    (`detail`, never the reason: the audit trail outlives the record)."""
    retention = _retention_for(session, school_id, found)
    for name, value in changes.items():
        setattr(retention, name, value)
    session.add(retention)
    session.flush()
    _chronicle(session, found, text, reason, actor, decision=decision, **detail)
    _audit(session, actor, f"retention.{decision}", school_id, found, **detail)
    return retention


def _locked(session: Session, school_id: int, kind: RecordKind, record_id: int) -> Located:
    return locate(
        session=session, school_id=school_id, kind=kind, record_id=record_id, for_update=True
    )


def keep(
    *,
    session: Session,
    school_id: int,
    kind: RecordKind,
    record_id: int,
    years: int,
    reason: str,
    actor: Actor,
) -> datetime:
    """The review's answer "keep it": for `years` more, with the reason (in an incident's
    chronology too). Returns the date it will be due for review again."""
    check_years(years)
    reason = _reason(reason, "keeping it")
    now = utcnow()
    found = _locked(session, school_id, kind, record_id)
    due = find_due(session=session, school_id=school_id, kind=kind, record_id=record_id, now=now)
    if due is None:
        raise _not_due(found)
    until = years_after(now, years)
    unit = "year" if years == 1 else "years"
    day = until.date().isoformat()
    _decide(
        session,
        school_id,
        found,
        actor,
        decision="kept",
        changes={
            "keep_until": until,
            "keep_reason": reason,
            "kept_by_id": actor.user_id,
            "kept_at": now,
        },
        text=f"Retention review: kept for {years} more {unit}, to be reviewed again on {day}.",
        reason=reason,
        years=years,
        until=day,
    )
    return until


def place_hold(
    *,
    session: Session,
    school_id: int,
    kind: RecordKind,
    record_id: int,
    reason: str,
    actor: Actor,
) -> RecordRetention:
    """A legal hold: nothing of the record may be deleted while it stands."""
    reason = _reason(reason, "the legal hold")
    found = _locked(session, school_id, kind, record_id)
    if found.retention is not None and found.retention.is_held:
        raise Conflict(f"{found.label} is already under a legal hold.")
    return _decide(
        session,
        school_id,
        found,
        actor,
        decision="hold_placed",
        changes={"hold_since": utcnow(), "hold_by_id": actor.user_id, "hold_reason": reason},
        text="Legal hold placed: no part of this record may be deleted while it stands.",
        reason=reason,
    )


def remove_hold(
    *,
    session: Session,
    school_id: int,
    kind: RecordKind,
    record_id: int,
    reason: str,
    actor: Actor,
) -> None:
    """Lift a legal hold, with the reason; who placed it and when stays in the audit trail."""
    reason = _reason(reason, "removing the legal hold")
    found = _locked(session, school_id, kind, record_id)
    held = found.retention
    if held is None or not held.is_held:
        raise Conflict(f"{found.label} is not under a legal hold.")
    _decide(
        session,
        school_id,
        found,
        actor,
        decision="hold_removed",
        changes={"hold_since": None, "hold_by_id": None, "hold_reason": ""},
        text="Legal hold removed.",
        reason=reason,
        held_since=held.hold_since.isoformat(),
        placed_by=held.hold_by_id,
    )


def find_by_reference(*, session: Session, school_id: int, reference: str) -> Incident:
    """An incident by its reference (INC-YYYY-NNNN), to place a hold on it."""
    text = reference.strip().upper()
    incident = session.exec(
        select(Incident).where(Incident.school_id == school_id, Incident.reference == text)
    ).first()
    if incident is None:
        raise NotFound(
            f"No incident has the reference {text[:20] or '(none given)'}. References look like "
            "INC-2026-0042."
        )
    return incident


@dataclass
class Held:
    kind: RecordKind
    record_id: int
    label: str
    retention: RecordRetention
    detail: str = ""

    @property
    def link(self) -> str:
        return _link(self.kind, self.record_id, self.detail)


def holds(*, session: Session, school_id: int) -> list[Held]:
    """Every record under a legal hold, due or not, oldest hold first (four queries)."""
    rows = session.exec(
        select(RecordRetention)
        .where(RecordRetention.school_id == school_id, col(RecordRetention.hold_since).is_not(None))
        .order_by(RecordRetention.hold_since, RecordRetention.id)
    ).all()
    ids = {kind: [r.record_id for r in rows if r.kind == kind] for kind in RecordKind}
    labels: dict[tuple[RecordKind, int], tuple[str, str]] = {}
    if ids[RecordKind.incident]:
        for record_id, reference in session.execute(
            select(Incident.id, Incident.reference).where(
                col(Incident.id).in_(ids[RecordKind.incident])
            )
        ).all():
            labels[RecordKind.incident, record_id] = (reference, "")
    if ids[RecordKind.checklist_run]:
        for record_id, title, person in session.execute(
            select(ChecklistRun.id, ChecklistTemplate.title, User.display_name)
            .join(ChecklistTemplate, ChecklistTemplate.id == ChecklistRun.template_id)
            .join(User, User.id == ChecklistRun.assignee_id)
            .where(col(ChecklistRun.id).in_(ids[RecordKind.checklist_run]))
        ).all():
            labels[RecordKind.checklist_run, record_id] = (f"{title}: {person}", "")
    if ids[RecordKind.policy_version]:
        for record_id, title, number, policy_id in session.execute(
            select(PolicyVersion.id, Policy.title, PolicyVersion.number, Policy.id)
            .join(Policy, Policy.id == PolicyVersion.policy_id)
            .where(col(PolicyVersion.id).in_(ids[RecordKind.policy_version]))
        ).all():
            labels[RecordKind.policy_version, record_id] = (
                f"{title}, version {number}",
                str(policy_id),
            )
    found = []
    for row in rows:
        label, detail = labels.get(
            (row.kind, row.record_id), (f"{row.kind.value} {row.record_id}", "")
        )
        found.append(Held(row.kind, row.record_id, label, row, detail))
    return found


# Deleting after review ----------------------------------------------------------------------------


@dataclass
class Deletion:
    """What a deletion removed: counts of rows by table, and the evidence files to remove once
    the transaction has committed."""

    reference: str
    removed: dict[str, int]
    files: list[str]


@dataclass
class Preview:
    """What deleting a record would remove, shown on the confirmation page."""

    found: Located
    due: DueRecord | None
    counts: dict[str, int]
    due_on: datetime | None = None  # when it will be due, if it is not yet


def _messages_about(session: Session, school_id: int, event_types, **data) -> list[int]:
    """Outbox messages whose data names this record (ids only, never their content)."""
    conditions = [
        OutboxMessage.school_id == school_id,
        col(OutboxMessage.event_type).in_(event_types),
    ]
    for key, value in data.items():
        conditions.append(OutboxMessage.payload[("data", key)].as_integer() == value)
    return list(session.exec(select(OutboxMessage.id).where(*conditions)).all())


def _idempotent_records_of(session: Session, incident: Incident) -> list[int]:
    """Stored answers to API requests that created the incident (they repeat its content)."""
    return list(
        session.exec(
            select(IdempotentRequest.id)
            .join(ApiToken, ApiToken.id == IdempotentRequest.token_id)
            .where(
                ApiToken.school_id == incident.school_id,
                IdempotentRequest.response["id"].as_integer() == incident.id,
                IdempotentRequest.response["reference"].as_string() == incident.reference,
            )
        ).all()
    )


def _incident_parts(session: Session, incident: Incident) -> list[tuple[str, object]]:
    """Every table's rows that belong to the incident, children first (for deletion)."""
    run_ids = list(
        session.exec(select(ChecklistRun.id).where(ChecklistRun.incident_id == incident.id)).all()
    )
    messages = _messages_about(
        session,
        incident.school_id,
        [EventType.incident_escalated, EventType.incident_updated],
        incident_id=incident.id,
    )
    return [
        ("delivery_attempts", col(DeliveryAttempt.message_id).in_(messages)),
        ("outbox_messages", col(OutboxMessage.id).in_(messages)),
        (
            "idempotency_records",
            col(IdempotentRequest.id).in_(_idempotent_records_of(session, incident)),
        ),
        ("playbook_completions", col(ItemCompletion.run_id).in_(run_ids)),
        ("playbook_items", col(ChecklistItem.run_id).in_(run_ids)),
        ("playbook_runs", col(ChecklistRun.id).in_(run_ids)),
        ("escalations", Escalation.incident_id == incident.id),
        ("people_links", IncidentPerson.incident_id == incident.id),
        ("evidence", Evidence.incident_id == incident.id),
        ("timeline_entries", TimelineEntry.incident_id == incident.id),
        ("incident", Incident.id == incident.id),
    ]


def _run_parts(session: Session, run: ChecklistRun) -> list[tuple[str, object]]:
    messages = _messages_about(session, run.school_id, [EventType.checklist_overdue], run_id=run.id)
    return [
        ("delivery_attempts", col(DeliveryAttempt.message_id).in_(messages)),
        ("outbox_messages", col(OutboxMessage.id).in_(messages)),
        ("completions", ItemCompletion.run_id == run.id),
        ("run_items", ChecklistItem.run_id == run.id),
        ("checklist_run", ChecklistRun.id == run.id),
    ]


def _version_parts(session: Session, school_id: int, version: PolicyVersion):
    messages = _messages_about(
        session,
        school_id,
        [EventType.policy_review_due],
        policy_id=version.policy_id,
        version=version.number,
    )
    return [
        ("delivery_attempts", col(DeliveryAttempt.message_id).in_(messages)),
        ("outbox_messages", col(OutboxMessage.id).in_(messages)),
        ("acknowledgements", PolicyAcknowledgement.version_id == version.id),
        ("policy_version", PolicyVersion.id == version.id),
    ]


_TABLES = {
    "delivery_attempts": DeliveryAttempt,
    "outbox_messages": OutboxMessage,
    "idempotency_records": IdempotentRequest,
    "playbook_completions": ItemCompletion,
    "playbook_items": ChecklistItem,
    "playbook_runs": ChecklistRun,
    "escalations": Escalation,
    "people_links": IncidentPerson,
    "evidence": Evidence,
    "timeline_entries": TimelineEntry,
    "incident": Incident,
    "completions": ItemCompletion,
    "run_items": ChecklistItem,
    "checklist_run": ChecklistRun,
    "acknowledgements": PolicyAcknowledgement,
    "policy_version": PolicyVersion,
}


def _parts(session: Session, school_id: int, found: Located) -> list[tuple[str, object]]:
    if found.kind == RecordKind.incident:
        return _incident_parts(session, found.row)
    if found.kind == RecordKind.checklist_run:
        return _run_parts(session, found.row)
    return _version_parts(session, school_id, found.row)


def _evidence_files(session: Session, incident_id: int) -> list[str]:
    return list(
        session.exec(
            select(Evidence.storage_name).where(
                Evidence.incident_id == incident_id, col(Evidence.storage_name).is_not(None)
            )
        ).all()
    )


def preview_deletion(
    *, session: Session, school_id: int, kind: RecordKind, record_id: int
) -> Preview:
    """What deleting the record would remove (for the confirmation page); changes nothing."""
    record = {"session": session, "school_id": school_id, "kind": kind, "record_id": record_id}
    found = locate(**record)
    due = find_due(**record, now=utcnow())
    counts = {}
    for name, condition in _parts(session, school_id, found):
        table = _TABLES[name]
        counts[name] = session.execute(
            select(func.count()).select_from(table).where(condition)
        ).scalar_one()
    if kind == RecordKind.incident:
        counts["evidence_files"] = len(_evidence_files(session, record_id))
    later = None if due else due_on(**record)
    return Preview(found, due, counts, later)


def delete_after_review(
    *,
    session: Session,
    school_id: int,
    kind: RecordKind,
    record_id: int,
    reason: str,
    confirmed: bool,
    actor: Actor,
) -> Deletion:
    """Delete a record a DSL has reviewed: past its period, not held, closed if an incident.

    Everything belonging to it goes in this transaction; its evidence files are returned, to be
    removed from disk once the transaction has committed (`remove_files`). The audit entry keeps
    the record's type, id and reference, the rule, the reason given and the reviewer: no content.
    """
    if reason not in DELETE_REASONS:
        raise InvalidInput(
            "Choose the reason for deleting the record. Nothing was deleted.",
            errors=[{"field": "reason", "message": "one of " + ", ".join(DELETE_REASONS)}],
        )
    if not confirmed:
        raise InvalidInput(
            "Tick the box to confirm that you have reviewed the record and that it is to be "
            "deleted for good. Nothing was deleted.",
            errors=[{"field": "confirm", "message": "required"}],
        )
    now = utcnow()
    found = _locked(session, school_id, kind, record_id)
    if found.retention is not None and found.retention.is_held:
        raise Conflict(
            f"{found.label} is under a legal hold, so it cannot be deleted. Nothing was deleted. "
            "If the hold no longer applies, the DSL can remove it first, giving the reason."
        )
    due = find_due(session=session, school_id=school_id, kind=kind, record_id=record_id, now=now)
    if due is None:
        raise _not_due(found)
    rule = schedule(session=session, school_id=school_id)[due.record_type]
    files = _evidence_files(session, record_id) if kind == RecordKind.incident else []
    # The database lets an incident and its chronology go only while this flag is set, in this
    # transaction, and never while the record is held.
    retention = _retention_for(session, school_id, found)
    retention.deleting = True
    session.add(retention)
    session.flush()
    parts = _parts(session, school_id, found)
    session.expunge(found.row)
    removed = {}
    for name, condition in parts:
        result = session.execute(
            delete(_TABLES[name]).where(condition).execution_options(synchronize_session=False)
        )
        removed[name] = result.rowcount
    session.execute(
        delete(RecordRetention)
        .where(RecordRetention.id == retention.id)
        .execution_options(synchronize_session=False)
    )
    session.expunge(retention)
    if files:
        removed["evidence_files"] = len(files)
    record_event(
        session=session,
        actor=actor,
        action="retention.deleted",
        school_id=school_id,
        entity_type=kind.value,
        entity_id=record_id,
        detail={
            "reference": found.reference,
            "record_type": due.record_type.value,
            "rule": rule.in_words,
            "reason": reason,
            "reviewer": actor.user_id,
            "removed": {name: count for name, count in removed.items() if count},
        },
    )
    return Deletion(found.reference, removed, files)


def remove_files(*, evidence_dir: Path, files: list[str]) -> None:
    """After the deletion has committed: the evidence files go from the evidence folder."""
    for storage_name in files:
        uploads.discard(evidence_dir=evidence_dir, storage_name=storage_name)


@dataclass
class PastDeletion:
    at: datetime
    kind: str
    reference: str
    rule: str
    reason: str
    reviewer_id: int | None


def recent_deletions(*, session: Session, school_id: int, limit: int = 20) -> list[PastDeletion]:
    """The last deletions after review, as the audit trail keeps them."""
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.school_id == school_id, AuditEvent.action == "retention.deleted")
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    ).all()
    return [
        PastDeletion(
            e.occurred_at,
            e.entity_type,
            str(e.detail.get("reference", "")),
            str(e.detail.get("rule", "")),
            str(e.detail.get("reason", "")),
            e.actor_user_id,
        )
        for e in events
    ]
