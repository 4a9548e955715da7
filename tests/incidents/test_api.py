"""The incidents API: create (idempotently), read, change, timeline, evidence, sync."""

import pytest
from sqlmodel import select

from app.auth.models import Scope, User
from app.core.types import utcnow
from app.incidents.models import Incident, TimelineEntry
from tests.factories import api_headers, make_incident, make_token, png


def _body(**overrides):
    return {
        "title": "Phone used to film a lesson",
        "description": "A video of a Year 8 lesson appeared on Snapchat.",
        "occurred_at": utcnow().isoformat(),
        "platform": "snapchat",
        "category": "phone_misuse",
        "offender_type": "other_adult",
        "target_type": "staff",
        **overrides,
    }


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def test_create_read_update_and_timeline(client, db):
    headers = api_headers(db, Scope.incidents_write, Scope.incidents_read)
    created = client.post("/api/v1/incidents", json=_body(), headers=headers)
    assert created.status_code == 201
    incident = created.json()
    assert incident["reference"].startswith("INC-") and incident["status"] == "open"
    assert incident["severity"] == "low" and incident["reported_by"] is None
    read = client.get(f"/api/v1/incidents/{incident['id']}", headers=headers)
    assert read.json()["title"] == "Phone used to film a lesson"
    patched = client.patch(
        f"/api/v1/incidents/{incident['id']}",
        json={"status": "in_progress", "severity": "medium"},
        headers=headers,
    )
    assert patched.json()["status"] == "in_progress" and patched.json()["severity"] == "medium"
    added = client.post(
        f"/api/v1/incidents/{incident['id']}/timeline",
        json={
            "kind": "decision",
            "text": "Sanction under the phone policy.",
            "rationale": "Second offence this term.",
        },
        headers=headers,
    )
    assert added.status_code == 201 and added.json()["kind"] == "decision"
    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline", headers=headers).json()
    assert [e["kind"] for e in timeline["data"]] == [
        "reported",
        "status_change",
        "note",
        "decision",
    ]


def test_a_repeated_idempotency_key_returns_the_first_result(client, db):
    headers = {**api_headers(db, Scope.incidents_write), "Idempotency-Key": "behaviour-event-42"}
    body = _body()
    first = client.post("/api/v1/incidents", json=body, headers=headers)
    again = client.post("/api/v1/incidents", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(db.exec(select(Incident)).all()) == 1
    other = client.post("/api/v1/incidents", json=_body(title="Different"), headers=headers)
    assert "different request body" in _problem(other, 409)["detail"]


def test_bad_input_is_a_problem_and_writes_nothing(client, db):
    headers = api_headers(db, Scope.incidents_write)
    cases = [
        {k: v for k, v in _body().items() if k != "title"},
        _body(platform="myspace"),
        _body(content_flags=["rude"]),
        _body(occurred_at="2999-01-01T00:00:00Z"),
        _body(occurred_at="2026-01-01T00:00:00"),
        _body(title="x" * 201),
        _body(colour="red"),
        _body(lado_harm_test={"harmed_child": True, "extra": False}),
    ]
    for body in cases:
        problem = _problem(client.post("/api/v1/incidents", json=body, headers=headers), 422)
        assert problem["errors"]
    assert db.exec(select(Incident)).all() == []


def test_reopening_without_a_reason_is_refused(client, db):
    headers = api_headers(db, Scope.incidents_write, Scope.incidents_read)
    incident = make_incident(db)
    client.patch(
        f"/api/v1/incidents/{incident.id}",
        json={"status": "closed", "outcome": "Sorted."},
        headers=headers,
    )
    problem = _problem(
        client.patch(f"/api/v1/incidents/{incident.id}", json={"status": "open"}, headers=headers),
        422,
    )
    assert problem["errors"][0]["field"] == "reason"
    db.refresh(incident)
    assert incident.status == "closed"


def test_listing_filters_and_syncs_by_change(client, db):
    headers = api_headers(db, Scope.incidents_read)
    make_incident(db, title="TikTok one", platform="tiktok")
    make_incident(db, title="Snapchat one", platform="snapchat")
    listed = client.get("/api/v1/incidents", params={"platform": "tiktok"}, headers=headers).json()
    assert [i["title"] for i in listed["data"]] == ["TikTok one"]
    searched = client.get("/api/v1/incidents", params={"q": "INC-"}, headers=headers).json()
    assert len(searched["data"]) == 2
    page = client.get("/api/v1/incidents", params={"limit": 1}, headers=headers).json()
    rest = client.get(
        "/api/v1/incidents", params={"cursor": page["next_cursor"]}, headers=headers
    ).json()
    assert {i["title"] for i in page["data"] + rest["data"]} == {"TikTok one", "Snapchat one"}
    _problem(client.get("/api/v1/incidents", params={"status": "lost"}, headers=headers), 422)


def test_evidence_upload_through_the_api(client, db):
    headers = api_headers(db, Scope.incidents_write)
    incident = make_incident(db)
    response = client.post(
        f"/api/v1/incidents/{incident.id}/evidence",
        headers=headers,
        data={"captured_at": utcnow().isoformat(), "note": "from MIS"},
        files={"file": ("a.png", png((20, 20), (0, 0, 0)), "image/png")},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["content_type"] == "image/png" and len(body["sha256"]) == 64
    bad = client.post(
        f"/api/v1/incidents/{incident.id}/evidence",
        headers=headers,
        files={"file": ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")},
    )
    _problem(bad, 422)
    kinds = [e.kind.value for e in db.exec(select(TimelineEntry)).all()]
    assert kinds.count("evidence") == 1


def test_reading_needs_read_scope_and_writing_write_scope(client, db):
    incident = make_incident(db)
    read_only = api_headers(db, Scope.incidents_read)
    _problem(
        client.patch(
            f"/api/v1/incidents/{incident.id}", json={"severity": "high"}, headers=read_only
        ),
        403,
    )
    _problem(
        client.get(f"/api/v1/incidents/{incident.id}", headers=api_headers(db, Scope.people_read)),
        403,
    )
    _problem(client.get("/api/v1/incidents/999999", headers=read_only), 404)


def test_the_list_uses_a_fixed_number_of_queries(client, db, count_queries):
    headers = api_headers(db, Scope.incidents_read)
    person = db.get(User, make_incident(db).reported_by_id)

    def measure():
        with count_queries() as counter:
            assert client.get("/api/v1/incidents", headers=headers).status_code == 200
        return counter.count

    measure()  # the first use of a token also records when it was used
    small = measure()
    for _ in range(15):
        make_incident(db, reporter=person)
    assert measure() == small


def test_the_same_key_at_the_same_moment_is_a_conflict_not_a_duplicate(db):
    from app.core import idempotency
    from app.core.errors import Conflict

    _, token = make_token(db, Scope.incidents_write)
    body = {"title": "x"}
    idempotency.remember(
        session=db, token_id=token.id, key="k-1", body=body, status=201, response={}
    )
    with pytest.raises(Conflict, match="already being handled"):
        idempotency.remember(
            session=db, token_id=token.id, key="k-1", body=body, status=201, response={}
        )


def test_null_for_a_field_that_cannot_be_empty_is_refused_not_a_crash(client, db):
    headers = api_headers(db, Scope.incidents_write, Scope.incidents_read)
    incident = client.post("/api/v1/incidents", json=_body(), headers=headers).json()
    for field in ("title", "target_type", "status", "content_flags", "removal_requested"):
        response = client.patch(
            f"/api/v1/incidents/{incident['id']}", json={field: None}, headers=headers
        )
        assert _problem(response, 422)["errors"][0]["field"] == field
    read = client.get(f"/api/v1/incidents/{incident['id']}", headers=headers).json()
    assert read == incident
    unassigned = client.patch(
        f"/api/v1/incidents/{incident['id']}", json={"assigned_to": None}, headers=headers
    )
    assert unassigned.status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"suspected_criminal_offence": 0},
        {"removal_requested": "yes"},
        {"occurred_at": "0"},
        {"occurred_at": 1700000000},
        {"occurred_at": "2026-01-01"},
        {"people": [{"person_id": "12", "role": "victim"}]},
        {"lado_harm_test": {"unsuitable": 1}},
    ],
)
def test_values_of_the_wrong_type_are_refused_not_converted(client, db, overrides):
    headers = api_headers(db, Scope.incidents_write)
    response = client.post("/api/v1/incidents", json=_body(**overrides), headers=headers)
    _problem(response, 422)
    assert db.exec(select(Incident)).all() == []


def test_an_id_too_large_for_the_database_is_refused_not_a_crash(client, db):
    headers = api_headers(db, Scope.incidents_write, Scope.incidents_read)
    huge = 2**63
    _problem(client.get(f"/api/v1/incidents/{huge}", headers=headers), 422)
    _problem(client.get(f"/api/v1/incidents/{huge}/timeline", headers=headers), 422)
    _problem(client.get("/api/v1/incidents", params={"assigned_to": huge}, headers=headers), 422)
    response = client.patch("/api/v1/incidents/1", json={"assigned_to": huge}, headers=headers)
    _problem(response, 422)


def test_a_timeline_entry_kind_is_one_of_three(client, db):
    headers = api_headers(db, Scope.incidents_write)
    incident = client.post("/api/v1/incidents", json=_body(), headers=headers).json()
    url = f"/api/v1/incidents/{incident['id']}/timeline"
    for body in (
        {"kind": "escalation", "text": "Escalated by hand"},
        {"kind": "note", "text": "   "},
    ):
        _problem(client.post(url, json=body, headers=headers), 422)
    assert (
        client.post(url, json={"kind": "note", "text": "Seen"}, headers=headers).status_code == 201
    )
