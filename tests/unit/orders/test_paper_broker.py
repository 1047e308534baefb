from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradelab.execution import Execution
from tradelab.orders.brokers import BrokerRejectedError
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import Order

T0 = datetime(2020, 1, 2, tzinfo=UTC)
T1 = T0 + timedelta(days=1)


def _order(cid="c1", side="buy", qty=None, kind="market", limit=None, stop=None, tif="gtc", symbol="SPX"):
    return Order(cid, "acc", "s", symbol, side, qty, T0, kind, limit, stop, tif)


def test_market_entry_fills_next_open_sized_like_vectorbt() -> None:
    ex = Execution(cash=10_000.0, fees=0.001)
    b = PaperBroker(ex)
    b.submit(_order())
    assert b.on_bar("SPX", T0, 100, 101, 99, 100, 1e6, "open") == []   # not before the next bar
    (u,) = b.on_bar("SPX", T1, 101.0, 102, 100, 101.5, 1e6, "open")
    assert u.kind == "fill" and u.fill.price == Decimal("101.0000000000")
    assert u.fill.quantity == Decimal(int(ex.entry_quantity(10_000.0, 101.0)))
    assert b.cash == Decimal(10_000) - u.fill.quantity * u.fill.price - u.fill.fees


def test_fill_at_close_convention() -> None:
    b = PaperBroker(Execution(fill="close", fees=0.0))
    b.submit(Order("c", "a", "s", "SPX", "buy", Decimal(3), T1))
    assert b.on_bar("SPX", T1, 100, 101, 99, 100, 1e6, "open") == []
    (u,) = b.on_bar("SPX", T1, 100, 101, 99, 100.5, 1e6, "close")
    assert u.fill.price == Decimal("100.5000000000") and u.fill.quantity == 3


def test_limit_fills_when_traded_through_partially_by_volume() -> None:
    b = PaperBroker(Execution(fees=0.0), volume_fraction=0.1)
    b.submit(_order(qty=Decimal(25), kind="limit", limit=Decimal(99)))
    assert b.on_bar("SPX", T1, 100, 101, 99.5, 100, 1000, "open") == []  # low above the limit
    (u,) = b.on_bar("SPX", T1 + timedelta(days=1), 100, 101, 98, 100, 100, "open")
    assert u.fill.quantity == 10 and u.fill.price == 99
    (u2,) = b.on_bar("SPX", T1 + timedelta(days=2), 98.5, 99, 97, 98, 1000, "open")
    assert u2.fill.quantity == 15 and u2.fill.price == Decimal("98.5")  # gapped below: fills at open
    assert b.open_orders() == []


def test_stop_triggers_on_range_and_day_orders_expire() -> None:
    b = PaperBroker(Execution(fees=0.0, slippage=0.0))
    b.submit(_order("stop", qty=Decimal(1), kind="stop", stop=Decimal(105)))
    b.submit(_order("day", qty=Decimal(1), kind="limit", limit=Decimal(50), tif="day"))
    (u,) = b.on_bar("SPX", T1, 100, 106, 99, 104, 1e6, "open")
    assert u.client_order_id == "stop" and u.fill.price == 105
    (e,) = b.on_bar("SPX", T1, 100, 106, 99, 104, 1e6, "close")
    assert e.kind == "expire" and e.client_order_id == "day"


def test_rejects_unknown_symbol_and_insufficient_cash_with_reason() -> None:
    b = PaperBroker(Execution(cash=1_000.0, fees=0.0), symbols={"SPX"})
    with pytest.raises(BrokerRejectedError, match="unknown symbol 'XYZ'"):
        b.submit(_order(symbol="XYZ"))
    b.submit(_order("big", qty=Decimal(100)))
    (u,) = b.on_bar("SPX", T1, 100, 101, 99, 100, 1e6, "open")
    assert u.kind == "reject" and "insufficient cash" in u.reason


def test_duplicate_client_id_is_deduplicated() -> None:
    b = PaperBroker(Execution())
    first = b.submit(_order())
    assert b.submit(_order()) == first
    assert b.submissions == 1 and [r.client_order_id for r in b.open_orders()] == ["c1"]
