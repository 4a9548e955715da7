"""The retention schedule, each record's retention decisions and legal hold, and the daily count
of records due for review. Names are API."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow


class RecordType(StrEnum):
    """What a line of the schedule applies to: incidents by their kind, and other records."""

    incident_pupil = "incident_pupil"
    incident_staff_allegation = "incident_staff_allegation"
    incident_staff_low_level = "incident_staff_low_level"
    incident_adult = "incident_adult"
    incident_phone_misuse = "incident_phone_misuse"
    checklist_run = "checklist_run"
    policy_version = "policy_version"


class RecordKind(StrEnum):
    """The table a record that can be reviewed, held and deleted lives in."""

    incident = "incident"
    checklist_run = "checklist_run"
    policy_version = "policy_version"


class RetentionRule(SQLModel, table=True):
    """How many years a type of record is kept: shipped defaults, changed by the DSL."""

    __tablename__ = "retention_rule"
    __table_args__ = (
        sa.UniqueConstraint("school_id", "record_type"),
        sa.CheckConstraint("years > 0", name="years_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    record_type: RecordType = Field(sa_type=enum_type(RecordType))
    years: int
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")


class RecordRetention(SQLModel, table=True):
    """What review has decided about one record: kept for longer, or held. `deleting` is set only
    inside the transaction that deletes the record after review; the database refuses to delete
    an incident's chronology without it, and whenever the record is held."""

    __tablename__ = "record_retention"
    __table_args__ = (sa.UniqueConstraint("kind", "record_id"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    kind: RecordKind = Field(sa_type=enum_type(RecordKind))
    record_id: int
    keep_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    keep_reason: str = Field(default="", max_length=2000)
    kept_by_id: int | None = Field(default=None, foreign_key="user.id")
    kept_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hold_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hold_by_id: int | None = Field(default=None, foreign_key="user.id")
    hold_reason: str = Field(default="", max_length=2000)
    deleting: bool = False

    @property
    def is_held(self) -> bool:
        return self.hold_since is not None


class RetentionCheck(SQLModel, table=True):
    """How many records were due for review when the daily job (or a review) last counted."""

    __tablename__ = "retention_check"

    school_id: int = Field(foreign_key="school.id", primary_key=True)
    due: int = 0
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
