"""Portfolio strategies from the shell: ``backtest``, ``sweep``, ``strategies`` and ``check``
give the library's figures and every fill; bad input is one line naming it (exit 2)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tradelab.cli.research_cmd  # (registers the commands)
import tradelab.cli.strategy_cmd  # noqa: F401
from tradelab.cli._app import app
from tradelab.data.universe import load_panel
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy

ROOT = Path(__file__).resolve().parents[3]
PATHS = [ROOT / "strategies"]
RANGE = ("--start", "2015-01-01", "--end", "2018-12-31")
PAIR = ("-p", "window=40", "-p", "z_window=10")


@pytest.fixture()
def run(environ: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=environ, catch_exceptions=False)

    return invoke


def test_backtest_json_equals_library_with_every_fill(run) -> None:
    res = run("backtest", "momentum_rotation", "--universe", "sp20", *RANGE, "-p", "top=3",
              "--fees", "0.001", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    lib = backtest_portfolio(portfolio_strategy("momentum_rotation", {"top": 3}, paths=PATHS),
                             panel=load_panel("sp20", start="2015-01-01", end="2018-12-31"),
                             fees=0.001)
    assert out["kind"] == "portfolio" and out["symbols"] == list(lib.symbols)
    for key in ("final_equity", "total_return", "sharpe", "max_drawdown", "exposure_gross",
                "turnover_per_year"):
        assert out["stats"][key] == pytest.approx(lib.stats[key], rel=1e-12)
    assert out["final_equity_exact"] == str(lib.final_equity_exact)
    # every fill, exact: the orders reproduce the exact book
    assert out["fills"] == len(out["orders"]) == len(lib.orders) > 0
    first = lib.orders.iloc[0]
    assert (out["orders"][0]["symbol"], Decimal(out["orders"][0]["quantity"]),
            Decimal(out["orders"][0]["price"])) == (first["symbol"], first["quantity"],
                                                    first["price"])
    per = {row["symbol"]: row for row in out["per_symbol"]}
    assert set(per) == set(lib.symbols)
    assert sum(row["contribution"] for row in per.values()) == pytest.approx(
        out["stats"]["total_return"], abs=1e-9)


def test_backtest_defaults_to_the_strategys_universe_and_symbols_override(run) -> None:
    own = json.loads(run("backtest", "pairs_kopep", *RANGE, *PAIR, "--json").stdout)
    given = json.loads(run("backtest", "pairs_kopep", "--symbols", "ko, pep", *RANGE, *PAIR,
                           "--json").stdout)
    assert own["symbols"] == given["symbols"] == ["KO", "PEP"]
    assert own["stats"] == given["stats"]
    assert own["stats"]["exposure_short"] > 0  # the pair trades a short leg
    human = run("backtest", "pairs_kopep", *RANGE, *PAIR)
    assert human.exit_code == 0
    assert "exposure_short" in human.stdout and "PEP" in human.stdout


@pytest.mark.parametrize(("args", "named"), [
    (("backtest", "momentum_rotation", "--universe", "nasdaq"), "--universe 'nasdaq'"),
    (("backtest", "pairs_kopep", "--symbols", "KO,PEP,NOPE"), "'NOPE'"),
    (("backtest", "momentum_rotation", "--universe", "sp20", "--symbols", "KO"), "not both"),
    (("backtest", "sma_cross", "--symbols", "KO,PEP"), "'sma_cross' is not a portfolio"),
    (("backtest", "pairs_kopep", "--sl", "0.05"), "--sl"),
    (("backtest", "pairs_kopep", "--symbol", "KO"), "--symbol"),
    (("backtest", "pairs_kopep", "-p", "entry=abc"), "entry"),
    (("sweep", "pairs_kopep", "-g", "bogus=1,2"), "--grid bogus"),
    (("sweep", "pairs_kopep", "-g", "entry=2,3", "--metric", "luck"), "--metric 'luck'"),
    (("sweep", "momentum_rotation", "-g", "top=2,3", "--universe", "x"), "--universe 'x'"),
    (("check", "pairs_kopep", "--universe", "nope"), "--universe 'nope'"),
    (("backtest", "pairs_kopep", "--report", "r.html"), "--report"),
    (("sweep", "pairs_kopep", "-g", "entry=2,3", "--cluster", "local"), "--cluster"),
    (("backtest", "rotation"), "unknown strategy 'rotation'; available: donchian_breakout"),
    (("sweep", "rotation", "-g", "top=1,2"), "momentum_rotation, pairs_kopep"),
    (("backtest", "pairs_kopep", "--symbols", "KO"), "error: pairs_kopep needs symbols KO and "
                                                     "PEP; got KO"),
    (("backtest", "pairs_kopep", "--symbols", "KO,ko"), "--symbols 'KO,ko': KO given twice"),
    (("sweep", "pairs_kopep", "-g", "entry=2,3", "--symbols", "PEP,XOM"), "needs symbols KO and PEP"),
    (("check", "pairs_kopep", "--symbols", "KO"), "pairs_kopep needs symbols KO and PEP; got KO"),
    (("check", "pairs_kopep", "--start", "2010-01-04", "--end", "2010-01-20"),
     "pairs_kopep: 12 bar(s) are too few to check; it reads 79 bars (its warmup)"),
    (("check", "momentum_rotation", "--start", "2010-01-04", "--end", "2010-01-20"),
     "momentum_rotation: 12 bar(s) are too few to check; it reads 253 bars"),
])
def test_bad_input_is_one_line_naming_it(run, args: tuple[str, ...], named: str) -> None:
    res = run(*args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0]


def test_sweep_reports_each_combination_like_a_backtest(run) -> None:
    res = run("sweep", "pairs_kopep", *RANGE, *PAIR, "-g", "entry=1.5,2", "-g", "exit=0.5,1.8",
              "--metric", "total_return", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # exit 1.8 >= entry 1.5 is refused by the strategy and listed, not run
    assert (out["n_valid"], out["n_invalid"]) == (3, 1)
    assert out["invalid"][0]["entry"] == "1.5" and "exit" in out["invalid"][0]["reason"]
    returns = [row["total_return"] for row in out["rows"]]
    assert returns == sorted(returns, reverse=True)
    best = out["rows"][0]
    lib = backtest_portfolio(
        portfolio_strategy("pairs_kopep", {"window": 40, "z_window": 10, "entry": best["entry"],
                                           "exit": best["exit"]}, paths=PATHS),
        panel=load_panel("kopep", start="2015-01-01", end="2018-12-31"))
    assert best["final_equity"] == pytest.approx(lib.stats["final_equity"], rel=1e-12)
    human = run("sweep", "pairs_kopep", *RANGE, *PAIR, "-g", "entry=1.5,2")
    assert human.exit_code == 0 and "2 combinations" in human.stdout


def test_strategies_lists_both_kinds(run) -> None:
    rows = json.loads(run("strategies", "--json").stdout)
    kinds = {row["name"]: row["kind"] for row in rows}
    assert kinds["sma_cross"] == "signal"
    assert kinds["momentum_rotation"] == kinds["pairs_kopep"] == "portfolio"
    pair = next(row for row in rows if row["name"] == "pairs_kopep")
    assert pair["universe"] == ["KO", "PEP"] and pair["rebalance"] == "change"
    assert "entry" in {p["name"] for p in pair["params"]}
    text = run("strategies").stdout
    assert "pairs_kopep (portfolio on KO,PEP)" in text and "sma_cross (signal)" in text


def test_check_runs_the_weights_lookahead_check(run, tmp_path: Path, environ) -> None:
    ok = run("check", "pairs_kopep", *RANGE, *PAIR, "--samples", "6")
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("OK")
    # a strategy whose weights read tomorrow's close fails with exit 1
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "peek.py").write_text(
        "import pandas as pd\n"
        "from tradelab.strategy.portfolio import PortfolioStrategy\n\n"
        "class Peek(PortfolioStrategy):\n"
        "    name = 'peek'\n"
        "    universe = ('KO', 'PEP')\n"
        "    def weights(self, panel):\n"
        "        up = panel.close.shift(-1) > panel.close\n"
        "        return (up.astype(float) * 0.5).fillna(0.0)\n")
    runner = CliRunner()
    env = {**environ, "TRADELAB__STRATEGIES__PATHS": json.dumps([str(folder)])}
    res = runner.invoke(app, ["check", "peek", *RANGE, "--samples", "6"], env=env,
                        catch_exceptions=False)
    assert res.exit_code == 1 and "lookahead" in res.stdout
