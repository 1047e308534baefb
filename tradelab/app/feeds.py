"""Live feeds from configuration (``[feeds]``, ``[data.ccxt]``): ``tradelab paper --feed``, notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from tradelab.data.bars import utc

SPECS = "replay, ws://HOST:PORT, ccxt or poll"


def build_feed(app: Any, spec: str | None, symbol: str | Sequence[str], *,
               source: str | None = None, start: Any = None, end: Any = None,
               **overrides: Any) -> Any | None:
    """The live feed ``spec`` names, or ``None`` for ``replay`` (the engine's default).

    ``symbol``: one symbol, or a portfolio's universe (every feed serves several).

    ``start`` (first bar) and ``end`` (last bar) bound what polling feeds deliver;
    a websocket feed given ``start`` backfills from there to its first live bar.
    ``overrides`` replace ``[feeds]`` values (``backoff_base``, ``stale_after``, ``seed``...).

    Raises
    ------
    ValueError
        An unknown ``spec``.
    """
    if spec is None or spec in ("", "replay"):
        return None
    f = app.settings.feeds
    common: dict[str, Any] = {"backoff_base": f.backoff_base, "backoff_max": f.backoff_max,
                              "max_retries": f.max_retries}
    if f.stale_after is not None:
        common["stale_after"] = f.stale_after
    if start is not None:
        common["start_after"] = utc(start) - pd.Timedelta(1, "us")
    common.update(overrides)
    source = source or app.settings.data.default_source
    from tradelab.feeds.websocket import WebsocketFeed, market_backfill

    if spec.startswith(("ws://", "wss://")):
        return WebsocketFeed(spec, symbol, backfill=market_backfill(app, source, f.interval),
                             ticks=f.ticks, interval=f.interval,
                             grace=pd.Timedelta(seconds=f.grace), **common)
    if spec == "ccxt":
        from tradelab.data.bars import interval_timedelta
        from tradelab.feeds.ccxt_feed import CcxtFeed

        c = app.settings.data.ccxt
        step = interval_timedelta(f.ccxt_interval)
        poll = f.poll_seconds if step is None else min(f.poll_seconds, step.total_seconds() / 4)
        # History (warmup on --resume) through the cached ccxt source of [data.ccxt].
        common["backfill"] = market_backfill(app, "ccxt", f.ccxt_interval)
        feed = CcxtFeed(c.exchange, symbol, interval=f.ccxt_interval, mode=f.ccxt_mode,
                        poll_seconds=poll, page_limit=min(c.page_limit, 1000),
                        api_key=c.api_key, secret=c.secret, timeout_ms=c.timeout_ms, end=end,
                        ticks=f.ticks, grace=pd.Timedelta(seconds=f.grace), **common)
        if c.base_url or c.ws_url:  # a testnet or `tradelab venue-sim` instead of the exchange
            from tradelab.data.ccxt_urls import point_at

            point_at(feed.client, c.base_url, c.ws_url)
        return feed
    if spec == "poll":
        from tradelab.feeds.polling import PollingFeed

        return PollingFeed(app.data.source(source), symbol, interval=f.interval,
                           poll_seconds=f.poll_seconds, end=end, **common)
    raise ValueError(f"--feed {spec!r}: expected {SPECS}")


def describe(stats: dict[str, Any]) -> str:
    """One line of a live feed's outcome counts (for the command line)."""
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats.get("rejected", {}).items()))
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(stats.get("dropped", {}).items()))
    return (f"feed: delivered {stats.get('delivered', 0)}, backfilled {stats.get('backfilled', 0)}, "
            f"reconnects {stats.get('reconnects', 0)}, stale {stats.get('stale', 0)}, "
            f"rejected {sum(stats.get('rejected', {}).values())}"
            + (f" ({rejected})" if rejected else "")
            + (f", dropped {dropped}" if dropped else ""))
