"""Queries over the roster."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from sqlalchemy import insert, update
from sqlmodel import Session, func, or_, select

from app.audit.service import Actor, record_event
from app.core.db import get_for_school
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.people.models import PeopleSync, PeopleSyncResult, Person, PersonIn, PersonKind

_COMPARED = [
    name
    for name in Person.model_fields
    if name not in {"id", "school_id", "created_at", "updated_at"}
]
_CHUNK = 500


def list_people(
    *,
    session: Session,
    school_id: int,
    limit: int,
    after: tuple[datetime, int] | None = None,
    updated_since: datetime | None = None,
) -> list[Person]:
    """People in order of last change then id, for incremental sync; one more than `limit`."""
    query = select(Person).where(Person.school_id == school_id)
    if updated_since is not None:
        query = query.where(Person.updated_at >= updated_since)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(Person.updated_at > at, (Person.updated_at == at) & (Person.id > last_id))
        )
    query = query.order_by(Person.updated_at, Person.id).limit(limit + 1)
    return list(session.exec(query).all())


def get_person(*, session: Session, school_id: int, person_id: int) -> Person:
    return get_for_school(session, Person, person_id, school_id, "person")


def _existing_by_external_id(session: Session, school_id: int, ids: list[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.exec(
            select(Person).where(Person.school_id == school_id, Person.external_id.in_(chunk))
        ).all()
        found.update({person.external_id: person for person in rows})
    return found


@dataclass
class SyncPlan:
    """What a roster sync would change, worked out before anything is written."""

    to_create: list[PersonIn] = field(default_factory=list)
    to_update: list[tuple[Person, dict]] = field(default_factory=list)  # person, changed values
    unchanged: int = 0
    to_deactivate: list[Person] = field(default_factory=list)

    @property
    def leavers(self) -> list[Person]:
        """People who stop being active: deactivated as missing, or sent as inactive."""
        sent_inactive = [
            person
            for person, changes in self.to_update
            if person.is_active and changes.get("is_active") is False
        ]
        return self.to_deactivate + sent_inactive


def refuse_repeated_ids(people: list[PersonIn]) -> None:
    counts = Counter(person.external_id for person in people)
    repeated = sorted(external_id for external_id, n in counts.items() if n > 1)
    if repeated:
        raise InvalidInput(
            "Each external_id may appear once in a sync.",
            errors=[
                {"field": "people.external_id", "message": f"repeated: {external_id}"}
                for external_id in repeated[:20]
            ],
        )


def plan_sync(*, session: Session, school_id: int, data: PeopleSync) -> SyncPlan:
    """Compare the incoming roster with the stored one; writes nothing."""
    refuse_repeated_ids(data.people)
    ids = [person.external_id for person in data.people]
    existing = _existing_by_external_id(session, school_id, ids)
    plan = SyncPlan()
    for incoming in data.people:
        person = existing.get(incoming.external_id)
        if person is None:
            plan.to_create.append(incoming)
            continue
        values = incoming.model_dump()
        changes = {n: values[n] for n in _COMPARED if getattr(person, n) != values[n]}
        if changes:
            plan.to_update.append((person, changes))
        else:
            plan.unchanged += 1
    if data.deactivate_missing:
        keep = set(ids)
        active = session.exec(
            select(Person).where(Person.school_id == school_id, Person.is_active.is_(True))
        ).all()
        plan.to_deactivate = [person for person in active if person.external_id not in keep]
    return plan


def apply_sync(
    *, session: Session, school_id: int, plan: SyncPlan, actor: Actor
) -> PeopleSyncResult:
    """Write a plan in bulk (one INSERT and one UPDATE batch), audited without any names."""
    now = utcnow()
    if plan.to_create:
        session.execute(
            insert(Person),
            [
                {**p.model_dump(), "school_id": school_id, "created_at": now, "updated_at": now}
                for p in plan.to_create
            ],
        )
    updates = [
        {"id": person.id, **changes, "updated_at": now} for person, changes in plan.to_update
    ]
    updates += [
        {"id": person.id, "is_active": False, "updated_at": now} for person in plan.to_deactivate
    ]
    # Bulk UPDATE by primary key groups rows by the columns they set.
    for _columns, rows in groupby(sorted(updates, key=_column_key), key=_column_key):
        session.execute(update(Person), list(rows))
    result = PeopleSyncResult(
        created=len(plan.to_create),
        updated=len(plan.to_update),
        unchanged=plan.unchanged,
        deactivated=len(plan.to_deactivate),
    )
    session.expire_all()  # the bulk statements bypassed the identity map
    record_event(
        session=session,
        actor=actor,
        action="people.synced",
        school_id=school_id,
        entity_type="person",
        detail=result.model_dump(),
    )
    return result


def _column_key(row: dict) -> tuple[str, ...]:
    return tuple(sorted(row))


def staff_emails(*, session: Session, school_id: int, external_ids: list[str]) -> dict[str, int]:
    """Email → person id of the active staff among these people (for linking accounts)."""
    found: dict[str, int] = {}
    for start in range(0, len(external_ids), _CHUNK):
        chunk = external_ids[start : start + _CHUNK]
        rows = session.exec(
            select(Person.email, Person.id).where(
                Person.school_id == school_id,
                Person.external_id.in_(chunk),
                Person.kind == PersonKind.staff,
                Person.is_active.is_(True),
                Person.email.is_not(None),
            )
        ).all()
        found.update({email: person_id for email, person_id in rows})
    return found


def search_people(*, session: Session, school_id: int, text: str, limit: int = 20) -> list[Person]:
    """Active people whose name, MIS id or registration group contains `text`."""
    pattern = f"%{text.strip().lower()}%"
    name = func.lower(Person.forename + " " + Person.surname)
    preferred = func.lower(func.coalesce(Person.preferred_forename, "") + " " + Person.surname)
    return list(
        session.exec(
            select(Person)
            .where(
                Person.school_id == school_id,
                Person.is_active.is_(True),
                or_(
                    name.like(pattern),
                    preferred.like(pattern),
                    func.lower(Person.external_id).like(pattern),
                    func.lower(func.coalesce(Person.registration_group, "")).like(pattern),
                ),
            )
            .order_by(Person.surname, Person.forename, Person.id)
            .limit(limit)
        ).all()
    )
