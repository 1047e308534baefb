"""The embedded ``sample`` source: real daily index history shipped by the ``arch`` package.

``arch`` (NCSA licence) ships the S&P 500 and NASDAQ Composite daily OHLC,
volume and adjusted close for 1999-01-04..2018-12-31 (5,031 bars each). The
files are read straight from the installed package without importing ``arch``
itself, which would pull in SciPy and statsmodels.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pandas as pd

from tradelab.data.bars import normalize_frame, slice_time, utc
from tradelab.errors import DataSourceError

# symbol -> (file under arch/data, description)
SYMBOLS: dict[str, tuple[str, str]] = {
    "SPX": ("sp500/sp500.csv.gz", "S&P 500 index, daily, 1999-2018"),
    "IXIC": ("nasdaq/nasdaq.csv.gz", "NASDAQ Composite index, daily, 1999-2018"),
}


def _arch_data_dir() -> Path:
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError("sample source needs the 'arch' package (pip install arch)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class SampleSource:
    """Real, offline daily bars: ``SPX`` and ``IXIC``."""

    name = "sample"
    adjust = "raw"

    def __repr__(self) -> str:
        return "SampleSource(SPX, IXIC from arch)"

    def symbols(self) -> dict[str, str]:
        """Symbol → description."""
        return {k: v[1] for k, v in SYMBOLS.items()}

    def fingerprint(self, symbol: str) -> str:
        return f"arch-{importlib.metadata.version('arch')}"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame:
        key = symbol.upper().lstrip("^")
        if key not in SYMBOLS:
            raise DataSourceError(
                f"sample source: unknown symbol {symbol!r}; available: {', '.join(SYMBOLS)}")
        if interval != "1d":
            raise DataSourceError(f"sample source: interval {interval!r} not available; only '1d'")
        if adjust not in ("raw", "adjusted"):
            raise DataSourceError(f"sample source: adjust={adjust!r}; expected raw or adjusted")
        raw = pd.read_csv(_arch_data_dir() / SYMBOLS[key][0], index_col=0, parse_dates=True)
        return slice_time(normalize_frame(raw, adjust), start, end)


__all__ = ["SYMBOLS", "SampleSource", "utc"]
