"""`haven backup` and `haven restore`: a consistent copy that comes back whole, or not at all."""

import json
from pathlib import Path

import pytest

from tests.cli.conftest import users_in as _users


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
