"""Shorts, reversals and declared exits in the engine (the long-only path never comes here).

A runner whose strategy trades ``short`` or ``both``, returns short flags or
stop fractions, or declares exits (:class:`~tradelab.strategy.exits.Stops`) is
handled by a :class:`SideDesk`:

* **Orders from signals** (:meth:`SideDesk.act`): :func:`tradelab.engine.decide.decide`
  turns the bar's flags and the position into one order: an entry sized at fill
  like research (a short with :meth:`Execution.short_entry_fill`), a close of
  the whole position, or a reversal in one order (``amount``/``value`` sizing;
  with ``percent`` an opposite entry closes, as research does).
* **Declared exits** (:meth:`SideDesk.check`): when an entry fills, the
  position's :class:`~tradelab.strategy.exits.StopState` is created from its
  fill price and the runner's stops (or the per-bar ``sl_stop``/``tp_stop`` of
  the bar the entry was decided on). At the start of each bar, before the
  broker's open phase fills anything, :func:`~tradelab.strategy.exits.apply_exits`
  decides whether a stop fills in this bar and at what price. If one does, the
  symbol's open orders (the bar's signal order) are cancelled (rule 4) and an
  exit order closes the position: at a simulated venue a stop order decided on
  this bar, which the paper broker fills at that price plus slippage; at a real venue a
  market order (**emulated everywhere**: the one function that decides stop
  fills for research decides them here; the design is in the paper broker's
  docstring). With ``fill="close"`` the bar's own signals are then skipped too.
  A time stop makes the bar's close an exit signal for the held side.
* **Restart**: :meth:`SideDesk.restore` rebuilds a resumed run's stop state from
  the store: the fill that opened the position and the bars since (per-bar stop
  fractions are not stored: a restored position uses the runner's declared stops).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tradelab.engine.decide import Action, decide, opposite_entry, side_flags
from tradelab.events import SignalEmitted
from tradelab.money import ZERO, book, to_decimal
from tradelab.orders.model import Order, client_order_id
from tradelab.strategy.exits import StopState, apply_exits, time_stop_due

if TYPE_CHECKING:
    from tradelab.engine.loop import Engine
    from tradelab.engine.runner import StrategyRunner

__all__ = ["SideDesk"]


class SideDesk:
    """The engine's short side and declared exits (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.opposite = opposite_entry(engine.execution.size_type)
        #: Per symbol: the open position's stop state and the runner that opened it.
        self.states: dict[str, tuple[StopState, StrategyRunner]] = {}
        #: Entry orders not filled yet: the runner and the per-bar (sl, tp) of their bar.
        self.entries: dict[str, tuple[StrategyRunner, float | None, float | None]] = {}
        #: Per symbol: the bar time a stop last fired at, and the exit order's id.
        self.stopped: dict[str, tuple[datetime, str]] = {}
        #: Exit orders of declared exits (this process's): client id → "sl", "tp", "trail", "time".
        self.exit_reasons: dict[str, str] = {}

    # -- declared exits ------------------------------------------------------------------
    def check(self, sym: str, t: datetime, o: float, h: float, low: float, c: float) -> None:
        """At the start of a bar: does a stop of ``sym``'s position fill in it?"""
        held_state = self.states.get(sym)
        if held_state is None:
            return
        state, runner = held_state
        eng = self.engine
        held = eng.portfolio.position(sym)
        if held == 0 or (held > 0) != (state.side > 0):
            del self.states[sym]  # closed (or turned) by an order this desk did not see fill
            return
        last = self.stopped.get(sym)
        if last is not None:
            pending = eng.orders.orders.get(last[1])
            if pending is not None and pending.is_open:
                return  # a real venue has not filled the last stop exit yet
        hit = apply_exits(state, o, h, low, c)
        if hit is None:
            return
        side = "sell" if held > 0 else "buy"
        cid = client_order_id(str(eng.run_id), f"{runner.name}|{hit.reason}", sym, t, side)
        self.stopped[sym] = (t, cid)
        self.exit_reasons[cid] = hit.reason
        if cid in eng.orders.orders:  # regenerated after a restart: already handled
            eng.orders.submit(cid, started=eng._t0)
            return
        # Rule 4: the position closes at the stop; the bar's signal order is dropped.
        for order in eng.orders.open_orders():
            if order.symbol == sym:
                eng.orders.cancel(order.client_order_id, f"{hit.reason} stop filled at {hit.price}")
        simulated = eng._simulated
        qty = abs(held) if simulated else eng._lot(sym, abs(held))
        order = Order(cid, eng.account, runner.name, sym, side, qty, t,
                      order_type="stop" if simulated else "market",
                      stop_price=to_decimal(hit.price) if simulated else None,
                      estimate=qty, reference_price=book(hit.price), run_id=str(eng.run_id))
        eng.orders.add(order)

    def stopped_at(self, sym: str, t: datetime) -> bool:
        """True when a stop of ``sym`` fired in the bar at ``t``."""
        last = self.stopped.get(sym)
        return last is not None and last[0] == t

    def on_fill(self, cid: str, sym: str, price: Decimal, before: Decimal, after: Decimal) -> None:
        """Open, keep or clear the stop state after a fill moved ``before`` → ``after``."""
        if after == 0:
            self.states.pop(sym, None)
            self.entries.pop(cid, None)
            return
        if before != 0 and (before > 0) == (after > 0):
            return  # reduced (or a partial fill of the entry): the levels stay
        entry = self.entries.pop(cid, None)
        if entry is not None:
            runner, sl, tp = entry
        else:  # decided by an earlier process (a resume): the runner's declared stops
            found = self._runner_of(cid, sym)
            if found is None:
                self.states.pop(sym, None)
                return
            runner, sl, tp = found, None, None
        stops = runner.stops
        if not stops.active and sl is None and tp is None:
            self.states.pop(sym, None)
            return
        side = 1 if after > 0 else -1
        self.states[sym] = (StopState.opened(side, float(price), stops, sl=sl, tp=tp), runner)

    def _runner_of(self, cid: str, sym: str) -> StrategyRunner | None:
        order = self.engine.orders.orders.get(cid)
        for runner in self.engine.runners.get(sym, ()):
            if order is not None and runner.name == order.strategy:
                return runner
        return None

    # -- orders from signals -------------------------------------------------------------
    def act(self, runner: StrategyRunner, t: datetime, close: float, entry: bool,
            exit_: bool) -> None:
        """The order (if any) a bar's flags ask for (see :mod:`tradelab.engine.decide`)."""
        eng = self.engine
        sym = runner.symbol
        if eng.execution.fill == "close" and self.stopped_at(sym, t):
            return  # rule 4: a stop filled in this bar; this bar's signals are dropped
        short_entry, short_exit, sl, tp = runner.extra
        le, lx, se, sx = side_flags(runner.direction, entry, exit_, short_entry, short_exit)
        held = eng.portfolio.position(sym)
        position = 1 if held > 0 else -1 if held < 0 else 0
        held_state = self.states.get(sym)
        timed = bool(position and held_state is not None and held_state[1] is runner
                     and time_stop_due(held_state[0]))
        if timed:
            if position > 0:
                lx = True
            else:
                sx = True
        action = decide(position, le, lx, se, sx, self.opposite)
        if action is Action.NONE:
            return
        if action.opens and runner.strategy.name in eng._disabled:
            # switched off: it may still close what it holds, but opens nothing
            if action is Action.REVERSE_TO_LONG:
                action = Action.CLOSE_SHORT
            elif action is Action.REVERSE_TO_SHORT:
                action = Action.CLOSE_LONG
            else:
                return
        side = action.side
        eng.bus.publish(SignalEmitted(t, runner.name, sym, action.opens, not action.opens, side))
        cid = client_order_id(str(eng.run_id), runner.name, sym, t, side)
        if cid in eng.orders.orders:  # regenerated after a restart: already handled
            eng.orders.submit(cid, started=eng._t0)
            return
        order = self._order(runner, cid, t, close, action, held)
        if order is None:
            return
        if action.opens:
            self.entries[cid] = (runner, _fraction(sl), _fraction(tp))
        elif timed:
            self.exit_reasons[cid] = "time"
        eng.orders.add(order)

    def _order(self, runner: StrategyRunner, cid: str, t: datetime, close: float, action: Action,
               held: Decimal) -> Order | None:
        eng = self.engine
        sym, ex = runner.symbol, eng.execution
        live = not eng._simulated
        ref = book(close)
        if action in (Action.CLOSE_LONG, Action.CLOSE_SHORT):
            qty = eng._lot(sym, abs(held)) if live else abs(held)
            return Order(cid, eng.account, runner.name, sym, action.side, qty, t, estimate=qty,
                         reference_price=ref, run_id=str(eng.run_id))
        cash = float(eng.portfolio.cash)
        if action is Action.OPEN_LONG:
            est_f = ex.entry_quantity(cash, close)
        elif action is Action.REVERSE_TO_LONG:
            est_f = ex.entry_fill(cash, close, plus=float(-held))[0]
        elif action is Action.OPEN_SHORT:
            est_f = ex.short_entry_fill(cash, close)[0]
        else:
            est_f = ex.short_entry_fill(cash, close, plus=float(held))[0]
        est = book(est_f)
        sized_now = eng.shared is not None or live
        if live:  # a venue takes a quantity: on its lot grid, sized on this close
            est = eng._lot(sym, est)
        if sized_now and est <= 0:
            return None  # nothing this engine's cash can trade: no order to reserve
        # Shared account or a real venue: sized now, so what risk approved is what fills;
        # otherwise sized at the fill like research (quantity None).
        return Order(cid, eng.account, runner.name, sym, action.side, est if sized_now else None, t,
                     estimate=est if est > 0 else ZERO, reference_price=ref, run_id=str(eng.run_id))

    # -- restart -------------------------------------------------------------------------
    def restore(self, fills: list[Any], history: Any, runners: list[StrategyRunner]) -> None:
        """Rebuild the stop states of a resumed run from its fills and the bars since.

        ``fills``: the run's earlier fills in order; ``history``: the symbol's bars up
        to the last processed one (a DataFrame with open/high/low/close).
        """
        if not runners or history is None or not len(history):
            return
        sym = runners[0].symbol
        held, opened = ZERO, None
        for f in fills:
            if f.symbol != sym:
                continue
            before = held
            held = held + f.quantity if f.side == "buy" else held - f.quantity
            if held == 0:
                opened = None
            elif before == 0 or (before > 0) != (held > 0):
                opened = f
        if opened is None:
            return
        runner = self._runner_of(opened.client_order_id, sym) or runners[0]
        if not runner.stops.active:
            return
        state = StopState.opened(1 if held > 0 else -1, float(opened.price), runner.stops)
        after = history[history.index > opened.at]
        for o, h, low, c in after[["open", "high", "low", "close"]].to_numpy(float):
            apply_exits(state, o, h, low, c)  # the stop did not fire (the position is open)
        self.states[sym] = (state, runner)


def _fraction(value: float | None) -> float | None:
    """A per-bar stop fraction as given (NaN stays NaN: this bar's entry has no stop)."""
    return None if value is None else float(value) if not math.isnan(value) else math.nan
