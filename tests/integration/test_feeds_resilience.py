"""The live feed under fire: real SPX bars through a faulty websocket into the real engine.

The replay server (live mode, like a venue) drops the connection several times,
skipping bars while the client is away, and injects duplicates, reordering and
malformed messages. The engine must see exactly the source bars, in order, once
each (gaps backfilled through the cache-backed MarketData), and every rejected
message must be counted under the reason it was injected with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tradelab.app import App, build
from tradelab.config import load_config
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.websocket import WebsocketFeed, market_backfill
from tradelab.interfaces import Bar

N_BARS = 400


@pytest.fixture()
def app(tmp_path: Path, environ: dict[str, str], project_root: Path) -> App:
    """The real composition root (shipped strategies) on a private store and cache."""
    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'store.db'}"}
    return build(load_config(paths=[], environ=env, home=project_root))


@pytest.fixture()
def source(app: App) -> pd.DataFrame:
    """A few hundred real S&P 500 daily bars through the app's data service."""
    return app.bars("SPX", source="sample").iloc[:N_BARS]


@pytest.fixture()
def faulty_server(source: pd.DataFrame) -> Iterator[ReplayServer]:
    faults = Faults(seed=7, drop_after=(45, 60, 30, 80), gap_on_drop=7, duplicate=0.05,
                    reorder=0.05, malformed=0.08)
    server = ReplayServer({"SPX": source}, mode="live", faults=faults, heartbeat=0.2).start()
    yield server
    server.stop()


def as_rows(bars: list[Bar]) -> list[tuple]:
    return [(b.symbol, pd.Timestamp(b.time), b.open, b.high, b.low, b.close, b.volume)
            for b in bars]


def source_rows(source: pd.DataFrame) -> list[tuple]:
    return [("SPX", t, *row) for t, row in zip(source.index, source.itertuples(index=False),
                                               strict=True)]


def test_engine_sees_every_source_bar_once_in_order_despite_faults(
        app: App, source: pd.DataFrame, faulty_server: ReplayServer) -> None:
    feed = WebsocketFeed(faulty_server.url, "SPX", backfill=market_backfill(app, source="sample"),
                         backoff_base=0.01, stale_after=2.0, seed=7)
    seen: list[Bar] = []
    result = app.engine("sma_cross", "SPX", feed=feed).run(on_bar=seen.append)

    assert result.stopped == "finished"
    assert as_rows(seen) == source_rows(source)          # none lost, none twice, in order
    assert result.bars == N_BARS

    injected = faulty_server.injected
    assert injected["drop"] == 4 and feed.reconnects == 4
    assert injected["duplicate"] > 0 and injected["reorder"] > 0
    malformed = Counter({k.split(":", 1)[1]: n for k, n in injected.items()
                         if k.startswith("malformed:")})
    assert sum(malformed.values()) >= 10
    assert feed.rejected == malformed                     # each counted under its reason
    # 7 bars pass unseen per drop; they can only have come from the backfill
    assert feed.backfilled >= 4 * 7
    assert feed.sequencer.dropped["duplicate"] >= injected["duplicate"]
    assert len(feed.recoveries) == 4


def test_the_engine_result_matches_a_clean_replay(app: App, source: pd.DataFrame,
                                                  faulty_server: ReplayServer) -> None:
    """Same bars, same strategy: the faulty live feed and a clean replay trade identically."""
    feed = WebsocketFeed(faulty_server.url, "SPX", backfill=market_backfill(app, source="sample"),
                         backoff_base=0.01, seed=7)
    live = app.engine("sma_cross", "SPX", feed=feed).run()
    replay = app.engine("sma_cross", "SPX", source="sample", end=source.index[-1]).run()
    assert live.bars == replay.bars == N_BARS
    assert [(f.side, f.quantity, f.price) for f in live.fills] == \
        [(f.side, f.quantity, f.price) for f in replay.fills]
    assert len(live.fills) > 0
    assert live.equity == replay.equity
