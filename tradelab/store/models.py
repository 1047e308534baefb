"""SQLAlchemy 2 typed ORM models: the schema of the paper/live store.

The models are the single source of truth for the schema: the Alembic
migrations must match them exactly (a test runs autogenerate and expects no
difference). Money and quantities are :class:`~tradelab.store.types.Amount`
(exact ``NUMERIC(28, 10)``); times are :class:`~tradelab.store.types.UTCDateTime`.

Allowed values of the string "enum" columns are listed here once and enforced
twice: by ``CHECK`` constraints in the database and by the store before it
writes, so a typo fails with a readable message instead of an IntegrityError.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tradelab.store.types import Amount, UTCDateTime

RUN_MODES = ("paper", "live", "replay")
#: The sides a run's strategy trades (``--direction``; see tradelab.strategy.exits).
RUN_DIRECTIONS = ("long", "short", "both")
RUN_STATUSES = ("running", "finished", "stopped", "failed", "crashed")
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop")
# "pending": sent to a venue whose answer was lost; resolved by query, stream or reconciliation.
ORDER_STATUSES = ("new", "pending", "submitted", "partially_filled", "filled", "cancelled", "rejected",
                  "expired")
OPEN_ORDER_STATUSES = ("new", "pending", "submitted", "partially_filled")
RECONCILE_TRIGGERS = ("start", "periodic", "manual")
TIME_IN_FORCE = ("gtc", "day", "ioc", "fok", "gtd")
SEVERITIES = ("info", "warning", "error", "critical")

# Deterministic constraint names, so migrations can later drop/alter them by
# name on both backends (SQLite batch mode needs names too).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_allowed")


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads it as a class attribute)
        Decimal: Amount(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Account(Base):
    """A trading account: cash and base currency; everything else hangs off it."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    currency: Mapped[str] = mapped_column(String(12))
    initial_cash: Mapped[Decimal]
    cash: Mapped[Decimal]


class Run(Base):
    """One paper/live/replay run of a strategy on an account."""

    __tablename__ = "runs"
    __table_args__ = (_one_of("mode", RUN_MODES), _one_of("status", RUN_STATUSES),
                      _one_of("direction", RUN_DIRECTIONS))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    strategy: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    last_bar_time: Mapped[datetime | None]
    summary: Mapped[dict[str, Any] | None]
    # Who runs it now and until when: renewed with every commit, cleared when it ends.
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    # The trade options it runs with (--direction, --sl, --tp, --trail, --time-stop, as
    # resolved against the strategy's own), so that --resume and parity --run use them
    # without being told again. NULL: a run started before migration 0009, or no such exit.
    direction: Mapped[str | None] = mapped_column(String(8))
    sl: Mapped[float | None] = mapped_column(Float(53))
    tp: Mapped[float | None] = mapped_column(Float(53))
    trail: Mapped[float | None] = mapped_column(Float(53))
    time_stop: Mapped[int | None] = mapped_column(Integer)
    # Its execution options (tradelab.execution.Execution's fields: cash, fees, ... as a JSON
    # object), for the same reason. NULL: a run started before migration 0010.
    execution: Mapped[dict[str, Any] | None]


class Order(Base):
    """An order, keyed for idempotency by its client order id."""

    __tablename__ = "orders"
    __table_args__ = (
        _one_of("side", SIDES),
        _one_of("type", ORDER_TYPES),
        _one_of("status", ORDER_STATUSES),
        _one_of("time_in_force", TIME_IN_FORCE),
        # open_orders(account) is on the recovery path: make it an index scan.
        Index("ix_orders_account_status", "account_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    broker_order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16))
    filled_quantity: Mapped[Decimal]
    avg_fill_price: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    time_in_force: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderEvent(Base):
    """One state transition of an order (the audit trail of the state machine)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(500))


class Fill(Base):
    """An execution; ``fill_id`` is unique so a replayed fill is never applied twice."""

    __tablename__ = "fills"
    __table_args__ = (_one_of("side", SIDES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fill_id: Mapped[str] = mapped_column(String(128), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fees: Mapped[Decimal]
    at: Mapped[datetime]


class Position(Base):
    """Net position per account and symbol (flat positions keep their realized P&L)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("account_id", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal]
    avg_price: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]


class EquitySnapshot(Base):
    """Mark-to-market equity of an account at a point in time."""

    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_snapshots_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    at: Mapped[datetime]
    cash: Mapped[Decimal]
    positions_value: Mapped[Decimal]
    equity: Mapped[Decimal]
    drawdown: Mapped[Decimal]


class RiskEvent(Base):
    """A risk rule breach or alert."""

    __tablename__ = "risk_events"
    __table_args__ = (
        _one_of("severity", SEVERITIES),
        Index("ix_risk_events_account_at", "account_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    strategy: Mapped[str | None] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(2000))
    at: Mapped[datetime]


class KillSwitch(Base):
    """Kill-switch state, one row per account (absent row = never engaged)."""

    __tablename__ = "kill_switches"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    engaged: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(500))
    # "by" is an SQL keyword; keep the column name plain so hand-written SQL works.
    changed_by: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime]


class Reconciliation(Base):
    """One comparison of the store with a venue (the venue is the truth).

    ``findings`` is a list of ``{kind, symbol, client_order_id, store, venue, detail}``;
    ``ok`` is False when something needs an operator (a position mismatch).
    """

    __tablename__ = "reconciliations"
    __table_args__ = (
        _one_of("trigger", RECONCILE_TRIGGERS),
        Index("ix_reconciliations_account_at", "account_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    venue: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    ok: Mapped[bool]
    adopted: Mapped[bool]
    booked_fills: Mapped[int]
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON())


class RunBar(Base):
    """A bar as a run received it (what the drift report replays research over)."""

    __tablename__ = "run_bars"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float(53))
    high: Mapped[float] = mapped_column(Float(53))
    low: Mapped[float] = mapped_column(Float(53))
    close: Mapped[float] = mapped_column(Float(53))
    volume: Mapped[float] = mapped_column(Float(53))


# Job runs, notification deliveries and the scheduler table share this metadata.
# Users, sessions, API keys, the audit log and strategy flags too (tradelab.store.auth_models),
# and the account-wide risk view shared by engine processes (tradelab.store.shared_models).
# Data-quality outcomes of feeds and loads (tradelab.store.quality_models, data_quality_events).
from tradelab.store import auth_models, jobs_models, quality_models, shared_models  # noqa: E402, F401
