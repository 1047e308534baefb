"""Runs an unchanged :class:`~tradelab.strategy.base.Strategy` bar by bar.

At each bar the runner evaluates the strategy on the last ``strategy.warmup``
bars and returns the flags of the last row, which is what ``tradelab check``
verifies equals the full-history signal (the *window* check). Bars go into a
numpy ring buffer, one contiguous row per column.

Two ways to hand the window to the strategy, chosen per strategy:

* ``numpy_columns = True`` (the shipped strategies): ``signals`` receives a
  :class:`ColumnWindow`, a read-only mapping from column name to a numpy view
  of the buffer. No pandas object is built per bar; the flags of the last row
  are normalized exactly as :meth:`Strategy.generate` does (bool, NaN → False,
  length check). Per-bar cost is the strategy's own numpy code.
* otherwise: a ``warmup``-row DataFrame over the buffer and
  ``strategy.generate(window)``, as research would call it.

``mode="precomputed"`` (replays only) computes the signals of all bars the
replay will deliver in one vectorized call after the look-ahead check has
passed; for a causal strategy the flags are identical (the parity tests run
both modes), it just removes per-bar strategy work from the loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tradelab.errors import LookAheadError
from tradelab.strategy.base import Strategy

COLUMNS = ["open", "high", "low", "close", "volume"]
_COL = {name: i for i, name in enumerate(COLUMNS)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = timedelta(microseconds=1)


def _ns(t: datetime) -> int:
    return (t - _EPOCH) // _NS * 1000


class ColumnWindow:
    """The last ``len(self)`` bars as read-only numpy columns: ``window["close"]``.

    What a ``numpy_columns`` strategy receives instead of a DataFrame. It is
    re-pointed at the buffer on every bar (one object, no per-bar allocation
    besides the column slices the strategy asks for). The columns are views,
    valid during the call: a strategy must not keep them across bars.
    """

    __slots__ = ("_data", "_end", "_rows", "_start")
    columns = tuple(COLUMNS)

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self._rows = tuple(data)  # 1-D read-only rows: slicing one is cheaper than data[i, a:b]
        self._start = self._end = 0

    def __getitem__(self, column: str) -> np.ndarray:
        return self._rows[_COL[column]][self._start:self._end]

    def __contains__(self, column: object) -> bool:
        return column in _COL

    def __iter__(self) -> Iterator[str]:
        return iter(COLUMNS)

    def __len__(self) -> int:
        return self._end - self._start

    def to_frame(self, times: np.ndarray) -> pd.DataFrame:
        """The window as a contract DataFrame (for debugging; the hot path never calls it)."""
        index = pd.DatetimeIndex(times[self._start:self._end].view("M8[ns]")).tz_localize("UTC")
        return pd.DataFrame({c: self[c] for c in COLUMNS}, index=index)


_BOOL = np.dtype(bool)
_ndarray = np.ndarray


def _last_flag(flags: Any, n: int, name: str, label: str) -> bool:
    # Mirrors Strategy.generate for the last row: bool as is, numbers → nonzero
    # and not NaN; the warmup mask never applies (the window is warmup rows long).
    if type(flags) is _ndarray and flags.dtype == _BOOL and flags.ndim == 1 and flags.shape[0] == n:
        return bool(flags[n - 1])  # the usual result (a 1-D bool array): the same checks, inline
    arr = np.asarray(flags.to_numpy() if hasattr(flags, "to_numpy") else flags)
    if arr.ndim != 1:
        raise ValueError(f"{name}.signals returned {arr.ndim}-D {label} for one parameter set")
    if arr.shape[0] != n:
        raise ValueError(f"{name}.signals returned {label} of length {arr.shape[0]} for {n} bars")
    last = arr[-1]
    if arr.dtype == bool:
        return bool(last)
    value = float(last)
    return value == value and value != 0.0


class StrategyRunner:
    """Rolling-window evaluation of one strategy on one symbol.

    Parameters
    ----------
    strategy
        A single-parameter-set strategy (not a sweep batch).
    symbol
        The symbol whose bars it receives.
    mode
        ``"window"`` (evaluate per bar) or ``"precomputed"`` (see :meth:`precompute`).
    numpy_path
        Use the :class:`ColumnWindow` path when the strategy declares
        ``numpy_columns`` (default); ``False`` forces the DataFrame path.
    """

    def __init__(self, strategy: Strategy, symbol: str, mode: str = "window",
                 numpy_path: bool = True) -> None:
        if mode not in ("window", "precomputed"):
            raise ValueError(f"mode = {mode!r}: expected window or precomputed")
        if getattr(strategy, "_batch", None) is not None:
            raise ValueError(f"{strategy.name}: the engine runs one parameter set, not a sweep batch")
        self.strategy, self.symbol, self.mode = strategy, symbol, mode
        self.warmup = max(int(strategy.warmup), 1)
        self.numpy_path = bool(numpy_path and getattr(strategy, "numpy_columns", False))
        cap = max(4 * self.warmup, 256)
        self._buf = np.empty((5, cap))
        readonly = self._buf.view()
        readonly.flags.writeable = False  # a strategy must not be able to edit history
        self._window = ColumnWindow(readonly)
        self._times = np.empty(cap, dtype=np.int64)
        self._end = 0      # rows used in the buffer
        self.seen = 0      # bars received (history included)
        self._pre: dict[int, tuple[bool, bool]] | None = None
        self._signals = strategy.signals  # bound once: the hot path calls it every bar
        self._cols = tuple(self._buf)  # one 1-D row per column: cheaper to index than (col, row)
        self._cap = cap
        if self.numpy_path:  # compile the indicator kernels now, not on the first live bar
            from tradelab.strategy.indicators import warm_up

            warm_up()

    @property
    def name(self) -> str:
        return self.strategy.name

    def prime(self, history: pd.DataFrame) -> None:
        """Feed warmup bars (before the first live bar) without evaluating."""
        for t, row in zip(history.index, history[COLUMNS].to_numpy(float), strict=True):
            self._push(_ns(t.to_pydatetime()), *row)

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

    def _push(self, t_ns: int, o: float, h: float, low: float, c: float, v: float) -> None:
        end = self._end
        if end == self._cap:
            end = self._slide()
        c0, c1, c2, c3, c4 = self._cols
        c0[end] = o
        c1[end] = h
        c2[end] = low
        c3[end] = c
        c4[end] = v
        self._times[end] = t_ns
        self._end = end + 1
        self.seen += 1

    def _slide(self) -> int:
        """Move the rows the next window needs to the front of the buffer; the new end."""
        end, keep = self._end, self.warmup - 1
        self._buf[:, :keep] = self._buf[:, end - keep:end]
        self._times[:keep] = self._times[end - keep:end]
        self._end = keep
        return keep

    def update(self, t: datetime, o: float, h: float, low: float, c: float, v: float) -> tuple[bool, bool]:
        """Add a bar and return ``(entry, exit)`` for it."""
        if self._pre is not None:
            self.seen += 1
            return self._pre.get(_ns(t), (False, False))
        self._push(_ns(t), o, h, low, c, v)
        end, seen = self._end, self.seen
        warmup = self.warmup
        if seen < warmup:
            return False, False  # generate() would mask these rows anyway
        start = end - warmup
        if self.numpy_path:
            window = self._window
            window._start, window._end = start, end
            raw = self._signals(window)
            entries, exits = raw[0], raw[1]
            # _last_flag, inline for the usual result (1-D bool arrays of the window's length)
            if (type(entries) is _ndarray and type(exits) is _ndarray and entries.dtype == _BOOL
                    and exits.dtype == _BOOL and entries.shape == exits.shape == (warmup,)):
                return bool(entries[warmup - 1]), bool(exits[warmup - 1])
            name = self.strategy.name
            return (_last_flag(entries, warmup, name, "entries"),
                    _last_flag(exits, warmup, name, "exits"))
        index = pd.DatetimeIndex(self._times[start:end].view("M8[ns]")).tz_localize("UTC")
        frame = pd.DataFrame(self._buf[:, start:end].T, index=index, columns=COLUMNS)
        sig = self.strategy.generate(frame)
        return bool(sig.entries.to_numpy()[-1]), bool(sig.exits.to_numpy()[-1])
