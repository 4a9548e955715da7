"""Alembic environment: the URL comes from Haven's settings, the schema from app.models."""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import app.models  # noqa: F401 - registers every table on the metadata
from app.core.config import get_settings
from app.core.db import make_engine
from app.core.migrations import check_foreign_keys, sqlite_foreign_keys_off

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite alters tables by copying them
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=get_settings().database_url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed over by tests and by `haven migrate`
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)
        return
    engine = make_engine(get_settings().database_url)
    with engine.connect() as connection, sqlite_foreign_keys_off(connection):
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
