"""The roster of pupils, staff and parents/carers, synced from the school's MIS."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow


class PersonKind(StrEnum):
    pupil = "pupil"
    staff = "staff"
    parent_carer = "parent_carer"


class PersonBase(SQLModel):
    external_id: str = Field(max_length=100, description="The MIS identifier")
    kind: PersonKind = Field(sa_type=enum_type(PersonKind))
    forename: str = Field(max_length=100)
    surname: str = Field(max_length=100)
    preferred_forename: str | None = Field(default=None, max_length=100)
    preferred_surname: str | None = Field(default=None, max_length=100)
    year_group: str | None = Field(default=None, max_length=20)
    registration_group: str | None = Field(default=None, max_length=40)
    upn: str | None = Field(default=None, max_length=13, description="Unique pupil number")
    email: str | None = Field(default=None, max_length=254)
    is_active: bool = True


class Person(PersonBase, table=True):
    __table_args__ = (sa.UniqueConstraint("school_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class PersonPublic(PersonBase):
    id: int
    updated_at: datetime


class PersonIn(PersonBase):
    """One roster record as the MIS sends it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=100)
    forename: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)


MAX_PEOPLE_PER_SYNC = 5000


class PeopleSync(SQLModel):
    model_config = ConfigDict(extra="forbid")

    people: list[PersonIn] = Field(max_length=MAX_PEOPLE_PER_SYNC)
    deactivate_missing: bool = Field(
        default=False, description="Mark people not in this (full) roster as inactive"
    )


class PeopleSyncResult(SQLModel):
    created: int
    updated: int
    unchanged: int
    deactivated: int
