"""One template serves a full page and its htmx fragments."""

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import pass_context
from jinja2_fragments.fastapi import Jinja2Blocks
from sqlalchemy import inspect
from sqlmodel import Session

from app.core.config import resource_dir
from app.core.csrf import csrf_token_for, set_csrf_cookie
from app.core.db import READING

templates = Jinja2Blocks(directory=str(resource_dir("templates")))
COMPONENTS = ("forms", "widgets")


@pass_context
def _format_datetime(context, value: datetime | None, empty: str = "—") -> str:
    """A time as the school reads it: in its own time zone."""
    if not value:
        return empty
    zone = ZoneInfo(context["request"].app.state.settings.timezone)
    return value.astimezone(zone).strftime("%d %b %Y, %H:%M")


templates.env.filters["datetime"] = _format_datetime


def is_htmx(request: Request) -> bool:
    """An htmx request that wants a fragment (boosted requests want the whole page)."""
    return (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"
    )


def _loaded(request: Request, *rows) -> None:
    """A rollback expires the rows a request read, and once the request's session has closed
    (an error page rendered after a refusal) they cannot be read again from it: read them
    again in a short session of their own, so that the page still has its header."""
    stale = [row for row in rows if inspect(row).detached and inspect(row).expired_attributes]
    if not stale:
        return
    with Session(request.app.state.engine, execution_options={READING: True}) as session:
        for row in stale:
            session.add(row)
            session.refresh(row)


def render(
    request: Request,
    template: str,
    context: dict | None = None,
    *,
    block: str | list[str] | None = None,
    status_code: int = 200,
    headers: dict | None = None,
) -> HTMLResponse:
    """Render `template`; an htmx request gets only `block` (or several, joined) when named."""
    signed_in = getattr(request.state, "signed_in", None)
    if signed_in:
        _loaded(request, signed_in.user, signed_in.browser)
    page = {
        "request": request,
        "csrf_token": csrf_token_for(request),
        "current_user": signed_in.user if signed_in else None,
        "fully_signed_in": bool(
            signed_in
            and (not signed_in.user.role.needs_second_factor or signed_in.second_factor_done)
        ),
        "school_name": request.app.state.settings.school_name,
        **(context or {}),
    }
    # The shared macros, bound to this page's context, so that fragments can use them too
    # (a block rendered alone does not run the template's own imports).
    for name in COMPONENTS:
        page[name] = templates.get_template(f"components/{name}.html").make_module(page)
    fragments = {}
    if block and is_htmx(request):
        fragments = {"block_names": block} if isinstance(block, list) else {"block_name": block}
    response = templates.TemplateResponse(
        request, template, page, status_code=status_code, headers=headers, **fragments
    )
    response.headers["Vary"] = "HX-Request"
    set_csrf_cookie(request, response)
    return response
