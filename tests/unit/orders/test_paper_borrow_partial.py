"""A partial cover at the paper broker carries the share of the units it buys back; the
rest stays accrued, a resume rebuilds both, and research's panel book
(:class:`tradelab.research.borrow.PanelBorrow`) charges the very same floats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.execution import Execution
from tradelab.money import book
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import Order
from tradelab.research.borrow import PanelBorrow, cover_charge

#: 0.36525 a year is 0.001 a day: a unit short at a close of 10 accrues 0.01 a day.
RATE = 0.36525
EX = Execution(cash=1000.0, fees=0.0, fill="close", borrow_fee=RATE)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _run(broker: PaperBroker, times: list[datetime], closes: list[float | None],
         targets: list[int]) -> list:
    """Work one symbol X: each real bar's open phase, an order to the target, the close."""
    fills = []
    for i, (t, c) in enumerate(zip(times, closes, strict=True)):
        if c is None:
            continue
        broker.on_bar("X", t, c, c, c, c, 1e6, "open")
        held = broker.positions_held.get("X", Decimal(0))
        delta = Decimal(targets[i]) - held
        if delta:
            broker.submit(Order(f"o{i}", "a", "s", "X", "buy" if delta > 0 else "sell", abs(delta), t))
        fills += [u.fill for u in broker.on_bar("X", t, c, c, c, c, 1e6, "close") if u.fill]
    return fills


def test_a_partial_cover_by_hand_and_its_resume() -> None:
    """Short 50 at 10 on day 0; day 2 buys back 20 of the 50: 2 days x 50 x 10 x 0.001 =
    1.0 accrued, 20/50 of it (0.4) charged, 0.6 left; day 3 adds 30 x 10 x 0.001 = 0.3."""
    days = [T0 + timedelta(days=i) for i in range(4)]
    broker = PaperBroker(EX, allow_short=True)
    fills = _run(broker, days, [10.0] * 4, [-50, -50, -30, -30])
    assert [(f.side, f.quantity) for f in fills] == [("sell", 50), ("buy", 20)]
    assert float(fills[1].fees) == pytest.approx(0.4, rel=1e-12)
    assert broker.borrow_paid == pytest.approx(0.4, rel=1e-12)
    assert broker.borrow_accrued["X"] == pytest.approx(0.9, rel=1e-12)
    # a resume rebuilds the same floats from the fills and the bars
    again = PaperBroker(EX, allow_short=True)
    again.restore(broker.cash, dict(broker.positions_held), [])
    again.rebuild_borrow("X", fills, [(t, 10.0) for t in days])
    assert again.borrow_paid == broker.borrow_paid
    assert again.borrow_accrued == broker.borrow_accrued


def test_cover_charge_splits_the_accrual() -> None:
    assert cover_charge(1.0, 50.0, 50.0) == 1.0  # a whole cover: all of it, exactly
    assert cover_charge(1.0, 80.0, 50.0) == 1.0  # a reversal
    assert cover_charge(1.0, 20.0, 50.0) == pytest.approx(0.4, rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3),                      # days since the last bar
                          st.one_of(st.none(), st.integers(100, 10_000)),  # close in cents
                          st.integers(-4, 2)),                    # target, tens of units
                min_size=2, max_size=14))
def test_research_charges_the_paper_brokers_floats(script) -> None:
    """Random shorts, covers (about a third of the examples hold a partial cover),
    reversals and missing bars: each fill's fee is research's charge, booked."""
    times, closes, targets = [], [], []
    t = T0
    for gap, cents, target in script:
        t += timedelta(days=gap)
        times.append(t)
        closes.append(None if cents is None else cents / 100)
        targets.append(10 * target)
    closes[0] = closes[0] if closes[0] is not None else 50.0  # a first bar
    broker = PaperBroker(Execution(cash=1e9, fees=0.0, fill="close", borrow_fee=0.07),
                         allow_short=True)
    fills = _run(broker, times, closes, targets)
    # research's panel book over the same bars and orders
    real = np.array([[c is not None] for c in closes])
    close = np.array([[np.nan if c is None else c] for c in closes])
    panel = PanelBorrow(broker.execution, pd.DatetimeIndex(times), close, real)
    at = {f.at: i for i, f in enumerate(fills)}
    held = 0.0
    for i, ti in enumerate(times):
        k = at.get(ti)
        if k is None:
            continue
        f = fills[k]
        q = float(f.quantity)
        fee = panel.charge(0, i, q, -held) if f.side == "buy" else 0.0
        assert book(fee) == f.fees
        held += q if f.side == "buy" else -q
        panel.mark(0, i, held)
    assert float(panel.per_bar.sum()) == pytest.approx(broker.borrow_paid, rel=1e-12, abs=0)
    assert panel.open_accrued()[0] == broker.borrow_accrued.get("X", 0.0)
