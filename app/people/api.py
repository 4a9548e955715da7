"""The roster API for the school's MIS."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.core.db import DbSession
from app.core.errors import InvalidInput
from app.core.pagination import (
    Cursor,
    Limit,
    Page,
    UpdatedSince,
    decode_cursor,
    encode_cursor,
    require_timezone,
)
from app.people import service
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
    after = None
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(at), int(last_id))
        except (TypeError, ValueError):
            raise InvalidInput("The cursor is not one Haven gave out.") from None
    rows = service.list_people(
        session=session,
        school_id=token.school_id,
        limit=limit,
        after=after,
        updated_since=require_timezone(updated_since),
    )
    next_cursor = (
        encode_cursor(rows[limit - 1].updated_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return Page[PersonPublic](
        data=[PersonPublic.model_validate(p) for p in rows[:limit]], next_cursor=next_cursor
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
    result = service.sync_people(
        session=session, school_id=token.school_id, data=body, actor=token_actor(request)
    )
    session.commit()
    return result
