"""Sizing and fee arithmetic of the execution convention, against vectorbt itself.

``Execution.entry_quantity`` / ``order_fees`` are what the paper broker uses;
vectorbt is what research uses. For random cash, prices, fees, fixed fees,
slippage and sizes they must agree (bit for bit on quantities), never spend
more cash than there is, and give whole units unless fractional.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelab.execution import Execution
from tradelab.research.backtest import run_portfolio

IDX = pd.date_range("2024-01-02", periods=2, freq="D", tz="UTC")
TOL = 1e-9  # vectorbt's relative tolerance for "enough cash"

money = st.floats(1.0, 1e7, allow_nan=False, allow_infinity=False)
prices = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)
rates = st.floats(0.0, 0.05, allow_nan=False)


@st.composite
def executions(draw: st.DrawFn) -> Execution:
    size_type = draw(st.sampled_from(["percent", "value", "amount"]))
    if size_type == "percent":
        size = draw(st.floats(0.01, 1.0))
    elif size_type == "value":
        size = draw(st.floats(1.0, 1e7))
    else:
        size = draw(st.one_of(st.integers(1, 10_000).map(float), st.floats(0.001, 1e4)))
    return Execution(cash=draw(money), fees=draw(rates),
                     fixed_fees=draw(st.one_of(st.just(0.0), st.floats(0.0, 50.0))),
                     slippage=draw(rates), size=size, size_type=size_type, fill="close",
                     fractional=draw(st.booleans()))


def vectorbt_orders(ex: Execution, buy_price: float, sell_price: float) -> pd.DataFrame:
    """Entry on bar 0's close, exit on bar 1's close, through the research mapping."""
    bars = pd.DataFrame({"open": [buy_price, sell_price], "high": [buy_price, sell_price],
                         "low": [buy_price, sell_price], "close": [buy_price, sell_price],
                         "volume": [1.0, 1.0]}, index=IDX)
    pf = run_portfolio(ex, bars, pd.Series([True, False], index=IDX),
                       pd.Series([False, True], index=IDX))
    return pd.DataFrame(pf.orders.values)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ex=executions(), buy=prices, sell=prices)
def test_sizing_and_fees_agree_with_vectorbt(ex: Execution, buy: float, sell: float) -> None:
    qty = ex.entry_quantity(ex.cash, buy)
    fill = ex.fill_price(buy, buy=True)
    orders = vectorbt_orders(ex, buy, sell)

    # Never more cash than available (vectorbt's own 1e-9 tolerance), never negative.
    assert qty >= 0
    if qty > 0:
        assert qty * fill + ex.order_fees(qty, fill) <= ex.cash * (1 + TOL)
    if not ex.fractional:
        assert qty == math.floor(qty)
    if ex.size_type == "amount":
        assert qty <= ex.size

    if qty == 0:
        assert len(orders) == 0
        return
    entry = orders.iloc[0]
    assert entry["side"] == 0
    assert entry["size"] == qty  # bit for bit: whole-unit rounding must never differ
    assert entry["price"] == fill
    assert entry["fees"] == pytest.approx(ex.order_fees(qty, fill), rel=1e-9, abs=1e-9)

    # The exit sells everything; its fees follow the same formula.
    sell_fill = ex.fill_price(sell, buy=False)
    proceeds = qty * sell_fill - ex.order_fees(qty, sell_fill)
    if proceeds < 0:  # vectorbt refuses a sale that cannot pay its own fees
        assert len(orders) == 1
        return
    exit_ = orders.iloc[1]
    assert exit_["side"] == 1 and exit_["size"] == qty and exit_["price"] == sell_fill
    assert exit_["fees"] == pytest.approx(ex.order_fees(qty, sell_fill), rel=1e-12, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(ex=executions(), price=prices, cash=money)
def test_entry_never_overspends(ex: Execution, price: float, cash: float) -> None:
    qty = ex.entry_quantity(cash, price)
    fill = ex.fill_price(price, buy=True)
    assert qty >= 0 and np.isfinite(qty)
    if qty > 0:
        assert qty * fill + ex.order_fees(qty, fill) <= cash * (1 + TOL)
        if ex.size_type == "percent":
            assert qty * fill + ex.order_fees(qty, fill) <= cash * ex.size * (1 + TOL)
    if not ex.fractional:
        assert qty == math.floor(qty)
        # Whole units: one more unit would not have been affordable.
        if ex.size_type == "percent":
            assert (qty + 1) * fill * (1 + ex.fees) + ex.fixed_fees > cash * ex.size * (1 - TOL)
