"""The checklists API: templates, runs with incremental sync, giving out and ticking items."""

from datetime import timedelta

from sqlmodel import select

from app.auth.models import Scope
from app.checklists.models import ChecklistRun, ItemCompletion
from app.core.types import utcnow
from tests.factories import api_headers, make_user, shipped_template


def test_list_templates_with_items(client, db):
    response = client.get("/api/v1/checklists", headers=api_headers(db, Scope.checklists_read))
    assert response.status_code == 200
    body = response.json()
    conduct = next(t for t in body["data"] if t["key"] == "staff-conduct")
    assert len(conduct["items"]) == 11 and conduct["items"][0]["position"] == 1
    assert conduct["recurrence"] == "yearly" and conduct["assign_to_new_staff"] is True


def test_create_then_read_then_tick(client, db):
    users = [make_user(db), make_user(db)]
    write = api_headers(db, Scope.checklists_write, Scope.checklists_read)
    conduct = shipped_template(db)
    due = (utcnow() + timedelta(days=7)).isoformat()
    created = client.post(
        "/api/v1/checklist-runs",
        json={"template_id": conduct.id, "roles": ["staff"], "due_at": due},
        headers=write,
    )
    assert created.status_code == 201
    data = created.json()["data"]
    assert sorted(r["assignee_id"] for r in data) == sorted(u.id for u in users)
    run = data[0]
    assert run["status"] == "open" and run["items_done"] == 0 and run["items_total"] == 11
    listed = client.get(
        "/api/v1/checklist-runs", params={"assignee_id": run["assignee_id"]}, headers=write
    ).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]
    conduct_item = client.get("/api/v1/checklists", headers=write).json()["data"]
    item_id = next(t for t in conduct_item if t["id"] == conduct.id)["items"][0]["id"]
    ticked = client.put(
        f"/api/v1/checklist-runs/{run['id']}/items/{item_id}",
        json={"done": True, "note": "from the MIS"},
        headers=write,
    )
    assert ticked.status_code == 200
    assert ticked.json()["items_done"] == 1
    assert ticked.json()["completions"][0]["note"] == "from the MIS"


def test_runs_page_through_with_updated_since(client, db):
    for _ in range(5):
        make_user(db)
    headers = api_headers(db, Scope.checklists_write, Scope.checklists_read)
    client.post(
        "/api/v1/checklist-runs",
        json={"template_id": shipped_template(db).id, "roles": ["staff"]},
        headers=headers,
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/checklist-runs", params=params, headers=headers).json()
        seen += [r["id"] for r in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 5
    later = client.get(
        "/api/v1/checklist-runs", params={"updated_since": "2999-01-01T00:00:00Z"}, headers=headers
    )
    assert later.json()["data"] == []


def test_bad_input_is_a_problem_and_writes_nothing(client, db):
    make_user(db)
    headers = api_headers(db, Scope.checklists_write, Scope.checklists_read)
    conduct = shipped_template(db)
    past = (utcnow() - timedelta(days=1)).isoformat()
    bad = [
        ({"template_id": conduct.id, "roles": ["staff"], "due_at": past}, 422),
        ({"template_id": conduct.id}, 422),
        ({"template_id": conduct.id, "roles": ["emperor"]}, 422),
        ({"template_id": conduct.id, "roles": ["staff"], "colour": "red"}, 422),
        ({"template_id": 99999, "roles": ["staff"]}, 404),
        ({"template_id": conduct.id, "user_ids": [99999]}, 422),
        ({"template_id": conduct.id, "roles": ["staff"], "due_at": "2030-01-01T00:00:00"}, 422),
    ]
    for body, status in bad:
        response = client.post("/api/v1/checklist-runs", json=body, headers=headers)
        assert response.status_code == status, body
        assert response.headers["content-type"] == "application/problem+json"
    assert db.exec(select(ChecklistRun)).all() == []
    run = client.post(
        "/api/v1/checklist-runs",
        json={"template_id": conduct.id, "roles": ["staff"]},
        headers=headers,
    ).json()["data"][0]
    assert (
        client.put(
            f"/api/v1/checklist-runs/{run['id']}/items/99999", json={"done": True}, headers=headers
        ).status_code
        == 404
    )
    assert (
        client.put(
            "/api/v1/checklist-runs/99999/items/1", json={"done": True}, headers=headers
        ).status_code
        == 404
    )
    assert (
        client.put(
            f"/api/v1/checklist-runs/{run['id']}/items/1", json={"done": "maybe"}, headers=headers
        ).status_code
        == 422
    )
    assert db.exec(select(ItemCompletion)).all() == []


def test_reading_needs_read_and_writing_needs_write(client, db):
    read_only = api_headers(db, Scope.checklists_read)
    assert (
        client.post(
            "/api/v1/checklist-runs", json={"template_id": 1, "roles": ["staff"]}, headers=read_only
        ).status_code
        == 403
    )
    assert (
        client.get("/api/v1/checklist-runs", headers=api_headers(db, Scope.people_read)).status_code
        == 403
    )
