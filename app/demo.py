"""A demo school for trying Haven out (only with HAVEN_DEV)."""

from sqlmodel import Session

from app.audit.service import SYSTEM
from app.auth import flows as auth_flows
from app.auth import service as auth_service
from app.auth.models import Role, School, UserCreate

DEMO_PASSWORD = "haven-demo-password"  # noqa: S105 - demo accounts only exist with HAVEN_DEV
DEMO_ACCOUNTS = [
    ("staff@demo.haven.school", "Sam Teacher", Role.staff),
    ("dsl@demo.haven.school", "Dee Safeguarding", Role.dsl),
    ("deputy@demo.haven.school", "Dan Deputy", Role.deputy_dsl),
    ("head@demo.haven.school", "Helen Head", Role.slt),
    ("admin@demo.haven.school", "Alex Admin", Role.admin),
]


def seed_demo_school(*, session: Session, school: School) -> list[str]:
    """Create the demo accounts that are missing; return a line describing each."""
    lines = []
    for email, name, role in DEMO_ACCOUNTS:
        user = auth_service.find_user_by_email(session=session, school_id=school.id, email=email)
        if user is None:
            data = UserCreate(email=email, display_name=name, role=role, password=DEMO_PASSWORD)
            user = auth_flows.create_user(
                session=session, school_id=school.id, data=data, actor=SYSTEM
            )
        note = (
            " (sets up an authenticator app at first sign-in)" if role.needs_second_factor else ""
        )
        lines.append(f"  {role.label:<30} {email:<28} password: {DEMO_PASSWORD}{note}")
    return lines
