"""Database engine and sessions. SQLite for one machine, PostgreSQL for production."""

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
from anyio import from_thread, to_thread
from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.core.errors import DatabaseBusy, NotFound, is_database_busy
from app.core.types import MAX_ROW_ID

T = TypeVar("T")

# How long a write on SQLite waits for the writers before it (in this process, then in SQLite
# for other processes such as `haven worker`) before it is refused as "Haven is busy".
WRITE_WAIT_SECONDS = 30.0


def make_engine(database_url: str, *, write_wait: float = WRITE_WAIT_SECONDS, **kwargs) -> Engine:
    if database_url.startswith("sqlite"):
        return _make_sqlite_engine(database_url, write_wait, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(database_url, **kwargs)


class WriterQueue:
    """SQLite lets one connection write at a time. The writers of this process wait here for
    their turn, first come first served, instead of in SQLite, which lets waiters in at random
    and fails whoever waited longest. The turn is handed from one writer to the next; threads
    wait with `acquire`, requests on the event loop with `acquire_async` (holding no thread)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[Callable[[], None]] = deque()

    def _join(self, wake: Callable[[], None]) -> bool:
        """Take the turn if it is free (True), else queue `wake`, called with the turn."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            self._waiting.append(wake)
            return False

    def _leave(self, wake: Callable[[], None]) -> bool:
        """Stop waiting. True when the turn was handed over meanwhile: the waiter holds it."""
        with self._mutex:
            if wake in self._waiting:
                self._waiting.remove(wake)
                return False
            return True

    def release(self) -> None:
        with self._mutex:
            if not self._waiting:
                self._held = False
                return
            wake = self._waiting.popleft()
        wake()

    def acquire(self, timeout: float) -> bool:
        handed = threading.Event()
        wake = handed.set
        if self._join(wake) or _wait_lending_thread(handed, timeout):
            return True
        return self._leave(wake)

    async def acquire_async(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        handed = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(handed.set)

        if self._join(wake):
            return True
        try:
            with anyio.move_on_after(timeout):
                await handed.wait()
                return True
        except BaseException:  # the request was cancelled (its client went away)
            if self._leave(wake):
                self.release()
            raise
        return self._leave(wake)


def _wait_lending_thread(handed: threading.Event, timeout: float) -> bool:
    """Wait in a thread. A thread of the server's pool gives its place in the pool back while it
    waits, so that the writer holding the turn always finds a thread to finish its request."""
    try:
        from_thread.run_sync(_grow_thread_pool, 1)
    except RuntimeError:  # not a thread of the server's pool: the worker, a command
        return handed.wait(timeout)
    try:
        return handed.wait(timeout)
    finally:
        with contextlib.suppress(Exception):  # the server is stopping
            from_thread.run_sync(_grow_thread_pool, -1)


def _grow_thread_pool(change: int) -> None:
    to_thread.current_default_thread_limiter().total_tokens += change


_QUEUES: dict[str, WriterQueue] = {}
_QUEUES_MUTEX = threading.Lock()


def _queue_for(path: str) -> WriterQueue:
    """One queue per database file, shared by every engine of this process on that file."""
    if not path or path == ":memory:":
        return WriterQueue()
    key = str(Path(path).resolve())
    with _QUEUES_MUTEX:
        return _QUEUES.setdefault(key, WriterQueue())


# Execution options: WRITERS, on a SQLite engine, is its (queue, seconds to wait); TURN, on a
# session, says the request holds the turn already (see get_session); TURN_HELD, on a
# connection, that its transaction took the turn and gives it back when it ends.
WRITERS = "haven_writers"
TURN = "haven_turn"
TURN_HELD = "haven_turn_held"


def _make_sqlite_engine(database_url: str, write_wait: float, **kwargs) -> Engine:
    path = database_url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url, connect_args={"check_same_thread": False}, **kwargs)
    queue = _queue_for(path)
    engine.update_execution_options(**{WRITERS: (queue, write_wait)})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy own BEGIN so SAVEPOINTs work (pysqlite would otherwise interfere).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # Another process (`haven worker`, a second web worker) may be writing: wait for it.
        cursor.execute(f"PRAGMA busy_timeout={int(write_wait * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        # A page that only reads begins DEFERRED and never waits for a writer (WAL lets both
        # run). A writer takes its turn, then the write lock at the start (IMMEDIATE), so two
        # writers wait for each other instead of failing when a reader later writes.
        if options.get(READING):
            connection.exec_driver_sql("BEGIN")
            return
        take = options.get(TURN) is None
        if take:
            if not queue.acquire(write_wait):
                raise DatabaseBusy()
            connection.info[TURN_HELD] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as exc:
            _give_back(connection)
            if is_database_busy(exc):
                raise DatabaseBusy() from exc
            raise

    def _give_back(connection, *_args):
        if connection.info.pop(TURN_HELD, False):
            queue.release()

    for name in ("commit", "rollback"):
        event.listen(engine, name, _give_back)

    @event.listens_for(engine, "checkin")
    def _give_back_at_checkin(_dbapi_connection, record):
        # In case a transaction ended without commit or rollback (a connection invalidated).
        if record.info.pop(TURN_HELD, False):
            queue.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_while_reading(connection, _cursor, statement, *_args):
        options = connection.get_execution_options()
        if options.get(READING) and _is_write(statement):
            if options.get(BUSY):
                raise DatabaseBusy()
            # A write here could fail at random, whenever another connection had written first.
            raise RuntimeError("a request that reads wrote without calling begin_writing first")

    return engine


# The execution option that marks a session as one that reads: on SQLite its transactions begin
# DEFERRED, without the write lock (see `begin_writing`). BUSY marks a request that could not
# have its turn to write: it reads, and its first write is refused as "Haven is busy".
READING = "haven_reading"
BUSY = "haven_busy"
READ_METHODS = frozenset({"GET", "HEAD"})
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session. On SQLite a request that may write waits for its turn here,
    holding no thread, and keeps it until its end, so it never waits again halfway."""
    engine = request.app.state.engine
    writers = engine.get_execution_options().get(WRITERS)
    turn = None
    if request.method in READ_METHODS:
        options = {READING: True}
    elif writers is None:  # PostgreSQL: row locks, and no turns
        options = {}
    else:
        queue, wait = writers
        if await queue.acquire_async(wait):
            turn = queue
            options = {TURN: True}
        else:
            options = {READING: True, BUSY: True}
    session = Session(engine, expire_on_commit=False, execution_options=options)
    try:
        yield session
    finally:
        try:
            await run_in_threadpool(session.close)
        finally:
            if turn is not None:
                turn.release()


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _read_again(session: Session) -> None:
    """A read request that wrote reads again once its write has ended: it gives SQLite's write
    lock (and its turn) back at once, instead of holding them while the page is made."""
    if session.info.pop(WROTE_WHILE_READING, False):
        session.execution_options = session.execution_options.union({READING: True})


WROTE_WHILE_READING = "haven_wrote_while_reading"


def begin_writing(session: Session) -> None:
    """Before a page that reads writes something (a session's last use, an audit entry): end the
    reading transaction, and begin the next ones with SQLite's write lock. A reading transaction
    cannot take that lock once another connection has written since it began."""
    if session.execution_options.get(BUSY):
        raise DatabaseBusy()
    if session.execution_options.get(READING):
        session.commit()
        session.execution_options = session.execution_options.union({READING: False})
        session.info[WROTE_WHILE_READING] = True


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
