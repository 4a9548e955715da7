"""How errors reach people: problem+json under /api, an HTML page elsewhere."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.errors import (
    DATABASE_BUSY_API,
    DATABASE_BUSY_PAGE,
    DATABASE_BUSY_RETRY_AFTER_SECONDS,
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE,
    DATABASE_UNAVAILABLE_API,
    DatabaseBusy,
    DomainError,
    NotAuthenticated,
    SecondFactorRequired,
    database_error_reason,
    is_database_busy,
    is_database_unavailable,
)
from app.core.templating import render

log = logging.getLogger("haven.errors")

PROBLEM_JSON = "application/problem+json"


def is_api_request(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem_response(
    status: int, title: str, detail: str, *, errors: list[dict] | None = None, headers=None
) -> JSONResponse:
    body: dict = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
        for err in exc.errors()
    ]


def _html_error(
    request: Request, status: int, title: str, detail: str, *, headers: dict | None = None
) -> Response:
    # An htmx request shows the message in the page's #flash region, whatever its target.
    headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", **(headers or {})}
    return render(
        request,
        "errors/error.html",
        {"title": title, "detail": detail},
        block="error",
        status_code=status,
        headers=headers,
    )


def _login_redirect(request: Request, target: str) -> Response:
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _domain_error(request: Request, exc: DomainError) -> Response:
    if is_api_request(request):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        headers |= exc.headers
        return problem_response(
            exc.status_code, exc.title, exc.detail, errors=exc.errors, headers=headers
        )
    if isinstance(exc, SecondFactorRequired):
        return _login_redirect(request, exc.detail)
    if isinstance(exc, NotAuthenticated):
        return _login_redirect(request, "/login")
    return _html_error(request, exc.status_code, exc.title, exc.detail)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = _field_errors(exc)
    if is_api_request(request):
        return problem_response(
            422, "Invalid input", "The request has invalid fields.", errors=errors
        )
    detail = "; ".join(f"{e['field'] or 'request'}: {e['message']}" for e in errors)
    return _html_error(request, 422, "Invalid input", detail)


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method the address answers to. Starlette's own `Allow` names the methods of the
    first route whose path matched, but Haven has a route a method (GET and PATCH of an
    incident are two routes)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404:
        detail = "There is no page at this address."
    headers = exc.headers
    if exc.status_code == 405:  # every 405 says what the address does answer to (RFC 9110)
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    if is_api_request(request):
        return problem_response(exc.status_code, title, detail, headers=headers)
    return _html_error(request, exc.status_code, title, detail, headers=headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After, never a stack trace: an outage (or SQLite busy with other writers)
    is not a bug in the request."""
    busy = is_database_busy(exc)
    log.warning(
        "database %s (request %s): %s",
        "busy" if busy else "unavailable",
        getattr(request.state, "request_id", "-"),
        database_error_reason(exc),
    )
    wait = DATABASE_BUSY_RETRY_AFTER_SECONDS if busy else DATABASE_RETRY_AFTER_SECONDS
    headers = {"Retry-After": str(wait)}
    if is_api_request(request):
        detail = DATABASE_BUSY_API if busy else DATABASE_UNAVAILABLE_API
        return problem_response(503, "Service unavailable", detail, headers=headers)
    title = "Haven is busy" if busy else "Haven is unavailable"
    detail = DATABASE_BUSY_PAGE if busy else DATABASE_UNAVAILABLE
    try:
        return _html_error(request, 503, title, detail, headers=headers)
    except Exception:  # the page itself needed the database: say it plainly instead
        log.warning("could not render the unavailable page", exc_info=True)
        body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{detail}</p>"
        return HTMLResponse(body, status_code=503, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc) or is_database_busy(exc):
        return await _database_unavailable(request, exc)
    log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
    detail = "Something went wrong on our side. Nothing was saved; please try again."
    if is_api_request(request):
        return problem_response(500, "Internal server error", detail)
    return _html_error(request, 500, "Internal server error", detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(DatabaseBusy, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
