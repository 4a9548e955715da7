"""SQLite on one machine: writers wait for each other, and readers wait for nobody."""

import threading
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import School, Scope
from app.core.config import Settings
from app.core.db import READING, begin_writing, get_for_school, make_engine
from app.core.errors import NotFound
from app.core.migrations import upgrade_to_head
from app.core.types import utcnow
from app.main import create_app
from tests.conftest import keyed_engine
from tests.factories import bearer, make_incident, make_token


def test_two_writers_on_sqlite_wait_instead_of_failing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    errors = []

    def bump(pause: float):
        try:
            with engine.begin() as connection:
                value = connection.execute(sa.text("SELECT n FROM counter")).scalar_one()
                time.sleep(pause)  # read, think, then write: the pattern that used to fail
                connection.execute(sa.text("UPDATE counter SET n = :n"), {"n": value + 1})
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(0.2,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar_one() == 2
    assert errors == []
    engine.dispose()


def test_a_look_without_a_transaction_does_not_wait(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'look.db'}")
    writer = engine.connect()
    writer.begin()
    writer.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    started = time.monotonic()
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as look:
        assert look.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert time.monotonic() - started < 1
    writer.rollback()
    writer.close()
    engine.dispose()


def test_an_id_no_row_could_have_is_simply_not_found(db):
    # Asking SQLite for id 2**63 used to raise OverflowError (a 500) instead.
    for row_id in (0, -1, 2**31, 2**63, 2**70):
        with pytest.raises(NotFound):
            get_for_school(db, School, row_id, 1, "school")


def _table_with_one_row(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")


def test_a_reading_session_on_sqlite_does_not_wait_for_a_writer(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'read.db'}")
    _table_with_one_row(engine)
    writer = engine.connect()
    writer.begin()  # BEGIN IMMEDIATE: the write lock, held until the end of the test
    writer.exec_driver_sql("INSERT INTO t VALUES (2)")
    with Session(engine, execution_options={READING: True}) as session:
        # Before, the read waited for the lock and failed with "database is locked".
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1
    writer.rollback()
    writer.close()
    engine.dispose()


def test_a_reading_session_writes_only_after_begin_writing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'write.db'}")
    _table_with_one_row(engine)
    with Session(engine, execution_options={READING: True}) as session:
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1
        with engine.begin() as other:  # another request writes after this one began reading
            other.exec_driver_sql("INSERT INTO t VALUES (2)")
        with pytest.raises(RuntimeError, match="begin_writing"):
            session.execute(sa.text("INSERT INTO t VALUES (3)"))
        session.rollback()
        session.execute(sa.text("SELECT count(*) FROM t")).scalar_one()
        # Without the commit in begin_writing this write would fail with SQLITE_BUSY_SNAPSHOT,
        # since the reading transaction's view is older than the other's commit.
        begin_writing(session)
        session.execute(sa.text("INSERT INTO t VALUES (3)"))
        session.commit()
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 3
    engine.dispose()


def test_the_api_list_answers_on_sqlite_while_another_request_writes(tmp_path):
    engine = keyed_engine(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade_to_head(engine)
    with Session(engine, expire_on_commit=False) as session:
        title = make_incident(session).title
        raw, token = make_token(session, Scope.incidents_read)
        token.last_used_at = utcnow()  # its use is noted at most once a minute
        session.add(token)
        session.commit()
    settings = Settings(
        dev=True, database_url=str(engine.url), evidence_dir=tmp_path / "evidence", worker="off"
    )
    app = create_app(settings=settings, engine=engine)
    writer = engine.connect()
    writer.begin()
    writer.exec_driver_sql("UPDATE incident SET title = 'Being edited'")
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/api/v1/incidents", headers=bearer(raw))
    writer.rollback()
    writer.close()
    assert response.status_code == 200
    assert [i["title"] for i in response.json()["data"]] == [title]
    engine.dispose()
