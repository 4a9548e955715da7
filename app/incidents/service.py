"""Incidents, their people, evidence and chronology. The only module that queries them."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, or_, select

from app.audit.service import Actor, record_event
from app.auth.models import User
from app.core.db import begin_writing, get_for_school
from app.core.errors import InvalidInput, NotFound
from app.core.types import utcnow
from app.incidents.library import CONTACTS
from app.incidents.models import (
    FIRST_ACTION_KINDS,
    Contact,
    ContactKind,
    ContactWith,
    Evidence,
    Incident,
    IncidentCounter,
    IncidentCreate,
    IncidentPerson,
    IncidentStatus,
    IncidentStatusChange,
    IncidentUpdate,
    LadoHarmTest,
    Severity,
    TimelineEntry,
    TimelineKind,
)
from app.incidents.models import (
    InvolvedPersonIn as _PersonIn,
)
from app.people.models import Person

OPEN_STATUSES = {IncidentStatus.open, IncidentStatus.in_progress, IncidentStatus.escalated}
ENTRY_KINDS_BY_HAND = {TimelineKind.note, TimelineKind.decision, TimelineKind.contact}


def _audit(session: Session, actor: Actor, action: str, incident: Incident, **detail) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=incident.school_id,
        entity_type="incident",
        entity_id=incident.id,
        detail=detail,
    )


def add_entry(
    *,
    session: Session,
    incident: Incident,
    kind: TimelineKind,
    text: str,
    actor: Actor,
    rationale: str = "",
    contact_with: ContactWith | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    """Append to the chronology (and so to the audit trail) in the caller's transaction. Entries
    written together may share one time `at`, so the incident's row is updated once for them."""
    entry = TimelineEntry(
        incident_id=incident.id,
        kind=kind,
        text=text,
        rationale=rationale,
        contact_with=contact_with,
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        created_at=at or utcnow(),
        detail=detail or {},
    )
    session.add(entry)
    incident.updated_at = entry.created_at
    if incident.first_action_at is None and actor.user_id and kind in FIRST_ACTION_KINDS:
        incident.first_action_at = entry.created_at
    session.add(incident)
    session.flush()
    _audit(session, actor, f"incident.{kind.value}", incident, entry=entry.id)
    return entry


# Creating --------------------------------------------------------------------------------------


def number_incident(*, session: Session, incident: Incident) -> None:
    """Give a new incident its reference, INC-YYYY-NNNN, counted per school and year without gaps
    or duplicates. The year's counter stays locked until the commit, so call this as late in the
    transaction as you can: reports made together wait for each other only from here."""
    year = incident.reported_at.year
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    number = session.execute(
        dialect.insert(IncidentCounter)
        .values(school_id=incident.school_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=[IncidentCounter.school_id, IncidentCounter.year],
            set_={"last": IncidentCounter.last + 1},
        )
        .returning(IncidentCounter.last)
    ).scalar_one()
    incident.reference = f"INC-{year}-{number:04d}"
    session.add(incident)


def create_incident(
    *, session: Session, school_id: int, data: IncidentCreate, reporter: User | None, actor: Actor
) -> Incident:
    """A new incident, its people and the first chronology entry; still to be numbered."""
    people = _check_people(session, school_id, data.people)
    now = utcnow()
    incident = Incident(
        school_id=school_id,
        # Unique until number_incident replaces it, later in the same transaction.
        reference=f"new-{uuid.uuid4().hex[:16]}",
        title=data.title.strip(),
        description=data.description.strip(),
        occurred_at=data.occurred_at,
        reported_at=now,
        reported_by_id=reporter.id if reporter else None,
        platform=data.platform,
        category=data.category,
        offender_type=data.offender_type,
        target_type=data.target_type,
        content_flags=sorted({flag.value for flag in data.content_flags}),
        suspected_criminal_offence=data.suspected_criminal_offence,
        removal_requested=data.removal_requested,
        removal_refused=data.removal_refused,
        lado_harm_test=data.lado_harm_test.model_dump() if data.lado_harm_test else None,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    for person in people:
        session.add(IncidentPerson(incident_id=incident.id, **person))
    add_entry(
        session=session,
        incident=incident,
        kind=TimelineKind.reported,
        text=f"Reported{' through the API' if reporter is None else ''}.",
        actor=actor,
        at=now,
    )
    return incident


def _check_people(session: Session, school_id: int, people) -> list[dict]:
    ids = {p.person_id for p in people if p.person_id is not None}
    if ids:
        found = set(
            session.exec(
                select(Person.id).where(Person.school_id == school_id, col(Person.id).in_(ids))
            ).all()
        )
        if missing := ids - found:
            raise InvalidInput(
                "Some people are not on the school's roster.",
                errors=[{"field": "people.person_id", "message": f"unknown: {i}"} for i in missing],
            )
    rows = []
    for person in people:
        if person.person_id is None and not person.label.strip():
            raise InvalidInput(
                "Each person involved needs a roster entry or a short description.",
                errors=[{"field": "people.label", "message": "required without person_id"}],
            )
        rows.append(
            {"person_id": person.person_id, "label": person.label.strip(), "role": person.role}
        )
    return rows


# Reading ------------------------------------------------------------------------------------------


def get_incident(
    *, session: Session, school_id: int, incident_id: int, for_update: bool = False
) -> Incident:
    return get_for_school(
        session, Incident, incident_id, school_id, "incident", for_update=for_update
    )


@dataclass
class QueueFilter:
    status: IncidentStatus | None = None
    severity: Severity | None = None
    platform: str | None = None
    category: str | None = None
    assigned_to: int | None = None
    unassigned: bool = False
    search: str = ""
    sort: str = "newest"  # newest, oldest, severity


SORTS = ("newest", "oldest", "severity")

_SEVERITY_RANK = sa.case({s.value: s.rank for s in Severity}, value=Incident.severity, else_=0)


def _filtered(school_id: int, filters: QueueFilter):
    conditions = [Incident.school_id == school_id]
    if filters.status:
        conditions.append(Incident.status == filters.status)
    if filters.severity:
        conditions.append(Incident.severity == filters.severity)
    if filters.platform:
        conditions.append(Incident.platform == filters.platform)
    if filters.category:
        conditions.append(Incident.category == filters.category)
    if filters.unassigned:
        conditions.append(Incident.assigned_to_id.is_(None))
    elif filters.assigned_to:
        conditions.append(Incident.assigned_to_id == filters.assigned_to)
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        conditions.append(
            or_(
                func.lower(Incident.reference).like(pattern),
                func.lower(Incident.title).like(pattern),
            )
        )
    return conditions


def _sort_keys(sort: str):
    if sort == "severity":
        return [_SEVERITY_RANK, Incident.reported_at, Incident.id], True
    if sort == "oldest":
        return [Incident.reported_at, Incident.id], False
    return [Incident.reported_at, Incident.id], True


def cursor_values(incident: Incident, sort: str) -> list:
    values = [incident.reported_at.isoformat(), incident.id]
    return [incident.severity.rank, *values] if sort == "severity" else values


def queue(
    *, session: Session, school_id: int, filters: QueueFilter, limit: int, after: list | None
) -> list[Incident]:
    """A page of the queue by keyset; one more than `limit` tells whether another follows."""
    keys, descending = _sort_keys(filters.sort)
    query = select(Incident).where(*_filtered(school_id, filters))
    if after is not None:
        if len(after) != len(keys):
            raise InvalidInput("The page link is out of date; start from the first page.")
        values = [*after[:-2], datetime.fromisoformat(after[-2]), int(after[-1])]
        position = sa.tuple_(*keys)
        query = query.where(
            position < sa.tuple_(*values) if descending else position > sa.tuple_(*values)
        )
    order = [key.desc() if descending else key.asc() for key in keys]
    return list(session.exec(query.order_by(*order).limit(limit + 1)).all())


def counts_by_status(*, session: Session, school_id: int) -> dict[IncidentStatus, int]:
    """Summed from the status changes the database logs, however many incidents there are."""
    rows = session.exec(
        select(IncidentStatusChange.status, func.sum(IncidentStatusChange.change))
        .where(IncidentStatusChange.school_id == school_id)
        .group_by(IncidentStatusChange.status)
    ).all()
    counts = dict.fromkeys(IncidentStatus, 0)
    counts.update({status: int(total) for status, total in rows})
    return counts


def fold_status_changes(*, session: Session, school_id: int) -> int:
    """Replace a school's logged status changes by one row per status that still has incidents,
    so the counts stay quick to sum. Only the rows this DELETE removes are summed, so changes
    committed meanwhile wait for the next fold. Returns how many rows were folded."""
    removed = session.execute(
        sa.delete(IncidentStatusChange)
        .where(IncidentStatusChange.school_id == school_id)
        .returning(IncidentStatusChange.status, IncidentStatusChange.change)
    ).all()
    totals: dict[IncidentStatus, int] = {}
    for status, change in removed:
        totals[status] = totals.get(status, 0) + change
    session.add_all(
        IncidentStatusChange(school_id=school_id, status=status, change=total)
        for status, total in totals.items()
        if total
    )
    session.flush()
    return len(removed)


def list_changed(
    *,
    session: Session,
    school_id: int,
    filters: QueueFilter,
    limit: int,
    after: tuple[datetime, int] | None,
    updated_since: datetime | None,
) -> list[Incident]:
    """Incidents by last change (oldest first), for the MIS's incremental sync: plain rows, not
    tracked objects, since they are only read (a page of 500 loads in a fraction of the time)."""
    query = select(*Incident.__table__.columns).where(*_filtered(school_id, filters))
    if updated_since is not None:
        query = query.where(Incident.updated_at >= updated_since)
    if after is not None:
        query = query.where(sa.tuple_(Incident.updated_at, Incident.id) > sa.tuple_(*after))
    return list(
        session.execute(query.order_by(Incident.updated_at, Incident.id).limit(limit + 1)).all()
    )


def reports_of(*, session: Session, user: User) -> list[Incident]:
    return list(
        session.exec(
            select(Incident)
            .where(Incident.reported_by_id == user.id)
            .order_by(Incident.reported_at.desc(), Incident.id.desc())
        ).all()
    )


def people_of(*, session: Session, incident_ids: list[int]) -> dict[int, list[tuple]]:
    """(IncidentPerson, Person or None) per incident, in one query."""
    grouped: dict[int, list[tuple]] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = session.execute(
            select(IncidentPerson, Person)
            .outerjoin(Person, Person.id == IncidentPerson.person_id)
            .where(col(IncidentPerson.incident_id).in_(incident_ids))
            .order_by(IncidentPerson.id)
        ).all()
        for link, person in rows:
            grouped[link.incident_id].append((link, person))
    return grouped


def involvements_of(*, session: Session, incident_ids: list[int]) -> dict[int, list]:
    """Who is involved in each incident (person_id, label, role), in one query: what the API
    shows, without the roster entries themselves."""
    grouped: dict[int, list] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = session.execute(
            select(
                IncidentPerson.incident_id,
                IncidentPerson.person_id,
                IncidentPerson.label,
                IncidentPerson.role,
            )
            .where(col(IncidentPerson.incident_id).in_(incident_ids))
            .order_by(IncidentPerson.id)
        ).all()
        for row in rows:
            grouped[row.incident_id].append(row)
    return grouped


def timeline(*, session: Session, incident: Incident) -> list[TimelineEntry]:
    return list(
        session.exec(
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident.id)
            .order_by(TimelineEntry.created_at, TimelineEntry.id)
        ).all()
    )


def evidence_of(*, session: Session, incident: Incident) -> list[Evidence]:
    return list(
        session.exec(
            select(Evidence).where(Evidence.incident_id == incident.id).order_by(Evidence.id)
        ).all()
    )


def get_evidence(*, session: Session, incident: Incident, evidence_id: int) -> Evidence:
    evidence = session.get(Evidence, evidence_id)
    if evidence is None or evidence.incident_id != incident.id:
        raise NotFound("No such evidence.")
    return evidence


def record_view(*, session: Session, incident: Incident, user: User | None, actor: Actor) -> None:
    """Every look at an incident is audited; a DSL's first look is shown to the reporter."""
    begin_writing(session)
    if (
        user is not None
        and incident.seen_by_dsl_at is None
        and user.role.value in ("dsl", "deputy_dsl")
    ):
        incident.seen_by_dsl_at = utcnow()
        session.add(incident)
    _audit(session, actor, "incident.viewed", incident)


# Changing -------------------------------------------------------------------------------------


def update_incident(
    *, session: Session, incident: Incident, data: IncidentUpdate, actor: Actor
) -> Incident:
    """Apply a change; status, assignment, removal and harm-test changes enter the chronology."""
    changes = data.model_dump(exclude_unset=True)
    reason = (changes.pop("reason", None) or "").strip()
    if "assigned_to" in changes:
        changes["assigned_to_id"] = changes.pop("assigned_to")
        if changes["assigned_to_id"] is not None:
            _check_assignee(session, incident.school_id, changes["assigned_to_id"])
    new_status = changes.get("status")
    if new_status is not None and new_status != incident.status:
        _check_status_change(incident, IncidentStatus(new_status), reason, changes.get("outcome"))
    if "content_flags" in changes and changes["content_flags"] is not None:
        changes["content_flags"] = sorted({str(f) for f in changes["content_flags"]})
    if "lado_harm_test" in changes and changes["lado_harm_test"] is not None:
        changes["lado_harm_test"] = LadoHarmTest.model_validate(
            changes["lado_harm_test"]
        ).model_dump()
    changed = [name for name, value in changes.items() if getattr(incident, name) != value]
    for name in changed:
        setattr(incident, name, changes[name])
    if not changed:
        return incident
    now = utcnow()
    incident.updated_at = now
    if "status" in changed:
        incident.closed_at = now if incident.status == IncidentStatus.closed else None
    session.add(incident)
    _chronicle(session, incident, changed, reason, actor)
    _audit(session, actor, "incident.updated", incident, fields=sorted(changed))
    return incident


def _check_assignee(session: Session, school_id: int, user_id: int) -> None:
    user = session.get(User, user_id)
    if user is None or user.school_id != school_id or not user.is_active:
        raise InvalidInput(
            "Incidents can only be assigned to an active DSL or deputy DSL.",
            errors=[{"field": "assigned_to", "message": "unknown or inactive user"}],
        )
    if user.role.value not in ("dsl", "deputy_dsl"):
        raise InvalidInput(
            "Incidents can only be assigned to an active DSL or deputy DSL.",
            errors=[{"field": "assigned_to", "message": "not a DSL or deputy"}],
        )


def _check_status_change(
    incident: Incident, new: IncidentStatus, reason: str, outcome: str | None
) -> None:
    if incident.status == IncidentStatus.closed and not reason:
        raise InvalidInput(
            "Reopening a closed incident needs a reason, which goes in the chronology.",
            errors=[{"field": "reason", "message": "required to reopen a closed incident"}],
        )
    if new == IncidentStatus.closed and not ((outcome or "").strip() or incident.outcome):
        raise InvalidInput(
            "Closing an incident needs its outcome.",
            errors=[{"field": "outcome", "message": "required to close"}],
        )


def _chronicle(session, incident: Incident, changed: list[str], reason: str, actor: Actor) -> None:
    if "status" in changed:
        text = f"Status changed to {incident.status.value.replace('_', ' ')}."
        if incident.status == IncidentStatus.closed:
            text = f"Closed. Outcome: {incident.outcome}"
        add_entry(
            session=session,
            incident=incident,
            kind=TimelineKind.status_change,
            text=text,
            rationale=reason,
            actor=actor,
            detail={"status": incident.status.value},
        )
    if "assigned_to_id" in changed:
        who = session.get(User, incident.assigned_to_id) if incident.assigned_to_id else None
        add_entry(
            session=session,
            incident=incident,
            kind=TimelineKind.assignment,
            text=f"Assigned to {who.display_name}." if who else "Unassigned.",
            actor=actor,
        )
    for name, text in (
        ("removal_requested", "Removal of the content requested."),
        ("removal_refused", "Removal of the content refused."),
    ):
        if name in changed and getattr(incident, name):
            add_entry(
                session=session,
                incident=incident,
                kind=TimelineKind.removal,
                text=text,
                actor=actor,
            )
    if "lado_harm_test" in changed and incident.lado_harm_test is not None:
        answers = LadoHarmTest.model_validate(incident.lado_harm_test)
        text = "LADO harm test answered: " + (
            "at least one yes; refer to the LADO within one working day."
            if answers.any_yes
            else "all no; a low-level concern, kept for patterns."
        )
        add_entry(
            session=session,
            incident=incident,
            kind=TimelineKind.harm_test,
            text=text,
            actor=actor,
            detail=incident.lado_harm_test,
        )
    if "severity" in changed:
        add_entry(
            session=session,
            incident=incident,
            kind=TimelineKind.note,
            text=f"Severity set to {incident.severity.value}.",
            rationale=reason,
            actor=actor,
        )


def add_written_entry(
    *,
    session: Session,
    incident: Incident,
    kind: str,
    text: str,
    rationale: str,
    contact_with: ContactWith | None,
    actor: Actor,
) -> TimelineEntry:
    """A note, a decision (with its rationale) or a contact, written by a person or the MIS."""
    try:
        entry_kind = TimelineKind(kind)
    except ValueError:
        entry_kind = None
    if entry_kind not in ENTRY_KINDS_BY_HAND:
        raise InvalidInput(
            "An entry is a note, a decision or a contact.",
            errors=[{"field": "kind", "message": "one of note, decision, contact"}],
        )
    if not text.strip():
        raise InvalidInput(
            "Write what happened.", errors=[{"field": "text", "message": "required"}]
        )
    if entry_kind == TimelineKind.decision and not rationale.strip():
        raise InvalidInput(
            "A decision needs the reasons for it (KCSIE asks for decisions and their reasons).",
            errors=[{"field": "rationale", "message": "required for a decision"}],
        )
    if entry_kind == TimelineKind.contact and contact_with is None:
        raise InvalidInput(
            "Say who was contacted: police, LADO, POSH, the platform, a parent or carer, or other.",
            errors=[{"field": "contact_with", "message": "required for a contact"}],
        )
    return add_entry(
        session=session,
        incident=incident,
        kind=entry_kind,
        text=text.strip(),
        rationale=rationale.strip(),
        contact_with=contact_with if entry_kind == TimelineKind.contact else None,
        actor=actor,
    )


def add_evidence(
    *,
    session: Session,
    incident: Incident,
    actor: Actor,
    uploaded_by: User | None,
    note: str,
    captured_at: datetime | None,
    storage_name: str | None = None,
    sha256: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> Evidence:
    """A stored file, or a written description only (for imagery nobody may copy)."""
    if storage_name is None and not note.strip():
        raise InvalidInput(
            "Describe what you saw, or attach a screenshot.",
            errors=[{"field": "note", "message": "required without a file"}],
        )
    if captured_at is not None and captured_at > utcnow():
        raise InvalidInput(
            "The time the screenshot was taken cannot be in the future.",
            errors=[{"field": "captured_at", "message": "cannot be in the future"}],
        )
    evidence = Evidence(
        incident_id=incident.id,
        storage_name=storage_name,
        sha256=sha256,
        content_type=content_type,
        size=size,
        captured_at=captured_at,
        uploaded_by_id=uploaded_by.id if uploaded_by else None,
        uploaded_at=utcnow(),
        note=note.strip(),
    )
    session.add(evidence)
    session.flush()
    what = f"a file, SHA-256 {sha256[:12]}…" if sha256 else "a written description"
    text = f"Evidence added: {what}."
    add_entry(
        session=session,
        incident=incident,
        kind=TimelineKind.evidence,
        text=text,
        actor=actor,
        detail={"evidence_id": evidence.id},
    )
    return evidence


# The directory ----------------------------------------------------------------------------------


def install_contacts(*, session: Session, school_id: int) -> int:
    have = set(session.exec(select(Contact.key).where(Contact.school_id == school_id)).all())
    added = 0
    for shipped in CONTACTS:
        if shipped.key in have:
            continue
        session.add(
            Contact(
                school_id=school_id,
                key=shipped.key,
                name=shipped.name,
                kind=ContactKind(shipped.kind),
                phone=shipped.phone,
                email=shipped.email,
                url=shipped.url,
                how_to=shipped.how_to,
                platforms=list(shipped.platforms),
                source=shipped.source,
            )
        )
        added += 1
    session.flush()
    return added


def contacts(*, session: Session, school_id: int) -> list[Contact]:
    return list(
        session.exec(
            select(Contact)
            .where(Contact.school_id == school_id)
            .order_by(Contact.kind, Contact.name)
        ).all()
    )


def contacts_for_platform(*, session: Session, school_id: int, platform: str) -> list[Contact]:
    return [c for c in contacts(session=session, school_id=school_id) if platform in c.platforms]


def audit_download(
    *, session: Session, incident: Incident, evidence: Evidence, actor: Actor
) -> None:
    begin_writing(session)
    _audit(session, actor, "incident.evidence_downloaded", incident, evidence=evidence.id)


def record_export(
    *, session: Session, incident: Incident, export_format: str, actor: Actor
) -> None:
    """An export of the chronology is itself part of the chronology, and audited."""
    begin_writing(session)
    add_entry(
        session=session,
        incident=incident,
        kind=TimelineKind.export,
        text=f"Chronology exported ({export_format}).",
        actor=actor,
        detail={"format": export_format},
    )


def add_person(
    *, session: Session, incident: Incident, person_id: int | None, label: str, role, actor: Actor
) -> IncidentPerson:
    (row,) = _check_people(
        session, incident.school_id, [_PersonIn(person_id=person_id, label=label, role=role)]
    )
    link = IncidentPerson(incident_id=incident.id, **row)
    session.add(link)
    session.flush()
    who = "someone on the roster" if person_id else "someone not on the roster"
    add_entry(
        session=session,
        incident=incident,
        kind=TimelineKind.note,
        text=f"Added {who} as {link.role.value}.",
        actor=actor,
        detail={"incident_person": link.id},
    )
    return link


def update_contact(
    *, session: Session, school_id: int, contact_id: int, changes: dict, actor: Actor
) -> Contact:
    contact = get_for_school(session, Contact, contact_id, school_id, "contact")
    if not (changes.get("name") or "").strip():
        raise InvalidInput(
            "A contact needs a name.", errors=[{"field": "name", "message": "required"}]
        )
    url = (changes.get("url") or "").strip()
    if url and not url.startswith(("https://", "http://")):
        raise InvalidInput(
            "A web address starts with https://.",
            errors=[{"field": "url", "message": "must start with https://"}],
        )
    for name in ("name", "phone", "email", "url", "how_to"):
        setattr(contact, name, (changes.get(name) or "").strip())
    contact.updated_at = utcnow()
    session.add(contact)
    record_event(
        session=session,
        actor=actor,
        action="contact.updated",
        school_id=school_id,
        entity_type="contact",
        entity_id=contact.id,
    )
    return contact
