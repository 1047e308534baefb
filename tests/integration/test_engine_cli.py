"""`tradelab paper|parity|risk` end to end, through the composition root, on real SPX bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # parity imports vectorbt

import tradelab.cli  # noqa: E402,F401  (registers every command)
from tradelab.cli._app import app  # noqa: E402
from tradelab.store import Store  # noqa: E402

pytestmark = pytest.mark.slow

PEEKING = '''
import numpy as np

from tradelab.strategy.base import Signals, Strategy


class Peeking(Strategy):
    """Buys when tomorrow closes higher: uses the future, so parity must fail."""

    name = "peeking"

    @property
    def warmup(self) -> int:
        return 2

    def signals(self, bars):
        close = bars["close"].to_numpy()
        tomorrow = np.append(close[1:], np.nan)
        return Signals(tomorrow > close * 1.01, tomorrow < close * 0.99)
'''


@pytest.fixture()
def environ(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The clean environment with the store in tmp_path: no test may touch var/tradelab.db."""
    return {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}"}


@pytest.fixture()
def cli(environ: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        from tradelab.monitor.logging import configure_logging

        try:
            return runner.invoke(app, list(args), env={**environ, **(env or {})}, catch_exceptions=False)
        finally:  # the command bound logging to the runner's stream, closed now
            configure_logging("WARNING")

    return invoke


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'engine.db'}"


def test_paper_stores_the_run_where_the_configuration_says(cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'configured.db'}"
    res = cli("paper", "sma_cross", "--source", "sample", "--symbol", "SPX", "--param", "fast=10",
              "--start", "2012-01-01", "--end", "2015-12-31", "--no-progress",
              env={"TRADELAB__STORE__URL": url, "TRADELAB__ENGINE__ACCOUNT": "configured"})
    assert res.exit_code == 0, res.output
    store = Store(url)
    run = store.runs("configured")[-1]
    assert run.status == "finished" and run.strategy == "sma_cross" and run.params["fast"] == 10
    fills = store.fills("configured", run.id)
    assert len(fills) > 10
    assert f"run id {run.id}" in res.stdout and url in res.stdout
    assert f"fills {len(fills)}" in res.stdout and "round trips " in res.stdout
    assert "trades" not in res.stdout
    assert run.summary["bars"] == len(store.equity_curve("configured", run.id))


SHARED = ["-p", "fast=5", "-p", "slow=20", "--size", "10", "--size-type", "amount", "--fees", "0.001",
          "--fixed-fees", "1", "--slippage", "0.0005", "--fill", "close", "--cash", "50000", "--whole",
          "--policy", "raise"]


@pytest.fixture()
def csv(tmp_path: Path, spx) -> list[str]:
    """Real SPX bars 2012-2015 as a Yahoo-style CSV file, with the shared options."""
    frame = spx.loc["2012-01-01":"2015-12-31"].rename(columns=str.title)
    frame.index = frame.index.strftime("%Y-%m-%d")
    path = tmp_path / "spx.csv"
    frame.assign(**{"Adj Close": frame["Close"]}).to_csv(path, index_label="Date")
    return ["--csv", str(path), *SHARED]


def test_paper_takes_the_backtest_options_and_prints_the_same_json(cli, db: str, csv: list[str]) -> None:
    import tradelab.cli.research_cmd  # noqa: F401  (registers backtest)

    paper = cli("paper", "sma_cross", *csv, "--json", "--db", db, "--no-progress")
    assert paper.exit_code == 0, paper.output
    research = cli("backtest", "sma_cross", *csv, "--json")
    assert research.exit_code == 0, research.output
    p, b = json.loads(paper.stdout), json.loads(research.stdout)
    assert set(p) == set(b) | {"run_id"}
    assert p["execution"] == b["execution"] == {"cash": 50000.0, "fees": 0.001, "fixed_fees": 1.0,
                                                 "slippage": 0.0005, "size": 10.0,
                                                 "size_type": "amount", "fill": "close",
                                                 "fractional": False, "borrow_fee": 0.0}
    assert (p["symbol"], p["source"], p["bars"]) == (b["symbol"], b["source"], b["bars"])
    assert (p["round_trips"], p["fills"]) == (b["round_trips"], b["fills"]) and b["fills"] > 20
    assert p["final_equity"] == pytest.approx(b["final_equity"], rel=1e-9)
    assert [t["entry_time"] for t in p["trades"]] == [t["entry_time"] for t in b["trades"]]
    assert len(Store(db).fills("paper", p["run_id"])) == p["fills"]


def test_parity_takes_the_backtest_options(cli, csv: list[str]) -> None:
    res = cli("parity", "sma_cross", *csv, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] and out["execution"]["size_type"] == "amount" and out["symbol"] == "spx"
    assert out["round_trips"]["research"] == out["round_trips"]["engine"] > 10
    assert out["fills"]["research"] == out["fills"]["engine"] > 20
    text = cli("parity", "sma_cross", *csv)
    assert "round trips" in text.stdout and "fills" in text.stdout and " trades" not in text.stdout


def test_paper_says_why_a_range_is_empty(cli, db: str) -> None:
    later = cli("paper", "sma_cross", "--start", "2016-01-01", "--end", "2015-01-01", "--db", db)
    assert later.exit_code == 2
    assert later.stderr.strip() == "error: --start 2016-01-01 is after --end 2015-01-01"
    empty = cli("parity", "sma_cross", "--start", "2030-01-01")
    assert empty.exit_code == 2
    assert empty.stderr.strip() == "error: no bars for SPX from sample within --start 2030-01-01"


def test_paper_refuses_a_bad_speed_and_an_unknown_strategy(cli, db: str) -> None:
    assert cli("paper", "sma_cross", "--speed", "0", "--db", db).exit_code == 2
    assert cli("paper", "nope", "--db", db, "--no-progress").exit_code == 2


def test_parity_exit_codes(cli, tmp_path: Path, project_root: Path) -> None:
    ok = cli("parity", "sma_cross", "--source", "sample", "--symbol", "SPX", "--start", "2008-01-01")
    assert ok.exit_code == 0, ok.output
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "peeking.py").write_text(PEEKING)
    paths = json.dumps([str(project_root / "strategies"), str(folder)])
    bad = cli("parity", "peeking", "--source", "sample", "--symbol", "SPX", "--start", "2015-01-01",
              env={"TRADELAB__STRATEGIES__PATHS": paths})
    assert bad.exit_code == 1, bad.output


def _engine_process(db: str, account: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_HOME": str(ROOT)}
    cmd = [sys.executable, "-m", "tradelab.engine", "sma_cross", "--db", db, "--account", account,
           "--source", "sample", "--symbol", "SPX", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _halted(order: Any) -> bool:
    return order.status == "rejected" and (order.reason or "").startswith("kill_switch")


def test_risk_halt_from_another_process_stops_new_orders(cli, db: str) -> None:
    proc = _engine_process(db, "halted", "--start", "2004-01-01", "--end", "2011-12-31",
                           "--speed", "250")
    first = proc.stdout.readline()
    assert first.startswith("run_id="), first + proc.stderr.read()
    run_id = int(first.strip().split("=")[1])
    store = Store(db)
    deadline = time.monotonic() + 60
    while len(store.orders("halted", run_id)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    res = cli("risk", "halt", "--account", "halted", "--db", db, "--reason", "test halt")
    assert res.exit_code == 0, res.output
    # The engine sees the halt within a bar: wait for its first refusal. An order approved
    # before it was committed before it left, so every such order is stored by then.
    deadline = time.monotonic() + 60
    while not any(_halted(o) for o in store.orders("halted", run_id)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    before = {o.client_order_id for o in store.orders("halted", run_id) if not _halted(o)}
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = [o for o in store.orders("halted", run_id) if o.client_order_id not in before]
    assert after, "the replay must keep deciding after the halt"
    assert all(_halted(o) for o in after)
    filled_after = {f.client_order_id for f in store.fills("halted", run_id)} & \
        {o.client_order_id for o in after}
    assert filled_after == set()
    status = cli("risk", "status", "--account", "halted", "--db", db, "--json")
    assert json.loads(status.stdout)["engaged"] is True


def test_halt_with_flatten_closes_the_position(db: str, environ: dict[str, str]) -> None:
    from tradelab.app import build
    from tradelab.config import load_config

    app_ = build(load_config(environ=environ))
    store = Store(db)
    store.upgrade()
    engine = app_.engine("sma_cross", "SPX", source="sample", start="2010-01-01", end="2012-12-31",
                         store=store, account="flat", kill_poll_seconds=0.0)
    bars = iter(engine.feed)
    for bar in bars:
        engine.step(bar)
        if engine.portfolio.position("SPX") > 0:
            break
    assert engine.portfolio.position("SPX") > 0
    # Another process (the in-process CliRunner would leave logging bound to its closed stream).
    res = subprocess.run([sys.executable, "-c", "from tradelab.cli import main; main()", "risk", "halt",
                          "--account", "flat", "--db", db, "--flatten"], cwd=ROOT, env={
                              **os.environ, **environ}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    sent = engine.broker.submissions
    engine.step(next(bars))  # sees the halt, sends the closing order
    engine.step(next(bars))  # filled at this bar's open
    assert engine.portfolio.position("SPX") == 0
    closing = engine.fills[-1]
    assert closing.side == "sell" and engine.broker.submissions == sent + 1
    for bar in bars:  # halted: whatever the strategy wants, nothing else leaves
        engine.step(bar)
    assert engine.broker.submissions == sent + 1
    engine._shutdown("finished")
    assert store.positions("flat", include_flat=False) == []


def test_resume_restores_peak_equity_from_the_stored_curve(db: str, environ: dict[str, str]) -> None:
    from tradelab.app import build
    from tradelab.config import load_config

    app_ = build(load_config(environ=environ))
    store = Store(db)
    store.upgrade()
    from tradelab.app import assemble_engine
    from tradelab.engine import ReplayFeed

    bars = app_.bars("SPX", source="sample", start="2006-01-01", end="2010-12-31")
    probe = assemble_engine([(app_.strategy("sma_cross"), "SPX")], ReplayFeed(bars, "SPX"), app_.execution)
    curve = probe.run().equity_curve  # in memory: where does the run sit below its peak?
    peak, cut = 0.0, None
    for i, (_, eq) in enumerate(curve):  # a bar well below the running peak
        peak = max(peak, eq)
        if cut is None and i > 300 and eq < 0.97 * peak:
            cut = i
    assert cut is not None

    first = app_.engine("sma_cross", "SPX", source="sample", start="2006-01-01", end="2010-12-31",
                        store=store, account="peak", flush_every=7)
    first.run(on_bar=lambda _b: first.request_stop("test") if first.bars == cut + 1 else None)
    stored = store.equity_curve("peak", first.run_id)
    stored_peak = max(p.equity for p in stored)
    assert stored[-1].equity < stored_peak  # the restart happens in a drawdown

    resumed = app_.engine("sma_cross", "SPX", source="sample", start="2006-01-01", end="2010-12-31",
                          store=store, account="peak", resume=first.run_id)
    assert resumed.portfolio.equity == stored[-1].equity
    assert resumed.risk.peak_equity == stored_peak
    assert resumed.recorder.peak == stored_peak
    resumed.run()
    after = store.equity_curve("peak", first.run_id)[len(stored)]
    expected = ((stored_peak - after.equity) / stored_peak).quantize(Decimal("1e-10"))
    if after.equity < stored_peak:
        assert after.drawdown == expected and after.drawdown > 0


def test_paper_on_a_halted_account_exits_non_zero_with_the_reason(cli, db: str) -> None:
    assert cli("paper", "sma_cross", "--source", "sample", "--symbol", "SPX", "--start", "2015-01-01",
               "--end", "2015-06-30", "--account", "held", "--db", db, "--no-progress").exit_code == 0
    assert cli("risk", "halt", "--account", "held", "--db", db, "--reason", "audit").exit_code == 0
    res = cli("paper", "sma_cross", "--source", "sample", "--symbol", "SPX", "--start", "2015-01-01",
              "--account", "held", "--db", db, "--no-progress")
    assert res.exit_code == 2
    assert "held is halted (audit" in res.output and "risk resume --account held" in res.output
    assert [r.status for r in Store(db).runs("held")] == ["finished"]  # no run was opened


def test_paper_refuses_a_strategy_failing_check_unless_forced(cli, db: str, tmp_path: Path,
                                                             project_root: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "peeking.py").write_text(PEEKING)
    env = {"TRADELAB__STRATEGIES__PATHS": json.dumps([str(project_root / "strategies"), str(folder)])}
    args = ("paper", "peeking", "--source", "sample", "--symbol", "SPX", "--start", "2015-01-01",
            "--end", "2015-12-31", "--db", db, "--no-progress")
    refused = cli(*args, env=env)
    assert refused.exit_code == 2 and "fails `tradelab check`" in refused.output
    assert "--force" in refused.output
    assert Store(db).runs() == []  # refused before a run was opened
    assert cli(*args, "--force", env=env).exit_code == 0
