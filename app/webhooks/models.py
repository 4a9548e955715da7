"""Webhook endpoints, the outbox of messages to deliver, and every delivery attempt."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, enum_type, utcnow


class EventType(StrEnum):
    incident_escalated = "incident.escalated"
    incident_updated = "incident.updated"
    policy_review_due = "policy.review_due"
    checklist_overdue = "checklist.overdue"
    webhook_test = "webhook.test"


class EndpointFormat(StrEnum):
    standard = "standard"
    teams = "teams"
    slack = "slack"
    email = "email"


class MessageStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # given up: the endpoint said 410, or every retry was used


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    url: str = Field(max_length=500, description="https URL, or an email address for email")
    description: str = Field(default="", max_length=200)
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    format: EndpointFormat = Field(sa_type=enum_type(EndpointFormat))
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    is_active: bool = True
    disabled_reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """One event for one endpoint, written in the transaction that caused it."""

    __tablename__ = "outbox_message"
    __table_args__ = (sa.Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", index=True)
    webhook_id: str = Field(max_length=40, unique=True, description="Stable across retries")
    event_type: EventType = Field(sa_type=enum_type(EventType))
    payload: dict = Field(sa_type=sa.JSON)
    status: MessageStatus = Field(default=MessageStatus.pending, sa_type=enum_type(MessageStatus))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_message.id", index=True)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None
    error: str = Field(default="", max_length=300)
    duration_ms: int = 0


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.org/haven",
                    "description": "The DSL's case management system",
                    "events": ["incident.escalated", "incident.updated"],
                    "format": "standard",
                },
                {
                    "url": "dsl@school.example",
                    "description": "The DSL's inbox",
                    "events": ["incident.escalated"],
                    "format": "email",
                },
            ]
        },
    )

    url: str = PydanticField(
        min_length=1,
        max_length=500,
        description="An https URL on the internet; for the email format, an email address",
    )
    description: str = PydanticField(default="", max_length=200)
    events: list[EventType] = PydanticField(min_length=1)
    format: EndpointFormat = EndpointFormat.standard


class EndpointPublic(BaseModel):
    id: int
    url: str
    description: str
    events: list[EventType]
    format: EndpointFormat
    is_active: bool
    disabled_reason: str
    created_at: datetime


class EndpointCreated(EndpointPublic):
    secret: str = PydanticField(description="Shown once: keep it to verify signatures")


class WebhookTestQueued(BaseModel):
    webhook_id: str = PydanticField(description="The id of the test message, as delivered")
    status: Literal["queued"]


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: str
    event_type: EventType
    status: MessageStatus
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
