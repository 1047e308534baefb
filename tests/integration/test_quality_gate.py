"""The data-quality gate end to end: a refused start, a halt on rejected messages, a halt on a stall.

Real SPX bars, the real composition root, the real replay server misbehaving on
purpose, the real ``WebsocketFeed`` and engine, and the store on disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402,F401  (registers the commands)
from tradelab.app import App, build  # noqa: E402
from tradelab.cli._app import app as cli_app  # noqa: E402
from tradelab.config import load_config  # noqa: E402
from tradelab.feeds.replay_server import Faults, ReplayServer  # noqa: E402
from tradelab.feeds.websocket import WebsocketFeed, market_backfill  # noqa: E402
from tradelab.monitor.metrics import Metrics  # noqa: E402
from tradelab.notify import attach as attach_notifier  # noqa: E402
from tradelab.store import Store  # noqa: E402

N_BARS = 400


class Notes:
    """Stands in for the notifier: records what would be announced."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []

    def notify(self, event_type: str, context: dict[str, Any], *, severity: str | None = None,
               reference: str | None = None) -> int:
        self.sent.append((event_type, dict(context), severity))
        return 1


def make_app(tmp_path: Path, environ: dict[str, str], project_root: Path, **quality: str) -> App:
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'store.db'}",
           **{f"TRADELAB__DATA__QUALITY__{k.upper()}": v for k, v in quality.items()}}
    return build(load_config(paths=[], environ=env, home=project_root))


@pytest.fixture()
def spx(environ: dict[str, str], project_root: Path, tmp_path: Path) -> pd.DataFrame:
    return make_app(tmp_path / "plain", environ, project_root).bars("SPX", source="sample")


# -- (a) refuse to start ---------------------------------------------------------------------
def test_paper_refuses_to_start_on_too_many_bad_rows(
        tmp_path: Path, environ: dict[str, str], spx: pd.DataFrame) -> None:
    bad = spx.iloc[:300].copy()
    rows = bad.index[50:80]                                   # 30 rows with high < low
    bad.loc[rows, "high"] = bad.loc[rows, "low"] * 0.9
    bad.to_csv(tmp_path / "BAD.csv")
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    env = {**environ, "TRADELAB__DATA__FILE__ROOT": str(tmp_path),
           "TRADELAB__DATA__POLICIES": '{"file": "drop"}',
           "TRADELAB__DATA__QUALITY__MAX_REJECTED": "20", "TRADELAB__STORE__URL": url}
    res = CliRunner().invoke(cli_app, ["paper", "sma_cross", "--source", "file", "--symbol", "BAD",
                                       "--no-progress"], env=env, catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert "rejected rows 30 > max_rejected 20" in res.output
    store = Store(url)
    (breach,) = store.quality.events(kind="breach")
    assert (breach.reason, breach.count, breach.run_id) == ("max_rejected", 30, None)
    assert store.quality.totals()["high_low"] == 30
    assert [r for r in store.runs() if r.status == "running"] == []
    assert store.runs() == []                                 # no run was ever started
    store.close()


# -- (b) halt on rejected messages -----------------------------------------------------------
@pytest.fixture()
def malformed_server(spx: pd.DataFrame) -> Iterator[ReplayServer]:
    server = ReplayServer({"SPX": spx.iloc[:N_BARS]}, mode="live", speed=400,
                          faults=Faults(seed=11, malformed=0.1), heartbeat=0.2).start()
    yield server
    server.stop()


def test_engine_halts_when_rejected_messages_exceed_the_limit(
        tmp_path: Path, environ: dict[str, str], project_root: Path,
        malformed_server: ReplayServer) -> None:
    app = make_app(tmp_path, environ, project_root, max_rejected="10")
    feed = WebsocketFeed(malformed_server.url, "SPX", backfill=market_backfill(app, source="sample"),
                         backoff_base=0.01, seed=3)
    engine = app.engine("sma_cross", "SPX", feed=feed)
    metrics, notes = Metrics(), Notes()
    metrics.attach(engine.bus)
    attach_notifier(engine.bus, notes, fills=False)
    result = engine.run()

    assert result.stopped == "stopped"
    assert 0 < result.bars < N_BARS                           # halted mid-run
    run = app.store.get_run(result.run_id)
    assert run is not None and run.status == "stopped"
    assert run.summary is not None
    reason = run.summary["stop_reason"]
    assert reason.startswith("data quality: ") and "> max_rejected 10" in reason
    # every rejected message is in the store under its reason, exactly as the feed counted it
    assert sum(feed.rejected.values()) > 10
    assert app.store.quality.totals(result.run_id) == feed.rejected
    (breach,) = app.store.quality.events(result.run_id, kind="breach")
    assert breach.reason == "max_rejected" and breach.count > 10
    assert metrics.value("tradelab_data_quality_breaches_total",
                         {"threshold": "max_rejected", "action": "halt"}) == 1
    source = breach.source
    for why, n in feed.rejected.items():
        assert metrics.value("tradelab_data_quality_total", {
            "kind": "rejected", "source": source, "symbol": "SPX", "reason": why}) == n
    alerts = [(e, c) for e, c, _ in notes.sent if e == "risk_alert"]
    assert len(alerts) == 1 and alerts[0][1]["rule"] == "data_quality"
    assert alerts[0][1]["halts_trading"] is True
    assert [e.rule for e in app.store.risk_events("paper")] == ["data_quality"]


# -- (c) halt on a stall ---------------------------------------------------------------------
@pytest.fixture()
def stalling_server(spx: pd.DataFrame) -> Iterator[ReplayServer]:
    server = ReplayServer({"SPX": spx.iloc[:N_BARS]}, mode="live",
                          faults=Faults(seed=5, stall_after=60, stall_seconds=8), heartbeat=0.2).start()
    yield server
    server.stop()


def test_engine_halts_when_the_feed_goes_stale(
        tmp_path: Path, environ: dict[str, str], project_root: Path,
        stalling_server: ReplayServer) -> None:
    app = make_app(tmp_path, environ, project_root, max_stale_seconds="0.5")
    # The feed's own heartbeat timeout is longer: the gate must notice first.
    feed = WebsocketFeed(stalling_server.url, "SPX", backfill=market_backfill(app, source="sample"),
                         stale_after=20, seed=3)
    engine = app.engine("sma_cross", "SPX", feed=feed)
    started = time.monotonic()
    result = engine.run()

    assert time.monotonic() - started < 8                     # before the server woke up
    assert result.stopped == "stopped" and result.bars == 60
    run = app.store.get_run(result.run_id)
    assert run is not None and run.status == "stopped" and run.summary is not None
    assert "> max_stale_seconds 0.5" in run.summary["stop_reason"]
    (breach,) = app.store.quality.events(result.run_id, kind="breach")
    assert breach.reason == "max_stale_seconds"
    (stale,) = app.store.quality.events(result.run_id, kind="stale")
    assert stale.reason == "no_fresh_bar"
