"""audit keyed chain: TRUNCATE is refused on audit_event, timeline_entry and incident, and each
audit event's hash becomes an HMAC keyed with a key derived from HAVEN_SECRET_KEY (the chain is
checked under its plain SHA-256 first, and a broken one is not re-keyed)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 05:00:00.000000+00:00
"""

import hashlib
import json
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_CHAIN = "haven audit chain v1"  # app.core.keys.AUDIT_CHAIN when this was written
GENESIS_HASH = "0" * 64
BATCH = 1000

# What each table's UPDATE and DELETE triggers already say (migrations 0001 and 0010).
TRUNCATE_REFUSED = {
    "audit_event": "audit_event is append-only",
    "timeline_entry": (
        "timeline entries are deleted only with their incident, after a retention review"
    ),
    "incident": (
        "an incident is deleted only after a retention review, and never under a legal hold"
    ),
}
SQLITE_NO_UPDATE = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
)

HASHED = (
    "seq",
    "school_id",
    "occurred_at",
    "actor_user_id",
    "actor_token_id",
    "action",
    "entity_type",
    "entity_id",
    "request_id",
    "ip_address",
    "detail",
    "prev_hash",
)
audit_event = sa.table(
    "audit_event",
    sa.column("id"),
    *(sa.column(name) for name in HASHED if name not in ("occurred_at", "detail")),
    sa.column("occurred_at", app.core.types.UTCDateTime(timezone=True)),
    sa.column("detail", sa.JSON()),
    sa.column("hash"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION refuse_truncate() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$ LANGUAGE plpgsql"
        )
        for table, message in TRUNCATE_REFUSED.items():
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate('{message}')"
            )
    # SQLite has no TRUNCATE: its DELETE triggers refuse `DELETE FROM` a whole table too.
    _rehash(checked_by=(_plain_hash, _keyed_hash), written_by=_keyed_hash)


def downgrade() -> None:
    _rehash(checked_by=(_keyed_hash,), written_by=_plain_hash)
    if op.get_bind().dialect.name == "postgresql":
        for table in TRUNCATE_REFUSED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS refuse_truncate()")


def _canonical(row: dict) -> bytes:
    fields = {name: row[name] for name in HASHED}
    fields["occurred_at"] = row["occurred_at"].isoformat()
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def _plain_hash(row: dict) -> str:
    return hashlib.sha256(_canonical(row)).hexdigest()


def _keyed_hash(row: dict) -> str:
    from app.core.keys import keyed_hash
    from app.core.migrations import migration_secret_key

    return keyed_hash(migration_secret_key(), AUDIT_CHAIN, _canonical(row))


def _rehash(*, checked_by: tuple[Callable[[dict], str], ...], written_by: Callable) -> None:
    """Check every event (going up, its hash may be plain, or keyed already by Haven's newer
    code), and write the chain again with `written_by`. The trigger that refuses UPDATE is
    lifted meanwhile, inside this transaction."""
    connection = op.get_bind()
    if connection.execute(sa.select(audit_event.c.id).limit(1)).first() is None:
        return  # nothing to re-key: no key is needed
    _refuse_updates(connection, False)
    after, expected_prev, new_prev = 0, GENESIS_HASH, GENESIS_HASH
    while True:
        rows = connection.execute(
            sa.select(audit_event)
            .where(audit_event.c.seq > after)
            .order_by(audit_event.c.seq)
            .limit(BATCH)
        ).mappings()
        changes = []
        for row in map(dict, rows):
            if problem := _problem(row, after, expected_prev, checked_by):
                raise RuntimeError(
                    f"the audit trail is already broken at event {row['seq']} ({problem}), so "
                    "it is not re-keyed and nothing was changed: restore the last backup whose "
                    "audit trail is intact"
                )
            after, expected_prev = row["seq"], row["hash"]
            row["prev_hash"] = new_prev
            new_prev = written_by(row)
            changes.append({"row_id": row["id"], "new_prev": row["prev_hash"], "new": new_prev})
        if not changes:
            break
        connection.execute(
            audit_event.update()
            .where(audit_event.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new")),
            changes,
        )
    _refuse_updates(connection, True)


def _problem(row: dict, after: int, expected_prev: str, checked_by: tuple[Callable, ...]) -> str:
    """What is wrong with the event that follows event `after`, or ''."""
    if row["seq"] != after + 1:
        return f"events {after + 1}..{row['seq'] - 1} are missing"
    if row["prev_hash"] != expected_prev:
        return "it does not follow the event before it"
    if all(hashed(row) != row["hash"] for hashed in checked_by):
        return "it was changed after it was written"
    return ""


def _refuse_updates(connection: sa.Connection, refused: bool) -> None:
    """Put back (or lift) the trigger that refuses UPDATE of audit events."""
    if connection.dialect.name == "postgresql":
        verb = "ENABLE" if refused else "DISABLE"
        op.execute(f"ALTER TABLE audit_event {verb} TRIGGER audit_event_append_only")
    elif refused:
        op.execute(SQLITE_NO_UPDATE)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
