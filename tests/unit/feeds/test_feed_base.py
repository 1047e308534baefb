"""The pieces every live feed shares: backoff, candle validation, and feeds from configuration."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.feeds.base import backoff_delay, frame_rows, parse_time, row_bar
from tradelab.feeds.protocol import REASONS, Rejected


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(0)
    for failures, nominal in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [backoff_delay(failures, 0.1, 1.0, rng) for _ in range(200)]
        assert all(nominal * 0.5 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal * 0.3     # jittered, not constant


def test_parse_time_accepts_milliseconds_and_aware_times_only() -> None:
    want = datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)
    assert parse_time(1_600_000_000_000) == want
    assert parse_time(pd.Timestamp(want)) == want
    assert parse_time(pd.Timestamp("2020-09-13 14:26:40", tz="Europe/Berlin")) == want
    for bad, reason in [(None, "missing_field"), ("2020-09-13", "bad_time"),
                        (datetime(2020, 9, 13), "bad_time"), (True, "bad_time"),
                        (float("nan"), "bad_time")]:
        with pytest.raises(Rejected) as info:
            parse_time(bad)
        assert info.value.reason == reason, bad


@pytest.mark.parametrize(("row", "reason"), [
    ([0, 1.0, 2.0, 0.5, 1.5], "missing_field"),
    ([0, 1.0, 2.0, 0.5, None, 3.0], "missing_field"),
    ([0, 1.0, "2.0", 0.5, 1.5, 3.0], "bad_type"),
    ([0, 1.0, 2.0, 0.5, 1.5, float("nan")], "nan"),
    ([0, 0.0, 2.0, 0.5, 1.5, 3.0], "non_positive"),
    ([0, 1.0, 2.0, 0.5, 1.5, -3.0], "negative_volume"),
    ([0, 1.0, 0.4, 0.5, 0.45, 3.0], "high_low"),
    ([0, 1.0, 2.0, 0.5, 2.5, 3.0], "open_close_range"),
])
def test_row_bar_rejects_with_the_protocol_reasons(row: list, reason: str) -> None:
    assert reason in REASONS
    with pytest.raises(Rejected) as info:
        row_bar("X", parse_time(row[0]), row)
    assert info.value.reason == reason


def test_row_bar_keeps_values_exactly() -> None:
    bar = row_bar("X", parse_time(60_000), [60_000, 1, 2.5, np.float64(0.5), 1.25, 7])
    assert tuple(bar) == ("X", datetime(1970, 1, 1, 0, 1, tzinfo=UTC), 1.0, 2.5, 0.5, 1.25, 7.0)


def test_frame_rows_keep_naive_times_naive_for_rejection(spx300: pd.DataFrame) -> None:
    rows = frame_rows(spx300.iloc[:3])
    assert [r[0] for r in rows] == list(spx300.index[:3].to_pydatetime())
    assert rows[0][1:] == tuple(spx300.iloc[0])
    naive = spx300.iloc[:1].tz_localize(None)
    with pytest.raises(Rejected):
        parse_time(frame_rows(naive)[0][0])
    assert frame_rows(spx300.iloc[:0]) == []


def test_feeds_from_configuration(tmp_path: Path, environ: dict[str, str]) -> None:
    from tradelab.app import build
    from tradelab.app.feeds import build_feed
    from tradelab.config import load_config
    from tradelab.feeds.ccxt_feed import CcxtFeed
    from tradelab.feeds.polling import PollingFeed
    from tradelab.feeds.websocket import WebsocketFeed

    env = {**environ, "TRADELAB__FEEDS__CCXT_MODE": "rest", "TRADELAB__FEEDS__POLL_SECONDS": "30",
           "TRADELAB__FEEDS__MAX_RETRIES": "3", "TRADELAB__FEEDS__TICKS": "true",
           "TRADELAB__FEEDS__GRACE": "5"}
    app = build(load_config(paths=[], environ=env, home=tmp_path))
    assert build_feed(app, "replay", "SPX") is None
    ws = build_feed(app, "ws://127.0.0.1:9", "SPX", source="sample", start="2001-01-02")
    assert isinstance(ws, WebsocketFeed) and ws.ticks and ws.grace == pd.Timedelta(seconds=5)
    assert ws.max_retries == 3 and ws.start_after < datetime(2001, 1, 2, tzinfo=UTC)
    assert len(ws.history("SPX", pd.Timestamp("2001-01-02", tz="UTC"), 4)) == 4
    cx = build_feed(app, "ccxt", "BTC/USDT", end="2024-01-01")
    assert isinstance(cx, CcxtFeed) and cx.mode == "rest" and cx.interval == "1m"
    assert cx.poll_seconds == 15.0      # a quarter of the 1m candle, below poll_seconds
    poll = build_feed(app, "poll", "SPX", source="sample")
    assert isinstance(poll, PollingFeed) and poll.poll_seconds == 30.0
    with pytest.raises(ValueError, match="pigeon"):
        build_feed(app, "pigeon", "SPX")
