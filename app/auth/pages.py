"""Signing in and out, the second factor, and the person's own account page."""

from typing import Annotated

import segno
from fastapi import Form, Request
from fastapi.responses import RedirectResponse

from app.auth import service
from app.auth.dependencies import (
    SESSION_COOKIE,
    MaybeSignedIn,
    PasswordSignedIn,
    SignedInSession,
    request_actor,
)
from app.core.csrf import rotate_csrf_cookie
from app.core.db import DbSession
from app.core.errors import DomainError, InvalidInput
from app.core.routing import page_router, safe_next, see_other
from app.core.templating import render
from app.install import ensure_school

router = page_router()

Email = Annotated[str, Form(max_length=254)]
Password = Annotated[str, Form(max_length=200)]
Code = Annotated[str, Form(max_length=12)]
Next = Annotated[str, Form(max_length=500)]

NOTICES = {
    "signed-out": "You have signed out.",
    "password-changed": "Your password has been changed. Other browsers have been signed out.",
    "second-factor-on": "Your second factor is set up.",
}


def _fully_signed_in(signed_in: service.SignedIn | None) -> bool:
    if signed_in is None:
        return False
    return not signed_in.user.role.needs_second_factor or signed_in.second_factor_done


@router.get("/login")
def login_page(request: Request, signed_in: MaybeSignedIn, next: str = "/", notice: str = ""):
    if _fully_signed_in(signed_in):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request, "auth/login.html", {"next": safe_next(next), "notice": NOTICES.get(notice, "")}
    )


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    email: Email,
    password: Password,
    next: Next = "/",
):
    settings = request.app.state.settings
    school = ensure_school(session=session, settings=settings)
    actor = request_actor(request)
    try:
        user = service.authenticate(
            session=session,
            school_id=school.id,
            email=email,
            password=password,
            settings=settings,
            actor=actor,
            device=request.cookies.get(service.DEVICE_COOKIE),
        )
    except DomainError as exc:
        session.commit()  # keep the failure count and its audit entry
        context = {"error": exc.detail, "email": email, "next": safe_next(next)}
        return render(
            request, "auth/login.html", context, block="form", status_code=exc.status_code
        )
    raw, _browser = service.start_session(
        session=session,
        user=user,
        settings=settings,
        user_agent=request.headers.get("user-agent", ""),
        actor=actor,
    )
    session.commit()
    target = safe_next(next)
    if user.role.needs_second_factor:
        target = "/login/second-factor" if user.has_second_factor else "/account/second-factor"
    response = see_other(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    response.set_cookie(
        service.DEVICE_COOKIE,
        service.device_cookie(settings=settings, school_id=school.id, email=user.email),
        max_age=service.DEVICE_COOKIE_DAYS * 24 * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/login",
    )
    rotate_csrf_cookie(request, response)
    return response


@router.get("/login/second-factor")
def second_factor_page(request: Request, signed_in: PasswordSignedIn):
    if not signed_in.user.has_second_factor:
        return RedirectResponse("/account/second-factor", status_code=303)
    if signed_in.second_factor_done:
        return RedirectResponse("/", status_code=303)
    return render(request, "auth/second_factor.html")


@router.post("/login/second-factor")
def second_factor(request: Request, session: DbSession, signed_in: PasswordSignedIn, code: Code):
    try:
        service.pass_second_factor(
            session=session,
            signed_in=signed_in,
            code=code,
            settings=request.app.state.settings,
            actor=request_actor(request, user_id=signed_in.user.id),
        )
    except DomainError as exc:
        session.commit()
        if signed_in.browser.revoked_at is not None:
            return see_other(request, "/login")
        context = {"error": exc.detail}
        return render(
            request, "auth/second_factor.html", context, block="form", status_code=exc.status_code
        )
    session.commit()
    return see_other(request, "/")


@router.get("/logout")
def logout_page(request: Request, signed_in: PasswordSignedIn):
    return render(request, "auth/logout.html")


@router.post("/logout")
def logout(request: Request, session: DbSession, signed_in: PasswordSignedIn):
    service.end_session(
        session=session,
        browser=signed_in.browser,
        user=signed_in.user,
        actor=request_actor(request, user_id=signed_in.user.id),
    )
    session.commit()
    response = see_other(request, "/login?notice=signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# The person's own account ------------------------------------------------------------------


@router.get("/account")
def account_page(request: Request, signed_in: SignedInSession, notice: str = ""):
    return render(request, "account/account.html", {"notice": NOTICES.get(notice, "")})


@router.post("/account/password")
def change_password(
    request: Request,
    session: DbSession,
    signed_in: SignedInSession,
    current_password: Password,
    new_password: Password,
    confirm_password: Password,
):
    try:
        if new_password != confirm_password:
            raise InvalidInput("The new password and its confirmation do not match.")
        service.change_password(
            session=session,
            user=signed_in.user,
            current=current_password,
            new=new_password,
            keep_session_id=signed_in.browser.id,
            actor=request_actor(request, user_id=signed_in.user.id),
        )
    except DomainError as exc:
        context = {"password_error": exc.detail}
        return render(
            request, "account/account.html", context, block="password", status_code=exc.status_code
        )
    session.commit()
    return see_other(request, "/account?notice=password-changed")


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


@router.get("/account/second-factor")
def second_factor_setup_page(request: Request, session: DbSession, signed_in: PasswordSignedIn):
    user = signed_in.user
    if user.has_second_factor:
        return render(request, "account/second_factor_setup.html", {"enrolled": True})
    secret_key = request.app.state.settings.secret_key
    uri = (
        service.provisioning_uri(user=user, secret_key=secret_key)
        if user.totp_secret
        else service.begin_second_factor(session=session, user=user, secret_key=secret_key)
    )
    session.commit()
    seed = service.totp_seed(user=user, secret_key=secret_key)
    context = {"enrolled": False, "qr": _qr_svg(uri), "secret": seed}
    return render(request, "account/second_factor_setup.html", context)


@router.post("/account/second-factor")
def second_factor_setup(
    request: Request, session: DbSession, signed_in: PasswordSignedIn, code: Code
):
    user = signed_in.user
    actor = request_actor(request, user_id=user.id)
    secret_key = request.app.state.settings.secret_key
    try:
        service.confirm_second_factor(
            session=session, user=user, code=code, secret_key=secret_key, actor=actor
        )
    except DomainError as exc:
        context = {
            "enrolled": user.has_second_factor,
            "qr": (
                _qr_svg(service.provisioning_uri(user=user, secret_key=secret_key))
                if user.totp_secret
                else ""
            ),
            "secret": service.totp_seed(user=user, secret_key=secret_key),
            "error": exc.detail,
        }
        return render(
            request, "account/second_factor_setup.html", context, status_code=exc.status_code
        )
    signed_in.browser.second_factor_at = user.totp_enabled_at
    session.add(signed_in.browser)
    session.commit()
    return see_other(request, "/account?notice=second-factor-on")
