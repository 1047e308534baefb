"""Public fakes and helpers for unit tests. Never used by production code paths.

Sections are owned by the package area they serve; append, don't reorder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# --- data -------------------------------------------------------------------------


def make_bars(n: int = 500, seed: int = 0, start: str = "2020-01-01",
              freq: str = "D", price: float = 100.0) -> pd.DataFrame:
    """Synthetic contract bars (a geometric random walk). Unit tests only.

    Real data is used everywhere else; this exists for tests that need a
    specific, small, fast series.
    """
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[price], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    volume = rng.integers(1_000, 100_000, n).astype(float)
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)

# --- data/cache fakes -------------------------------------------------------------


class CountingSource:
    """A :class:`~tradelab.interfaces.DataSource` over in-memory frames that counts loads.

    ``calls`` records every ``load`` as ``(symbol, start, end, interval, adjust)``;
    assign ``version`` to change the fingerprint, as rewriting a file would.
    """

    def __init__(self, frames: dict[str, pd.DataFrame], name: str = "fake",
                 adjust: str = "raw") -> None:
        self.frames = dict(frames)
        self.name = name
        self.adjust = adjust
        self.version = 0
        self.calls: list[tuple[object, ...]] = []

    def fingerprint(self, symbol: str) -> str:
        return f"{self.name}-v{self.version}"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame:
        from tradelab.data.bars import slice_time
        from tradelab.errors import DataSourceError

        self.calls.append((symbol, start, end, interval, adjust))
        if symbol not in self.frames:
            raise DataSourceError(f"{self.name}: unknown symbol {symbol!r}")
        return slice_time(self.frames[symbol].copy(), start, end)


class ManualClock:
    """Monotonic seconds that only move when told to (for cache TTL tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
