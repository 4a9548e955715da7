"""The period a dashboard covers: dates in the school's time zone, presets by school term, and
the weeks it is counted in.

School terms are approximated as autumn (September to December), spring (January to March,
standing in for the Easter holiday) and summer (April to July). August belongs to no term: in
August, "this term" is the summer term just ended."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.core.errors import InvalidInput

MAX_DAYS = 3 * 366
TERM_NOTE = (
    "Terms are approximated as autumn (September to December), spring (January to March) and "
    "summer (April to July)."
)


@dataclass(frozen=True)
class Period:
    """From `start` to `end`, both days included, in the school's time zone."""

    start: date
    end: date
    zone: ZoneInfo

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def _instant(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def starts_at(self) -> datetime:
        """The first instant of the period, in UTC."""
        return self._instant(self.start)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the period, in UTC."""
        return self._instant(self.end + timedelta(days=1))

    def previous(self) -> "Period":
        """The period of the same length just before this one."""
        return Period(
            self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.zone
        )

    def weeks(self) -> list["Week"]:
        """Monday-to-Sunday weeks, the first and last cut to the period."""
        found = []
        monday = self.start - timedelta(days=self.start.weekday())
        while monday <= self.end:
            first = max(monday, self.start)
            last = min(monday + timedelta(days=6), self.end)
            found.append(
                Week(
                    len(found),
                    monday,
                    first,
                    last,
                    self._instant(first),
                    self._instant(last + timedelta(days=1)),
                )
            )
            monday += timedelta(days=7)
        return found


@dataclass(frozen=True)
class Week:
    number: int
    monday: date  # the week it belongs to ("week beginning")
    first: date  # the days counted, within the period
    last: date
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC, exclusive


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    start: date
    end: date


def _term(day: date) -> tuple[date, date]:
    """The term a day falls in (August: the summer term before it)."""
    if day.month >= 9:
        return date(day.year, 9, 1), date(day.year, 12, 31)
    if day.month <= 3:
        return date(day.year, 1, 1), date(day.year, 3, 31)
    return date(day.year, 4, 1), date(day.year, 7, 31)


def presets(today: date) -> list[Preset]:
    this_start, this_end = _term(today)
    last_start, last_end = _term(this_start - timedelta(days=1))
    year_start = date(today.year if today.month >= 9 else today.year - 1, 9, 1)
    return [
        Preset("this-term", "This term", this_start, this_end),
        Preset("last-term", "Last term", last_start, last_end),
        Preset("school-year", "This school year", year_start, date(year_start.year + 1, 8, 31)),
        Preset("12-weeks", "Last 12 weeks", today - timedelta(weeks=12) + timedelta(days=1), today),
    ]


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"The {name} date must be a date like 2026-09-01.",
            errors=[{"field": name, "message": "not a date"}],
        ) from None


def choose(*, start: str, end: str, today: date, zone: ZoneInfo) -> Period:
    """The period asked for; this term when no dates are given. A period running past today is
    cut at today, since nothing can have happened after it yet."""
    if not start.strip() and not end.strip():
        preset = presets(today)[0]
        return Period(preset.start, min(preset.end, today), zone)
    if not start.strip() or not end.strip():
        missing = "from" if not start.strip() else "to"
        raise InvalidInput(
            "Give both dates of the period, or choose one of the periods above.",
            errors=[{"field": missing, "message": "required"}],
        )
    first, last = _day(start, "from"), _day(end, "to")
    if last < first:
        raise InvalidInput(
            "The period ends before it starts: the 'to' date must be on or after the 'from' date.",
            errors=[{"field": "to", "message": "before the from date"}],
        )
    if first > today:
        raise InvalidInput(
            "The period has not started yet: choose one that starts today or earlier.",
            errors=[{"field": "from", "message": "in the future"}],
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(
            "The period is longer than three years: choose a shorter one.",
            errors=[{"field": "to", "message": "more than three years after the from date"}],
        )
    return Period(first, min(last, today), zone)
