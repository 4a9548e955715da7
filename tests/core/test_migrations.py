"""The schema comes only from Alembic migrations, which match the models on both databases."""

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

import app.models  # noqa: F401
from app.audit.service import GENESIS_HASH, Actor, _canonical
from app.auth.models import Role, Scope
from app.core import keys
from app.core.db import make_engine
from app.core.migrations import (
    alembic_config,
    check_foreign_keys,
    current_revision,
    downgrade,
    head_revision,
    sqlite_foreign_keys_off,
    upgrade,
)
from app.incidents.models import Incident, TimelineKind
from app.incidents.service import add_entry
from app.jobs.models import JobRun
from tests.conftest import TEST_SECRET, keyed_engine
from tests.factories import make_incident, make_token, make_user

ROOT = Path(__file__).resolve().parents[2]


def test_models_and_migrations_do_not_drift(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert current_revision(connection) == head_revision()


def test_alembic_check_reports_no_drift(engine):
    with engine.connect() as connection:
        command.check(alembic_config(connection))  # raises when autogenerate finds changes


def test_migrations_go_down_and_up_again(db):
    connection = db.connection()
    command.downgrade(alembic_config(connection), "base")
    assert current_revision(connection) is None
    command.upgrade(alembic_config(connection), "head")
    assert current_revision(connection) == head_revision()


def test_migration_files_have_dated_names():
    names = [p.name for p in (ROOT / "migrations" / "versions").glob("*.py")]
    assert names
    for name in names:
        assert re.match(r"^\d{4}_\d{2}_\d{2}_\d{4}-\w+\.py$", name), name


def test_the_application_never_creates_tables_itself():
    for path in (ROOT / "app").rglob("*.py"):
        assert "create_all" not in path.read_text(), path


# Upgrading keeps every row ---------------------------------------------------------------------

REVISIONS = [
    script.revision
    for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
]
WHEN = datetime(2026, 11, 20, 8, 30, 15, tzinfo=UTC)


def _table_as_stored(name: str, reflected: sa.Table) -> sa.Table:
    """The table with the columns it has at this revision, typed as the models type them (so that
    values are written as Haven writes them), or as the database says for any the models lack."""
    model = SQLModel.metadata.tables.get(name)
    columns = []
    for column in reflected.columns:
        typed = model.c[column.name] if model is not None and column.name in model.c else column
        columns.append(sa.Column(column.name, typed.type, primary_key=column.primary_key))
    return sa.Table(name, sa.MetaData(), *columns)


def _value(name: str, column: sa.Column, n: int, reflected: sa.Table, ids: dict) -> object:
    """A plausible value for row n (of 0 and 1); the rows differ in every unique column."""
    targets = [fk.column.table.name for fk in reflected.c[column.name].foreign_keys]
    if targets:
        return ids[targets[0]][n]
    model = SQLModel.metadata.tables.get(name)
    later = (
        model.c[column.name].foreign_keys if model is not None and column.name in model.c else ()
    )
    if any(fk.column.table.name not in ids for fk in later):
        return None  # refers to a table a later revision makes: nothing to point at yet
    kind = column.type
    if isinstance(kind, sa.Enum):
        return kind.enum_class(kind.enums[n]) if kind.enum_class else kind.enums[n]
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.Boolean):
        return n == 0
    if isinstance(kind, sa.Integer):
        return n + 1 if column.primary_key else 100 + n
    if isinstance(kind, sa.DateTime):
        return WHEN + timedelta(days=n)
    if isinstance(kind, sa.Date):
        return WHEN.date() + timedelta(days=n)
    if isinstance(kind, sa.JSON):
        return {"n": n, "words": ["Zoë's", "note"]}
    if isinstance(kind, sa.String):
        text = f"{column.name} {n} — Zoë's" if kind.length is None else f"{column.name}{n}"
        return text[-kind.length :] if kind.length else text
    raise AssertionError(f"no test value for {name}.{column.name} ({column.type!r})")


# Derived tables of earlier revisions that a later one replaced.
RETIRED_DERIVED = {"incident_status_count"}  # by incident_status_change, in 0013


def _derived(name: str) -> bool:
    model = SQLModel.metadata.tables.get(name)
    return name in RETIRED_DERIVED or (model is not None and model.info.get("derived", False))


def _fill_new_tables(engine: sa.Engine, written: dict[str, list[dict]]) -> None:
    """Two rows in every table that has none yet, in an order that satisfies foreign keys."""
    ids = {name: [row["id"] for row in rows] for name, rows in written.items() if "id" in rows[0]}
    with engine.begin() as connection:
        metadata = sa.MetaData()
        metadata.reflect(bind=connection)
        for reflected in metadata.sorted_tables:
            name = reflected.name
            if name in written or name == "alembic_version" or _derived(name):
                continue  # a derived table is filled by the triggers of the table it counts
            table = _table_as_stored(name, reflected)
            rows = [
                {c.name: _value(name, c, n, reflected, ids) for c in table.columns}
                for n in range(2)
            ]
            if name == "audit_event":
                _as_chain(rows)
            connection.execute(table.insert(), rows)
            written[name] = rows
            if "id" in table.c:
                ids[name] = [row["id"] for row in rows]


REKEYED: dict[str, str] = {}  # each keyed hash 0017 gives an audit event: the plain one it had


def _as_chain(rows: list[dict]) -> None:
    """Audit events as Haven chained them before 0017 (plain SHA-256), noting the keyed hashes
    0017 replaces them with."""
    plain = keyed = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row.update(seq=seq, prev_hash=plain)
        event = SimpleNamespace(**{**row, "prev_hash": keyed})
        row["hash"] = plain = hashlib.sha256(_canonical(SimpleNamespace(**row))).hexdigest()
        keyed = keys.keyed_hash(TEST_SECRET, keys.AUDIT_CHAIN, _canonical(event))
        REKEYED[keyed] = plain


# Columns a migration changes on purpose, with how to read the value written before it.
TRANSFORMED = {
    ("audit_event", "hash"): lambda stored: REKEYED.get(stored, stored),
    ("audit_event", "prev_hash"): lambda stored: REKEYED.get(stored, stored),
    ("user", "totp_secret"): lambda stored: (
        keys.unseal(TEST_SECRET, keys.TOTP_SEEDS, stored)
        if stored and stored.startswith("gAAAAA")  # sealed, from 0016 on
        else stored
    ),
    # Gone from the models since 0016: SQLite reads it back without its zone (UTC).
    ("user", "locked_until"): lambda stored: stored.replace(tzinfo=stored.tzinfo or UTC),
}


def _assert_rows_kept(engine: sa.Engine, written: dict[str, list[dict]], revision: str) -> None:
    with engine.connect() as connection:
        metadata = sa.MetaData()
        metadata.reflect(bind=connection)
        for name, rows in written.items():
            table = _table_as_stored(name, metadata.tables[name])
            kept = [column for column in rows[0] if column in table.c]  # not those dropped
            stored = [
                {
                    column: TRANSFORMED.get((name, column), lambda value: value)(row[column])
                    for column in kept
                }
                for row in connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            expected = [{column: row[column] for column in kept} for row in rows]
            assert stored == expected, f"{name} changed on the way to {revision}"


def test_upgrading_a_database_of_the_first_revision_keeps_every_row(scratch_database):
    engine = make_engine(scratch_database())
    upgrade(engine, REVISIONS[0])
    written: dict[str, list[dict]] = {}
    _fill_new_tables(engine, written)
    assert {"school", "person", "user", "audit_event"} <= written.keys()
    upgrade(engine, "head", secret_key=TEST_SECRET)
    _assert_rows_kept(engine, written, "head")
    engine.dispose()


def test_every_migration_keeps_the_rows_written_before_it(scratch_database):
    """From each revision to the next, with rows in every table that exists by then."""
    engine = make_engine(scratch_database())
    written: dict[str, list[dict]] = {}
    for revision in REVISIONS:
        upgrade(engine, revision, secret_key=TEST_SECRET)
        _assert_rows_kept(engine, written, revision)
        _fill_new_tables(engine, written)
    tables = SQLModel.metadata.sorted_tables
    assert written.keys() == {table.name for table in tables if not _derived(table.name)}
    engine.dispose()


def test_a_migration_on_sqlite_may_not_leave_a_row_referring_to_nothing(tmp_path):
    """Foreign keys are off while SQLite migrates (it alters tables by copying them), so the
    references are checked before the commit instead."""
    engine = make_engine(f"sqlite:///{tmp_path / 'haven.db'}")
    upgrade(engine, REVISIONS[0])
    orphan = (
        "INSERT INTO person (external_id, kind, forename, surname, is_active, school_id, "
        "created_at, updated_at) VALUES ('P1', 'pupil', 'A', 'B', 1, 99, '2026-01-01', "
        "'2026-01-01')"
    )
    with engine.connect() as connection, sqlite_foreign_keys_off(connection):
        with connection.begin():
            connection.exec_driver_sql(orphan)  # school 99 does not exist
        with pytest.raises(RuntimeError, match="person row 1 refers to school"):
            check_foreign_keys(connection)
    engine.dispose()


def test_the_first_action_time_is_filled_in_from_the_chronology(committed_engine):
    """Migration 0015 keeps the time of each incident's first action on the incident."""
    with Session(committed_engine, expire_on_commit=False) as session:
        dsl = make_user(session, role=Role.dsl)
        acted, untouched = make_incident(session), make_incident(session)
        mis = Actor(token_id=make_token(session, Scope.incidents_write)[1].id)
        start = acted.reported_at
        for kind, actor, hours in [
            (TimelineKind.escalation, Actor(user_id=dsl.id), 1),  # Haven's doing, not a person's
            (TimelineKind.note, mis, 2),  # the MIS's
            (TimelineKind.decision, Actor(user_id=dsl.id), 3),
            (TimelineKind.note, Actor(user_id=dsl.id), 4),
        ]:
            add_entry(
                session=session,
                incident=acted,
                kind=kind,
                text="Done.",
                actor=actor,
                at=start + timedelta(hours=hours),
            )
        session.commit()
    downgrade(committed_engine, "0014", secret_key=TEST_SECRET)
    upgrade(committed_engine, "head", secret_key=TEST_SECRET)
    with Session(committed_engine) as session:
        assert session.get(Incident, acted.id).first_action_at == start + timedelta(hours=3)
        assert session.get(Incident, untouched.id).first_action_at is None


def test_seeds_kept_in_clear_are_sealed_by_the_upgrade(scratch_database):
    """Migration 0016 encrypts the TOTP seeds that earlier revisions kept in clear."""
    engine = keyed_engine(scratch_database())
    upgrade(engine, "0015")
    with Session(engine, expire_on_commit=False) as session:
        user = make_user(session, role=Role.dsl, second_factor=False)
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with engine.begin() as connection:
        connection.execute(
            sa.text('UPDATE "user" SET totp_secret = :seed WHERE id = :id'),
            {"seed": seed, "id": user.id},
        )
    upgrade(engine, "head", secret_key=TEST_SECRET)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text('SELECT totp_secret FROM "user" WHERE id = :id'), {"id": user.id}
        ).scalar_one()
    engine.dispose()
    assert stored != seed and keys.unseal(TEST_SECRET, keys.TOTP_SEEDS, stored) == seed


def test_a_lease_held_in_the_job_columns_moves_to_its_own(scratch_database):
    """Migration 0018: a lease kept its holder in `last_error` and its expiry in
    `last_finished_at`; they move to `lease_holder` and `lease_until`, and jobs keep theirs."""
    engine = make_engine(scratch_database())
    upgrade(engine, "0017", secret_key=TEST_SECRET)
    until = WHEN + timedelta(seconds=30)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO job_run (name, last_started_at, last_finished_at, last_error)"
                " VALUES (:name, :started, :finished, :error)"
            ),
            [
                {"name": "lease:worker", "started": WHEN, "finished": until, "error": "host:1:2"},
                {"name": "checklists.yearly", "started": WHEN, "finished": WHEN, "error": "Boom"},
            ],
        )
    upgrade(engine, "head", secret_key=TEST_SECRET)
    with Session(engine) as session:
        lease = session.get(JobRun, "lease:worker")
        job = session.get(JobRun, "checklists.yearly")
        assert (lease.lease_holder, lease.lease_until) == ("host:1:2", until)
        assert (lease.last_error, lease.last_finished_at) == ("", None)
        assert (job.lease_holder, job.lease_until) == (None, None)
        assert (job.last_error, job.last_finished_at) == ("Boom", WHEN)
    engine.dispose()
