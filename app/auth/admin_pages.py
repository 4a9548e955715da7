"""Administration of user accounts and API tokens."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError

from app.auth import flows, service
from app.auth.dependencies import AdminUser, PageActor
from app.auth.models import ApiTokenCreate, Role, Scope, UserCreate, UserUpdate
from app.core.db import DbSession
from app.core.errors import DomainError, InvalidInput
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.core.types import utcnow

router = page_router(prefix="/admin")

NOTICES = {
    "user-created": "The account was created.",
    "user-updated": "The account was updated.",
    "token-revoked": "The token was revoked. Systems using it can no longer connect.",
    "second-factor-reset": "The second factor was reset; the person sets it up at next sign-in.",
    "password-reset": "The password was reset and the person was signed out everywhere. "
    "Give them the new password in person and ask them to change it.",
}


def _validation_detail(exc: ValidationError) -> InvalidInput:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return InvalidInput(f"Please correct: {detail}", errors=errors)


def _users_page(request: Request, session, admin, *, status_code=200, **context):
    users = service.list_users(session=session, school_id=admin.school_id)
    context = {"users": users, "roles": list(Role), **context}
    return render(request, "admin/users.html", context, block="main", status_code=status_code)


@router.get("/users")
def users_page(request: Request, session: DbSession, admin: AdminUser, notice: str = ""):
    return _users_page(request, session, admin, notice=NOTICES.get(notice, ""))


@router.post("/users")
def create_user(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    email: Annotated[str, Form(max_length=254)],
    display_name: Annotated[str, Form(max_length=120)],
    role: Annotated[str, Form(max_length=20)],
    password: Annotated[str, Form(max_length=200)],
):
    form = {"email": email, "display_name": display_name, "role": role}
    try:
        try:
            data = UserCreate(email=email, display_name=display_name, role=role, password=password)
        except ValidationError as exc:
            raise _validation_detail(exc) from None
        flows.create_user(session=session, school_id=admin.school_id, data=data, actor=actor)
    except DomainError as exc:
        session.rollback()
        return _users_page(
            request, session, admin, status_code=exc.status_code, error=exc.detail, form=form
        )
    session.commit()
    return see_other(request, "/admin/users?notice=user-created")


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    user_id: int,
    role: Annotated[str, Form(max_length=20)],
    is_active: Annotated[bool, Form()] = False,
):
    user = service.get_user(session=session, school_id=admin.school_id, user_id=user_id)
    try:
        try:
            data = UserUpdate(role=role, is_active=is_active)
        except ValidationError as exc:
            raise _validation_detail(exc) from None
        service.update_user(session=session, user=user, data=data, actor=actor)
    except DomainError as exc:
        session.rollback()
        return _users_page(request, session, admin, status_code=exc.status_code, error=exc.detail)
    session.commit()
    return see_other(request, "/admin/users?notice=user-updated")


@router.post("/users/{user_id}/second-factor/reset")
def reset_second_factor(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, user_id: int
):
    user = service.get_user(session=session, school_id=admin.school_id, user_id=user_id)
    service.reset_second_factor(session=session, user=user, actor=actor)
    session.commit()
    return see_other(request, "/admin/users?notice=second-factor-reset")


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    user_id: int,
    password: Annotated[str, Form(max_length=200)],
):
    user = service.get_user(session=session, school_id=admin.school_id, user_id=user_id)
    try:
        service.reset_password(
            session=session,
            user=user,
            password=password,
            settings=request.app.state.settings,
            actor=actor,
        )
    except DomainError as exc:
        session.rollback()
        return _users_page(request, session, admin, status_code=exc.status_code, error=exc.detail)
    session.commit()
    return see_other(request, "/admin/users?notice=password-reset")


# API tokens --------------------------------------------------------------------------------


def _tokens_page(request: Request, session, admin, *, status_code=200, **context):
    tokens = service.list_api_tokens(session=session, school_id=admin.school_id)
    now = utcnow()
    context = {
        "tokens": tokens,
        "scopes": list(Scope),
        "rate_limit": request.app.state.settings.api_rate_limit.replace("/", " a "),
        "soon": now + timedelta(days=14),
        "stale": now - timedelta(days=90),
        **context,
    }
    return render(request, "admin/tokens.html", context, block="main", status_code=status_code)


@router.get("/tokens")
def tokens_page(request: Request, session: DbSession, admin: AdminUser, notice: str = ""):
    return _tokens_page(request, session, admin, notice=NOTICES.get(notice, ""))


@router.post("/tokens")
def create_token(
    request: Request,
    session: DbSession,
    admin: AdminUser,
    actor: PageActor,
    name: Annotated[str, Form(max_length=100)],
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_on: Annotated[str, Form(max_length=10)] = "",
):
    try:
        try:
            expires_at = (
                datetime.combine(date.fromisoformat(expires_on), time.max, tzinfo=UTC)
                if expires_on
                else None
            )
            data = ApiTokenCreate(name=name, scopes=scopes or [], expires_at=expires_at)
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise _validation_detail(exc) from None
            raise InvalidInput("The expiry date must be a date like 2027-07-31.") from None
        raw, token = service.create_api_token(
            session=session, school_id=admin.school_id, data=data, actor=actor
        )
    except DomainError as exc:
        session.rollback()
        form = {"name": name, "scopes": scopes or [], "expires_on": expires_on}
        return _tokens_page(
            request, session, admin, status_code=exc.status_code, error=exc.detail, form=form
        )
    session.commit()
    # Shown once, in this response only; never stored in plain text.
    return _tokens_page(
        request, session, admin, status_code=201, new_token=raw, new_token_row=token
    )


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, session: DbSession, admin: AdminUser, actor: PageActor, token_id: int
):
    service.revoke_api_token(
        session=session, school_id=admin.school_id, token_id=token_id, actor=actor
    )
    session.commit()
    return see_other(request, "/admin/tokens?notice=token-revoked")
