"""CSV and Parquet files, one per symbol: ``<root>/<SYMBOL>.csv`` or ``.parquet``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tradelab.data.bars import Adjust, interval_timedelta, normalize_frame, slice_time
from tradelab.errors import DataSourceError

SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pq")


class FileSource:
    """Bars from local files in Yahoo, Quandl or contract layout.

    Parameters
    ----------
    root
        Folder holding ``<symbol>.csv`` / ``<symbol>.parquet``. A symbol that is
        itself a path to a ``.csv``/``.parquet`` file is read directly
        (relative paths are tried against the working directory, then ``root``).
    adjust
        Default price adjustment for this source (``"raw"`` or ``"adjusted"``).

    Notes
    -----
    Files may be newest-first (Quandl) or oldest-first; column names are matched
    case-insensitively (see :func:`tradelab.data.bars.normalize_frame`).
    """

    name = "file"

    def __init__(self, root: Path | str, adjust: Adjust = "raw") -> None:
        self.root = Path(root)
        self.adjust = adjust

    def __repr__(self) -> str:
        return f"FileSource(root={str(self.root)!r}, adjust={self.adjust!r})"

    def candidates(self, symbol: str) -> list[Path]:
        """The paths tried for ``symbol``, in order."""
        as_path = Path(symbol).expanduser()
        if as_path.suffix.lower() in SUFFIXES:
            return [as_path] if as_path.is_absolute() else [as_path, self.root / as_path]
        return [self.root / f"{symbol}{suffix}" for suffix in SUFFIXES]

    def path(self, symbol: str) -> Path:
        """The file for ``symbol``.

        Raises
        ------
        DataSourceError
            No candidate exists; the message lists every path tried.
        """
        tried = self.candidates(symbol)
        for p in tried:
            if p.is_file():
                return p
        raise DataSourceError(
            f"file source: no data file for symbol {symbol!r}; tried "
            + ", ".join(str(p) for p in tried))

    def symbols(self) -> list[str]:
        """Symbols with a file under ``root`` (empty when the folder does not exist)."""
        if not self.root.is_dir():
            return []
        return sorted({p.stem for p in self.root.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES})

    def fingerprint(self, symbol: str) -> str:
        """``path:mtime_ns:size``: any rewrite of the file changes it."""
        p = self.path(symbol)
        st = p.stat()
        return f"{p.resolve()}:{st.st_mtime_ns}:{st.st_size}"

    def read(self, symbol: str) -> pd.DataFrame:
        """The file as stored, without normalization."""
        p = self.path(symbol)
        try:
            if p.suffix.lower() == ".csv":
                return pd.read_csv(p)
            frame = pd.read_parquet(p)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataSourceError(f"file source: cannot read {p}: {exc}") from None
        # A contract frame written with to_parquet keeps its time index; give it
        # back as a column so normalize_frame finds it the same way as in a CSV.
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.reset_index(names=frame.index.name or "time")
        return frame

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str | None = None) -> pd.DataFrame:
        """Bars for ``symbol`` between ``start`` and ``end`` (inclusive).

        Raises
        ------
        DataSourceError
            Missing or unreadable file, or bars spaced differently from ``interval``
            (a file has one bar size; it is never resampled silently).
        """
        frame = self.read(symbol)
        try:
            bars = normalize_frame(frame, adjust or self.adjust)
        except (ValueError, TypeError, DataSourceError) as exc:
            raise DataSourceError(f"file source: {self.path(symbol)}: {exc}") from None
        self._check_interval(bars, symbol, interval)
        return slice_time(bars, start, end)

    def _check_interval(self, bars: pd.DataFrame, symbol: str, interval: str) -> None:
        want = interval_timedelta(interval)
        if want is None or len(bars) < 3:
            return
        diffs = np.diff(np.sort(bars.index.asi8))
        diffs = diffs[diffs > 0]
        if not len(diffs):
            return
        typical = pd.Timedelta(int(np.median(diffs)), unit=bars.index.unit)
        # Daily files have a 1-day median; weekly/intraday ones their own bar size.
        if not (want * 0.5 <= typical <= want * 1.5):
            raise DataSourceError(
                f"file source: {self.path(symbol)} holds bars about {typical} apart, "
                f"not interval {interval!r}")
