"""Routers for the two faces of Haven: HTML pages (CSRF-checked) and the JSON API."""

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.csrf import verify_csrf
from app.core.templating import is_htmx


def page_router(**kwargs) -> APIRouter:
    """HTML pages: every unsafe request must carry a CSRF token; kept out of the API schema."""
    return APIRouter(
        dependencies=[Depends(verify_csrf)],
        include_in_schema=False,
        default_response_class=HTMLResponse,
        **kwargs,
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths may be redirected to after sign-in."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def see_other(request: Request, target: str) -> Response:
    """Post/redirect/get; htmx follows the redirect itself through HX-Redirect."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
