"""The embedded ``sample`` source: real daily history shipped by the ``arch`` and ``skfolio`` packages.

``arch`` (NCSA licence) ships the S&P 500 and NASDAQ Composite daily OHLC,
volume and adjusted close for 1999-01-04..2018-12-31 (5,031 bars each).
``skfolio`` (BSD-3-Clause) ships the adjusted daily closes of 20 US large caps
(``AAPL`` ... ``XOM``, including ``KO`` and ``PEP``) for 1990-01-02..2022-12-28
(8,313 bars each, prices to 3 decimals). The files are read straight from the
installed packages without importing them (``arch`` would pull in SciPy and
statsmodels, ``skfolio`` scikit-learn and cvxpy).

The skfolio stocks are **close-only**: each bar has ``open = high = low = close``
and ``volume = 0`` (unknown, not "nothing traded"), and the frame carries
``attrs["close_only"] = True`` (:func:`is_close_only`). Such bars can only be
traded at a close: a ``next_open`` fill is the next bar's close, and an intrabar
stop or limit cannot be simulated on them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pandas as pd

from tradelab.data.bars import normalize_frame, slice_time, utc
from tradelab.data.bars import to_utc_index as utc_index
from tradelab.errors import DataSourceError

# symbol -> (file under arch/data, description)
SYMBOLS: dict[str, tuple[str, str]] = {
    "SPX": ("sp500/sp500.csv.gz", "S&P 500 index, daily, 1999-2018"),
    "IXIC": ("nasdaq/nasdaq.csv.gz", "NASDAQ Composite index, daily, 1999-2018"),
}


# The 20 large caps of skfolio's ``sp500_dataset.csv.gz`` (columns Date + tickers).
STOCKS: tuple[str, ...] = (
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
    "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
)
_SKFOLIO_FILE = "sp500_dataset.csv.gz"
CLOSE_ONLY = "close_only"  # the attrs key marking close-only bars


def _package_dir(package: str, sub: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(
            f"sample source needs the {package!r} package (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations))) / sub


def _arch_data_dir() -> Path:
    return _package_dir("arch", "data")


def is_close_only(bars: pd.DataFrame) -> bool:
    """Whether ``bars`` hold closes only (``open = high = low = close``, no volume).

    True when the frame is marked ``attrs["close_only"]`` (the sample source's stocks), or
    when every bar has ``open == high == low == close`` and zero volume (the mark can be
    lost by operations that do not keep ``attrs``).
    """
    if bars.attrs.get(CLOSE_ONLY):
        return True
    if len(bars) == 0 or not {"open", "high", "low", "close", "volume"} <= set(bars.columns):
        return False
    close = bars["close"]
    return bool((bars["open"].eq(close) & bars["high"].eq(close) & bars["low"].eq(close)).all()
                and bars["volume"].fillna(0).eq(0).all())


def _load_stock(symbol: str) -> pd.DataFrame:
    closes = pd.read_csv(_package_dir("skfolio", "datasets/data") / _SKFOLIO_FILE,
                         usecols=["Date", symbol], index_col="Date", parse_dates=True)[symbol]
    closes = closes.dropna().astype("float64")
    out = pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes,
                        "volume": 0.0})
    out.index = utc_index(out.index)
    out.attrs[CLOSE_ONLY] = True
    return out


class SampleSource:
    """Real, offline daily bars: ``SPX`` and ``IXIC`` (OHLCV), and 20 large caps (close only)."""

    name = "sample"
    adjust = "raw"

    def __repr__(self) -> str:
        return "SampleSource(SPX, IXIC from arch; 20 large caps from skfolio)"

    def symbols(self) -> dict[str, str]:
        """Symbol → description."""
        out = {k: v[1] for k, v in SYMBOLS.items()}
        out.update({s: f"{s} adjusted close (close only), daily, 1990-2022" for s in STOCKS})
        return out

    def fingerprint(self, symbol: str) -> str:
        if symbol.upper() in STOCKS:
            return f"skfolio-{importlib.metadata.version('skfolio')}"
        return f"arch-{importlib.metadata.version('arch')}"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame:
        key = symbol.upper().lstrip("^")
        if key not in SYMBOLS and key not in STOCKS:
            raise DataSourceError(
                f"sample source: unknown symbol {symbol!r}; available: "
                f"{', '.join([*SYMBOLS, *STOCKS])}")
        if interval != "1d":
            raise DataSourceError(f"sample source: interval {interval!r} not available; only '1d'")
        if adjust not in ("raw", "adjusted"):
            raise DataSourceError(f"sample source: adjust={adjust!r}; expected raw or adjusted")
        if key in STOCKS:
            # skfolio's closes are already adjusted (splits and dividends): raw = adjusted.
            bars = slice_time(_load_stock(key), start, end)
            bars.attrs[CLOSE_ONLY] = True
            return bars
        raw = pd.read_csv(_arch_data_dir() / SYMBOLS[key][0], index_col=0, parse_dates=True)
        return slice_time(normalize_frame(raw, adjust), start, end)


__all__ = ["CLOSE_ONLY", "STOCKS", "SYMBOLS", "SampleSource", "is_close_only", "utc"]
