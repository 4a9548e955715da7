"""The retention page: the schedule, the review queue, legal holds, and deletion after review.

The DSL and deputies review (keep for longer, place a hold); only the DSL deletes a record or
removes a hold, and a deletion asks for confirmation and a reason first."""

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Form, Query, Request

from app.auth import service as auth_service
from app.auth.dependencies import PageActor
from app.auth.models import Role, User
from app.core.db import DbSession
from app.core.errors import DomainError, InvalidInput, PermissionDenied
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.incidents.dependencies import SafeguardingLead
from app.retention import service
from app.retention.library import DELETE_REASONS, MAX_YEARS
from app.retention.models import RecordKind, RecordType

router = page_router(prefix="/admin/retention")

NOTICES = {
    "rule": "The retention period was saved. Records are listed for review once it has passed.",
    "kept": "Kept. The record will be listed for review again when the new date comes.",
    "held": "The legal hold is in place: nothing of this record can be deleted while it stands.",
    "released": "The legal hold was removed, and the removal recorded.",
    "deleted": "The record and everything belonging to it were deleted. The audit trail keeps "
    "its type, reference, the rule, the reason and your name; nothing of its content.",
}
KIND_TITLES = {
    RecordKind.incident: "Closed incidents",
    RecordKind.checklist_run: "Staff checklists",
    RecordKind.policy_version: "Superseded policy versions",
}
PART_NAMES = {
    "incident": "The incident itself",
    "timeline_entries": "Chronology entries",
    "evidence": "Evidence records",
    "evidence_files": "Evidence files on disk",
    "people_links": "Links to the people involved (the roster itself is not touched)",
    "escalations": "Escalations",
    "playbook_runs": "Playbook",
    "playbook_items": "Playbook steps added by rules",
    "playbook_completions": "Playbook steps done",
    "outbox_messages": "Notifications about it",
    "delivery_attempts": "Delivery attempts of those notifications",
    "idempotency_records": "Stored answers to the API request that created it",
    "checklist_run": "The checklist",
    "completions": "Items ticked",
    "run_items": "Items added to it",
    "policy_version": "The policy version",
    "acknowledgements": "Acknowledgements by staff",
}
Short = Annotated[str, Form(max_length=40)]
Reason = Annotated[str, Form(max_length=2000)]


def require_dsl(user: SafeguardingLead) -> User:
    if user.role != Role.dsl:
        raise PermissionDenied(
            "Only the Designated Safeguarding Lead deletes records and removes legal holds. "
            "Ask your DSL."
        )
    return user


DesignatedLead = Annotated[User, Depends(require_dsl)]


def _years(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(
            f"Write the number of years as a whole number from 1 to {MAX_YEARS}, e.g. 6. "
            "Nothing was saved.",
            errors=[{"field": "years", "message": "a whole number"}],
        ) from None


def _kinds(show: str) -> list[RecordKind] | None:
    if not show:
        return None
    try:
        return [RecordKind(show)]
    except ValueError:
        raise InvalidInput("Choose what to show from the list.") from None


def _page(request, session, user, *, status_code=200, show="", **context):
    school_id = user.school_id
    users = {u.id: u for u in auth_service.list_users(session=session, school_id=school_id)}
    context = {
        "rules": service.schedule(session=session, school_id=school_id),
        "queue": service.review_queue(session=session, school_id=school_id, kinds=_kinds(show)),
        "holds": service.holds(session=session, school_id=school_id),
        "deletions": service.recent_deletions(session=session, school_id=school_id),
        "users": users,
        "show": show,
        "kinds": KIND_TITLES,
        "paths": service.PATHS_OF_KINDS,
        "pupil_type": RecordType.incident_pupil,
        "staff_types": service.STAFF_TYPES,
        "reasons": DELETE_REASONS,
        "is_dsl": user.role == Role.dsl,
        "max_years": MAX_YEARS,
        **context,
    }
    return render(
        request, "retention/retention.html", context, block="queue", status_code=status_code
    )


@router.get("")
def retention_page(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    show: Annotated[str, Query(max_length=40)] = "",
    notice: Annotated[str, Query(max_length=40)] = "",
):
    return _page(request, session, user, show=show, notice=NOTICES.get(notice, ""))


def _act(request, session, user, change, notice: str, anchor: str = ""):
    """Run one decision; on a refusal show the page again with the reason, nothing written."""
    try:
        change()
        service.refresh_count(session=session, school_id=user.school_id)
    except DomainError as exc:
        session.rollback()
        return _page(request, session, user, status_code=exc.status_code, error=exc.detail)
    session.commit()
    return see_other(request, f"/admin/retention?notice={notice}{anchor}")


@router.post("/rules/{record_type}")
def save_rule(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    record_type: str,
    years: Short = "",
):
    def change():
        service.set_years(
            session=session,
            school_id=user.school_id,
            record_type=service.record_type_of(record_type),
            years=_years(years),
            actor=actor,
        )

    return _act(request, session, user, change, "rule", "#schedule")


@router.post("/holds")
def hold_by_reference(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    reference: Short = "",
    reason: Reason = "",
):
    def change():
        incident = service.find_by_reference(
            session=session, school_id=user.school_id, reference=reference
        )
        service.place_hold(
            session=session,
            school_id=user.school_id,
            kind=RecordKind.incident,
            record_id=incident.id,
            reason=reason,
            actor=actor,
        )

    return _act(request, session, user, change, "held", "#holds")


def _on_record(request, session, user, actor, kind: str, record_id: int, action, notice, anchor):
    """One review decision about one record: `action` gets who, where and which record."""

    def change():
        action(
            session=session,
            school_id=user.school_id,
            kind=service.kind_of(kind),
            record_id=record_id,
            actor=actor,
        )

    return _act(request, session, user, change, notice, anchor)


@router.post("/{kind}/{record_id}/keep")
def keep(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    kind: str,
    record_id: int,
    years: Short = "",
    reason: Reason = "",
):
    def action(**record):
        service.keep(**record, years=_years(years), reason=reason)

    return _on_record(request, session, user, actor, kind, record_id, action, "kept", "#queue")


@router.post("/{kind}/{record_id}/hold")
def hold(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    kind: str,
    record_id: int,
    reason: Reason = "",
):
    def action(**record):
        service.place_hold(**record, reason=reason)

    return _on_record(request, session, user, actor, kind, record_id, action, "held", "#holds")


@router.post("/{kind}/{record_id}/release")
def release(
    request: Request,
    session: DbSession,
    user: DesignatedLead,
    actor: PageActor,
    kind: str,
    record_id: int,
    reason: Reason = "",
):
    def action(**record):
        service.remove_hold(**record, reason=reason)

    return _on_record(request, session, user, actor, kind, record_id, action, "released", "#holds")


def _confirm_page(request, session, user, kind: str, record_id: int, *, status_code=200, **ctx):
    try:
        preview = service.preview_deletion(
            session=session,
            school_id=user.school_id,
            kind=service.kind_of(kind),
            record_id=record_id,
        )
    except service.AlreadyDeleted as exc:
        context = {"gone": exc.detail}
        return render(request, "retention/delete.html", context, block="confirm", status_code=404)
    rules = service.schedule(session=session, school_id=user.school_id)
    context = {
        "preview": preview,
        "rule": rules[preview.due.record_type] if preview.due else None,
        "path": kind,
        "part_names": PART_NAMES,
        "reasons": DELETE_REASONS,
        "pupil_type": RecordType.incident_pupil,
        "staff_types": service.STAFF_TYPES,
        **ctx,
    }
    return render(
        request, "retention/delete.html", context, block="confirm", status_code=status_code
    )


@router.get("/{kind}/{record_id}/delete")
def confirm_delete(
    request: Request, session: DbSession, user: DesignatedLead, kind: str, record_id: int
):
    return _confirm_page(request, session, user, kind, record_id)


@router.post("/{kind}/{record_id}/delete")
def delete(
    request: Request,
    session: DbSession,
    user: DesignatedLead,
    actor: PageActor,
    kind: str,
    record_id: int,
    reason: Short = "",
    confirm: Annotated[bool, Form()] = False,
):
    try:
        deleted = service.delete_after_review(
            session=session,
            school_id=user.school_id,
            kind=service.kind_of(kind),
            record_id=record_id,
            reason=reason,
            confirmed=confirm,
            actor=actor,
        )
        service.refresh_count(session=session, school_id=user.school_id)
    except DomainError as exc:
        session.rollback()
        return _confirm_page(
            request,
            session,
            user,
            kind,
            record_id,
            status_code=exc.status_code,
            error=exc.detail,
            chosen=reason,
        )
    session.commit()
    # Only once the deletion is committed do the evidence files go: were it to fail, the
    # record would still have its evidence.
    service.remove_files(
        evidence_dir=Path(request.app.state.settings.evidence_dir), files=deleted.files
    )
    return see_other(request, "/admin/retention?notice=deleted#queue")
