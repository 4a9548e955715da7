"""Patterns across incidents, counted in SQL: the same person on the roster in several incidents,
and low-level concerns about one member of staff. The only module that queries them."""

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.audit.service import Actor, record_event
from app.core.db import begin_writing
from app.incidents.models import (
    LADO_QUESTIONS,
    Incident,
    IncidentPerson,
    IncidentStatus,
    InvolvementRole,
    OffenderType,
)
from app.people.models import Person, PersonKind

LIMIT = 50  # people shown per list; the page says when there are more


def low_level_concern():
    """SQL: an incident about a member of staff whose LADO harm test is answered, all no."""
    return sa.and_(
        Incident.offender_type == OffenderType.staff,
        *(Incident.lado_harm_test[name].as_boolean().is_(False) for name in LADO_QUESTIONS),
    )


@dataclass
class Appearance:
    incident_id: int
    reference: str
    occurred_at: datetime
    status: IncidentStatus
    roles: list[InvolvementRole]


@dataclass
class PersonPattern:
    person: Person
    count: int
    first: datetime
    last: datetime
    roles: list[InvolvementRole] = field(default_factory=list)
    incidents: list[Appearance] = field(default_factory=list)


@dataclass
class Patterns:
    people: list[PersonPattern]
    people_total: int
    staff: list[PersonPattern]
    staff_total: int


def _grouped(school_id: int, since: datetime | None, min_count: int, conditions: list):
    """Per person: distinct incidents, first and last, with at least `min_count` incidents."""
    count = func.count(sa.distinct(IncidentPerson.incident_id))
    where = [
        Incident.school_id == school_id,
        col(IncidentPerson.person_id).is_not(None),
        *conditions,
    ]
    if since is not None:
        where.append(Incident.occurred_at >= since)
    return (
        select(
            IncidentPerson.person_id.label("person_id"),
            count.label("n"),
            func.min(Incident.occurred_at).label("first"),
            func.max(Incident.occurred_at).label("last"),
        )
        .join(Incident, Incident.id == IncidentPerson.incident_id)
        .where(*where)
        .group_by(IncidentPerson.person_id)
        .having(count >= min_count)
    )


def _patterns(
    session: Session, school_id: int, since: datetime | None, min_count: int, conditions: list
) -> tuple[list[PersonPattern], int]:
    grouped = _grouped(school_id, since, min_count, conditions).subquery()
    total = session.execute(select(func.count()).select_from(grouped)).scalar_one()
    rows = session.execute(
        select(grouped.c.person_id, grouped.c.n, grouped.c.first, grouped.c.last, Person)
        .join(Person, Person.id == grouped.c.person_id)
        .order_by(grouped.c.n.desc(), grouped.c.last.desc(), grouped.c.person_id)
        .limit(LIMIT)
    ).all()
    found = {
        person_id: PersonPattern(person=person, count=n, first=first, last=last)
        for person_id, n, first, last, person in rows
    }
    if not found:
        return [], total
    where = [
        Incident.school_id == school_id,
        col(IncidentPerson.person_id).in_(list(found)),
        *conditions,
    ]
    if since is not None:
        where.append(Incident.occurred_at >= since)
    links = session.execute(
        select(
            IncidentPerson.person_id,
            IncidentPerson.role,
            Incident.id,
            Incident.reference,
            Incident.occurred_at,
            Incident.status,
        )
        .join(Incident, Incident.id == IncidentPerson.incident_id)
        .where(*where)
        .order_by(Incident.occurred_at, Incident.id, IncidentPerson.id)
    ).all()
    for person_id, role, incident_id, reference, occurred_at, status in links:
        pattern = found[person_id]
        if role not in pattern.roles:
            pattern.roles.append(role)
        if pattern.incidents and pattern.incidents[-1].incident_id == incident_id:
            if role not in pattern.incidents[-1].roles:
                pattern.incidents[-1].roles.append(role)
            continue
        pattern.incidents.append(Appearance(incident_id, reference, occurred_at, status, [role]))
    order = list(InvolvementRole)
    for pattern in found.values():
        pattern.roles.sort(key=order.index)
    return list(found.values()), total


def find_patterns(
    *, session: Session, school_id: int, since: datetime | None, min_count: int
) -> Patterns:
    """Both lists, in a fixed number of queries whatever the number of incidents."""
    people, people_total = _patterns(session, school_id, since, min_count, [])
    staff, staff_total = _patterns(
        session,
        school_id,
        since,
        min_count,
        [
            low_level_concern(),
            IncidentPerson.role == InvolvementRole.subject,
            col(IncidentPerson.person_id).in_(
                select(Person.id).where(
                    Person.school_id == school_id, Person.kind == PersonKind.staff
                )
            ),
        ],
    )
    return Patterns(people, people_total, staff, staff_total)


def record_view(
    *, session: Session, school_id: int, actor: Actor, filters: dict, patterns: Patterns
) -> None:
    """Looking at patterns is audited: the filters and how many were shown, never who."""
    begin_writing(session)
    record_event(
        session=session,
        actor=actor,
        action="patterns.viewed",
        school_id=school_id,
        entity_type="patterns",
        detail={
            **filters,
            "people": patterns.people_total,
            "low_level_staff": patterns.staff_total,
        },
    )
