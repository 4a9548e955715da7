"""CSRF protection for every unsafe form and htmx request (signed double-submit cookie).

A random value lives in an HttpOnly cookie; pages embed an HMAC of it keyed by the secret key,
in forms (`csrf_token`) and in the `X-CSRF-Token` header htmx sends. An attacker can neither read
the cookie nor forge the HMAC. The JSON API uses bearer tokens and is exempt.
"""

import hashlib
import hmac

from fastapi import Request, Response

from app.core.config import Settings
from app.core.errors import PermissionDenied
from app.core.security import new_token, same_secret

CSRF_COOKIE = "haven_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class CsrfRejected(PermissionDenied):
    title = "Form expired"


def _sign(settings: Settings, value: str) -> str:
    return hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def csrf_token_for(request: Request) -> str:
    """The token to embed in this response's forms, minting the cookie value if needed."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not value:
        value = new_token()
        request.state.new_csrf_cookie = value
    return _sign(request.app.state.settings, value)


def set_csrf_cookie(request: Request, response: Response) -> None:
    value = getattr(request.state, "new_csrf_cookie", None)
    if value:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            httponly=True,
            secure=request.app.state.settings.secure_cookies,
            samesite="lax",
            path="/",
        )


def rotate_csrf_cookie(request: Request, response: Response) -> None:
    """Give a fresh value at sign-in, so a value planted before it is worthless after."""
    request.state.new_csrf_cookie = new_token()
    set_csrf_cookie(request, response)


async def verify_csrf(request: Request) -> None:
    """Router dependency for HTML pages: unsafe requests must carry a valid token."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        sent = str(form.get(CSRF_FIELD, ""))
    if not cookie or not sent or not same_secret(_sign(request.app.state.settings, cookie), sent):
        raise CsrfRejected(
            "This form has expired or did not come from Haven. Go back, reload the page and "
            "try again."
        )
