"""Checklist templates and their items; runs of a template for a person or an incident."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import ConfigDict, StrictBool
from sqlmodel import Field, SQLModel

from app.auth.models import Role
from app.core.types import JsonRowId, Timestamp, UTCDateTime, enum_type, utcnow


class ChecklistPurpose(StrEnum):
    staff = "staff"  # each member of staff works through their own run
    leadership = "leadership"  # leaders' actions for the whole school
    incident = "incident"  # an incident's response playbook


class Recurrence(StrEnum):
    none = "none"
    yearly = "yearly"


class RunReason(StrEnum):
    assigned = "assigned"
    new_staff = "new_staff"
    yearly = "yearly"
    policy_version = "policy_version"
    incident = "incident"


class RunStatus(StrEnum):
    open = "open"
    overdue = "overdue"
    completed = "completed"


class ChecklistTemplate(SQLModel, table=True):
    __tablename__ = "checklist_template"
    __table_args__ = (sa.UniqueConstraint("school_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    key: str = Field(max_length=60, description="Stable name, e.g. staff-conduct")
    title: str = Field(max_length=160)
    description: str = Field(default="", max_length=2000)
    purpose: ChecklistPurpose = Field(sa_type=enum_type(ChecklistPurpose))
    source: str = Field(default="", max_length=300, description="Where its advice comes from")
    recurrence: Recurrence = Field(default=Recurrence.none, sa_type=enum_type(Recurrence))
    assign_to_new_staff: bool = False
    policy_kind: str | None = Field(
        default=None, max_length=32, description="Issue again when this kind of policy changes"
    )
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChecklistItem(SQLModel, table=True):
    """A step of a template, or (with `run_id`) a step added to one run only, such as the
    actions an escalation adds to an incident's playbook."""

    __tablename__ = "checklist_item"

    id: int | None = Field(default=None, primary_key=True)
    template_id: int = Field(foreign_key="checklist_template.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="checklist_run.id", index=True)
    position: int
    text: str = Field(max_length=300)
    guidance: str = Field(default="", max_length=2000)
    required: bool = True
    note_prompt: str | None = Field(
        default=None, max_length=200, description="When set, completing the item asks for a note"
    )


class ChecklistRun(SQLModel, table=True):
    """One working-through of a template: by a person (assignee) or for an incident."""

    __tablename__ = "checklist_run"
    __table_args__ = (
        sa.CheckConstraint("(assignee_id IS NULL) <> (incident_id IS NULL)", name="one_owner"),
        sa.Index("ix_checklist_run_school_id_updated_at_id", "school_id", "updated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    template_id: int = Field(foreign_key="checklist_template.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    reason: RunReason = Field(sa_type=enum_type(RunReason))
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def status(self, now: datetime) -> RunStatus:
        if self.completed_at is not None:
            return RunStatus.completed
        if self.due_at is not None and self.due_at < now:
            return RunStatus.overdue
        return RunStatus.open


class ItemCompletion(SQLModel, table=True):
    __tablename__ = "item_completion"
    __table_args__ = (sa.UniqueConstraint("run_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="checklist_run.id", index=True)
    item_id: int = Field(foreign_key="checklist_item.id")
    completed_by_id: int | None = Field(default=None, foreign_key="user.id")
    completed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    note: str = Field(default="", max_length=2000)


# API schemas -------------------------------------------------------------------------------


class ChecklistItemPublic(SQLModel):
    id: int
    position: int
    text: str
    guidance: str
    required: bool
    note_prompt: str | None


class ChecklistTemplatePublic(SQLModel):
    id: int
    key: str
    title: str
    description: str
    purpose: ChecklistPurpose
    source: str
    recurrence: Recurrence
    assign_to_new_staff: bool
    is_active: bool
    items: list[ChecklistItemPublic]


class ItemCompletionPublic(SQLModel):
    item_id: int
    completed_at: datetime
    completed_by_id: int | None
    note: str


class ChecklistRunPublic(SQLModel):
    id: int
    template_id: int
    assignee_id: int | None
    incident_id: int | None
    reason: RunReason
    status: RunStatus
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    updated_at: datetime
    items_done: int
    items_total: int
    completions: list[ItemCompletionPublic]


class ChecklistRunCreate(SQLModel):
    """Give a template to people: by role, by named users, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [  # at least one role or person
                {"required": ["roles"], "properties": {"roles": {"minItems": 1}}},
                {"required": ["user_ids"], "properties": {"user_ids": {"minItems": 1}}},
            ],
            "examples": [
                {"template_id": 1, "roles": ["staff"], "due_at": "2026-12-18T16:00:00Z"},
                {"template_id": 1, "user_ids": [12, 15]},
            ],
        },
    )

    template_id: JsonRowId
    user_ids: list[JsonRowId] = Field(default_factory=list, max_length=5000)
    roles: list[Role] = Field(default_factory=list, max_length=5)
    due_at: Timestamp | None = Field(default=None, description="In the future, if given")


class ChecklistRunsCreated(SQLModel):
    data: list[ChecklistRunPublic] = Field(description="The runs made, one a person")
    skipped: int = Field(description="People who already had an unfinished run of it")


class ItemCompletionUpdate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"done": True, "note": "Read on 3 September."}]},
    )

    done: StrictBool = True
    note: str = Field(default="", max_length=2000)


class ChecklistTemplateCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=160)
    description: str = Field(default="", max_length=2000)
    purpose: ChecklistPurpose = ChecklistPurpose.staff
    recurrence: Recurrence = Recurrence.none
    items: list[str] = Field(max_length=100, description="One line an item")
