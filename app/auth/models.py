"""Schools, user accounts, browser sessions and API tokens."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import EmailStr
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow


class Role(StrEnum):
    staff = "staff"
    dsl = "dsl"
    deputy_dsl = "deputy_dsl"
    slt = "slt"
    admin = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def needs_second_factor(self) -> bool:
        return self in {Role.dsl, Role.deputy_dsl, Role.admin}


ROLE_LABELS = {
    Role.staff: "Staff",
    Role.dsl: "Designated Safeguarding Lead",
    Role.deputy_dsl: "Deputy DSL",
    Role.slt: "Senior leadership",
    Role.admin: "Administrator",
}


class Scope(StrEnum):
    people_write = "people:write"
    people_read = "people:read"
    incidents_read = "incidents:read"
    incidents_write = "incidents:write"
    policies_read = "policies:read"
    policies_write = "policies:write"
    checklists_read = "checklists:read"
    checklists_write = "checklists:write"
    webhooks_admin = "webhooks:admin"


class School(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    urn: str = Field(default="", max_length=20, description="DfE unique reference number")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserBase(SQLModel):
    email: EmailStr = Field(max_length=254)
    display_name: str = Field(min_length=1, max_length=120)
    role: Role = Field(sa_type=enum_type(Role))
    is_active: bool = True


class User(UserBase, table=True):
    __table_args__ = (sa.UniqueConstraint("school_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    email: str = Field(max_length=254)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    password_hash: str = Field(max_length=200)
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    failed_login_count: int = Field(
        default=0, description="Failed sign-ins since the last one that succeeded"
    )
    totp_secret: str | None = Field(
        default=None, max_length=255, description="The TOTP seed, sealed (app.core.keys)"
    )
    totp_enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_last_counter: int | None = Field(default=None, sa_type=sa.BigInteger)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def has_second_factor(self) -> bool:
        return self.totp_enabled_at is not None


class UserCreate(UserBase):
    password: str = Field(min_length=12, max_length=200)


class UserUpdate(SQLModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    role: Role | None = None
    is_active: bool | None = None


class UserPublic(UserBase):
    id: int
    has_second_factor: bool
    last_login_at: datetime | None


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    second_factor_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    user_agent: str = Field(default="", max_length=200)
    failed_sign_ins_before: int = Field(
        default=0, description="Failed sign-ins on the account between the last one and this"
    )


class ThrottleKind(StrEnum):
    account = "account"  # an email address typed at sign-in, whether or not it has an account
    address = "address"  # a client address
    device = "device"  # a browser that signed in to the account before (its device cookie)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per email typed, per client address and per known browser. The
    key is a keyed hash, so neither the emails typed nor the addresses are kept."""

    __tablename__ = "sign_in_throttle"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    kind: ThrottleKind = Field(sa_type=enum_type(ThrottleKind))
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(
        max_length=16, description="The first characters, shown to tell tokens apart"
    )
    token_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(sa_type=sa.JSON)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > utcnow()


class ApiTokenCreate(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    expires_at: datetime | None = None
