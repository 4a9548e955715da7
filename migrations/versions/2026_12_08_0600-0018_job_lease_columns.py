"""job lease columns: a lease's holder and expiry get columns of their own

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 06:00:00.000000+00:00

A lease row (named "lease:...") kept its holder in `last_error` and its expiry in
`last_finished_at`; they move to `lease_holder` and `lease_until`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

job_run = sa.table(
    "job_run",
    sa.column("name", sa.String),
    sa.column("last_error", sa.String),
    sa.column("last_finished_at", app.core.types.UTCDateTime(timezone=True)),
    sa.column("lease_holder", sa.String),
    sa.column("lease_until", app.core.types.UTCDateTime(timezone=True)),
)
LEASES = job_run.c.name.like("lease:%")


def upgrade() -> None:
    op.add_column(
        "job_run",
        sa.Column("lease_holder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )
    op.add_column(
        "job_run",
        sa.Column("lease_until", app.core.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        job_run.update()
        .where(LEASES)
        .values(
            lease_holder=job_run.c.last_error,
            lease_until=job_run.c.last_finished_at,
            last_error="",
            last_finished_at=None,
        )
    )


def downgrade() -> None:
    op.execute(
        job_run.update()
        .where(LEASES)
        .values(
            last_error=sa.func.coalesce(job_run.c.lease_holder, ""),
            last_finished_at=job_run.c.lease_until,
        )
    )
    with op.batch_alter_table("job_run") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_holder")
