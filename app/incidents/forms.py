"""Reading the incident forms of the pages: local times, checkboxes and choices."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.core.errors import InvalidInput


def local_time(value: str, zone: str, field: str) -> datetime | None:
    """A `datetime-local` field (the school's own clock) as an aware UTC time."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"The {field.replace('_', ' ')} must be a date and time like 2026-11-24 18:30.",
            errors=[{"field": field, "message": "not a date and time"}],
        ) from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def choice(enum_class, value: str, field: str, label: str):
    try:
        return enum_class(value)
    except ValueError:
        raise InvalidInput(
            f"Choose {label} from the list.",
            errors=[{"field": field, "message": f"unknown value {value[:40]!r}"}],
        ) from None
