"""Deleting after review as a real request runs it (its own session, closed at the end): a
double click, a record not yet due, and error pages shown after the request rolled back."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.models import Role
from app.incidents.models import Incident
from app.main import create_app
from tests.factories import csrf_from, make_incident, make_user, sign_in
from tests.retention.records import close, closed_incident


@pytest.fixture
def live(committed_engine, settings) -> Iterator[tuple[Session, TestClient]]:
    """Haven as it runs: every request has a session of its own, closed when it ends."""
    url = committed_engine.url.render_as_string(hide_password=False)
    settings = settings.model_copy(update={"database_url": url})
    app = create_app(settings=settings, engine=committed_engine)
    with (
        Session(committed_engine, expire_on_commit=False) as db,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as client,
    ):
        sign_in(client, make_user(db, role=Role.dsl))
        yield db, client


def _post_delete(client: TestClient, path: str, csrf: str, **headers):
    data = {"csrf_token": csrf, "reason": "period_over", "confirm": "true"}
    return client.post(path, data=data, headers=headers)


def test_a_second_click_on_delete_says_the_record_is_already_gone(live):
    db, client = live
    incident_id = closed_incident(db).id
    path = f"/admin/retention/incidents/{incident_id}/delete"
    csrf = csrf_from(client.get(path).text)
    assert _post_delete(client, path, csrf).status_code == 303
    again = _post_delete(client, path, csrf)
    assert again.status_code == 404
    assert "This record has already been deleted." in again.text
    assert 'href="/admin/retention#queue"' in again.text
    assert "Sign out" in again.text  # the page is the signed-in DSL's, header and all
    # from htmx: the message, without the whole page
    fragment = _post_delete(client, path, csrf, **{"HX-Request": "true"})
    assert fragment.status_code == 404 and "<html" not in fragment.text
    assert "already been deleted" in fragment.text
    # and asking to confirm it again says the same
    confirm = client.get(path)
    assert confirm.status_code == 404 and "already been deleted" in confirm.text
    db.expire_all()
    assert db.get(Incident, incident_id) is None


def test_a_record_not_due_answers_409_saying_when_it_will_be(live):
    db, client = live
    recent_id = close(db, make_incident(db), years=1).id
    path = f"/admin/retention/incidents/{recent_id}/delete"
    csrf = csrf_from(client.get(path).text)
    refused = _post_delete(client, path, csrf)
    assert refused.status_code == 409
    assert "It will be due for review on " in refused.text
    assert "Sign out" in refused.text
    db.expire_all()
    assert db.get(Incident, recent_id) is not None


def test_an_error_page_after_a_rollback_is_the_signed_in_page(live):
    """A refusal found after the request rolled back is shown with the page's header, not as
    a bare 500."""
    db, client = live
    incident = closed_incident(db)
    csrf = csrf_from(client.get(f"/admin/retention/incidents/{incident.id}/delete").text)
    unknown = _post_delete(client, "/admin/retention/invoices/1/delete", csrf)
    assert unknown.status_code == 404
    assert "There is no such kind of record." in unknown.text and "Sign out" in unknown.text
