"""The home page, shaped by the signed-in person's role."""

from fastapi import Request

from app.auth import service as auth_service
from app.auth.dependencies import CurrentUser
from app.auth.models import Role
from app.checklists import service as checklists_service
from app.checklists.models import RunStatus
from app.core.db import DbSession
from app.core.routing import page_router
from app.core.templating import render
from app.core.types import utcnow
from app.incidents import service as incidents_service
from app.policies import service as policies_service
from app.retention import service as retention_service
from app.webhooks import service as webhooks_service

router = page_router()


@router.get("/")
def home(request: Request, session: DbSession, user: CurrentUser):
    now = utcnow()
    unfinished = [
        r
        for r in checklists_service.runs_of_user(session=session, user=user)
        if not r.run.completed_at
    ]
    context: dict = {
        "role": user.role,
        "now": now,
        "checklists": unfinished,
        "overdue": [r for r in unfinished if r.run.status(now) == RunStatus.overdue],
        "failed_sign_ins": request.state.signed_in.browser.failed_sign_ins_before,
    }
    context["policies_waiting"] = policies_service.waiting_for(session=session, user=user)
    if user.role in (Role.dsl, Role.deputy_dsl, Role.slt):
        context["reviews_due"] = policies_service.reviews_due(
            session=session, school_id=user.school_id, today=now.date()
        )
    if user.role in (Role.dsl, Role.deputy_dsl):
        context["incident_counts"] = incidents_service.counts_by_status(
            session=session, school_id=user.school_id
        )
        context["failed_notices"] = webhooks_service.failed_count(
            session=session, school_id=user.school_id
        )
        context["retention"] = retention_service.last_count(
            session=session, school_id=user.school_id
        )
    if user.role == Role.admin:
        context["user_count"] = auth_service.count_users(session=session, school_id=user.school_id)
        context["tokens"] = auth_service.list_api_tokens(session=session, school_id=user.school_id)
    return render(request, "home/home.html", context)
