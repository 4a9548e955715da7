"""The home page: what each role sees on it, and what it does not."""

import re

import pytest
from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth import service as auth_service
from app.auth.models import Role, Scope
from app.retention import service as retention_service
from app.webhooks.models import MessageStatus, OutboxMessage
from tests.factories import (
    give_checklist,
    make_endpoint,
    make_incident,
    make_policy,
    make_token,
    make_user,
    publish_policy,
    sign_in,
)
from tests.retention.records import closed_incident

HTMX = {"HX-Request": "true"}
SECTIONS = ("staff-heading", "dsl-heading", "slt-heading", "admin-heading")


def _home(client) -> str:
    """The home page, checked to be the same whole page for an htmx request."""
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text
    assert page.headers["vary"] == "HX-Request"
    fragment = client.get("/", headers=HTMX)
    assert fragment.status_code == 200 and "<html" in fragment.text
    return page.text


def _only_section(page: str, heading: str) -> None:
    """The role's own section is on the page, and no other role's."""
    assert [s for s in SECTIONS if f'id="{s}"' in page] == [heading]


def _failed_notice(db) -> None:
    """An escalation whose webhook could not be delivered."""
    make_endpoint(db)
    make_incident(db, content_flags=["abusive"])
    message = db.exec(select(OutboxMessage)).one()
    message.status = MessageStatus.failed
    db.add(message)
    db.commit()


def test_staff_see_their_checklists_and_the_policies_to_acknowledge(client, db):
    staff = make_user(db)
    give_checklist(db, staff)
    policy, version = publish_policy(db, policy=make_policy(db, title="Staff social media"))
    make_incident(db)
    _failed_notice(db)
    sign_in(client, staff)
    page = _home(client)
    _only_section(page, "staff-heading")
    assert 'href="/report"' in page and "The concerns you have reported" in page
    assert "My conduct on social media" in page and "0 of 11 done" in page
    assert 'id="policies-heading"' in page
    assert (
        f'<a href="/policies/{policy.id}">Staff social media</a> (version {version.number})' in page
    )
    assert 'aria-label="Incidents by status"' not in page
    assert "could not be delivered" not in page
    assert 'id="reviews-heading"' not in page


def test_staff_with_nothing_to_do_are_told_so(client, db):
    sign_in(client, make_user(db))
    page = _home(client)
    assert "Nothing to do." in page
    assert 'id="policies-heading"' not in page


@pytest.mark.parametrize("role", [Role.dsl, Role.deputy_dsl])
def test_safeguarding_leads_see_incident_counts_failed_notices_and_retention(client, db, role):
    for _ in range(2):
        make_incident(db)
    _failed_notice(db)
    closed = closed_incident(db)
    retention_service.refresh_count(session=db, school_id=closed.school_id)
    db.commit()
    sign_in(client, make_user(db, role=role))
    page = _home(client)
    _only_section(page, "dsl-heading")
    listed = page.split('aria-label="Incidents by status"')[1].split("</ul>")[0]
    counts = dict(
        re.findall(r'href="/incidents\?status=(\w+)">[^<]*<strong>(\d+)</strong>', listed)
    )
    assert counts["open"] == "2" and counts["closed"] == "1"
    assert "1 notification to your inbox could not be delivered." in page
    assert "1 record is due for retention review." in page
    assert 'href="/admin/retention#queue"' in page
    assert 'href="/incidents?assigned=me"' in page


def test_safeguarding_leads_see_no_alerts_when_all_is_well(client, db):
    sign_in(client, make_user(db, role=Role.dsl))
    page = _home(client)
    assert "could not be delivered" not in page
    assert "due for retention review" not in page


def test_senior_leaders_see_the_reviews_due_and_no_casework(client, db):
    due, _ = publish_policy(db, policy=make_policy(db, title="Phones at school"), review_in=10)
    later, _ = publish_policy(db, policy=make_policy(db, title="Acceptable use"), review_in=200)
    make_incident(db)
    _failed_notice(db)
    sign_in(client, make_user(db, role=Role.slt))
    page = _home(client)
    _only_section(page, "slt-heading")
    reviews = page.split('id="reviews-heading"')[1].split("</section>")[0]
    assert f'href="/policies/{due.id}"' in reviews
    assert f'href="/policies/{later.id}"' not in reviews
    assert 'aria-label="Incidents by status"' not in page
    assert "could not be delivered" not in page
    assert "due for retention review" not in page


def test_admins_see_the_accounts_and_live_tokens(client, db):
    admin = make_user(db, role=Role.admin)
    make_user(db)
    make_token(db, Scope.people_write, name="MIS")
    _, revoked = make_token(db, Scope.people_read, name="Old MIS")
    auth_service.revoke_api_token(
        session=db, school_id=admin.school_id, token_id=revoked.id, actor=SYSTEM
    )
    db.commit()
    _failed_notice(db)
    publish_policy(db, review_in=10)
    sign_in(client, admin)
    page = _home(client)
    _only_section(page, "admin-heading")
    assert 'href="/admin/users"' in page and 'href="/admin/tokens"' in page
    users = auth_service.count_users(session=db, school_id=admin.school_id)
    assert f"{users} accounts." in page
    assert "1 active token for the MIS." in page
    assert 'aria-label="Incidents by status"' not in page
    assert "could not be delivered" not in page
    assert 'id="reviews-heading"' not in page
