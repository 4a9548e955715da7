"""Consistent backups of the database and evidence files, and restoring them.

The database is read inside one transaction (a snapshot on PostgreSQL, a read transaction on
SQLite, which lets writers carry on), so the copy is consistent while Haven keeps running. Rows
are written as JSON lines per table, which also lets a school move from SQLite to PostgreSQL by
restoring into the other database.

Every evidence file is checked against the SHA-256 its Evidence row records, read in the same
snapshot, as it is copied; a damaged or missing file is reported, and the rest is still copied.
The audit trail's anchor log is copied before the snapshot is taken, so every anchor it holds
names an event the snapshot has. Everything a backup writes is readable by its owner only.
"""

import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

import app.models  # noqa: F401 - every table must be on the metadata
from app.core.db import READING
from app.core.migrations import alembic_config, current_revision
from app.core.types import utcnow

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ANCHOR_LOG = "audit/anchors.log"  # where a backup keeps the anchor log
FOLDER_MODE = 0o700
FILE_MODE = 0o600
EVIDENCE_MODE = 0o400  # restored evidence files are read-only, as Haven stores them
CHUNK = 1 << 20


class BackupError(RuntimeError):
    pass


@dataclass
class Backup:
    """A backup just written, and the evidence files found damaged or missing as it was."""

    path: Path
    damaged: dict[str, str] = field(default_factory=dict)  # name: SHA-256 of the file as found
    missing: list[str] = field(default_factory=list)


def _encode(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enumerations
        return value.value
    return value


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _create(path: Path, mode: int = FILE_MODE) -> BinaryIO:
    """A new file open for writing with `mode`, whatever the process umask; never overwrites."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb")


def _copy(source: Path, destination: Path, mode: int = FILE_MODE) -> str:
    """Copy a file into a new file with `mode`, returning the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    destination.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    with source.open("rb") as reading, _create(destination, mode) as writing:
        for chunk in iter(lambda: reading.read(CHUNK), b""):
            digest.update(chunk)
            writing.write(chunk)
    return digest.hexdigest()


def _tables() -> list[sa.Table]:
    """The tables a backup holds: not those derived from others by triggers, which rebuild them
    as the rows they count are restored."""
    return [t for t in SQLModel.metadata.sorted_tables if not t.info.get("derived")]


def write_backup(
    *, engine: Engine, evidence_dir: Path, anchor_log: Path, target_root: Path
) -> Backup:
    """Write a new backup folder under `target_root`, readable by its owner only."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    target_root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    target = target_root / f"haven-backup-{stamp}"
    try:
        target.mkdir(mode=FOLDER_MODE)
    except FileExistsError:
        raise BackupError(f"{target} already exists") from None
    (target / "tables").mkdir(mode=FOLDER_MODE)
    (target / "evidence").mkdir(mode=FOLDER_MODE)
    # Before the snapshot: an anchor written after it could name events the backup lacks.
    anchor_sha256 = _copy(anchor_log, target / ANCHOR_LOG) if anchor_log.is_file() else None
    counts: dict[str, int] = {}
    with engine.connect().execution_options(**{READING: True}) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        revision = current_revision(connection)
        for table in _tables():
            counts[table.name] = _write_rows(connection, table, target / "tables")
        evidence = SQLModel.metadata.tables["evidence"]
        expected = dict(
            connection.execute(
                sa.select(evidence.c.storage_name, evidence.c.sha256).where(
                    evidence.c.storage_name.is_not(None)
                )
            ).all()
        )
        connection.rollback()
    result = Backup(path=target)
    files = _copy_evidence(evidence_dir, target / "evidence", expected, anchor_log, result)
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": utcnow().isoformat(),
        "revision": revision,
        "dialect": engine.dialect.name,
        "tables": counts,
        "files": files,
        "damaged": result.damaged,
        "missing": result.missing,
        "anchor_log": anchor_sha256,
    }
    with _create(target / MANIFEST) as out:
        out.write(json.dumps(manifest, indent=2).encode())
    return result


def _write_rows(connection: sa.Connection, table: sa.Table, folder: Path) -> int:
    count = 0
    with (
        _create(folder / f"{table.name}.jsonl.gz") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb") as compressed,
        io.TextIOWrapper(compressed, encoding="utf-8") as out,
    ):
        order = list(table.primary_key.columns)
        for row in connection.execute(sa.select(table).order_by(*order)).mappings():
            out.write(json.dumps({k: _encode(v) for k, v in row.items()}) + "\n")
            count += 1
    return count


def _copy_evidence(
    source: Path, target: Path, expected: dict[str, str], anchor_log: Path, result: Backup
) -> dict[str, str]:
    """Copy every file of the evidence folder, checking those the Evidence table names against
    the SHA-256 it records. Returns the SHA-256 each file should have: the recorded one for
    evidence files, that of the copy for any other file."""
    files: dict[str, str] = {}
    found = sorted(source.rglob("*")) if source.is_dir() else []
    for path in found:
        if not path.is_file() or path.name.startswith("."):  # skip checks and partial uploads
            continue
        if path.resolve() == anchor_log.resolve():
            continue  # copied on its own: it is not an evidence file
        relative = path.relative_to(source).as_posix()
        copied = _copy(path, target / relative)
        files[relative] = (expected.get(relative) or copied).lower()
        if files[relative] != copied:
            result.damaged[relative] = copied
    result.missing = sorted(set(expected) - set(files))
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


@dataclass
class Restored:
    """What a restore brought back: rows per table, evidence files already damaged when the
    backup was written, and where an anchor log that differed from the backup's was kept."""

    tables: dict[str, int]
    damaged: list[str]
    replaced_anchor_log: Path | None = None


def restore_backup(
    *, engine: Engine, backup: Path, evidence_dir: Path, anchor_log: Path
) -> Restored:
    """Load a backup into a new, empty database, creating its schema at the backup's revision,
    and put its evidence files and anchor log back."""
    manifest = read_manifest(backup)
    damaged = manifest.get("damaged", {})
    for relative, expected in manifest["files"].items():
        if _file_sha256(backup / "evidence" / relative) not in (expected, damaged.get(relative)):
            raise BackupError(
                f"evidence file {relative} in the backup is damaged (SHA-256 differs)"
            )
    if manifest.get("anchor_log") and _file_sha256(backup / ANCHOR_LOG) != manifest["anchor_log"]:
        raise BackupError("the anchor log in the backup is damaged (SHA-256 differs)")
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
        _put_back(backup / "evidence" / relative, evidence_dir / relative, EVIDENCE_MODE)
    restored = Restored(tables=manifest["tables"], damaged=sorted(damaged))
    if manifest.get("anchor_log"):
        source = backup / ANCHOR_LOG
        if anchor_log.is_file() and _file_sha256(anchor_log) != manifest["anchor_log"]:
            # Kept, not overwritten: its later anchors record events this backup lacks.
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            restored.replaced_anchor_log = anchor_log.with_name(f"{anchor_log.name}.{stamp}")
            os.rename(anchor_log, restored.replaced_anchor_log)
        _put_back(source, anchor_log, FILE_MODE)
    return restored


def _put_back(source: Path, destination: Path, mode: int) -> None:
    """Copy a file from the backup into place with `mode`, replacing a different one there."""
    if destination.is_file() and _file_sha256(destination) == _file_sha256(source):
        return
    partial = destination.with_name(f".restore-{destination.name}")
    partial.unlink(missing_ok=True)
    _copy(source, partial, mode)
    os.replace(partial, destination)


def _move_sequence_past_rows(connection: sa.Connection, table: sa.Table) -> None:
    """After inserting explicit ids, PostgreSQL's sequence must continue after the largest."""
    quoted = connection.dialect.identifier_preparer.quote(table.name)
    next_id = sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0) + 1).scalar_subquery()
    sequence = sa.func.pg_get_serial_sequence(quoted, "id")
    connection.execute(sa.select(sa.func.setval(sequence, next_id, False)))
