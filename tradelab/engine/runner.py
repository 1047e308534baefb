"""Runs an unchanged :class:`~tradelab.strategy.base.Strategy` bar by bar.

At each bar the runner evaluates ``strategy.generate(window)`` on the last
``strategy.warmup`` bars and returns the flags of the last row, which is what
``tradelab check`` verifies equals the full-history signal (the *window*
check). Bars go into a numpy ring buffer and the window DataFrame is a view of
``warmup`` rows, so per-bar cost is one small DataFrame plus the strategy's
own vectorized code.

``mode="precomputed"`` (replays only) computes the signals of all bars the
replay will deliver in one vectorized call after the look-ahead check has
passed; for a causal strategy the flags are identical (the parity tests run
both modes), it just removes per-bar pandas work from the loop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tradelab.errors import LookAheadError
from tradelab.strategy.base import Strategy

COLUMNS = ["open", "high", "low", "close", "volume"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = timedelta(microseconds=1)


def _ns(t: datetime) -> int:
    return (t - _EPOCH) // _NS * 1000


class StrategyRunner:
    """Rolling-window evaluation of one strategy on one symbol."""

    def __init__(self, strategy: Strategy, symbol: str, mode: str = "window") -> None:
        if mode not in ("window", "precomputed"):
            raise ValueError(f"mode = {mode!r}: expected window or precomputed")
        self.strategy, self.symbol, self.mode = strategy, symbol, mode
        self.warmup = max(int(strategy.warmup), 1)
        cap = max(4 * self.warmup, 256)
        self._buf = np.empty((cap, 5))
        self._times = np.empty(cap, dtype=np.int64)
        self._end = 0      # rows used in the buffer
        self.seen = 0      # bars received (history included)
        self._pre: dict[int, tuple[bool, bool]] | None = None

    @property
    def name(self) -> str:
        return self.strategy.name

    def prime(self, history: pd.DataFrame) -> None:
        """Feed warmup bars (before the first live bar) without evaluating."""
        for t, row in zip(history.index, history[COLUMNS].to_numpy(float), strict=True):
            self._push(_ns(t.to_pydatetime()), row)

    def precompute(self, bars: pd.DataFrame, history: pd.DataFrame | None = None,
                   check: bool = True) -> None:
        """Switch to precomputed flags for ``bars`` (history + the replay's bars)."""
        from tradelab.strategy.lookahead import check_lookahead

        full = pd.concat([history, bars]) if history is not None and len(history) else bars
        if check:
            report = check_lookahead(self.strategy, full, samples=20)
            if not report.ok:
                raise LookAheadError(str(report))
        sig = self.strategy.generate(full)
        ent, ex = sig.entries.to_numpy(bool), sig.exits.to_numpy(bool)
        self._pre = {int(k): (bool(a), bool(b))
                     for k, a, b in zip(full.index.as_unit("ns").asi8, ent, ex, strict=True)}
        self.mode = "precomputed"

    def _push(self, t_ns: int, row: object) -> None:
        if self._end == len(self._buf):
            keep = self.warmup - 1  # slide: keep the rows the next window needs
            self._buf[:keep] = self._buf[self._end - keep:self._end]
            self._times[:keep] = self._times[self._end - keep:self._end]
            self._end = keep
        self._buf[self._end] = row
        self._times[self._end] = t_ns
        self._end += 1
        self.seen += 1

    def update(self, t: datetime, o: float, h: float, low: float, c: float, v: float) -> tuple[bool, bool]:
        """Add a bar and return ``(entry, exit)`` for it."""
        t_ns = _ns(t)
        if self._pre is not None:
            self.seen += 1
            return self._pre.get(t_ns, (False, False))
        self._push(t_ns, (o, h, low, c, v))
        if self.seen < self.warmup:
            return False, False  # generate() would mask these rows anyway
        start = self._end - self.warmup
        index = pd.DatetimeIndex(self._times[start:self._end].view("M8[ns]")).tz_localize("UTC")
        window = pd.DataFrame(self._buf[start:self._end], index=index, columns=COLUMNS, copy=False)
        sig = self.strategy.generate(window)
        return bool(sig.entries.to_numpy()[-1]), bool(sig.exits.to_numpy()[-1])
