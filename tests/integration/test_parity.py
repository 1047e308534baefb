"""Research backtest (vectorbt) and engine replay agree on real SPX bars, for every shipped strategy."""

from __future__ import annotations

import os

import pytest

_ROOT = __import__("pathlib").Path(__file__).parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(_ROOT / "var/numba-cache"))

from tradelab.execution import Execution  # noqa: E402
from tradelab.parity import compare  # noqa: E402

pytestmark = pytest.mark.slow
STRATEGIES = ["sma_cross", "rsi_reversion", "donchian_breakout"]


@pytest.fixture(scope="module")
def registry(project_root):
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([project_root / "strategies"], entry_points=False)


@pytest.mark.parametrize("fractional", [False, True], ids=["whole", "fractional"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("name", STRATEGIES)
def test_engine_matches_research(registry, spx, name, fill, fractional) -> None:
    report = compare(registry.create(name), spx, Execution(fill=fill, fractional=fractional), "SPX")
    assert report.research_fills > 20 and report.research_round_trips > 10
    assert report.ok, str(report)


def test_precomputed_signals_match_research(registry, spx) -> None:
    report = compare(registry.create("sma_cross", fast=5, slow=50), spx,
                     Execution(fees=0.001, fixed_fees=1.0, slippage=0.0005), "SPX",
                     signal_mode="precomputed")
    assert report.ok, str(report)


def test_divergence_is_reported(registry, spx) -> None:
    from tradelab import parity

    report = parity.compare(registry.create("sma_cross"), spx, Execution(), "SPX", signal_mode="precomputed")
    report.differences.append("injected")
    assert not report.ok and "DIVERGED" in str(report)
