"""Direction and declared exits: one set of rules for research, the engine and live.

A strategy trades ``long`` (today's default), ``short`` or ``both`` and may declare
exits that the framework applies for it: a stop-loss, a take-profit and a trailing
stop, as fractions of the entry's fill price (per-bar fractions, e.g. an ATR
multiple divided by the close, come from :class:`~tradelab.strategy.base.Signals`'
``sl_stop``/``tp_stop``), and a time stop in bars.

Direction of boolean signals
----------------------------
* ``long``: ``entries`` buy, ``exits`` sell what is held (unchanged behaviour).
* ``short``: ``entries`` sell short, ``exits`` buy the short back (the same flags,
  mirrored).
* ``both``: ``entries`` go long and ``exits`` go short, each reversing the other
  (vectorbt's ``direction="both"``).
* A strategy that fills ``Signals.short_entries``/``short_exits`` states both sides
  explicitly; ``entries``/``exits`` are then the long side only.

Intrabar rules (the one documented order; :func:`apply_exits` implements it)
------------------------------------------------------------------------------
Per bar, for a position opened on an earlier bar:

1. The stops are checked **before** anything else this bar does; a position opened
   at this bar's open or close is checked from the next bar on.
2. The stop-loss (fixed or trailing) is checked first, the take-profit second:
   when one bar touches both, the stop-loss wins (pessimistic).
3. A level the bar **opens through** (a gap) fills at the open; otherwise a level
   within ``[low, high]`` fills at the level. Slippage and fees apply to a stop's
   fill like to any other.
4. When a stop fills, the order the signals placed for this bar (e.g. a
   ``next_open`` exit decided on the previous close) is dropped: the position is
   already closed, and an entry waits for the next signal.
5. A trailing stop's reference price starts at the entry's fill price and, after
   the bar was checked, moves to the bar's high (long) or low (short) when that is
   better; the level is ``reference * (1 - trail)`` (long) or ``* (1 + trail)``
   (short).
6. Levels are fixed at the entry: ``entry_fill * (1 - sl)`` / ``* (1 + tp)`` for a
   long, mirrored for a short; a per-bar fraction is the one of the bar the entry
   was decided on.
7. A time stop exits with an ordinary order after the position was held
   ``time_bars`` bars, as if an exit signal had fired on that bar's close. Bars held
   are the bars completed after the bar the entry filled in (a ``next_open``
   entry's own bar does not count): an entry filled on bar ``e`` is due on the close
   of bar ``e + time_bars``, and the exit fills like a signal exit (at the next open
   or at that close). The held side's exit flag is set and the signal rules then
   apply as always (an entry flag of the same side on that bar cancels it; it asks
   again on the next close); a stop that fills first wins (rule 4), and a reversal
   starts the count again.

These are vectorbt's ``from_signals`` semantics with ``stop_entry_price=FillPrice``
and ``stop_exit_price=StopMarket`` (the time stop through its callbacks, see
:mod:`tradelab.research._time_stop_kernels`), so research runs on vectorbt; tests
check :func:`stop_price` against vectorbt's own ``get_stop_price_nb`` bar for bar.
Close-only data (open = high = low = close) can only fill at closes: a stop then
fills at the first close through its level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["DIRECTIONS", "Direction", "ExitHit", "StopState", "Stops", "apply_exits",
           "check_direction", "stop_price", "time_stop_due"]

Direction = Literal["long", "short", "both"]
DIRECTIONS: tuple[Direction, ...] = ("long", "short", "both")

ExitReason = Literal["sl", "tp", "trail", "time"]


def check_direction(value: str) -> Direction:
    """``value`` as a :data:`Direction`, or ValueError naming it and the choices."""
    if value not in DIRECTIONS:
        raise ValueError(f"direction {value!r}: expected long, short or both")
    return value


@dataclass(frozen=True)
class Stops:
    """Declared exits as fractions of the entry's fill price (``None``: not used).

    Parameters
    ----------
    sl : float, optional
        Stop-loss distance, in (0, 1).
    tp : float, optional
        Take-profit distance, > 0.
    trail : float, optional
        Trailing stop distance from the best price since entry, in (0, 1). It is the
        stop-loss that trails, so ``sl`` and ``trail`` exclude each other.
    time_bars : int, optional
        Exit after the position was held this many bars (>= 1).
    """

    sl: float | None = None
    tp: float | None = None
    trail: float | None = None
    time_bars: int | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("sl", "trail"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and 0 < v < 1):
                problems.append(f"{name} = {v!r}: must be a fraction in (0, 1)")
        if self.tp is not None and not (isinstance(self.tp, int | float)
                                        and self.tp > 0 and math.isfinite(self.tp)):
            problems.append(f"tp = {self.tp!r}: must be a positive fraction")
        if self.time_bars is not None and not (isinstance(self.time_bars, int)
                                               and self.time_bars >= 1):
            problems.append(f"time_bars = {self.time_bars!r}: must be a whole number >= 1")
        if self.sl is not None and self.trail is not None:
            problems.append(f"sl = {self.sl!r} and trail = {self.trail!r}: the trailing stop "
                            "is the stop-loss; give one of them")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def active(self) -> bool:
        """True when any exit is declared."""
        return any(v is not None for v in (self.sl, self.tp, self.trail, self.time_bars))

    def overridden(self, **values: float | int | None) -> Stops:
        """These stops with the given fields replaced where the value is not ``None``
        (a command line's ``--sl``/``--tp``/``--trail`` over a strategy's own)."""
        given: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
        if "trail" in given:
            given.setdefault("sl", None)
        elif "sl" in given:
            given.setdefault("trail", None)
        return replace(self, **given) if given else self


def stop_price(side: int, reference: float, stop: float, open_: float, low: float,
               high: float, below: bool) -> float:
    """Where a stop ``stop`` away from ``reference`` fills in this bar, or NaN.

    ``below``: the level is under the reference for a long (a stop-loss) and above it
    for a short; otherwise the other way (a take-profit). Gaps fill at the open.
    Bit-for-bit the rule of vectorbt's ``get_stop_price_nb``.
    """
    if (side > 0 and below) or (side < 0 and not below):
        level = reference * (1 - stop)
        if open_ <= level:
            return open_
        if low <= level <= high:
            return level
        return math.nan
    if (side < 0 and below) or (side > 0 and not below):
        level = reference * (1 + stop)
        if level <= open_:
            return open_
        if low <= level <= high:
            return level
        return math.nan
    return math.nan


@dataclass
class StopState:
    """The exit levels of one open position, carried from bar to bar.

    ``sl`` / ``tp``: fractions (NaN: none); ``trail``: the stop-loss trails;
    ``reference``: the trailing reference (the entry fill, then the best price);
    ``bars_held``: bars completed after the entry's bar; ``time_bars``: 0 for none.
    """

    side: int
    entry_price: float
    sl: float = math.nan
    tp: float = math.nan
    trail: bool = False
    reference: float = math.nan
    bars_held: int = 0
    time_bars: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.reference):
            self.reference = self.entry_price

    @classmethod
    def opened(cls, side: int, fill_price: float, stops: Stops,
               sl: float | None = None, tp: float | None = None) -> StopState:
        """The state of a position just filled at ``fill_price`` (``sl``/``tp``: per-bar
        fractions of the deciding bar, overriding ``stops``)."""
        sl_frac = sl if sl is not None else (stops.trail if stops.trail is not None else stops.sl)
        tp_frac = tp if tp is not None else stops.tp
        return cls(side, fill_price,
                   math.nan if sl_frac is None else float(sl_frac),
                   math.nan if tp_frac is None else float(tp_frac),
                   stops.trail is not None and sl is None, fill_price, 0, stops.time_bars or 0)


@dataclass(frozen=True)
class ExitHit:
    """A declared exit that fires in this bar at ``price`` (before slippage)."""

    price: float
    reason: ExitReason


def apply_exits(state: StopState, open_: float, high: float, low: float,
                close: float) -> ExitHit | None:
    """Check one bar against an open position's stops (rules 1-3 and 5 of the module).

    Returns the stop that fills in this bar, or ``None``; updates the trailing
    reference and the bars held when nothing fired. NaN open/high/low fall back to
    the close (close-only data), as in vectorbt. The time stop (rule 7) is not an
    intrabar fill: see :func:`time_stop_due`.
    """
    if math.isnan(open_):
        open_ = close
    if math.isnan(low):
        low = min(open_, close)
    if math.isnan(high):
        high = max(open_, close)
    side = state.side
    hit = math.nan
    reason: ExitReason = "sl"
    if not math.isnan(state.sl):
        ref = state.reference if state.trail else state.entry_price
        hit = stop_price(side, ref, state.sl, open_, low, high, True)
        reason = "trail" if state.trail else "sl"
    if math.isnan(hit) and not math.isnan(state.tp):
        hit = stop_price(side, state.entry_price, state.tp, open_, low, high, False)
        reason = "tp"
    if state.trail and not math.isnan(state.sl):
        if side > 0 and high > state.reference:
            state.reference = high
        elif side < 0 and low < state.reference:
            state.reference = low
    if not math.isnan(hit):
        return ExitHit(hit, reason)
    state.bars_held += 1
    return None


def time_stop_due(state: StopState) -> bool:
    """True when the time stop asks to exit on this bar's close (rule 7)."""
    return state.time_bars > 0 and state.bars_held >= state.time_bars
