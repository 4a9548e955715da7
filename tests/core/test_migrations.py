"""The schema comes only from Alembic migrations, which match the models on both databases."""

import re
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.core.migrations import alembic_config, current_revision, head_revision

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
