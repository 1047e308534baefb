"""Crypto OHLCV through ccxt (``fetch_ohlcv`` paged by ``since``), imported lazily."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import SecretStr

from tradelab.data.bars import BAR_COLUMNS, slice_time, utc
from tradelab.errors import DataSourceError

# A guard against an exchange that keeps answering with the same page.
MAX_PAGES = 10_000


class CcxtSource:
    """OHLCV bars from a ccxt exchange (public market data; keys are optional).

    Parameters
    ----------
    exchange
        ccxt exchange id, e.g. ``"binance"``.
    api_key, secret
        Optional credentials (never logged or shown in ``repr``).
    timeout_ms
        Per-request timeout.
    page_limit
        Candles asked per request; pagination continues from the last candle
        until an empty page or ``end``, so a limit above the exchange's own cap
        costs extra requests but never loses bars.
    urls
        Overrides merged into the exchange's ``urls["api"]`` (e.g. a local
        recorded-response server in tests, or a testnet).
    options
        Overrides merged into the exchange's ``options`` (e.g.
        ``{"fetchMarkets": {"types": ["spot"]}}`` to load spot markets only).

    Notes
    -----
    ``enableRateLimit`` is always on: ccxt then spaces requests by the
    exchange's published rate limit, which long paginated loads need.
    Without ``start`` one page of the most recent candles is returned.
    """

    name = "ccxt"
    adjust = "raw"  # crypto has no splits or dividends; raw and adjusted agree

    def __init__(self, exchange: str = "binance", api_key: SecretStr | None = None,
                 secret: SecretStr | None = None, timeout_ms: int = 30_000,
                 page_limit: int = 1000, *, urls: Mapping[str, str] | None = None,
                 options: Mapping[str, Any] | None = None, base_url: str | None = None) -> None:
        self.exchange_id = exchange
        self._api_key = api_key
        self._secret = secret
        self.timeout_ms = timeout_ms
        self.page_limit = page_limit
        self.urls = dict(urls or {})
        self.options = dict(options or {})
        self.base_url = base_url
        self._client: Any = None

    def __repr__(self) -> str:
        keyed = "with key" if self._api_key is not None else "no key"
        return f"CcxtSource(exchange={self.exchange_id!r}, {keyed})"

    def fingerprint(self, symbol: str) -> str:
        return f"ccxt:{self.exchange_id}"

    def client(self) -> Any:
        """The ccxt exchange instance (created on first use, then reused)."""
        if self._client is None:
            import ccxt  # ~1 s import; only when crypto data is used

            cls = getattr(ccxt, self.exchange_id, None)
            if cls is None:
                raise DataSourceError(f"ccxt: unknown exchange {self.exchange_id!r}")
            config: dict[str, Any] = {"enableRateLimit": True, "timeout": self.timeout_ms}
            if self._api_key is not None:
                config["apiKey"] = self._api_key.get_secret_value()
            if self._secret is not None:
                config["secret"] = self._secret.get_secret_value()
            client = cls(config)
            if self.urls:
                client.urls["api"] = {**client.urls.get("api", {}), **self.urls}
            if self.base_url:
                from tradelab.data.ccxt_urls import point_at

                point_at(client, self.base_url, None)
            for key, value in self.options.items():
                client.options[key] = value
            self._client = client
        return self._client

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str | None = None) -> pd.DataFrame:
        """Bars for a unified symbol such as ``"BTC/USDT"`` with ``start <= time <= end``.

        Raises
        ------
        DataSourceError
            Unknown exchange, symbol or interval; network or exchange errors.
        """
        import ccxt

        try:
            client = self.client()
            if client.timeframes and interval not in client.timeframes:
                raise DataSourceError(
                    f"ccxt {self.exchange_id}: interval {interval!r} not offered; "
                    f"available: {', '.join(client.timeframes)}")
            rows = self._fetch(client, symbol, interval, start, end)
        except ccxt.BaseError as exc:
            raise DataSourceError(
                f"ccxt {self.exchange_id}: could not load {symbol!r} ({interval}): "
                f"{type(exc).__name__}: {exc}") from exc
        return slice_time(candles_to_bars(rows), start, end)

    def _fetch(self, client: Any, symbol: str, interval: str,
               start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[list[float]]:
        end_ms = None if end is None else int(utc(end).timestamp() * 1000)
        if start is None:
            return list(client.fetch_ohlcv(symbol, interval, limit=self.page_limit))
        since = int(utc(start).timestamp() * 1000)
        rows: list[list[float]] = []
        for _ in range(MAX_PAGES):
            page = client.fetch_ohlcv(symbol, interval, since=since, limit=self.page_limit)
            if not page:
                break
            rows.extend(page)
            last = int(page[-1][0])
            if last < since or (end_ms is not None and last >= end_ms):
                break
            since = last + 1
        return rows


def candles_to_bars(rows: list[list[float]]) -> pd.DataFrame:
    """ccxt ``[[ms, open, high, low, close, volume], ...]`` → a contract-shaped frame.

    Nothing is repaired here; duplicates or gaps are left for validation.
    """
    frame = pd.DataFrame([r[:6] for r in rows], columns=["ms", *BAR_COLUMNS])
    index = pd.DatetimeIndex(pd.to_datetime(frame["ms"].astype("int64"), unit="ms", utc=True),
                             name="time")
    out = frame[list(BAR_COLUMNS)].astype("float64")
    out.index = index
    return out
