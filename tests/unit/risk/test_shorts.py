"""Risk understands shorts: short selling allowed per account/instrument, limits on absolute size."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.risk import rules
from tradelab.risk.rules import RiskContext, RiskLimits, with_short_default
from tradelab.strategy.base import Signals, Strategy
from tradelab.testing import RecordingBroker

T = datetime(2020, 1, 2, 15, 0, tzinfo=UTC)


def _ctx(**kw) -> RiskContext:
    base = dict(at=T, symbol="SPX", side="sell", quantity=Decimal(10), price=Decimal(100),
                position=Decimal(0), equity=Decimal(10_000), peak_equity=Decimal(10_000),
                day_start_equity=Decimal(10_000), gross_exposure=Decimal(0))
    return RiskContext(**{**base, **kw})


@pytest.mark.parametrize(("limits", "ctx", "denied"), [
    (RiskLimits(allow_short=False), {}, True),                                   # opens a short
    (RiskLimits(allow_short=False), {"position": Decimal(-5)}, True),            # adds to one
    (RiskLimits(allow_short=False), {"position": Decimal(30)}, False),           # sells a long
    (RiskLimits(allow_short=False), {"position": Decimal(5)}, True),             # ... through zero
    (RiskLimits(allow_short=False), {"side": "buy", "position": Decimal(-10)}, False),  # covers
    (RiskLimits(allow_short=True, short_symbols=frozenset({"QQQ"})), {}, True),
    (RiskLimits(allow_short=True, short_symbols=frozenset({"SPX"})), {}, False),
    (RiskLimits(allow_short=True), {}, False),
])
def test_short_not_allowed(limits, ctx, denied) -> None:
    reason = rules.short_not_allowed(_ctx(**ctx), limits)
    assert (reason is not None) is denied
    if denied:
        assert "SPX" in reason and "short" in reason


def test_an_unset_allow_short_is_decided_by_the_venue() -> None:
    assert with_short_default(RiskLimits(), simulated=True).allow_short is True
    assert with_short_default(RiskLimits(), simulated=False).allow_short is False
    assert with_short_default(RiskLimits(allow_short=True), simulated=False).allow_short is True


def test_position_and_exposure_limits_count_a_short_by_its_size() -> None:
    ctx = _ctx(position=Decimal(-10), gross_exposure=Decimal(1000))  # short 10, selling 10 more
    assert rules.max_position(ctx, RiskLimits(max_position=Decimal(15))) is not None
    assert rules.max_gross_exposure(ctx, RiskLimits(max_gross_exposure=Decimal(1500))) is not None
    cover = _ctx(side="buy", position=Decimal(-10), gross_exposure=Decimal(1000))
    assert rules.max_gross_exposure(cover, RiskLimits(max_gross_exposure=Decimal(500))) is None


class Seller(Strategy):
    """Sells short on every third bar, covers on the next (direction short)."""

    name = "seller"
    direction = "short"

    def signals(self, bars: pd.DataFrame) -> Signals:
        i = np.asarray(bars["close"]).astype(int) - 100  # the bar's number (see _bars)
        return Signals(i % 3 == 0, i % 3 == 1)


def _bars(n: int = 30) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")
    close = 100 + np.arange(n, dtype=float)
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                         "volume": 1.0}, index=index)


@pytest.mark.parametrize(("broker", "limits", "shorts"), [
    (None, None, True),                                  # paper: allowed unless set
    (None, RiskLimits(allow_short=False), False),
    (None, RiskLimits(short_symbols=frozenset({"Y"})), False),
    (RecordingBroker(), None, False),                    # a real venue: denied unless set
    (RecordingBroker(), RiskLimits(allow_short=True), True),
])
def test_the_engine_asks_risk_before_shorting(broker, limits, shorts) -> None:
    engine = assemble_engine([(Seller(), "X")], ReplayFeed(_bars(), "X"), Execution(), broker=broker,
                             limits=limits, config=EngineConfig())
    result = engine.run()
    denied = [a for a in result.risk_alerts if a.rule == "short_not_allowed"]
    if shorts:
        assert not denied and len(engine.orders.orders) >= 9
    else:
        assert len(denied) >= 9 and not result.fills
        assert all(o.state == "rejected" for o in engine.orders.orders.values())
