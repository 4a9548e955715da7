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
        # IMMEDIATE: take the write lock at the start, so two connections (a request and the
        # worker) wait for each other instead of failing when a reader later writes.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


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
