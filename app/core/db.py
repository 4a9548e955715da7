"""Database engine and sessions. SQLite for one machine, PostgreSQL for production."""

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from app.core.errors import NotFound
from app.core.types import MAX_ROW_ID

T = TypeVar("T")


def make_engine(database_url: str, **kwargs) -> Engine:
    if database_url.startswith("sqlite"):
        return _make_sqlite_engine(database_url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(database_url, **kwargs)


def _make_sqlite_engine(database_url: str, **kwargs) -> Engine:
    path = database_url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url, connect_args={"check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy own BEGIN so SAVEPOINTs work (pysqlite would otherwise interfere).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        # IMMEDIATE: take the write lock at the start, so two connections (a request and the
        # worker) wait for each other instead of failing when a reader later writes. A page
        # that only reads begins DEFERRED and never waits for a writer (WAL lets both run).
        connection.exec_driver_sql("BEGIN" if options.get(READING) else "BEGIN IMMEDIATE")

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_while_reading(connection, _cursor, statement, *_args):
        # A write here could fail at random, whenever another connection had written first.
        if connection.get_execution_options().get(READING) and _is_write(statement):
            raise RuntimeError("a request that reads wrote without calling begin_writing first")

    return engine


# The execution option that marks a session as one that reads: on SQLite its transactions begin
# DEFERRED, without the write lock (see `begin_writing`).
READING = "haven_reading"
READ_METHODS = frozenset({"GET", "HEAD"})
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)


def get_session(request: Request) -> Iterator[Session]:
    options = {READING: True} if request.method in READ_METHODS else {}
    with Session(
        request.app.state.engine, expire_on_commit=False, execution_options=options
    ) as session:
        yield session


def begin_writing(session: Session) -> None:
    """Before a page that reads writes something (a session's last use, an audit entry): end the
    reading transaction, and begin the next ones with SQLite's write lock. A reading transaction
    cannot take that lock once another connection has written since it began."""
    if session.execution_options.get(READING):
        session.commit()
        session.execution_options = session.execution_options.union({READING: False})


DbSession = Annotated[Session, Depends(get_session)]


def get_for_school(
    session: Session,
    model: type[T],
    row_id: int,
    school_id: int,
    what: str,
    *,
    for_update: bool = False,
) -> T:
    """A row by id, only if it belongs to the school: anything else is simply not found.

    `for_update` locks the row until the transaction ends (PostgreSQL; SQLite's writers are
    serialised anyway), for a check-then-write such as `If-Match`."""
    if not 0 < row_id <= MAX_ROW_ID:  # could not be an id: asking the database would fail
        raise NotFound(f"No such {what}.")
    row = session.get(model, row_id, with_for_update=for_update or None)
    if row is None or row.school_id != school_id:
        raise NotFound(f"No such {what}.")
    return row
