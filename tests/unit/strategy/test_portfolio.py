"""The PortfolioStrategy contract: schedules, checked weights, the weights look-ahead
check, discovery, and the two shipped portfolio strategies on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.data.universe import Panel, load_panel, panel_from_close
from tradelab.errors import ParameterError, TradelabError
from tradelab.strategy.base import Param
from tradelab.strategy.portfolio import (
    PortfolioStrategy,
    WeightsError,
    check_weights_lookahead,
    discover_portfolio_strategies,
    rebalance_bars,
    require_symbols,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def shipped() -> dict[str, type[PortfolioStrategy]]:
    return discover_portfolio_strategies([ROOT / "strategies"])


@pytest.fixture(scope="module")
def sp20() -> Panel:
    return load_panel("sp20", start="2005-01-01", end="2012-12-31")


class Fixed(PortfolioStrategy):
    """Constant weights from a parameter (for the contract tests)."""

    name = "fixed"
    universe = ("A", "B")
    w = Param(0.5, low=-2.0, high=2.0)

    def weights(self, panel: Panel) -> pd.DataFrame:
        return pd.DataFrame({"A": self.w, "B": -self.w}, index=panel.index)


class Peeking(PortfolioStrategy):
    """Long A whenever tomorrow's close is higher: reads the future."""

    name = "peeking"
    universe = ("A", "B")

    def weights(self, panel: Panel) -> pd.DataFrame:
        up = panel.close["A"].shift(-1) > panel.close["A"]
        return pd.DataFrame({"A": up.astype(float) * 0.5}, index=panel.index)


def _panel(n: int = 60, seed: int = 1) -> Panel:
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-29", periods=n, freq="D", tz="UTC", name="time")
    close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0)),
                         index=t, columns=["A", "B"])
    return panel_from_close(close)


def test_schedules_need_no_future_dates() -> None:
    t = pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-05",
                          "2024-03-01"], tz="UTC")
    assert rebalance_bars(t, "M").tolist() == [True, False, True, False, False, True]
    assert rebalance_bars(t, "W").tolist() == [True, False, False, False, True, True]
    assert rebalance_bars(t, 2).tolist() == [True, False, True, False, True, False]
    assert rebalance_bars(t, "3").tolist() == [True, False, False, True, False, False]
    # A prefix gets the same schedule on its bars (the rule reads only past dates).
    assert rebalance_bars(t[:4], "M").tolist() == rebalance_bars(t, "M")[:4].tolist()
    w = pd.DataFrame({"A": [0, 0, 0.5, 0.5, 0, 0]}, index=t)
    assert rebalance_bars(t, "change", w).tolist() == [True, False, True, False, True, False]
    with pytest.raises(ParameterError, match="rebalance = 'Q'"):
        rebalance_bars(t, "Q")
    with pytest.raises(ParameterError, match="N >= 1"):
        rebalance_bars(t, 0)


def test_target_weights_are_checked() -> None:
    panel = _panel()
    w = Fixed().target_weights(panel)
    assert list(w.columns) == ["A", "B"] and (w["A"] == 0.5).all()
    with pytest.raises(WeightsError, match=r"gross exposure 2 .* exceeds max_gross = 1.0"):
        Fixed(w=1.0).target_weights(panel)
    with pytest.raises(ParameterError, match=r"fixed\.w = 3\.0: must be <= 2.0"):
        Fixed(w=3.0)
    with pytest.raises(ParameterError, match="unknown parameter"):
        Fixed(x=1)

    class Unknown(Fixed):
        def weights(self, panel: Panel) -> pd.DataFrame:
            return pd.DataFrame({"C": 0.1}, index=panel.index)

    with pytest.raises(WeightsError, match="symbol\\(s\\) C not in the panel"):
        Unknown().target_weights(panel)


def test_weight_before_a_symbols_first_bar_is_an_error() -> None:
    t = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC", name="time")
    panel = panel_from_close(pd.DataFrame({"A": [1.0, 2, 3, 4], "B": [np.nan, np.nan, 5, 6]},
                                          index=t))
    with pytest.raises(WeightsError, match=r"weight -0\.5 on B at 2024-01-01.*before its first bar"):
        Fixed().target_weights(panel)


def test_lookahead_check_catches_a_peeking_strategy() -> None:
    panel = _panel()
    assert check_weights_lookahead(Fixed(w=0.3), panel).ok
    report = check_weights_lookahead(Peeking(), panel)
    assert not report.ok
    first = report.offenses[0]
    assert first.symbol == "A" and first.full != first.partial
    # The offense is the last bar of the prefix: the one whose "tomorrow" was cut off.
    assert first.prefix_end == first.bar
    assert "weights read bars after the one they are for" in str(report)


def test_required_symbols_are_checked_and_named(
        shipped: dict[str, type[PortfolioStrategy]]) -> None:
    pairs = shipped["pairs_kopep"]()
    assert pairs.required_symbols == ("KO", "PEP") and Fixed().required_symbols == ()
    require_symbols(pairs, ("PEP", "XOM", "KO"))  # order and extra symbols do not matter
    require_symbols(Fixed(), ("X",))  # no requirement: any universe
    with pytest.raises(TradelabError, match=r"^pairs_kopep needs symbols KO and PEP; got KO$"):
        require_symbols(pairs, ("KO",))
    with pytest.raises(TradelabError, match="needs symbols KO and PEP; got \\(none\\)"):
        require_symbols(pairs, ())
    with pytest.raises(TradelabError, match=r"^symbols: KO is given twice \(KO, PEP, KO\)"):
        require_symbols(pairs, ("KO", "PEP", "KO"))
    with pytest.raises(TradelabError, match="symbols: A is given twice"):
        require_symbols(Fixed(), ("A", "A"))


def test_lookahead_check_refuses_a_history_shorter_than_the_warmup(
        shipped: dict[str, type[PortfolioStrategy]]) -> None:
    pairs = shipped["pairs_kopep"](window=30, z_window=10)  # warmup 39
    kopep = load_panel("kopep", start="2010-01-01", end="2010-12-31")
    with pytest.raises(ValueError, match=r"^pairs_kopep: 38 bar\(s\) are too few to check; "
                                         r"it reads 39 bars \(its warmup\)"):
        check_weights_lookahead(pairs, kopep.head(38))
    assert check_weights_lookahead(pairs, kopep.head(39), samples=4).ok  # the warmup suffices


def test_shipped_strategies_are_discovered_and_causal(
        shipped: dict[str, type[PortfolioStrategy]], sp20: Panel) -> None:
    assert {"pairs_kopep", "momentum_rotation"} <= set(shipped)
    rotation = shipped["momentum_rotation"]()
    assert rotation.symbols() == sp20.symbols
    assert check_weights_lookahead(rotation, sp20, samples=8).ok
    pairs = shipped["pairs_kopep"]()
    kopep = load_panel("kopep", start="2005-01-01", end="2012-12-31")
    assert check_weights_lookahead(pairs, kopep, samples=8).ok


def test_momentum_rotation_holds_the_top_five_by_12_1_momentum(
        shipped: dict[str, type[PortfolioStrategy]], sp20: Panel) -> None:
    w = shipped["momentum_rotation"]().target_weights(sp20)
    t = 400
    momentum = sp20.close.iloc[t - 21] / sp20.close.iloc[t - 252] - 1
    want = set(momentum.sort_values(ascending=False).index[:5])
    assert set(w.columns[w.iloc[t] > 0]) == want
    assert w.iloc[t].sum() == pytest.approx(1.0)
    assert (w.iloc[:252] == 0).all().all()  # no ranking without a year of history
    with pytest.raises(ParameterError, match="skip \\(300\\) must be smaller than lookback"):
        shipped["momentum_rotation"](skip=300)


def test_pairs_weights_are_market_neutral_legs(shipped: dict[str, type[PortfolioStrategy]]
                                               ) -> None:
    kopep = load_panel("kopep", start="2000-01-01", end="2010-12-31")
    w = shipped["pairs_kopep"]().target_weights(kopep)
    assert set(np.unique(w["KO"])) == {-0.5, 0.0, 0.5}
    assert (w["KO"] == -w["PEP"]).all()
    assert (w.iloc[:78] == 0).all().all()  # 60-bar OLS + 20-bar z-score warmup
