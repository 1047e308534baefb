"""What a bar's signals ask of a position: vectorbt's ``from_signals`` decision, bar by bar.

Research hands a strategy's flags to ``vectorbt.Portfolio.from_signals``; the
engine decides the same orders here, one bar at a time, so that
``tradelab parity`` holds for shorts and reversals too. The pipeline is
vectorbt 1.2's (``simulate_from_signals_nb``) under the research conventions
(:mod:`tradelab.research.conventions`):

1. **Sides** (:func:`side_flags`): ``long``: entries buy, exits sell;
   ``short``: entries sell short, exits cover; ``both``: entries go long and
   exits go short. A strategy that returns ``short_entries``/``short_exits``
   states the short side itself: ``entries``/``exits`` are then the long side,
   and the direction picks the sides traded (``long``: the long side only,
   ``short``: the short side only, ``both``: both).
2. **Conflicts** (only when an entry is present): an entry and an exit of one
   side on the same bar cancel out, and so do a long and a short entry
   (``upon_*_conflict="ignore"``, ``upon_dir_conflict="ignore"``).
3. **Opposite entry** (an entry against the position held), by ``opposite``
   (:func:`opposite_entry`: what research passes as ``upon_opposite_entry``):
   ``"reverse"`` closes and opens the other side in one order (sizes ``amount``
   and ``value``); ``"close"`` only closes (``percent`` sizing, which vectorbt
   cannot size a reversal with: the other side opens at its next entry signal);
   ``"ignore"`` drops the entry.
4. **Orders** (:func:`decide`): flat → open the side entered; long → reverse on a
   short entry, else close on a long exit; short → mirrored. Nothing adds to a
   position (``accumulate=False``).

The declared exits (stop-loss, take-profit, trailing, time stop) are decided by
:mod:`tradelab.strategy.exits` and applied by the engine before this runs.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from tradelab.strategy.exits import Direction

OppositeEntry = Literal["ignore", "close", "reverse"]
OPPOSITE_ENTRY: tuple[OppositeEntry, ...] = ("ignore", "close", "reverse")

__all__ = ["OPPOSITE_ENTRY", "Action", "OppositeEntry", "decide", "opposite_entry", "side_flags"]


class Action(IntEnum):
    """The order a bar asks for (``NONE``: no order)."""

    NONE = 0
    OPEN_LONG = 1
    CLOSE_LONG = 2
    OPEN_SHORT = 3
    CLOSE_SHORT = 4
    REVERSE_TO_LONG = 5
    REVERSE_TO_SHORT = 6

    @property
    def side(self) -> str:
        """``"buy"`` or ``"sell"`` (``""`` for ``NONE``)."""
        if self is Action.NONE:
            return ""
        return "buy" if self in (Action.OPEN_LONG, Action.CLOSE_SHORT, Action.REVERSE_TO_LONG) else "sell"

    @property
    def opens(self) -> bool:
        """True when the order opens a position (an entry or a reversal)."""
        return self in (Action.OPEN_LONG, Action.OPEN_SHORT, Action.REVERSE_TO_LONG,
                        Action.REVERSE_TO_SHORT)


def side_flags(direction: Direction, entry: bool, exit_: bool, short_entry: bool | None,
               short_exit: bool | None) -> tuple[bool, bool, bool, bool]:
    """``(long_entry, long_exit, short_entry, short_exit)`` of one bar (step 1).

    ``short_entry``/``short_exit`` are ``None`` when the strategy does not state
    the short side; otherwise ``entry``/``exit_`` are the long side only.
    """
    if short_entry is not None or short_exit is not None:
        if direction == "long":
            return entry, exit_, False, False
        if direction == "short":
            return False, False, bool(short_entry), bool(short_exit)
        return entry, exit_, bool(short_entry), bool(short_exit)
    if direction == "long":
        return entry, exit_, False, False
    if direction == "short":
        return False, False, entry, exit_
    return entry, False, exit_, False


def opposite_entry(size_type: str) -> OppositeEntry:
    """How an entry against the position is treated for an execution's ``size_type``
    (the research conventions' ``upon_opposite_entry``)."""
    return "close" if size_type == "percent" else "reverse"


def decide(position: int, long_entry: bool, long_exit: bool, short_entry: bool, short_exit: bool,
           opposite: OppositeEntry = "ignore") -> Action:
    """The order for a position of sign ``position`` (steps 2-4 of the module)."""
    if long_entry or short_entry:
        if long_entry and long_exit:
            long_entry = long_exit = False
        if short_entry and short_exit:
            short_entry = short_exit = False
        if long_entry and short_entry:
            long_entry = short_entry = False
        if position > 0 and short_entry and opposite != "reverse":
            short_entry = False
            long_exit = long_exit or opposite == "close"
        elif position < 0 and long_entry and opposite != "reverse":
            long_entry = False
            short_exit = short_exit or opposite == "close"
    if position > 0:
        if short_entry:
            return Action.REVERSE_TO_SHORT
        return Action.CLOSE_LONG if long_exit else Action.NONE
    if position < 0:
        if long_entry:
            return Action.REVERSE_TO_LONG
        return Action.CLOSE_SHORT if short_exit else Action.NONE
    if long_entry:
        return Action.OPEN_LONG
    return Action.OPEN_SHORT if short_entry else Action.NONE
