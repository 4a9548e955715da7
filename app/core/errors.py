"""Domain exceptions, and how to tell a database that is busy or down from a bug.

How they reach people (problem+json under /api, an HTML page elsewhere) is
`app.core.error_handlers`.
"""

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class DomainError(Exception):
    """Raised by services; routes let it propagate and `app.core.error_handlers` answers."""

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
