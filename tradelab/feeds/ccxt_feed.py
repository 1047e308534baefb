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
    ``websocket`` when the exchange has ``watchOHLCV``, else ``rest``.

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

from pydantic import SecretStr

from tradelab.feeds.base import FeedError, Stale, parse_time, row_time
from tradelab.feeds.polling import PollingBase, default_stale
from tradelab.feeds.protocol import Rejected

MODES = ("auto", "websocket", "rest")


def select_mode(mode: str, has: Mapping[str, Any]) -> str:
    """``"websocket"`` or ``"rest"`` for a requested mode and an exchange's ``has`` map.

    Raises
    ------
    ValueError
        Unknown mode.
    FeedError
        ``"websocket"`` asked of an exchange without ``watchOHLCV``.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    streams = bool(has.get("watchOHLCV"))
    if mode == "websocket" and not streams:
        raise FeedError("this exchange has no watchOHLCV in ccxt.pro: use mode='rest'")
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


class CcxtFeed(PollingBase):
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

    Other keywords: see :class:`~tradelab.feeds.polling.PollingBase` (backoff,
    ``stale_after``, ``max_retries``, ``seed``...).
    """

    def __init__(self, exchange: str, symbols: str | Sequence[str], *, interval: str = "1m",
                 mode: str = "auto", poll_seconds: float = 5.0, rate_limit_ms: int | None = None,
                 page_limit: int = 500, api_key: SecretStr | None = None,
                 secret: SecretStr | None = None, timeout_ms: int = 10_000,
                 urls: Mapping[str, Any] | None = None, ws_urls: Mapping[str, str] | None = None,
                 options: Mapping[str, Any] | None = None, stale_after: float | None = None,
                 **kwargs: Any) -> None:
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
        self.mode = select_mode(mode, client.has)
        self.label = f"ccxt feed {exchange} ({self.mode})"
        self.rate_limit = float(client.rateLimit) / 1000.0
        self._step = float(client.parse_timeframe(interval))  # seconds per candle
        self.requests = 0
        self._next_request = 0.0
        self._pending: dict[str, tuple[datetime, Sequence[Any]]] = {}

    def __repr__(self) -> str:
        keyed = "with key" if self.client.apiKey else "no key"
        return f"CcxtFeed({self.exchange_id!r}, {self.symbols!r}, {self.mode}, {keyed})"

    def stats(self) -> dict[str, Any]:
        """As :class:`PollingBase`, plus ``mode`` and ``requests`` (REST requests made)."""
        return {**super().stats(), "mode": self.mode, "requests": self.requests}

    # -- REST -----------------------------------------------------------------------------
    async def _request(self, symbol: str, since: int | None) -> list[Sequence[Any]]:
        """One ``fetch_ohlcv``, started no sooner than ``rateLimit`` after the previous one ended."""
        loop = asyncio.get_running_loop()
        wait = self._next_request - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self.requests += 1
        try:
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

        await self._sessions(self._watch, (ccxt.NetworkError,), fresh_connection)

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

