"""Shared account risk: last price per account and symbol; account-wide peak, day-start, last equity.

Revision ID: 0005_shared_risk
Revises: 0004_data_quality
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import Amount, UTCDateTime

revision: str = "0005_shared_risk"
down_revision: str | None = "0004_data_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marks",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("price", Amount(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_marks_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "symbol", name=op.f("pk_marks")),
    )
    op.create_table(
        "account_risk",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("day_start_equity", Amount(), nullable=False),
        sa.Column("peak_equity", Amount(), nullable=False),
        sa.Column("last_equity", Amount(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_account_risk_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_risk")),
    )


def downgrade() -> None:
    op.drop_table("account_risk")
    op.drop_table("marks")
