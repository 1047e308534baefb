"""The daily summary: computed from a real engine run in the store, delivered for real."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.notify.endpoints import HttpReceiver
from tradelab.app import assemble_engine
from tradelab.cli import app
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.notify.summary import daily_summary
from tradelab.store import Store
from tradelab.strategy.registry import StrategyRegistry


@pytest.fixture()
def traded(tmp_path: Path, spx, project_root: Path) -> tuple[str, Store]:
    url = f"sqlite:///{tmp_path / 'summary.db'}"
    store = Store(url)
    store.upgrade()
    reg = StrategyRegistry.discover([project_root / "strategies"], entry_points=False)
    bars = spx.loc["2018-01-01":"2018-12-31"]
    assemble_engine([(reg.create("sma_cross", fast=5, slow=20), "SPX")], ReplayFeed(bars, "SPX"),
           Execution(), store=store, config=EngineConfig(account="acct"),
           run_info={"strategy": "sma_cross", "symbol": "SPX", "source": "sample",
                     "mode": "replay", "params": {}}).run()
    return url, store


def test_summary_matches_the_stored_day(traded: tuple[str, Store]) -> None:
    _, store = traded
    fills = store.fills("acct")
    day = fills[-1].at.date()
    s = daily_summary(store, "acct", day)
    curve = store.equity_curve("acct")
    today = [p for p in curve if p.at.date() == day]
    earlier = [p for p in curve if p.at.date() < day]
    assert s["equity"] == today[-1].equity
    assert s["day_pnl"] == today[-1].equity - earlier[-1].equity
    assert s["fills"] == sum(f.at.date() == day for f in fills) >= 1
    assert daily_summary(store, "acct", date(2030, 1, 1))["fills"] == 0
    with pytest.raises(KeyError, match="nobody"):
        daily_summary(store, "nobody", day)


def test_cli_sends_the_summary_to_a_local_endpoint(traded: tuple[str, Store], project_root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = traded
    day = store.fills("acct")[-1].at.date()
    receiver = HttpReceiver()
    try:
        monkeypatch.setenv("TRADELAB_HOME", str(project_root))
        monkeypatch.setenv("TRADELAB__STORE__URL", url)
        monkeypatch.setenv("TRADELAB__NOTIFY__CHANNELS__OPS__URL", receiver.url("ops"))
        result = CliRunner().invoke(app, ["notify", "summary", "--account", "acct",
                                          "--day", day.isoformat()])
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout[result.stdout.index("{"):])
        assert shown["fills"] >= 1
        got = receiver.wait_for(1)
        assert got[0]["path"] == "/ops"
        assert day.isoformat() in got[0]["title"] and "acct" in got[0]["title"]
        bad = CliRunner().invoke(app, ["notify", "summary", "--account", "nobody"])
        assert bad.exit_code == 2
    finally:
        receiver.close()
