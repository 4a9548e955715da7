"""Keyset (cursor) pagination: `?limit=&cursor=` → `{"data", "next_cursor"}` for API lists, and
`?after=` for pages."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.core.errors import InvalidInput
from app.core.types import MAX_ROW_ID, Timestamp

T = TypeVar("T")

Limit = Annotated[
    int,
    Query(
        ge=1,
        le=500,
        description="The most items to return on this page (1-500). A page may hold fewer; "
        "only a `next_cursor` of null means there are no more.",
    ),
]
# A list by last change goes on from a position: the time of the last change (microseconds
# since 1970, UTC) and the id of the last item of the page before. Any value of this form is a
# position, so the schema's pattern says exactly which cursors are accepted.
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9]{1,10}$"
Cursor = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        description="Where to go on from: the `next_cursor` of the previous page, sent as it "
        "came with the same filters. Leave it out for the first page.",
    ),
]
UpdatedSince = Annotated[
    Timestamp | None,
    Query(
        description="Only items changed at or after this time: an RFC 3339 date and time with "
        "its offset, e.g. `2026-09-01T00:00:00Z`. For incremental sync, send the time your "
        "previous sync started.",
    ),
]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def changed_after(cursor: str | None) -> tuple[datetime, int] | None:
    """The (updated_at, id) position a `next_cursor` of a list by last change stands for."""
    if not cursor:
        return None
    at, last_id = cursor.split(".")
    # No id is larger than MAX_ROW_ID: a position past it is the same position, and a 32-bit
    # column on PostgreSQL cannot be compared with a larger number.
    return _EPOCH + int(at) * _MICROSECOND, min(int(last_id), MAX_ROW_ID)


def next_change_cursor(rows: list, limit: int) -> str | None:
    """The cursor after the last row of a page fetched with `limit + 1` rows."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return f"{(last.updated_at - _EPOCH) // _MICROSECOND}.{last.id}"


def encode_cursor(*values) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise InvalidInput("The cursor is not one Haven gave out.") from None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("The cursor is not one Haven gave out.")
    return values


def require_timezone(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            "updated_since needs a time zone, e.g. 2026-09-01T00:00:00Z.",
            errors=[{"field": "updated_since", "message": "time zone required"}],
        )
    return value
