"""The time stop: research (vectorbt callbacks) and the engine agree on real SPX bars.

Identical fills (time, side, quantity, price) and final equity to 1e-9 relative, as
``tradelab parity sma_cross --time-stop N`` checks; alone, with the other stops, on
each side and with both fill conventions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

_ROOT = Path(__file__).parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(_ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402,F401  (registers parity)
from tradelab.cli._app import app  # noqa: E402
from tradelab.execution import Execution  # noqa: E402
from tradelab.parity import compare  # noqa: E402
from tradelab.research.backtest import backtest  # noqa: E402
from tradelab.strategy.exits import Stops  # noqa: E402

pytestmark = pytest.mark.slow

CASES = {
    "long": ("long", Stops(time_bars=10)),
    "short": ("short", Stops(time_bars=5)),
    "both": ("both", Stops(time_bars=7)),
    "long-sl": ("long", Stops(sl=0.03, time_bars=12)),
    "both-sl-tp": ("both", Stops(sl=0.03, tp=0.06, time_bars=6)),
    "short-trail": ("short", Stops(trail=0.04, time_bars=8)),
}


@pytest.fixture(scope="module")
def registry(project_root):
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([project_root / "strategies"], entry_points=False)


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("case", list(CASES))
def test_engine_matches_research_with_a_time_stop(registry, spx, case, fill) -> None:
    direction, stops = CASES[case]
    ex = Execution(fill=fill, fees=0.001, slippage=0.0005)
    strat = registry.create("sma_cross")
    report = compare(strat, spx, ex, "SPX", direction=direction, stops=stops)
    assert report.research_fills > 100
    assert report.ok, str(report)
    # the time stop really closes trades: some last exactly its bars (plus the fill's lag)
    lag = 1 if fill == "next_open" else 0
    trades = backtest(strat, spx, execution=ex, direction=direction, sl=stops.sl, tp=stops.tp,
                      trail=stops.trail, time_stop=stops.time_bars).portfolio.trades.values
    held = trades["exit_idx"] - trades["entry_idx"]
    assert (held[trades["status"] == 1] <= stops.time_bars + lag).all()
    assert (held == stops.time_bars + lag).sum() >= 10


@pytest.mark.parametrize("execution", [
    Execution(size=10, size_type="amount"),
    Execution(size=30_000, size_type="value", fill="close", fractional=True, fixed_fees=1.0),
], ids=["amount", "value-close-fractional"])
def test_reversals_with_a_time_stop_match_research(registry, spx, execution) -> None:
    report = compare(registry.create("sma_cross", fast=5, slow=20), spx, execution, "SPX",
                     direction="both", stops=Stops(time_bars=4))
    assert report.research_fills > 150
    assert report.ok, str(report)


def test_the_time_stop_changes_the_run(registry, spx) -> None:
    plain = compare(registry.create("sma_cross"), spx, Execution(), "SPX", direction="both")
    timed = compare(registry.create("sma_cross"), spx, Execution(), "SPX", direction="both",
                    stops=Stops(time_bars=10))
    assert plain.ok and timed.ok
    assert timed.engine_fills > plain.engine_fills
    assert timed.engine_equity != plain.engine_equity


def test_parity_cli_with_a_time_stop(environ: dict[str, str], tmp_path: Path) -> None:
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}"}
    res = CliRunner().invoke(app, ["parity", "sma_cross", "--source", "sample", "--symbol", "SPX",
                                   "--time-stop", "10", "--json"], env=env,
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["differences"] == []
    assert out["fills"]["research"] == out["fills"]["engine"] > 100
