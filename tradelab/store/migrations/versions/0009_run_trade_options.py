"""Runs remember their trade options: direction, sl, tp, trail, time_stop.

``--resume`` and ``parity --run`` take them from the run instead of the command
line (a conflicting flag is refused). Runs started before this revision keep
NULL: their options are unknown, and the command line's apply as before.

Revision ID: 0009_run_trade_options
Revises: 0008_close_requests
Create Date: 2026-12-03 21:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_run_trade_options"
down_revision: str | None = "0008_close_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("direction", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("sl", sa.Float(precision=53), nullable=True))
        batch.add_column(sa.Column("tp", sa.Float(precision=53), nullable=True))
        batch.add_column(sa.Column("trail", sa.Float(precision=53), nullable=True))
        batch.add_column(sa.Column("time_stop", sa.Integer(), nullable=True))
        batch.create_check_constraint(op.f("ck_runs_direction_allowed"),
                                      "direction IN ('long', 'short', 'both')")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_direction_allowed"), type_="check")
        batch.drop_column("time_stop")
        batch.drop_column("trail")
        batch.drop_column("tp")
        batch.drop_column("sl")
        batch.drop_column("direction")
