"""Shorts with a borrow fee: research (vectorbt, fixed-point passes) and the engine (the
paper broker's accrual) agree on real SPX bars: identical fills, fees included, and
final equity to 1e-9 relative, as ``tradelab parity --borrow-fee`` checks."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

_ROOT = __import__("pathlib").Path(__file__).parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(_ROOT / "var/numba-cache"))

from tradelab.execution import Execution  # noqa: E402
from tradelab.parity import compare  # noqa: E402
from tradelab.research.backtest import backtest  # noqa: E402
from tradelab.strategy.exits import Stops  # noqa: E402

pytestmark = pytest.mark.slow

SIZING = {
    "percent": Execution(fees=0.001, slippage=0.0005),
    "percent-fractional-close": Execution(fees=0.001, fill="close", fractional=True),
    "amount": Execution(size=10, size_type="amount", fees=0.001, fixed_fees=1.0),
    "value-fractional": Execution(size=20_000, size_type="value", fractional=True,
                                  fixed_fees=1.0),
}


@pytest.mark.parametrize("direction", ["short", "both"])
@pytest.mark.parametrize("sizing", list(SIZING))
def test_engine_matches_research_with_a_borrow_fee(registry, spx, direction, sizing) -> None:
    ex = replace(SIZING[sizing], borrow_fee=0.05)
    strat = registry.create("sma_cross")
    report = compare(strat, spx, ex, "SPX", direction=direction)
    assert report.ok, str(report)
    research = backtest(strat, spx, execution=ex, direction=direction)
    plain = backtest(strat, spx, execution=replace(ex, borrow_fee=0.0), direction=direction)
    if direction == "both" and ex.size_type == "percent":
        # vectorbt cannot size a percent reversal: a short signal only closes the long,
        # so no short is ever held and nothing is borrowed
        assert research.stats["borrow_fees"] == 0.0
        return
    # the fee is really charged: on the covers, and it costs equity
    assert research.stats["borrow_fees"] > 100.0
    assert research.final_equity < plain.final_equity
    covers = research.orders["side"] == ("buy")
    extra = research.orders["fees"][covers].sum() - plain.orders["fees"][covers].sum()
    if ex.size_type != "percent":  # same sizes with and without the fee: only covers differ
        assert extra == pytest.approx(research.stats["borrow_fees"], rel=1e-9)


@pytest.mark.parametrize("stops", [Stops(sl=0.03, tp=0.06), Stops(trail=0.05, time_bars=10)],
                         ids=["sl-tp", "trail-time"])
def test_borrow_fee_with_stops_matches(registry, spx, stops) -> None:
    ex = Execution(size=10, size_type="amount", borrow_fee=0.08)
    report = compare(registry.create("sma_cross"), spx, ex, "SPX", direction="both", stops=stops)
    assert report.research_fills > 150
    assert report.ok, str(report)


@pytest.mark.parametrize("execution", [Execution(borrow_fee=0.05),
                                       Execution(size=10, size_type="amount", borrow_fee=0.05)],
                         ids=["percent", "amount"])
def test_borrow_fee_with_stated_short_flags_and_per_bar_stops(registry, spx, execution) -> None:
    """sma_cross_ls: its own short entries/exits and an ATR stop per bar."""
    report = compare(registry.create("sma_cross_ls"), spx, execution, "SPX")
    assert report.research_fills > 200
    assert report.ok, str(report)
    research = backtest(registry.create("sma_cross_ls"), spx, execution=execution)
    assert research.stats["borrow_fees"] > 0
