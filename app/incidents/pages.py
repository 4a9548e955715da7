"""Incident pages: reporting a concern, the DSL's queue, the incident, and its chronology."""

import json
from datetime import UTC
from pathlib import Path
from typing import Annotated

from fastapi import Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.auth import service as auth_service
from app.auth.dependencies import CurrentUser, PageActor
from app.auth.models import Role
from app.checklists import service as checklists_service
from app.core.db import DbSession
from app.core.downloads import attachment, csv_download
from app.core.errors import DomainError, InvalidInput
from app.core.pagination import decode_cursor, encode_cursor
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.core.types import utcnow
from app.escalation import service as escalation_service
from app.incidents import flows, service, uploads
from app.incidents.dependencies import SAFEGUARDING_ROLES, CurrentIncident, SafeguardingLead
from app.incidents.forms import choice, local_time
from app.incidents.models import (
    LADO_QUESTIONS,
    Category,
    ContactWith,
    ContentFlag,
    IncidentCreate,
    IncidentStatus,
    IncidentUpdate,
    InvolvementRole,
    LadoHarmTest,
    OffenderType,
    Platform,
    Severity,
    TargetType,
)
from app.people import service as people_service
from app.retention import service as retention_service

router = page_router()

PAGE_SIZE = 25
NOTICES = {
    "reported": "Thank you. Your report is with the DSL, who will take it from here.",
    "saved": "Saved, and added to the chronology.",
}
LABELS = {
    "platform": {p.value: p.value.replace("_", " ").title() for p in Platform}
    | {
        "x": "X (Twitter)",
        "tiktok": "TikTok",
        "youtube": "YouTube",
        "whatsapp": "WhatsApp",
        "ask_fm": "Ask.fm",
        "none": "Not online (e.g. a phone in school)",
    },
    "category": {c.value: c.value.replace("_", " ").capitalize() for c in Category},
    "offender_type": {
        "pupil": "A pupil",
        "staff": "A member of staff",
        "parent_carer": "A parent or carer",
        "other_adult": "Another adult",
        "unknown": "Not known",
    },
    "target_type": {
        "staff": "A member of staff",
        "school_leader": "A school leader",
        "pupil": "A pupil",
        "school": "The school itself",
        "other": "Someone else",
    },
    "content_flags": {
        "sexual": "Sexual",
        "sexist": "Sexist",
        "threatening": "Threatening",
        "abusive": "Abusive",
        "hate": "Hate (race, religion, disability, sexuality...)",
        "indecent_image": "A nude or sexual image of a child",
    },
    "contact_with": {
        "police": "Police",
        "lado": "LADO",
        "posh": "POSH helpline",
        "platform": "The platform",
        "parent_carer": "A parent or carer",
        "other": "Someone else",
    },
}


# Report a concern -----------------------------------------------------------------------------


def _report_page(request, *, status_code=200, **context):
    context = {"labels": LABELS, "form": {}, "now_local": _now_local(request), **context}
    return render(request, "incidents/report.html", context, block="form", status_code=status_code)


def _now_local(request: Request) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(request.app.state.settings.timezone)
    return utcnow().astimezone(zone).strftime("%Y-%m-%dT%H:%M")


@router.get("/report")
def report_page(request: Request, user: CurrentUser):
    return _report_page(request)


Text = Annotated[str, Form(max_length=10000)]
Short = Annotated[str, Form(max_length=200)]
Choice = Annotated[str, Form(max_length=40)]


@router.post("/report")
async def report(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    actor: PageActor,
    title: Short = "",
    description: Text = "",
    occurred_at: Choice = "",
    platform: Choice = "",
    category: Choice = "",
    offender_type: Choice = "",
    target_type: Choice = "",
    content_flags: Annotated[list[str] | None, Form()] = None,
    suspected_criminal_offence: Annotated[bool, Form()] = False,
    captured_at: Choice = "",
    evidence_note: Text = "",
    screenshots: Annotated[list[UploadFile] | None, Form()] = None,
):
    form = {
        "title": title,
        "description": description,
        "occurred_at": occurred_at,
        "platform": platform,
        "category": category,
        "offender_type": offender_type,
        "target_type": target_type,
        "content_flags": content_flags or [],
        "suspected_criminal_offence": suspected_criminal_offence,
        "captured_at": captured_at,
        "evidence_note": evidence_note,
    }
    files = [f for f in screenshots or [] if f.filename]
    zone = request.app.state.settings.timezone
    try:
        data = _incident_from_form(form, zone)
        if ContentFlag.indecent_image in data.content_flags and files:
            raise InvalidInput(
                flows.INDECENT_IMAGE_REFUSAL,
                errors=[{"field": "screenshots", "message": "not allowed with indecent_image"}],
            )
        captured = local_time(captured_at, zone, "captured_at")
        # The database's work runs in a thread: waiting for it must not stop the server.
        incident = await run_in_threadpool(
            flows.report_incident,
            session=session,
            school_id=user.school_id,
            data=data,
            reporter=user,
            actor=actor,
        )
        if files or evidence_note.strip():
            await flows.add_evidence(
                session=session,
                incident=incident,
                files=files,
                note=evidence_note,
                captured_at=captured,
                uploaded_by=user,
                actor=actor,
                limits=flows.upload_limits(request.app.state.settings),
            )
        await run_in_threadpool(session.commit)
    except DomainError as exc:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(
            _report_page,
            request,
            status_code=exc.status_code,
            error=exc.detail,
            errors=exc.errors,
            form=form,
        )
    return see_other(request, f"/incidents?notice=reported&ref={incident.reference}")


def _incident_from_form(form: dict, zone: str) -> IncidentCreate:
    occurred = local_time(form["occurred_at"], zone, "occurred_at")
    if occurred is None:
        raise InvalidInput(
            "Say when it happened (roughly is fine).",
            errors=[{"field": "occurred_at", "message": "required"}],
        )
    try:
        return IncidentCreate(
            title=form["title"],
            description=form["description"],
            occurred_at=occurred,
            platform=choice(Platform, form["platform"], "platform", "the platform"),
            category=choice(Category, form["category"], "category", "what kind of concern it is"),
            offender_type=choice(
                OffenderType, form["offender_type"], "offender_type", "who seems responsible"
            ),
            target_type=choice(TargetType, form["target_type"], "target_type", "who is targeted"),
            content_flags=[
                choice(ContentFlag, f, "content_flags", "what the content is like")
                for f in form["content_flags"]
            ],
            suspected_criminal_offence=form["suspected_criminal_offence"],
        )
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"Please check {first['field'].replace('_', ' ')}: {first['message']}.", errors=errors
        ) from None


# The list: the DSL's queue, or a person's own reports --------------------------------------------


def _queue_filter(status, severity, platform, category, assigned, q, sort, user_id):
    try:
        return service.QueueFilter(
            status=IncidentStatus(status) if status else None,
            severity=Severity(severity) if severity else None,
            platform=Platform(platform).value if platform else None,
            category=Category(category).value if category else None,
            assigned_to=user_id
            if assigned == "me"
            else (int(assigned) if assigned.isdigit() else None),
            unassigned=assigned == "none",
            search=q.strip(),
            sort=sort if sort in service.SORTS else "newest",
        )
    except ValueError:
        raise InvalidInput("One of the filters has a value Haven does not know.") from None


Filter = Annotated[str, Query(max_length=40)]


@router.get("/incidents")
def incidents_page(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    status: Filter = "",
    severity: Filter = "",
    platform: Filter = "",
    category: Filter = "",
    assigned: Filter = "",
    q: Annotated[str, Query(max_length=100)] = "",
    sort: Filter = "newest",
    after: Annotated[str, Query(max_length=200)] = "",
    notice: Filter = "",
    ref: Filter = "",
):
    if user.role not in SAFEGUARDING_ROLES:
        context = {
            "reports": service.reports_of(session=session, user=user),
            "notice": NOTICES.get(notice, ""),
            "ref": ref,
        }
        if user.role == Role.slt:
            context["counts"] = service.counts_by_status(session=session, school_id=user.school_id)
        return render(request, "incidents/mine.html", context)
    filters = _queue_filter(status, severity, platform, category, assigned, q, sort, user.id)
    position = decode_cursor(after, 3 if filters.sort == "severity" else 2) if after else None
    rows = service.queue(
        session=session, school_id=user.school_id, filters=filters, limit=PAGE_SIZE, after=position
    )
    next_after = (
        encode_cursor(*service.cursor_values(rows[PAGE_SIZE - 1], filters.sort))
        if len(rows) > PAGE_SIZE
        else None
    )
    leads = auth_service.active_users_with_roles(
        session=session, school_id=user.school_id, roles=SAFEGUARDING_ROLES
    )
    context = {
        "incidents": rows[:PAGE_SIZE],
        "next_after": next_after,
        "counts": service.counts_by_status(session=session, school_id=user.school_id),
        "filters": filters,
        "assigned": assigned,
        "leads": {u.id: u for u in leads},
        "labels": LABELS,
        "query_without_after": request.url.remove_query_params("after").query,
        "paged": bool(after),
    }
    return render(request, "incidents/queue.html", context, block="results")


# One incident ---------------------------------------------------------------------------------


def _incident_page(request, session, incident, user, *, status_code=200, **context):
    people = service.people_of(session=session, incident_ids=[incident.id])[incident.id]
    users = {u.id: u for u in auth_service.list_users(session=session, school_id=user.school_id)}
    leads = [u for u in users.values() if u.role in SAFEGUARDING_ROLES and u.is_active]
    context = {
        "incident": incident,
        "people": people,
        "evidence": service.evidence_of(session=session, incident=incident),
        "entries": service.timeline(session=session, incident=incident),
        "playbook": checklists_service.playbook_of(session=session, incident_id=incident.id),
        "escalations": escalation_service.escalations_of(session=session, incident=incident),
        "routes": service.contacts_for_platform(
            session=session, school_id=user.school_id, platform=incident.platform.value
        ),
        "leads": leads,
        "users": users,
        "labels": LABELS,
        "statuses": list(IncidentStatus),
        "severities": list(Severity),
        "contact_kinds": list(ContactWith),
        "lado_questions": LADO_QUESTIONS,
        "harm_test": LadoHarmTest.model_validate(incident.lado_harm_test)
        if incident.lado_harm_test
        else None,
        "asks_harm_test": incident.offender_type.value == "staff"
        or incident.category.value in ("staff_conduct", "allegation"),
        "now_local": _now_local(request),
        "retention": retention_service.retention_of_incident(
            session=session, incident_id=incident.id
        ),
        **context,
    }
    return render(request, "incidents/incident.html", context, status_code=status_code)


@router.get("/incidents/{incident_id}")
def incident_page(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    notice: Filter = "",
    person_q: Annotated[str, Query(max_length=100)] = "",
):
    service.record_view(session=session, incident=incident, user=user, actor=actor)
    session.commit()
    matches = (
        people_service.search_people(session=session, school_id=user.school_id, text=person_q)
        if person_q.strip()
        else None
    )
    return _incident_page(
        request,
        session,
        incident,
        user,
        notice=NOTICES.get(notice, ""),
        person_q=person_q,
        person_matches=matches,
    )


@router.post("/incidents/{incident_id}/people")
def add_person(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    role: Choice = "",
    person_id: Choice = "",
    label: Short = "",
):
    def change():
        service.add_person(
            session=session,
            incident=incident,
            person_id=_int(person_id) if person_id else None,
            label=label,
            role=choice(InvolvementRole, role, "role", "how they are involved"),
            actor=actor,
        )

    return _act(request, session, incident, user, change)


def _act(request, session, incident, user, change) -> Response:
    """Run one action; on a bad input show the page again with the reason, nothing written."""
    try:
        change()
    except DomainError as exc:
        session.rollback()
        return _incident_page(
            request, session, incident, user, status_code=exc.status_code, action_error=exc.detail
        )
    session.commit()
    return see_other(request, f"/incidents/{incident.id}?notice=saved")


@router.post("/incidents/{incident_id}/update")
def update_incident(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    status: Choice = "",
    severity: Choice = "",
    assigned_to: Choice = "",
    outcome: Text = "",
    reason: Text = "",
    removal_requested: Annotated[bool | None, Form()] = None,
    removal_refused: Annotated[bool | None, Form()] = None,
):
    def change():
        fields: dict = {}
        if status:
            fields["status"] = choice(IncidentStatus, status, "status", "a status")
        if severity:
            fields["severity"] = choice(Severity, severity, "severity", "a severity")
        if assigned_to:
            fields["assigned_to"] = None if assigned_to == "none" else _int(assigned_to)
        if outcome.strip():
            fields["outcome"] = outcome.strip()
        if reason.strip():
            fields["reason"] = reason.strip()
        if removal_requested is not None:
            fields["removal_requested"] = removal_requested
        if removal_refused is not None:
            fields["removal_refused"] = removal_refused
        if not fields:
            raise InvalidInput("Nothing to change.")
        flows.update_incident(
            session=session,
            incident=incident,
            data=IncidentUpdate(**fields),
            actor=actor,
        )

    return _act(request, session, incident, user, change)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("Choose someone from the list.") from None


@router.post("/incidents/{incident_id}/entries")
def add_entry(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    kind: Choice = "",
    text: Text = "",
    rationale: Text = "",
    contact_with: Choice = "",
):
    def change():
        contact = (
            choice(ContactWith, contact_with, "contact_with", "who was contacted")
            if contact_with
            else None
        )
        service.add_written_entry(
            session=session,
            incident=incident,
            kind=kind,
            text=text,
            rationale=rationale,
            contact_with=contact,
            actor=actor,
        )

    return _act(request, session, incident, user, change)


@router.post("/incidents/{incident_id}/harm-test")
def answer_harm_test(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    answers: Annotated[list[str] | None, Form()] = None,
):
    def change():
        chosen = set(answers or [])
        if unknown := chosen - set(LADO_QUESTIONS):
            raise InvalidInput(f"Unknown question: {sorted(unknown)[0][:40]}")
        test = LadoHarmTest(**{name: name in chosen for name in LADO_QUESTIONS})
        flows.update_incident(
            session=session,
            incident=incident,
            data=IncidentUpdate(lado_harm_test=test),
            actor=actor,
        )

    return _act(request, session, incident, user, change)


@router.post("/incidents/{incident_id}/playbook/{item_id}")
def work_step(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    item_id: int,
    done: Annotated[bool, Form()] = True,
    note: Text = "",
):
    def change():
        flows.work_playbook_step(
            session=session,
            incident=incident,
            item_id=item_id,
            done=done,
            note=note,
            user=user,
            actor=actor,
        )

    return _act(request, session, incident, user, change)


@router.post("/incidents/{incident_id}/evidence")
async def add_evidence(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    note: Text = "",
    captured_at: Choice = "",
    file: Annotated[UploadFile | None, Form()] = None,
):
    try:
        captured = local_time(captured_at, request.app.state.settings.timezone, "captured_at")
        await flows.add_evidence(
            session=session,
            incident=incident,
            files=[file] if file is not None and file.filename else [],
            note=note,
            captured_at=captured,
            uploaded_by=user,
            actor=actor,
            limits=flows.upload_limits(request.app.state.settings),
        )
        await run_in_threadpool(session.commit)
    except DomainError as exc:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(
            _incident_page,
            request,
            session,
            incident,
            user,
            status_code=exc.status_code,
            evidence_error=exc.detail,
        )
    return see_other(request, f"/incidents/{incident.id}?notice=saved#evidence")


EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "application/pdf": "pdf",
}


@router.get("/incidents/{incident_id}/evidence/{evidence_id}")
def download_evidence(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    evidence_id: int,
):
    evidence = service.get_evidence(session=session, incident=incident, evidence_id=evidence_id)
    if evidence.storage_name is None:
        raise InvalidInput("This evidence is a written description; there is no file.")
    content = uploads.open_verified(
        evidence_dir=Path(request.app.state.settings.evidence_dir),
        storage_name=evidence.storage_name,
        sha256=evidence.sha256,
    )
    service.audit_download(session=session, incident=incident, evidence=evidence, actor=actor)
    session.commit()
    extension = EXTENSIONS.get(evidence.content_type, "bin")
    name = f"{incident.reference}-evidence-{evidence.id}.{extension}"
    return Response(
        content,
        media_type=evidence.content_type or "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


# Chronology exports ---------------------------------------------------------------------------


def _export_rows(session, incident, users):
    for entry in service.timeline(session=session, incident=incident):
        who = users.get(entry.actor_user_id)
        yield {
            "time": entry.created_at.astimezone(UTC).isoformat(),
            "kind": entry.kind.value,
            "by": who.display_name if who else ("API" if entry.actor_token_id else "Haven"),
            "text": entry.text,
            "rationale": entry.rationale,
            "contact_with": entry.contact_with.value if entry.contact_with else "",
        }


@router.get("/incidents/{incident_id}/chronology")
def chronology(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    incident: CurrentIncident,
    actor: PageActor,
    format: Filter = "html",
):
    if format not in ("html", "csv", "json"):
        raise InvalidInput("The chronology comes as html, csv or json.")
    service.record_export(session=session, incident=incident, export_format=format, actor=actor)
    session.commit()
    users = {u.id: u for u in auth_service.list_users(session=session, school_id=user.school_id)}
    rows = list(_export_rows(session, incident, users))
    filename = f"{incident.reference}-chronology"
    if format == "csv":
        header = ["time", "kind", "by", "text", "rationale", "contact_with"]
        lines = ([row[column] for column in header] for row in rows)
        return csv_download(header, lines, filename=f"{filename}.csv")
    if format == "json":
        body = {"reference": incident.reference, "title": incident.title, "entries": rows}
        return attachment(
            json.dumps(body, indent=2), filename=f"{filename}.json", media_type="application/json"
        )
    people = service.people_of(session=session, incident_ids=[incident.id])[incident.id]
    return render(
        request,
        "incidents/chronology.html",
        {
            "incident": incident,
            "rows": rows,
            "people": people,
            "labels": LABELS,
            "exported_by": user,
            "exported_at": utcnow(),
            "evidence": service.evidence_of(session=session, incident=incident),
        },
    )


# The directory of contacts --------------------------------------------------------------------


def _contacts_page(request, session, user, *, status_code=200, **context):
    context = {"contacts": service.contacts(session=session, school_id=user.school_id), **context}
    return render(request, "incidents/contacts.html", context, status_code=status_code)


@router.get("/contacts")
def contacts_page(
    request: Request, session: DbSession, user: SafeguardingLead, notice: Filter = ""
):
    saved = "The contact was saved." if notice == "saved" else ""
    return _contacts_page(request, session, user, notice=saved)


@router.post("/contacts/{contact_id}")
def update_contact(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    contact_id: int,
    name: Short = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    url: Annotated[str, Form(max_length=500)] = "",
    how_to: Annotated[str, Form(max_length=2000)] = "",
):
    changes = {"name": name, "phone": phone, "email": email, "url": url, "how_to": how_to}
    try:
        service.update_contact(
            session=session,
            school_id=user.school_id,
            contact_id=contact_id,
            changes=changes,
            actor=actor,
        )
    except InvalidInput as exc:
        session.rollback()
        return _contacts_page(
            request,
            session,
            user,
            status_code=exc.status_code,
            error=exc.detail,
            error_contact=contact_id,
        )
    session.commit()
    return see_other(request, f"/contacts?notice=saved#contact-{contact_id}")
