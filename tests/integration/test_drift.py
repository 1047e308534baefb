"""Live-vs-research drift on real engine runs in a real SQLite store: the bars a run received
are recorded once each (also across a SIGKILL and a resume), a paper run has zero drift
over its own bars, and injected differences land in the right cause; `tradelab parity
--run` exit codes and its notification."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # research imports vectorbt

from tests.integration.test_durability import _engine_cmd, _finish, _wait_for  # noqa: E402
from tests.unit.notify.endpoints import HttpReceiver  # noqa: E402
from tradelab.cli import app as cli_app  # noqa: E402
from tradelab.drift_run import run_drift  # noqa: E402
from tradelab.store import Store  # noqa: E402
from tradelab.store.run_bars_repo import correct_run_bar, run_bar_count, run_bars  # noqa: E402

pytestmark = pytest.mark.slow
START, END = "2012-01-01", "2014-12-31"
EPS = 1e-6  # money: the engine books 10 decimals, research computes in floats


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("drift")
    return {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp / "cache"),
            "PATH": os.environ.get("PATH", ""), "TRADELAB__STORE__URL": f"sqlite:///{tmp / 'drift.db'}"}


@pytest.fixture(scope="module")
def tl(env: dict[str, str]):
    from tradelab.app import build
    from tradelab.config import load_config

    return build(load_config(environ=env, home=ROOT))


@pytest.fixture(scope="module")
def store(tl) -> Store:
    return tl.store


def _run(tl, store: Store, account: str, **kw) -> int:
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    engine = tl.engine("sma_cross", "SPX", source="sample", store=store, account=account,
                       flush_every=40, **kw)
    return int(engine.run().run_id)


@pytest.fixture(scope="module")
def paper(tl, store: Store) -> int:
    return _run(tl, store, "paper")


@pytest.fixture(scope="module")
def costly(tl, store: Store) -> int:
    """A run that paid more than research assumes: started with the [research] convention
    (stored with it, so research replays with it), its venue charged slippage and double fees."""
    venue = tl.broker("paper", replace(tl.execution, slippage=0.001, fees=0.001), {"SPX"})
    return _run(tl, store, "costly", broker=venue)


def test_each_bar_the_run_processed_is_recorded_once_as_received(tl, store: Store, paper: int) -> None:
    run = store.get_run(paper)
    rows = run_bars(store, paper)
    source = tl.bars("SPX", source="sample", start=START, end=END)
    assert len(rows) == run.summary["bars"] == len(source) == len(store.equity_curve("paper", paper))
    assert rows[-1]["at"] == run.last_bar_time
    assert [r["at"] for r in rows] == [t.to_pydatetime() for t in source.index]
    first = rows[0]
    assert (first["open"], first["close"], first["volume"]) == tuple(
        float(source.iloc[0][c]) for c in ("open", "close", "volume"))


def test_a_paper_run_has_zero_drift_over_its_own_bars(tl, store: Store, paper: int) -> None:
    rep = run_drift(tl, paper, store=store)
    assert len(rep.rows) == len(store.fills("paper", paper)) > 10
    assert all(r.kind == "match" and r.cause == "none" for r in rep.rows)
    assert abs(rep.gap) < EPS and all(abs(v) < EPS for v in rep.by_cause.values())
    assert rep.initial_cash == tl.execution.cash and not rep.exceeded
    assert rep.data is not None and rep.data.compared == rep.bars and rep.data.differing == 0
    assert rep.data.effect == 0


def test_slippage_and_fees_are_attributed_to_price_fees_and_sizing(tl, store: Store, costly: int) -> None:
    rep = run_drift(tl, costly, store=store)
    causes = rep.by_cause
    assert rep.gap < -1000 and rep.exceeded  # ~4% of 100,000 over three years
    assert causes["price"] < 0 and causes["fees"] < 0 and causes["timing"] == 0
    # entries sized at the slipped price buy fewer units: a (small) quantity difference
    assert abs(causes["quantity"]) < abs(causes["price"]) / 10
    assert abs(causes["other"]) < EPS
    assert all(r.kind == "match" for r in rep.rows)
    # the same convention on the research side: nothing left
    same = run_drift(tl, costly, store=store, execution=replace(tl.execution, slippage=0.001, fees=0.001))
    assert abs(same.gap) < EPS and not same.differences


def test_bars_the_run_received_differently_are_data_differences(tl, store: Store) -> None:
    bars = tl.bars("SPX", source="sample", start=START, end=END).copy()
    bars.iloc[200:260, :4] *= 0.93  # a bad stretch from the feed: signals change on it
    run_id = _run(tl, store, "baddata", bars=bars)
    rep = run_drift(tl, run_id, store=store)
    # the run is what research says over what the run received ...
    assert abs(rep.gap) < EPS and not rep.differences
    # ... and the data section says where that differs from the source, and what it cost
    assert rep.data is not None and rep.data.differing == 60 and rep.data.missing == 0
    assert rep.data.max_abs_diff > 50 and rep.data.effect is not None and abs(rep.data.effect) > 1


def test_a_bar_edited_in_the_store_shows_at_its_trade(tl, store: Store) -> None:
    run_id = _run(tl, store, "edited")
    fill = store.fills("edited", run_id)[0]
    bar = next(r for r in run_bars(store, run_id) if r["at"] == fill.at)
    assert correct_run_bar(store, run_id, "SPX", fill.at, open=bar["open"] + 1.0)
    rep = run_drift(tl, run_id, store=store)
    row = next(r for r in rep.rows if r.run is not None and r.run.at == fill.at)
    assert row.cause == "price" and row.price == pytest.approx(float(fill.quantity), rel=1e-6)
    assert rep.data is not None and rep.data.differing == 1 and rep.data.max_abs_diff == pytest.approx(1.0)


def _cli(env: dict[str, str], *args: str, extra: dict[str, str] | None = None):
    from tradelab.monitor.logging import configure_logging

    try:
        return CliRunner().invoke(cli_app, list(args), env={**env, **(extra or {})}, catch_exceptions=False)
    finally:
        configure_logging("WARNING")


def test_parity_run_exit_codes_and_the_drift_alert(env: dict[str, str], paper: int, costly: int) -> None:
    ok = _cli(env, "parity", "--run", str(paper), "--json")
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["run_id"] == paper and not body["exceeded"] and body["alerted"] == 0
    assert body["trades"]["differing"] == 0 and len(body["rows"]) == body["trades"]["run"]
    receiver = HttpReceiver()
    try:
        bad = _cli(env, "parity", "--run", str(costly), "--json", extra={
            "TRADELAB__NOTIFY__CHANNELS__DESK__URL": receiver.url("desk")})
        assert bad.exit_code == 1, bad.output
        body = json.loads(bad.stdout)
        assert body["exceeded"] and body["alerted"] == 1 and body["by_cause"]["price"] < 0
        got = receiver.wait_for(1)
        text = got[0].get("title", "") + got[0].get("message", "")
        assert "drift" in text and f"run {costly}" in text
    finally:
        receiver.close()
    loose = _cli(env, "parity", "--run", str(costly), "--threshold", "0.5")
    assert loose.exit_code == 0 and "threshold 50.0000%: within" in loose.stdout
    assert _cli(env, "parity", "--run", "999").exit_code == 2
    assert _cli(env, "parity").exit_code == 2


def test_a_resume_after_sigkill_records_each_bar_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    store = Store(url)
    proc = _engine_cmd(url, "victim", "--speed", "2500")
    first = proc.stdout.readline()
    assert first.startswith("run_id="), first + proc.stderr.read()
    run_id = int(first.strip().split("=")[1])
    _wait_for(lambda: run_bar_count(store, run_id) >= 500, "500 recorded bars")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    recorded = run_bar_count(store, run_id)
    assert run_bars(store, run_id)[-1]["at"] == store.get_run(run_id).last_bar_time  # same commits
    code, _, err = _finish(_engine_cmd(url, "victim", "--resume", str(run_id)))
    assert code == 0, err
    run = store.get_run(run_id)
    rows = run_bars(store, run_id)
    assert len(rows) == run.summary["bars"] > recorded
    assert len({r["at"] for r in rows}) == len(rows) == len(store.equity_curve("victim", run_id))
    assert rows[-1]["at"] == run.last_bar_time
    store.close()


def test_run_bars_on_both_backends_and_a_rewritten_bar_is_ignored(store_url: str, spx) -> None:
    """The engine's flush (SQLite: driver level; PostgreSQL: the Transaction path) writes one
    row per bar; a bar written again (same run, symbol, time) leaves the first one."""
    from tradelab.app import assemble_engine
    from tradelab.engine import EngineConfig, ReplayFeed
    from tradelab.execution import Execution
    from tradelab.store.bar_sql import BarWriter

    store = Store(store_url)
    store.upgrade()
    bars = spx.iloc[-300:]
    engine = assemble_engine([(_sma(), "SPX")], ReplayFeed(bars, "SPX"), Execution(), store=store,
                             config=EngineConfig(account="backend", flush_every=64))
    result = engine.run()
    rows = run_bars(store, int(result.run_id))
    assert len(rows) == len(bars) == run_bar_count(store, int(result.run_id))
    assert [r["close"] for r in rows] == bars["close"].tolist()
    first = rows[0]
    again = ("SPX", first["at"], 1.0, 1.0, 1.0, 1.0, 1.0)
    with store.transaction() as tx:
        BarWriter(tx._conn.dialect).write_connection(tx._conn, int(result.run_id), [again])
    assert run_bars(store, int(result.run_id))[0] == first
    store.close()


def _sma():
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False).create("sma_cross")


def test_orders_the_run_decided_but_never_filled_are_missed_fills(env: dict[str, str], store: Store) -> None:
    """Risk denies every entry of this run (max_order_notional): research's round trips are
    missed fills (quantity), not signal differences; the run decided each of them."""
    from tradelab.app import build
    from tradelab.config import load_config

    strict = build(load_config(environ={**env, "TRADELAB__RISK__MAX_ORDER_NOTIONAL": "50000"}, home=ROOT))
    run_id = _run(strict, store, "denied")
    assert not store.fills("denied", run_id) and store.orders("denied", run_id)
    rep = run_drift(strict, run_id, store=store)
    assert rep.rows and all(r.kind == "missed" and r.run is None for r in rep.rows)
    causes = rep.by_cause
    assert causes["quantity"] == pytest.approx(rep.gap, abs=EPS) and causes["timing"] == 0


def test_fills_a_bar_early_are_timing(tl, store: Store) -> None:
    """The run's venue filled at the signal bar's close, research at the next open (the run's
    convention): every trade is the
    same trade one bar apart, and the whole gap is timing."""
    run_id = _run(tl, store, "early", broker=tl.broker("paper", replace(tl.execution, fill="close"),
                                                      {"SPX"}))
    rep = run_drift(tl, run_id, store=store)
    assert rep.rows and all(r.kind == "timing" for r in rep.rows)
    assert all(r.run is not None and r.research is not None and r.run.at < r.research.at for r in rep.rows)
    assert rep.by_cause["timing"] == pytest.approx(rep.gap, abs=EPS) != 0
