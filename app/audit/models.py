"""The append-only, hash-chained audit trail. It records who did what, never the content."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_type=sa.BigInteger, unique=True, description="Position in the chain")
    school_id: int | None = Field(default=None, foreign_key="school.id", index=True)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    actor_token_id: int | None = Field(default=None, foreign_key="api_token.id")
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(default="", max_length=64)
    entity_id: str = Field(default="", max_length=64)
    request_id: str = Field(default="", max_length=64)
    ip_address: str = Field(default="", max_length=45)
    detail: dict = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
