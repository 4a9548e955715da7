"""Checklist pages as staff and leaders use them, with htmx and without JavaScript."""

import csv
import io
import re
from datetime import timedelta

from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth.models import Role
from app.checklists import service
from app.checklists.models import ChecklistRun, ChecklistTemplate, ItemCompletion
from app.core.types import utcnow
from tests.factories import give_checklist, make_user, page_csrf, shipped_template, sign_in


def _give(db, user, key="staff-conduct", due_in_days=None):
    due = utcnow() + timedelta(days=due_in_days) if due_in_days else None
    run = give_checklist(db, user, key, due)
    return run, service.run_view(session=db, run=run)


def _tick(client, run, item, htmx=True, done="true", note=""):
    return client.post(
        f"/checklists/runs/{run.id}/items/{item.id}",
        data={"done": done, "note": note, "csrf_token": page_csrf(client, "/checklists")},
        headers={"HX-Request": "true"} if htmx else {},
    )


def test_staff_member_ticks_an_item_with_htmx_and_sees_progress(client, db):
    user = make_user(db)
    run, view = _give(db, user)
    sign_in(client, user)
    page = client.get(f"/checklists/runs/{run.id}")
    assert page.status_code == 200 and view.template.title in page.text
    assert f"0 of {view.total} done" in page.text
    response = _tick(client, run, view.items[0])
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith(f'<li id="item-{view.items[0].id}"')
    assert "Mark as not done" in response.text
    assert 'id="run-progress" hx-swap-oob="true"' in response.text
    assert f"1 of {view.total} done" in response.text


def test_ticking_works_without_javascript(client, db):
    user = make_user(db)
    run, view = _give(db, user)
    sign_in(client, user)
    item = view.items[3]  # asks for a note
    response = _tick(client, run, item, htmx=False, note="Instagram and WhatsApp")
    assert response.status_code == 303
    assert response.headers["location"] == f"/checklists/runs/{run.id}#item-{item.id}"
    completion = db.exec(select(ItemCompletion).where(ItemCompletion.item_id == item.id)).one()
    assert completion.note == "Instagram and WhatsApp" and completion.completed_by_id == user.id
    _tick(client, run, item, htmx=False, done="false")
    assert db.exec(select(ItemCompletion)).all() == []


def test_finishing_makes_the_run_read_only(client, db):
    user = make_user(db)
    run, view = _give(db, user, "platforms")
    sign_in(client, user)
    token = page_csrf(client, "/checklists")
    early = client.post(f"/checklists/runs/{run.id}/finish", data={"csrf_token": token})
    assert early.status_code == 422 and "still to do" in early.text
    for item in view.items:
        _tick(client, run, item)
    done = client.post(f"/checklists/runs/{run.id}/finish", data={"csrf_token": token})
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "finished and read-only" in page and "Mark as" not in page
    late = _tick(client, run, view.items[0], htmx=False, done="false")
    assert late.status_code == 409
    db.refresh(run)
    assert run.completed_at is not None
    assert len(db.exec(select(ItemCompletion)).all()) == len(view.items)


def test_staff_cannot_open_or_tick_someone_elses_run(client, db):
    owner, nosy = make_user(db), make_user(db)
    run, view = _give(db, owner)
    sign_in(client, nosy)
    assert client.get(f"/checklists/runs/{run.id}").status_code == 403
    assert _tick(client, run, view.items[0], htmx=False).status_code == 403
    assert db.exec(select(ItemCompletion)).all() == []


def test_unknown_item_or_run_is_not_found(client, db):
    user = make_user(db)
    run, _ = _give(db, user)
    sign_in(client, user)
    token = page_csrf(client, "/checklists")
    assert (
        client.post(
            f"/checklists/runs/{run.id}/items/999999", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert client.get("/checklists/runs/999999").status_code == 404


def test_my_checklists_and_home_page_mark_overdue_runs(client, db):
    user = make_user(db)
    run, _ = _give(db, user, due_in_days=2)
    run.due_at = utcnow() - timedelta(days=1)
    db.add(run)
    db.commit()
    sign_in(client, user)
    assert "Overdue" in client.get("/checklists").text
    home = client.get("/").text
    assert "1 overdue:" in home and "My conduct on social media" in home


def test_leader_gives_a_checklist_to_a_role(client, db):
    dsl = make_user(db, role=Role.dsl)
    staff = [make_user(db) for _ in range(2)]
    sign_in(client, dsl)
    conduct = shipped_template(db)
    due = (utcnow() + timedelta(days=10)).date().isoformat()
    response = client.post(
        "/checklists/assign",
        data={
            "template_id": conduct.id,
            "roles": ["staff"],
            "due_on": due,
            "csrf_token": page_csrf(client, "/checklists/assign"),
        },
    )
    assert response.status_code == 200 and "Given to 2 people." in response.text
    runs = db.exec(select(ChecklistRun).where(ChecklistRun.template_id == conduct.id)).all()
    assert sorted(r.assignee_id for r in runs) == sorted(s.id for s in staff)


def test_bad_assignment_input_is_explained_and_nothing_is_written(client, db):
    dsl = make_user(db, role=Role.dsl)
    make_user(db)
    sign_in(client, dsl)
    conduct = shipped_template(db)
    token = page_csrf(client, "/checklists/assign")
    past = (utcnow() - timedelta(days=1)).date().isoformat()
    cases = [
        ({"template_id": conduct.id, "roles": ["staff"], "due_on": past}, 422, "in the future"),
        ({"template_id": conduct.id, "roles": ["staff"], "due_on": "next week"}, 422, "2027-07-31"),
        ({"template_id": conduct.id}, 422, "at least one role or person"),
        ({"template_id": conduct.id, "roles": ["wizard"]}, 422, "Unknown role"),
        ({"template_id": 999999, "roles": ["staff"]}, 404, "No such checklist"),
    ]
    for data, status, message in cases:
        response = client.post(
            "/checklists/assign", data={**data, "csrf_token": token}, headers={"HX-Request": "true"}
        )
        assert response.status_code == status, data
        assert message in response.text
    assert db.exec(select(ChecklistRun)).all() == []


def test_staff_cannot_give_checklists_or_see_oversight(client, db):
    sign_in(client, make_user(db))
    assert client.get("/checklists/oversight").status_code == 403
    assert client.get("/checklists/assign").status_code == 403


def test_leader_writes_a_checklist_with_items(client, db):
    sign_in(client, make_user(db, role=Role.slt))
    token = page_csrf(client, "/checklists/templates/new")
    empty = client.post(
        "/checklists/templates/new",
        data={"title": "Trip phones", "items": "\n  \n", "csrf_token": token},
    )
    assert empty.status_code == 422 and "at least one item" in empty.text
    created = client.post(
        "/checklists/templates/new",
        data={
            "title": "Trip phones",
            "items": "Collect the school phone\nCharge it\n",
            "csrf_token": token,
        },
    )
    assert created.status_code == 303
    new = db.exec(select(ChecklistTemplate).where(ChecklistTemplate.title == "Trip phones")).one()
    assert created.headers["location"] == f"/checklists/assign?template_id={new.id}"
    items = next(
        t.items
        for t in service.list_templates(session=db, school_id=new.school_id)
        if t.template.id == new.id
    )
    assert [i.text for i in items] == ["Collect the school phone", "Charge it"]


def _oversight_fixture(db, people=4):
    users = [make_user(db) for _ in range(people)]
    conduct = shipped_template(db)
    service.assign(
        session=db,
        school_id=conduct.school_id,
        template_id=conduct.id,
        user_ids=[u.id for u in users],
        roles=[],
        due_at=utcnow() + timedelta(days=5),
        actor=SYSTEM,
    )
    runs = db.exec(select(ChecklistRun)).all()
    runs[0].completed_at = utcnow()
    runs[1].due_at = utcnow() - timedelta(days=1)
    db.add_all(runs[:2])
    db.commit()
    return users, runs


def test_oversight_shows_completion_per_checklist_and_person(client, db):
    users, _ = _oversight_fixture(db)
    sign_in(client, make_user(db, role=Role.deputy_dsl))
    page = client.get("/checklists/oversight").text
    row = re.search(
        r"<th scope=\"row\">My conduct on social media</th>(.*?)</tr>", page, re.S
    ).group(1)
    assert re.findall(r"<td>([^<]+)</td>", row) == ["4", "1", "1", "25%"]
    for user in users:
        assert user.display_name in page
    overdue = client.get(
        "/checklists/oversight", params={"status": "overdue"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in overdue.text and 'id="oversight-results"' in overdue.text
    assert users[1].display_name in overdue.text and users[2].display_name not in overdue.text
    assert client.get("/checklists/oversight", params={"status": "bogus"}).status_code == 422


def test_oversight_csv_export(client, db):
    users, _ = _oversight_fixture(db)
    users[3].display_name = '=HYPERLINK("http://evil")'
    db.add(users[3])
    db.commit()
    sign_in(client, make_user(db, role=Role.slt))
    response = client.get("/checklists/oversight.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["person", "role", "checklist", "status"]
    assert len(rows) == 5
    assert sorted(r[3] for r in rows[1:]) == ["completed", "open", "open", "overdue"]
    assert any(r[0].startswith("'=") for r in rows[1:])


def test_reminders_show_on_the_persons_home_page(client, anon, db):
    users, runs = _oversight_fixture(db)
    sign_in(client, make_user(db, role=Role.dsl))
    token = page_csrf(client, "/checklists/oversight")
    finished = next(r for r in runs if r.completed_at)
    refused = client.post(
        "/checklists/oversight/remind", data={"run_ids": [finished.id], "csrf_token": token}
    )
    assert refused.status_code == 422
    nothing = client.post("/checklists/oversight/remind", data={"csrf_token": token})
    assert nothing.status_code == 422
    open_run = next(r for r in runs if not r.completed_at and r.due_at > utcnow())
    sent = client.post(
        "/checklists/oversight/remind", data={"run_ids": [open_run.id], "csrf_token": token}
    )
    assert sent.status_code == 303
    person = next(u for u in users if u.id == open_run.assignee_id)
    sign_in(anon, person)
    assert "reminder from the DSL" in anon.get("/").text


def test_pages_use_a_fixed_number_of_queries(client, db, count_queries):
    dsl = make_user(db, role=Role.dsl)
    sign_in(client, dsl)
    staff = make_user(db)

    def measure(path):
        with count_queries() as counter:
            assert client.get(path).status_code == 200
        return counter.count

    _oversight_fixture(db, people=2)
    _give(db, staff, "platforms")
    small = measure("/checklists/oversight"), measure("/checklists")
    _oversight_fixture(db, people=12)
    for key in ("platforms", "proactive-measures"):
        _give(db, dsl, key)
    large = measure("/checklists/oversight"), measure("/checklists")
    assert small == large
