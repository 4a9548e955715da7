"""The `haven` command as an IT technician scripts it, against a real database."""

import pytest
from sqlmodel import Session, select

from app.auth.models import ApiToken
from app.core.db import make_engine
from app.core.security import sha256_hex, verify_password
from tests.factories import users_in


def test_migrate_is_repeatable(haven):
    assert "database is up to date" in haven("migrate").output


def test_create_user_reads_the_password_from_standard_input(haven):
    result = haven(
        "create-user",
        "--email",
        "Head@School.example",
        "--name",
        "Head",
        "--role",
        "admin",
        input="a-long-admin-password\n",
    )
    assert "created admin account head@school.example" in result.output
    (user,) = users_in(haven.url)
    assert verify_password(user.password_hash, "a-long-admin-password")


def test_create_user_refuses_a_password_argument(haven):
    result = haven(
        "create-user",
        "--email",
        "a@b.example",
        "--name",
        "A",
        "--role",
        "staff",
        "--password",
        "visible-in-ps-output",
        ok=False,
    )
    assert result.exit_code == 2
    assert users_in(haven.url) == []


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--email", "a@b.example", "--name", "A", "--role", "staff"], "short\n", "at least 12"),
        (["--email", "nope", "--name", "A", "--role", "staff"], "long-enough-pass\n", "email"),
        (["--email", "a@b.example", "--name", "A", "--role", "king"], "long-enough-pass\n", "role"),
    ],
)
def test_create_user_bad_input(haven, args, password, message):
    result = haven("create-user", *args, input=password, ok=False)
    assert result.exit_code == 2
    assert message in result.output
    assert users_in(haven.url) == []


def test_create_user_twice_is_a_clear_conflict(haven):
    args = ["create-user", "--email", "a@b.example", "--name", "A", "--role", "staff"]
    haven(*args, input="long-enough-pass\n")
    result = haven(*args, input="long-enough-pass\n", ok=False)
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_create_token_prints_the_token_once_and_stores_its_hash(haven):
    result = haven(
        "create-token", "--name", "Wonde", "--scope", "people:write", "--scope", "people:read"
    )
    raw = result.output.strip()
    assert raw.startswith("hvn_")
    engine = make_engine(haven.url)
    with Session(engine) as session:
        token = session.exec(select(ApiToken)).one()
    engine.dispose()
    assert token.token_hash == sha256_hex(raw)
    assert token.scopes == ["people:read", "people:write"]


def test_create_token_refuses_an_unknown_scope(haven):
    result = haven("create-token", "--name", "X", "--scope", "root", ok=False)
    assert result.exit_code == 2


def test_seed_demo_only_in_development(haven, monkeypatch):
    refused = haven("seed-demo", ok=False)
    assert refused.exit_code == 2 and "HAVEN_DEV" in refused.output
    monkeypatch.setenv("HAVEN_DEV", "true")
    first = haven("seed-demo")
    assert "dsl@demo.haven.school" in first.output and "password:" in first.output
    haven("seed-demo")  # a second run adds nobody
    assert len(users_in(haven.url)) == 5


def test_audit_verify_reports_an_intact_trail(haven):
    haven(
        "create-user",
        "--email",
        "a@b.example",
        "--name",
        "A",
        "--role",
        "staff",
        input="long-enough-pass\n",
    )
    # the account and the conduct checklist it was given
    assert "audit trail intact (2 events)" in haven("audit", "verify").output


def test_commands_refuse_a_default_secret_with_one_line(haven, monkeypatch):
    monkeypatch.delenv("HAVEN_SECRET_KEY")
    result = haven("migrate", ok=False)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("haven: HAVEN_SECRET_KEY is missing")


def test_unreachable_database_is_one_line(haven, monkeypatch):
    monkeypatch.setenv("HAVEN_DATABASE_URL", "postgresql+psycopg://haven@127.0.0.1:1/haven")
    result = haven("migrate", ok=False)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0]


def test_unwritable_evidence_folder_is_one_line(haven, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(blocker / "evidence"))
    result = haven("migrate", ok=False)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "HAVEN_EVIDENCE_DIR" in result.output


def test_serve_refuses_an_unmigrated_database(haven, monkeypatch, scratch_database):
    monkeypatch.setenv("HAVEN_DATABASE_URL", scratch_database())
    result = haven("serve", ok=False)
    assert result.exit_code == 2
    assert "run `haven migrate` first" in result.output


def test_audit_verify_fails_on_an_edited_event(haven):
    import sqlalchemy as sa

    haven(
        "create-user",
        "--email",
        "a@b.example",
        "--name",
        "A",
        "--role",
        "staff",
        input="long-enough-pass\n",
    )
    engine = make_engine(haven.url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_event_no_update")
        connection.execute(sa.text("UPDATE audit_event SET action = 'user.deleted'"))
    engine.dispose()
    result = haven("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert "audit event 1 was changed after it was written" in result.output
