"""SQLite, as one school's single machine runs it: a request and the worker wait for each other."""

import threading
import time

import pytest
import sqlalchemy as sa

from app.auth.models import School
from app.core.db import get_for_school, make_engine
from app.core.errors import NotFound


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
