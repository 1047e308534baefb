"""backtest_portfolio: the rebalance loop, vectorbt's book, timing, missing bars, shorts
and the result's figures, on real close-only data."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tradelab as tl
from tradelab.data.universe import Panel, load_panel, panel_from_close
from tradelab.errors import TradelabError
from tradelab.execution import Execution
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy
from tradelab.strategy.portfolio import PortfolioStrategy

ROOT = Path(__file__).resolve().parents[3]
PATHS = [ROOT / "strategies"]


@pytest.fixture(scope="module")
def sp20() -> Panel:
    return load_panel("sp20", start="2004-01-01", end="2010-12-31")


@pytest.fixture(scope="module")
def rotation() -> PortfolioStrategy:
    return portfolio_strategy("momentum_rotation", paths=PATHS)


class Half(PortfolioStrategy):
    """50% in each of two symbols, every bar."""

    name = "half"
    universe = ("A", "B")
    rebalance = 1

    def weights(self, panel: Panel) -> pd.DataFrame:
        return pd.DataFrame(0.5, index=panel.index, columns=list(panel.symbols))


def test_vectorbt_book_equals_the_exact_book(sp20: Panel, rotation: PortfolioStrategy) -> None:
    r = backtest_portfolio(rotation, panel=sp20)
    assert r.stats["n_orders"] > 100
    assert float(r.final_equity_exact) == pytest.approx(r.equity.iloc[-1], rel=1e-12)
    assert len(r.pf.orders.records) == r.stats["n_orders"]
    # vectorbt's cash never goes negative: every order filled in full.
    assert (np.asarray(r.pf.cash()) >= -1e-6).all()
    assert r.stats["fees_paid"] == pytest.approx(float(np.asarray(r.pf.orders.records["fees"]).sum()))
    assert r.vbt_stats()["Total Fees Paid"] == pytest.approx(r.stats["fees_paid"])


def test_close_only_fills_at_the_next_bars_close(sp20: Panel,
                                                 rotation: PortfolioStrategy) -> None:
    r = backtest_portfolio(rotation, panel=sp20, fees=0.0)
    index = sp20.index
    pos = index.get_indexer(pd.DatetimeIndex(r.orders["time"]))
    decided = index.get_indexer(pd.DatetimeIndex(r.orders["decided"]))
    assert (pos == decided + 1).all()
    closes = sp20.close.to_numpy()[pos, [sp20.symbols.index(s) for s in r.orders["symbol"]]]
    assert [float(p) for p in r.orders["price"]] == pytest.approx(closes.tolist(), rel=1e-15)
    # Decisions on the first bar of each month.
    months = pd.DatetimeIndex(r.orders["decided"]).tz_localize(None).to_period("M")
    assert len(set(months)) == len(set(pd.DatetimeIndex(r.orders["decided"])))
    # fill="close": the same bar.
    same = backtest_portfolio(rotation, panel=sp20, fill="close", fees=0.0)
    assert (pd.DatetimeIndex(same.orders["time"]) == pd.DatetimeIndex(same.orders["decided"])).all()


def test_the_book_lands_within_one_unit_of_the_targets(sp20: Panel,
                                                       rotation: PortfolioStrategy) -> None:
    r = backtest_portfolio(rotation, panel=sp20, fees=0.0)
    fills = pd.DatetimeIndex(r.orders["time"]).unique()
    targets = rotation.target_weights(sp20).shift(1).loc[fills]  # decided the bar before
    value = (r.positions * sp20.close).loc[fills]
    want = targets.mul(r.equity.loc[fills], axis=0)
    gap_in_units = ((value - want) / sp20.close.loc[fills]).abs()
    assert (gap_in_units.to_numpy() < 1 + 1e-9).all()
    assert (r.positions.to_numpy() == np.round(r.positions.to_numpy())).all()  # whole units
    assert r.exposure["gross"].max() <= 1.0 + 1e-9


def test_a_missing_bar_is_not_traded_and_holds_its_last_close() -> None:
    t = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC", name="time")
    close = pd.DataFrame({"A": [10.0, 11, 12, 13, 14, 15],
                          "B": [20.0, 21, np.nan, 23, 24, 25]}, index=t)
    panel = panel_from_close(close)
    r = backtest_portfolio(Half(), panel=panel, cash=1000.0, fees=0.0)
    traded_b = set(pd.DatetimeIndex(r.orders.loc[r.orders["symbol"] == "B", "time"]))
    assert t[2] not in traded_b and t[1] in traded_b
    assert r.positions["B"].iloc[2] == r.positions["B"].iloc[1]
    # A is still rebalanced on that bar (it has one).
    assert t[2] in set(pd.DatetimeIndex(r.orders.loc[r.orders["symbol"] == "A", "time"]))


def test_pairs_trade_holds_shorts_and_stays_market_neutral() -> None:
    pairs = portfolio_strategy("pairs_kopep", paths=PATHS)
    r = backtest_portfolio(pairs, start="2005-01-01", end="2012-12-31")
    assert r.stats["exposure_short"] > 0.05 and r.stats["exposure_long"] > 0.05
    assert abs(r.stats["exposure_net"]) < 0.02
    assert (r.positions.to_numpy() < 0).any()
    assert float(r.final_equity_exact) == pytest.approx(r.equity.iloc[-1], rel=1e-12)
    entries = pd.DatetimeIndex(r.orders["time"])
    assert (r.exposure["net"].loc[entries].abs() < 0.01).all()


def test_result_figures_and_serialization(sp20: Panel, rotation: PortfolioStrategy) -> None:
    r = backtest_portfolio(rotation, panel=sp20)
    for key in ("total_return", "cagr", "sharpe", "max_drawdown", "turnover_per_year",
                "exposure_gross", "exposure_net", "n_rebalances"):
        assert key in r.stats
    assert r.stats["total_return"] == pytest.approx(r.equity.iloc[-1] / 100_000 - 1)
    assert r.stats["max_drawdown"] <= 0
    assert set(r.per_symbol.index) == set(sp20.symbols)
    assert r.per_symbol["pnl"].sum() == pytest.approx(r.equity.iloc[-1] - 100_000, rel=1e-9)
    assert r.per_symbol["contribution"].sum() == pytest.approx(r.stats["total_return"], rel=1e-9)
    assert r.weights.sum(axis=1).max() <= 1.0 + 1e-9
    assert len(r.turnover) == len(pd.DatetimeIndex(r.orders["time"]).unique())
    data = json.loads(json.dumps(r.to_dict()))
    assert Decimal(data["final_equity_exact"]) == r.final_equity_exact
    assert data["orders"][0]["quantity"] == str(r.orders["quantity"].iloc[0])
    plot = r.plot()
    assert type(plot).__name__ == "Layout"
    assert "<table" in r._repr_html_()


def test_bad_input_is_named(sp20: Panel, rotation: PortfolioStrategy) -> None:
    with pytest.raises(TypeError, match="unknown setting\\(s\\): size"):
        backtest_portfolio(rotation, panel=sp20, size=0.5)
    with pytest.raises(TradelabError, match=r"unknown portfolio strategy 'nope'.*momentum_rotation"):
        portfolio_strategy("nope", paths=PATHS)
    with pytest.raises(ValueError, match="fees = 2"):
        backtest_portfolio(rotation, panel=sp20, fees=2)
    # a pair on one leg: named before its weights would look the other up
    pairs = portfolio_strategy("pairs_kopep", paths=PATHS)
    with pytest.raises(TradelabError, match=r"^pairs_kopep needs symbols KO and PEP; got KO$"):
        backtest_portfolio(pairs, universe=["KO"], start="2010-01-01", end="2010-12-31")


def test_public_api_and_execution_fields(sp20: Panel, rotation: PortfolioStrategy) -> None:
    assert tl.backtest_portfolio is backtest_portfolio
    assert tl.PortfolioStrategy is PortfolioStrategy
    ex = Execution(cash=50_000.0, fees=0.001, slippage=0.001)
    r = tl.backtest_portfolio(rotation, panel=sp20.head(600), execution=ex)
    assert r.execution == ex
    buys = r.orders[r.orders["side"] == "buy"]
    first = buys.iloc[0]
    raw = sp20.close.loc[first["time"], first["symbol"]]
    assert float(first["price"]) == pytest.approx(raw * 1.001, rel=1e-12)  # slippage applied


def test_ohlc_data_fills_at_the_next_bars_open() -> None:
    class Indexes(Half):
        universe = ("SPX", "IXIC")
        rebalance = "M"

    r = backtest_portfolio(Indexes(), start="2010-01-01", end="2011-12-31", fees=0.0)
    panel = load_panel(("SPX", "IXIC"), start="2010-01-01", end="2011-12-31")
    assert not panel.close_only
    first = r.orders.iloc[0]
    assert float(first["price"]) == pytest.approx(panel.open.loc[first["time"], first["symbol"]])
    assert panel.open.loc[first["time"], first["symbol"]] != panel.close.loc[first["time"],
                                                                            first["symbol"]]


def test_a_drift_band_skips_small_orders(sp20: Panel, rotation: PortfolioStrategy) -> None:
    every = backtest_portfolio(rotation, panel=sp20)
    banded = backtest_portfolio(rotation, panel=sp20, threshold=0.01)
    assert banded.stats["n_orders"] < every.stats["n_orders"]
    notional = [float(q * p) for q, p in zip(banded.orders["quantity"], banded.orders["price"],
                                             strict=True)]
    before = banded.equity.shift(1).loc[pd.DatetimeIndex(banded.orders["time"])].to_numpy()
    assert (np.array(notional) >= 0.009 * before).all()
