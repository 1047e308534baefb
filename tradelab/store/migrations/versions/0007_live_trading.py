"""Live trading: the ``pending`` order state, reconciliations, and the bars a run received.

Revision ID: 0007_live_trading
Revises: 0006_run_lease
Create Date: 2026-12-03 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import UTCDateTime

revision: str = "0007_live_trading"
down_revision: str | None = "0006_run_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("status IN ('new', 'submitted', 'partially_filled', 'filled', 'cancelled', "
        "'rejected', 'expired')")
_NEW = ("status IN ('new', 'pending', 'submitted', 'partially_filled', 'filled', 'cancelled', "
        "'rejected', 'expired')")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_status_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_status_allowed"), _NEW)
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("adopted", sa.Boolean(), nullable=False),
        sa.Column("booked_fills", sa.Integer(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.CheckConstraint("trigger IN ('start', 'periodic', 'manual')",
                           name=op.f("ck_reconciliations_trigger_allowed")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_reconciliations_account_id_accounts")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_reconciliations_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliations")),
    )
    op.create_index("ix_reconciliations_account_at", "reconciliations", ["account_id", "at"])
    op.create_index(op.f("ix_reconciliations_run_id"), "reconciliations", ["run_id"])
    op.create_table(
        "run_bars",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("open", sa.Float(precision=53), nullable=False),
        sa.Column("high", sa.Float(precision=53), nullable=False),
        sa.Column("low", sa.Float(precision=53), nullable=False),
        sa.Column("close", sa.Float(precision=53), nullable=False),
        sa.Column("volume", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_bars_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "symbol", "at", name=op.f("pk_run_bars")),
    )


def downgrade() -> None:
    op.drop_table("run_bars")
    op.drop_index(op.f("ix_reconciliations_run_id"), table_name="reconciliations")
    op.drop_index("ix_reconciliations_account_at", table_name="reconciliations")
    op.drop_table("reconciliations")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_status_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_status_allowed"), _OLD)
