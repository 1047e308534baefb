"""The indicators' per-bar fast paths give the bits of the general formulas (research/live parity)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.indicator_reference import reference_cross, reference_mean
from tradelab.strategy import indicators as ind


def test_window_mean_and_crosses_are_bit_identical(spx: pd.DataFrame) -> None:
    close = spx["close"].to_numpy()
    rng = np.random.default_rng(3)
    for v in (close, close[::3], rng.normal(size=700) * 1e4):  # contiguous and strided
        for w in (1, 2, 8, 9, 10, 30, 129, len(v), len(v) + 1):
            assert ind.sma(v, w).tobytes() == reference_mean(v, w).tobytes()
    buf = np.empty((5, 256))
    view = buf.view()
    view.flags.writeable = False  # the engine's read-only window columns
    for end in range(31, len(close), 97):
        buf[3, :31] = close[end - 31:end]
        col = view[3, :31]
        fast, slow = ind.sma(col, 10), ind.sma(col, 30)
        assert fast.tobytes() == reference_mean(close[end - 31:end].copy(), 10).tobytes()
        assert (ind.crossed_above(fast, slow) == reference_cross(fast, slow, True)).all()
        assert (ind.crossed_below(fast, slow) == reference_cross(fast, slow, False)).all()
