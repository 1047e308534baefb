"""The event loop: feed → strategies → risk → orders → broker → portfolio → store.

One bar at a time, synchronously::

    BarReceived
      broker works open orders against the bar (next-open fills, limits, stops)
      → OrderFilled → Portfolio → PositionChanged
      (before that, declared exits: a stop that fills in this bar closes the position
        and cancels the bar's signal order; see tradelab.engine.sides)
      each strategy on the symbol: signals on the last `warmup` bars → flags of the last row
        entry while flat → buy (sized at fill), exit while long → sell all,
        both → nothing (shorts, reversals: tradelab.engine.decide)
        → SignalEmitted → OrderRequested → RiskManager (re-reads the
        kill switch) → OrderApproved → write-ahead commit of the order row → broker
        → OrderSubmitted
      broker close phase (close fills, day-order expiry)
      kill switch polled (at most every `kill_poll_seconds`; a `--flatten` halt from
        another process closes positions from this bar's close)
      mark to market → drawdown / daily-loss rules → snapshot buffered by the recorder
        (EquitySnapshotted and BarReceived are built only when something subscribes,
        e.g. the monitor; the bus counts a skipped one as published)
      progress recorded (committed in batches; see tradelab.store.recorder)

Latency-critical store statements (the kill-switch read and the write-ahead
commit) run on a held DBAPI connection, see :mod:`tradelab.store.sideconn`.

SIGINT/SIGTERM stop the feed after the current bar; the engine then cancels or
keeps open orders (``cancel_on_stop``), writes a final snapshot, commits and
publishes ``EngineStopped``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import structlog

from tradelab.bus import STAGE_BOOK, STAGE_SEND, EventBus, StepFailed
from tradelab.clock import SimClock
from tradelab.engine.closer import act_on_close_requests
from tradelab.engine.failure import bar_failed, crashed
from tradelab.engine.parts import EngineConfig, EngineParts, EngineResult, RunState
from tradelab.engine.runner import StrategyRunner
from tradelab.engine.sides import SideDesk
from tradelab.engine.venue import VenueDesk
from tradelab.errors import RunHalted, StoreFailure, halt_reason
from tradelab.events import (
    BarReceived,
    EngineStarted,
    EngineStopped,
    EquitySnapshotted,
    KillSwitchEngaged,
    OrderApproved,
    OrderFilled,
    OrderPartiallyFilled,
    OrderSubmitted,
    PositionChanged,
    RiskAlert,
    SignalEmitted,
)
from tradelab.execution import Execution
from tradelab.interfaces import Bar, SimulatedVenue
from tradelab.money import MONEY_CONTEXT, ZERO, book
from tradelab.orders.model import Order, client_order_id
from tradelab.risk.manager import FLATTEN, FLATTEN_MARK
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:
    from tradelab.interfaces import LiveFeed

log = structlog.get_logger("tradelab.engine")


class Engine:
    """A paper (or live) trading engine for one account: the loop only.

    Built by :meth:`tradelab.app.App.engine` (or :func:`tradelab.app.assemble_engine`),
    which chooses every concrete part.

    Parameters
    ----------
    strategies
        ``(strategy, symbol)`` pairs, each run unchanged on a rolling window.
    feed
        A :class:`~tradelab.feeds.replay.ReplayFeed` or any ``LiveFeed``.
    execution
        The shared execution convention.
    parts
        Broker, order manager, portfolio, risk manager, kill switch, recorder.
    """

    def __init__(self, strategies: Sequence[tuple[Strategy, str]], feed: LiveFeed, execution: Execution,
                 parts: EngineParts, *, config: EngineConfig, bus: EventBus, clock: Any,
                 wall_clock: Any) -> None:
        self.execution, self.config = execution, config
        self.feed = feed
        self.bus, self.clock = bus, clock
        # When a run started and ended is operational metadata (what an operator reads
        # in the runs table), so it is wall-clock time even when the bars are replayed.
        self.wall_clock = wall_clock
        self.account = config.account
        self.broker, self.orders, self.portfolio = parts.broker, parts.orders, parts.portfolio
        self.risk, self.kill_switch, self.shared = parts.risk, parts.kill_switch, parts.shared
        self.recorder = parts.recorder
        self.store_backed = parts.recorder is not None
        #: Set by the composition root for observers (health checks, the data-quality gate).
        # (Opaque here: the engine itself never touches the store.)
        self.store: object | None = None
        self.quality: Any = None
        self._disabled_reader = parts.disabled
        self.runners: dict[str, list[StrategyRunner]] = {}
        for strat, sym in strategies:
            self.runners.setdefault(sym, []).append(
                StrategyRunner(strat, sym, direction=config.direction, stops=config.stops))
        #: Shorts, reversals and declared exits (runners that are not long-only booleans).
        self.sides = SideDesk(self)
        self.risk.exits = self.sides.exit_reasons  # declared exits that reduce pass a halt
        # A simulated venue works its orders against each bar (its fills are replayable);
        # a real one reports through poll(). A property the broker declares, not a type test.
        self._simulated = bool(getattr(self.broker, "simulated", False))
        self._venue = cast(SimulatedVenue, self.broker)  # used only when _simulated
        self.reconciler = parts.reconciler
        #: A real venue's side of each bar (reports, lost answers, reconciliation).
        self.desk = None if self._simulated else VenueDesk(
            self.broker, self.orders, parts.reconciler, reconcile_seconds=config.reconcile_seconds,
            adopt=config.adopt, timer=lambda: self._timer())
        self._next_kill_poll = 0.0
        # Strategies switched off from the API/dashboard (strategy_flags in the store):
        # they keep their window warm and may still exit, but open nothing new.
        self._disabled: frozenset[str] = frozenset()
        run = parts.run or RunState()
        self.run_id: int | str = run.run_id
        self.resumed_from: datetime | None = run.resumed_from
        self._earlier_bars, self._earlier_alerts = run.bars, run.alerts
        self._stop_reason: str | None = None
        #: Why the run must halt (a failed durable write, a lost lease), set mid-bar.
        self.halt_reason: str | None = None
        self._flatten = False
        self.bars = 0
        self.latencies: list[float] = []
        self.fills: list = list(run.fills)  # the whole run's fills (a resume's earlier ones first)
        self.alerts: list = []
        self.curve: list[tuple[datetime, float]] = []
        self._t0 = 0.0
        self._timer = self.clock.monotonic if hasattr(self.clock, "monotonic") else SimClock.monotonic
        bus.subscribe(KillSwitchEngaged, self._on_halt)
        # Steps: sending (after the write-ahead step) and booking fills carry guarantees.
        bus.step(OrderApproved, self._on_approved, stage=STAGE_SEND)
        bus.step(OrderFilled, self._on_fill, stage=STAGE_BOOK)
        bus.step(OrderPartiallyFilled, self._on_fill, stage=STAGE_BOOK)
        bus.subscribe(OrderSubmitted, self._on_submitted)
        bus.subscribe(RiskAlert, self.alerts.append)

    # -- handlers -------------------------------------------------------------------
    def _on_halt(self, ev: KillSwitchEngaged) -> None:
        if not self._simulated:
            # A halt at a real venue also withdraws what is resting there (a simulated
            # venue's orders stay: they are the convention's, and cancel_on_stop decides).
            for order in self.orders.open_orders():  # closing orders and stop exits stay
                if order.strategy != FLATTEN and order.client_order_id not in self.sides.exit_reasons:
                    self.orders.cancel(order.client_order_id, f"kill switch: {ev.reason}")
        if not self.kill_switch.external:
            return  # this engine's own breach: already alerted with the rule's details
        # A halt engaged elsewhere (an operator, another engine's rule): say when and
        # where this engine saw it; the alert is stored and notified like any other.
        names = ",".join(sorted({r.name for rs in self.runners.values() for r in rs}))
        # Stamped with the bar the engine saw it at; before the first bar a replay's clock
        # has no time at all (it stamped these 1970-01-01), so then with the wall clock.
        seen = self.clock.now() if self.bars or self.resumed_from is not None else self.wall_clock.now()
        self.bus.publish(RiskAlert(seen, self.account, "kill_switch",
                                   f"run {self.run_id} halted: {ev.reason} (by {ev.by})", "critical",
                                   names, None))

    def _on_approved(self, ev: OrderApproved) -> None:
        self.orders.submit(ev.client_order_id, started=self._t0)

    def _on_submitted(self, ev: OrderSubmitted) -> None:
        if ev.latency_s:
            self.latencies.append(ev.latency_s)

    def _on_fill(self, ev: OrderFilled | OrderPartiallyFilled) -> None:
        f = ev.fill
        if f is None:  # a venue closing an order whose fills are all booked already
            return
        before = self.portfolio.position(f.symbol)
        pos = self.portfolio.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)
        self.sides.on_fill(f.client_order_id, f.symbol, f.price, before, pos.quantity)
        self.fills.append(f)
        self.bus.publish(PositionChanged(ev.at, self.account, f.symbol, pos.quantity, pos.avg_price,
                                         pos.realized_pnl, self.portfolio.cash))

    # -- control --------------------------------------------------------------------
    def request_stop(self, reason: str = "requested") -> None:
        """Stop after the current bar (safe to call from a signal handler or another thread)."""
        self._stop_reason = reason
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def _install_signals(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        saved: list[tuple[int, Any]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved.append((sig, signal.getsignal(sig)))
            signal.signal(sig, lambda s, _f: self.request_stop(signal.Signals(s).name))
        return saved

    # -- the loop -------------------------------------------------------------------
    def run(self, on_bar: Callable[[Bar], None] | None = None) -> EngineResult:
        """Consume the feed until it ends or a stop is requested; return the result.

        Raises
        ------
        RunHalted
            A guarantee-carrying step failed (an order's write-ahead commit, a routine
            commit, the run's lease), or processing a bar raised (its reason names the
            exception and the bar, see :mod:`tradelab.engine.failure`): the order
            concerned did not leave, the run was marked ``failed`` where the store still
            answered, and ``--resume`` continues from the last committed state.
        """
        saved = self._install_signals()
        status = "finished"
        # the bar being processed (None between bars); while priming, the empty list, so
        # a strategy that raises on its history halts "before the first bar"
        current: Any = []
        cause: BaseException | None = None
        try:
            self._prime()
            current = None
            self.bus.publish(EngineStarted(self.clock.now(), str(self.run_id), self.account,
                                           self.resumed_from))
            if self.halt_reason is not None:  # refused to start (reconciliation, store)
                raise RunHalted(self.run_id, self.halt_reason)
            for bar in self.feed:
                current = bar
                self.step(bar)
                current = None
                if on_bar is not None:
                    on_bar(bar)
                if self.halt_reason is not None or self._stop_reason is not None:
                    break
            if self.halt_reason is not None:
                status = "failed"
            elif self._stop_reason is not None:
                status = "stopped"
        except BaseException as exc:
            status = "failed"
            if current is not None and crashed(exc):
                # A bug or bad data in a bar's processing: halt with where and when, never
                # end silently (see tradelab.engine.failure).
                cause, reason = exc, bar_failed(self, exc, current)
                self.halt_reason = self.halt_reason or reason
            elif self.halt_reason is None:
                self.halt_reason = halt_reason(exc)
            if cause is None and not isinstance(exc, StepFailed | StoreFailure | RunHalted):
                raise
        finally:
            for sig, handler in saved:
                signal.signal(sig, handler)
            self._shutdown(status)
        if self.halt_reason is not None:
            raise RunHalted(self.run_id, self.halt_reason) from cause
        return self.result(status)

    def _prime(self) -> None:
        # A real venue is the truth: before trading, what it did while this engine was
        # away (fills, cancels, orders whose acknowledgement was lost) is booked, and a
        # position that differs from the book refuses the start unless adopted.
        if self.desk is not None:
            self.halt_reason = self.desk.start()
            if self.halt_reason is not None:
                return
        # Orders committed but maybe never sent (a crash between the write-ahead commit
        # and the broker): a simulated venue dedupes a re-send by client id; a real one
        # is asked first and sent the order only if it never saw it. After every part
        # is attached, so their transitions are recorded like any other.
        try:
            self.orders.resubmit_pending()
        except StepFailed as exc:
            self.halt_reason = halt_reason(exc)
        for sym, runners in self.runners.items():
            if self.resumed_from is not None and any(r.stops.active for r in runners):
                # the open position's stops: from its entry fill and the bars since
                self.sides.restore(self.fills, self.feed.history(sym, self.resumed_from, 100_000),
                                   runners)
            for r in runners:
                history = self.feed.history(sym, self.resumed_from, r.warmup - 1) \
                    if self.resumed_from is not None else None
                if self.config.signal_mode == "precomputed":
                    # Replays only: the feed knows its future bars (see ReplayFeed.future).
                    r.precompute(cast(Any, self.feed).future(sym), history)
                elif history is not None:
                    r.prime(history)

    def step(self, bar: Bar) -> None:
        """Process one bar (public so tests and notebooks can drive the loop)."""
        self._t0 = t0 = self._timer()
        sym, t, o, h, low, c, v = bar
        self.clock.advance(t)
        self.bars += 1
        bus, manager, venue = self.bus, self.orders, self._venue
        if bus.wants(BarReceived):  # usually no subscriber: skip building the event
            bus.publish(BarReceived(t, sym, o, h, low, c, v))
        paper = self._simulated
        if not paper:
            reason = self.desk.news(t0, t) if self.desk is not None else None
            if reason is not None and self.halt_reason is None:
                self.halt_reason = reason
        sides = self.sides
        if sides.states and sym in sides.states:  # stops first: before this bar fills anything
            self._guarded(sides.check, sym, t, o, h, low, c)
        if paper:
            for update in venue.on_bar(sym, t, o, h, low, c, v, "open"):
                manager.apply(update)
        if self._flatten and self.kill_switch.engaged:
            self._do_flatten(sym, t, c)
        for runner in self.runners.get(sym, ()):
            entry, exit_ = runner.update(t, o, h, low, c, v)
            if runner.plain:
                if entry != exit_ and not (entry and runner.strategy.name in self._disabled):
                    self._guarded(self._act, runner, t, c, entry)
            else:
                self._guarded(sides.act, runner, t, c, entry, exit_)
        if paper:
            for update in venue.on_bar(sym, t, o, h, low, c, v, "close"):
                manager.apply(update)
        if self.shared is not None:
            self._sync_account(sym, t, c)
        # The periodic re-read runs after the strategies, off the bar → order path
        # (orders re-read the switch themselves); a flatten request is acted on at
        # once: the closing order is decided on this bar's close.
        if (self.store_backed and t0 >= self._next_kill_poll
                and self.bars % self.config.kill_poll_every == 0):
            self._next_kill_poll = self._timer() + self.config.kill_poll_seconds
            self._disabled = self._read_disabled()
            if self.kill_switch.refresh() and self.kill_switch.reason.startswith(FLATTEN_MARK):
                self._flatten = True
                self._do_flatten(sym, t, c)
            act_on_close_requests(self, t, {sym: c})  # the dashboard's "Close" (engine.closer)
        pf = self.portfolio
        pf.mark(sym, c)
        cash, positions_value = pf.cash, pf.positions_value
        # = pf.equity, without a second pass over the positions; flat: the cash itself
        equity = MONEY_CONTEXT.add(cash, positions_value) if positions_value else cash
        self.risk.on_equity(t, equity)
        self.curve.append((t, float(equity)))
        rec = self.recorder
        if rec is not None:  # the store's curve: one row per bar, buffered (see persist)
            rec.snapshot(t, cash, positions_value, equity)
            rec.record_bar(bar)  # the bar as received (run_bars: what drift replays research over)
        # The event (with realized/unrealized P&L, which cost a pass over the positions)
        # is only built when someone listens, e.g. the monitor's metrics.
        if bus.wants(EquitySnapshotted):
            bus.publish(EquitySnapshotted(t, self.account, cash, positions_value, equity,
                                          pf.realized_pnl, pf.unrealized_pnl))
        if rec is not None:
            rec.end_bar(t)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except StepFailed as exc:
            # The order's pipeline stopped at the failed step (it was not sent);
            # finish this bar's bookkeeping, then the run halts.
            if self.halt_reason is None:
                self.halt_reason = halt_reason(exc)

    def _sync_account(self, sym: str, t: datetime, close: float) -> None:
        # Every bar, so that a halt engaged anywhere stops this engine within one bar.
        out = self.shared.sync(t, {sym: book(close)})
        if out.breach is not None:
            self.risk.account_breach(t, out.breach[0], out.breach[1])
        ks = self.kill_switch
        ks.observe(out.kill, own=out.breach is not None)
        if ks.engaged and ks.reason.startswith(FLATTEN_MARK) and not self._flatten:
            self._flatten = True
            self._do_flatten(sym, t, close)

    def _read_disabled(self) -> frozenset[str]:
        return self._disabled_reader() if self._disabled_reader is not None else frozenset()

    def _act(self, runner: StrategyRunner, t: datetime, close: float, entry: bool) -> None:
        sym = runner.symbol
        held = self.portfolio.position(sym)
        if entry and held == 0:
            side = "buy"
        elif not entry and held > 0:
            side = "sell"
        else:
            return
        self.bus.publish(SignalEmitted(t, runner.name, sym, entry, not entry, side))
        cid = client_order_id(str(self.run_id), runner.name, sym, t, side)
        if cid in self.orders.orders:   # regenerated after a restart: already handled
            self.orders.submit(cid, started=self._t0)
            return
        ref = book(close)
        live = not self._simulated
        if side == "buy":
            est = book(self.execution.entry_quantity(float(self.portfolio.cash), close))
            if live:  # a venue takes a quantity: on its lot grid, sized on this close
                est = self._lot(sym, est)
            if (self.shared is not None or live) and est <= 0:
                return  # nothing this engine's cash can buy: no order to reserve
            # Shared account or a real venue: sized now, so what risk approved is what fills.
            order = Order(cid, self.account, runner.name, sym, "buy",
                          est if self.shared is not None or live else None, t, estimate=est,
                          reference_price=ref, run_id=str(self.run_id))
        else:
            qty = self._lot(sym, held) if live else held
            order = Order(cid, self.account, runner.name, sym, "sell", qty, t, estimate=qty,
                          reference_price=ref, run_id=str(self.run_id))
        self.orders.add(order)

    @property
    def reconciliations(self) -> list[Any]:
        """What each reconciliation with a real venue found (empty for a simulated one)."""
        return self.desk.reconciliations if self.desk is not None else []

    def _lot(self, sym: str, quantity: Decimal) -> Decimal:
        return quantity if self.desk is None else self.desk.on_lot(sym, quantity)

    def flatten(self) -> None:
        """Close every position at the next bar (used with the kill switch)."""
        self._flatten = True

    def _do_flatten(self, sym: str, t: datetime, close: float) -> None:
        held = self.portfolio.position(sym)
        if held == 0:
            return
        open_here = [o for o in self.orders.open_orders() if o.symbol == sym]
        if any(o.strategy == FLATTEN for o in open_here):
            return  # already closing (e.g. decided last bar, fills at this bar's close)
        for order in open_here:
            self.orders.cancel(order.client_order_id, "flatten")
        cid = client_order_id(str(self.run_id), FLATTEN, sym, t, "sell" if held > 0 else "buy")
        if cid in self.orders.orders:
            return
        qty = abs(held) if self._simulated else self._lot(sym, abs(held))
        order = Order(cid, self.account, FLATTEN, sym, "sell" if held > 0 else "buy", qty, t,
                      estimate=qty, reference_price=book(close), run_id=str(self.run_id))
        self.orders.add(order)  # the RiskManager lets flatten orders through a halt

    def _shutdown(self, status: str) -> None:
        reason = self.halt_reason or self._stop_reason or status
        if self.config.cancel_on_stop and self.halt_reason is None:
            for order in self.orders.open_orders():
                try:
                    self.orders.cancel(order.client_order_id, f"engine stopped: {reason}")
                except StepFailed as exc:
                    self.halt_reason = halt_reason(exc)
                    break
        rec = self.recorder
        if rec is not None:
            try:
                rec.flush()
                rec.finish(status, self.summary())
            except Exception as exc:  # the store is gone: the lease expires, resume continues
                status = "failed"
                if self.halt_reason is None:
                    self.halt_reason = halt_reason(exc)
                log.error("run_not_closed", run_id=self.run_id, reason=halt_reason(exc))
            finally:
                rec.close()
                self.kill_switch.detach()  # stopped: nothing left to guard
        self.bus.publish(EngineStopped(self.clock.now(), str(self.run_id), self.account,
                                       self.halt_reason or reason, self.bars))

    def summary(self) -> dict[str, Any]:
        """What the run record keeps: the whole run, earlier processes' bars and fills included."""
        pf = self.portfolio
        out: dict[str, Any] = {"bars": self._earlier_bars + self.bars, "equity": str(pf.equity),
                               "cash": str(pf.cash), "fills": len(self.fills),
                               "risk_alerts": self._earlier_alerts + len(self.alerts)}
        reason = self.halt_reason or self._stop_reason
        if reason is not None:  # why it stopped: a signal, an operator, a failed commit...
            out["stop_reason"] = reason
        return out

    def result(self, status: str = "finished") -> EngineResult:
        pf = self.portfolio
        # The whole run: a resumed engine counts the bars and fills of earlier processes too.
        return EngineResult(self.run_id, self.account, self._earlier_bars + self.bars, pf.cash, pf.equity,
                            Decimal(repr(self.execution.cash)), list(self.fills), list(self.alerts),
                            list(self.curve), list(self.latencies), status, self.resumed_from)


__all__ = ["FLATTEN", "FLATTEN_MARK", "ZERO", "Engine", "EngineConfig", "EngineResult"]
