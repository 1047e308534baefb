"""A short entry is sized like vectorbt's sell_nb (Execution.short_entry_fill, Hypothesis),
and the paper broker sizes it at the fill on its free cash."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.execution import Execution
from tradelab.orders.brokers import BrokerRejectedError
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import Order

# vectorbt (imported by the reference below) compiles into the project's numba cache
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).parents[3] / "var/numba-cache"))

T0 = datetime(2020, 1, 2, tzinfo=UTC)
T1 = T0 + timedelta(days=1)

executions = st.builds(
    Execution,
    cash=st.floats(1_000, 1e6), fees=st.sampled_from([0.0, 0.0005, 0.001, 0.01]),
    fixed_fees=st.sampled_from([0.0, 1.0, 5.0]), slippage=st.sampled_from([0.0, 0.0005, 0.01]),
    size=st.floats(0.05, 1.0), size_type=st.just("percent"), fractional=st.booleans())


def _vectorbt(ex: Execution, free_cash: float, price: float) -> tuple[float, float, float]:
    from vectorbt.portfolio.enums import Direction, ExecuteOrderState
    from vectorbt.portfolio.nb import sell_nb

    state = ExecuteOrderState(cash=free_cash, position=0.0, debt=0.0, free_cash=free_cash)
    _, result = sell_nb(state, np.inf, price, direction=Direction.Both, fees=ex.fees,
                        fixed_fees=ex.fixed_fees, slippage=ex.slippage,
                        min_size=0.0 if ex.fractional else 1.0,
                        size_granularity=np.nan if ex.fractional else 1.0, percent=ex.size)
    if np.isnan(result.size):
        return 0.0, 0.0, 0.0
    return float(result.size), float(result.price), float(result.fees)


@settings(max_examples=300, deadline=None)
@given(ex=executions, price=st.floats(0.5, 5_000))
def test_short_entry_fill_is_vectorbts_sell(ex: Execution, price: float) -> None:
    qty, fill, fees = ex.short_entry_fill(ex.cash, price)
    ref = _vectorbt(ex, ex.cash, price)
    if ref[0] == 0.0:
        assert qty == 0.0
    else:
        assert (qty, fill, fees) == ref  # bit for bit: the same float operations


def test_the_paper_broker_sizes_a_short_at_the_fill_on_its_free_cash() -> None:
    ex = Execution(cash=10_000.0, fees=0.001, slippage=0.0)
    broker = PaperBroker(ex, allow_short=True)
    broker.submit(Order("s1", "acc", "s", "X", "sell", None, T0))
    (u,) = broker.on_bar("X", T1, 100.0, 101, 99, 100, 1e6, "open")
    qty, _, _ = ex.short_entry_fill(10_000.0, 100.0)
    assert u.fill.quantity == Decimal(repr(qty)) == Decimal(99)
    assert broker.positions()["X"] == -99
    assert broker.debt["X"] == Decimal(9_900)  # what the short is owed at its entry price
    # free cash excludes twice the short's value: a second symbol's short is sized on it
    assert broker.free_cash() == broker.cash - 2 * Decimal(9_900)
    broker.submit(Order("c1", "acc", "s", "X", "buy", Decimal(40), T1))
    broker.on_bar("X", T1 + timedelta(days=1), 90.0, 91, 89, 90, 1e6, "open")
    assert broker.debt["X"] == Decimal(5_900)  # 59 still short at the 100 entry


def test_a_venue_without_short_selling_refuses_a_short_entry() -> None:
    with pytest.raises(BrokerRejectedError, match="short selling is not enabled"):
        PaperBroker(Execution()).submit(Order("s1", "acc", "s", "X", "sell", None, T0))
