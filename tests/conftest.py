"""Fixtures: each database test runs inside a transaction rolled back at its end, on SQLite and,
when HAVEN_TEST_DATABASE_URL is set, on PostgreSQL too. The schema comes from the migrations."""

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.audit.service import use_chain_key
from app.core.config import Settings
from app.core.db import READ_METHODS, READING, get_session, make_engine
from app.core.migrations import upgrade_to_head
from app.main import create_app

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
POSTGRES_URL = os.environ.get("HAVEN_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def keyed_engine(url: str, **kwargs) -> sa.Engine:
    """An engine as Haven makes one: it chains audit events with the suite's secret key."""
    return use_chain_key(make_engine(url, **kwargs), TEST_SECRET)


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker gets a database of its own beside the one given."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).first()
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _reset_postgres_schema(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request, tmp_path_factory) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'haven-test.db'}"
        engine = make_engine(url)
    else:
        engine = make_engine(_worker_database(POSTGRES_URL))
        _reset_postgres_schema(engine)
    upgrade_to_head(engine)
    yield use_chain_key(engine, TEST_SECRET)
    engine.dispose()


@pytest.fixture
def backend(engine) -> str:
    return engine.dialect.name


@pytest.fixture
def db(engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction that is rolled back."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield session
    session.close()
    transaction.rollback()
    connection.close()


@pytest.fixture
def settings(engine, tmp_path) -> Settings:
    return Settings(
        dev=False,
        secret_key=TEST_SECRET,
        database_url=engine.url.render_as_string(hide_password=False),
        evidence_dir=tmp_path / "evidence",
        school_name="Test School",
        worker="off",
    )


@pytest.fixture
def app(settings, engine, db):
    app = create_app(settings=settings, engine=engine)

    def test_session(request: Request):
        # Like a real request: a GET reads without SQLite's write lock (see get_session), and
        # what a request leaves uncommitted is thrown away at its end.
        if request.method in READ_METHODS:
            db.commit()  # what the test itself wrote is there, as it would be for a browser
            db.execution_options = db.execution_options.union({READING: True})
        try:
            yield db
        finally:
            db.rollback()
            db.execution_options = db.execution_options.union({READING: False})

    app.dependency_overrides[get_session] = test_session
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    # https, because session cookies are Secure outside development.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def anon(app) -> Iterator[TestClient]:
    """A second browser with no cookies."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def scratch_database(engine, tmp_path) -> Iterator[Callable[[], str]]:
    """Makes empty, committed databases of the same kind, for commands that open their own."""
    admin = (
        sa.create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        if POSTGRES_URL
        else None
    )
    made: list[str] = []

    def make() -> str:
        name = f"haven_scratch_{uuid.uuid4().hex[:10]}"
        if engine.dialect.name == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    for name in made:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if admin is not None:
        admin.dispose()


@pytest.fixture
def committed_engine(scratch_database) -> Iterator[sa.Engine]:
    """An engine on an empty, migrated database of its own, for work that really commits."""
    engine = keyed_engine(scratch_database())
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Real argon2id, with the cheapest parameters, so the suite stays quick."""
    from argon2 import PasswordHasher

    from app.core import security

    original = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    security._hasher = original


class QueryCounter:
    """Counts the SQL statements sent through an engine while it is active."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.statements: list[str] = []

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            self.statements.append(statement)

    def __enter__(self) -> "QueryCounter":
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._count)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(engine) -> Callable[[], QueryCounter]:
    return lambda: QueryCounter(engine)


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright keeps an event loop on the main thread once started."""
    items.sort(key=lambda item: "browser" in item.keywords)
