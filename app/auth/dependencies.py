"""Who is asking: `Annotated` dependencies for pages (session cookie) and the API (bearer token)."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.audit.service import Actor
from app.auth import service
from app.auth.models import ApiToken, Role, Scope, User
from app.core.db import DbSession
from app.core.errors import NotAuthenticated, PermissionDenied, SecondFactorRequired

SESSION_COOKIE = "haven_session"


def request_actor(
    request: Request, user_id: int | None = None, token_id: int | None = None
) -> Actor:
    client = request.client.host if request.client else ""
    return Actor(user_id, token_id, getattr(request.state, "request_id", ""), client)


def signed_in_or_none(request: Request, session: DbSession) -> service.SignedIn | None:
    if hasattr(request.state, "signed_in"):
        return request.state.signed_in
    raw = request.cookies.get(SESSION_COOKIE)
    signed_in = None
    if raw:
        signed_in = service.find_signed_in(
            session=session, raw_token=raw, settings=request.app.state.settings
        )
        if signed_in and service.touch_session(session=session, browser=signed_in.browser):
            session.commit()
    request.state.signed_in = signed_in
    return signed_in


MaybeSignedIn = Annotated[service.SignedIn | None, Depends(signed_in_or_none)]


def require_password_step(signed_in: MaybeSignedIn) -> service.SignedIn:
    """Signed in with a password; the second factor may still be to come."""
    if signed_in is None:
        raise NotAuthenticated("Sign in to continue.")
    return signed_in


PasswordSignedIn = Annotated[service.SignedIn, Depends(require_password_step)]


def require_signed_in(signed_in: PasswordSignedIn) -> service.SignedIn:
    """Fully signed in: DSLs and administrators must also have passed their second factor."""
    user = signed_in.user
    if user.role.needs_second_factor and not signed_in.second_factor_done:
        target = "/login/second-factor" if user.has_second_factor else "/account/second-factor"
        raise SecondFactorRequired(target)
    return signed_in


SignedInSession = Annotated[service.SignedIn, Depends(require_signed_in)]


def current_user(signed_in: SignedInSession) -> User:
    return signed_in.user


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise PermissionDenied("Your role does not give access to this page.")
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]


def page_actor(request: Request, user: CurrentUser) -> Actor:
    return request_actor(request, user_id=user.id)


PageActor = Annotated[Actor, Depends(page_actor)]

# API ---------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="An API token made by an administrator")


def api_token(
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> ApiToken:
    if credentials is None:
        raise NotAuthenticated("Send an API token as 'Authorization: Bearer hvn_...'.")
    token = service.find_api_token(session=session, raw=credentials.credentials)
    if token is None:
        raise NotAuthenticated("The API token is not valid, has expired or was revoked.")
    return token


def require_scope(scope: Scope) -> Callable[..., ApiToken]:
    def check(request: Request, session: DbSession, token: Annotated[ApiToken, Depends(api_token)]):
        request.app.state.rate_limiter.check(token.id)
        if scope.value not in token.scopes:
            raise PermissionDenied(f"This token lacks the '{scope.value}' scope.")
        if service.note_token_use(session=session, token=token):
            session.commit()
        request.state.api_token = token
        return token

    return check


def token_actor(request: Request) -> Actor:
    token: ApiToken = request.state.api_token
    return request_actor(request, token_id=token.id)
