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

Besides ``(entry, exit)``, :meth:`StrategyRunner.update` leaves the last row's
optional fields of :class:`~tradelab.strategy.base.Signals` in
:attr:`StrategyRunner.extra` (``short_entry``, ``short_exit``, ``sl``, ``tp``)
when the strategy provides them; a strategy that returns two flags costs one
length test per bar more than before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tradelab.errors import LookAheadError
from tradelab.strategy.base import Strategy
from tradelab.strategy.exits import Direction, Stops, check_direction

#: ``(short_entry, short_exit, sl, tp)`` of the last row; ``None``: the strategy does
#: not give that field (``sl``/``tp`` NaN: it gives it, and this bar sets no stop).
Extra = tuple[bool | None, bool | None, float | None, float | None]
NO_EXTRA: Extra = (None, None, None, None)

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


def _last_float(values: Any, n: int, name: str, label: str) -> float:
    """The last row of a per-bar stop fraction (NaN: no stop from this bar)."""
    arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name}.signals returned {arr.ndim}-D {label} for one parameter set")
    if arr.shape[0] != n:
        raise ValueError(f"{name}.signals returned {label} of length {arr.shape[0]} for {n} bars")
    return float(arr[-1])


def last_extra(raw: Any, n: int, name: str) -> Extra | None:
    """``(short_entry, short_exit, sl, tp)`` of the last of ``n`` rows of a ``signals``
    result, or ``None`` when it has none of these fields (two flags only)."""
    if len(raw) <= 2:
        return None
    se, sx, sl, tp = (*tuple(raw[2:6]), None, None, None, None)[:4]
    if se is None and sx is None and sl is None and tp is None:
        return None
    return (None if se is None else _last_flag(se, n, name, "short_entries"),
            None if sx is None else _last_flag(sx, n, name, "short_exits"),
            None if sl is None else _last_float(sl, n, name, "sl_stop"),
            None if tp is None else _last_float(tp, n, name, "tp_stop"))


def _all_extra(raw: Any, n: int, warmup: int) -> list[Extra] | None:
    """:func:`last_extra` for every row of a full-history ``signals`` result (rows before
    the warmup carry no flags, like :meth:`Strategy.generate` masks them)."""
    if len(raw) <= 2 or all(x is None for x in tuple(raw[2:6])):
        return None
    se, sx, sl, tp = (*tuple(raw[2:6]), None, None, None, None)[:4]

    def flags(values: Any) -> np.ndarray | None:
        if values is None:
            return None
        arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
        if arr.dtype != bool:
            arr = np.nan_to_num(arr.astype(float), nan=0.0) != 0
        out = np.array(arr, dtype=bool)
        out[: max(warmup - 1, 0)] = False
        return out

    def fracs(values: Any) -> np.ndarray | None:
        if values is None:
            return None
        arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=float)
        return np.broadcast_to(arr, (n,))

    a, b, c, d = flags(se), flags(sx), fracs(sl), fracs(tp)
    return [(None if a is None else bool(a[i]), None if b is None else bool(b[i]),
             None if c is None else float(c[i]), None if d is None else float(d[i]))
            for i in range(n)]


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
    direction, stops
        The side its flags trade and its declared exits (default: the strategy's
        own :attr:`Strategy.direction` and :attr:`Strategy.stops`).
    """

    def __init__(self, strategy: Strategy, symbol: str, mode: str = "window",
                 numpy_path: bool = True, direction: str | None = None,
                 stops: Stops | None = None) -> None:
        if mode not in ("window", "precomputed"):
            raise ValueError(f"mode = {mode!r}: expected window or precomputed")
        if getattr(strategy, "_batch", None) is not None:
            raise ValueError(f"{strategy.name}: the engine runs one parameter set, not a sweep batch")
        self.strategy, self.symbol, self.mode = strategy, symbol, mode
        self.direction: Direction = check_direction(direction or strategy.direction)
        self.stops: Stops = stops if stops is not None else strategy.stops
        #: Long-only flags and no declared exits: the engine's original (fastest) path.
        self.plain = self.direction == "long" and not self.stops.active
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
        self._pre_extra: dict[int, Extra] | None = None
        #: ``(short_entry, short_exit, sl, tp)`` of the last :meth:`update`'s row (:data:`Extra`).
        self.extra: Extra = NO_EXTRA
        #: True once the strategy returned any of those fields (then it is not long-only).
        self.has_extra = False
        #: Which per-bar stop fractions the strategy gave (``"sl_stop"``, ``"tp_stop"``).
        self.per_bar_stops: set[str] = set()
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
        keys = full.index.as_unit("ns").asi8
        self._pre = {int(k): (bool(a), bool(b)) for k, a, b in zip(keys, ent, ex, strict=True)}
        extra = _all_extra(self.strategy.signals(full), len(full), self.warmup)
        if extra is not None:
            self._pre_extra = {int(k): x for k, x in zip(keys, extra, strict=True)}
            self.has_extra, self.plain = True, False
            self._note_stops(extra[-1])
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
            key = _ns(t)
            if self._pre_extra is not None:
                self.extra = self._pre_extra.get(key, NO_EXTRA)
            return self._pre.get(key, (False, False))
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
            # A Signals may carry short flags or stop fractions: identity tests only,
            # so that a long-only Signals costs next to nothing here.
            if len(raw) > 2 and (len(raw) != 6 or raw[2] is not None or raw[3] is not None
                                 or raw[4] is not None or raw[5] is not None):
                self._take_extra(raw, warmup)
            elif self.has_extra:
                self.extra = NO_EXTRA
            # _last_flag, inline for the usual result (1-D bool arrays of the window's length)
            if (type(entries) is _ndarray and type(exits) is _ndarray and entries.dtype == _BOOL
                    and exits.dtype == _BOOL and entries.shape == exits.shape == (warmup,)):
                return bool(entries[warmup - 1]), bool(exits[warmup - 1])
            name = self.strategy.name
            return (_last_flag(entries, warmup, name, "entries"),
                    _last_flag(exits, warmup, name, "exits"))
        index = pd.DatetimeIndex(self._times[start:end].view("M8[ns]")).tz_localize("UTC")
        frame = pd.DataFrame(self._buf[:, start:end].T, index=index, columns=COLUMNS)
        raw = self.strategy.signals(frame)
        name = self.strategy.name
        self._take_extra(raw, warmup)
        return (_last_flag(raw[0], warmup, name, "entries"),
                _last_flag(raw[1], warmup, name, "exits"))

    def _take_extra(self, raw: Any, warmup: int) -> None:
        extra = last_extra(raw, warmup, self.strategy.name)
        if extra is None:
            self.extra = NO_EXTRA
        else:
            self.extra, self.has_extra, self.plain = extra, True, False
            self._note_stops(extra)

    def _note_stops(self, extra: Extra) -> None:
        if extra[2] is not None:
            self.per_bar_stops.add("sl_stop")
        if extra[3] is not None:
            self.per_bar_stops.add("tp_stop")
