"""A portfolio strategy paper-traded on a live multi-symbol feed (issue 13): KO and PEP
served over a real loopback websocket (:class:`~tradelab.feeds.replay_server.ReplayServer`).

On a clean stream the live run trades exactly like the replay of the same bars. When
one symbol's bar arrives after a later time stamp's bars, that time stamp is traded
without it (the symbol is missing: last close held, not traded), the bar is counted and
stored as data quality, and the run equals the replay of the bars without that one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402,F401  (registers the commands)
from tradelab.cli._app import app  # noqa: E402
from tradelab.feeds.replay_server import ReplayServer  # noqa: E402

START, END = "2010-01-01", "2011-06-30"
PARAMS = {"window": 40, "z_window": 10}
PAIR = ("--symbols", "KO,PEP", "-p", "window=40", "-p", "z_window=10", "--source", "sample",
        "--start", START, "--end", END, "--json")


@pytest.fixture()
def tl(environ: dict[str, str], tmp_path: Path) -> Any:
    from tradelab.app import build
    from tradelab.config import load_config

    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'api.db'}"}
    return build(load_config(environ=env, home=ROOT))


@pytest.fixture()
def bars(tl: Any) -> dict[str, pd.DataFrame]:
    return {s: tl.bars(s, source="sample", start=START, end=END) for s in ("KO", "PEP")}


@pytest.fixture()
def serve():
    started: list[ReplayServer] = []

    def start(frames: dict[str, pd.DataFrame]) -> ReplayServer:
        server = ReplayServer(frames, heartbeat=0.2)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _orders(out: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(o["time"], o["symbol"], o["side"], o["quantity"], o["price"]) for o in out["orders"]]


def test_paper_on_a_websocket_feed_of_the_pair_trades_like_its_replay(
        environ: dict[str, str], tmp_path: Path, bars: dict[str, pd.DataFrame], serve) -> None:
    runner = CliRunner()
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    server = serve(bars).start()
    live = runner.invoke(app, ["paper", "pairs_kopep", "--feed", server.url, *PAIR], env=env,
                         catch_exceptions=False)
    assert live.exit_code == 0, live.output
    replay = runner.invoke(app, ["paper", "pairs_kopep", *PAIR], env=env, catch_exceptions=False)
    assert replay.exit_code == 0, replay.output
    ours, theirs = json.loads(live.stdout), json.loads(replay.stdout)
    assert _orders(ours) == _orders(theirs) and len(ours["orders"]) > 0
    assert ours["equity"] == theirs["equity"] and ours["cash"] == theirs["cash"]
    assert ours["timestamps"] == theirs["timestamps"] == len(bars["KO"])
    assert ours["bars"] == sum(len(b) for b in bars.values())
    stamps = ours["stamps"]
    assert stamps["late"] == stamps["cutoff"] == 0
    assert stamps["complete"] + stamps["end"] == ours["timestamps"]
    assert ours["feed"] == server.url and ours["status"] == "finished"


def test_a_bar_arriving_after_a_later_time_stamp_is_counted_and_its_symbol_missing(
        tl: Any, bars: dict[str, pd.DataFrame], serve) -> None:
    server = serve(bars)
    # KO's bar of day k reaches the engine after PEP's bars of days k+1 and k+2: deeper
    # than the feed's reorder buffer (one bar), so day k is complete (superseded by k+1)
    # without it. KO's own bars stay in order, so the feed delivers it.
    k = 150
    t_k = bars["KO"].index[k]
    line = server.timeline
    ko = [i for i, row in enumerate(line) if row[1] == "KO" and row[0] >= t_k][:3]
    pep = [i for i, row in enumerate(line) if row[1] == "PEP" and row[0] >= t_k][:3]
    moved = [line[i] for i in ko]
    kept = [row for i, row in enumerate(line) if i not in set(ko)]
    at = kept.index(line[pep[2]]) + 1
    server.timeline = kept[:at] + moved + kept[at:]
    server.start()
    feed = tl.feed(server.url, ["KO", "PEP"], source="sample", start=START)
    engine = tl.portfolio_engine("pairs_kopep", params=PARAMS, feed=feed, universe="KO,PEP",
                                 source="sample", close_only=True, account="live")
    result = engine.run()
    stats = engine.feed.stats()
    assert stats["late"] == 1 and stats["late_by_symbol"] == {"KO": 1}
    assert stats["superseded"] == 1 and stats["cutoff"] == 0

    without = {"KO": bars["KO"].drop(t_k), "PEP": bars["PEP"]}
    replay = tl.portfolio_engine("pairs_kopep", params=PARAMS, bars=without, source="sample",
                                 persist=False).run()
    assert len(result.fills) > 0
    assert [(f.at, f.symbol, f.side, f.quantity, f.price) for f in result.fills] == \
        [(f.at, f.symbol, f.side, f.quantity, f.price) for f in replay.fills]
    assert result.equity_curve == replay.equity_curve and result.equity == replay.equity
    assert result.bars == sum(len(b) for b in bars.values()) - 1  # the late bar not applied
    stored = tl.store.quality.totals(int(result.run_id), kind="dropped")
    assert stored["late_bar"] == 1


def test_a_stop_during_a_step_completes_the_time_stamp_pending(
        tl: Any, bars: dict[str, pd.DataFrame]) -> None:
    """PEP has no bar on day 1, so KO's bar of day 2 completes day 1 and waits as day 2's
    first bar; the stop requested while day 1 is processed steps day 2 with what it has
    (KO) before the run ends: PEP's day-2 bar never reached the engine."""
    from tradelab.feeds.replay import ReplayFeed

    ko, pep = bars["KO"].iloc[:3], bars["PEP"].iloc[:3]
    d = list(ko.index)
    feed = ReplayFeed({"KO": ko, "PEP": pep.drop(d[1])})
    engine = tl.portfolio_engine("pairs_kopep", params=PARAMS, feed=feed, universe="KO,PEP",
                                 close_only=True, persist=False)

    def on_stamp(batch: Any) -> None:
        if batch[0].time == d[1].to_pydatetime():
            engine.request_stop("test")

    result = engine.run(on_bar=on_stamp)
    assert result.stopped == "stopped"
    assert [t for t, _ in result.equity_curve] == [x.to_pydatetime() for x in d]
    assert result.bars == 4  # KO and PEP of day 0, KO of days 1 and 2
    stats = engine.feed.stats()
    assert stats["superseded"] == 1 and stats["end"] == 1 and stats["late"] == 0
