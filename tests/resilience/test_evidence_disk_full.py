"""The disk holding the evidence folder fills up.

The evidence folder is a 1 MiB tmpfs (mounting one needs root; CI runs as root). A file bigger
than the space left is refused with 507 and a message saying what to do, leaving no partial file
and no record of any kind; a small file afterwards is stored as usual.
"""

import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role, Scope
from app.incidents.models import Evidence, Incident, TimelineEntry
from tests.factories import csrf_from, make_incident, make_token, make_user, sign_in
from tests.resilience.conftest import unavailable

DISK_SIZE = 1024 * 1024


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    folder = tmp_path / "evidence-disk"
    folder.mkdir()
    if os.geteuid() != 0:
        unavailable("mounting a tiny filesystem for the evidence folder needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "haven-evidence", folder],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable(f"could not mount a tmpfs for the evidence folder: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", folder], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", folder], check=True)


@pytest.fixture
def settings(settings, tiny_disk):
    return settings.model_copy(update={"evidence_dir": tiny_disk})


def png(width: int, height: int) -> bytes:
    """A real PNG; of noise, so that it does not compress below width x height x 3 bytes."""
    picture = io.BytesIO()
    noise = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    noise.save(picture, format="PNG", compress_level=0)
    return picture.getvalue()


def records(db, incident: Incident) -> dict[str, int]:
    def count(model, *where) -> int:
        return db.exec(select(sa.func.count()).select_from(model).where(*where)).one()

    return {
        "evidence": count(Evidence, Evidence.incident_id == incident.id),
        "timeline": count(TimelineEntry, TimelineEntry.incident_id == incident.id),
        "audit": count(AuditEvent),
        "incidents": count(Incident),
    }


def too_big_for(disk: Path) -> bytes:
    data = png(640, 640)  # 1.2 MB
    assert len(data) > shutil.disk_usage(disk).free
    return data


def assert_one_stored_file(disk: Path, content: bytes) -> None:
    (stored,) = os.listdir(disk)
    digest = hashlib.sha256((disk / stored).read_bytes()).hexdigest()
    assert digest == hashlib.sha256(content).hexdigest()


def test_the_api_refuses_a_file_the_disk_cannot_hold_and_keeps_nothing(client, db, tiny_disk):
    raw, _ = make_token(db, Scope.incidents_write)
    auth = {"Authorization": f"Bearer {raw}"}
    incident = make_incident(db)
    before = records(db, incident)
    address = f"/api/v1/incidents/{incident.id}/evidence"

    answer = client.post(
        address, headers=auth, files={"file": ("chat.png", too_big_for(tiny_disk), "image/png")}
    )

    assert answer.status_code == 507, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["title"] == "Insufficient storage"
    assert "evidence store is full" in problem["detail"]
    assert "nothing was recorded" in problem["detail"]
    assert os.listdir(tiny_disk) == []  # not even a partial temporary file
    assert records(db, incident) == before

    small = png(40, 30)
    answer = client.post(address, headers=auth, files={"file": ("chat.png", small, "image/png")})
    assert answer.status_code == 201, answer.text
    assert answer.json()["sha256"] == hashlib.sha256(small).hexdigest()
    assert_one_stored_file(tiny_disk, small)
    assert records(db, incident)["evidence"] == before["evidence"] + 1


def test_the_pages_say_the_evidence_store_is_full_and_keep_nothing(client, db, tiny_disk):
    lead = make_user(db, role=Role.dsl)
    incident = make_incident(db)
    sign_in(client, lead)
    page = f"/incidents/{incident.id}"
    token = csrf_from(client.get(page).text)
    before = records(db, incident)

    answer = client.post(
        f"{page}/evidence",
        data={"csrf_token": token, "note": "The whole chat"},
        files={"file": ("chat.png", too_big_for(tiny_disk), "image/png")},
    )
    assert answer.status_code == 507
    assert answer.headers["content-type"].startswith("text/html")
    assert "evidence store is full" in answer.text
    assert "Tell your IT technician" in answer.text
    assert os.listdir(tiny_disk) == []
    assert records(db, incident) == before

    # A report with a screenshot that does not fit: nothing is recorded, the form comes back
    # with what was typed, and the message says how to go on.
    answer = client.post(
        "/report",
        data={
            "csrf_token": csrf_from(client.get("/report").text),
            "title": "Group chat screenshots",
            "description": "Shared at lunch.",
            "occurred_at": "2026-01-05T12:30",
            "platform": "whatsapp",
            "category": "harassment",
            "offender_type": "pupil",
            "target_type": "pupil",
        },
        files=[("screenshots", ("chat.png", too_big_for(tiny_disk), "image/png"))],
    )
    assert answer.status_code == 507
    assert "evidence store is full" in answer.text
    assert 'value="Group chat screenshots"' in answer.text
    assert os.listdir(tiny_disk) == []
    assert records(db, incident) == before

    small = png(40, 30)
    answer = client.post(
        f"{page}/evidence",
        data={"csrf_token": token, "note": "The first message"},
        files={"file": ("chat.png", small, "image/png")},
    )
    assert answer.status_code == 303, answer.text
    assert_one_stored_file(tiny_disk, small)
    assert records(db, incident)["evidence"] == before["evidence"] + 1
