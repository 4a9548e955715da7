"""Policies: the lifecycle, acknowledgements, review, public copies, pages and API."""

import csv
import io
import re
from datetime import date, timedelta

import pytest
from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth.models import Role, Scope
from app.checklists.models import ChecklistRun, RunReason
from app.core.errors import Conflict, InvalidInput, PermissionDenied
from app.core.types import utcnow
from app.policies import flows, service
from app.policies.models import (
    PolicyAcknowledgement,
    PolicyVersion,
    VersionCreate,
    VersionStatus,
)
from tests.factories import (
    bearer,
    make_endpoint,
    make_policy,
    make_school,
    make_token,
    make_user,
    make_version,
    page_csrf,
    publish_policy,
    sign_in,
)

TODAY = date.today()


def test_the_lifecycle_from_draft_to_superseded(db):
    policy, first = publish_policy(db)
    assert first.status == VersionStatus.published and first.approved_by_id is not None
    second = make_version(db, policy, body="# Policy\n\nBe kinder online.")
    with pytest.raises(Conflict, match="must be approved"):
        flows.publish(session=db, policy=policy, version=second, actor=SYSTEM)
    service.approve(
        session=db,
        policy=policy,
        version=second,
        approver=make_user(db, role=Role.slt),
        actor=SYSTEM,
    )
    flows.publish(session=db, policy=policy, version=second, actor=SYSTEM)
    assert first.status == VersionStatus.superseded and second.status == VersionStatus.published


def test_a_published_version_never_changes(db):
    policy, version = publish_policy(db)
    with pytest.raises(Conflict, match="cannot be edited"):
        service.update_draft(
            session=db,
            policy=policy,
            version=version,
            actor=SYSTEM,
            data=VersionCreate(
                body="changed", effective_from=TODAY, review_due=TODAY + timedelta(days=9)
            ),
        )
    db.refresh(version)
    assert version.body == "# Policy\n\nBe kind online."


def test_only_senior_leaders_approve(db):
    policy = make_policy(db)
    version = make_version(db, policy)
    with pytest.raises(PermissionDenied):
        service.approve(
            session=db,
            policy=policy,
            version=version,
            approver=make_user(db, role=Role.dsl),
            actor=SYSTEM,
        )


def test_review_date_must_follow_the_effective_date():
    with pytest.raises(ValueError, match="review_due must be after"):
        VersionCreate(body="x", effective_from=TODAY, review_due=TODAY)


def test_script_tags_are_refused_and_nothing_is_written(db):
    policy = make_policy(db)
    with pytest.raises(InvalidInput, match="HTML"):
        make_version(db, policy, body="Hello <script>alert(1)</script>")
    assert db.exec(select(PolicyVersion)).all() == []


def test_staff_acknowledge_the_version_in_force_only(db):
    staff = make_user(db)
    policy, first = publish_policy(db)
    assert [w.version.id for w in service.waiting_for(session=db, user=staff)] == [first.id]
    service.acknowledge(session=db, policy=policy, version=first, user=staff, actor=SYSTEM)
    assert service.waiting_for(session=db, user=staff) == []
    second = make_version(db, policy, body="New text")
    service.approve(
        session=db,
        policy=policy,
        version=second,
        approver=make_user(db, role=Role.slt),
        actor=SYSTEM,
    )
    flows.publish(session=db, policy=policy, version=second, actor=SYSTEM)
    with pytest.raises(Conflict, match="no longer in force"):
        service.acknowledge(session=db, policy=policy, version=first, user=staff, actor=SYSTEM)
    assert [w.version.id for w in service.waiting_for(session=db, user=staff)] == [second.id]


def test_a_new_version_reissues_the_linked_checklists(db):
    staff = make_user(db)
    policy, _ = publish_policy(db)
    second = make_version(db, policy, body="Changed")
    service.approve(
        session=db,
        policy=policy,
        version=second,
        approver=make_user(db, role=Role.slt),
        actor=SYSTEM,
    )
    flows.publish(session=db, policy=policy, version=second, actor=SYSTEM)
    runs = db.exec(select(ChecklistRun).where(ChecklistRun.assignee_id == staff.id)).all()
    assert [r.reason for r in runs] == [RunReason.policy_version]


def test_public_copies_only_for_pupils_and_families(client, db):
    staff_policy, _ = publish_policy(db)
    with pytest.raises(InvalidInput, match="pupils or parents"):
        service.set_public(session=db, policy=staff_policy, public=True, actor=SYSTEM)
    family_policy, _ = publish_policy(
        db, policy=make_policy(db, audience="parents_carers", kind="mobile_phone")
    )
    service.set_public(session=db, policy=family_policy, public=True, actor=SYSTEM)
    db.commit()
    page = client.get(f"/public/policies/{family_policy.public_slug}")
    assert page.status_code == 200 and "Be kind online." in page.text
    assert client.get("/public/policies/not-a-slug").status_code == 404


def test_reviews_are_announced_once_per_version(db):
    policy, version = publish_policy(db, review_in=10)
    due = service.newly_due_for_review(session=db, school_id=policy.school_id, now=utcnow())
    assert [w.version.id for w in due] == [version.id]
    assert service.newly_due_for_review(session=db, school_id=policy.school_id, now=utcnow()) == []


def test_leader_creates_from_a_template_and_staff_acknowledge(client, anon, db):
    head = make_user(db, role=Role.slt)
    staff = make_user(db)
    sign_in(client, head)
    token = page_csrf(client, "/policies/new")
    bad = client.post(
        "/policies/new",
        data={
            "csrf_token": token,
            "template": "social-media",
            "effective_from": TODAY.isoformat(),
            "review_due": TODAY.isoformat(),
        },
    )
    assert bad.status_code == 422 and "review date must come after" in bad.text
    created = client.post(
        "/policies/new",
        data={
            "csrf_token": token,
            "template": "social-media",
            "effective_from": TODAY.isoformat(),
            "review_due": (TODAY + timedelta(days=365)).isoformat(),
        },
    )
    assert created.status_code == 303
    policy_url = created.headers["location"].split("?")[0]
    page = client.get(policy_url).text
    assert "draft" in page and "<script" not in page.split("<body")[1].split("</main>")[0]
    number_link = re.search(r"/versions/(\d+)/approve", page).group(1)
    assert (
        client.post(
            f"{policy_url}/versions/{number_link}/approve", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"{policy_url}/versions/{number_link}/publish", data={"csrf_token": token}
        ).status_code
        == 303
    )
    sign_in(anon, staff)
    assert "Policies to read and acknowledge" in anon.get("/").text
    ack = anon.post(
        f"{policy_url}/acknowledge",
        data={"csrf_token": page_csrf(anon, policy_url), "number": number_link},
    )
    assert ack.status_code == 303
    assert db.exec(select(PolicyAcknowledgement)).one().user_id == staff.id
    rows = list(csv.reader(io.StringIO(client.get(f"{policy_url}/acknowledgements.csv").text)))
    assert rows[0] == ["person", "email", "role", "version", "acknowledged"]
    acknowledged = {r[1]: r[4] for r in rows[1:]}
    assert acknowledged[staff.email] and acknowledged[head.email] == ""


def test_staff_cannot_see_drafts_or_edit(client, db):
    policy = make_policy(db)
    make_version(db, policy)
    db.commit()
    sign_in(client, make_user(db))
    assert client.get(f"/policies/{policy.id}").status_code == 403
    assert client.get("/policies/new").status_code == 403


def test_the_policies_api(client, db):
    raw, _ = make_token(db, Scope.policies_read, Scope.policies_write)
    headers = bearer(raw)
    created = client.post(
        "/api/v1/policies",
        headers=headers,
        json={"title": "Phones", "kind": "mobile_phone", "audience": "pupils"},
    )
    assert created.status_code == 201
    policy_id = created.json()["id"]
    version = client.post(
        f"/api/v1/policies/{policy_id}/versions",
        headers=headers,
        json={
            "body": "# Phones\n\nAway all day.",
            "effective_from": TODAY.isoformat(),
            "review_due": (TODAY + timedelta(days=300)).isoformat(),
        },
    )
    assert version.status_code == 201 and version.json()["number"] == 1
    refused = client.post(f"/api/v1/policies/{policy_id}/versions/1/publish", headers=headers)
    assert refused.status_code == 409 and "approved" in refused.json()["detail"]
    bad = client.post(
        f"/api/v1/policies/{policy_id}/versions",
        headers=headers,
        json={"body": "x", "effective_from": TODAY.isoformat(), "review_due": TODAY.isoformat()},
    )
    assert bad.status_code == 422
    listed = client.get("/api/v1/policies", headers=headers).json()["data"]
    assert listed[0]["versions"][0]["status"] == "draft"
    assert client.get(f"/api/v1/policies/{policy_id}/acknowledgements", headers=headers).json() == {
        "data": [],
        "next_cursor": None,
    }


def test_phone_exemptions_are_for_pupils_on_the_roster(client, db):
    from app.people.models import Person
    from app.policies.models import PhoneExemption

    school_id = make_school(db).id
    pupil = Person(
        school_id=school_id,
        external_id="P1",
        kind="pupil",
        forename="Ava",
        surname="Carer",
        registration_group="7A",
    )
    parent = Person(
        school_id=school_id, external_id="R1", kind="parent_carer", forename="Pat", surname="Parent"
    )
    db.add_all([pupil, parent])
    db.commit()
    policy, _ = publish_policy(db, policy=make_policy(db, audience="pupils", kind="mobile_phone"))
    sign_in(client, make_user(db, role=Role.dsl))
    found = client.get(f"/policies/{policy.id}", params={"pupil_q": "ava"}).text
    assert "Ava Carer" in found
    token = page_csrf(client, f"/policies/{policy.id}")
    url = f"/policies/{policy.id}/exemptions"
    assert (
        client.post(
            url, data={"csrf_token": token, "person_id": str(pupil.id), "reason": "young_carer"}
        ).status_code
        == 303
    )
    for data, message in [
        ({"person_id": str(parent.id), "reason": "medical"}, "Choose a pupil"),
        ({"person_id": str(pupil.id), "reason": "medical"}, "already has an exemption"),
        ({"person_id": "x", "reason": "medical"}, "Choose a pupil and the reason"),
        ({"person_id": str(pupil.id), "reason": "bored"}, "Choose a pupil and the reason"),
    ]:
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code in (409, 422) and message in response.text, data
    (exemption,) = db.exec(select(PhoneExemption)).all()
    assert exemption.person_id == pupil.id and exemption.reason.value == "young_carer"
    assert "young carer" in client.get(f"/policies/{policy.id}").text


def test_the_diff_page_shows_what_changed(client, db):
    policy, _ = publish_policy(db)
    make_version(db, policy, body="# Policy\n\nBe kinder online.")
    db.commit()
    sign_in(client, make_user(db, role=Role.slt))
    page = client.get(f"/policies/{policy.id}/diff", params={"a": 1, "b": 2}).text
    assert '<span class="removed">-Be kind online.</span>' in page
    assert '<span class="added">+Be kinder online.</span>' in page
    assert client.get(f"/policies/{policy.id}/diff", params={"a": 1, "b": 9}).status_code == 404


def test_the_daily_job_sends_policy_review_due_once(scratch_database):
    from sqlmodel import Session

    from app.core.migrations import upgrade_to_head
    from app.jobs.service import run_due_jobs
    from app.webhooks.models import EventType, OutboxMessage
    from tests.conftest import keyed_engine

    engine = keyed_engine(scratch_database())
    upgrade_to_head(engine)
    with Session(engine, expire_on_commit=False) as session:
        _, version = publish_policy(session, review_in=20)
        make_endpoint(session, "https://hooks.example.org/", events=["policy.review_due"])
    assert run_due_jobs(engine=engine)["policies.review_due"] == 1
    assert run_due_jobs(engine=engine, now=utcnow() + timedelta(days=1))["policies.review_due"] == 0
    with Session(engine) as session:
        (message,) = session.exec(select(OutboxMessage)).all()
    assert message.event_type == EventType.policy_review_due
    assert message.payload["data"]["version"] == version.number
    engine.dispose()
