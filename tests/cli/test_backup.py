"""`haven backup` and `haven restore`: a consistent copy that comes back whole, or not at all."""

import hashlib
import io
import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image
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
from tests.cli.conftest import users_in as _users
from tests.conftest import TEST_SECRET, keyed_engine
from tests.factories import give_checklist, make_token, make_user, sign_in


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
    return haven


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
    assert [u.email for u in _users(new_url)] == ["dsl@school.example"]
    restored = tmp_path / "restored-evidence" / "ab" / "cdef.bin"
    assert restored.read_bytes() == b"\x89PNG screenshot bytes"
    events = json.loads((folder / "manifest.json").read_text())["tables"]["audit_event"]
    assert events >= 3
    assert f"audit trail intact ({events} events)" in seeded("audit", "verify").output
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
    assert len(_users(new_url)) == 2


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
    assert _users(seeded.url) != []  # the original is untouched


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


def _screenshot(shade: int) -> bytes:
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 90, 160)).save(picture, format="PNG")
    return picture.getvalue()


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

    auth = {"Authorization": f"Bearer {raw}"}
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
                files={"file": ("screenshot.png", _screenshot(n * 40), "image/png")},
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
    assert len(files) == 3
    assert file_digests(tmp_path / "restored-evidence") == files
    events = len(source["audit_event"])
    assert f"audit trail intact ({events} events)" in haven("audit", "verify").output


def test_a_school_in_use_comes_back_table_by_table_and_file_by_file(
    haven, tmp_path, monkeypatch, scratch_database
):
    fill_school(haven.url, tmp_path / "evidence")
    folder = _backup(haven, tmp_path)

    target = scratch_database()
    monkeypatch.setenv("HAVEN_DATABASE_URL", target)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    haven("restore", "--from", str(folder))
    assert_restored_whole(haven, haven.url, target, tmp_path)


def test_a_school_on_sqlite_moves_to_postgresql(
    backend, haven, tmp_path, monkeypatch, scratch_database
):
    if backend != "postgresql":
        pytest.skip("restores into PostgreSQL: runs with the suite's PostgreSQL database")
    sqlite_url = f"sqlite:///{tmp_path / 'school.db'}"
    monkeypatch.setenv("HAVEN_DATABASE_URL", sqlite_url)
    haven("migrate")
    fill_school(sqlite_url, tmp_path / "evidence")
    folder = _backup(haven, tmp_path)

    target = scratch_database()
    monkeypatch.setenv("HAVEN_DATABASE_URL", target)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "restored-evidence"))
    haven("restore", "--from", str(folder))
    assert_restored_whole(haven, sqlite_url, target, tmp_path)
