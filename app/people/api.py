"""The roster API for the school's MIS."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
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
from app.core.types import RowId
from app.people import flows, service
from app.people.models import PeopleSync, PeopleSyncResult, PersonPublic

router = APIRouter(prefix="/people", tags=["people"])


@router.get("", operation_id="listPeople", summary="List the roster, oldest change first")
def list_people(
    session: DbSession,
    token: Annotated[ApiToken, Depends(require_scope(Scope.people_read))],
    limit: Limit = 100,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
) -> Page[PersonPublic]:
    after = changed_after(cursor)
    rows = service.list_people(
        session=session,
        school_id=token.school_id,
        limit=limit,
        after=after,
        updated_since=require_timezone(updated_since),
    )
    return Page[PersonPublic](
        data=[PersonPublic.model_validate(p) for p in rows[:limit]],
        next_cursor=next_change_cursor(rows, limit),
    )


@router.put(
    "",
    operation_id="syncPeople",
    summary="Bulk upsert the roster by external_id",
    description="Up to 5,000 people a request. With `deactivate_missing`, people of the school "
    "not in the request are marked inactive (send the whole roster then).",
)
def sync_people(
    request: Request,
    session: DbSession,
    token: Annotated[ApiToken, Depends(require_scope(Scope.people_write))],
    body: PeopleSync,
) -> PeopleSyncResult:
    result = flows.sync_roster(
        session=session, school_id=token.school_id, data=body, actor=token_actor(request)
    )
    session.commit()
    return result


@router.get(
    "/{person_id}",
    operation_id="getPerson",
    summary="One person of the roster",
    response_model=PersonPublic,
)
def get_person(
    session: DbSession,
    token: Annotated[ApiToken, Depends(require_scope(Scope.people_read))],
    person_id: RowId,
    if_none_match: IfNoneMatch = None,
) -> Response:
    person = service.get_person(session=session, school_id=token.school_id, person_id=person_id)
    return json_with_etag(PersonPublic.model_validate(person), if_none_match=if_none_match)
