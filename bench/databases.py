"""Where benchmarks run: a temporary SQLite file and a throwaway PostgreSQL database."""

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def throwaway_postgres(server_url: str = POSTGRES_SERVER) -> Iterator[str]:
    server = make_url(server_url)
    name = f"haven_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def database_urls(given: str | None) -> Iterator[str]:
    """The one database asked for, or else SQLite then PostgreSQL. A PostgreSQL URL names the
    server: the benchmark runs in a throwaway database there, and leaves nothing behind."""
    if given and not given.startswith("sqlite"):
        with throwaway_postgres(given) as url:
            yield url
        return
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.db"
    with throwaway_postgres() as url:
        yield url
