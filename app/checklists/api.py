"""The checklists API for the school's MIS."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.checklists import service
from app.checklists.models import (
    ChecklistItemPublic,
    ChecklistRun,
    ChecklistRunCreate,
    ChecklistRunPublic,
    ChecklistRunsCreated,
    ChecklistTemplatePublic,
    ItemCompletionPublic,
    ItemCompletionUpdate,
    RunStatus,
)
from app.core.conditional import IfNoneMatch, json_with_etag
from app.core.db import DbSession
from app.core.pagination import (
    Cursor,
    Limit,
    Page,
    UpdatedSince,
    changed_after,
    next_change_cursor,
    require_timezone,
)
from app.core.types import RowId, utcnow

router = APIRouter(tags=["checklists"])

ReadToken = Annotated[ApiToken, Depends(require_scope(Scope.checklists_read))]
WriteToken = Annotated[ApiToken, Depends(require_scope(Scope.checklists_write))]


def _template_public(entry: service.TemplateWithItems) -> ChecklistTemplatePublic:
    return ChecklistTemplatePublic.model_validate(
        {
            **entry.template.model_dump(),
            "items": [ChecklistItemPublic.model_validate(i.model_dump()) for i in entry.items],
        }
    )


@router.get("/checklists", operation_id="listChecklists", summary="List checklist templates")
def list_checklists(session: DbSession, token: ReadToken) -> Page[ChecklistTemplatePublic]:
    entries = service.list_templates(session=session, school_id=token.school_id)
    return Page[ChecklistTemplatePublic](data=[_template_public(e) for e in entries])


def _run_public(view: service.RunView, now: datetime) -> ChecklistRunPublic:
    return ChecklistRunPublic.model_validate(
        {
            **view.run.model_dump(),
            "status": view.run.status(now),
            "items_done": view.done,
            "items_total": view.total,
            "completions": [
                ItemCompletionPublic.model_validate(c.model_dump())
                for c in view.completions.values()
            ],
        }
    )


@router.get(
    "/checklist-runs",
    operation_id="listChecklistRuns",
    summary="List checklist runs, oldest change first",
)
def list_runs(
    session: DbSession,
    token: ReadToken,
    limit: Limit = 100,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    assignee_id: Annotated[RowId | None, Query()] = None,
    template_id: Annotated[RowId | None, Query()] = None,
    status: Annotated[RunStatus | None, Query()] = None,
) -> Page[ChecklistRunPublic]:
    after = changed_after(cursor)
    now = utcnow()
    views = service.list_runs(
        session=session,
        school_id=token.school_id,
        limit=limit,
        after=after,
        updated_since=require_timezone(updated_since),
        assignee_id=assignee_id,
        template_id=template_id,
        status=status,
        now=now,
    )
    return Page[ChecklistRunPublic](
        data=[_run_public(v, now) for v in views[:limit]],
        next_cursor=next_change_cursor([v.run for v in views], limit),
    )


@router.post(
    "/checklist-runs",
    operation_id="createChecklistRuns",
    summary="Give a checklist to people (by role and/or user id)",
    status_code=201,
    response_model=ChecklistRunsCreated,
    responses={404: {"description": "There is no such checklist in this school"}},
)
def create_runs(
    request: Request, session: DbSession, token: WriteToken, body: ChecklistRunCreate
) -> JSONResponse:
    result = service.assign(
        session=session,
        school_id=token.school_id,
        template_id=body.template_id,
        user_ids=body.user_ids,
        roles=body.roles,
        due_at=require_timezone(body.due_at),
        actor=token_actor(request),
    )
    session.commit()
    now = utcnow()
    views = [service.run_view(session=session, run=run) for run in result.created]
    payload = {
        "data": [_run_public(v, now).model_dump(mode="json") for v in views],
        "skipped": result.skipped,
    }
    return JSONResponse(payload, status_code=201)


@router.get(
    "/checklist-runs/{run_id}",
    operation_id="getChecklistRun",
    summary="One checklist run with its completed items",
    response_model=ChecklistRunPublic,
)
def get_run(
    session: DbSession, token: ReadToken, run_id: RowId, if_none_match: IfNoneMatch = None
) -> Response:
    run = service.get_run(session=session, school_id=token.school_id, run_id=run_id)
    view = service.run_view(session=session, run=run)
    return json_with_etag(_run_public(view, utcnow()), if_none_match=if_none_match)


@router.put(
    "/checklist-runs/{run_id}/items/{item_id}",
    operation_id="setChecklistItem",
    summary="Mark an item of a run as done (or not), with a note",
    responses={409: {"description": "The run is finished and can no longer be changed"}},
)
def set_item(
    request: Request,
    session: DbSession,
    token: WriteToken,
    run_id: RowId,
    item_id: RowId,
    body: ItemCompletionUpdate,
) -> ChecklistRunPublic:
    run: ChecklistRun = service.get_run(session=session, school_id=token.school_id, run_id=run_id)
    view = service.set_item(
        session=session,
        run=run,
        item_id=item_id,
        done=body.done,
        note=body.note,
        user=None,
        actor=token_actor(request),
    )
    session.commit()
    return _run_public(view, utcnow())
