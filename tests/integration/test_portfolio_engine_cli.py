"""``tradelab paper`` and ``tradelab parity`` for portfolio strategies: the same fills as
``tradelab backtest --json``, persisted; bad options are one line naming them (exit 2)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tradelab.cli.engine_cmd
import tradelab.cli.research_cmd  # noqa: F401  (registers the commands)
from tradelab.cli._app import app
from tradelab.testing import SHORT_MEMORY_SOURCE

RANGE = ("--start", "2010-01-01", "--end", "2011-12-31")
PAIR = ("--symbols", "KO,PEP", "-p", "window=40", "-p", "z_window=10", *RANGE)


@pytest.fixture()
def run(environ: dict[str, str], tmp_path: Path):
    runner = CliRunner()
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def test_paper_json_has_the_backtests_fills_and_per_symbol_figures(run) -> None:
    paper = run("paper", "pairs_kopep", *PAIR, "--json")
    assert paper.exit_code == 0, paper.output
    out = json.loads(paper.stdout)
    research = json.loads(run("backtest", "pairs_kopep", *PAIR, "--json").stdout)
    assert out["kind"] == "portfolio" and out["symbols"] == ["KO", "PEP"]
    assert out["fills"] == len(out["orders"]) == len(research["orders"]) > 0
    ours = sorted((o["time"], o["symbol"], o["side"], float(o["quantity"]), float(o["price"]))
                  for o in out["orders"])
    theirs = sorted((pd_iso(o["time"]), o["symbol"], o["side"], float(o["quantity"]),
                     float(o["price"])) for o in research["orders"])
    assert ours == theirs
    assert set(out["engine_per_symbol"]) == {"KO", "PEP"}
    assert out["history"] is None  # the pairs trade's state needs every bar
    assert float(out["equity"]) == pytest.approx(research["stats"]["final_equity"], rel=1e-9)


def test_paper_json_has_every_backtest_key_with_the_same_values(run) -> None:
    """Issue 14: ``paper --json`` holds ``backtest --json``'s keys plus the run id; the
    figures come from the engine's book by the same functions, so they match."""
    out = json.loads(run("paper", "pairs_kopep", *PAIR, "--json").stdout)
    research = json.loads(run("backtest", "pairs_kopep", *PAIR, "--json").stdout)
    assert set(research) <= set(out) and "run_id" in out
    assert set(out) - set(research) == {"run_id", "account", "cash", "equity", "history",
                                        "status", "timestamps", "total_return",
                                        "engine_per_symbol"}
    assert set(out["stats"]) == set(research["stats"])
    for key in ("bars", "start", "end", "close_only", "fills", "strategy", "params", "symbols",
                "schedule", "execution", "periods_per_year"):
        assert out[key] == research[key], key
    # the same exact book (the Decimals may differ in trailing zeros only)
    assert Decimal(out["final_equity_exact"]) == Decimal(research["final_equity_exact"])
    for key in ("final_equity", "total_return", "sharpe", "max_drawdown", "exposure_gross",
                "exposure_short", "turnover_per_year", "n_orders", "n_rebalances", "fees_paid"):
        assert out["stats"][key] == pytest.approx(research["stats"][key], rel=1e-9), key
    assert out["last_weights"].keys() == research["last_weights"].keys()
    for s, w in research["last_weights"].items():
        assert out["last_weights"][s] == pytest.approx(w, rel=1e-9)
    ours = {row["symbol"]: row for row in out["per_symbol"]}
    for row in research["per_symbol"]:
        assert ours[row["symbol"]].keys() == row.keys()
        assert ours[row["symbol"]]["pnl"] == pytest.approx(row["pnl"], rel=1e-9)
        assert ours[row["symbol"]]["orders"] == row["orders"]


def pd_iso(value: str) -> str:
    import pandas as pd

    return pd.Timestamp(value).isoformat()


def test_parity_of_a_portfolio_strategy_passes_with_every_fill(run) -> None:
    res = run("parity", "momentum_rotation", "--universe", "sp20", "-p", "top=3",
              "-p", "lookback=60", "-p", "skip=5", *RANGE, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["fills_engine"] == out["fills_research"] == len(out["orders"]) > 0
    assert out["max_equity_rel_diff"] <= 1e-9
    assert len(out["research"]["per_symbol"]) == 20
    assert out["history"] == 61  # the declared decision_window: lookback + 1


@pytest.mark.parametrize(("args", "needle"), [
    (("paper", "sma_cross", "--universe", "sp20"), "--universe/--symbols: 'sma_cross' is not a portfolio"),
    (("paper", "pairs_kopep", "--universe", "nope"), "--universe 'nope': unknown"),
    (("parity", "pairs_kopep", "--sl", "0.05"), "--sl does not apply to a portfolio strategy"),
    (("paper", "pairs_kopep", "--symbols", "KO"), "error: pairs_kopep needs symbols KO and PEP; got KO"),
    (("paper", "pairs_kopep", "--symbols", "KO,KO"), "--symbols 'KO,KO': KO given twice"),
    (("parity", "pairs_kopep", "--symbols", "PEP"), "pairs_kopep needs symbols KO and PEP; got PEP"),
    (("paper", "pairs_kopep", "--start", "2010-01-04", "--end", "2010-01-20"),
     "error: pairs_kopep: 12 bar(s) are too few to check; it reads 79 bars (its warmup)"),
])
def test_bad_portfolio_options_are_one_clear_error(run, args: tuple[str, ...], needle: str) -> None:
    res = run(*args)
    assert res.exit_code == 2
    assert needle in res.output


def test_paper_refuses_a_window_too_small_unless_forced(run, tmp_path: Path,
                                                        environ: dict[str, str]) -> None:
    """The engine hands a strategy its declared decision_window: one smaller than what its
    weights read would trade otherwise than research, so paper refuses it (exit 2)."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "short_memory.py").write_text(SHORT_MEMORY_SOURCE)
    env = {**environ, "TRADELAB__STRATEGIES__PATHS": json.dumps([str(folder)]),
           "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'refuse.db'}"}
    runner = CliRunner()
    refused = runner.invoke(app, ["paper", "short_memory", *RANGE, "--json"], env=env)
    assert refused.exit_code == 2
    assert "short_memory fails `tradelab check`: decision_window:" in refused.output
    assert "or pass --force" in refused.output and "run_id" not in refused.output
    forced = runner.invoke(app, ["paper", "short_memory", *RANGE, "--json", "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["history"] == 10
    assert "warning: running despite a failed check (--force)" in forced.stderr
