"""`haven backup` and `haven restore`: a consistent copy that comes back whole, or not at all."""

import hashlib
import json
import os
import sqlite3
import stat
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

from app.audit.service import SYSTEM
from app.auth.models import Role, Scope
from app.checklists import service as checklists_service
from app.core.config import Settings
from app.core.db import make_engine
from app.core.types import utcnow
from app.jobs.service import run_due_jobs
from app.main import create_app
from app.people import service as people_service
from app.people.models import PersonIn
from app.policies import flows as policy_flows
from app.policies import service as policies_service
from app.policies.models import ExemptionReason, PolicyCreate, VersionCreate
from app.webhooks import delivery
from app.webhooks import service as webhooks_service
from app.webhooks.models import EndpointIn
from app.webhooks.service import Outcome
from tests.conftest import TEST_SECRET, keyed_engine
from tests.factories import bearer, give_checklist, make_token, make_user, png, sign_in, users_in


@pytest.fixture(autouse=True)
def _umask_of_a_shell():
    """Each test starts with the usual umask of a shell (022): modes show what Haven sets."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    """The permission bits of a folder and of everything in it, by path."""
    return {
        path.relative_to(folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [folder, *folder.rglob("*")]
    }


@pytest.fixture
def seeded(haven, tmp_path):
    haven(
        "create-user",
        "--email",
        "dsl@school.example",
        "--name",
        "Dee",
        "--role",
        "dsl",
        input="a-long-dsl-password\n",
    )
    haven("create-token", "--name", "MIS", "--scope", "people:read")
    evidence = tmp_path / "evidence" / "ab" / "cdef.bin"
    evidence.parent.mkdir(parents=True, exist_ok=True)
    evidence.write_bytes(b"\x89PNG screenshot bytes")
    haven("audit", "anchor")
    return haven


def anchor_log(evidence_dir: Path) -> Path:
    return evidence_dir / "audit" / "anchors.log"


def _backup(haven, tmp_path) -> Path:
    result = haven("backup", "--to", str(tmp_path / "backups"))
    (folder,) = (tmp_path / "backups").iterdir()
    assert str(folder) in result.output
    return folder


def test_backup_then_restore_into_a_new_database(seeded, tmp_path, monkeypatch, scratch_database):
    folder = _backup(seeded, tmp_path)
    assert (folder / "manifest.json").exists()
    assert (folder / "evidence" / "ab" / "cdef.bin").read_bytes() == b"\x89PNG screenshot bytes"

    new_url = scratch_database()
    monkeypatch.setenv("HAVEN_DATABASE_URL", new_url)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    result = seeded("restore", "--from", str(folder))
    assert "restored" in result.output
    assert [u.email for u in users_in(new_url)] == ["dsl@school.example"]
    restored = tmp_path / "restored-evidence" / "ab" / "cdef.bin"
    assert restored.read_bytes() == b"\x89PNG screenshot bytes"
    events = json.loads((folder / "manifest.json").read_text())["tables"]["audit_event"]
    assert events >= 3
    verified = seeded("audit", "verify").output
    assert f"audit trail intact ({events} events" in verified and "1 anchor" in verified
    # New rows continue after the restored ids.
    seeded(
        "create-user",
        "--email",
        "next@school.example",
        "--name",
        "N",
        "--role",
        "staff",
        input="long-enough-pass\n",
    )
    assert len(users_in(new_url)) == 2


def test_everything_a_backup_writes_is_readable_by_its_owner_only(seeded, tmp_path):
    folder = _backup(seeded, tmp_path)
    written = modes(folder)
    assert {"tables", "evidence/ab/cdef.bin", "audit/anchors.log", "manifest.json"} <= set(written)
    folders = {name for name in written if (folder / name).is_dir()}
    assert {name: mode for name, mode in written.items() if name in folders} == dict.fromkeys(
        folders, 0o700
    )
    assert {name: mode for name, mode in written.items() if name not in folders} == dict.fromkeys(
        set(written) - folders, 0o600
    )
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700  # made by the backup


def test_haven_makes_its_database_and_evidence_folder_readable_by_its_owner_only(
    backend, haven, tmp_path
):
    assert stat.S_IMODE((tmp_path / "evidence").stat().st_mode) == 0o700
    if backend != "sqlite":
        return
    path = Path(haven.url.split("///", 1)[1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Whoever opens it later, SQLite gives its -wal and -shm files the database file's mode.
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("SELECT count(*) FROM audit_event").fetchone()
        for suffix in ("-wal", "-shm"):
            assert stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode) == 0o600, suffix
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def test_the_anchor_log_is_backed_up_and_restored(seeded, tmp_path, monkeypatch, scratch_database):
    anchors = anchor_log(tmp_path / "evidence").read_bytes()
    folder = _backup(seeded, tmp_path)
    assert (folder / "audit" / "anchors.log").read_bytes() == anchors
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["anchor_log"] == hashlib.sha256(anchors).hexdigest()
    assert "audit/anchors.log" not in manifest["files"]  # not an evidence file

    monkeypatch.setenv("HAVEN_DATABASE_URL", scratch_database())
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    seeded("restore", "--from", str(folder))
    restored = anchor_log(tmp_path / "restored-evidence")
    assert restored.read_bytes() == anchors
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    # Restored evidence files are read-only, as Haven stores them.
    evidence = tmp_path / "restored-evidence" / "ab" / "cdef.bin"
    assert stat.S_IMODE(evidence.stat().st_mode) == 0o400


def test_restore_keeps_a_different_anchor_log_it_finds(
    seeded, tmp_path, monkeypatch, scratch_database
):
    log = anchor_log(tmp_path / "evidence")
    backed_up = log.read_bytes()
    folder = _backup(seeded, tmp_path)
    seeded("audit", "anchor")  # an anchor the backup does not hold
    later = log.read_bytes()
    monkeypatch.setenv("HAVEN_DATABASE_URL", scratch_database())
    result = seeded("restore", "--from", str(folder))
    (kept,) = (path for path in log.parent.iterdir() if path != log)
    assert f"the anchor log that was there is kept as {kept}" in result.output
    assert kept.read_bytes() == later != backed_up
    assert log.read_bytes() == backed_up
    assert "audit trail intact" in seeded("audit", "verify").output


def test_restore_refuses_a_database_that_is_not_empty(seeded, tmp_path):
    folder = _backup(seeded, tmp_path)
    result = seeded("restore", "--from", str(folder), ok=False)
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_restore_refuses_a_damaged_evidence_file(seeded, tmp_path, monkeypatch, scratch_database):
    folder = _backup(seeded, tmp_path)
    (folder / "evidence" / "ab" / "cdef.bin").write_bytes(b"tampered")
    monkeypatch.setenv("HAVEN_DATABASE_URL", scratch_database())
    result = seeded("restore", "--from", str(folder), ok=False)
    assert "damaged" in result.output
    assert users_in(seeded.url) != []  # the original is untouched


def test_restore_refuses_a_folder_that_is_not_a_backup(seeded, tmp_path):
    result = seeded("restore", "--from", str(tmp_path), ok=False)
    assert result.exit_code == 2 and "is not a Haven backup" in result.output


# A school in use, backed up and restored table by table ---------------------------------------

# Every table of the schema gets rows from fill_school; the comparison covers every table.
FILLED_TABLES = {
    "school", "person", "user", "api_token", "user_session", "audit_event",
    "checklist_template", "checklist_item", "checklist_run", "item_completion", "job_run",
    "incident_counter", "incident", "contact", "evidence", "idempotent_request",
    "incident_person", "timeline_entry", "escalation_rule", "escalation", "webhook_endpoint",
    "outbox_message", "delivery_attempt", "policy", "policy_version", "policy_acknowledgement",
    "phone_exemption", "roster_import",
}  # fmt: skip


def fill_school(url: str, evidence_dir: Path) -> None:
    """Accounts and a sign-in, the roster and a staged import, policies published, acknowledged
    and with a phone exemption, a checklist worked, incidents reported by the MIS with evidence
    files, people, chronology and escalations, webhooks delivered, and the periodic jobs run."""
    engine = keyed_engine(url)
    settings = Settings(
        secret_key=TEST_SECRET,
        database_url=url,
        evidence_dir=evidence_dir,
        worker="off",
        school_name="Test School",
    )
    with Session(engine, expire_on_commit=False) as db:
        teacher = make_user(db)
        leader = make_user(db, role=Role.slt)
        school_id = teacher.school_id
        raw, _ = make_token(db, *Scope)
        for endpoint in (
            EndpointIn(
                url="https://relay.school.example/haven",
                events=["incident.escalated", "incident.updated"],
                format="standard",
            ),
            EndpointIn(url="dsl@school.example", events=["incident.escalated"], format="email"),
        ):
            webhooks_service.create_endpoint(
                session=db,
                school_id=school_id,
                data=endpoint,
                actor=SYSTEM,
                check_url=lambda url: None,  # no look-up of the made-up host
            )
        run = give_checklist(db, teacher)
        first_item = checklists_service.run_view(session=db, run=run).items[0]
        checklists_service.set_item(
            session=db,
            run=run,
            item_id=first_item.id,
            done=True,
            note="Privacy settings checked",
            user=teacher,
            actor=SYSTEM,
        )
        db.commit()

    auth = bearer(raw)
    app = create_app(settings, engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        people = [
            {"external_id": "P1", "kind": "pupil", "forename": "Aisha", "surname": "Rahman",
             "year_group": "Year 9", "registration_group": "9C", "upn": "A123456789012"},
            {"external_id": "P2", "kind": "pupil", "forename": "Oliver", "surname": "Hughes",
             "preferred_forename": "Ollie", "year_group": "Year 9"},
            {"external_id": "C1", "kind": "parent_carer", "forename": "Farah", "surname": "Rahman"},
        ]  # fmt: skip
        answer = client.put("/api/v1/people", headers=auth, json={"people": people})
        assert answer.status_code == 200, answer.text
        pupil = client.get("/api/v1/people", headers=auth).json()["data"][0]["id"]
        for n, target in enumerate(("pupil", "staff", "school")):
            answer = client.post(
                "/api/v1/incidents",
                headers={**auth, "Idempotency-Key": f"behaviour-{n}"},
                json={
                    "title": f"Incident {n}: “posts” about the school — ünïcode",
                    "description": "Reported from the behaviour module.\nSecond line.",
                    "occurred_at": (utcnow() - timedelta(days=n + 1)).isoformat(),
                    "platform": "tiktok",
                    "category": "malicious_post",
                    "offender_type": "pupil",
                    "target_type": target,
                    "content_flags": ["abusive"] if n == 0 else [],
                    "people": [
                        {"person_id": pupil, "role": "victim"},
                        {"label": "An account", "role": "subject"},
                    ],
                },
            )
            assert answer.status_code == 201, answer.text
            address = f"/api/v1/incidents/{answer.json()['id']}"
            answer = client.post(
                f"{address}/evidence",
                headers=auth,
                data={"note": "Screenshot", "captured_at": utcnow().isoformat()},
                files={"file": ("screenshot.png", png((64, 48), (n * 40, 90, 160)), "image/png")},
            )
            assert answer.status_code == 201, answer.text
            for entry in (
                {"kind": "note", "text": "Spoke to the form tutor."},
                {"kind": "decision", "text": "No police referral.", "rationale": "No threat."},
            ):
                answer = client.post(f"{address}/timeline", headers=auth, json=entry)
                assert answer.status_code == 201, answer.text
            answer = client.patch(address, headers=auth, json={"status": "in_progress"})
            assert answer.status_code == 200, answer.text
        sign_in(client, teacher)

    with Session(engine, expire_on_commit=False) as db:
        today = date.today()
        for data, audience_staff in (
            (PolicyCreate(title="Social media", kind="social_media", audience="staff"), True),
            (
                PolicyCreate(
                    title="Mobile phones",
                    kind="mobile_phone",
                    audience="pupils",
                    phone_stance="prohibited_all_day",
                ),
                False,
            ),
        ):
            policy = policies_service.create_policy(
                session=db, school_id=school_id, data=data, actor=SYSTEM
            )
            version = policies_service.add_version(
                session=db,
                policy=policy,
                actor=SYSTEM,
                data=VersionCreate(
                    body=f"# {data.title}\n\nWhat we ask of everyone.",
                    effective_from=today,
                    review_due=today + timedelta(days=365),
                ),
            )
            policies_service.approve(
                session=db, policy=policy, version=version, approver=leader, actor=SYSTEM
            )
            policy_flows.publish(session=db, policy=policy, version=version, actor=SYSTEM)
            if audience_staff:
                policies_service.acknowledge(
                    session=db, policy=policy, version=version, user=teacher, actor=SYSTEM
                )
            else:
                policies_service.add_exemption(
                    session=db,
                    policy=policy,
                    person_id=pupil,
                    reason=ExemptionReason.young_carer,
                    note="Keeps a phone to reach a parent",
                    actor=SYSTEM,
                )
        people_service.stage_import(
            session=db,
            school_id=school_id,
            user_id=leader.id,
            filename="roster.csv",
            people=[PersonIn(external_id="P9", kind="pupil", forename="Tom", surname="Fletcher")],
            deactivate_missing=False,
            actor=SYSTEM,
        )
        db.commit()

    receiver = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    delivery.deliver_due(engine=engine, client=receiver, send_email=lambda outgoing: Outcome())
    run_due_jobs(engine=engine)
    engine.dispose()


def table_rows(url: str) -> dict[str, list[dict]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = {
            table.name: [
                dict(row)
                for row in connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in SQLModel.metadata.sorted_tables
            if not table.info.get("derived")
        }
        # A derived table is compared by what it means: its log may be folded differently.
        rows["incident_status_change"] = connection.execute(
            sa.text(
                "SELECT school_id, status, sum(change) FROM incident_status_change "
                "GROUP BY school_id, status HAVING sum(change) <> 0 ORDER BY school_id, status"
            )
        ).all()
    engine.dispose()
    return rows


def file_digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_restored_whole(haven, source_url: str, target_url: str, tmp_path: Path) -> None:
    source = table_rows(source_url)
    empty = {name for name, rows in source.items() if not rows}
    assert not empty & FILLED_TABLES, empty
    assert table_rows(target_url) == source
    files = file_digests(tmp_path / "evidence")
    assert len(files) == 4  # three screenshots and the anchor log
    assert file_digests(tmp_path / "restored-evidence") == files
    events = len(source["audit_event"])
    verified = haven("audit", "verify").output
    assert f"audit trail intact ({events} events" in verified and "1 anchor" in verified


def test_a_school_in_use_comes_back_table_by_table_and_file_by_file(
    haven, tmp_path, monkeypatch, scratch_database
):
    fill_school(haven.url, tmp_path / "evidence")
    haven("audit", "anchor")
    folder = _backup(haven, tmp_path)

    target = scratch_database()
    monkeypatch.setenv("HAVEN_DATABASE_URL", target)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    haven("restore", "--from", str(folder))
    assert_restored_whole(haven, haven.url, target, tmp_path)


def test_a_damaged_or_missing_evidence_file_is_reported_and_the_rest_still_copied(
    haven, tmp_path, monkeypatch, scratch_database
):
    fill_school(haven.url, tmp_path / "evidence")
    engine = make_engine(haven.url)
    with engine.connect() as connection:
        recorded = dict(
            connection.execute(sa.text("SELECT storage_name, sha256 FROM evidence")).all()
        )
    engine.dispose()
    damaged, missing, intact = sorted(recorded)
    (tmp_path / "evidence" / damaged).chmod(0o600)
    (tmp_path / "evidence" / damaged).write_bytes(b"changed on the disk")
    (tmp_path / "evidence" / missing).unlink()

    result = haven("backup", "--to", str(tmp_path / "backups"), ok=False)
    assert result.exit_code == 1
    found = hashlib.sha256(b"changed on the disk").hexdigest()
    assert f"evidence file {damaged} is damaged (SHA-256 {found} differs)" in result.output
    assert f"evidence file {missing} is missing" in result.output
    assert "2 evidence files are damaged or missing" in result.output
    (folder,) = (tmp_path / "backups").iterdir()
    assert f"backup written to {folder}" in result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"] == {damaged: recorded[damaged], intact: recorded[intact]}
    assert manifest["damaged"] == {damaged: found}
    assert manifest["missing"] == [missing]
    assert (folder / "evidence" / damaged).read_bytes() == b"changed on the disk"
    assert file_digests(folder / "evidence")[intact] == recorded[intact]
    assert manifest["tables"]["evidence"] == 3

    # The backup restores: the intact file verifies, the damaged one is named again.
    monkeypatch.setenv("HAVEN_DATABASE_URL", scratch_database())
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    result = haven("restore", "--from", str(folder))
    assert f"evidence file {damaged} was already damaged when backed up" in result.output
    assert file_digests(tmp_path / "restored-evidence")[intact] == recorded[intact]


def test_a_school_on_sqlite_moves_to_postgresql(
    backend, haven, tmp_path, monkeypatch, scratch_database
):
    if backend != "postgresql":
        pytest.skip("restores into PostgreSQL: runs with the suite's PostgreSQL database")
    sqlite_url = f"sqlite:///{tmp_path / 'school.db'}"
    monkeypatch.setenv("HAVEN_DATABASE_URL", sqlite_url)
    haven("migrate")
    fill_school(sqlite_url, tmp_path / "evidence")
    haven("audit", "anchor")
    folder = _backup(haven, tmp_path)

    target = scratch_database()
    monkeypatch.setenv("HAVEN_DATABASE_URL", target)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    haven("restore", "--from", str(folder))
    assert_restored_whole(haven, sqlite_url, target, tmp_path)
