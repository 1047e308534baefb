"""Initial schema: accounts, runs, orders, order events, fills, positions, equity, risk, kill switch.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 07:03:24.765152
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import Amount, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=12), nullable=False),
        sa.Column("initial_cash", Amount(), nullable=False),
        sa.Column("cash", Amount(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "kill_switches",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_kill_switches_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_kill_switches")),
    )
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("quantity", Amount(), nullable=False),
        sa.Column("avg_price", Amount(), nullable=False),
        sa.Column("realized_pnl", Amount(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_positions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("account_id", "symbol", name=op.f("uq_positions_account_id_symbol")),
    )
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=True),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'error', 'critical')",
            name=op.f("ck_risk_events_severity_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_risk_events_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    op.create_index(op.f("ix_risk_events_account_at"), "risk_events", ["account_id", "at"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("last_bar_time", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.CheckConstraint("mode IN ('paper', 'live', 'replay')", name=op.f("ck_runs_mode_allowed")),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'stopped', 'failed', 'crashed')",
            name=op.f("ck_runs_status_allowed"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_runs_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_account_id"), "runs", ["account_id"])
    op.create_table(
        "equity_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("cash", Amount(), nullable=False),
        sa.Column("positions_value", Amount(), nullable=False),
        sa.Column("equity", Amount(), nullable=False),
        sa.Column("drawdown", Amount(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_equity_snapshots_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_equity_snapshots_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equity_snapshots")),
    )
    op.create_index(op.f("ix_equity_snapshots_account_at"), "equity_snapshots", ["account_id", "at"])
    op.create_index(op.f("ix_equity_snapshots_run_id"), "equity_snapshots", ["run_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("broker_order_id", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("quantity", Amount(), nullable=False),
        sa.Column("limit_price", Amount(), nullable=True),
        sa.Column("stop_price", Amount(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled_quantity", Amount(), nullable=False),
        sa.Column("avg_fill_price", Amount(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("time_in_force", sa.String(length=8), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side_allowed")),
        sa.CheckConstraint(
            "status IN ('new', 'submitted', 'partially_filled', 'filled', 'cancelled', "
            "'rejected', 'expired')",
            name=op.f("ck_orders_status_allowed"),
        ),
        sa.CheckConstraint(
            "time_in_force IN ('gtc', 'day', 'ioc', 'fok', 'gtd')",
            name=op.f("ck_orders_time_in_force_allowed"),
        ),
        sa.CheckConstraint("type IN ('market', 'limit', 'stop')", name=op.f("ck_orders_type_allowed")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_orders_account_id_accounts")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_orders_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index(op.f("ix_orders_account_status"), "orders", ["account_id", "status"])
    op.create_index(op.f("ix_orders_broker_order_id"), "orders", ["broker_order_id"])
    op.create_index(op.f("ix_orders_run_id"), "orders", ["run_id"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fill_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", Amount(), nullable=False),
        sa.Column("price", Amount(), nullable=False),
        sa.Column("fees", Amount(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_fills_side_allowed")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("fill_id", name=op.f("uq_fills_fill_id")),
    )
    op.create_index(op.f("ix_fills_order_id"), "fills", ["order_id"])
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_index(op.f("ix_fills_order_id"), table_name="fills")
    op.drop_table("fills")
    op.drop_index(op.f("ix_orders_run_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_broker_order_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_status"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_equity_snapshots_run_id"), table_name="equity_snapshots")
    op.drop_index(op.f("ix_equity_snapshots_account_at"), table_name="equity_snapshots")
    op.drop_table("equity_snapshots")
    op.drop_index(op.f("ix_runs_account_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_risk_events_account_at"), table_name="risk_events")
    op.drop_table("risk_events")
    op.drop_table("positions")
    op.drop_table("kill_switches")
    op.drop_table("accounts")
