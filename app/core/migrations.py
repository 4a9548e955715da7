"""Running Alembic from Haven itself (the CLI, readiness checks and the tests)."""

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from app.core.config import get_settings, resource_dir


def alembic_config(connection: Connection | None = None, secret_key: str | None = None) -> Config:
    root = resource_dir("migrations").parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    if secret_key is not None:
        config.attributes["secret_key"] = secret_key
    return config


def migration_secret_key() -> str:
    """The HAVEN_SECRET_KEY a running migration seals or keys existing rows with: the one
    `upgrade` was given, else the configured one. Ask for it only when there are rows to change,
    so an empty database migrates without any key."""
    from alembic import op

    return op.get_context().config.attributes.get("secret_key") or get_settings().secret_key


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """While migrations run on SQLite, foreign keys are not enforced row by row.

    SQLite changes a table by copying it and dropping the original (Alembic's batch mode). With
    foreign keys enforced, dropping a table that other rows refer to fails, so a school with data
    could not upgrade. The setting only changes outside a transaction, hence on the connection
    before it begins; the migrations then end with `check_foreign_keys`."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection  # autocommit: Haven issues BEGIN itself
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """On SQLite, refuse to commit migrations that left a row referring to a missing row."""
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL checks every reference as the migration runs
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise RuntimeError(
            f"the migration would leave {len(broken)} row(s) referring to missing rows "
            f"(first: {table} row {rowid} refers to {parent}); nothing was changed"
        )


def upgrade(engine: Engine, revision: str = "head", *, secret_key: str | None = None) -> None:
    """Migrate to `revision` in one transaction: all of it happens, or none. `secret_key` is the
    key migrations that seal or re-key existing rows use (see `migration_secret_key`)."""
    with (
        engine.connect() as connection,
        sqlite_foreign_keys_off(connection),
        connection.begin(),
    ):
        command.upgrade(alembic_config(connection, secret_key), revision)


def downgrade(engine: Engine, revision: str, *, secret_key: str | None = None) -> None:
    """Migrate down to `revision`, in one transaction as `upgrade` does."""
    with (
        engine.connect() as connection,
        sqlite_foreign_keys_off(connection),
        connection.begin(),
    ):
        command.downgrade(alembic_config(connection, secret_key), revision)


def upgrade_to_head(engine: Engine, *, secret_key: str | None = None) -> None:
    upgrade(engine, "head", secret_key=secret_key)
