"""Checklist rules: shipped content, assignment, recurrence, ticking and finishing."""

from datetime import timedelta

import pytest
from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth import flows
from app.auth.models import Role, UserCreate
from app.checklists import service
from app.checklists.library import SHIPPED_TEMPLATES
from app.checklists.models import (
    ChecklistRun,
    ChecklistTemplate,
    ChecklistTemplateCreate,
    ItemCompletion,
    RunReason,
)
from app.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from app.core.types import utcnow
from app.incidents.library import PLAYBOOK_KEY
from tests.factories import give_checklist, make_school, make_user, shipped_template

GUIDE_SENTENCES = [
    "Make sure they understand the school\u2019s social media policy",
    "Not leave computers or other devices logged-in when unattended",
    "Not accept friend requests from past or present pupils",
    "Ask for a school mobile phone to be issued on school trips rather than using a personal phone",
]


def test_every_school_gets_the_shipped_checklists_once(db):
    school = make_school(db)
    assert service.install_shipped_templates(session=db, school_id=school.id) == 0
    keys = {t.template.key for t in service.list_templates(session=db, school_id=school.id)}
    assert keys == {t.key for t in SHIPPED_TEMPLATES} | {PLAYBOOK_KEY}


def test_shipped_items_have_guidance_and_a_source_in_our_own_words():
    for shipped in SHIPPED_TEMPLATES:
        assert shipped.items and shipped.source
        for item in shipped.items:
            assert item.guidance and item.source, item.text
            for sentence in GUIDE_SENTENCES:
                assert sentence.lower() not in item.text.lower()


def test_conduct_checklist_covers_the_staff_list():
    texts = " ".join(i.text.lower() for i in SHIPPED_TEMPLATES[0].items)
    for topic in [
        "policy",
        "lock",
        "pin",
        "privacy",
        "friend",
        "personal phone number",
        "school mobile phone",
        "school email",
        "tag",
        "code of conduct",
        "family",
    ]:
        assert topic in texts, topic


def test_assign_by_role_and_by_name_skips_people_who_have_it_unfinished(db):
    staff = [make_user(db) for _ in range(3)]
    slt = make_user(db, role=Role.slt)
    make_user(db, role=Role.staff, is_active=False)
    conduct = shipped_template(db)
    due = utcnow() + timedelta(days=14)
    first = service.assign(
        session=db,
        school_id=conduct.school_id,
        template_id=conduct.id,
        user_ids=[slt.id],
        roles=[Role.staff],
        due_at=due,
        actor=SYSTEM,
    )
    assert sorted(r.assignee_id for r in first.created) == sorted([s.id for s in staff] + [slt.id])
    again = service.assign(
        session=db,
        school_id=conduct.school_id,
        template_id=conduct.id,
        user_ids=[],
        roles=[Role.staff],
        due_at=due,
        actor=SYSTEM,
    )
    assert again.created == [] and again.skipped == 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"due_at": utcnow() - timedelta(days=1)}, "in the future"),
        ({"user_ids": [], "roles": []}, "at least one role or person"),
        ({"user_ids": [987654]}, "not active accounts"),
    ],
)
def test_bad_assignments_are_refused_and_write_nothing(db, kwargs, error):
    conduct = shipped_template(db)
    args = {"user_ids": [], "roles": [Role.staff], "due_at": None, **kwargs}
    with pytest.raises(InvalidInput, match=error):
        service.assign(
            session=db, school_id=conduct.school_id, template_id=conduct.id, actor=SYSTEM, **args
        )
    assert db.exec(select(ChecklistRun)).all() == []


def test_unknown_template_is_not_found(db):
    school = make_school(db)
    with pytest.raises(NotFound):
        service.assign(
            session=db,
            school_id=school.id,
            template_id=424242,
            user_ids=[],
            roles=[Role.staff],
            due_at=None,
            actor=SYSTEM,
        )


def test_new_staff_get_the_conduct_checklist(db):
    school = make_school(db)
    user = flows.create_user(
        session=db,
        school_id=school.id,
        data=UserCreate(
            email="new@school.example",
            display_name="New",
            role=Role.staff,
            password="long-enough-pass",
        ),
        actor=SYSTEM,
    )
    (run,) = db.exec(select(ChecklistRun).where(ChecklistRun.assignee_id == user.id)).all()
    assert run.reason == RunReason.new_staff
    assert run.template_id == shipped_template(db).id
    assert timedelta(days=29) < run.due_at - utcnow() <= timedelta(days=30)


def test_yearly_checklists_come_round_again(db):
    user = make_user(db)
    conduct = shipped_template(db)
    old = give_checklist(db, user)
    old.completed_at = utcnow()
    db.add(old)
    now = utcnow()
    assert (
        service.issue_yearly_runs(session=db, school_id=conduct.school_id, now=now, actor=SYSTEM)
        == 0
    )
    later = now + timedelta(days=366)
    assert (
        service.issue_yearly_runs(session=db, school_id=conduct.school_id, now=later, actor=SYSTEM)
        == 1
    )
    runs = db.exec(select(ChecklistRun).where(ChecklistRun.assignee_id == user.id)).all()
    assert sorted(r.reason for r in runs) == [RunReason.assigned, RunReason.yearly]


def test_a_new_policy_version_reissues_linked_checklists(db):
    users = [make_user(db), make_user(db, role=Role.dsl)]
    school = make_school(db)
    created = service.reissue_for_policy(
        session=db, school_id=school.id, policy_kind="social_media", actor=SYSTEM
    )
    assert created == len(users)
    assert (
        service.reissue_for_policy(
            session=db, school_id=school.id, policy_kind="mobile_phone", actor=SYSTEM
        )
        == 0
    )


def _run_for(db, user):
    run = give_checklist(db, user)
    return run, service.run_view(session=db, run=run)


def test_ticking_then_finishing(db):
    user = make_user(db)
    run, view = _run_for(db, user)
    with pytest.raises(InvalidInput, match="still to do"):
        service.finish_run(session=db, run=run, user=user, actor=SYSTEM)
    for item in view.items:
        service.set_item(
            session=db, run=run, item_id=item.id, done=True, note="ok", user=user, actor=SYSTEM
        )
    finished = service.finish_run(session=db, run=run, user=user, actor=SYSTEM)
    assert finished.done == finished.total and run.completed_at is not None
    with pytest.raises(Conflict, match="finished"):
        service.set_item(
            session=db,
            run=run,
            item_id=view.items[0].id,
            done=False,
            note="",
            user=user,
            actor=SYSTEM,
        )


def test_nobody_ticks_someone_elses_run(db):
    owner, other = make_user(db), make_user(db, role=Role.dsl)
    run, view = _run_for(db, owner)
    with pytest.raises(PermissionDenied, match="your own checklist"):
        service.set_item(
            session=db,
            run=run,
            item_id=view.items[0].id,
            done=True,
            note="",
            user=other,
            actor=SYSTEM,
        )
    assert db.exec(select(ItemCompletion)).all() == []


def test_an_item_of_another_template_is_not_found(db):
    user = make_user(db)
    run, _ = _run_for(db, user)
    other_item = service.list_templates(session=db, school_id=run.school_id)[0].items[0]
    if other_item.template_id == run.template_id:
        other_item = service.list_templates(session=db, school_id=run.school_id)[1].items[0]
    with pytest.raises(NotFound):
        service.set_item(
            session=db, run=run, item_id=other_item.id, done=True, note="", user=user, actor=SYSTEM
        )


def test_a_template_needs_items(db):
    school = make_school(db)
    before = len(db.exec(select(ChecklistTemplate)).all())
    with pytest.raises(InvalidInput, match="at least one item"):
        service.create_template(
            session=db,
            school_id=school.id,
            actor=SYSTEM,
            data=ChecklistTemplateCreate(title="Empty", items=["", "   "]),
        )
    assert len(db.exec(select(ChecklistTemplate)).all()) == before
