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
