"""``tradelab backtest`` / ``tradelab sweep``: JSON matches the library, errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import tradelab.cli.research_cmd  # noqa: F401  (registers the commands)
from tradelab.cli._app import app
from tradelab.research.backtest import backtest
from tradelab.research.sweep import sweep

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture()
def run(environ: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=environ, catch_exceptions=False)

    return invoke


def test_backtest_json_matches_library(run, spx: pd.DataFrame, registry) -> None:
    res = run("backtest", "sma_cross", "--source", "sample", "--symbol", "SPX",
              "--param", "fast=10", "--param", "slow=30", "--start", "2010-01-01",
              "--fees", "0.001", "--fixed-fees", "1", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    lib = backtest(registry.create("sma_cross", fast=10, slow=30), spx.loc["2010-01-01":],
                   fees=0.001, fixed_fees=1.0)
    for key in ("final_equity", "total_return", "n_trades", "sharpe", "max_drawdown"):
        assert out[key] == pytest.approx(lib.stats[key], rel=1e-12)
    assert len(out["trades"]) == len(lib.trades)
    assert out["trades"][0]["entry_price"] == lib.trades["entry_price"].iloc[0]


def test_backtest_human_output_and_report(run, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    res = run("backtest", "rsi_reversion", "--start", "2015-01-01", "--fill", "close",
              "--whole", "--report", str(report))
    assert res.exit_code == 0, res.output
    assert "final_equity" in res.stdout and "sharpe" in res.stdout
    assert report.is_file() and report.stat().st_size > 10_000


def test_backtest_from_csv(run) -> None:
    res = run("backtest", "sma_cross", "--csv", str(FIXTURES / "orcl-2014-yahoo.csv"),
              "-p", "fast=3", "-p", "slow=8", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["source"] == "file" and out["bars"] > 20


def test_sweep_json_matches_library(run, spx: pd.DataFrame, registry) -> None:
    res = run("sweep", "sma_cross", "--grid", "fast=5:20:5", "--grid", "slow=10,30",
              "--start", "2012-01-01", "--top", "3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    lib = sweep(registry.get("sma_cross"), spx.loc["2012-01-01":],
                {"fast": [5, 10, 15, 20], "slow": [10, 30]}, progress=False)
    assert (out["n_valid"], out["n_invalid"]) == (lib.n_valid, lib.n_invalid) == (5, 3)
    best = lib.best()
    assert out["rows"][0]["sharpe"] == pytest.approx(best["sharpe"], rel=1e-12)
    assert (out["rows"][0]["fast"], out["rows"][0]["slow"]) == (best["fast"], best["slow"])
    human = run("sweep", "sma_cross", "-g", "fast=5,10", "-g", "slow=30", "--no-progress")
    assert human.exit_code == 0 and "final_equity" in human.stdout


@pytest.mark.parametrize("args", [
    ["backtest", "nope"],
    ["backtest", "sma_cross", "-p", "fast=50", "-p", "slow=30"],
    ["backtest", "sma_cross", "-p", "fast=abc"],
    ["backtest", "sma_cross", "-p", "speed=3"],
    ["backtest", "sma_cross", "--fees", "2"],
    ["backtest", "sma_cross", "--size-type", "lots"],
    ["backtest", "sma_cross", "--fill", "tomorrow"],
    ["backtest", "sma_cross", "--symbol", "NOPE"],
    ["backtest", "sma_cross", "--csv", "/nonexistent/bars.csv"],
    ["sweep", "sma_cross", "--grid", "fast=5:1:1"],
    ["sweep", "sma_cross", "--grid", "fast"],
    ["sweep", "sma_cross", "--grid", "fast=50", "--grid", "slow=10"],
    ["sweep", "sma_cross", "--grid", "fast=5", "--metric", "profit"],
])
def test_errors_are_one_line_and_exit_2(run, args: list[str]) -> None:
    res = run(*args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert res.stdout == ""


def test_parse_grid() -> None:
    from tradelab.cli.research_cmd import parse_grid

    assert parse_grid(["fast=5:50:5"]) == {"fast": list(range(5, 55, 5))}
    assert parse_grid(["lower=20:30:2.5"]) == {"lower": [20.0, 22.5, 25.0, 27.5, 30.0]}
    assert parse_grid(["slow=20, 30,50", "x=7"]) == {"slow": ["20", "30", "50"], "x": ["7"]}
