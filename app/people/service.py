"""Queries over the roster."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy import Row, delete, insert, update
from sqlmodel import Session, func, or_, select

from app.audit.models import AuditEvent
from app.audit.service import Actor, record_event
from app.core.db import get_for_school
from app.core.errors import Conflict, InvalidInput
from app.core.types import utcnow
from app.people.models import (
    MAX_PEOPLE_PER_SYNC,
    PeopleSync,
    PeopleSyncResult,
    Person,
    PersonIn,
    PersonKind,
    RosterImport,
    RosterImportStatus,
)

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


# Plain rows rather than ORM objects: a sync compares thousands of people, and rows are several
# times cheaper to load. They have the same attributes as a Person.
_PERSON_ROWS = select(*Person.__table__.columns)


def _existing_by_external_id(session: Session, school_id: int, ids: list[str]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(
            _PERSON_ROWS.where(Person.school_id == school_id, Person.external_id.in_(chunk))
        ).all()
        found.update({row.external_id: row for row in rows})
    return found


@dataclass
class SyncPlan:
    """What a roster sync would change, worked out before anything is written. Stored people
    are rows with a Person's attributes."""

    to_create: list[PersonIn] = field(default_factory=list)
    to_update: list[tuple[Row, dict]] = field(default_factory=list)  # person, changed values
    unchanged: int = 0
    to_deactivate: list[Row] = field(default_factory=list)

    @property
    def leavers(self) -> list[Row]:
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
        active = session.execute(
            _PERSON_ROWS.where(Person.school_id == school_id, Person.is_active.is_(True))
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


def staff_person_ids_by_email(
    *, session: Session, school_id: int, emails: list[str]
) -> dict[str, int]:
    """Email → person id of the active staff with these emails (for linking accounts)."""
    found: dict[str, int] = {}
    for start in range(0, len(emails), _CHUNK):
        rows = session.exec(
            select(Person.email, Person.id).where(
                Person.school_id == school_id,
                Person.email.in_(emails[start : start + _CHUNK]),
                Person.kind == PersonKind.staff,
                Person.is_active.is_(True),
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


# The roster page ------------------------------------------------------------------------------

ROSTER_PAGE_SIZE = 50


@dataclass(frozen=True)
class RosterFilter:
    search: str = ""
    kind: PersonKind | None = None
    active: bool | None = True  # None: everyone, on roll or not


def _like(text: str) -> str:
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def roster(
    *,
    session: Session,
    school_id: int,
    filters: RosterFilter,
    limit: int = ROSTER_PAGE_SIZE,
    after: tuple[str, str, int] | None = None,
) -> list[Person]:
    """People by surname, forename and id; one more than `limit`, to tell if a page follows."""
    query = select(Person).where(Person.school_id == school_id)
    if filters.kind is not None:
        query = query.where(Person.kind == filters.kind)
    if filters.active is not None:
        query = query.where(Person.is_active.is_(filters.active))
    if filters.search.strip():
        pattern = _like(filters.search)
        columns = [
            Person.forename + " " + Person.surname,
            func.coalesce(Person.preferred_forename, Person.forename)
            + " "
            + func.coalesce(Person.preferred_surname, Person.surname),
            Person.surname,
            func.coalesce(Person.mis_id, ""),
            func.coalesce(Person.registration_group, ""),
            Person.external_id,
        ]
        query = query.where(or_(*(func.lower(c).like(pattern, escape="\\") for c in columns)))
    if after is not None:
        surname, forename, last_id = after
        query = query.where(
            or_(
                Person.surname > surname,
                (Person.surname == surname) & (Person.forename > forename),
                (Person.surname == surname) & (Person.forename == forename) & (Person.id > last_id),
            )
        )
    query = query.order_by(Person.surname, Person.forename, Person.id).limit(limit + 1)
    return list(session.exec(query).all())


def roster_counts(*, session: Session, school_id: int) -> dict[PersonKind, dict[str, int]]:
    """How many people of each kind are on roll and have left."""
    counts = {kind: {"active": 0, "inactive": 0} for kind in PersonKind}
    rows = session.exec(
        select(Person.kind, Person.is_active, func.count())
        .where(Person.school_id == school_id)
        .group_by(Person.kind, Person.is_active)
    ).all()
    for kind, is_active, n in rows:
        counts[PersonKind(kind)]["active" if is_active else "inactive"] = n
    return counts


@dataclass(frozen=True)
class LastSync:
    at: datetime
    by_api: bool  # through the API (the MIS), or a CSV import by a person


def last_sync(*, session: Session, school_id: int) -> LastSync | None:
    """When the roster was last synced or imported, from the audit trail."""
    event = session.exec(
        select(AuditEvent)
        .where(AuditEvent.school_id == school_id, AuditEvent.action == "people.synced")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    return LastSync(at=event.occurred_at, by_api=event.actor_token_id is not None)


# CSV imports: checked rows wait between the preview and "apply" ------------------------------

IMPORT_KEPT_FOR = timedelta(hours=24)


def _safe_filename(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    return name.strip()[:200]


def purge_stale_imports(
    *, session: Session, now: datetime | None = None, school_id: int | None = None
) -> int:
    """Delete previews never applied within a day: their rows hold children's details."""
    cutoff = (now or utcnow()) - IMPORT_KEPT_FOR
    query = delete(RosterImport).where(
        RosterImport.status == RosterImportStatus.previewed, RosterImport.created_at < cutoff
    )
    if school_id is not None:
        query = query.where(RosterImport.school_id == school_id)
    result = session.execute(query.execution_options(synchronize_session=False))
    return result.rowcount or 0


def stage_import(
    *,
    session: Session,
    school_id: int,
    user_id: int,
    filename: str,
    people: list[PersonIn],
    deactivate_missing: bool,
    actor: Actor,
) -> RosterImport:
    """Keep checked rows until they are applied or discarded; audited with counts only."""
    if len(people) > MAX_PEOPLE_PER_SYNC:
        raise InvalidInput(f"An import holds up to {MAX_PEOPLE_PER_SYNC:,} people.")
    refuse_repeated_ids(people)
    purge_stale_imports(session=session)
    roster_import = RosterImport(
        school_id=school_id,
        created_by_id=user_id,
        filename=_safe_filename(filename),
        row_count=len(people),
        deactivate_missing=deactivate_missing,
        people=[person.model_dump(mode="json") for person in people],
    )
    session.add(roster_import)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="roster_import.previewed",
        school_id=school_id,
        entity_type="roster_import",
        entity_id=roster_import.id,
        detail={"rows": len(people), "deactivate_missing": deactivate_missing},
    )
    return roster_import


def get_import(*, session: Session, school_id: int, import_id: int) -> RosterImport:
    return get_for_school(session, RosterImport, import_id, school_id, "roster import")


def list_imports(*, session: Session, school_id: int, limit: int = 10) -> list[RosterImport]:
    return list(
        session.exec(
            select(RosterImport)
            .where(RosterImport.school_id == school_id)
            .order_by(RosterImport.created_at.desc(), RosterImport.id.desc())
            .limit(limit)
        ).all()
    )


def import_data(roster_import: RosterImport) -> PeopleSync:
    """The people a staged import holds, checked again as they were at upload."""
    return PeopleSync(
        people=[PersonIn.model_validate(row) for row in roster_import.people],
        deactivate_missing=roster_import.deactivate_missing,
    )


def _refuse_closed(roster_import: RosterImport, now: datetime) -> None:
    if roster_import.status == RosterImportStatus.applied:
        raise Conflict(
            "This import has already been applied, so nothing more was changed. "
            "To import the file again, upload it again."
        )
    if roster_import.status == RosterImportStatus.discarded:
        raise Conflict("This import was discarded, so it cannot be applied. Upload the file again.")
    if roster_import.created_at < now - IMPORT_KEPT_FOR:
        raise Conflict("This preview is more than 24 hours old. Upload the file again.")


def _close(session: Session, roster_import: RosterImport, status: RosterImportStatus) -> None:
    """Move a previewed import on, once: a second apply or discard, even at the same moment, is
    refused (the UPDATE only matches while the import is still a preview). Its rows are cleared."""
    now = utcnow()
    _refuse_closed(roster_import, now)
    result = session.execute(
        update(RosterImport)
        .where(
            RosterImport.id == roster_import.id,
            RosterImport.status == RosterImportStatus.previewed,
        )
        .values(
            status=status,
            people=[],
            applied_at=now if status == RosterImportStatus.applied else None,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(roster_import)
    if result.rowcount != 1:
        _refuse_closed(roster_import, now)
        raise Conflict("This import has already been applied or discarded.")


def begin_apply(*, session: Session, roster_import: RosterImport) -> PeopleSync:
    """Claim a previewed import for applying and hand back its people; rows are cleared."""
    data = import_data(roster_import)
    _close(session, roster_import, RosterImportStatus.applied)
    return data


def mark_import_applied(
    *,
    session: Session,
    roster_import: RosterImport,
    result: PeopleSyncResult,
    actor: Actor,
) -> RosterImport:
    """Keep the counts of what the import changed (never its rows); audited."""
    roster_import.result = result.model_dump()
    session.add(roster_import)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="roster_import.applied",
        school_id=roster_import.school_id,
        entity_type="roster_import",
        entity_id=roster_import.id,
        detail={"rows": roster_import.row_count, **result.model_dump()},
    )
    return roster_import


def discard_import(*, session: Session, roster_import: RosterImport, actor: Actor) -> None:
    """Throw a preview away: its rows are cleared and it can no longer be applied."""
    _close(session, roster_import, RosterImportStatus.discarded)
    record_event(
        session=session,
        actor=actor,
        action="roster_import.discarded",
        school_id=roster_import.school_id,
        entity_type="roster_import",
        entity_id=roster_import.id,
        detail={"rows": roster_import.row_count},
    )
