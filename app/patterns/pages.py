"""The patterns page: for the DSL and deputies only, and every look at it is audited."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query, Request

from app.auth.dependencies import PageActor
from app.core.db import DbSession
from app.core.errors import InvalidInput
from app.core.routing import page_router
from app.core.templating import render
from app.core.types import utcnow
from app.incidents.dependencies import SafeguardingLead
from app.patterns import service

router = page_router()


@dataclass(frozen=True)
class Period:
    label: str
    days: int | None

    def since(self, now: datetime) -> datetime | None:
        return None if self.days is None else now - timedelta(days=self.days)


PERIODS = {
    "all": Period("Since records began", None),
    "24m": Period("The last two years", 731),
    "12m": Period("The last 12 months", 366),
    "6m": Period("The last 6 months", 183),
    "3m": Period("The last 3 months", 92),
}
MIN_COUNTS = (2, 3, 4, 5, 10)
Choice = Annotated[str, Query(max_length=10)]


def _min_count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 2 <= number <= 100:
        raise InvalidInput(
            "The minimum number of incidents is a whole number from 2 to 100 (a pattern needs "
            "at least two)."
        )
    return number


@router.get("/patterns")
def patterns_page(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    period: Choice = "all",
    min_count: Choice = "2",
):
    if period not in PERIODS:
        raise InvalidInput("Choose a period from the list.")
    least = _min_count(min_count)
    found = service.find_patterns(
        session=session,
        school_id=user.school_id,
        since=PERIODS[period].since(utcnow()),
        min_count=least,
    )
    service.record_view(
        session=session,
        school_id=user.school_id,
        actor=actor,
        filters={"period": period, "min_count": least},
        patterns=found,
    )
    session.commit()
    context = {
        "patterns": found,
        "periods": PERIODS,
        "period": period,
        "min_counts": MIN_COUNTS,
        "min_count": least,
        "limit": service.LIMIT,
    }
    return render(request, "patterns/patterns.html", context, block="results")
