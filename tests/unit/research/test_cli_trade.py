"""``tradelab backtest|sweep --direction --sl --tp --trail --time-stop``: the library's
meaning, every fill in the JSON, and one clear line (exit 2) for a bad value."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import tradelab.cli.research_cmd  # noqa: F401  (registers the commands)
from tradelab.cli._app import app
from tradelab.research.backtest import backtest

SPX = ("--source", "sample", "--symbol", "SPX", "--start", "2013-01-01")


@pytest.fixture()
def run(environ: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=environ, catch_exceptions=False)

    return invoke


def test_backtest_json_has_direction_stops_and_every_fill(run, spx: pd.DataFrame,
                                                           registry) -> None:
    res = run("backtest", "sma_cross", *SPX, "--direction", "short", "--sl", "0.04",
              "--tp", "0.1", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    lib = backtest(registry.create("sma_cross"), spx.loc["2013-01-01":], direction="short",
                   sl=0.04, tp=0.1)
    assert out["direction"] == "short"
    assert out["stops"] == {"sl": 0.04, "tp": 0.1, "trail": None, "time_bars": None}
    assert out["final_equity"] == lib.stats["final_equity"]
    assert len(out["orders"]) == out["fills"] == len(lib.orders)
    assert [o["price"] for o in out["orders"]] == lib.orders["price"].tolist()
    assert {t["side"] for t in out["trades"]} == {"short"}


def test_backtest_text_names_direction_and_stops(run) -> None:
    res = run("backtest", "sma_cross", *SPX, "--direction", "both", "--trail", "0.05")
    assert res.exit_code == 0, res.output
    assert "direction both, trail 0.05" in res.stdout


def test_sweep_takes_the_same_options(run, spx: pd.DataFrame, registry) -> None:
    res = run("sweep", "sma_cross", *SPX, "-g", "fast=5,10", "-g", "slow=30",
              "--direction", "short", "--sl", "0.03", "--no-progress", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["direction"] == "short" and out["stops"]["sl"] == 0.03
    row = next(r for r in out["rows"] if r["fast"] == 10)
    lib = backtest(registry.create("sma_cross", fast=10, slow=30), spx.loc["2013-01-01":],
                   direction="short", sl=0.03)
    assert row["final_equity"] == pytest.approx(lib.stats["final_equity"], rel=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    (("--direction", "sideways"), "error: --direction 'sideways': expected long, short or both"),
    (("--sl", "1.5"), "error: --sl 1.5: must be a fraction in (0, 1)"),
    (("--sl", "0.02", "--trail", "0.05"),
     "error: --sl 0.02 and --trail 0.05: the trailing stop is the stop-loss; give one of them"),
    (("--time-stop", "0"), "error: --time-stop 0: must be a whole number >= 1"),
])
@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_bad_trade_options_exit_2_with_one_line(run, command: str, args: tuple,
                                                message: str) -> None:
    grid = ("-g", "fast=5,10") if command == "sweep" else ()
    res = run(command, "sma_cross", *SPX, *grid, *args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), res.stderr


def test_sweep_grid_over_stop_fractions(run) -> None:
    res = run("sweep", "sma_cross", *SPX, "-g", "fast=5,10", "-g", "sl=0.02,0.05",
              "--direction", "short", "--no-progress", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert sorted((r["fast"], r["sl"]) for r in rows) == [(5, 0.02), (5, 0.05), (10, 0.02),
                                                         (10, 0.05)]
    bad = run("sweep", "sma_cross", *SPX, "-g", "sl=0.02,abc")
    assert bad.exit_code == 2 and "sl = ['0.02', 'abc']: expected fractions" in bad.stderr
    # a value no stop can take is refused, not skipped as an invalid combination
    negative = run("sweep", "sma_cross", *SPX, "-g", "fast=5,10", "-g", "sl=-0.1,0.05")
    assert negative.exit_code == 2, negative.output
    assert negative.stderr.strip().splitlines() == [
        "error: grid sl = -0.1: must be a fraction in (0, 1)"]


def test_backtest_with_a_time_stop_is_the_librarys(run, spx: pd.DataFrame, registry) -> None:
    res = run("backtest", "sma_cross", *SPX, "--direction", "both", "--time-stop", "10",
              "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    lib = backtest(registry.create("sma_cross"), spx.loc["2013-01-01":], direction="both",
                   time_stop=10)
    assert out["stops"] == {"sl": None, "tp": None, "trail": None, "time_bars": 10}
    assert out["final_equity"] == lib.stats["final_equity"]
    assert [o["time"] for o in out["orders"]] == [t.isoformat() for t in lib.orders["time"]]
