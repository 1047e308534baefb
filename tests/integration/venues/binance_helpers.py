"""Shared pieces of the Binance simulator and CcxtBroker tests: bars, a started simulator,
an OrderManager over a broker, and waiting with a deadline (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order

KEY, SECRET = "sim-key-0123", "sim-secret-4567"
SYMBOL = "ETH/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def eth_bars(n: int = 120, volume: float = 50.0) -> dict[str, pd.DataFrame]:
    """Deterministic 1-minute ETH/USDT bars around 2,000 (step 0.0001, tick 0.001, min notional 10)."""
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(3)
    close = 2000 + np.cumsum(rng.normal(0, 2, n)).round(2)
    open_ = np.r_[2000.0, close[:-1]]
    frame = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + 1.5,
                          "low": np.minimum(open_, close) - 1.5, "close": close,
                          "volume": volume}, index=idx)
    return {SYMBOL: frame}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def manager(broker: Any) -> tuple[OrderManager, list[Any]]:
    bus, clock = EventBus(), SimClock(T0)
    events: list[Any] = []
    from tradelab.events import OrderEvent

    bus.subscribe(OrderEvent, events.append)
    return OrderManager(broker, bus, clock, attempts=5, max_wait=0.2), events


def order(cid: str, side: str, qty: str, kind: str = "market", price: str | None = None,
          symbol: str = SYMBOL) -> Order:
    return Order(cid, "acc", "s", symbol, side, Decimal(qty), T0, order_type=kind,
                 limit_price=Decimal(price) if price and kind == "limit" else None,
                 stop_price=Decimal(price) if price and kind == "stop" else None)


def pump(mgr: OrderManager, broker: Any) -> None:
    """Apply what the broker's stream reported since the last call."""
    mgr.apply_reports(broker.poll())


def count_client_ids(sim: Any, cid: str) -> int:
    return sum(1 for o in sim.orders() if o["clientOrderId"] == cid)
