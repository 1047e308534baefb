from __future__ import annotations

from decimal import Decimal

from tradelab.money import SCALE, book
from tradelab.portfolio import Portfolio


def test_average_price_realized_and_unrealized_pnl() -> None:
    pf = Portfolio(Decimal(1000))
    pf.apply_fill("X", "buy", Decimal(2), Decimal(10), Decimal(1))
    pf.apply_fill("X", "buy", Decimal(2), Decimal(20), Decimal(1))
    pos = pf.positions["X"]
    assert pos.avg_price == 15
    pf.apply_fill("X", "sell", Decimal(1), Decimal(25), Decimal(1))
    assert pos.realized_pnl == 10 and pos.quantity == 3
    pf.mark("X", 30.0)
    assert pos.unrealized_pnl == 45
    assert pf.cash == Decimal(1000) - 20 - 40 + 25 - 3
    assert pf.equity == pf.cash + 90


def test_flip_through_zero_and_short() -> None:
    pf = Portfolio(Decimal(0))
    pf.apply_fill("X", "buy", Decimal(1), Decimal(10), Decimal(0))
    pf.apply_fill("X", "sell", Decimal(3), Decimal(12), Decimal(0))
    pos = pf.positions["X"]
    assert pos.quantity == -2 and pos.realized_pnl == 2 and pos.avg_price == 12


def test_booking_scale_matches_the_store() -> None:
    from tradelab.store.types import SCALE as STORE_SCALE

    assert SCALE == STORE_SCALE
    assert book(0.1 + 0.2) == Decimal("0.3000000000")
