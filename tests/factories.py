"""Building blocks for tests: schools, users, tokens, incidents, policies, webhook endpoints,
pictures, and signing in as a person would."""

import io
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pyotp
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from app.audit.service import SYSTEM
from app.auth import service as auth_service
from app.auth.models import ApiToken, ApiTokenCreate, Role, School, Scope, User, UserCreate
from app.checklists import service as checklists_service
from app.checklists.models import ChecklistRun, ChecklistTemplate
from app.core.config import Settings
from app.core.db import make_engine
from app.core.types import utcnow
from app.incidents import flows as incident_flows
from app.incidents.models import Incident, IncidentCreate
from app.install import ensure_school
from app.people.models import Person, PersonKind
from app.policies import flows as policy_flows
from app.policies import service as policies_service
from app.policies.models import Policy, PolicyCreate, PolicyVersion, VersionCreate
from app.webhooks import signing
from app.webhooks.models import EndpointFormat, WebhookEndpoint
from tests.conftest import TEST_SECRET

PASSWORD = "correct-horse-battery-staple"
_counter = iter(range(1, 1_000_000))


def make_school(db: Session) -> School:
    return ensure_school(session=db, settings=Settings(dev=True, school_name="Test School"))


def make_user(
    db: Session,
    *,
    role: Role = Role.staff,
    email: str | None = None,
    password: str = PASSWORD,
    second_factor: bool | None = None,
    is_active: bool = True,
) -> User:
    school = make_school(db)
    n = next(_counter)
    data = UserCreate(
        email=email or f"{role.value}{n}@school.example",
        display_name=f"{role.label} {n}",
        role=role,
        password=password,
        is_active=is_active,
    )
    user = auth_service.create_user(session=db, school_id=school.id, data=data, actor=SYSTEM)
    if second_factor if second_factor is not None else role.needs_second_factor:
        auth_service.set_totp_seed(user=user, seed=pyotp.random_base32(), secret_key=TEST_SECRET)
        user.totp_enabled_at = utcnow()
        db.add(user)
    db.commit()
    return user


def users_in(url: str) -> list[User]:
    """Every account in the database at `url`, read through an engine of its own."""
    engine = make_engine(url)
    with Session(engine) as session:
        users = session.exec(select(User)).all()
    engine.dispose()
    return users


def make_person(
    db: Session, kind: PersonKind = PersonKind.pupil, forename="Ada", surname="Example", **extra
) -> Person:
    """Someone on the school's roster, as the MIS would have sent them."""
    school = make_school(db)
    person = Person(
        school_id=school.id,
        external_id=f"MIS-{kind.value}-{forename}-{surname}-{next(_counter)}",
        kind=kind,
        forename=forename,
        surname=surname,
        **extra,
    )
    db.add(person)
    db.commit()
    return person


def make_token(db: Session, *scopes: Scope, name: str = "MIS") -> tuple[str, ApiToken]:
    school = make_school(db)
    data = ApiTokenCreate(name=name, scopes=list(scopes))
    raw, token = auth_service.create_api_token(
        session=db, school_id=school.id, data=data, actor=SYSTEM
    )
    db.commit()
    return raw, token


def bearer(raw: str) -> dict[str, str]:
    """The header an API client sends with its token."""
    return {"Authorization": f"Bearer {raw}"}


def api_headers(db: Session, *scopes: Scope) -> dict[str, str]:
    """Headers of an API client holding a new token with these scopes."""
    raw, _ = make_token(db, *scopes)
    return bearer(raw)


def totp_code(user: User, steps_ahead: int = 0) -> str:
    seed = auth_service.totp_seed(user=user, secret_key=TEST_SECRET)
    return pyotp.TOTP(seed).at(utcnow() + timedelta(seconds=30 * steps_ahead))


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def page_csrf(client: TestClient, path: str = "/login") -> str:
    return csrf_from(client.get(path).text)


def sign_in(client: TestClient, user: User, password: str = PASSWORD) -> TestClient:
    """Sign in through the login form, giving the second factor when the role needs one."""
    token = page_csrf(client)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    if user.role.needs_second_factor:
        assert response.headers["location"] == "/login/second-factor"
        token = page_csrf(client, "/login/second-factor")
        response = client.post(
            "/login/second-factor", data={"code": totp_code(user), "csrf_token": token}
        )
        assert response.status_code == 303, response.text
    return client


def signed_in_as(client: TestClient, db: Session, role: Role) -> User:
    """A new user of the role, signed in on the client."""
    user = make_user(db, role=role)
    sign_in(client, user)
    return user


def shipped_template(db: Session, key: str = "staff-conduct") -> ChecklistTemplate:
    school = make_school(db)
    return db.exec(
        select(ChecklistTemplate).where(
            ChecklistTemplate.school_id == school.id, ChecklistTemplate.key == key
        )
    ).one()


def give_checklist(
    db: Session, user: User, key: str = "staff-conduct", due_at: datetime | None = None
) -> ChecklistRun:
    """Give one person a shipped checklist, as the DSL would."""
    template = shipped_template(db, key)
    (run,) = checklists_service.assign(
        session=db,
        school_id=template.school_id,
        template_id=template.id,
        user_ids=[user.id],
        roles=[],
        due_at=due_at,
        actor=SYSTEM,
    ).created
    db.commit()
    return run


def incident_data(**overrides) -> IncidentCreate:
    values = {
        "title": "Abusive video about a teacher",
        "description": "A TikTok video mocking Mr Example, posted last night.",
        "occurred_at": utcnow() - timedelta(hours=3),
        "platform": "tiktok",
        "category": "malicious_post",
        "offender_type": "parent_carer",  # matches no default escalation rule
        "target_type": "staff",
        **overrides,
    }
    return IncidentCreate.model_validate(values)


def make_incident(db: Session, reporter: User | None = None, **overrides) -> Incident:
    """Report an incident as a member of staff would (with its playbook)."""
    reporter = reporter or make_user(db)
    incident = incident_flows.report_incident(
        session=db,
        school_id=reporter.school_id,
        data=incident_data(**overrides),
        reporter=reporter,
        actor=SYSTEM,
    )
    db.commit()
    return incident


def make_policy(
    db: Session, *, title="Social media", kind="social_media", audience="staff", **fields
) -> Policy:
    school = make_school(db)
    return policies_service.create_policy(
        session=db,
        school_id=school.id,
        actor=SYSTEM,
        data=PolicyCreate(title=title, kind=kind, audience=audience, **fields),
    )


def make_version(
    db: Session, policy: Policy, body="# Policy\n\nBe kind online.", review_in=365
) -> PolicyVersion:
    """A draft version of the policy, in effect from today."""
    today = date.today()
    return policies_service.add_version(
        session=db,
        policy=policy,
        actor=SYSTEM,
        data=VersionCreate(
            body=body, effective_from=today, review_due=today + timedelta(days=review_in)
        ),
    )


def publish_policy(
    db: Session, policy: Policy | None = None, approver: User | None = None, **version
) -> tuple[Policy, PolicyVersion]:
    """A new version of the policy (by default a new staff policy), approved and published."""
    policy = policy or make_policy(db)
    draft = make_version(db, policy, **version)
    policies_service.approve(
        session=db,
        policy=policy,
        version=draft,
        approver=approver or make_user(db, role=Role.slt),
        actor=SYSTEM,
    )
    policy_flows.publish(session=db, policy=policy, version=draft, actor=SYSTEM)
    db.commit()
    return policy, draft


def make_endpoint(
    db: Session,
    url: str = "https://hooks.example.org/haven",
    fmt: EndpointFormat = EndpointFormat.standard,
    events: Iterable[str] = ("incident.escalated",),
) -> WebhookEndpoint:
    """A webhook endpoint of the school, committed."""
    endpoint = WebhookEndpoint(
        school_id=make_school(db).id,
        url=url,
        format=fmt,
        events=list(events),
        secret=signing.new_secret(),
    )
    db.add(endpoint)
    db.commit()
    return endpoint


def png(size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small picture of one colour, as a screenshot would be uploaded."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()
