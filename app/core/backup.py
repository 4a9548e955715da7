"""Consistent backups of the database and evidence files, and restoring them.

The database is read inside one transaction (a snapshot on PostgreSQL, a read lock on SQLite), so
the copy is consistent while Haven keeps running. Rows are written as JSON lines per table, which
also lets a school move from SQLite to PostgreSQL by restoring into the other database.
"""

import gzip
import hashlib
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

import app.models  # noqa: F401 - every table must be on the metadata
from app.core.migrations import alembic_config, current_revision
from app.core.types import utcnow

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    pass


def _encode(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enumerations
        return value.value
    return value


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tables() -> list[sa.Table]:
    """The tables a backup holds: not those derived from others by triggers, which rebuild them
    as the rows they count are restored."""
    return [t for t in SQLModel.metadata.sorted_tables if not t.info.get("derived")]


def write_backup(*, engine: Engine, evidence_dir: Path, target_root: Path) -> Path:
    """Write a new backup folder under `target_root` and return its path."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    target = target_root / f"haven-backup-{stamp}"
    if target.exists():
        raise BackupError(f"{target} already exists")
    (target / "tables").mkdir(parents=True)
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        revision = current_revision(connection)
        for table in _tables():
            path = target / "tables" / f"{table.name}.jsonl.gz"
            with gzip.open(path, "wt", encoding="utf-8") as out:
                count = 0
                order = [col for col in table.primary_key.columns]
                for row in connection.execute(sa.select(table).order_by(*order)).mappings():
                    out.write(json.dumps({k: _encode(v) for k, v in row.items()}) + "\n")
                    count += 1
            counts[table.name] = count
        connection.rollback()
    files = _copy_evidence(evidence_dir, target / "evidence")
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": utcnow().isoformat(),
        "revision": revision,
        "dialect": engine.dialect.name,
        "tables": counts,
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return target


def _copy_evidence(source: Path, target: Path) -> dict[str, str]:
    target.mkdir(parents=True)
    files: dict[str, str] = {}
    if not source.is_dir():
        return files
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.startswith("."):  # skip checks and partial uploads
            relative = path.relative_to(source).as_posix()
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
            files[relative] = _file_sha256(target / relative)
    return files


def read_manifest(backup: Path) -> dict:
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup} is not a Haven backup ({exc})") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{backup} has backup format {manifest.get('format')}, expected 1")
    return manifest


def _decode_row(table: sa.Table, row: dict) -> dict:
    decoded = {}
    for name, value in row.items():
        column_type = table.columns[name].type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            python_type = None
        if value is not None and python_type is datetime:
            value = datetime.fromisoformat(value)
        elif value is not None and python_type is date:
            value = date.fromisoformat(value)
        decoded[name] = value
    return decoded


def restore_backup(*, engine: Engine, backup: Path, evidence_dir: Path) -> dict[str, int]:
    """Load a backup into a new, empty database, creating its schema at the backup's revision."""
    manifest = read_manifest(backup)
    for relative, expected in manifest["files"].items():
        if _file_sha256(backup / "evidence" / relative) != expected:
            raise BackupError(
                f"evidence file {relative} in the backup is damaged (SHA-256 differs)"
            )
    tables = _tables()
    with engine.begin() as connection:
        revision = current_revision(connection)
        if revision is None and not sa.inspect(connection).get_table_names():
            command.upgrade(alembic_config(connection), manifest["revision"])
        elif revision != manifest["revision"]:
            raise BackupError(
                f"the database is at schema revision {revision}, the backup at "
                f"{manifest['revision']}: restore into a new, empty database"
            )
        for table in tables:
            if connection.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                raise BackupError(f"the database is not empty (table {table.name} has rows)")
        for table in tables:
            path = backup / "tables" / f"{table.name}.jsonl.gz"
            with gzip.open(path, "rt", encoding="utf-8") as rows:
                batch = [_decode_row(table, json.loads(line)) for line in rows]
            if batch:
                connection.execute(table.insert(), batch)
            if connection.dialect.name == "postgresql" and "id" in table.columns:
                _move_sequence_past_rows(connection, table)
    for relative in manifest["files"]:
        destination = evidence_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(backup / "evidence" / relative, destination)
    return manifest["tables"]


def _move_sequence_past_rows(connection: sa.Connection, table: sa.Table) -> None:
    """After inserting explicit ids, PostgreSQL's sequence must continue after the largest."""
    quoted = connection.dialect.identifier_preparer.quote(table.name)
    next_id = sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0) + 1).scalar_subquery()
    sequence = sa.func.pg_get_serial_sequence(quoted, "id")
    connection.execute(sa.select(sa.func.setval(sequence, next_id, False)))
