"""Close requests: an operator asks one run to close one position (the dashboard's "Close").

Revision ID: 0008_close_requests
Revises: 0007_live_trading
Create Date: 2026-12-03 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import UTCDateTime

revision: str = "0008_close_requests"
down_revision: str | None = "0007_live_trading"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "close_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'nothing')",
                           name=op.f("ck_close_requests_status_allowed")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_close_requests_account_id_accounts")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_close_requests_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_close_requests")),
    )
    op.create_index("ix_close_requests_run_id_status", "close_requests", ["run_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_close_requests_run_id_status", table_name="close_requests")
    op.drop_table("close_requests")
