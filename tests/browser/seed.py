"""A school with something on every page, for the accessibility and keyboard tests.

The browser signs in as `Seeded.users[role]`; the data is made by other accounts (through the
services, and through the pages and the API as a person or the MIS would), so that no second
factor code is used twice.
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.audit.service import SYSTEM
from app.auth import service as auth_service
from app.auth.models import Role, Scope, User
from app.checklists import service as checklists_service
from app.core.types import utcnow
from app.incidents.models import Evidence
from app.main import create_app
from app.policies import flows as policy_flows
from app.policies import service as policies_service
from app.policies.library import MOBILE_PHONES, SOCIAL_MEDIA
from app.policies.models import PolicyCreate, VersionCreate
from app.webhooks import service as webhooks_service
from app.webhooks.models import EndpointIn, MessageStatus, OutboxMessage
from tests.factories import (
    bearer,
    give_checklist,
    make_incident,
    make_token,
    make_user,
    png,
    sign_in,
)

ROLES = [Role.staff, Role.dsl, Role.deputy_dsl, Role.slt, Role.admin]
TODAY = date.today()

ROSTER_CSV = (
    "ID,Type,Legal Forename,Legal Surname,Reg Group,NC Year\r\n"
    "CSV1,Pupil,Aisha,Rahman,7A,Year 7\r\n"
    "CSV2,Pupil,Tom,Fletcher,7A,Year 7\r\n"
)


@dataclass
class Seeded:
    users: dict[Role, User]
    incident_id: int
    evidence_id: int
    runs: dict[Role, int]
    policy_id: int
    phone_policy_id: int
    public_slug: str
    extra: dict = field(default_factory=dict)

    def url_for(self, path: str, role: Role) -> str | None:
        """A real address for a route with parameters (None: not one this data can fill)."""
        ids = {
            "/checklists/runs/{run_id}": f"/checklists/runs/{self.runs.get(role)}",
            "/incidents/{incident_id}": f"/incidents/{self.incident_id}",
            "/incidents/{incident_id}/evidence/{evidence_id}": (
                f"/incidents/{self.incident_id}/evidence/{self.evidence_id}"
            ),
            "/incidents/{incident_id}/chronology": f"/incidents/{self.incident_id}/chronology",
            "/policies/{policy_id}": f"/policies/{self.policy_id}",
            "/policies/{policy_id}/diff": f"/policies/{self.policy_id}/diff?a=1&b=2",
            "/policies/{policy_id}/acknowledgements.csv": (
                f"/policies/{self.policy_id}/acknowledgements.csv"
            ),
            "/public/policies/{slug}": f"/public/policies/{self.public_slug}",
            "/admin/retention/{kind}/{record_id}/delete": (
                f"/admin/retention/incidents/{self.incident_id}/delete"
            ),
        }
        return ids.get(path)

    # Pages with parameters whose other states are worth a look of their own.
    def more_pages(self, role: Role) -> list[tuple[str, str]]:
        pages = []
        if role in (Role.dsl, Role.deputy_dsl):
            pages += [
                ("incident-roster-search", f"/incidents/{self.incident_id}?person_q=Rahman"),
                ("incident-harm-test", f"/incidents/{self.extra['staff_incident_id']}"),
            ]
        if role in (Role.dsl, Role.deputy_dsl, Role.slt):
            pages += [
                ("phone-policy", f"/policies/{self.phone_policy_id}?pupil_q=Rahman"),
                ("policy-draft", f"/policies/{self.policy_id}?version=2"),
            ]
        if role is Role.staff:
            pages += [("finished-checklist", f"/checklists/runs/{self.extra['finished_run']}")]
        return pages


def _form_client(app, user: User) -> TestClient:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    client.__enter__()
    sign_in(client, user)
    return client


def _csrf(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text)
    assert match, path
    return match.group(1)


def seed_school(settings, engine) -> Seeded:
    app = create_app(settings, engine)
    with Session(engine, expire_on_commit=False) as db:
        users = {role: make_user(db, role=role) for role in ROLES}
        for n in range(3):
            make_user(db, role=Role.staff, email=f"teacher{n}@school.example")
        maker = {  # the accounts that make the data
            Role.staff: make_user(db, role=Role.staff),
            Role.dsl: make_user(db, role=Role.dsl),
            Role.slt: make_user(db, role=Role.slt),
            Role.admin: make_user(db, role=Role.admin),
        }
        school_id = users[Role.staff].school_id

        # The MIS and its tokens.
        raw, _ = make_token(db, Scope.people_write, Scope.people_read, name="Arbor roster sync")
        make_token(db, Scope.incidents_read, name="Wonde incidents")
        _, revoked = make_token(db, Scope.checklists_read, name="Old reporting tool")
        auth_service.revoke_api_token(
            session=db, school_id=revoked.school_id, token_id=revoked.id, actor=SYSTEM
        )
        db.commit()

        # Webhooks, before the incidents so that their escalations are sent somewhere.
        webhooks_service.create_endpoint(
            session=db,
            school_id=school_id,
            data=EndpointIn(
                url="https://relay.school.example/haven",
                description="DSL inbox relay",
                events=["incident.escalated", "incident.updated"],
                format="standard",
            ),
            actor=SYSTEM,
            check_url=lambda url: None,
        )
        webhooks_service.create_endpoint(
            session=db,
            school_id=school_id,
            data=EndpointIn(
                url="dsl@school.example", events=["incident.escalated"], format="email"
            ),
            actor=SYSTEM,
            check_url=lambda url: None,
        )
        db.commit()

        # Checklists: one each, one item ticked; a finished one for the member of staff.
        runs = {}
        for role, user in users.items():
            run = give_checklist(db, user, due_at=utcnow() + timedelta(days=14))
            view = checklists_service.run_view(session=db, run=run)
            checklists_service.set_item(
                session=db,
                run=run,
                item_id=view.items[0].id,
                done=True,
                note="Checked my privacy settings",
                user=user,
                actor=SYSTEM,
            )
            runs[role] = run.id
        finished = give_checklist(db, users[Role.staff], key="platforms")
        for item in checklists_service.run_view(session=db, run=finished).items:
            checklists_service.set_item(
                session=db,
                run=finished,
                item_id=item.id,
                done=True,
                note="",
                user=users[Role.staff],
                actor=SYSTEM,
            )
        checklists_service.finish_run(
            session=db, run=finished, user=users[Role.staff], actor=SYSTEM
        )
        overdue = give_checklist(
            db, users[Role.staff], key="proactive-measures", due_at=utcnow() + timedelta(days=1)
        )
        overdue.due_at = utcnow() - timedelta(days=3)
        overdue.reminded_at = utcnow() - timedelta(days=1)
        db.add(overdue)
        db.commit()

        # Policies: the staff social media policy published with a draft after it; the pupils'
        # phone policy published, with a public copy.
        policy = policies_service.create_policy(
            session=db,
            school_id=school_id,
            actor=SYSTEM,
            data=PolicyCreate(title=SOCIAL_MEDIA.title, kind="social_media", audience="staff"),
        )
        phones = policies_service.create_policy(
            session=db,
            school_id=school_id,
            actor=SYSTEM,
            data=PolicyCreate(
                title="Mobile phones: for pupils",
                kind="mobile_phone",
                audience="pupils",
                phone_stance="prohibited_all_day",
            ),
        )
        for item, body in ((policy, SOCIAL_MEDIA.body), (phones, MOBILE_PHONES.body)):
            body = body.replace("{school_name}", settings.school_name)
            version = policies_service.add_version(
                session=db,
                policy=item,
                actor=SYSTEM,
                data=VersionCreate(
                    body=body, effective_from=TODAY, review_due=TODAY + timedelta(days=20)
                ),
            )
            policies_service.approve(
                session=db, policy=item, version=version, approver=maker[Role.slt], actor=SYSTEM
            )
            policy_flows.publish(session=db, policy=item, version=version, actor=SYSTEM)
        policies_service.add_version(
            session=db,
            policy=policy,
            actor=SYSTEM,
            data=VersionCreate(
                body=SOCIAL_MEDIA.body.replace("{school_name}", "Our school") + "\n\nA new line.",
                effective_from=TODAY + timedelta(days=30),
                review_due=TODAY + timedelta(days=395),
            ),
        )
        policies_service.acknowledge(
            session=db,
            policy=policy,
            version=policies_service.current_version(session=db, policy=policy),
            user=maker[Role.staff],
            actor=SYSTEM,
        )
        phones = policies_service.set_public(session=db, policy=phones, public=True, actor=SYSTEM)
        db.commit()
        public_slug = phones.public_slug

    # Through the API and the pages, as the MIS and people would.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as mis:
        people = [
            {"external_id": "P1", "kind": "pupil", "forename": "Aisha", "surname": "Rahman",
             "year_group": "Year 9", "registration_group": "9C"},
            {"external_id": "P2", "kind": "pupil", "forename": "Oliver", "surname": "Hughes",
             "preferred_forename": "Ollie", "year_group": "Year 9", "registration_group": "9C"},
            {"external_id": "P3", "kind": "pupil", "forename": "Maya", "surname": "Rahman",
             "year_group": "Year 7", "registration_group": "7A", "is_active": False},
            {"external_id": "S1", "kind": "staff", "forename": "Teacher", "surname": "Zero",
             "email": "teacher0@school.example"},
            {"external_id": "S2", "kind": "staff", "forename": "Supply", "surname": "Teacher"},
            {"external_id": "C1", "kind": "parent_carer", "forename": "Farah", "surname": "Rahman"},
        ]  # fmt: skip
        answer = mis.put("/api/v1/people", json={"people": people}, headers=bearer(raw))
        assert answer.status_code == 200, answer.text

    staff = _form_client(app, maker[Role.staff])
    when = (utcnow() - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    answer = staff.post(
        "/report",
        data={
            "csrf_token": _csrf(staff, "/report"),
            "title": "TikTok video mocking a Year 9 pupil",
            "description": "A video posted last night by another pupil's account.",
            "occurred_at": when,
            "platform": "tiktok",
            "category": "harassment",
            "offender_type": "pupil",
            "target_type": "pupil",
            "content_flags": ["abusive"],
            "captured_at": when,
            "evidence_note": "Screenshot taken from a pupil's phone at break.",
        },
        files=[("screenshots", ("tiktok.png", png((160, 90), (30, 90, 160)), "image/png"))],
    )
    assert answer.status_code == 303, answer.text
    staff.close()

    with Session(engine, expire_on_commit=False) as db:
        evidence = db.exec(select(Evidence).order_by(Evidence.id.desc())).first()
        incident_id = evidence.incident_id
        staff_incident = make_incident(
            db, reporter=maker[Role.staff], offender_type="staff", target_type="pupil"
        )
        make_incident(
            db,
            reporter=users[Role.staff],
            title="Fake account using the school logo",
            platform="instagram",
        )
        message = db.exec(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        message.status = MessageStatus.failed
        message.attempts = 8
        message.last_status_code = 500
        message.last_error = "server error"
        db.add(message)
        db.commit()

    lead = _form_client(app, maker[Role.dsl])
    page = f"/incidents/{incident_id}"
    token = _csrf(lead, page)
    steps = re.findall(r'id="step-toggle-(\d+)"', lead.get(page).text)
    posts = [
        (f"{page}/update", {"assigned_to": str(users[Role.dsl].id)}),
        (f"{page}/entries", {"kind": "note", "text": "Spoke to the pupil's form tutor."}),
        (
            f"{page}/entries",
            {
                "kind": "decision",
                "text": "Not referring to the police.",
                "rationale": "No threat and no sexual content; removal requested through POSH.",
            },
        ),
        (f"{page}/entries", {"kind": "contact", "text": "Rang POSH.", "contact_with": "posh"}),
        (f"{page}/playbook/{steps[0]}", {"done": "true", "note": "Screenshot kept"}),
        (f"{page}/playbook/{steps[1]}", {"done": "true"}),
        (
            f"/incidents/{staff_incident.id}/harm-test",
            {"answers": ["risk_to_children"]},
        ),
    ]
    people_page = lead.get(f"{page}?person_q=Hughes").text
    person = re.search(r'name="person_id" value="(\d+)"', people_page)
    posts.append((f"{page}/people", {"person_id": person.group(1), "role": "victim"}))
    posts.append((f"{page}/people", {"label": "A Year 10 pupil's account", "role": "subject"}))
    for path, data in posts:
        answer = lead.post(path, data={"csrf_token": token, **data})
        assert answer.status_code == 303, (path, answer.status_code, answer.text[:500])
    lead.close()

    admin = _form_client(app, maker[Role.admin])
    for apply in (True, False):
        answer = admin.post(
            "/admin/people/import",
            data={"csrf_token": _csrf(admin, "/admin/people/import")},
            files={"file": ("roster.csv", ROSTER_CSV.encode(), "text/csv")},
        )
        assert answer.status_code == 200, answer.text
        if apply:
            found = re.search(r"/admin/people/import/(\d+)/apply", answer.text)
            applied = admin.post(
                found.group(0), data={"csrf_token": _csrf(admin, "/admin/people/import")}
            )
            assert applied.status_code in (200, 303), applied.text
    admin.close()

    return Seeded(
        users=users,
        incident_id=incident_id,
        evidence_id=evidence.id,
        runs=runs,
        policy_id=policy.id,
        phone_policy_id=phones.id,
        public_slug=public_slug,
        extra={
            "staff_incident_id": staff_incident.id,
            "finished_run": finished.id,
            "overdue_run": overdue.id,
        },
    )
