"""Column types and constraint names shared by every domain's tables, and the value types API
requests are read with."""

import re
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated

import sqlalchemy as sa
from annotated_types import Ge, Le
from pydantic import BeforeValidator, StrictInt
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

# Stable constraint names so Alembic can alter them on both databases. Set here because every
# models module imports this one before it declares a table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_type(enum_class: type[Enum]) -> sa.Enum:
    """Store an enumeration as its plain string values (no native PostgreSQL type)."""
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


# API input ---------------------------------------------------------------------------------
# Pydantic is lenient by default: it reads 0 as false, "12" as 12 and "0" as a time in 1970. API
# request models use the types below (and `pydantic.StrictBool`) instead, so that a request is
# accepted exactly when it matches the schema Haven publishes. Python callers may still pass
# `datetime` and `date` objects.

MAX_ROW_ID = 2**31 - 1  # ids are 32-bit integer columns on PostgreSQL

RowId = Annotated[int, Ge(1), Le(MAX_ROW_ID)]
"""An id in a path or a query string (text there, read as a number)."""

JsonRowId = Annotated[StrictInt, Ge(1), Le(MAX_ROW_ID)]
"""An id in a JSON body: a number, never a string of digits or a boolean."""

_RFC3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_time_text(value):
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339_DATE_TIME.fullmatch(value):
        return value
    raise ValueError("needs a date and time with a time zone, e.g. 2026-11-24T18:30:00Z")


def _date_text(value):
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("needs a date written like 2026-09-01")


Timestamp = Annotated[datetime, BeforeValidator(_date_time_text)]
"""A date and time with its offset from UTC, as RFC 3339 (OpenAPI's `date-time`) writes it."""

Day = Annotated[date, BeforeValidator(_date_text)]
"""A calendar date, as ISO 8601 (OpenAPI's `date`) writes it."""
