"""Queries over the roster."""

from datetime import datetime

from sqlmodel import Session, func, or_, select

from app.audit.service import Actor, record_event
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.people.models import PeopleSync, PeopleSyncResult, Person

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


def _existing_by_external_id(session: Session, school_id: int, ids: list[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.exec(
            select(Person).where(Person.school_id == school_id, Person.external_id.in_(chunk))
        ).all()
        found.update({person.external_id: person for person in rows})
    return found


def sync_people(
    *, session: Session, school_id: int, data: PeopleSync, actor: Actor
) -> PeopleSyncResult:
    """Upsert the roster by `external_id`; optionally deactivate whoever is missing."""
    ids = [person.external_id for person in data.people]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicates:
        raise InvalidInput(
            "Each external_id may appear once in a sync.",
            errors=[
                {"field": "people.external_id", "message": f"repeated: {i}"}
                for i in duplicates[:20]
            ],
        )
    existing = _existing_by_external_id(session, school_id, ids)
    now = utcnow()
    created = updated = unchanged = deactivated = 0
    for incoming in data.people:
        values = incoming.model_dump()
        person = existing.get(incoming.external_id)
        if person is None:
            session.add(Person(school_id=school_id, created_at=now, updated_at=now, **values))
            created += 1
        elif any(getattr(person, name) != values[name] for name in _COMPARED):
            for name in _COMPARED:
                setattr(person, name, values[name])
            person.updated_at = now
            session.add(person)
            updated += 1
        else:
            unchanged += 1
    if data.deactivate_missing:
        keep = set(ids)
        for person in session.exec(
            select(Person).where(Person.school_id == school_id, Person.is_active.is_(True))
        ).all():
            if person.external_id not in keep:
                person.is_active = False
                person.updated_at = now
                session.add(person)
                deactivated += 1
    result = PeopleSyncResult(
        created=created, updated=updated, unchanged=unchanged, deactivated=deactivated
    )
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="people.synced",
        school_id=school_id,
        entity_type="person",
        detail=result.model_dump(),
    )
    return result


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
