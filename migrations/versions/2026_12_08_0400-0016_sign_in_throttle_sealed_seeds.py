"""sign-in throttle and sealed TOTP seeds: failed sign-ins are counted per email typed, per
client address and per known browser (no account is locked for its owner), and TOTP seeds are
encrypted with a key derived from HAVEN_SECRET_KEY

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 04:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The purpose app.core.keys.TOTP_SEEDS had when this was written.
TOTP_SEEDS = "haven totp seeds v1"
FERNET_PREFIX = "gAAAAA"  # every Fernet token begins so: a seed already sealed
user = sa.table("user", sa.column("id"), sa.column("totp_secret"))


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "account", "address", "device", name="throttlekind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_throttle")),
        sa.UniqueConstraint("key", name=op.f("uq_sign_in_throttle_key")),
    )
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_throttle_last_failure_at"), ["last_failure_at"], unique=False
        )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_sign_ins_before", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=True,
        )
        batch_op.drop_column("locked_until")
    _seal_seeds(seal=True)


def downgrade() -> None:
    _seal_seeds(seal=False)
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked_until", app.core.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "totp_secret",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
            type_=sqlmodel.sql.sqltypes.AutoString(length=64),
            existing_nullable=True,
        )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_column("failed_sign_ins_before")
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_throttle_last_failure_at"))
    op.drop_table("sign_in_throttle")


def _seal_seeds(*, seal: bool) -> None:
    """Seal every seed kept in clear (or, going down, open every sealed one)."""
    from app.core import keys
    from app.core.migrations import migration_secret_key

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(user.c.id, user.c.totp_secret).where(user.c.totp_secret.is_not(None))
    ).all()
    todo = [(id_, secret) for id_, secret in rows if secret.startswith(FERNET_PREFIX) != seal]
    if not todo:
        return
    secret_key = migration_secret_key()
    change = keys.seal if seal else keys.unseal
    for id_, secret in todo:
        connection.execute(
            user.update()
            .where(user.c.id == id_)
            .values(totp_secret=change(secret_key, TOTP_SEEDS, secret))
        )
