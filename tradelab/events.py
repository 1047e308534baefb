"""Engine events: frozen dataclasses named in the past tense.

Every event carries ``at``, the (simulated or live) clock time it happened.
Order events carry the transition they record (``from_state`` → ``to_state``)
so that a single subscriber can persist every transition as a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "BarReceived", "EngineStarted", "EngineStopped", "EquitySnapshotted", "Event",
    "KillSwitchEngaged", "KillSwitchReleased", "OrderApproved", "OrderCancelled", "OrderEvent",
    "OrderExpired", "OrderFilled", "OrderPartiallyFilled", "OrderRejected", "OrderRequested",
    "OrderSubmitted", "PositionChanged", "RiskAlert", "SignalEmitted",
]


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime


@dataclass(frozen=True, slots=True)
class BarReceived(Event):
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class SignalEmitted(Event):
    strategy: str
    symbol: str
    entry: bool
    exit: bool
    action: str  # "buy", "sell" or "none" (what the flags mean given the position)


@dataclass(frozen=True, slots=True)
class OrderEvent(Event):
    """Base of the order lifecycle events; ``order`` is an immutable snapshot."""

    client_order_id: str
    from_state: str | None
    to_state: str
    reason: str
    order: Any  # tradelab.orders.model.OrderSnapshot


@dataclass(frozen=True, slots=True)
class OrderRequested(OrderEvent):
    """A new order exists (state ``new``); risk decides next."""


@dataclass(frozen=True, slots=True)
class OrderApproved(Event):
    client_order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    by: str = "broker"  # "risk" or "broker"


@dataclass(frozen=True, slots=True)
class OrderPending(OrderEvent):
    """Sent, but the venue's answer was lost: it may or may not hold the order (resolved later)."""


@dataclass(frozen=True, slots=True)
class OrderSubmitted(OrderEvent):
    latency_s: float = 0.0  # bar arrival to broker acknowledgement (wall clock)


@dataclass(frozen=True, slots=True)
class OrderPartiallyFilled(OrderEvent):
    fill: Any = None  # tradelab.orders.model.Fill


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    fill: Any = None


@dataclass(frozen=True, slots=True)
class OrderCancelled(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class PositionChanged(Event):
    account: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True)
class EquitySnapshotted(Event):
    account: str
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class RiskAlert(Event):
    account: str
    rule: str
    message: str
    severity: str = "warning"  # "warning" (order denied) or "critical" (halts trading)
    strategy: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class KillSwitchEngaged(Event):
    account: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class KillSwitchReleased(Event):
    account: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class EngineStarted(Event):
    run_id: str
    account: str
    resumed_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class EngineStopped(Event):
    run_id: str
    account: str
    reason: str
    bars: int = 0
