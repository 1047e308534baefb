"""Shorts, reversals and declared exits: research (vectorbt) and the engine agree on real SPX bars.

Identical fills (time, side, quantity, price) and final equity to 1e-9 relative,
as ``tradelab parity sma_cross --direction ... --sl/--tp/--trail`` checks.
"""

from __future__ import annotations

import os

import pytest

_ROOT = __import__("pathlib").Path(__file__).parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(_ROOT / "var/numba-cache"))

from tradelab.execution import Execution  # noqa: E402
from tradelab.parity import compare  # noqa: E402
from tradelab.strategy.exits import Stops  # noqa: E402

pytestmark = pytest.mark.slow

CASES = {
    "both-sl-tp": ("both", Stops(sl=0.03, tp=0.06)),
    "both-trail": ("both", Stops(trail=0.05)),
    "short": ("short", None),
    "short-sl-tp": ("short", Stops(sl=0.03, tp=0.06)),
    "long-trail": ("long", Stops(trail=0.05)),
}


@pytest.fixture(scope="module")
def registry(project_root):
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([project_root / "strategies"], entry_points=False)


@pytest.mark.parametrize("fractional", [False, True], ids=["whole", "fractional"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("case", list(CASES))
def test_engine_matches_research_with_shorts_and_stops(registry, spx, case, fill, fractional) -> None:
    direction, stops = CASES[case]
    ex = Execution(fill=fill, fractional=fractional, fees=0.001, slippage=0.0005)
    report = compare(registry.create("sma_cross"), spx, ex, "SPX", direction=direction, stops=stops)
    assert report.research_fills > 100
    assert report.ok, str(report)


@pytest.mark.parametrize("execution", [
    Execution(size=10, size_type="amount"),
    Execution(size=20_000, size_type="value", fractional=True, fixed_fees=1.0),
    Execution(size=30_000, size_type="value", fill="close", slippage=0.001),
], ids=["amount", "value-fractional", "value-close"])
@pytest.mark.parametrize("stops", [None, Stops(sl=0.03, tp=0.06)], ids=["signals", "sl-tp"])
def test_reversals_in_one_order_match_research(registry, spx, execution, stops) -> None:
    report = compare(registry.create("sma_cross"), spx, execution, "SPX", direction="both", stops=stops)
    # each cross reverses the position: as many fills as research, and both sides held
    assert report.research_fills > 150
    assert report.ok, str(report)


def test_a_stop_changes_the_trades(registry, spx) -> None:
    """The stops really fire: with them the run differs from the one without."""
    plain = compare(registry.create("sma_cross"), spx, Execution(), "SPX", direction="both")
    stopped = compare(registry.create("sma_cross"), spx, Execution(), "SPX", direction="both",
                      stops=Stops(sl=0.03, tp=0.06))
    assert plain.ok and stopped.ok
    assert stopped.engine_fills != plain.engine_fills
    assert stopped.engine_equity != plain.engine_equity


def test_precomputed_signals_match_research_with_stops(registry, spx) -> None:
    report = compare(registry.create("sma_cross", fast=5, slow=50), spx,
                     Execution(fees=0.001, fixed_fees=1.0, slippage=0.0005), "SPX",
                     signal_mode="precomputed", direction="both", stops=Stops(trail=0.05))
    assert report.ok, str(report)
