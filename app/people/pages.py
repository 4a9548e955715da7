"""The roster pages for administrators: who is on it, and importing it from a CSV file.

A CSV import is checked in full and previewed before anything changes: the upload either shows
every problem with its line number (and stores nothing), or stores the checked rows and shows
exactly what applying them would do. Applying plans again against the roster as it is then.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import File, Form, Query, Request, UploadFile

from app.auth import service as auth_service
from app.auth.dependencies import AdminUser, PageActor
from app.core.db import DbSession
from app.core.downloads import csv_download
from app.core.errors import DomainError, InvalidInput
from app.core.pagination import decode_cursor, encode_cursor
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.people import csv_import, flows, service
from app.people.models import PeopleSync, Person, PersonIn, PersonKind

router = page_router(prefix="/admin/people")

PREVIEW_LIST_LIMIT = 1000

KIND_LABELS = {
    PersonKind.pupil: "Pupil",
    PersonKind.staff: "Staff",
    PersonKind.parent_carer: "Parent or carer",
}
FIELD_LABELS = {
    "external_id": "ID",
    "kind": "Type",
    "forename": "Legal forename",
    "surname": "Legal surname",
    "preferred_forename": "Preferred forename",
    "preferred_surname": "Preferred surname",
    "year_group": "Year group",
    "registration_group": "Registration group",
    "mis_id": "MIS id",
    "upn": "UPN",
    "email": "Email",
    "is_active": "On roll",
}
NOTICES = {
    "discarded": "The import was discarded and its rows deleted. Nothing on the roster changed.",
}


# The roster ----------------------------------------------------------------------------------


def _roster_filter(q: str, kind: str, active: str) -> service.RosterFilter:
    try:
        return service.RosterFilter(
            search=q.strip(),
            kind=PersonKind(kind) if kind else None,
            active={"yes": True, "no": False, "all": None}[active or "yes"],
        )
    except (KeyError, ValueError):
        raise InvalidInput("One of the filters has a value Haven does not know.") from None


def _roster_position(after: str) -> tuple[str, str, int] | None:
    if not after:
        return None
    surname, forename, last_id = decode_cursor(after, 3)
    if not (isinstance(surname, str) and isinstance(forename, str) and isinstance(last_id, int)):
        raise InvalidInput("The page link is not one Haven gave out.")
    return surname, forename, last_id


Filter = Annotated[str, Query(max_length=40)]


@router.get("")
def roster_page(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Filter = "",
    active: Filter = "yes",
    after: Annotated[str, Query(max_length=400)] = "",
    notice: Filter = "",
):
    filters = _roster_filter(q, kind, active)
    size = service.ROSTER_PAGE_SIZE
    rows = service.roster(
        session=session,
        school_id=admin.school_id,
        filters=filters,
        limit=size,
        after=_roster_position(after),
    )
    people = rows[:size]
    next_after = (
        encode_cursor(people[-1].surname, people[-1].forename, people[-1].id)
        if len(rows) > size
        else None
    )
    counts = service.roster_counts(session=session, school_id=admin.school_id)
    context = {
        "people": people,
        "accounts": auth_service.accounts_of_people(
            session=session,
            school_id=admin.school_id,
            person_ids=[p.id for p in people if p.kind == PersonKind.staff],
        ),
        "counts": counts,
        "total": sum(c["active"] + c["inactive"] for c in counts.values()),
        "last_sync": service.last_sync(session=session, school_id=admin.school_id),
        "filters": filters,
        "active": active or "yes",
        "kinds": KIND_LABELS,
        "next_after": next_after,
        "paged": bool(after),
        "query_without_after": request.url.remove_query_params("after").query,
        "notice": NOTICES.get(notice, ""),
    }
    return render(request, "people/roster.html", context, block="results")


# Importing a CSV file ------------------------------------------------------------------------


@dataclass
class Change:
    person: Person  # or a row with a Person's attributes
    fields: list[tuple[str, object, object]]  # label, from, to


@dataclass
class Preview:
    """What applying an import would do, for people to read before they apply it."""

    to_create: list[PersonIn]
    to_update: list[Change]
    unchanged: int
    leavers: list[Person]
    accounts_to_deactivate: list
    deactivate_missing: bool

    @property
    def changes_anything(self) -> bool:
        return bool(self.to_create or self.to_update or self.leavers)


def _preview(session, school_id: int, data: PeopleSync) -> Preview:
    plan = service.plan_sync(session=session, school_id=school_id, data=data)
    leavers = plan.leavers
    accounts = auth_service.accounts_of_people(
        session=session, school_id=school_id, person_ids=[p.id for p in leavers]
    )
    changes = [
        Change(
            person=person,
            fields=[
                (FIELD_LABELS.get(name, name), getattr(person, name), value)
                for name, value in values.items()
            ],
        )
        for person, values in plan.to_update
    ]
    return Preview(
        to_create=plan.to_create,
        to_update=sorted(changes, key=lambda c: (c.person.surname, c.person.forename)),
        unchanged=plan.unchanged,
        leavers=sorted(leavers, key=lambda p: (p.surname, p.forename)),
        accounts_to_deactivate=sorted(
            (user for user in accounts.values() if user.is_active),
            key=lambda user: user.display_name,
        ),
        deactivate_missing=data.deactivate_missing,
    )


def _import_page(request: Request, session, admin, *, status_code: int = 200, **context):
    context = {
        "columns": csv_import.COLUMNS,
        "kinds": KIND_LABELS,
        "max_rows": csv_import.MAX_ROWS,
        "max_mb": csv_import.MAX_CSV_BYTES // (1024 * 1024),
        "limit": PREVIEW_LIST_LIMIT,
        "imports": service.list_imports(session=session, school_id=admin.school_id),
        **context,
    }
    return render(request, "people/import.html", context, block="main", status_code=status_code)


@router.get("/import")
def import_page(request: Request, session: DbSession, admin: AdminUser, notice: Filter = ""):
    return _import_page(request, session, admin, notice=NOTICES.get(notice, ""))


@router.get("/import/template.csv")
def import_template(admin: AdminUser):
    return csv_download(csv_import.template_header(), [], filename="haven-roster-template.csv")


def _read_upload(file: UploadFile | None) -> tuple[str, bytes]:
    if file is None or not file.filename:
        raise InvalidInput("Choose the CSV file to import.")
    # One byte more than the limit is enough to tell that a file is too large.
    return file.filename, file.file.read(csv_import.MAX_CSV_BYTES + 1)


@router.post("/import")
def upload_import(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    file: Annotated[UploadFile | None, File()] = None,
    deactivate_missing: Annotated[bool, Form()] = False,
):
    form = {"deactivate_missing": deactivate_missing}
    filename = ""
    try:
        filename, data = _read_upload(file)
        parsed = csv_import.parse_roster_csv(data)
        sync = PeopleSync(people=parsed.people, deactivate_missing=deactivate_missing)
        preview = _preview(session, admin.school_id, sync)
        roster_import = service.stage_import(
            session=session,
            school_id=admin.school_id,
            user_id=admin.id,
            filename=filename,
            people=parsed.people,
            deactivate_missing=deactivate_missing,
            actor=actor,
        )
    except csv_import.RosterCsvInvalid as exc:
        session.rollback()
        return _import_page(
            request,
            session,
            admin,
            status_code=exc.status_code,
            invalid=exc,
            filename=filename,
            form=form,
        )
    except DomainError as exc:
        session.rollback()
        return _import_page(
            request, session, admin, status_code=exc.status_code, error=exc.detail, form=form
        )
    session.commit()
    return _import_page(
        request,
        session,
        admin,
        roster_import=roster_import,
        preview=preview,
        ignored_columns=parsed.ignored_columns,
    )


@router.post("/import/{import_id}/apply")
def apply_import(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, import_id: int
):
    try:
        roster_import = service.get_import(
            session=session, school_id=admin.school_id, import_id=import_id
        )
        data = service.begin_apply(session=session, roster_import=roster_import)
        result = flows.sync_roster(
            session=session, school_id=admin.school_id, data=data, actor=actor
        )
        service.mark_import_applied(
            session=session, roster_import=roster_import, result=result, actor=actor
        )
    except DomainError as exc:
        session.rollback()
        return _import_page(request, session, admin, status_code=exc.status_code, error=exc.detail)
    session.commit()
    return _import_page(request, session, admin, roster_import=roster_import, result=result)


@router.post("/import/{import_id}/discard")
def discard_import(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, import_id: int
):
    try:
        roster_import = service.get_import(
            session=session, school_id=admin.school_id, import_id=import_id
        )
        service.discard_import(session=session, roster_import=roster_import, actor=actor)
    except DomainError as exc:
        session.rollback()
        return _import_page(request, session, admin, status_code=exc.status_code, error=exc.detail)
    session.commit()
    return see_other(request, "/admin/people/import?notice=discarded")
