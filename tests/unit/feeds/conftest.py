"""Fixtures for the live-feed tests: real SPX bars and replay servers that always stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

from tests.unit.feeds.exchange import Exchange, RestServer
from tradelab.feeds.replay_server import ReplayServer


@pytest.fixture(scope="session")
def spx300(spx: pd.DataFrame) -> pd.DataFrame:
    """300 real S&P 500 daily bars (1999-2000)."""
    return spx.iloc[:300]


@pytest.fixture()
def serve() -> Iterator[Callable[..., ReplayServer]]:
    """Start a :class:`ReplayServer` on 127.0.0.1 and a free port; stopped after the test."""
    started: list[ReplayServer] = []

    def start(frames: dict[str, pd.DataFrame], **kwargs: Any) -> ReplayServer:
        server = ReplayServer(frames, host="127.0.0.1", port=0, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def slicer(bars: pd.DataFrame) -> Callable[[str, Any, Any], pd.DataFrame]:
    """A backfill over one in-memory frame (``start``/``end`` inclusive), recording its calls."""
    calls: list[tuple[Any, Any]] = []

    def backfill(symbol: str, start: Any, end: Any) -> pd.DataFrame:
        calls.append((start, end))
        out = bars
        if start is not None:
            out = out[out.index >= start]
        if end is not None:
            out = out[out.index <= end]
        return out

    backfill.calls = calls  # type: ignore[attr-defined]
    return backfill


@pytest.fixture()
def rest(exchange: Exchange) -> Iterator[RestServer]:
    """The loopback REST exchange serving the test's ``exchange`` (ccxt is pointed at it)."""
    server = RestServer(exchange)
    yield server
    server.stop()
