"""``--borrow-fee`` on the command line: one meaning in backtest, paper and parity, shown
in ``--json``; a sweep's rows (single-symbol or portfolio) charge it as their backtests
do; a bad value and a real venue are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402  (registers paper, parity)
import tradelab.cli.live_cmd  # noqa: E402
import tradelab.cli.research_cmd  # noqa: E402,F401  (registers backtest, sweep)
from tradelab.cli._app import app  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture()
def cli(environ: dict[str, str], tmp_path: Path):
    runner = CliRunner()
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}"}

    def invoke(*args: str, extra: dict[str, str] | None = None):
        from tradelab.monitor.logging import configure_logging

        try:
            return runner.invoke(app, list(args), env={**env, **(extra or {})},
                                 catch_exceptions=False)
        finally:
            configure_logging("WARNING")

    return invoke


@pytest.fixture()
def csv(tmp_path: Path, spx) -> list[str]:
    """Real SPX bars 2012-2015 as a CSV file, sized in units so sizes do not move."""
    frame = spx.loc["2012-01-01":"2015-12-31"].rename(columns=str.title)
    frame.index = frame.index.strftime("%Y-%m-%d")
    path = tmp_path / "spx.csv"
    frame.assign(**{"Adj Close": frame["Close"]}).to_csv(path, index_label="Date")
    return ["--csv", str(path), "-p", "fast=5", "-p", "slow=20", "--size", "10",
            "--size-type", "amount", "--direction", "short"]


def test_backtest_and_paper_charge_the_same_borrow_fee(cli, csv: list[str], tmp_path: Path) -> None:
    research = cli("backtest", "sma_cross", *csv, "--borrow-fee", "0.05", "--json")
    assert research.exit_code == 0, research.output
    b = json.loads(research.stdout)
    assert b["execution"]["borrow_fee"] == 0.05
    assert b["borrow_fees"] > 0 and "borrow_accrued" in b
    plain = json.loads(cli("backtest", "sma_cross", *csv, "--json").stdout)
    assert plain["execution"]["borrow_fee"] == 0.0 and "borrow_fees" not in plain
    assert b["final_equity"] < plain["final_equity"]
    paper = cli("paper", "sma_cross", *csv, "--borrow-fee", "0.05", "--json", "--no-progress",
                "--db", f"sqlite:///{tmp_path / 'paper.db'}")
    assert paper.exit_code == 0, paper.output
    p = json.loads(paper.stdout)
    assert set(p) == set(b) | {"run_id"}
    assert p["execution"] == b["execution"]
    assert p["final_equity"] == pytest.approx(b["final_equity"], rel=1e-9)
    assert p["borrow_fees"] == pytest.approx(b["borrow_fees"], rel=1e-9)
    assert p["borrow_accrued"] == pytest.approx(b["borrow_accrued"], rel=1e-9, abs=1e-9)
    parity = cli("parity", "sma_cross", *csv, "--borrow-fee", "0.05", "--json")
    assert parity.exit_code == 0, parity.output
    report = json.loads(parity.stdout)
    assert report["ok"] and report["execution"]["borrow_fee"] == 0.05
    assert report["equity"]["engine"] == pytest.approx(b["final_equity"], rel=1e-9)


@pytest.mark.parametrize("value", ["-0.01", "nan"])
def test_a_bad_borrow_fee_is_one_clear_error(cli, csv: list[str], value: str) -> None:
    res = cli("backtest", "sma_cross", *csv, "--borrow-fee", value)
    assert res.exit_code == 2
    assert f"--borrow-fee {float(value)}: must be a rate >= 0" in res.output


def test_a_non_numeric_borrow_fee_names_the_option(cli, csv: list[str]) -> None:
    res = cli("backtest", "sma_cross", *csv, "--borrow-fee", "three")
    assert res.exit_code == 2
    assert "Invalid value for '--borrow-fee'" in res.output and "valid number" in res.output


def test_a_sweep_row_charges_what_its_backtest_charges(cli, csv: list[str]) -> None:
    sweep = cli("sweep", "sma_cross", *csv, "--grid", "fast=5,10", "--borrow-fee", "0.05",
                "--json")
    assert sweep.exit_code == 0, sweep.output
    rows = {row["fast"]: row for row in json.loads(sweep.stdout)["rows"]}
    assert set(rows) == {5, 10}
    for fast, row in rows.items():
        args = [a if a != "fast=5" else f"fast={fast}" for a in csv]
        one = json.loads(cli("backtest", "sma_cross", *args, "--borrow-fee", "0.05",
                             "--json").stdout)
        assert one["borrow_fees"] > 0
        assert row["final_equity"] == pytest.approx(one["final_equity"], rel=1e-12)
        assert row["round_trips"] == one["round_trips"]


def test_a_portfolio_sweep_row_is_its_backtest_with_the_borrow_fee(cli) -> None:
    span = ["--start", "2010-01-01", "--end", "2014-12-31", "--borrow-fee", "0.05", "--json"]
    swept = cli("sweep", "pairs_kopep", "--grid", "entry=1.5,2", *span)
    assert swept.exit_code == 0, swept.output
    rows = {row["entry"]: row for row in json.loads(swept.stdout)["rows"]}
    assert set(rows) == {1.5, 2.0}
    for entry, row in rows.items():
        one = json.loads(cli("backtest", "pairs_kopep", "-p", f"entry={entry}", *span).stdout)
        assert one["stats"]["borrow_fees"] > 0
        assert row["final_equity"] == one["stats"]["final_equity"]
        assert row["n_orders"] == one["stats"]["n_orders"]


def test_live_refuses_a_borrow_fee(cli, csv: list[str]) -> None:
    live = cli("live", "sma_cross", "--broker", "alpaca", *csv, "--borrow-fee", "0.05",
               "--confirm", extra={"TRADELAB__LIVE__ENABLED": "true"})
    assert live.exit_code == 2
    assert "a real venue bills borrow itself" in live.output
