"""Escalation rules (data the DSL edits) and the escalations they cause."""

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow
from app.escalation.conditions import Condition
from app.incidents.models import Severity


class EscalationRule(SQLModel, table=True):
    __tablename__ = "escalation_rule"
    __table_args__ = (sa.UniqueConstraint("school_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    key: str = Field(max_length=60)
    name: str = Field(max_length=120)
    condition: dict = Field(sa_type=sa.JSON)
    severity: Severity = Field(sa_type=enum_type(Severity))
    required_actions: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    notify: bool = True
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Escalation(SQLModel, table=True):
    """A rule fired for an incident: once per incident and rule."""

    __table_args__ = (
        sa.UniqueConstraint("incident_id", "rule_id"),
        # The dashboard: escalations by rule in a period.
        sa.Index("ix_escalation_rule_id_created_at", "rule_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    rule_id: int = Field(foreign_key="escalation_rule.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reason: str = Field(max_length=1000)


class RuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "threats-to-staff",
                    "name": "Threats against staff",
                    "condition": {
                        "match": "all",
                        "clauses": [
                            {"field": "target_type", "op": "is_one_of", "value": ["staff"]},
                            {
                                "field": "content_flags",
                                "op": "includes_any",
                                "value": ["threatening"],
                            },
                        ],
                    },
                    "severity": "high",
                    "required_actions": ["Tell the headteacher the same day"],
                    "notify": True,
                }
            ]
        },
    )

    key: str = PydanticField(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = PydanticField(min_length=1, max_length=120)
    condition: Condition
    severity: Severity
    required_actions: list[str] = PydanticField(default_factory=list, max_length=10)
    notify: StrictBool = True
    is_active: StrictBool = True


class RulePublic(BaseModel):
    id: int
    key: str
    name: str
    condition: Condition
    condition_in_words: str
    severity: Severity
    required_actions: list[str]
    notify: bool
    is_active: bool
    updated_at: datetime
