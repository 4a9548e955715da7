"""ETag and If-None-Match on single resources, If-Match on PATCH: no lost updates."""

from sqlmodel import func, select

from app.auth.models import Scope
from app.incidents.models import TimelineEntry
from tests.factories import api_headers, give_checklist, make_incident, make_user


def _entries(db, incident_id: int) -> int:
    return db.exec(
        select(func.count())
        .select_from(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id)
    ).one()


def test_an_unchanged_incident_is_answered_304_and_a_changed_one_in_full(client, db):
    headers = api_headers(db, Scope.incidents_read, Scope.incidents_write)
    incident = make_incident(db)
    url = f"/api/v1/incidents/{incident.id}"
    first = client.get(url, headers=headers)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"')

    again = client.get(url, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(url, headers={**headers, "If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304

    client.patch(url, json={"status": "in_progress"}, headers=headers)
    changed = client.get(url, headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["status"] == "in_progress"
    assert changed.headers["etag"] != etag


def test_a_patch_with_a_stale_if_match_is_refused_and_writes_nothing(client, db):
    headers = api_headers(db, Scope.incidents_read, Scope.incidents_write)
    incident = make_incident(db)
    url = f"/api/v1/incidents/{incident.id}"
    etag = client.get(url, headers=headers).headers["etag"]

    # Someone else changes the incident after we read it.
    other = client.patch(url, json={"severity": "high"}, headers={**headers, "If-Match": etag})
    assert other.status_code == 200
    new_etag = other.headers["etag"]
    assert new_etag != etag
    entries = _entries(db, incident.id)

    stale = client.patch(url, json={"severity": "low"}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert "changed since you read it" in stale.json()["detail"]
    db.expire_all()
    assert client.get(url, headers=headers).json()["severity"] == "high"
    assert _entries(db, incident.id) == entries

    fresh = client.patch(
        url, json={"status": "in_progress"}, headers={**headers, "If-Match": new_etag}
    )
    assert fresh.status_code == 200 and fresh.json()["status"] == "in_progress"
    assert client.patch(url, json={"status": "resolved"}, headers={**headers, "If-Match": "*"})


def test_checklist_runs_and_people_have_etags_too(client, db):
    headers = api_headers(db, Scope.checklists_read, Scope.people_write, Scope.people_read)
    run = give_checklist(db, make_user(db))
    url = f"/api/v1/checklist-runs/{run.id}"
    first = client.get(url, headers=headers)
    assert first.status_code == 200 and first.json()["id"] == run.id
    assert (
        client.get(url, headers={**headers, "If-None-Match": first.headers["etag"]}).status_code
        == 304
    )

    person = {"external_id": "S1", "kind": "staff", "forename": "Ann", "surname": "Lee"}
    client.put("/api/v1/people", json={"people": [person]}, headers=headers)
    listed = client.get("/api/v1/people", headers=headers).json()["data"][0]
    read = client.get(f"/api/v1/people/{listed['id']}", headers=headers)
    assert read.json() == listed
    assert (
        client.get(
            f"/api/v1/people/{listed['id']}",
            headers={**headers, "If-None-Match": read.headers["etag"]},
        ).status_code
        == 304
    )
    assert client.get("/api/v1/people/999999", headers=headers).status_code == 404
