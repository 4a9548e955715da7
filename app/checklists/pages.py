"""Checklist pages: a person's own runs, ticking items, and oversight for DSL and SLT."""

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import Form, Query, Request
from pydantic import ValidationError

from app.auth import service as auth_service
from app.auth.dependencies import CurrentUser, PageActor
from app.auth.models import Role
from app.checklists import service
from app.checklists.dependencies import LEADERS, ChecklistLead
from app.checklists.models import (
    ChecklistPurpose,
    ChecklistTemplateCreate,
    Recurrence,
    RunStatus,
)
from app.core.db import DbSession
from app.core.downloads import csv_download
from app.core.errors import DomainError, InvalidInput, PermissionDenied
from app.core.routing import page_router, see_other
from app.core.templating import is_htmx, render
from app.core.types import utcnow

router = page_router(prefix="/checklists")

NOTICES = {
    "finished": "Well done: this checklist is finished.",
    "assigned": "The checklist was given out.",
    "reminded": "Reminders were sent. Each person sees theirs on their home page.",
}


def _due_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(17, 0), tzinfo=UTC)
    except ValueError:
        raise InvalidInput("The due date must be a date like 2027-07-31.") from None


# A person's own checklists -------------------------------------------------------------------


@router.get("")
def my_checklists(request: Request, session: DbSession, user: CurrentUser, notice: str = ""):
    runs = service.runs_of_user(session=session, user=user)
    context = {
        "runs": runs,
        "now": utcnow(),
        "is_leader": user.role in LEADERS,
        "notice": NOTICES.get(notice, ""),
    }
    return render(request, "checklists/mine.html", context)


def _run_page(request, session, run, user, *, status_code=200, block=None, **context):
    view = service.run_view(session=session, run=run)
    editable = run.completed_at is None and run.assignee_id == user.id
    context = {"view": view, "run": run, "editable": editable, "now": utcnow(), **context}
    return render(request, "checklists/run.html", context, block=block, status_code=status_code)


def _visible_run(session, user, run_id):
    run = service.get_run(session=session, school_id=user.school_id, run_id=run_id)
    if run.assignee_id != user.id and user.role not in LEADERS:
        raise PermissionDenied("This checklist belongs to someone else.")
    if run.incident_id is not None:
        raise PermissionDenied("Incident playbooks are worked on the incident's page.")
    return run


@router.get("/runs/{run_id}")
def run_page(
    request: Request, session: DbSession, user: CurrentUser, run_id: int, notice: str = ""
):
    run = _visible_run(session, user, run_id)
    return _run_page(request, session, run, user, notice=NOTICES.get(notice, ""))


@router.post("/runs/{run_id}/items/{item_id}")
def tick_item(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    actor: PageActor,
    run_id: int,
    item_id: int,
    done: Annotated[bool, Form()] = True,
    note: Annotated[str, Form(max_length=2000)] = "",
):
    run = service.get_run(session=session, school_id=user.school_id, run_id=run_id)
    view = service.set_item(
        session=session, run=run, item_id=item_id, done=done, note=note, user=user, actor=actor
    )
    session.commit()
    if not is_htmx(request):
        return see_other(request, f"/checklists/runs/{run.id}#item-{item_id}")
    item = next(i for i in view.items if i.id == item_id)
    context = {"item": item, "completion": view.completions.get(item_id)}
    return _run_page(request, session, run, user, block=["item", "progress"], **context)


@router.post("/runs/{run_id}/finish")
def finish(request: Request, session: DbSession, user: CurrentUser, actor: PageActor, run_id: int):
    run = service.get_run(session=session, school_id=user.school_id, run_id=run_id)
    try:
        service.finish_run(session=session, run=run, user=user, actor=actor)
    except InvalidInput as exc:
        return _run_page(
            request, session, run, user, status_code=exc.status_code, finish_error=exc.detail
        )
    session.commit()
    return see_other(request, f"/checklists/runs/{run.id}?notice=finished")


# Oversight for DSL and SLT ---------------------------------------------------------------------


def _oversight_filter(
    template_id: int | None, role: str, status: str, search: str
) -> service.OversightFilter:
    try:
        return service.OversightFilter(
            template_id=template_id,
            role=Role(role) if role else None,
            status=RunStatus(status) if status else None,
            search=search.strip(),
        )
    except ValueError:
        raise InvalidInput("Unknown role or status in the filter.") from None


TemplateFilter = Annotated[int | None, Query()]
TextFilter = Annotated[str, Query(max_length=100)]


@router.get("/oversight")
def oversight_page(
    request: Request,
    session: DbSession,
    user: ChecklistLead,
    template_id: TemplateFilter = None,
    role: TextFilter = "",
    status: TextFilter = "",
    search: TextFilter = "",
    notice: str = "",
):
    filters = _oversight_filter(template_id, role, status, search)
    now = utcnow()
    progress, runs = service.oversight(
        session=session, school_id=user.school_id, filters=filters, now=now
    )
    context = {
        "progress": progress,
        "runs": runs,
        "filters": filters,
        "templates": service.list_templates(
            session=session,
            school_id=user.school_id,
            purposes={ChecklistPurpose.staff, ChecklistPurpose.leadership},
        ),
        "roles": list(Role),
        "statuses": list(RunStatus),
        "now": now,
        "query": request.url.query,
        "notice": NOTICES.get(notice, ""),
    }
    return render(request, "checklists/oversight.html", context, block="results")


@router.get("/oversight.csv")
def oversight_csv(
    session: DbSession,
    user: ChecklistLead,
    template_id: TemplateFilter = None,
    role: TextFilter = "",
    status: TextFilter = "",
    search: TextFilter = "",
):
    filters = _oversight_filter(template_id, role, status, search)
    now = utcnow()
    _, runs = service.oversight(session=session, school_id=user.school_id, filters=filters, now=now)
    header = ["person", "role", "checklist", "status", "items done", "items", "due", "completed"]
    rows = (
        [
            summary.assignee_name,
            summary.assignee_role.value if summary.assignee_role else "",
            summary.template_title,
            summary.run.status(now).value,
            summary.done,
            summary.total,
            summary.run.due_at.date().isoformat() if summary.run.due_at else "",
            summary.run.completed_at.date().isoformat() if summary.run.completed_at else "",
        ]
        for summary in runs
    )
    return csv_download(header, rows, filename=f"checklists-{now.date().isoformat()}.csv")


@router.post("/oversight/remind")
def remind(
    request: Request,
    session: DbSession,
    user: ChecklistLead,
    actor: PageActor,
    run_ids: Annotated[list[int] | None, Form()] = None,
):
    service.remind(session=session, school_id=user.school_id, run_ids=run_ids or [], actor=actor)
    session.commit()
    return see_other(request, "/checklists/oversight?notice=reminded")


# Giving checklists out, and writing new ones -------------------------------------------------


def _assign_page(request, session, user, *, status_code=200, **context):
    templates = service.list_templates(
        session=session,
        school_id=user.school_id,
        purposes={ChecklistPurpose.staff, ChecklistPurpose.leadership},
    )
    users = [
        u for u in auth_service.list_users(session=session, school_id=user.school_id) if u.is_active
    ]
    context = {"templates": templates, "users": users, "roles": list(Role), **context}
    return render(request, "checklists/assign.html", context, block="form", status_code=status_code)


@router.get("/assign")
def assign_page(request: Request, session: DbSession, user: ChecklistLead, template_id: int = 0):
    return _assign_page(request, session, user, form={"template_id": template_id})


@router.post("/assign")
def assign(
    request: Request,
    session: DbSession,
    user: ChecklistLead,
    actor: PageActor,
    template_id: Annotated[int, Form()],
    roles: Annotated[list[str] | None, Form()] = None,
    user_ids: Annotated[list[int] | None, Form()] = None,
    due_on: Annotated[str, Form(max_length=10)] = "",
):
    form = {
        "template_id": template_id,
        "roles": roles or [],
        "user_ids": user_ids or [],
        "due_on": due_on,
    }
    try:
        try:
            chosen_roles = [Role(r) for r in roles or []]
        except ValueError:
            raise InvalidInput("Unknown role.") from None
        result = service.assign(
            session=session,
            school_id=user.school_id,
            template_id=template_id,
            user_ids=user_ids or [],
            roles=chosen_roles,
            due_at=_due_date(due_on),
            actor=actor,
        )
    except DomainError as exc:
        session.rollback()
        return _assign_page(
            request, session, user, status_code=exc.status_code, error=exc.detail, form=form
        )
    session.commit()
    return _assign_page(
        request,
        session,
        user,
        done=f"Given to {len(result.created)} "
        f"{'person' if len(result.created) == 1 else 'people'}"
        + (f"; {result.skipped} already had it unfinished." if result.skipped else "."),
        form={"template_id": template_id},
    )


@router.get("/templates/new")
def new_template_page(request: Request, user: ChecklistLead):
    return render(request, "checklists/new_template.html", {"form": {}}, block="form")


@router.post("/templates/new")
def create_template(
    request: Request,
    session: DbSession,
    user: ChecklistLead,
    actor: PageActor,
    title: Annotated[str, Form(max_length=160)],
    items: Annotated[str, Form(max_length=30000)],
    description: Annotated[str, Form(max_length=2000)] = "",
    purpose: Annotated[str, Form(max_length=20)] = "staff",
    recurrence: Annotated[str, Form(max_length=20)] = "none",
):
    form = {
        "title": title,
        "description": description,
        "items": items,
        "purpose": purpose,
        "recurrence": recurrence,
    }
    try:
        try:
            data = ChecklistTemplateCreate(
                title=title,
                description=description,
                purpose=ChecklistPurpose(purpose),
                recurrence=Recurrence(recurrence),
                items=items.splitlines(),
            )
        except (ValidationError, ValueError):
            raise InvalidInput(
                "Give the checklist a title, a purpose and a repeat choice."
            ) from None
        if data.purpose == ChecklistPurpose.incident:
            raise InvalidInput("Incident playbooks are not written here.")
        template = service.create_template(
            session=session, school_id=user.school_id, data=data, actor=actor
        )
    except DomainError as exc:
        session.rollback()
        return render(
            request,
            "checklists/new_template.html",
            {"form": form, "error": exc.detail},
            block="form",
            status_code=exc.status_code,
        )
    session.commit()
    return see_other(request, f"/checklists/assign?template_id={template.id}")
