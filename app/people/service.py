"""Queries over the roster."""

from datetime import datetime

from sqlmodel import Session, or_, select

from app.people.models import Person


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
