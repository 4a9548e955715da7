"""`haven audit anchor`, `haven audit verify` and `haven rotate-secret-key`, as a technician runs
them against a real database and evidence folder."""

import json
import secrets
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.anchors import anchor_log_path
from app.audit.service import use_chain_key
from app.auth import service as auth_service
from app.auth.models import Role, User
from app.core.db import make_engine
from tests.audit.tamper import delete_newest_events
from tests.conftest import TEST_SECRET
from tests.factories import make_incident, make_user

NEW_SECRET = secrets.token_urlsafe(48)


@pytest.fixture
def chain(haven, tmp_path):
    """A database with real events (a DSL with a second factor, a report) chained with the
    configured key."""
    engine = use_chain_key(make_engine(haven.url), TEST_SECRET)
    with Session(engine, expire_on_commit=False) as session:
        dsl = make_user(session, role=Role.dsl, second_factor=True)
        make_incident(session, reporter=make_user(session))
    yield engine, dsl
    engine.dispose()


def _log(tmp_path: Path) -> Path:
    return anchor_log_path(tmp_path / "evidence")


def _events(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT seq, hash FROM audit_event ORDER BY seq")).all()


def test_anchor_then_verify(haven, chain, tmp_path):
    engine, _ = chain
    count = len(_events(engine))
    assert f"anchored audit event {count} at " in haven("audit", "anchor").output
    assert [json.loads(line)["seq"] for line in _log(tmp_path).read_text().splitlines()] == [count]
    result = haven("audit", "verify")
    assert f"audit trail intact ({count} events), 1 anchors hold" in result.output


def test_migrate_anchors_an_existing_chain(haven, chain, tmp_path):
    haven("migrate")
    assert len(_log(tmp_path).read_text().splitlines()) == 1


def test_verify_fails_naming_the_events_deleted_after_the_anchor(haven, chain, tmp_path):
    engine, _ = chain
    count = len(_events(engine))
    haven("audit", "anchor")
    with Session(engine) as session:
        delete_newest_events(session, after=count - 2)
        session.commit()
    result = haven("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert f"the chain ends at event {count - 2} but the anchor of " in result.output
    assert f"events {count - 1}..{count} are missing" in result.output


def test_verify_fails_on_an_edited_anchor_line(haven, chain, tmp_path):
    haven("audit", "anchor")
    log = _log(tmp_path)
    log.write_text(log.read_text().replace('"seq": ', '"seq": 1', 1))
    result = haven("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert "line 1 of the anchor log" in result.output
    assert "has no valid signature" in result.output


def _seed(engine, user_id: int, secret_key: str) -> str:
    with Session(engine) as session:
        return auth_service.totp_seed(user=session.get(User, user_id), secret_key=secret_key)


def test_rotate_secret_key_rekeys_the_chain_and_the_seeds(haven, chain, tmp_path, monkeypatch):
    engine, dsl = chain
    seed = _seed(engine, dsl.id, TEST_SECRET)
    haven("audit", "anchor")
    old_log = _log(tmp_path).read_text()
    count = len(_events(engine))
    monkeypatch.setenv("HAVEN_SECRET_KEY", NEW_SECRET)
    result = haven("rotate-secret-key", input=TEST_SECRET + "\n")
    assert f"re-keyed {count} audit events and re-sealed 1 TOTP seeds" in result.output
    (kept,) = _log(tmp_path).parent.glob("anchors.log.before-*")
    assert kept.read_text() == old_log
    verified = haven("audit", "verify").output
    assert f"audit trail intact ({count + 1} events), 2 anchors hold" in verified
    assert _seed(engine, dsl.id, NEW_SECRET) == seed
    assert pyotp.TOTP(seed).now()  # still the seed the DSL's authenticator holds
    monkeypatch.setenv("HAVEN_SECRET_KEY", TEST_SECRET)
    assert haven("audit", "verify", ok=False).exit_code == 1  # the old key no longer holds


def test_rotate_secret_key_with_the_wrong_old_key_changes_nothing(
    haven, chain, tmp_path, monkeypatch
):
    engine, dsl = chain
    haven("audit", "anchor")
    events, log = _events(engine), _log(tmp_path).read_text()
    with Session(engine) as session:
        sealed = session.exec(select(User.totp_secret).where(User.id == dsl.id)).one()
    monkeypatch.setenv("HAVEN_SECRET_KEY", NEW_SECRET)
    result = haven("rotate-secret-key", input="not-the-old-key-" + TEST_SECRET + "\n", ok=False)
    assert result.exit_code == 2
    assert "does not verify under the old key" in result.output
    assert "nothing was changed" in result.output
    assert _events(engine) == events
    assert _log(tmp_path).read_text() == log
    assert list(_log(tmp_path).parent.iterdir()) == [_log(tmp_path)]
    with Session(engine) as session:
        assert session.exec(select(User.totp_secret).where(User.id == dsl.id)).one() == sealed
    monkeypatch.setenv("HAVEN_SECRET_KEY", TEST_SECRET)
    assert "audit trail intact" in haven("audit", "verify").output


def test_rotate_secret_key_takes_no_key_as_an_argument(haven, chain, monkeypatch):
    monkeypatch.setenv("HAVEN_SECRET_KEY", NEW_SECRET)
    result = haven("rotate-secret-key", "--old-key", TEST_SECRET, ok=False)
    assert result.exit_code == 2
    result = haven("rotate-secret-key", input=NEW_SECRET + "\n", ok=False)
    assert "the old key is the key configured now" in result.output
