"""The :class:`PortfolioStrategy` base: target weights over a universe, on a schedule.

A portfolio strategy implements ``weights(panel)`` once: a time × symbol frame of
target weights (fractions of equity; negative = short) computed from a
:class:`~tradelab.data.universe.Panel`. It must be causal: the row at bar *t* may use
bars up to and including *t* only (:func:`check_weights_lookahead` verifies it).
Weights are read only on the bars of the rebalance schedule; the orders that move
the book there come from :func:`tradelab.orders.rebalance.rebalance`.

Schedules (:func:`rebalance_bars`), all decided from time stamps up to the bar itself
(so a schedule never peeks at the next bar's date):

``"M"``
    The first bar of each calendar month (and the first bar of the data), like bt's
    ``RunMonthly()``: the weights computed on it use everything up to that bar.
``"W"``
    The first bar of each ISO week (and the first bar).
``N`` (an int, or ``"5"``)
    Every ``N`` bars: bars 0, N, 2N, ...
``"change"``
    The bars whose target weights differ from the previous bar's (and the first bar):
    a signal-driven strategy (a pairs trade) trades when its signal changes, and
    otherwise lets its positions drift.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel, universe_symbols
from tradelab.errors import ParameterError, TradelabError
from tradelab.strategy.base import Parameterized

Schedule = str | int
_TOL = 1e-9  # float slack on the gross limit (weights are floats)


class WeightsError(TradelabError):
    """A strategy's weights break the contract (the message names the bar and symbol)."""


def rebalance_bars(index: pd.DatetimeIndex, schedule: Schedule,
                   weights: pd.DataFrame | None = None) -> np.ndarray:
    """Boolean array: bar ``t`` is a rebalance bar under ``schedule`` (module docstring);
    ``"change"`` needs the target ``weights``."""
    n = len(index)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    if isinstance(schedule, str) and schedule.strip().isdigit():
        schedule = int(schedule)
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        if schedule < 1:
            raise ParameterError(f"rebalance = {schedule!r}: every N bars needs N >= 1")
        out[::schedule] = True
        return out
    idx = pd.DatetimeIndex(index)
    if schedule == "change":
        if weights is None:
            raise ParameterError("rebalance = 'change' needs the target weights")
        w = weights.to_numpy()
        out[0] = True
        out[1:] = (w[1:] != w[:-1]).any(axis=1)
        return out
    if schedule == "M":
        key = idx.year.to_numpy() * 12 + idx.month.to_numpy()
    elif schedule == "W":
        iso = idx.isocalendar()
        key = iso["year"].to_numpy().astype(np.int64) * 60 + iso["week"].to_numpy().astype(np.int64)
    else:
        raise ParameterError(
            f"rebalance = {schedule!r}: expected 'M', 'W', 'change' or a number of bars")
    out[0] = True
    out[1:] = key[1:] != key[:-1]
    return out


class PortfolioStrategy(Parameterized, ABC):
    """Base class of strategies that hold target weights over a universe.

    Subclasses set ``name``, ``universe`` (a universe name such as ``"sp20"`` or a
    tuple of symbols), ``rebalance`` (a schedule), optionally ``max_gross`` (the
    largest sum of absolute weights, default 1) and :class:`~tradelab.strategy.base.Param`
    attributes, and implement :meth:`weights`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    universe: ClassVar[str | tuple[str, ...]] = ()
    rebalance: ClassVar[Schedule] = "M"
    max_gross: ClassVar[float] = 1.0

    def __init__(self, **params: Any) -> None:
        self._init_params(params)
        self.validate_params()

    def symbols(self) -> tuple[str, ...]:
        """The default universe's symbols."""
        return universe_symbols(self.universe)

    @property
    def warmup(self) -> int:
        """Bars of history (including the current bar) the last row of weights reads."""
        return 1

    @property
    def required_symbols(self) -> tuple[str, ...]:
        """Symbols :meth:`weights` reads by name, which any universe it runs on must hold
        (``pairs_kopep``: its two legs); ``()`` (the default): any universe will do.

        :func:`require_symbols` checks it before a backtest or an engine runs, so a
        missing leg is one error naming it rather than a ``KeyError`` in :meth:`weights`.
        """
        return ()

    @property
    def decision_window(self) -> int | None:
        """Bars (including the current one) that the **last** row of :meth:`weights`
        depends on, or ``None``: it may depend on the whole history (the default).

        The engine hands the strategy only this many bars by default
        (:class:`~tradelab.engine.rebalancer.Rebalancer`), which decides the same as
        research only when the declaration is true: a strategy with state carried
        through all its history (a position that flips on threshold crossings, as in
        ``pairs_kopep``) must keep ``None``. :func:`check_weights_lookahead` verifies a
        declared window.
        """
        return None

    @abstractmethod
    def weights(self, panel: Panel) -> pd.DataFrame:
        """Target weights, time × symbol, aligned with ``panel``; causal."""

    def target_weights(self, panel: Panel) -> pd.DataFrame:
        """:meth:`weights`, checked and normalized: every panel symbol as a column (missing
        ones 0), NaN → 0, float64.

        Raises
        ------
        WeightsError
            Wrong length, an unknown symbol, a non-finite weight, a non-zero weight on a
            symbol before its first bar, or a gross exposure above ``max_gross``.
        """
        raw = self.weights(panel)
        if not isinstance(raw, pd.DataFrame) or len(raw) != len(panel):
            got = len(raw) if hasattr(raw, "__len__") else type(raw).__name__
            raise WeightsError(f"{self.name}.weights returned {got} rows for {len(panel)} bars")
        # NumPy after one conversion: the engine calls this on every rebalance, where the
        # frame methods (reindex, astype, fillna) cost more than the strategy's weights.
        values, columns = _as_panel_columns(raw, panel.close.columns)
        if values is None:
            symbols = panel.symbols
            unknown = [str(c) for c in raw.columns if c not in symbols]
            if unknown:
                raise WeightsError(f"{self.name}.weights: symbol(s) {', '.join(unknown)} not "
                                   f"in the panel ({', '.join(symbols)})")
            w = raw.reindex(columns=list(symbols)).astype("float64")
            values, columns = w.to_numpy(copy=True), w.columns
        values[np.isnan(values)] = 0.0
        bad = ~np.isfinite(values)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise WeightsError(f"{self.name}.weights: weight of {panel.symbols[j]} at "
                               f"{panel.index[t]} is {values[t, j]}; must be finite")
        early = (values != 0) & ~panel.listed.to_numpy(dtype=bool)
        if early.any():
            t, j = np.argwhere(early)[0]
            raise WeightsError(
                f"{self.name}.weights: weight {values[t, j]:g} on {panel.symbols[j]} at "
                f"{panel.index[t]}, before its first bar; it must be 0 there")
        gross = np.abs(values).sum(axis=1)
        over = np.flatnonzero(gross > self.max_gross + _TOL)
        if over.size:
            t = int(over[0])
            raise WeightsError(f"{self.name}.weights: gross exposure {gross[t]:.6g} at "
                               f"{panel.index[t]} exceeds max_gross = {self.max_gross}")
        index = panel.close.index
        return pd.DataFrame(values, columns=columns, copy=False,
                            index=index if isinstance(index, pd.DatetimeIndex) else panel.index)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"


_STR = pd.Index(["A"]).dtype  # the dtype of an Index built from a list of symbols


def _as_panel_columns(raw: pd.DataFrame, cols: pd.Index) -> tuple[Any, pd.Index]:
    """``raw``'s float64 values and ``reindex(columns=list(panel.symbols))``'s columns when
    ``raw`` has the panel's (string) columns in order and only float64 data, the common
    case, where the reindex would change nothing; ``(None, cols)`` otherwise."""
    if cols.dtype != _STR or not (raw.columns is cols or raw.columns.equals(cols)):
        return None, cols
    values = raw.to_numpy(copy=True)
    if values.dtype != np.float64:  # ints, bools, objects: astype's conversion
        return None, cols
    name = raw.columns.name  # reindex keeps the name of the columns it replaces
    return values, cols if cols.name == name else cols.rename(name)


@dataclass(frozen=True)
class WeightsOffense:
    """The first weight that changed when later bars were added."""

    bar: pd.Timestamp
    position: int
    symbol: str
    full: float
    partial: float
    prefix_end: pd.Timestamp

    def __str__(self) -> str:
        return (f"lookahead: weight of {self.symbol} at bar {self.position} "
                f"({self.bar:%Y-%m-%d %H:%M}) is {self.full:.10g} on the full history but "
                f"{self.partial:.10g} with data ending {self.prefix_end:%Y-%m-%d %H:%M}: the "
                "weights read bars after the one they are for")


@dataclass(frozen=True)
class WindowOffense:
    """A last-row weight that changed when only the declared window of bars was given."""

    bar: pd.Timestamp
    position: int
    symbol: str
    full: float
    windowed: float
    window: int

    def __str__(self) -> str:
        return (f"decision_window: weight of {self.symbol} at bar {self.position} "
                f"({self.bar:%Y-%m-%d %H:%M}) is {self.full:.10g} on the full history but "
                f"{self.windowed:.10g} on its last {self.window} bars only: the weights read "
                f"more than the declared decision_window = {self.window}; declare a larger "
                "window, or None if they depend on the whole history")


@dataclass(frozen=True)
class WeightsLookAheadReport:
    """Outcome of :func:`check_weights_lookahead`."""

    strategy: str
    params: dict[str, Any]
    bars: int
    prefixes_checked: int
    offenses: list[WeightsOffense] = field(default_factory=list)
    window: int | None = None
    window_offenses: list[WindowOffense] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No weight changed on a truncated history, nor on the declared window."""
        return not self.offenses and not self.window_offenses

    def __str__(self) -> str:
        head = (f"{self.strategy} {self.params}: {self.prefixes_checked} prefixes over "
                f"{self.bars} bars")
        if self.window is not None:
            head += f", decision_window = {self.window} bars"
        if self.ok:
            return f"{head}: OK"
        lines = [f"{head}: FAILED"]
        if self.offenses:
            lines.append(f"  first offense: {self.offenses[0]}")
        if self.window_offenses:
            lines.append(f"  first window offense: {self.window_offenses[0]}")
        return "\n".join(lines)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def require_symbols(strategy: PortfolioStrategy, symbols: Sequence[str]) -> None:
    """Refuse a universe that names a symbol twice or lacks one of the strategy's
    :attr:`~PortfolioStrategy.required_symbols`.

    Raises
    ------
    TradelabError
        ``"pairs_kopep needs symbols KO and PEP; got KO"``, or the symbol given twice.
    """
    seen: set[str] = set()
    for s in symbols:
        if s in seen:
            raise TradelabError(f"symbols: {s} is given twice ({', '.join(symbols)}); "
                                "give each symbol once")
        seen.add(s)
    needed = tuple(strategy.required_symbols)
    if any(s not in seen for s in needed):
        raise TradelabError(f"{strategy.name} needs symbols {_and(needed)}; got "
                            f"{', '.join(symbols) or '(none)'}")


def declared_window(strategy: PortfolioStrategy) -> int | None:
    """The strategy's :attr:`~PortfolioStrategy.decision_window`, checked.

    Raises
    ------
    WeightsError
        Neither ``None`` nor a whole number of bars >= 1 (the message names the value).
    """
    window = strategy.decision_window
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise WeightsError(f"{strategy.name}.decision_window = {window!r}: must be None or a "
                           "number of bars >= 1")
    return int(window)


def check_weights_lookahead(strategy: PortfolioStrategy, panel: Panel, samples: int = 20,
                            seed: int = 0, atol: float = 1e-12) -> WeightsLookAheadReport:
    """Recompute the weights on truncated histories; every row must stay the same.

    When the strategy declares a :attr:`~PortfolioStrategy.decision_window` of ``N``
    bars, the last row at each sampled end is also recomputed from that end's last
    ``N`` bars only (the tail of the same panel, as the engine hands it) and must equal
    the full history's row (``window_offenses`` otherwise).

    Parameters
    ----------
    strategy
        The strategy (one parameter set).
    panel
        The history to test on.
    samples
        Prefix ends tried: spread over the history plus random ones (the last bar
        always); as many again for the declared window.
    atol
        Absolute tolerance on a weight (floats of a rolling computation may differ in
        the last bits when started elsewhere; here prefixes start at the same bar).

    Raises
    ------
    ValueError
        ``panel`` holds fewer bars than the strategy's ``warmup`` (no prefix could be
        compared), naming both counts.
    """
    n = len(panel)
    first = max(int(strategy.warmup), 1)
    if n < first:
        # Same wording as the signal check (tradelab.strategy.lookahead.check_lookahead).
        raise ValueError(f"{strategy.name}: {n} bar(s) are too few to check; it reads {first} "
                         "bars (its warmup): give a longer history (e.g. widen --start/--end)")
    full = strategy.target_weights(panel).to_numpy()
    rng = np.random.default_rng(seed)
    spread = np.linspace(first, n, num=min(samples, max(n - first, 1)), dtype=int)
    ends = sorted({*spread.tolist(), *rng.integers(first, n + 1, size=samples // 2).tolist(),
                   n - 1, n})
    ends = [e for e in ends if first <= e <= n and e > 0]
    offenses: list[WeightsOffense] = []
    for end in ends:
        part = strategy.target_weights(panel.head(end)).to_numpy()
        diff = np.abs(full[:end] - part) > atol
        if diff.any():
            t, j = (int(x) for x in np.argwhere(diff)[0])
            offenses.append(WeightsOffense(panel.index[t], t, panel.symbols[j],
                                           float(full[t, j]), float(part[t, j]),
                                           panel.index[end - 1]))
            break
    window = declared_window(strategy)
    late = [] if window is None else _check_window(strategy, panel, full, window, samples,
                                                    rng, atol)
    return WeightsLookAheadReport(strategy.name, strategy.params, n, len(ends), offenses,
                                  window, late)


def _check_window(strategy: PortfolioStrategy, panel: Panel, full: np.ndarray, window: int,
                  samples: int, rng: np.random.Generator, atol: float) -> list[WindowOffense]:
    """The first end whose last row differs on the declared window alone (or none)."""
    n = len(panel)
    if n <= window:
        return []  # every end's window is its whole prefix: the prefix check covers it
    # A window's weights are cheap, so the ends past the window get a sample of their own.
    ends = sorted({*np.linspace(window + 1, n, num=min(samples, n - window), dtype=int).tolist(),
                   *rng.integers(window + 1, n + 1, size=samples).tolist(), n})
    for end in ends:
        tail = strategy.target_weights(_rows(panel, end - window, end)).to_numpy()[-1]
        diff = np.abs(full[end - 1] - tail) > atol
        if diff.any():
            j = int(np.argmax(diff))
            return [WindowOffense(panel.index[end - 1], end - 1, panel.symbols[j],
                                  float(full[end - 1, j]), float(tail[j]), window)]
    return []


def _rows(panel: Panel, lo: int, hi: int) -> Panel:
    # Rows lo..hi-1 of the same panel: held closes and ``listed`` as on the whole history.
    return Panel(panel.close.iloc[lo:hi], panel.open.iloc[lo:hi], panel.tradable.iloc[lo:hi],
                 panel.listed.iloc[lo:hi], panel.close_only)


def discover_portfolio_strategies(paths: Iterable[Path]) -> dict[str, type[PortfolioStrategy]]:
    """Name → class of the :class:`PortfolioStrategy` subclasses in ``strategies/*.py`` files
    (the same files, and the same loader, as :class:`~tradelab.strategy.registry.StrategyRegistry`).

    Raises
    ------
    TradelabError
        Two classes under one name (naming both files).
    """
    from tradelab.strategy.registry import _load_file

    found: dict[str, type[PortfolioStrategy]] = {}
    origins: dict[str, Path] = {}
    for folder in paths:
        folder = Path(folder)
        files = [folder] if folder.is_file() else sorted(folder.glob("*.py"))
        for file in files:
            if file.name.startswith("_"):
                continue
            module = _load_file(file)
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, PortfolioStrategy)
                        and not inspect.isabstract(obj) and obj.__module__ == module.__name__
                        and obj.name):
                    if obj.name in found:
                        raise TradelabError(f"portfolio strategy name {obj.name!r} is defined "
                                            f"twice: {origins[obj.name]} and {file}")
                    found[obj.name], origins[obj.name] = obj, file
    return found


__all__ = ["PortfolioStrategy", "WeightsError", "WeightsLookAheadReport", "WeightsOffense",
           "WindowOffense", "check_weights_lookahead", "declared_window",
           "discover_portfolio_strategies", "rebalance_bars", "require_symbols"]
