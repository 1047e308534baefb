"""The engine runs portfolio strategies exactly like research (issue 13's parity).

Each test replays a universe through :meth:`App.portfolio_engine` with persistence on
(SQLite), backtests the same bars with :func:`tradelab.backtest_portfolio` and compares
fills (time, symbol, side, quantity, price) and the equity at every time stamp, both
from the engine's result and as stored.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tradelab.data.universe import align, load_universe
from tradelab.errors import TradelabError
from tradelab.parity_portfolio import compare_portfolio
from tradelab.research.portfolio import backtest_portfolio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory):
    from tradelab.app import build
    from tradelab.config import load_config

    tmp = tmp_path_factory.mktemp("portfolio_engine")
    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp / "cache"),
           "PATH": os.environ.get("PATH", ""),
           "TRADELAB__STORE__URL": f"sqlite:///{tmp / 'engine.db'}"}
    return build(load_config(environ=env, home=ROOT))


def _both(tl, name: str, bars: dict[str, pd.DataFrame], account: str, **kw):
    ex = kw.pop("execution", tl.execution)
    research = backtest_portfolio(name, kw.pop("params", None), panel=align(bars), execution=ex,
                                  **kw)
    engine = tl.portfolio_engine(name, bars=bars, execution=ex, account=account,
                                 params=research.params, **kw)
    result = engine.run()
    return research, engine, result


def _assert_parity(tl, research, result, account: str) -> None:
    live = compare_portfolio(research, result.fills, result.equity_curve)
    assert live.ok, live.to_dict()
    assert live.fills_research > 0 and live.bars_compared == len(research.equity)
    store = tl.store
    run_id = int(result.run_id)
    stored = compare_portfolio(research, store.fills(account, run_id),
                               [(p.at, float(p.equity)) for p in store.equity_curve(account, run_id)])
    assert stored.ok, stored.to_dict()


def test_momentum_rotation_on_sp20_fills_and_equity_equal_research(tl) -> None:
    bars = load_universe("sp20", "sample", "2010-01-01", "2012-12-31")
    research, _, result = _both(tl, "momentum_rotation", bars, "rot")
    _assert_parity(tl, research, result, "rot")
    assert result.bars == sum(len(b) for b in bars.values())
    assert float(result.equity) == pytest.approx(float(research.final_equity_exact), rel=1e-9)


def test_the_declared_window_and_the_whole_history_both_decide_like_research(tl) -> None:
    """momentum_rotation declares its warmup as its decision_window: by default the engine
    hands it only those bars (the tail of the same panel); handed every bar
    (history="all") it decides the same, and both equal research."""
    bars = load_universe("sp20", "sample", "2009-06-01", "2011-12-31")
    params = {"lookback": 120, "skip": 10}
    research = backtest_portfolio("momentum_rotation", params, panel=align(bars),
                                  execution=tl.execution)
    warmup = params["lookback"] + 1  # MomentumRotation.warmup
    engine = tl.portfolio_engine("momentum_rotation", bars=bars, params=params, account="win")
    result = engine.run()
    _assert_parity(tl, research, result, "win")
    assert engine.rebalancer.history == len(engine.rebalancer.panel()) == warmup
    whole = tl.portfolio_engine("momentum_rotation", bars=bars, params=params, account="all",
                                history="all")
    everything = whole.run()
    _assert_parity(tl, research, everything, "all")
    assert len(whole.rebalancer.panel()) == len(research.equity)


def test_pairs_kopep_long_and_short_legs_equal_research(tl) -> None:
    bars = load_universe("kopep", "sample", "2010-01-01", "2011-12-31")
    research, _, result = _both(tl, "pairs_kopep", bars, "pairs")
    _assert_parity(tl, research, result, "pairs")
    assert {f.side for f in result.fills} == {"buy", "sell"}
    assert any(q < 0 for q in research.positions.min())  # a short leg was held


def test_close_fills_and_a_missing_bar_equal_research(tl) -> None:
    """fill="close" (decided and filled on one bar) and a symbol without a bar on
    rebalance days (held at its last close, not traded), on a fast parameter set."""
    bars = load_universe(("KO", "PEP", "XOM", "AAPL", "GE"), "sample", "2011-01-01", "2011-12-31")
    stamps = bars["XOM"].index.to_series()
    months = stamps.groupby(stamps.index.tz_convert(None).to_period("M")).first()
    bars["XOM"] = bars["XOM"].drop(months.iloc[3:6])  # XOM misses three month starts
    params = {"top": 2, "lookback": 20, "skip": 5}
    for fill, account in (("close", "close"), ("next_open", "gap")):
        ex = replace(tl.execution, fill=fill)
        research, _, result = _both(tl, "momentum_rotation", bars, account, execution=ex,
                                    params=params)
        _assert_parity(tl, research, result, account)
        missing = set(months.iloc[3:6])
        assert not any(f.symbol == "XOM" and pd.Timestamp(f.at) in missing for f in result.fills)


def test_unknown_strategy_is_one_clear_error(tl) -> None:
    with pytest.raises(TradelabError, match="unknown portfolio strategy 'nope'"):
        tl.portfolio_engine("nope", universe="kopep")
    with pytest.raises(TradelabError, match=r"^pairs_kopep needs symbols KO and PEP; got KO, XOM$"):
        tl.portfolio_engine("pairs_kopep", universe="KO,XOM", start="2010-01-01",
                            end="2010-03-31")


@pytest.mark.parametrize(("name", "universe", "stop_after"), [
    # Each stops right after a bar that decided a rebalance (bar 291 resp. 104 of the
    # range), so the resumed engine must take that decision again and fill it first.
    ("momentum_rotation", "sp20", 292),
    ("pairs_kopep", "kopep", 105),
])
def test_a_run_stopped_and_resumed_equals_research(tl, name: str, universe: str,
                                                   stop_after: int) -> None:
    bars = load_universe(universe, "sample", "2010-01-01", "2011-12-31")
    research = backtest_portfolio(name, panel=align(bars), execution=tl.execution)
    account = f"resume-{name}"
    first = tl.portfolio_engine(name, bars=bars, account=account)
    seen: list[int] = []

    def stop(_batch) -> None:
        seen.append(1)
        if len(seen) == stop_after:
            first.request_stop("test")

    part = first.run(on_bar=stop)
    assert part.stopped == "stopped" and len(part.equity_curve) == stop_after
    second = tl.portfolio_engine(name, bars=bars, account=account, resume=int(part.run_id))
    rest = second.run()
    assert rest.run_id == part.run_id and rest.resumed_from is not None
    assert len(rest.equity_curve) == len(research.equity) - stop_after
    store = tl.store
    stored = compare_portfolio(research, store.fills(account, int(part.run_id)),
                               [(p.at, float(p.equity))
                                for p in store.equity_curve(account, int(part.run_id))])
    assert stored.ok, stored.to_dict()
    assert len(rest.fills) == len(research.orders)  # the whole run's fills
    decided = {pd.Timestamp(t) for t in research.orders["decided"]}
    assert research.equity.index[stop_after - 1] in decided
