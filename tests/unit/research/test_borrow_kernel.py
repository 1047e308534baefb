"""The compiled borrow-fee loop equals the plain Python loop (the paper broker's float
operations, one term at a time) bit for bit, on any orders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).parents[3] / "var/numba-cache"))

from tradelab.execution import Execution
from tradelab.research.borrow import _accrue, borrow_fees, cover_charge, interval_seconds

ORDER = np.dtype([("id", np.int64), ("col", np.int64), ("idx", np.int64), ("size", np.float64),
                  ("price", np.float64), ("fees", np.float64), ("side", np.int64)])


def _reference(execution: Execution, records: np.ndarray, closes: np.ndarray,
               seconds: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The loop as written in Python: per column, in bar order."""
    n = len(closes)
    per_bar = np.zeros((n, columns))
    open_accrued = np.zeros(columns)
    for col in range(columns):
        recs = sorted((r for r in records if r["col"] == col), key=lambda r: (r["idx"], r["id"]))
        pos, acc, last = 0.0, 0.0, 0
        for rec in recs:
            i = int(rec["idx"])
            if pos < 0 and i > last:
                acc = _accrue(execution, acc, seconds[last + 1:i + 1], closes[last:i], -pos)
            size = float(rec["size"])
            if rec["side"] == 0 and pos < 0:
                charge = cover_charge(acc, size, -pos)
                per_bar[i, col] += charge
                acc = acc - charge
            pos = pos + size if rec["side"] == 0 else pos - size
            last = i
        if pos < 0:
            open_accrued[col] = _accrue(execution, acc, seconds[last + 1:n], closes[last:n - 1],
                                        -pos)
    return per_bar, open_accrued


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(2, 40), columns=st.integers(1, 4),
       rate=st.floats(1e-4, 0.5))
def test_the_compiled_loop_equals_the_python_loop(data: st.DataObject, n: int, columns: int,
                                                  rate: float) -> None:
    closes = np.array(data.draw(st.lists(st.floats(0.5, 5000.0), min_size=n, max_size=n)))
    gaps = data.draw(st.lists(st.integers(60, 4 * 86_400), min_size=n - 1, max_size=n - 1))
    index = pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC")
                             + pd.to_timedelta(np.concatenate(([0], np.cumsum(gaps))), unit="s"))
    rows = data.draw(st.lists(st.tuples(st.integers(0, columns - 1), st.integers(0, n - 1),
                                        st.floats(0.001, 50.0), st.integers(0, 1)),
                              max_size=30))
    records = np.array([(k, c, i, s, 1.0, 0.0, side) for k, (c, i, s, side) in enumerate(rows)],
                       dtype=ORDER)
    rng = np.random.default_rng(len(rows))
    records = records[rng.permutation(len(records))]  # any order in: sorted inside
    seconds = interval_seconds(index)
    execution = Execution(borrow_fee=rate)
    got = borrow_fees(execution, records, closes, seconds, columns)
    want_bar, want_open = _reference(execution, records, closes, seconds, columns)
    np.testing.assert_array_equal(got.per_bar, want_bar)
    np.testing.assert_array_equal(got.open_accrued, want_open)
