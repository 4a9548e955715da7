"""Domain exceptions, and how they reach people: problem+json under /api, an HTML page elsewhere."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("haven.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Raised by services; routes let it propagate and the handlers below answer."""

    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status_code = 404
    title = "Not found"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class PermissionDenied(DomainError):
    status_code = 403
    title = "Forbidden"


class InvalidInput(DomainError):
    status_code = 422
    title = "Invalid input"


class TooManyAttempts(DomainError):
    status_code = 429
    title = "Too many attempts"


class NotAuthenticated(DomainError):
    status_code = 401
    title = "Not authenticated"


class SecondFactorRequired(DomainError):
    """A signed-in DSL or admin who has not yet given (or set up) their second factor."""

    status_code = 401
    title = "Second factor required"


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
    from app.core.templating import render  # imported late: templating imports auth helpers

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


# How long a client should wait before trying again when the database cannot be reached: long
# enough for PostgreSQL to restart or fail over, short enough for someone reporting a concern.
DATABASE_RETRY_AFTER_SECONDS = 30
DATABASE_UNAVAILABLE = (
    "Haven cannot reach its database just now, so this could not be done. Please try again in "
    "a minute; if this keeps happening, tell your IT technician."
)
DATABASE_UNAVAILABLE_API = (
    "Haven cannot reach its database just now. Send the request again after the wait "
    "Retry-After gives, with the same Idempotency-Key if it had one."
)


# SQLite was busy with other writers for longer than Haven waits (see app/core/db.py): the
# database is there, and the same request will very likely succeed in a moment.
DATABASE_BUSY_RETRY_AFTER_SECONDS = 5
_BUSY = "Haven is busy saving other people's changes just now, so this was not saved."
DATABASE_BUSY = (
    f"{_BUSY} Nothing you entered is lost: check it below and send it again in a moment."
)
DATABASE_BUSY_PAGE = f"{_BUSY} Go back and send it again in a moment."
DATABASE_BUSY_API = (
    "Haven is busy with other writes just now, and nothing was saved. Send the request again "
    "after the wait Retry-After gives, with the same Idempotency-Key if it had one."
)


class DatabaseBusy(DomainError):
    """A write that could not have its turn on SQLite in time; nothing was written."""

    status_code = 503
    title = "Haven is busy"

    def __init__(self, detail: str = DATABASE_BUSY):
        super().__init__(detail)
        self.headers = {"Retry-After": str(DATABASE_BUSY_RETRY_AFTER_SECONDS)}


def is_database_busy(exc: BaseException) -> bool:
    """SQLite stayed locked by another writer (another process) for longer than Haven waits."""
    if isinstance(exc, DatabaseBusy):
        return True
    name = getattr(getattr(exc, "orig", None), "sqlite_errorname", "")
    return isinstance(exc, OperationalError) and name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def is_database_unavailable(exc: BaseException) -> bool:
    """The database could not serve the request for now: it is down or restarting, the
    connection was lost, or the pool had no connection free. Nothing the request wrote was
    committed, and the same request may succeed later. (SQLite being busy is not this.)"""
    if is_database_busy(exc):
        return False
    return isinstance(exc, OperationalError | PoolTimeoutError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def database_error_reason(exc: BaseException) -> str:
    """The driver's own first line (e.g. "connection refused"), for a log line of its own."""
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return (reason.splitlines() or [type(exc).__name__])[0][:200]


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
