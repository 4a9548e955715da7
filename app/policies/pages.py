"""Policy pages: reading and acknowledging for staff; writing, approving and publishing for
leaders; public copies of pupil and parent/carer policies."""

import difflib
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import CurrentUser, PageActor, require_roles
from app.auth.models import Role, User
from app.core.db import DbSession
from app.core.downloads import csv_download
from app.core.errors import DomainError, InvalidInput, PermissionDenied
from app.core.markdown import render_markdown
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.core.types import utcnow
from app.people import service as people_service
from app.policies import flows, service
from app.policies.library import SHIPPED_POLICIES, STANCE_TEXT
from app.policies.models import (
    Audience,
    ExemptionReason,
    PhoneStance,
    Policy,
    PolicyCreate,
    PolicyKind,
    PolicyVersion,
    VersionCreate,
)

router = page_router(prefix="/policies")
public_router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

LEADERS = (Role.slt, Role.dsl, Role.deputy_dsl)
PolicyLead = Annotated[User, Depends(require_roles(*LEADERS))]


def current_policy(session: DbSession, user: CurrentUser, policy_id: int) -> Policy:
    """The policy of the address, if it is the signed-in person's school's. Routes declare
    their role check before it, so a refused role is told so rather than "not found"."""
    return service.get_policy(session=session, school_id=user.school_id, policy_id=policy_id)


CurrentPolicy = Annotated[Policy, Depends(current_policy)]


def route_version(session: DbSession, policy: CurrentPolicy, number: int) -> PolicyVersion:
    return service.get_version(session=session, policy=policy, number=number)


RouteVersion = Annotated[PolicyVersion, Depends(route_version)]
Text = Annotated[str, Form(max_length=200_000)]
Short = Annotated[str, Form(max_length=200)]
NOTICES = {
    "created": "The policy was created as a draft. Read it through, then ask senior "
    "leadership to approve it.",
    "saved": "Saved.",
    "approved": "Version approved. It can now be published.",
    "published": "Published. Staff are asked to read and acknowledge it.",
    "acknowledged": "Thank you: your acknowledgement of this version is recorded.",
    "reminded": "A reminder was recorded for everyone who has not acknowledged yet.",
}


def _dates(effective_from: str, review_due: str) -> tuple[date, date]:
    try:
        return date.fromisoformat(effective_from), date.fromisoformat(review_due)
    except ValueError:
        raise InvalidInput("Dates must look like 2026-09-01.") from None


def _version_data(body: str, effective_from: str, review_due: str) -> VersionCreate:
    start, review = _dates(effective_from, review_due)
    try:
        return VersionCreate(body=body, effective_from=start, review_due=review)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        if "review_due" in message:
            message = "The review date must come after the date the version takes effect."
        raise InvalidInput(message, errors=[{"field": "review_due", "message": message}]) from None


@router.get("")
def policies_page(request: Request, session: DbSession, user: CurrentUser, notice: str = ""):
    policies = service.list_policies(session=session, school_id=user.school_id)
    current = {p.id: service.current_version(session=session, policy=p) for p in policies}
    context = {
        "policies": policies,
        "current": current,
        "waiting": service.waiting_for(session=session, user=user),
        "is_leader": user.role in LEADERS,
        "reviews": service.reviews_due(
            session=session, school_id=user.school_id, today=utcnow().date()
        )
        if user.role in LEADERS
        else [],
        "notice": NOTICES.get(notice, ""),
        "now_date": utcnow().date(),
    }
    if user.role not in LEADERS:
        context["policies"] = [p for p in policies if current[p.id] is not None]
    return render(request, "policies/list.html", context)


@router.get("/new")
def new_policy_page(request: Request, user: PolicyLead):
    today = utcnow().date()
    context = {
        "shipped": SHIPPED_POLICIES,
        "stances": list(PhoneStance),
        "form": {
            "effective_from": today.isoformat(),
            "review_due": (today + timedelta(days=365)).isoformat(),
        },
    }
    return render(request, "policies/new.html", context, block="form")


@router.post("/new")
def create_policy(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    template: Short = "",
    title: Short = "",
    phone_stance: Short = "",
    effective_from: Short = "",
    review_due: Short = "",
):
    form = {
        "template": template,
        "title": title,
        "phone_stance": phone_stance,
        "effective_from": effective_from,
        "review_due": review_due,
    }
    try:
        shipped = next((p for p in SHIPPED_POLICIES if p.key == template), None)
        if shipped is None:
            raise InvalidInput("Choose a template to start from.")
        stance = None
        if shipped.kind == PolicyKind.mobile_phone.value:
            try:
                stance = PhoneStance(phone_stance or shipped.phone_stance)
            except ValueError:
                raise InvalidInput("Choose the school's stance on phones.") from None
        data = _version_data("x", effective_from, review_due)
        body = shipped.body.replace("{stance}", STANCE_TEXT.get(stance.value, "") if stance else "")
        body = body.replace("{school_name}", request.app.state.settings.school_name)
        body = body.replace("{review_date}", data.review_due.strftime("%d %B %Y"))
        policy = service.create_policy(
            session=session,
            school_id=user.school_id,
            actor=actor,
            data=PolicyCreate(
                title=title.strip() or shipped.title,
                kind=shipped.kind,
                audience=Audience(shipped.audience),
                phone_stance=stance,
            ),
        )
        service.add_version(
            session=session, policy=policy, actor=actor, data=data.model_copy(update={"body": body})
        )
    except (DomainError, ValidationError) as exc:
        session.rollback()
        detail = exc.detail if isinstance(exc, DomainError) else "Please check the title."
        return render(
            request,
            "policies/new.html",
            {
                "shipped": SHIPPED_POLICIES,
                "stances": list(PhoneStance),
                "form": form,
                "error": detail,
            },
            block="form",
            status_code=422,
        )
    session.commit()
    return see_other(request, f"/policies/{policy.id}?notice=created")


def _policy_page(request, session, user, policy, *, status_code=200, **context):
    versions = service.versions_of(session=session, policy=policy)
    current = service.current_version(session=session, policy=policy)
    shown = context.pop("shown", None) or current or (versions[-1] if versions else None)
    waiting_ids = {w.version.id for w in service.waiting_for(session=session, user=user)}
    context = {
        "policy": policy,
        "versions": versions,
        "current": current,
        "shown": shown,
        "rendered": render_markdown(shown.body) if shown else "",
        "is_leader": user.role in LEADERS,
        "can_approve": user.role == Role.slt,
        "must_acknowledge": current is not None and current.id in waiting_ids,
        "exemptions": service.exemptions(session=session, policy=policy)
        if user.role in LEADERS and policy.kind == PolicyKind.mobile_phone
        else [],
        "acks": service.acknowledgements(session=session, policy=policy, version=current)
        if current is not None and user.role in LEADERS and policy.audience == Audience.staff
        else [],
        **context,
    }
    return render(request, "policies/policy.html", context, status_code=status_code)


@router.get("/{policy_id}")
def policy_page(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    policy: CurrentPolicy,
    version: int | None = None,
    notice: str = "",
    pupil_q: str = "",
):
    shown = None
    if version is not None:
        if user.role not in LEADERS:
            raise PermissionDenied(
                "Earlier versions and drafts are for senior leaders and the DSL."
            )
        shown = service.get_version(session=session, policy=policy, number=version)
    elif (
        user.role not in LEADERS and service.current_version(session=session, policy=policy) is None
    ):
        raise PermissionDenied("This policy has not been published yet.")
    matches = (
        people_service.search_people(session=session, school_id=user.school_id, text=pupil_q)
        if pupil_q.strip() and user.role in LEADERS
        else None
    )
    return _policy_page(
        request,
        session,
        user,
        policy,
        shown=shown,
        notice=NOTICES.get(notice, ""),
        pupil_q=pupil_q[:100],
        pupil_matches=matches,
    )


def _act(request, session, user, policy, change, notice: str, *, shown=None) -> Response:
    try:
        change()
    except DomainError as exc:
        session.rollback()
        return _policy_page(
            request,
            session,
            user,
            policy,
            status_code=exc.status_code,
            error=exc.detail,
            shown=shown,
        )
    session.commit()
    return see_other(request, f"/policies/{policy.id}?notice={notice}")


@router.post("/{policy_id}/versions")
def add_version(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    body: Text = "",
    effective_from: Short = "",
    review_due: Short = "",
):

    def change():
        service.add_version(
            session=session,
            policy=policy,
            actor=actor,
            data=_version_data(body, effective_from, review_due),
        )

    return _act(request, session, user, policy, change, "saved")


@router.post("/{policy_id}/versions/{number}")
def edit_version(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    version: RouteVersion,
    body: Text = "",
    effective_from: Short = "",
    review_due: Short = "",
):

    def change():
        service.update_draft(
            session=session,
            policy=policy,
            version=version,
            actor=actor,
            data=_version_data(body, effective_from, review_due),
        )

    return _act(request, session, user, policy, change, "saved", shown=version)


@router.post("/{policy_id}/versions/{number}/approve")
def approve(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    version: RouteVersion,
):
    return _act(
        request,
        session,
        user,
        policy,
        lambda: service.approve(
            session=session, policy=policy, version=version, approver=user, actor=actor
        ),
        "approved",
        shown=version,
    )


@router.post("/{policy_id}/versions/{number}/publish")
def publish(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    version: RouteVersion,
):
    return _act(
        request,
        session,
        user,
        policy,
        lambda: flows.publish(session=session, policy=policy, version=version, actor=actor),
        "published",
        shown=version,
    )


@router.post("/{policy_id}/acknowledge")
def acknowledge(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    actor: PageActor,
    policy: CurrentPolicy,
    number: Annotated[int, Form()],
):
    version = service.get_version(session=session, policy=policy, number=number)
    return _act(
        request,
        session,
        user,
        policy,
        lambda: service.acknowledge(
            session=session, policy=policy, version=version, user=user, actor=actor
        ),
        "acknowledged",
    )


@router.post("/{policy_id}/public")
def set_public(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    public: Annotated[bool, Form()] = False,
):
    return _act(
        request,
        session,
        user,
        policy,
        lambda: service.set_public(session=session, policy=policy, public=public, actor=actor),
        "saved",
    )


@router.post("/{policy_id}/remind")
def remind(
    request: Request, session: DbSession, user: PolicyLead, actor: PageActor, policy: CurrentPolicy
):
    version = service.current_version(session=session, policy=policy)
    if version is None:
        raise InvalidInput("There is no published version to be reminded of.")
    return _act(
        request,
        session,
        user,
        policy,
        lambda: service.remind(session=session, policy=policy, version=version, actor=actor),
        "reminded",
    )


@router.post("/{policy_id}/exemptions")
def add_exemption(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    person_id: Short = "",
    reason: Short = "",
    note: Short = "",
):

    def change():
        try:
            chosen = ExemptionReason(reason)
            pupil = int(person_id)
        except ValueError:
            raise InvalidInput("Choose a pupil and the reason for the exemption.") from None
        service.add_exemption(
            session=session, policy=policy, person_id=pupil, reason=chosen, note=note, actor=actor
        )

    return _act(request, session, user, policy, change, "saved")


@router.post("/{policy_id}/exemptions/{exemption_id}/remove")
def remove_exemption(
    request: Request,
    session: DbSession,
    user: PolicyLead,
    actor: PageActor,
    policy: CurrentPolicy,
    exemption_id: int,
):
    return _act(
        request,
        session,
        user,
        policy,
        lambda: service.remove_exemption(
            session=session, policy=policy, exemption_id=exemption_id, actor=actor
        ),
        "saved",
    )


@router.get("/{policy_id}/acknowledgements.csv")
def acknowledgements_csv(session: DbSession, user: PolicyLead, policy: CurrentPolicy):
    version = service.current_version(session=session, policy=policy)
    if version is None:
        raise InvalidInput("There is no published version yet.")
    rows = (
        [
            person.display_name,
            person.email,
            person.role.value,
            version.number,
            at.isoformat() if at else "",
        ]
        for person, at in service.acknowledgements(session=session, policy=policy, version=version)
    )
    return csv_download(
        ["person", "email", "role", "version", "acknowledged"],
        rows,
        filename=f"policy-{policy.id}-v{version.number}.csv",
    )


@router.get("/{policy_id}/diff")
def diff(
    request: Request, session: DbSession, user: PolicyLead, policy: CurrentPolicy, a: int, b: int
):
    old = service.get_version(session=session, policy=policy, number=a)
    new = service.get_version(session=session, policy=policy, number=b)
    lines = list(
        difflib.unified_diff(
            old.body.splitlines(),
            new.body.splitlines(),
            fromfile=f"version {a}",
            tofile=f"version {b}",
            lineterm="",
        )
    )
    return render(
        request, "policies/diff.html", {"policy": policy, "a": old, "b": new, "lines": lines}
    )


@public_router.get("/public/policies/{slug}")
def public_copy(request: Request, session: DbSession, slug: str):
    policy, version = service.public_policy(session=session, slug=slug)
    return render(
        request,
        "policies/public.html",
        {"policy": policy, "version": version, "rendered": render_markdown(version.body)},
    )
