"""Reporting a concern, the DSL's queue and the incident page, as people use them."""

import re
from datetime import timedelta

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.checklists import service as checklists_service
from app.core.types import utcnow
from app.incidents.models import Evidence, Incident, IncidentStatus, TimelineEntry
from tests.factories import make_incident, make_user, page_csrf, png, sign_in


def _local(delta_hours=-2) -> str:
    from zoneinfo import ZoneInfo

    return (
        (utcnow() + timedelta(hours=delta_hours))
        .astimezone(ZoneInfo("Europe/London"))
        .strftime("%Y-%m-%dT%H:%M")
    )


INVALID_FIELD = re.compile(r'<(?:input|select|textarea) id="(\w+)"[^>]*aria-invalid="true"')


def _report_form(client, **overrides):
    return {
        "title": "Abusive TikTok about Mr Example",
        "description": "A video mocking him, shared in Year 9 group chats.",
        "occurred_at": _local(),
        "platform": "tiktok",
        "category": "malicious_post",
        "offender_type": "pupil",
        "target_type": "staff",
        "csrf_token": page_csrf(client, "/report"),
        **overrides,
    }


def _count(db, model):
    return len(db.exec(select(model)).all())


def test_staff_report_a_concern_with_a_screenshot(client, db, settings):
    staff = make_user(db)
    sign_in(client, staff)
    assert "Report a concern" in client.get("/").text  # reachable from every page
    response = client.post(
        "/report",
        data={**_report_form(client), "captured_at": _local(-1), "content_flags": ["abusive"]},
        files=[("screenshots", ("shot.png", png(), "image/png"))],
    )
    assert response.status_code == 303, response.text
    incident = db.exec(select(Incident)).one()
    assert response.headers["location"] == f"/incidents?notice=reported&ref={incident.reference}"
    assert incident.reported_by_id == staff.id and incident.content_flags == ["abusive"]
    (evidence,) = db.exec(select(Evidence)).all()
    assert evidence.content_type == "image/png" and len(evidence.sha256) == 64
    assert (settings.evidence_dir / evidence.storage_name).exists()
    mine = client.get(response.headers["location"]).text
    assert incident.reference in mine and "Not yet" in mine


def test_bad_reports_are_explained_and_nothing_is_written(client, db, settings):
    sign_in(client, make_user(db))
    cases = [
        ({"title": ""}, "title"),
        ({"platform": "myspace"}, "Choose the platform from the list"),
        ({"occurred_at": _local(+48)}, "cannot be in the future"),
        ({"occurred_at": "yesterday"}, "must be a date and time"),
        ({"offender_type": ""}, "who seems responsible"),
    ]
    for overrides, message in cases:
        response = client.post(
            "/report", data=_report_form(client, **overrides), headers={"HX-Request": "true"}
        )
        assert response.status_code == 422, overrides
        assert message in response.text, (overrides, response.text[:300])
        assert '<form id="report-form"' in response.text
        # The field at fault is marked for assistive technology, and points at the message.
        (field,) = overrides
        marked = re.findall(
            r'<(?:input|select|textarea) id="(\w+)"[^>]*aria-invalid="true"', response.text
        )
        assert marked == [field], (overrides, marked)
        assert 'aria-describedby="report-error"' in response.text
        assert 'id="report-error"' in response.text
    assert _count(db, Incident) == 0 and _count(db, TimelineEntry) == 0


def test_an_indecent_image_is_refused_and_a_description_asked_for(client, db, settings):
    sign_in(client, make_user(db))
    response = client.post(
        "/report",
        data=_report_form(client, content_flags=["indecent_image"]),
        files=[("screenshots", ("image.png", png(), "image/png"))],
    )
    assert response.status_code == 422
    assert "describe what you saw in words instead" in response.text
    assert _count(db, Incident) == 0
    assert not any(settings.evidence_dir.rglob("*")) if settings.evidence_dir.exists() else True
    described = client.post(
        "/report",
        data=_report_form(
            client,
            content_flags=["indecent_image"],
            evidence_note="A nude image of a Year 10 pupil shared on Snapchat.",
        ),
    )
    assert described.status_code == 303
    (evidence,) = db.exec(select(Evidence)).all()
    assert evidence.storage_name is None and "Year 10" in evidence.note


def test_a_disguised_file_is_refused_on_the_report(client, db):
    sign_in(client, make_user(db))
    response = client.post(
        "/report",
        data=_report_form(client),
        files=[
            ("screenshots", ("shot.png", b"<html><script>alert(1)</script></html>", "image/png"))
        ],
    )
    assert response.status_code == 422
    assert _count(db, Incident) == 0 and _count(db, Evidence) == 0


def test_staff_see_only_their_own_reports(client, db):
    staff, other = make_user(db), make_user(db)
    mine = make_incident(db, reporter=staff, title="Mine")
    make_incident(db, reporter=other, title="Someone else's")
    sign_in(client, staff)
    page = client.get("/incidents").text
    assert "Mine" in page and "Someone else" not in page
    assert client.get(f"/incidents/{mine.id}").status_code == 403


def test_slt_see_counts_not_details(client, db):
    make_incident(db, title="Sensitive details")
    sign_in(client, make_user(db, role=Role.slt))
    page = client.get("/incidents").text
    assert "Incidents across the school" in page and "Sensitive details" not in page


def test_admin_sees_no_incident_details(client, db):
    incident = make_incident(db, title="Sensitive details")
    sign_in(client, make_user(db, role=Role.admin))
    assert "Sensitive details" not in client.get("/incidents").text
    assert client.get(f"/incidents/{incident.id}").status_code == 403


def test_dsl_queue_filters_sorts_and_counts(client, db):
    make_incident(db, title="Petition about the head", category="online_petition")
    target = make_incident(db, title="Snapchat threats", platform="snapchat")
    target.severity = "high"
    db.add(target)
    db.commit()
    sign_in(client, make_user(db, role=Role.dsl))
    page = client.get("/incidents").text
    assert "open: <strong>2</strong>" in page
    filtered = client.get(
        "/incidents", params={"platform": "snapchat"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in filtered.text
    assert "Snapchat threats" in filtered.text and "Petition" not in filtered.text
    by_text = client.get("/incidents", params={"q": "petition"}).text
    assert "Petition about the head" in by_text and "Snapchat threats" not in by_text
    severe = client.get("/incidents", params={"sort": "severity"}).text
    assert severe.index("Snapchat threats") < severe.index("Petition about the head")
    assert client.get("/incidents", params={"status": "lost"}).status_code == 422


def test_the_queue_offers_to_filter_by_the_active_safeguarding_leads_only(client, db):
    dsl = make_user(db, role=Role.dsl)
    deputy = make_user(db, role=Role.deputy_dsl)
    left = make_user(db, role=Role.deputy_dsl, is_active=False)
    teacher = make_user(db)
    sign_in(client, dsl)
    page = client.get("/incidents").text
    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page)
    assert {int(user_id) for user_id, _ in offered} == {dsl.id, deputy.id}
    names = [name for _, name in offered]
    assert names == sorted(names)
    assert left.display_name not in page and teacher.display_name not in page


def test_queue_pages_through_by_keyset(client, db):
    reporter = make_user(db)
    for n in range(30):
        make_incident(db, reporter=reporter, title=f"Incident number {n:02d}")
    sign_in(client, make_user(db, role=Role.dsl))
    first = client.get("/incidents").text
    next_link = re.search(r'href="(/incidents\?[^"]*after=[^"]+)" rel="next"', first).group(1)
    second = client.get(next_link.replace("&amp;", "&")).text
    titles = lambda html: set(re.findall(r"Incident number \d\d", html))  # noqa: E731
    assert len(titles(first)) == 25 and len(titles(second)) == 5
    assert not titles(first) & titles(second)


def test_queue_uses_a_fixed_number_of_queries(client, db, count_queries):
    sign_in(client, make_user(db, role=Role.dsl))
    reporter = make_user(db)
    make_incident(db, reporter=reporter)

    def measure():
        with count_queries() as counter:
            assert client.get("/incidents").status_code == 200
        return counter.count

    small = measure()
    for _ in range(12):
        make_incident(db, reporter=reporter)
    assert measure() == small


def test_viewing_an_incident_is_audited_and_shown_as_seen(client, anon, db):
    staff = make_user(db)
    incident = make_incident(db, reporter=staff)
    dsl = make_user(db, role=Role.dsl)
    sign_in(client, dsl)
    page = client.get(f"/incidents/{incident.id}")
    assert page.status_code == 200 and incident.reference in page.text
    assert page.headers["cache-control"] == "no-store"
    viewed = db.exec(select(AuditEvent).where(AuditEvent.action == "incident.viewed")).all()
    assert [e.actor_user_id for e in viewed] == [dsl.id]
    sign_in(anon, staff)
    assert "Yes," in anon.get("/incidents").text


def test_dsl_works_the_incident(client, db):
    dsl = make_user(db, role=Role.dsl)
    incident = make_incident(db)
    sign_in(client, dsl)
    token = page_csrf(client, f"/incidents/{incident.id}")

    def post(path, **data):
        return client.post(
            f"/incidents/{incident.id}/{path}",
            data={**data, "csrf_token": token},
        )

    assert post("update", assigned_to=str(dsl.id)).status_code == 303
    step = checklists_service.playbook_of(session=db, incident_id=incident.id).items[0]
    assert post(f"playbook/{step.id}", done="true", note="Called Mr Example").status_code == 303
    refused = post("entries", kind="decision", text="No police referral.")
    assert refused.status_code == 422 and "needs the reasons" in refused.text
    assert (
        post(
            "entries",
            kind="decision",
            text="No police referral.",
            rationale="No threat or hate content; platform removal under way.",
        ).status_code
        == 303
    )
    assert (
        post("entries", kind="contact", text="Reported to POSH.", contact_with="posh").status_code
        == 303
    )
    assert post("update", removal_requested="true").status_code == 303
    no_outcome = post("update", status="closed")
    assert no_outcome.status_code == 422 and "needs its outcome" in no_outcome.text
    assert post("update", status="closed", outcome="Video removed by TikTok.").status_code == 303
    db.refresh(incident)
    assert incident.status == IncidentStatus.closed and incident.removal_requested
    kinds = [e.kind.value for e in db.exec(select(TimelineEntry).order_by(TimelineEntry.id)).all()]
    assert kinds == [
        "reported",
        "assignment",
        "playbook_step",
        "decision",
        "contact",
        "removal",
        "status_change",
    ]
    reopen = post("update", status="in_progress")
    assert reopen.status_code == 422 and "needs a reason" in reopen.text


def test_evidence_downloads_as_an_attachment_with_its_hash_checked(client, db, settings):
    dsl = make_user(db, role=Role.dsl)
    incident = make_incident(db)
    sign_in(client, dsl)
    token = page_csrf(client, f"/incidents/{incident.id}")
    added = client.post(
        f"/incidents/{incident.id}/evidence",
        data={"note": "From the group chat", "csrf_token": token},
        files={"file": ("chat.png", png(), "image/png")},
    )
    assert added.status_code == 303
    evidence = db.exec(select(Evidence)).one()
    download = client.get(f"/incidents/{incident.id}/evidence/{evidence.id}")
    assert download.status_code == 200 and download.content == png()
    assert download.headers["content-disposition"].startswith("attachment;")
    path = settings.evidence_dir / evidence.storage_name
    path.chmod(0o640)
    path.write_bytes(b"tampered")
    assert client.get(f"/incidents/{incident.id}/evidence/{evidence.id}").status_code == 409


def test_chronology_exports_are_audited(client, db):
    dsl = make_user(db, role=Role.dsl)
    incident = make_incident(db)
    sign_in(client, dsl)
    printable = client.get(f"/incidents/{incident.id}/chronology")
    assert printable.status_code == 200 and "Confidential" in printable.text
    csv_export = client.get(f"/incidents/{incident.id}/chronology", params={"format": "csv"})
    assert csv_export.headers["content-disposition"].endswith('.csv"')
    assert csv_export.text.splitlines()[0] == "time,kind,by,text,rationale,contact_with"
    as_json = client.get(f"/incidents/{incident.id}/chronology", params={"format": "json"}).json()
    assert as_json["reference"] == incident.reference
    assert [e["kind"] for e in as_json["entries"]][-1] == "export"
    exports = db.exec(select(TimelineEntry).where(TimelineEntry.kind == "export")).all()
    assert len(exports) == 3
    assert (
        client.get(f"/incidents/{incident.id}/chronology", params={"format": "docx"}).status_code
        == 422
    )


def test_dsl_links_people_from_the_roster(client, db):
    from app.incidents.models import IncidentPerson
    from app.people.models import Person

    school_id = make_user(db).school_id
    pupil = Person(
        school_id=school_id,
        external_id="MIS-9",
        kind="pupil",
        forename="Jordan",
        surname="Example",
        registration_group="9C",
    )
    db.add(pupil)
    db.commit()
    incident = make_incident(db)
    sign_in(client, make_user(db, role=Role.dsl))
    found = client.get(f"/incidents/{incident.id}", params={"person_q": "jordan"}).text
    assert "Jordan Example" in found and f'value="{pupil.id}"' in found
    token = page_csrf(client, f"/incidents/{incident.id}")
    linked = client.post(
        f"/incidents/{incident.id}/people",
        data={"person_id": str(pupil.id), "role": "subject", "csrf_token": token},
    )
    assert linked.status_code == 303
    described = client.post(
        f"/incidents/{incident.id}/people",
        data={"label": "An older sibling", "role": "witness", "csrf_token": token},
    )
    assert described.status_code == 303
    for data, message in [
        ({"role": "subject"}, "short description"),
        ({"person_id": "99999", "role": "victim"}, "not on the school"),
        ({"label": "x", "role": "bystander"}, "how they are involved"),
    ]:
        refused = client.post(
            f"/incidents/{incident.id}/people", data={**data, "csrf_token": token}
        )
        assert refused.status_code == 422 and message in refused.text
    links = db.exec(select(IncidentPerson)).all()
    assert [(link.person_id, link.role.value) for link in links] == [
        (pupil.id, "subject"),
        (None, "witness"),
    ]
    assert "Jordan Example" in client.get(f"/incidents/{incident.id}").text


def test_the_directory_is_shipped_and_editable(client, db):
    from app.incidents.models import Contact

    sign_in(client, make_user(db, role=Role.deputy_dsl))
    page = client.get("/contacts").text
    assert "0344 381 4772" in page and "helpline@saferinternet.org.uk" in page
    lado = db.exec(select(Contact).where(Contact.key == "lado")).one()
    token = page_csrf(client, "/contacts")
    bad = client.post(
        f"/contacts/{lado.id}",
        data={"name": "LADO", "url": "javascript:alert(1)", "csrf_token": token},
    )
    assert bad.status_code == 422 and "https://" in bad.text
    saved = client.post(
        f"/contacts/{lado.id}",
        data={"name": "LADO (Example County)", "phone": "01234 567890", "csrf_token": token},
    )
    assert saved.status_code == 303
    assert "01234 567890" in client.get("/contacts").text
    db.refresh(lado)
    assert lado.name == "LADO (Example County)"


def test_evidence_needs_a_file_or_words(client, db):
    incident = make_incident(db)
    sign_in(client, make_user(db, role=Role.dsl))
    response = client.post(
        f"/incidents/{incident.id}/evidence",
        data={"note": "  ", "csrf_token": page_csrf(client, "/incidents")},
    )
    assert response.status_code == 422 and "Describe what you saw" in response.text
    assert db.exec(select(Evidence)).all() == []
