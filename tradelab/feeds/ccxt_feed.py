"""``CcxtFeed``: closed candles of a ccxt exchange as a ``LiveFeed`` (websocket or REST).

Modes
-----
``websocket``
    ``watch_ohlcv`` (ccxt.pro, bundled with ccxt). The exchange streams
    updates of the candle that is forming; a candle is closed when an update
    for a later candle arrives, and it is then delivered with the last values
    seen. At the start and after every reconnect the candles since the last
    one handled are fetched over REST (``fetch_ohlcv``), so an outage leaves no
    gap (those count as ``backfilled``). No update for ``stale_after`` seconds
    closes the connection and reconnects (counted as ``stale``).
``rest``
    ``fetch_ohlcv`` every ``poll_seconds`` for the candles after the last one
    handled; the newest candle of a fetch is still forming and waits for the
    next fetch. After failed requests the first successful fetch pages
    through the whole gap.
``auto`` (default)
    ``websocket`` when the exchange has ``watchOHLCV`` (``watchTrades`` with
    ``ticks=True``), else ``rest``.

Trades → bars (``ticks=True``)
------------------------------
The exchange's public trades are the ticks: ``watch_trades`` (websocket) or
``fetch_trades(symbol, since=...)`` polled no faster than the rate limit and
paged from the last trade seen. Trades are deduplicated by ``(id, timestamp)``
(``since`` is inclusive and pages overlap; counted as ``duplicate``), each is
validated (a timestamp, finite positive price and amount; rejects counted by
reason in ``rejected``) and aggregated into ``interval`` bars by
:class:`~tradelab.feeds.aggregate.TickAggregator`, with ``grace`` and the same
late-tick policy as :class:`~tradelab.feeds.websocket.WebsocketFeed`: a late
trade for a bar still open is merged, one for a bar already delivered is
dropped (``late_dropped``). A bar is delivered once a trade at or after its end
+ ``grace`` is seen (a quiet market holds the newest bar back).

Outages: after failed polls, and at the start of every websocket connection,
the trades since the last one seen are fetched over REST, so no bar misses
trades (the stream is spliced in at its first trade's time, since REST and
stream trade ids need not match). When the exchange's history does not reach
back to that trade (the page asked from its time does not contain it), the
half-built bar is discarded and the bars up to and including the first one
built from the fresh trades come from ``fetch_ohlcv`` instead. Bars delivered
while recovering count as ``backfilled``; tick counts are in
``stats()["ticks"]``. Known limit: an exchange that bounds a ``since`` query to
a window (Binance: one hour) and had no trade for longer is detected as such a
gap (a ``since=None`` probe finds newer trades that do not reach back).

Rate limits: ccxt's ``enableRateLimit`` is always on, and the feed itself
never starts two of its requests less than ``rateLimit`` ms apart (the
exchange's, or ``rate_limit_ms``). ``RateLimitExceeded``, ``DDoSProtection``
and every other ``NetworkError`` back off with the jittered exponential delay
shared by all feeds (:func:`tradelab.feeds.base.backoff_delay`).

Validation, ordering, reject counting and ``stats()`` follow
:mod:`tradelab.feeds.polling`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import SecretStr

from tradelab.feeds.base import (
    FeedError,
    Stale,
    TickBars,
    parse_time,
    row_time,
)
from tradelab.feeds.ccxt_trades import TradeBars, Trail
from tradelab.feeds.polling import PollingBase, default_stale
from tradelab.feeds.protocol import Rejected

MODES = ("auto", "websocket", "rest")
WATCH = {"ohlcv": "watchOHLCV", "trades": "watchTrades"}
MS = 1_000_000  # nanoseconds per millisecond


def select_mode(mode: str, has: Mapping[str, Any], kind: str = "ohlcv") -> str:
    """``"websocket"`` or ``"rest"`` for a requested mode and an exchange's ``has`` map.

    ``kind`` is the data streamed: ``"ohlcv"`` (needs ``watchOHLCV``) or
    ``"trades"`` (needs ``watchTrades``).

    Raises
    ------
    ValueError
        Unknown mode or kind.
    FeedError
        ``"websocket"`` asked of an exchange that cannot stream ``kind``.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    if kind not in WATCH:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(WATCH)}")
    streams = bool(has.get(WATCH[kind]))
    if mode == "websocket" and not streams:
        raise FeedError(f"this exchange has no {WATCH[kind]} in ccxt.pro: use mode='rest'")
    if mode == "rest" or not streams:
        return "rest"
    return "websocket"


def exchange_class(exchange_id: str) -> type:
    """The asynchronous ccxt class: ccxt.pro's (REST + websocket) when it exists."""
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    cls = getattr(ccxt_pro, exchange_id, None) or getattr(ccxt_async, exchange_id, None)
    if not isinstance(cls, type):
        raise FeedError(f"ccxt: unknown exchange {exchange_id!r}")
    return cls


class CcxtFeed(TradeBars, PollingBase):
    """Closed candles of ccxt ``symbols`` (unified, e.g. ``"BTC/USDT"``) as they happen.

    Parameters
    ----------
    exchange
        ccxt exchange id.
    symbols
        One unified symbol or several.
    interval
        ccxt timeframe (``"1m"``, ``"1h"``, ``"1d"``...).
    mode
        ``"auto"``, ``"websocket"`` or ``"rest"`` (see the module text).
    poll_seconds
        REST mode: pause between fetches (never shorter than the rate limit).
    rate_limit_ms
        Overrides the exchange's ``rateLimit`` (milliseconds between requests).
    page_limit
        Candles asked per request when paging through a gap.
    api_key, secret
        Optional credentials (public market data needs none; never logged).
    timeout_ms
        Per-request timeout.
    urls, ws_urls, options
        Merged into the client's ``urls["api"]``, ``urls["api"]["ws"]`` and
        ``options`` (a testnet, or a loopback server in tests).
    start_after
        Deliver only candles after this time. ``None``: start with the next
        candle to close (the history before it is for :meth:`history`).
    end
        End the iteration after the candle at (or the first after) this time.
    ticks, grace
        Build the ``interval`` bars from the exchange's trades, accepting late
        trades up to ``grace`` after a bar's end (see the module text).

    Other keywords: see :class:`~tradelab.feeds.polling.PollingBase` (backoff,
    ``stale_after``, ``max_retries``, ``seed``...).
    """

    def __init__(self, exchange: str, symbols: str | Sequence[str], *, interval: str = "1m",
                 mode: str = "auto", poll_seconds: float = 5.0, rate_limit_ms: int | None = None,
                 page_limit: int = 500, api_key: SecretStr | None = None,
                 secret: SecretStr | None = None, timeout_ms: int = 10_000,
                 urls: Mapping[str, Any] | None = None, ws_urls: Mapping[str, str] | None = None,
                 options: Mapping[str, Any] | None = None, stale_after: float | None = None,
                 ticks: bool = False, grace: Any = 0, **kwargs: Any) -> None:
        import ccxt

        if page_limit < 1:
            raise ValueError("page_limit must be >= 1")
        kwargs.setdefault("transient", (ccxt.NetworkError,))
        super().__init__(symbols, poll_seconds=poll_seconds, hold_newest=True,
                         stale_after=stale_after or default_stale(interval, poll_seconds),
                         **kwargs)
        self.exchange_id, self.interval, self.page_limit = exchange, interval, page_limit
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        if api_key is not None:
            config["apiKey"] = api_key.get_secret_value()
        if secret is not None:
            config["secret"] = secret.get_secret_value()
        client = exchange_class(exchange)(config)
        api = client.urls.setdefault("api", {})
        api.update(urls or {})
        if ws_urls:
            api["ws"] = {**api.get("ws", {}), **ws_urls}
        for key, value in (options or {}).items():
            client.options[key] = value
        self.client = client
        self.ticks = ticks
        self.mode = select_mode(mode, client.has, "trades" if ticks else "ohlcv")
        self.label = f"ccxt feed {exchange} ({self.mode}{', trades' if ticks else ''})"
        self.rate_limit = float(client.rateLimit) / 1000.0
        self._step = float(client.parse_timeframe(interval))  # seconds per candle
        self.requests = 0
        self._next_request = 0.0
        self._pending: dict[str, tuple[datetime, Sequence[Any]]] = {}
        self.grace = pd.Timedelta(grace)
        self.tick_bars = TickBars(self.symbols, pd.Timedelta(seconds=self._step), self.grace)
        self._trails = {s: Trail() for s in self.symbols}
        self._refill: set[str] = set()  # the next bar built comes from candles instead
        # Trade keys kept for deduplication: anything older is in a bar closed long ago.
        self._keep = 2 * (int(self._step * 1e9) + self.grace.value)

    def __repr__(self) -> str:
        keyed = "with key" if self.client.apiKey else "no key"
        return f"CcxtFeed({self.exchange_id!r}, {self.symbols!r}, {self.mode}, {keyed})"

    def stats(self) -> dict[str, Any]:
        """As :class:`PollingBase`, plus ``mode`` and ``requests`` (REST requests made).

        With ``ticks=True`` also ``ticks``: the aggregators' counts (as
        :class:`~tradelab.feeds.websocket.WebsocketFeed`'s) and ``duplicate``
        (trades seen twice in overlapping pages).
        """
        out = {**super().stats(), "mode": self.mode, "requests": self.requests}
        if self.ticks:
            out["ticks"] = self.tick_bars.summary("duplicate")
        return out

    # -- REST -----------------------------------------------------------------------------
    async def _request(self, symbol: str, since: int | None,
                       trades: bool = False) -> list[Any]:
        """One ``fetch_ohlcv`` (or ``fetch_trades``), started no sooner than ``rateLimit``
        after the previous request ended."""
        loop = asyncio.get_running_loop()
        wait = self._next_request - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self.requests += 1
        try:
            if trades:
                return list(await self.client.fetch_trades(symbol, since=since,
                                                           limit=self.page_limit))
            return list(await self.client.fetch_ohlcv(symbol, self.interval, since=since,
                                                      limit=self.page_limit))
        finally:
            # From the answer (or error), not the start: the first call also loads the
            # markets, so the request itself may leave well after the call began.
            self._next_request = loop.time() + self.rate_limit

    async def _fetch(self, symbol: str, after: datetime | None) -> list[Sequence[Any]]:
        if after is None:
            recent = await self._request(symbol, None)
            if self.start_after is None:
                self._start_here(symbol, recent)   # the first fetch is history, not news
                return []
            return recent
        since = int(after.timestamp() * 1000) + 1
        rows: list[Sequence[Any]] = []
        while True:
            page = await self._request(symbol, since)
            rows += page
            last = row_time(page[-1]) if page else None
            if len(page) < self.page_limit or last is None or last.timestamp() * 1000 < since:
                return rows
            since = int(last.timestamp() * 1000) + 1

    # -- websocket ------------------------------------------------------------------------
    async def _cleanup(self) -> None:
        await self.client.close()

    async def _poll_loop(self) -> None:
        if self.mode == "rest":
            self.poll_seconds = max(self.poll_seconds, self.rate_limit)
            await super()._poll_loop()
            return
        import ccxt

        async def fresh_connection() -> None:
            await self.client.close()  # a new connection (and HTTP session) next time

        await self._sessions(self._watch_trades if self.ticks else self._watch,
                             (ccxt.NetworkError,), fresh_connection)

    async def _updates(self) -> dict[str, list[Sequence[Any]]]:
        if len(self.symbols) == 1:
            sym = self.symbols[0]
            return {sym: await self.client.watch_ohlcv(sym, self.interval)}
        got = await self.client.watch_ohlcv_for_symbols([[s, self.interval] for s in self.symbols])
        return {s: list(by_tf.get(self.interval, [])) for s, by_tf in got.items()}

    async def _watch(self) -> bool:
        """One websocket session; ``True`` once ``end`` is reached."""
        loop = asyncio.get_running_loop()
        self._pending.clear()  # its last update may have been lost with the connection
        caught_up = False
        while not self._closed:
            try:
                updates = await asyncio.wait_for(self._updates(), self.stale_after)
            except TimeoutError:
                self.stale += 1
                raise Stale from None
            if not caught_up:
                # REST for everything closed since the last candle handled (the gap).
                await self.poll_once()
                caught_up = True
            gap = False
            for sym, rows in updates.items():
                if sym in self.symbols:
                    for row in rows:
                        gap |= self._update(sym, row, loop.time())
            if gap:
                # ccxt reconnects by itself when the connection dropped between two
                # watch calls: candles the stream skipped come from REST.
                await self.poll_once(backfill=True)
            await self._release(loop.time())
            if self._finished():
                return True
        return False

    def _update(self, symbol: str, row: Sequence[Any], now: float) -> bool:
        """A streamed update of a candle; the pending one is delivered once a later one starts.

        Returns whether the stream skipped candles (a later one is more than one
        interval after the pending one).
        """
        try:
            t = parse_time(row[0] if isinstance(row, Sequence) and row else None)
        except Rejected as exc:
            self.rejected[exc.reason] += 1
            return False
        pending = self._pending.get(symbol)
        if pending is None or t >= pending[0]:
            self._pending[symbol] = (t, row)
            if pending is None or t == pending[0]:
                return False
            closed = pending
        else:
            closed = (t, row)  # a late update of an older candle: as a closed one
        delivered = self.sequencer.newest(symbol)
        if delivered is None or closed[0] > delivered:  # else REST already delivered it
            self._ingest(symbol, [closed[1]], now, hold=False)
        return (t - closed[0]).total_seconds() > self._step


    # -- trades (ticks=True) --------------------------------------------------------------
    async def _poll_symbol(self, symbol: str, backfill: bool) -> int:
        if not self.ticks:
            return await super()._poll_symbol(symbol, backfill)
        return await self._catch_up(symbol, backfill)
