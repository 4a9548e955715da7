"""The roster of pupils, staff and parents/carers, synced from the school's MIS."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import (
    ConfigDict,
    EmailStr,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow


class PersonKind(StrEnum):
    pupil = "pupil"
    staff = "staff"
    parent_carer = "parent_carer"


class PersonBase(SQLModel):
    external_id: str = Field(
        max_length=100, description="The identifier the MIS or aggregator gives this person"
    )
    kind: PersonKind = Field(sa_type=enum_type(PersonKind))
    forename: str = Field(max_length=100, description="Legal forename")
    surname: str = Field(max_length=100, description="Legal surname")
    preferred_forename: str | None = Field(default=None, max_length=100)
    preferred_surname: str | None = Field(default=None, max_length=100)
    year_group: str | None = Field(default=None, max_length=20, description="e.g. Year 8")
    registration_group: str | None = Field(
        default=None, max_length=40, description="Form or registration group, e.g. 8B"
    )
    mis_id: str | None = Field(
        default=None, max_length=50, description="The MIS's own id (admission number, SIMS id)"
    )
    upn: str | None = Field(default=None, max_length=13, description="Unique pupil number")
    email: str | None = Field(default=None, max_length=254, description="School email (staff)")
    is_active: bool = True


class Person(PersonBase, table=True):
    __table_args__ = (sa.UniqueConstraint("school_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)

    @property
    def display_name(self) -> str:
        return (
            f"{self.preferred_forename or self.forename} {self.preferred_surname or self.surname}"
        )


class PersonPublic(PersonBase):
    id: int
    updated_at: datetime


_UPN_PATTERN = r"^[A-Z][0-9]{11}[0-9A-Z]$"


def _blank_allowed(schema: dict) -> WithJsonSchema:
    """The published schema of a field that also takes "" (read as null), as MIS exports send
    for "no value"; validation itself stays one rule, so a bad value gives one error."""
    return WithJsonSchema({"anyOf": [schema, {"const": ""}, {"type": "null"}]})


class PersonIn(PersonBase):
    """One roster record as the MIS sends it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=100)
    forename: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    # An empty string, as MIS exports send for "no value", is read as null.
    upn: Annotated[
        Annotated[str, StringConstraints(pattern=_UPN_PATTERN)] | None,
        _blank_allowed({"type": "string", "pattern": _UPN_PATTERN}),
    ] = Field(
        default=None,
        description="Unique pupil number: a letter, 11 digits, then a digit or letter",
    )
    email: Annotated[
        EmailStr | None, _blank_allowed({"type": "string", "format": "email", "maxLength": 254})
    ] = Field(default=None, max_length=254)
    is_active: StrictBool = True

    @field_validator(
        "preferred_forename",
        "preferred_surname",
        "year_group",
        "registration_group",
        "mis_id",
        "upn",
        "email",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value):
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("upn", mode="before")
    @classmethod
    def _upper_upn(cls, value):
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @model_validator(mode="after")
    def _upn_only_for_pupils(self) -> "PersonIn":
        if self.upn and self.kind != PersonKind.pupil:
            raise ValueError("a UPN belongs to pupils only")
        return self


MAX_PEOPLE_PER_SYNC = 5000


class PeopleSync(SQLModel):
    model_config = ConfigDict(extra="forbid")

    people: list[PersonIn] = Field(max_length=MAX_PEOPLE_PER_SYNC)
    deactivate_missing: StrictBool = Field(
        default=False,
        description="A full sync: people of the school not in this request are marked inactive, "
        "and the accounts linked to them are deactivated",
    )


class PeopleSyncResult(SQLModel):
    created: int
    updated: int
    unchanged: int
    deactivated: int
    accounts_linked: int = Field(
        default=0, description="Staff accounts newly linked to their roster entry by email"
    )
    accounts_deactivated: int = Field(
        default=0, description="Accounts of people who left, deactivated by this sync"
    )


class RosterImportStatus(StrEnum):
    previewed = "previewed"
    applied = "applied"
    discarded = "discarded"


class RosterImport(SQLModel, table=True):
    """A CSV roster upload between its preview and its application.

    The checked rows wait here so that "apply" applies exactly what was previewed; they are
    cleared once the import is applied or discarded.
    """

    __tablename__ = "roster_import"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    filename: str = Field(default="", max_length=200)
    row_count: int = 0
    deactivate_missing: bool = False
    people: list[dict] = Field(default_factory=list, sa_type=sa.JSON)
    status: RosterImportStatus = Field(
        default=RosterImportStatus.previewed, sa_type=enum_type(RosterImportStatus)
    )
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict | None = Field(default=None, sa_type=sa.JSON)
