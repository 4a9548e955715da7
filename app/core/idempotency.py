"""`Idempotency-Key` on API POSTs: a repeat of the same request gets the first answer again."""

import hashlib
import json
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from app.core.errors import Conflict
from app.core.types import UTCDateTime, utcnow

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A key of your choosing, new for each request you make (a UUID is a good "
        "key). If the answer is lost and you send the same request again with the same key, "
        "Haven answers with the first result (marked `Idempotent-Replayed: true`) instead of "
        "doing the work twice. The same key with a different body is answered 409.",
    ),
]
"""The `Idempotency-Key` header of every API POST that supports it."""


class IdempotentRequest(SQLModel, table=True):
    __tablename__ = "idempotent_request"
    __table_args__ = (sa.UniqueConstraint("token_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="api_token.id")
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    status: int
    response: dict = Field(sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(*, session: Session, token_id: int, key: str | None, body: dict) -> JSONResponse | None:
    """The first answer to this key, or None when the key is new (or absent)."""
    if not key:
        return None
    earlier = session.exec(
        select(IdempotentRequest).where(
            IdempotentRequest.token_id == token_id, IdempotentRequest.key == key
        )
    ).first()
    if earlier is None:
        return None
    if earlier.fingerprint != _fingerprint(body):
        raise Conflict(
            "This Idempotency-Key was used with a different request body; use a new key.",
            errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
        )
    return JSONResponse(
        earlier.response, status_code=earlier.status, headers={"Idempotent-Replayed": "true"}
    )


def remember(
    *, session: Session, token_id: int, key: str | None, body: dict, status: int, response: dict
) -> None:
    """Store the answer in the same transaction as the work it reports."""
    if not key:
        return
    session.add(
        IdempotentRequest(
            token_id=token_id,
            key=key,
            fingerprint=_fingerprint(body),
            status=status,
            response=response,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        # The same key arrived twice at once: this request's work is rolled back with it.
        raise Conflict(
            "A request with this Idempotency-Key is already being handled; send it again to "
            "get its result.",
            errors=[{"field": "Idempotency-Key", "message": "in use by a concurrent request"}],
        ) from None
