"""`tradelab paper|parity` with --direction/--sl/--tp/--trail: the backtest's meaning and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # parity imports vectorbt

import tradelab.cli.engine_cmd  # noqa: E402  (registers the commands)
import tradelab.cli.research_cmd  # noqa: E402,F401  (registers backtest)
from tradelab.cli._app import app  # noqa: E402

pytestmark = pytest.mark.slow

WINDOW = ["--source", "sample", "--symbol", "SPX", "--start", "2008-01-01", "--end", "2015-12-31",
          "--fees", "0.001", "--slippage", "0.0005"]


@pytest.fixture()
def cli(environ: dict[str, str], tmp_path: Path):
    runner = CliRunner()
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}"}

    def invoke(*args: str):
        from tradelab.monitor.logging import configure_logging

        try:
            return runner.invoke(app, list(args), env=env, catch_exceptions=False)
        finally:
            configure_logging("WARNING")

    return invoke


@pytest.mark.parametrize("sides", [["--direction", "both", "--sl", "0.03", "--tp", "0.06"],
                                   ["--direction", "short", "--trail", "0.05"]],
                         ids=["both-sl-tp", "short-trail"])
def test_paper_trades_like_the_backtest_and_says_how(cli, tmp_path: Path, sides) -> None:
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    paper = cli("paper", "sma_cross", *WINDOW, *sides, "--json", "--db", db, "--no-progress")
    assert paper.exit_code == 0, paper.output
    research = cli("backtest", "sma_cross", *WINDOW, *sides, "--json")
    assert research.exit_code == 0, research.output
    p, b = json.loads(paper.stdout), json.loads(research.stdout)
    assert p["direction"] == b["direction"] == sides[1]
    assert p["stops"] == b["stops"] and p["stops"]["sl" if "--sl" in sides else "trail"] > 0
    assert (p["round_trips"], p["fills"]) == (b["round_trips"], b["fills"]) and b["fills"] > 40
    assert p["final_equity"] == pytest.approx(b["final_equity"], rel=1e-9)
    assert {t["side"] for t in p["trades"]} >= {"short"}
    assert set(p) == set(b) | {"run_id"} and p["per_bar_stops"] == b["per_bar_stops"] == []
    assert [(o["time"], o["side"], o["quantity"]) for o in p["orders"]] == \
        [(o["time"], o["side"], o["quantity"]) for o in b["orders"]]
    assert [o["price"] for o in p["orders"]] == pytest.approx([o["price"] for o in b["orders"]],
                                                              rel=1e-12)
    assert [(t["entry_time"], t["side"], t["exit_reason"]) for t in p["trades"]] == \
        [(t["entry_time"], t["side"], t["exit_reason"]) for t in b["trades"]]
    assert {t["exit_reason"] for t in p["trades"]} & {"sl", "tp", "trail"}
    assert set(p["trades"][0]) == set(b["trades"][0])


@pytest.mark.parametrize("sides", [["--direction", "both", "--sl", "0.03", "--tp", "0.06"],
                                   ["--direction", "both", "--trail", "0.05"],
                                   ["--direction", "short"]], ids=["sl-tp", "trail", "short"])
def test_parity_with_shorts_and_stops(cli, sides) -> None:
    res = cli("parity", "sma_cross", *WINDOW, *sides, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] and out["fills"]["research"] == out["fills"]["engine"] > 40


@pytest.mark.parametrize(("args", "message"), [
    (["--direction", "sideways"], "--direction 'sideways'"),
    (["--sl", "1.5"], "--sl 1.5"),
    (["--sl", "0.02", "--trail", "0.05"], "--sl 0.02 and --trail 0.05"),
])
def test_bad_trade_options_are_one_clear_error(cli, args, message) -> None:
    res = cli("parity", "sma_cross", *WINDOW, *args)
    assert res.exit_code == 2 and message in res.output
