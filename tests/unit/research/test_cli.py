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
    for key in ("final_equity", "total_return", "sharpe", "max_drawdown"):
        assert out[key] == pytest.approx(lib.stats[key], rel=1e-12)
    # one meaning of "trades": round trips and fills are counted under their own names
    assert "n_trades" not in out
    assert (out["round_trips"], out["fills"]) == (lib.stats["n_trades"], len(lib.orders))
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
    assert out["symbol"] == "orcl-2014-yahoo" and out["data_quality"]["dropped"] == 0


def _broken_csv(tmp_path: Path) -> Path:
    """The ORCL fixture with one row whose high is below its low."""
    lines = (FIXTURES / "orcl-2014-yahoo.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[2], cells[3] = cells[3], cells[2]  # High <-> Low
    lines[5] = ",".join(cells)
    bad = tmp_path / "orcl.csv"
    bad.write_text("\n".join(lines) + "\n")
    return bad


def test_policy_drop_reports_the_dropped_rows(run, tmp_path: Path) -> None:
    bad = _broken_csv(tmp_path)
    refused = run("backtest", "sma_cross", "--csv", str(bad), "-p", "fast=3", "-p", "slow=8")
    assert refused.exit_code == 2 and "high" in refused.stderr.lower()
    res = run("backtest", "sma_cross", "--csv", str(bad), "-p", "fast=3", "-p", "slow=8",
              "--policy", "drop", "--json")
    assert res.exit_code == 0, res.output
    assert "1 row(s) dropped" in res.stderr  # never silent
    out = json.loads(res.stdout)
    assert out["data_quality"]["dropped"] == 1 and out["data_quality"]["policy"] == "drop"
    text = run("backtest", "sma_cross", "--csv", str(bad), "-p", "fast=3", "-p", "slow=8",
               "--policy", "drop")
    assert text.exit_code == 0 and "1 row(s) dropped" in text.stderr
    assert "round_trips" in text.stdout and "fills" in text.stdout and "n_trades" not in text.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2016-01-01", "--end", "2015-01-01"], "error: --start 2016-01-01 is after --end 2015-01-01"),
    (["--start", "2030-01-01"], "error: no bars for SPX from sample within --start 2030-01-01"),
    (["--policy", "skip"], "error: --policy 'skip': expected raise, drop or fill"),
])
def test_bad_ranges_and_policies_say_so_in_one_line(run, args: list[str], message: str) -> None:
    for command in (["backtest", "sma_cross"], ["sweep", "sma_cross", "-g", "fast=5,10"]):
        res = run(*command, *args)
        assert res.exit_code == 2, res.output
        assert res.stderr.strip() == message


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
    assert "round_trips" in human.stdout and "n_trades" not in human.stdout
    assert all("n_trades" not in row and "round_trips" in row for row in out["rows"])


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
