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

_KW = {"frozen": True, "slots": True}


@dataclass(**_KW)
class Event:
    at: datetime


@dataclass(**_KW)
class BarReceived(Event):
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(**_KW)
class SignalEmitted(Event):
    strategy: str
    symbol: str
    entry: bool
    exit: bool
    action: str  # "buy", "sell" or "none" (what the flags mean given the position)


@dataclass(**_KW)
class OrderEvent(Event):
    """Base of the order lifecycle events; ``order`` is an immutable snapshot."""

    client_order_id: str
    from_state: str | None
    to_state: str
    reason: str
    order: Any  # tradelab.orders.model.OrderSnapshot


@dataclass(**_KW)
class OrderRequested(OrderEvent):
    """A new order exists (state ``new``); risk decides next."""


@dataclass(**_KW)
class OrderApproved(Event):
    client_order_id: str


@dataclass(**_KW)
class OrderRejected(OrderEvent):
    by: str = "broker"  # "risk" or "broker"


@dataclass(**_KW)
class OrderSubmitted(OrderEvent):
    latency_s: float = 0.0  # bar arrival to broker acknowledgement (wall clock)


@dataclass(**_KW)
class OrderPartiallyFilled(OrderEvent):
    fill: Any = None  # tradelab.orders.model.Fill


@dataclass(**_KW)
class OrderFilled(OrderEvent):
    fill: Any = None


@dataclass(**_KW)
class OrderCancelled(OrderEvent):
    pass


@dataclass(**_KW)
class OrderExpired(OrderEvent):
    pass


@dataclass(**_KW)
class PositionChanged(Event):
    account: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    cash: Decimal


@dataclass(**_KW)
class EquitySnapshotted(Event):
    account: str
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


@dataclass(**_KW)
class RiskAlert(Event):
    account: str
    rule: str
    message: str
    severity: str = "warning"  # "warning" (order denied) or "critical" (halts trading)
    strategy: str | None = None
    client_order_id: str | None = None


@dataclass(**_KW)
class KillSwitchEngaged(Event):
    account: str
    reason: str
    by: str


@dataclass(**_KW)
class KillSwitchReleased(Event):
    account: str
    reason: str
    by: str


@dataclass(**_KW)
class EngineStarted(Event):
    run_id: str
    account: str
    resumed_from: datetime | None = None


@dataclass(**_KW)
class EngineStopped(Event):
    run_id: str
    account: str
    reason: str
    bars: int = 0
