"""Yahoo Finance bars through the ``yfinance`` client (imported only when loading).

The network call and the frame conversion are separate: :func:`frame_to_bars`
turns what yfinance 1.x returns into contract bars and is tested offline on
frames shaped exactly like yfinance's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from tradelab.data.bars import Adjust, interval_timedelta, normalize_frame, slice_time, utc
from tradelab.errors import DataSourceError

# Columns yfinance adds that are not bars.
_EXTRA = ("Dividends", "Stock Splits", "Capital Gains", "Repaired?")


def _is_intraday(interval: str) -> bool:
    return interval.endswith(("m", "h")) and not interval.endswith("mo")


def frame_to_bars(frame: pd.DataFrame, symbol: str, *, adjust: Adjust | str = "adjusted",
                  interval: str = "1d") -> pd.DataFrame:
    """Contract bars from a yfinance frame.

    Parameters
    ----------
    frame
        Either ``Ticker.history(auto_adjust=False)`` output (flat columns
        ``Open, High, Low, Close, Adj Close, Volume[, Dividends, Stock Splits]``,
        index ``Date``/``Datetime`` in the exchange time zone) or ``yf.download``
        output (MultiIndex columns ``(Price, Ticker)``, or ``(Ticker, Price)``
        with ``group_by="ticker"``).
    symbol
        The ticker to pick out of a multi-ticker frame.
    adjust
        ``"adjusted"`` scales OHLC by ``Adj Close / Close``; ``"raw"`` keeps
        traded prices.
    interval
        For daily and longer bars the exchange-local *date* is kept and labelled
        midnight UTC (as yfinance's own ``download`` does), so a daily bar does not
        become 04:00 or 05:00 UTC depending on daylight saving time.

    Raises
    ------
    DataSourceError
        The frame is empty or does not contain ``symbol``.
    """
    if isinstance(frame.columns, pd.MultiIndex):
        frame = _pick_ticker(frame, symbol)
    if frame.empty or frame.dropna(how="all").empty:
        raise DataSourceError(f"yfinance: no bars for symbol {symbol!r}")
    frame = frame.drop(columns=[c for c in _EXTRA if c in frame.columns])
    if "Adj Close" not in frame.columns and adjust == "adjusted":
        # history(auto_adjust=True) has already folded the adjustment into OHLC.
        frame = frame.assign(**{"Adj Close": frame["Close"]})
    idx = pd.DatetimeIndex(frame.index)
    if not _is_intraday(interval) and idx.tz is not None:
        idx = idx.tz_localize(None)
    frame = frame.set_axis(idx, axis=0)
    return normalize_frame(frame, adjust)


def _pick_ticker(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    cols = frame.columns
    names = list(cols.names)
    level = names.index("Ticker") if "Ticker" in names else (
        0 if symbol.upper() in {str(t).upper() for t in cols.get_level_values(0)} else 1)
    tickers = {str(t).upper(): t for t in cols.get_level_values(level)}
    if symbol.upper() not in tickers:
        raise DataSourceError(
            f"yfinance: symbol {symbol!r} not in the result (got {', '.join(tickers)})")
    return frame.xs(tickers[symbol.upper()], axis=1, level=level).rename_axis(None, axis=1)


def _default_ticker(symbol: str) -> Any:
    import yfinance  # slow import (curl_cffi, protobuf); only when Yahoo is used

    return yfinance.Ticker(symbol)


class YFinanceSource:
    """Bars from Yahoo Finance.

    Parameters
    ----------
    adjust
        Default adjustment: ``"adjusted"`` (split/dividend adjusted) or ``"raw"``.
    timeout
        Seconds per HTTP request.
    ticker_factory
        ``symbol -> object with .history(...)``; default ``yfinance.Ticker``.
        Tests inject a ticker built on a session that cannot reach the network.
    """

    name = "yfinance"

    def __init__(self, adjust: Adjust = "adjusted", timeout: float = 30.0, *,
                 ticker_factory: Callable[[str], Any] | None = None) -> None:
        self.adjust = adjust
        self.timeout = timeout
        self._ticker_factory = ticker_factory or _default_ticker

    def __repr__(self) -> str:
        return f"YFinanceSource(adjust={self.adjust!r}, timeout={self.timeout})"

    def fingerprint(self, symbol: str) -> str:
        # Remote history has no version; cache TTLs bound how stale it may get.
        return "yfinance"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str | None = None) -> pd.DataFrame:
        """Bars for ``symbol`` with ``start <= time <= end``.

        Raises
        ------
        DataSourceError
            Network failure, unknown symbol or an empty result; names the symbol.
        """
        adjust = adjust or self.adjust
        kwargs: dict[str, Any] = {"interval": interval, "auto_adjust": False,
                                  "actions": False, "timeout": self.timeout}
        if start is None and end is None:
            kwargs["period"] = "max"
        # Daily+ requests go as dates (yfinance reads them in the exchange's zone,
        # matching the date labels frame_to_bars keeps); intraday as UTC instants.
        as_arg = (lambda t: t.to_pydatetime()) if _is_intraday(interval) else (
            lambda t: t.strftime("%Y-%m-%d"))
        if start is not None:
            kwargs["start"] = as_arg(utc(start))
        if end is not None:
            # Yahoo's end is exclusive; ask one bar further and cut inclusively below.
            step = interval_timedelta(interval) or pd.Timedelta(days=1)
            kwargs["end"] = as_arg(utc(end) + step)
        try:
            ticker = self._ticker_factory(symbol)
            frame = ticker.history(**kwargs)
        except Exception as exc:  # yfinance raises many types (curl, JSON, its own)
            raise DataSourceError(
                f"yfinance: could not load {symbol!r} ({interval}): "
                f"{type(exc).__name__}: {exc}") from exc
        if frame is None or len(frame) == 0:
            reason = getattr(getattr(ticker, "_price_history", None), "_last_error", None)
            raise DataSourceError(
                f"yfinance: no bars for symbol {symbol!r} ({interval}, {start}..{end})"
                + (f": {reason}" if reason else "; unknown or delisted symbol?"))
        return slice_time(frame_to_bars(frame, symbol, adjust=adjust, interval=interval),
                          start, end)
