"""SQL that the two databases write differently, as SQLAlchemy constructs, so that queries using
it stay one query on both."""

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class seconds_between(FunctionElement):
    """`later - earlier` in seconds, as a float: `EXTRACT(EPOCH FROM ...)` on PostgreSQL,
    `julianday()` arithmetic on SQLite (which stores times as ISO text)."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return (
        f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"
    )


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return (
        f"((julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)})) * 86400.0)"
    )


def median_of(values: sa.Select, *, name: str, dialect: str) -> sa.Select:
    """The median of a one-column query and how many values it had (NULLs left out), as columns
    `median` and `count`, in SQL on both databases.

    PostgreSQL has `percentile_cont`: one sort, a third of the time of numbering the values over
    100,000 incidents. SQLite numbers the sorted values and averages the middle one or two; the
    values are a materialized CTE named `name`, so that a value computed by a subquery is
    computed once a row however often it is named; NULLs sort last and are not counted."""
    if dialect == "postgresql":
        (value,) = values.subquery(name).c
        return sa.select(
            sa.func.percentile_cont(0.5).within_group(value).label("median"),
            sa.func.count(value).label("count"),
        )
    inner = values.cte(name).prefix_with("MATERIALIZED")
    (value,) = inner.c
    ranked = sa.select(
        value.label("value"),
        sa.func.row_number().over(order_by=value.asc().nulls_last()).label("position"),
        sa.func.count(value).over().label("total"),
    ).subquery()
    middle = sa.or_(
        ranked.c.position == (ranked.c.total + 1) // 2,
        ranked.c.position == (ranked.c.total + 2) // 2,
    )
    return sa.select(
        sa.func.avg(ranked.c.value).label("median"), sa.func.max(ranked.c.total).label("count")
    ).where(middle)
