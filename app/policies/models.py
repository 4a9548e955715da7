"""Policies, their versions (immutable once published), acknowledgements and phone exemptions."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.core.types import Day, UTCDateTime, enum_type, utcnow


class PolicyKind(StrEnum):
    social_media = "social_media"
    mobile_phone = "mobile_phone"
    acceptable_use = "acceptable_use"
    other = "other"


class Audience(StrEnum):
    staff = "staff"
    pupils = "pupils"
    parents_carers = "parents_carers"


class PhoneStance(StrEnum):
    prohibited_all_day = "prohibited_all_day"
    prohibited_in_lessons = "prohibited_in_lessons"
    lesson_use_allowed = "lesson_use_allowed"


class VersionStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    published = "published"
    superseded = "superseded"
    retired = "retired"


class ExemptionReason(StrEnum):
    young_carer = "young_carer"
    medical = "medical"
    other = "other"


class Policy(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    title: str = Field(max_length=200)
    kind: PolicyKind = Field(sa_type=enum_type(PolicyKind))
    audience: Audience = Field(sa_type=enum_type(Audience))
    phone_stance: PhoneStance | None = Field(default=None, sa_type=enum_type(PhoneStance))
    public_slug: str | None = Field(default=None, max_length=40, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PolicyVersion(SQLModel, table=True):
    __tablename__ = "policy_version"
    __table_args__ = (sa.UniqueConstraint("policy_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    number: int
    body: str = Field(sa_type=sa.Text)
    status: VersionStatus = Field(default=VersionStatus.draft, sa_type=enum_type(VersionStatus))
    effective_from: date
    review_due: date
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    approved_by_id: int | None = Field(default=None, foreign_key="user.id")
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PolicyAcknowledgement(SQLModel, table=True):
    __tablename__ = "policy_acknowledgement"
    __table_args__ = (sa.UniqueConstraint("version_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="policy_version.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    acknowledged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PhoneExemption(SQLModel, table=True):
    """A pupil allowed their phone under the policy's stance (young carers, medical needs)."""

    __tablename__ = "phone_exemption"
    __table_args__ = (sa.UniqueConstraint("policy_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="policy.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    reason: ExemptionReason = Field(sa_type=enum_type(ExemptionReason))
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# API schemas -------------------------------------------------------------------------------


class PolicyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"kind": {"not": {"const": "mobile_phone"}}}},
            "then": {"properties": {"phone_stance": {"type": "null"}}},
            "examples": [
                {
                    "title": "Mobile phones",
                    "kind": "mobile_phone",
                    "audience": "pupils",
                    "phone_stance": "prohibited_all_day",
                }
            ],
        },
    )

    title: str = PydanticField(min_length=1, max_length=200)
    kind: PolicyKind
    audience: Audience
    phone_stance: PhoneStance | None = PydanticField(
        default=None, description="Only for a mobile phone policy"
    )


class VersionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "# Mobile phones\n\nPupils keep their phones switched off and out "
                    "of sight from arrival until the end of the school day.",
                    "effective_from": "2026-09-01",
                    "review_due": "2027-09-01",
                }
            ]
        },
    )

    body: str = PydanticField(min_length=1, max_length=200_000, description="Markdown")
    effective_from: Day
    review_due: Day = PydanticField(description="After effective_from")

    @model_validator(mode="after")
    def _review_after_effect(self) -> "VersionCreate":
        if self.review_due <= self.effective_from:
            raise ValueError("review_due must be after effective_from")
        return self


class VersionPublic(BaseModel):
    number: int
    status: VersionStatus
    effective_from: date
    review_due: date
    approved_at: datetime | None
    published_at: datetime | None


class PolicyPublic(BaseModel):
    id: int
    title: str
    kind: PolicyKind
    audience: Audience
    phone_stance: PhoneStance | None
    versions: list[VersionPublic] = []


class AcknowledgementPublic(BaseModel):
    user_id: int
    version: int
    acknowledged_at: datetime | None
