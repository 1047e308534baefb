"""The bar contract and :func:`normalize_frame`, which maps vendor layouts onto it.

A contract frame has a tz-aware UTC ``DatetimeIndex`` named ``time`` and float64
columns ``open, high, low, close, volume``. Normalizing only changes *format*
(names, case, order of a fully descending file, time zone, dtype); it never
repairs data. Bad rows are :func:`tradelab.data.validate.validate_bars`' job, so
that every repair is reported.
"""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd

from tradelab.errors import DataSourceError

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
Adjust = Literal["raw", "adjusted"]

# Vendor column names, squashed (lower case, no spaces/dots/underscores) → contract name.
# Quandl's "Adj. Open" etc. are deliberately absent: adjusted bars are derived from
# the close ratio like every other source, so all sources adjust the same way.
_ALIASES: dict[str, str] = {
    "open": "open", "o": "open",
    "high": "high", "h": "high",
    "low": "low", "l": "low",
    "close": "close", "c": "close", "last": "close",
    "volume": "volume", "vol": "volume", "v": "volume",
    "adjclose": "adjclose", "adjustedclose": "adjclose",
}
_TIME_NAMES = ("date", "datetime", "time", "timestamp", "gmttime", "localtime")


def _squash(name: object) -> str:
    return re.sub(r"[\s._\-]", "", str(name)).lower()


def utc(ts: object) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken to be UTC already."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def to_utc_index(values: object) -> pd.DatetimeIndex:
    """A UTC ``DatetimeIndex`` named ``time``: naive → localized, other zones → converted."""
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError):
        # Mixed UTC offsets (e.g. across a DST change) only parse straight to UTC.
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.rename("time")


def normalize_frame(df: pd.DataFrame, adjust: Adjust | str = "raw") -> pd.DataFrame:
    """Map a Yahoo/Quandl/ccxt-style OHLCV frame onto the bar contract's format.

    Parameters
    ----------
    df
        Columns in any case and spelling (``Date``, ``Open``, ``Adj Close``,
        ``Adj. Close``, ``Volume``, ...). The time stamps come from a date/time
        column when there is one, else from the index.
    adjust
        ``"raw"`` keeps traded prices; ``"adjusted"`` scales open/high/low/close
        by ``AdjClose / Close`` (split and dividend adjustment).

    Returns
    -------
    pandas.DataFrame
        Float64 columns from ``open, high, low, close, volume`` that were present
        (missing ones are left for validation to name), UTC index named ``time``.
        A fully descending file is reversed; any other disorder is kept for
        validation to report.

    Raises
    ------
    DataSourceError
        ``adjust`` is unknown, or ``"adjusted"`` is asked of a frame without an
        adjusted close.
    """
    if adjust not in ("raw", "adjusted"):
        raise DataSourceError(f"adjust={adjust!r}; expected 'raw' or 'adjusted'")
    frame = df
    time_cols = [c for c in frame.columns if _squash(c) in _TIME_NAMES]
    if time_cols:
        frame = frame.set_index(time_cols[0])
    renamed: dict[str, pd.Series] = {}
    for col in frame.columns:
        target = _ALIASES.get(_squash(col))
        if target is not None and target not in renamed:
            renamed[target] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    out = pd.DataFrame({c: renamed[c] for c in BAR_COLUMNS if c in renamed})
    if adjust == "adjusted":
        if "adjclose" not in renamed or "close" not in renamed:
            raise DataSourceError(
                "adjust='adjusted' needs 'Close' and an adjusted close ('Adj Close'); "
                f"columns are {[str(c) for c in df.columns]}")
        factor = renamed["adjclose"] / renamed["close"]
        for col in PRICE_COLUMNS:
            if col in out:
                out[col] = out[col] * factor
    out.index = to_utc_index(frame.index)
    idx = out.index
    # A newest-first export (Quandl) is a format, not disorder: flip it whole.
    if len(idx) > 1 and idx.is_monotonic_decreasing and not idx.is_monotonic_increasing:
        out = out.iloc[::-1]
    return out


_INTERVAL_RE = re.compile(r"^(\d+)\s*(m|min|h|d|w|wk)$")


def interval_timedelta(interval: str) -> pd.Timedelta | None:
    """``"1m"``/``"15m"``/``"1h"``/``"1d"``/``"1w"`` → Timedelta; ``None`` if not fixed-length.

    Months are not a fixed length, so ``"1M"``/``"1mo"`` give ``None``.
    """
    m = _INTERVAL_RE.match(interval.strip())
    if m is None:
        return None
    n, unit = int(m.group(1)), m.group(2)
    unit = {"m": "min", "min": "min", "h": "h", "d": "D", "w": "W", "wk": "W"}[unit]
    return pd.Timedelta(n, unit=unit)


def slice_time(bars: pd.DataFrame, start: object = None, end: object = None) -> pd.DataFrame:
    """Rows with ``start <= time <= end`` (both inclusive, either optional)."""
    if start is not None:
        bars = bars[bars.index >= utc(start)]
    if end is not None:
        bars = bars[bars.index <= utc(end)]
    return bars
