"""Data-quality outcomes: rows/messages rejected by reason, gaps, staleness, breaches.

Revision ID: 0004_data_quality
Revises: 0003
Create Date: 2026-11-24 09:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import UTCDateTime

revision: str = "0004_data_quality"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_quality_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('rejected', 'dropped', 'repaired', 'gap', 'stale', 'breach')",
                           name=op.f("ck_data_quality_events_kind_allowed")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_data_quality_events_account_id_accounts")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"],
                                name=op.f("fk_data_quality_events_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_events")),
    )
    op.create_index("ix_data_quality_events_run_at", "data_quality_events", ["run_id", "at"])
    op.create_index("ix_data_quality_events_at", "data_quality_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_data_quality_events_at", table_name="data_quality_events")
    op.drop_index("ix_data_quality_events_run_at", table_name="data_quality_events")
    op.drop_table("data_quality_events")
