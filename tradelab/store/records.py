"""Plain frozen records returned by the store.

The store hands out these immutable dataclasses, never ORM objects: they are
safe to keep after the transaction ends, to pass between threads, and they tie
the engine to nothing but primitives. Money and quantities are
:class:`~decimal.Decimal`, times are aware UTC :class:`~datetime.datetime`,
JSON columns are ``dict``. Accounts are named by ``account`` (their name),
orders by ``client_order_id``, runs by their integer ``run_id``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account and its cash balance."""

    id: int
    name: str
    currency: str
    initial_cash: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One engine run; ``last_bar_time`` is where a restart resumes."""

    id: int
    account: str
    strategy: str
    params: dict[str, Any]
    source: str
    symbol: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    last_bar_time: datetime | None
    summary: dict[str, Any] | None
    owner: str | None = None
    lease_expires_at: datetime | None = None
    #: The trade options it runs with (``None``: not stored, or no such exit);
    #: see :meth:`trade`.
    direction: str | None = None
    sl: float | None = None
    tp: float | None = None
    trail: float | None = None
    time_stop: int | None = None
    #: The execution options it runs with (the fields of
    #: :class:`tradelab.execution.Execution`, ``Execution(**run.execution)`` rebuilds it);
    #: ``None`` for a run started before they were stored (migration 0010).
    execution: dict[str, Any] | None = None

    def trade(self) -> dict[str, Any] | None:
        """``direction, sl, tp, trail, time_stop`` as stored, or ``None`` for a run
        started before they were (migration 0009), whose options are unknown."""
        if self.direction is None:
            return None
        return {"direction": self.direction, "sl": self.sl, "tp": self.tp, "trail": self.trail,
                "time_stop": self.time_stop}


#: The trade options a run row keeps (its columns of the same names).
TRADE_OPTIONS = ("direction", "sl", "tp", "trail", "time_stop")


def trade_columns(trade: Any) -> dict[str, Any]:
    """``trade`` (a mapping of :data:`TRADE_OPTIONS`) checked for the run row's columns;
    ValueError names an unknown option or a bad direction."""
    options = dict(trade or {})
    unknown = sorted(set(options) - set(TRADE_OPTIONS))
    if unknown:
        raise ValueError(f"trade = {unknown}: unknown trade options (expected "
                         f"{', '.join(TRADE_OPTIONS)})")
    direction = options.get("direction")
    if direction is not None and direction not in ("long", "short", "both"):
        raise ValueError(f"direction = {direction!r}: expected long, short or both")
    return options


#: The execution options a run row keeps: :class:`tradelab.execution.Execution`'s fields
#: (the store does not import the engine's modules; a test holds the two lists equal).
EXECUTION_OPTIONS = ("cash", "fees", "fixed_fees", "slippage", "size", "size_type", "fill",
                     "fractional", "borrow_fee")


def execution_column(execution: Any) -> dict[str, Any] | None:
    """``execution`` (a mapping of :data:`EXECUTION_OPTIONS`, e.g. ``asdict(Execution(...))``)
    checked for the run row's JSON column; ``None`` stays ``None`` (not stored).

    ValueError names an unknown option or a number JSON cannot hold exactly (NaN, ±inf).
    """
    if execution is None:
        return None
    options = dict(execution)
    unknown = sorted(set(options) - set(EXECUTION_OPTIONS))
    if unknown:
        raise ValueError(f"execution = {unknown}: unknown execution options (expected "
                         f"{', '.join(EXECUTION_OPTIONS)})")
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"execution {name} = {value!r}: a stored run needs a finite number")
    return options


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as last persisted."""

    client_order_id: str
    broker_order_id: str | None
    account: str
    run_id: int | None
    symbol: str
    side: str
    type: str
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    reason: str | None
    time_in_force: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderEventRecord:
    """One transition of an order's state machine."""

    client_order_id: str
    from_state: str | None
    to_state: str
    at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution of an order."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fees: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """Net position in one symbol (``quantity`` is negative when short, 0 when flat)."""

    symbol: str
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """One equity snapshot."""

    at: datetime
    run_id: int | None
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    drawdown: Decimal


@dataclass(frozen=True, slots=True)
class RiskEventRecord:
    """One risk alert or breach."""

    strategy: str | None
    rule: str
    severity: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """Kill-switch state of an account; ``at is None`` means it was never set."""

    engaged: bool = False
    reason: str | None = None
    by: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountState:
    """Everything the engine needs to resume after a crash.

    ``last_run`` is the most recently started run on the account (its
    ``status`` is still ``"running"`` if the process died); resume after its
    ``last_bar_time``, then reconcile ``open_orders`` with the broker.
    """

    account: AccountRecord
    positions: tuple[PositionRecord, ...]
    open_orders: tuple[OrderRecord, ...]
    kill_switch: KillSwitchState
    last_run: RunRecord | None
    last_equity: EquityPoint | None = field(default=None)
