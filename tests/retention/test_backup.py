"""A backup holds the retention schedule, holds and decisions, and a restore brings them back,
so that a legal hold survives moving Haven to another server."""

import stat

import sqlalchemy as sa
from sqlmodel import Session

from app.audit.service import Actor
from app.auth.models import Role
from app.backup import restore_backup, write_backup
from app.core.migrations import upgrade_to_head
from app.retention import service
from app.retention.models import RecordKind, RecordType
from tests.conftest import keyed_engine
from tests.factories import make_user
from tests.retention.records import closed_incident

TABLES = ("retention_rule", "record_retention", "retention_check")


def _rows(engine) -> dict[str, list[dict]]:
    metadata = sa.MetaData()
    with engine.connect() as connection:
        metadata.reflect(bind=connection, only=TABLES)
        return {
            name: [
                dict(row)
                for row in connection.execute(
                    sa.select(metadata.tables[name]).order_by(
                        *metadata.tables[name].primary_key.columns
                    )
                ).mappings()
            ]
            for name in TABLES
        }


def test_retention_decisions_are_backed_up_and_restored(scratch_database, tmp_path):
    source = keyed_engine(scratch_database())
    upgrade_to_head(source)
    with Session(source, expire_on_commit=False) as db:
        dsl = make_user(db, role=Role.dsl)
        actor = Actor(user_id=dsl.id)
        held = closed_incident(db)
        kept = closed_incident(db)
        school_id = dsl.school_id
        service.set_years(
            session=db,
            school_id=school_id,
            record_type=RecordType.checklist_run,
            years=3,
            actor=actor,
        )
        service.place_hold(
            session=db,
            school_id=school_id,
            kind=RecordKind.incident,
            record_id=held.id,
            reason="Claim expected.",
            actor=actor,
        )
        service.keep(
            session=db,
            school_id=school_id,
            kind=RecordKind.incident,
            record_id=kept.id,
            years=2,
            reason="Still needed.",
            actor=actor,
        )
        service.refresh_count(session=db, school_id=school_id)
        db.commit()
    before = _rows(source)
    assert all(before[name] for name in TABLES)
    written = write_backup(
        engine=source,
        evidence_dir=tmp_path / "evidence",
        anchor_log=tmp_path / "evidence" / "audit" / "anchors.log",
        target_root=tmp_path / "backups",
    )
    source.dispose()
    assert (written.damaged, written.missing) == ({}, [])
    assert stat.S_IMODE(written.path.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in written.path.rglob("*.gz")} == {0o600}

    target = keyed_engine(scratch_database())
    restore_backup(
        engine=target,
        backup=written.path,
        evidence_dir=tmp_path / "restored",
        anchor_log=tmp_path / "restored" / "audit" / "anchors.log",
    )
    assert _rows(target) == before
    with Session(target) as db:
        holds = service.holds(session=db, school_id=school_id)
        assert [(h.record_id, h.retention.hold_reason) for h in holds] == [
            (held.id, "Claim expected.")
        ]
    target.dispose()
