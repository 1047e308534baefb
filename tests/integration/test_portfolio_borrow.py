"""The borrow fee of a portfolio's shorts (issue 13): research's Decimal book and vectorbt
charge it as the engine's paper broker does, a partial cover carrying the share of the
units it buys back; ``tradelab parity`` holds with a fee (fills, fees and equity)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tradelab.data.universe import Panel, align, load_universe
from tradelab.execution import Execution
from tradelab.parity_portfolio import compare_portfolio
from tradelab.research.portfolio import backtest_portfolio
from tradelab.strategy.portfolio import PortfolioStrategy

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

#: 0.36525 a year is 0.001 a day: a unit short at a close of 10 accrues 0.01 a day.
RATE = 0.36525
DAYS = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")  # Monday .. Friday


class Scripted(PortfolioStrategy):
    """AAA's weight by day (``script``); BBB is never held."""

    name = "scripted_short_test"
    universe = ("AAA", "BBB")
    rebalance = 1
    script: tuple[float, ...] = (-0.5, -0.5, -0.25, 0.0, 0.0)

    def weights(self, panel: Panel) -> pd.DataFrame:
        by_day = dict(zip(DAYS, self.script, strict=True))
        out = pd.DataFrame(0.0, index=panel.index, columns=panel.close.columns)
        out["AAA"] = [by_day[t] for t in panel.index]
        return out


class HeldShort(Scripted):
    name = "held_short_test"
    script = (-0.5, -0.5, -0.5, -0.5, -0.5)


def _bars() -> dict[str, pd.DataFrame]:
    """Every close 10 (AAA) and 20 (BBB); AAA has no bar on Tuesday."""
    def frame(index: pd.DatetimeIndex, price: float) -> pd.DataFrame:
        return pd.DataFrame({"open": price, "high": price, "low": price, "close": price,
                             "volume": 1e6}, index=index)

    return {"AAA": frame(DAYS.delete(1), 10.0), "BBB": frame(DAYS, 20.0)}


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory):
    from tradelab.app import build
    from tradelab.config import load_config

    tmp = tmp_path_factory.mktemp("portfolio_borrow")
    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp / "cache"),
           "PATH": os.environ.get("PATH", ""),
           "TRADELAB__STORE__URL": f"sqlite:///{tmp / 'engine.db'}"}
    return build(load_config(environ=env, home=ROOT))


def _both(tl, strategy: PortfolioStrategy, bars: dict[str, pd.DataFrame], ex: Execution):
    research = backtest_portfolio(strategy, panel=align(bars), execution=ex)
    engine = tl.portfolio_engine(strategy, bars=bars, execution=ex, persist=False)
    return research, engine, engine.run()


def test_a_partial_cover_carries_its_share_by_hand(tl) -> None:
    """Short 50 AAA on Monday; Wednesday buys back 25 (half): AAA's bar is missing on
    Tuesday, so the interval Monday-Wednesday accrues 2 days x 50 x 10 x 0.001 = 1.0 and
    the cover carries half of it, 0.5; Thursday buys the last 25: the 0.5 left plus one
    day of 25 units, 0.25, so 0.75. 1.25 in all: the final equity is 1000 - 1.25."""
    ex = Execution(cash=1000.0, fees=0.0, fill="close", borrow_fee=RATE)
    research, engine, result = _both(tl, Scripted(), _bars(), ex)
    orders = research.orders
    assert list(orders["side"]) == ["sell", "buy", "buy"]
    assert [float(q) for q in orders["quantity"]] == [50.0, 25.0, 25.0]
    assert [float(f) for f in orders["fees"]] == pytest.approx([0.0, 0.5, 0.75], rel=1e-12)
    assert research.stats["borrow_fees"] == pytest.approx(1.25, rel=1e-12)
    assert research.stats["borrow_accrued"] == 0.0
    assert float(research.final_equity_exact) == pytest.approx(998.75, rel=1e-12)
    assert research.equity.iloc[-1] == pytest.approx(998.75, rel=1e-12)  # vectorbt's book
    # the engine: the same fills and fees, the same paid
    report = compare_portfolio(research, result.fills, result.equity_curve)
    assert report.ok, report.to_dict()
    assert [float(f.fees) for f in result.fills] == pytest.approx([0.0, 0.5, 0.75], rel=1e-12)
    assert engine.broker.borrow_paid == pytest.approx(1.25, rel=1e-12)
    assert float(result.equity) == pytest.approx(998.75, rel=1e-12)


def test_a_short_still_open_is_accrued_not_charged(tl) -> None:
    """Held short all week: 4 days x 50 x 10 x 0.001 = 2.0 accrued, nothing charged."""
    ex = Execution(cash=1000.0, fees=0.0, fill="close", borrow_fee=RATE)
    research, engine, result = _both(tl, HeldShort(), _bars(), ex)
    assert research.stats["borrow_fees"] == 0.0
    assert research.stats["borrow_accrued"] == pytest.approx(2.0, rel=1e-12)
    assert sum(engine.broker.borrow_accrued.values()) == research.stats["borrow_accrued"]
    assert float(research.final_equity_exact) == 1000.0
    assert compare_portfolio(research, result.fills, result.equity_curve).ok


def test_no_borrow_fee_keeps_the_fees_and_has_no_borrow_stats(tl) -> None:
    research, _, _ = _both(tl, Scripted(), _bars(), Execution(cash=1000.0, fees=0.0, fill="close"))
    assert [float(f) for f in research.orders["fees"]] == [0.0, 0.0, 0.0]
    assert "borrow_fees" not in research.stats and "borrow_accrued" not in research.stats
    assert float(research.final_equity_exact) == 1000.0


@pytest.mark.slow
@pytest.mark.parametrize("ex", [Execution(borrow_fee=0.05),
                                Execution(fees=0.0005, fixed_fees=1.0, slippage=0.0002,
                                          borrow_fee=0.08)],
                         ids=["plain", "fees-and-slippage"])
def test_pairs_kopep_with_a_borrow_fee_equals_the_engine(tl, ex: Execution) -> None:
    bars = load_universe(("KO", "PEP"), "sample", "1995-01-01", "2004-12-31")
    research, engine, result = _both(tl, _pairs(), bars, ex)
    report = compare_portfolio(research, result.fills, result.equity_curve)
    assert report.ok, report.to_dict()
    assert report.fills_research > 50
    paid = research.stats["borrow_fees"]
    assert paid > 100.0
    assert engine.broker.borrow_paid == pytest.approx(paid, rel=1e-12)
    assert sum(engine.broker.borrow_accrued.values()) == pytest.approx(
        research.stats["borrow_accrued"], rel=1e-12, abs=1e-12)
    plain = backtest_portfolio(_pairs(), panel=align(bars), execution=replace(ex, borrow_fee=0.0))
    assert research.equity.iloc[-1] < plain.equity.iloc[-1]
    # vectorbt's book (fixed fees per element) and the exact book agree
    assert research.equity.iloc[-1] == pytest.approx(float(research.final_equity_exact),
                                                     rel=1e-9)


def _pairs() -> PortfolioStrategy:
    from tradelab.research.portfolio import portfolio_strategy

    return portfolio_strategy("pairs_kopep", paths=[ROOT / "strategies"])


@pytest.mark.slow
def test_the_cli_backtest_and_paper_report_the_same_borrow_fees(environ, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    import tradelab.cli.engine_cmd  # (registers paper, parity)
    import tradelab.cli.research_cmd  # noqa: F401  (registers backtest, sweep)
    from tradelab.cli._app import app
    from tradelab.monitor.logging import configure_logging

    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}"}
    span = ["--start", "1995-01-01", "--end", "2004-12-31"]

    def run(*args: str) -> dict:
        try:
            res = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
        finally:
            configure_logging("WARNING")
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    b = run("backtest", "pairs_kopep", *span, "--borrow-fee", "0.05", "--json")
    assert b["execution"]["borrow_fee"] == 0.05
    assert b["stats"]["borrow_fees"] > 100.0 and "borrow_accrued" in b["stats"]
    plain = run("backtest", "pairs_kopep", *span, "--json")
    assert "borrow_fees" not in plain["stats"]
    assert b["stats"]["final_equity"] < plain["stats"]["final_equity"]
    p = run("paper", "pairs_kopep", *span, "--borrow-fee", "0.05", "--json", "--no-progress",
            "--db", f"sqlite:///{tmp_path / 'paper.db'}")
    assert p["stats"]["borrow_fees"] == pytest.approx(b["stats"]["borrow_fees"], rel=1e-12)
    assert p["stats"]["borrow_accrued"] == pytest.approx(b["stats"]["borrow_accrued"],
                                                         rel=1e-12, abs=1e-12)
    assert p["stats"]["final_equity"] == pytest.approx(b["stats"]["final_equity"], rel=1e-9)


@pytest.mark.slow
def test_a_run_resumed_while_short_charges_what_research_does(tl) -> None:
    """Stopped a few bars into a short and resumed: the paper broker rebuilds the short's
    accrual from the stored fills and bars, so the cover carries research's fee."""
    bars = load_universe(("KO", "PEP"), "sample", "2010-01-01", "2011-12-31")
    ex = Execution(borrow_fee=0.05)
    research = backtest_portfolio(_pairs(), panel=align(bars), execution=ex)
    assert research.stats["borrow_fees"] > 0
    shorts = (research.positions < 0).any(axis=1).to_numpy()
    first_short = int(shorts.argmax())
    stop_after = first_short + 4  # bars processed before the stop
    assert shorts[first_short:stop_after].all()
    account = "resume-borrow"
    first = tl.portfolio_engine(_pairs(), bars=bars, execution=ex, account=account)
    seen: list[int] = []

    def stop(_batch) -> None:
        seen.append(1)
        if len(seen) == stop_after:
            first.request_stop("test")

    part = first.run(on_bar=stop)
    assert part.stopped == "stopped"
    second = tl.portfolio_engine(_pairs(), bars=bars, execution=ex, account=account,
                                 resume=int(part.run_id))
    second.run()
    run_id = int(part.run_id)
    stored = compare_portfolio(research, tl.store.fills(account, run_id),
                               [(p.at, float(p.equity))
                                for p in tl.store.equity_curve(account, run_id)])
    assert stored.ok, stored.to_dict()
    assert second.broker.borrow_paid == pytest.approx(research.stats["borrow_fees"], rel=1e-12)
