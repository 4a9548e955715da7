"""The incidents API for the school's MIS (and its behaviour module)."""

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.core import idempotency
from app.core.conditional import IfMatch, IfNoneMatch, json_with_etag, require_current
from app.core.db import DbSession
from app.core.errors import InvalidInput
from app.core.pagination import (
    Cursor,
    Limit,
    Page,
    UpdatedSince,
    changed_after,
    next_change_cursor,
    require_timezone,
)
from app.core.types import RowId, Timestamp
from app.incidents import flows, service
from app.incidents.models import (
    Category,
    EvidencePublic,
    Incident,
    IncidentCreate,
    IncidentPublic,
    IncidentStatus,
    IncidentUpdate,
    InvolvedPersonPublic,
    Platform,
    Severity,
    TimelineEntryIn,
    TimelineEntryPublic,
)

router = APIRouter(prefix="/incidents", tags=["incidents"])

ReadToken = Annotated[ApiToken, Depends(require_scope(Scope.incidents_read))]
WriteToken = Annotated[ApiToken, Depends(require_scope(Scope.incidents_write))]


def incident_public(data: Mapping, links: list) -> IncidentPublic:
    """An incident's columns and the (person_id, label, role) of each person involved."""
    return IncidentPublic.model_validate(
        {
            **data,
            "reported_by": data["reported_by_id"],
            "assigned_to": data["assigned_to_id"],
            "people": [
                InvolvedPersonPublic(person_id=link.person_id, label=link.label, role=link.role)
                for link in links
            ],
        }
    )


def _public(session, incident: Incident) -> IncidentPublic:
    links = service.involvements_of(session=session, incident_ids=[incident.id])[incident.id]
    return incident_public(incident.model_dump(), links)


_INCIDENT_PAGE = TypeAdapter(Page[IncidentPublic])


@router.get("", operation_id="listIncidents", summary="List incidents, oldest change first")
def list_incidents(
    session: DbSession,
    token: ReadToken,
    limit: Limit = 100,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    status: Annotated[IncidentStatus | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    platform: Annotated[Platform | None, Query()] = None,
    category: Annotated[Category | None, Query()] = None,
    assigned_to: Annotated[RowId | None, Query()] = None,
    q: Annotated[str, Query(max_length=100, description="Text in the reference or title")] = "",
) -> Page[IncidentPublic]:
    filters = service.QueueFilter(
        status=status,
        severity=severity,
        platform=platform.value if platform else None,
        category=category.value if category else None,
        assigned_to=assigned_to,
        search=q,
    )
    rows = service.list_changed(
        session=session,
        school_id=token.school_id,
        filters=filters,
        limit=limit,
        after=changed_after(cursor),
        updated_since=require_timezone(updated_since),
    )
    links = service.involvements_of(session=session, incident_ids=[r.id for r in rows[:limit]])
    page = Page[IncidentPublic](
        data=[incident_public(r._mapping, links[r.id]) for r in rows[:limit]],
        next_cursor=next_change_cursor(rows, limit),
    )
    # Built and checked above: sent as it is, not validated and encoded a second time.
    return Response(_INCIDENT_PAGE.dump_json(page), media_type="application/json")


@router.post(
    "",
    operation_id="createIncident",
    summary="Report an incident",
    status_code=201,
    responses={201: {"model": IncidentPublic}},
)
def create_incident(
    request: Request,
    session: DbSession,
    token: WriteToken,
    body: IncidentCreate,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    replay = idempotency.replay(
        session=session, token_id=token.id, key=idempotency_key, body=body.model_dump(mode="json")
    )
    if replay is not None:
        return replay
    incident = flows.report_incident(
        session=session,
        school_id=token.school_id,
        data=body,
        reporter=None,
        actor=token_actor(request),
    )
    payload = _public(session, incident).model_dump(mode="json")
    idempotency.remember(
        session=session,
        token_id=token.id,
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        status=201,
        response=payload,
    )
    session.commit()
    return JSONResponse(payload, status_code=201)


@router.get(
    "/{incident_id}",
    operation_id="getIncident",
    summary="One incident",
    response_model=IncidentPublic,
)
def get_incident(
    request: Request,
    session: DbSession,
    token: ReadToken,
    incident_id: RowId,
    if_none_match: IfNoneMatch = None,
) -> Response:
    incident = service.get_incident(
        session=session, school_id=token.school_id, incident_id=incident_id
    )
    service.record_view(session=session, incident=incident, user=None, actor=token_actor(request))
    session.commit()
    return json_with_etag(_public(session, incident), if_none_match=if_none_match)


@router.patch(
    "/{incident_id}",
    operation_id="updateIncident",
    summary="Change an incident",
    description="Send the `ETag` of the version you read in `If-Match` so that a change made "
    "by someone else in the meantime is not overwritten (answered `412`).",
    response_model=IncidentPublic,
)
def update_incident(
    request: Request,
    session: DbSession,
    token: WriteToken,
    incident_id: RowId,
    body: IncidentUpdate,
    if_match: IfMatch = None,
) -> Response:
    incident = service.get_incident(
        session=session, school_id=token.school_id, incident_id=incident_id, for_update=True
    )
    require_current(_public(session, incident), if_match)
    flows.update_incident(
        session=session,
        incident=incident,
        data=body,
        actor=token_actor(request),
    )
    session.commit()
    return json_with_etag(_public(session, incident))


@router.get(
    "/{incident_id}/timeline", operation_id="listTimeline", summary="An incident's chronology"
)
def get_timeline(
    request: Request, session: DbSession, token: ReadToken, incident_id: RowId
) -> Page[TimelineEntryPublic]:
    incident = service.get_incident(
        session=session, school_id=token.school_id, incident_id=incident_id
    )
    entries = service.timeline(session=session, incident=incident)
    return Page[TimelineEntryPublic](
        data=[TimelineEntryPublic.model_validate(e.model_dump()) for e in entries]
    )


@router.post(
    "/{incident_id}/timeline",
    operation_id="addTimelineEntry",
    summary="Add a note, a decision (with rationale) or a contact",
    status_code=201,
)
def add_timeline_entry(
    request: Request,
    session: DbSession,
    token: WriteToken,
    incident_id: RowId,
    body: TimelineEntryIn,
) -> TimelineEntryPublic:
    incident = service.get_incident(
        session=session, school_id=token.school_id, incident_id=incident_id
    )
    entry = service.add_written_entry(
        session=session,
        incident=incident,
        kind=body.kind,
        text=body.text,
        rationale=body.rationale,
        contact_with=body.contact_with,
        actor=token_actor(request),
    )
    session.commit()
    return TimelineEntryPublic.model_validate(entry.model_dump())


@router.post(
    "/{incident_id}/evidence",
    operation_id="addEvidence",
    summary="Upload a screenshot or PDF (multipart)",
    status_code=201,
    responses={507: {"description": "The evidence store is full: nothing was saved"}},
)
async def add_evidence(
    request: Request,
    session: DbSession,
    token: WriteToken,
    incident_id: RowId,
    file: Annotated[UploadFile, File(description="PNG, JPEG, WebP or PDF")],
    captured_at: Annotated[
        Timestamp | None,
        Form(description="When the screenshot was taken, with its offset; not in the future"),
    ] = None,
    note: Annotated[str, Form(max_length=4000, pattern=r"^[^\x00]*$")] = "",
) -> EvidencePublic:
    # The database's work runs in a thread: waiting for it must not stop the server.
    incident = await run_in_threadpool(
        service.get_incident, session=session, school_id=token.school_id, incident_id=incident_id
    )
    if captured_at is not None and captured_at.tzinfo is None:
        raise InvalidInput(
            "captured_at needs a time zone.",
            errors=[{"field": "captured_at", "message": "time zone required"}],
        )
    (evidence,) = await flows.add_evidence(
        session=session,
        incident=incident,
        files=[file],
        note=note,
        captured_at=captured_at,
        uploaded_by=None,
        actor=token_actor(request),
        limits=flows.upload_limits(request.app.state.settings),
    )
    await run_in_threadpool(session.commit)
    return EvidencePublic.model_validate(evidence.model_dump())
