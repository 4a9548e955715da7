"""The retention page as the DSL and deputies use it: the schedule, the queue, holds, and
deletion after review with its confirmation, files on disk included."""

import re

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.incidents.models import Evidence, Incident
from app.retention import service
from app.retention.models import RetentionRule
from tests.factories import (
    csrf_from,
    make_incident,
    page_csrf,
    png,
    signed_in_as,
)
from tests.retention.records import close, closed_incident


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": page_csrf(client, "/admin/retention"), **data})


def _with_screenshot(client, db, **overrides) -> tuple[Incident, Evidence]:
    """An incident with an uploaded screenshot, closed long ago (the DSL must be signed in)."""
    incident = make_incident(db, **overrides)
    response = client.post(
        f"/incidents/{incident.id}/evidence",
        data={"note": "The post", "csrf_token": page_csrf(client, f"/incidents/{incident.id}")},
        files={"file": ("shot.png", png(), "image/png")},
    )
    assert response.status_code == 303, response.text
    evidence = db.exec(select(Evidence).where(Evidence.incident_id == incident.id)).one()
    return close(db, incident), evidence


def _delete(client, incident, **data):
    path = f"/admin/retention/incidents/{incident.id}/delete"
    form = csrf_from(client.get(path).text)
    return client.post(path, data={"csrf_token": form, **data})


def test_the_page_and_its_htmx_fragment(client, db):
    incident = closed_incident(db, offender_type="pupil")
    signed_in_as(client, db, Role.dsl)
    page = client.get("/admin/retention")
    assert page.status_code == 200 and "<html" in page.text
    assert page.headers["vary"] == "HX-Request"
    for text in (
        "Due for review",
        "Legal holds",
        "Retention schedule",
        "data protection officer",
        "transferred, not deleted",
        incident.reference,
        f'href="/incidents/{incident.id}/chronology"',  # export to transfer the record
        "IRMS Information Management Toolkit for Schools",
    ):
        assert text in page.text, text
    fragment = client.get("/admin/retention?show=incident", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "Retention schedule" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="retention-queue">')
    assert incident.reference in fragment.text and "Keep for longer" in fragment.text
    assert "Staff checklists" not in fragment.text
    assert client.get("/admin/retention?show=everything").status_code == 422


def test_empty_queue_says_what_would_show(client, db):
    make_incident(db)
    signed_in_as(client, db, Role.deputy_dsl)
    page = client.get("/admin/retention").text
    assert "an open incident never does" in page
    assert "Nothing has been deleted after review yet" in page
    assert "No record is under a legal hold" in page


def test_a_period_of_zero_is_refused_with_a_clear_message(client, db):
    signed_in_as(client, db, Role.dsl)
    path = "/admin/retention/rules/incident_adult"
    for years, message in (
        ("0", "at least one year"),
        ("-2", "at least one year"),
        ("six", "whole number"),
        ("", "whole number"),
        ("101", "at most 100"),
    ):
        refused = _post(client, path, years=years)
        assert refused.status_code == 422, years
        assert message in refused.text and "Nothing was saved" in refused.text
    rows = db.exec(select(RetentionRule).where(RetentionRule.record_type == "incident_adult")).all()
    assert [r.years for r in rows] == [6]
    saved = _post(client, path, years="7")
    assert saved.status_code == 303
    assert saved.headers["location"] == "/admin/retention?notice=rule#schedule"
    assert "The retention period was saved" in client.get(saved.headers["location"]).text
    db.refresh(rows[0])
    assert rows[0].years == 7
    assert _post(client, "/admin/retention/rules/forever", years="7").status_code == 404


def test_keeping_a_record_for_longer(client, db):
    incident = closed_incident(db)
    signed_in_as(client, db, Role.deputy_dsl)
    path = f"/admin/retention/incidents/{incident.id}/keep"
    assert "Give the reason" in _post(client, path, years="3", reason="").text
    kept = _post(client, path, years="3", reason="The family has complained to Ofsted.")
    assert kept.status_code == 303
    assert incident.reference not in client.get("/admin/retention").text
    chronology = client.get(f"/incidents/{incident.id}").text
    assert "kept for 3 more years" in chronology and "complained to Ofsted" in chronology
    banner = chronology[chronology.index('id="kept-longer"') :][:400]
    assert "Kept until" in banner and "complained to Ofsted" in banner


def test_a_held_record_survives_a_purge_attempt_and_an_unheld_one_is_gone_with_its_files(
    client, db, settings
):
    signed_in_as(client, db, Role.dsl)
    held, held_evidence = _with_screenshot(client, db)
    unheld, unheld_evidence = _with_screenshot(client, db)
    held_file = settings.evidence_dir / held_evidence.storage_name
    unheld_file = settings.evidence_dir / unheld_evidence.storage_name
    assert held_file.exists() and unheld_file.exists()
    placed = _post(
        client,
        "/admin/retention/holds",
        reference=held.reference.lower(),
        reason="Letter before claim from a solicitor.",
    )
    assert placed.status_code == 303
    page = client.get("/admin/retention").text
    row = page[page.index(f'id="incident-{held.id}"') :]
    assert "Held" in row[:2000] and "Letter before claim" in row[:2000]
    assert f"/admin/retention/incidents/{held.id}/delete" not in page
    # Whoever works the incident sees the hold on it; an incident without one says nothing.
    held_page = client.get(f"/incidents/{held.id}").text
    banner = held_page[held_page.index('id="legal-hold"') :][:400]
    assert "Legal hold" in banner and "Letter before claim from a solicitor" in banner
    unheld_page = client.get(f"/incidents/{unheld.id}").text
    assert 'id="legal-hold"' not in unheld_page and 'id="kept-longer"' not in unheld_page

    # The confirmation page refuses, and so does the deletion itself.
    confirm = client.get(f"/admin/retention/incidents/{held.id}/delete")
    assert "under a legal hold" in confirm.text and "Delete for good" not in confirm.text
    refused = client.post(
        f"/admin/retention/incidents/{held.id}/delete",
        data={
            "csrf_token": csrf_from(confirm.text),
            "reason": "period_over",
            "confirm": "true",
        },
    )
    assert refused.status_code == 409
    assert "under a legal hold" in refused.text and "Nothing was deleted" in refused.text

    deleted = _delete(client, unheld, reason="period_over", confirm="true")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/admin/retention?notice=deleted#queue"
    assert db.get(Incident, held.id) is not None and held_file.exists()
    assert db.get(Incident, unheld.id) is None and not unheld_file.exists()
    assert client.get(f"/incidents/{unheld.id}").status_code == 404
    page = client.get("/admin/retention").text
    deletions = page[page.index('id="deletions-heading"') :]
    assert unheld.reference in deletions and held.reference not in deletions


def test_deletion_asks_for_confirmation_and_a_reason(client, db):
    incident = closed_incident(db, offender_type="pupil")
    signed_in_as(client, db, Role.dsl)
    confirm = client.get(f"/admin/retention/incidents/{incident.id}/delete")
    assert confirm.status_code == 200
    assert "Has the pupil moved school?" in confirm.text
    assert f'href="/incidents/{incident.id}/chronology"' in confirm.text
    assert re.search(r"<li>Chronology entries: \d+</li>", confirm.text)
    assert "I have reviewed this record" in confirm.text
    assert confirm.headers["vary"] == "HX-Request"
    for data, message in (
        ({"reason": "period_over"}, "Tick the box"),
        ({"confirm": "true"}, "Choose the reason"),
        ({"reason": "bored", "confirm": "true"}, "Choose the reason"),
    ):
        refused = _delete(client, incident, **data)
        assert refused.status_code == 422 and message in refused.text
        assert db.get(Incident, incident.id) is not None
    fragment = client.post(
        f"/admin/retention/incidents/{incident.id}/delete",
        data={"csrf_token": csrf_from(confirm.text), "reason": "period_over"},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 422 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="confirm-delete">')
    done = client.post(
        f"/admin/retention/incidents/{incident.id}/delete",
        data={"csrf_token": csrf_from(confirm.text), "reason": "period_over", "confirm": "true"},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 204
    assert done.headers["HX-Redirect"] == "/admin/retention?notice=deleted#queue"
    assert db.get(Incident, incident.id) is None


def test_a_record_not_due_cannot_be_deleted(client, db):
    recent = closed_incident(db, years=1)
    still_open = make_incident(db)
    signed_in_as(client, db, Role.dsl)
    assert "not due for review" in client.get(f"/admin/retention/incidents/{recent.id}/delete").text
    assert (
        "it is not closed" in client.get(f"/admin/retention/incidents/{still_open.id}/delete").text
    )
    for incident, message in ((recent, "not due for review"), (still_open, "is not closed")):
        refused = client.post(
            f"/admin/retention/incidents/{incident.id}/delete",
            data={
                "csrf_token": page_csrf(client, "/admin/retention"),
                "reason": "period_over",
                "confirm": "true",
            },
        )
        assert refused.status_code == 409 and message in refused.text
        assert db.get(Incident, incident.id) is not None


def test_deputies_review_but_only_the_dsl_deletes_and_removes_holds(client, db):
    incident = closed_incident(db)
    signed_in_as(client, db, Role.deputy_dsl)
    page = client.get("/admin/retention").text
    assert "Only the DSL deletes records" in page
    held = _post(
        client, f"/admin/retention/incidents/{incident.id}/hold", reason="Complaint to governors."
    )
    assert held.status_code == 303
    assert "Only the DSL removes a hold" in client.get("/admin/retention").text
    for method, path, data in (
        ("GET", f"/admin/retention/incidents/{incident.id}/delete", None),
        ("POST", f"/admin/retention/incidents/{incident.id}/delete", {"confirm": "true"}),
        ("POST", f"/admin/retention/incidents/{incident.id}/release", {"reason": "Over."}),
    ):
        response = client.get(path) if method == "GET" else _post(client, path, **data)
        assert response.status_code == 403, path
        assert "Only the Designated Safeguarding Lead" in response.text
    client.cookies.clear()
    signed_in_as(client, db, Role.dsl)
    released = _post(
        client, f"/admin/retention/incidents/{incident.id}/release", reason="Complaint resolved."
    )
    assert released.status_code == 303
    events = db.exec(
        select(AuditEvent.action).where(AuditEvent.action.like("retention.hold%"))
    ).all()
    assert events == ["retention.hold_placed", "retention.hold_removed"]


def test_other_roles_are_refused(client, db):
    incident = closed_incident(db)
    for role in (Role.staff, Role.slt, Role.admin):
        client.cookies.clear()
        signed_in_as(client, db, role)
        assert client.get("/admin/retention").status_code == 403
        for action in ("keep", "hold", "release", "delete"):
            response = client.post(
                f"/admin/retention/incidents/{incident.id}/{action}",
                data={"csrf_token": page_csrf(client, "/account"), "reason": "x", "years": "1"},
            )
            assert response.status_code == 403, (role, action)
    assert db.get(Incident, incident.id) is not None


def test_a_hold_by_an_unknown_reference_is_explained(client, db):
    signed_in_as(client, db, Role.dsl)
    refused = _post(client, "/admin/retention/holds", reference="INC-1999-0001", reason="Claim.")
    assert (
        refused.status_code == 404 and "No incident has the reference INC-1999-0001" in refused.text
    )
    incident = make_incident(db)
    assert (
        _post(client, "/admin/retention/holds", reference=incident.reference, reason="").status_code
        == 422
    )


def test_the_home_page_says_how_many_records_are_due(client, db):
    closed_incident(db)
    closed_incident(db)
    dsl = signed_in_as(client, db, Role.dsl)
    assert "due for retention review" not in client.get("/").text
    service.refresh_count(session=db, school_id=dsl.school_id)
    db.commit()
    home = client.get("/").text
    assert "2 records are due for retention review" in home
    assert 'href="/admin/retention#queue"' in home
    client.cookies.clear()
    signed_in_as(client, db, Role.slt)
    assert "due for retention review" not in client.get("/").text


def test_the_page_uses_a_fixed_number_of_queries(client, db, count_queries):
    signed_in_as(client, db, Role.dsl)
    closed_incident(db)

    def measure():
        with count_queries() as counter:
            assert client.get("/admin/retention").status_code == 200
        return counter.count

    few = measure()
    for _ in range(6):
        closed_incident(db)
        closed_incident(db, offender_type="pupil")
    assert measure() == few
