"""A strategy switched off through the store (API/dashboard) opens nothing; exits still run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.store.auth_repo import AuthRepo
from tradelab.testing import make_bars


def _run(tmp_path: Path, registry, disabled: bool) -> list:
    store = Store(f"sqlite:///{tmp_path / ('off.db' if disabled else 'on.db')}")
    store.upgrade()
    bars = make_bars(300, seed=5)
    engine = assemble_engine([(registry.create("sma_cross", fast=3, slow=8), "X")], ReplayFeed(bars, "X"),
                    Execution(), store=store,
                    config=EngineConfig(account="acct", kill_poll_seconds=0.0),
                    run_info={"strategy": "sma_cross", "symbol": "X", "source": "test",
                              "mode": "replay", "params": {}})
    if disabled:
        AuthRepo(store).set_strategy_enabled("acct", "sma_cross", False,
                                             at=datetime.now(UTC), by="tester")
    engine.run()
    return store.orders("acct")


def test_disabled_strategy_sends_no_entries(tmp_path: Path, registry) -> None:
    enabled = _run(tmp_path, registry, disabled=False)
    disabled = _run(tmp_path, registry, disabled=True)
    assert sum(o.side == "buy" for o in enabled) > 3
    # the flag is read at the first poll, after the first bar's strategies: nothing opens
    assert [o for o in disabled if o.side == "buy"] == []


def test_run_records_carry_wall_clock_times_not_bar_times(tmp_path: Path, registry) -> None:
    before = datetime.now(UTC)
    _run(tmp_path, registry, disabled=False)
    store = Store(f"sqlite:///{tmp_path / 'on.db'}")
    run = store.runs("acct")[-1]
    # the replayed bars are from 2020; the run itself happened just now
    assert before <= run.started_at <= run.finished_at <= datetime.now(UTC)
    assert run.last_bar_time is not None and run.last_bar_time.year < before.year
