"""Store integration: start or resume a run, restore state, reconcile the broker.

Resuming a run (``Engine(..., store=store, resume=run_id)``):

1. read the account state (cash, positions, open orders, kill switch) and the
   run's last processed bar from the store, in one consistent read;
2. restore the portfolio and the order book; each open order gets back its
   fills so fill ids continue where they stopped;
3. reconcile the broker *before any bar is processed*: a simulated venue
   (:class:`~tradelab.orders.brokers.paper.PaperBroker`) is rebuilt from the
   store (cash, positions, the orders it had accepted); orders still ``new``
   (committed but maybe never sent) are re-sent with the same client id, which
   the broker dedupes;
4. skip the feed to the bar after ``last_bar_time`` and prime the strategies'
   windows from history.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog

from tradelab.errors import TradelabError
from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import Fill, Order, OrderState
from tradelab.store.recorder import SIZED_AT_FILL, Recorder, peak_from_curve

log = structlog.get_logger("tradelab.engine.recovery")


class RecoveryError(TradelabError):
    """The store does not hold what a resume needs (unknown run, other account)."""


def attach(engine: Any, store: Any, resume: int | None, info: dict) -> None:
    """Start a new run or resume ``resume``; wire the :class:`Recorder`."""
    account, ex = engine.account, engine.execution
    with store.transaction() as tx:
        account_id = tx.ensure_account(account, MONEY_CONTEXT.create_decimal(repr(ex.cash)))
    shared = engine.config.shared_account
    if resume is None:
        state = store.account_state(account)
        # A shared account is expected to hold other engines' positions and orders; its
        # cash is the account's (seeded once by ensure_account), never this engine's.
        if not shared and (any(p.quantity for p in state.positions) or state.open_orders):
            raise RecoveryError(
                f"account {account!r} holds positions or open orders from an earlier run; "
                f"resume that run (--resume {state.last_run.id if state.last_run else '?'}) "
                f"or use another --account, or set [engine] shared_account = true if several "
                f"engines trade it")
        with store.transaction() as tx:
            if not shared:
                tx.set_cash(account, engine.portfolio.cash)
            run_id = tx.start_run(account, info.get("strategy", ",".join(
                r.name for rs in engine.runners.values() for r in rs)),
                symbol=info.get("symbol", ",".join(engine.runners)), source=info.get("source", "replay"),
                mode=info.get("mode", "paper"), started_at=engine.wall_clock.now(),
                params=info.get("params", {}))
        engine.run_id = run_id
    else:
        _resume(engine, store, resume)
    engine.recorder = Recorder(store, account, engine.run_id, engine.bus, engine.config.flush_every,
                               account_id=account_id,
                               flush_seconds=engine.config.flush_seconds,
                               replayable_fills=isinstance(engine.broker, PaperBroker),
                               equity_events=False)  # the engine calls Recorder.snapshot
    if resume is not None:
        # Drawdown is measured from the run's peak and the day's loss from the previous
        # close, not from where the restart found them.
        curve = store.equity_curve(account, engine.run_id)
        peak = peak_from_curve(curve)
        if peak is not None:
            engine.recorder.peak = peak
            last = curve[-1]
            day = last.at.date()
            start = next((p.equity for p in reversed(curve) if p.at.date() < day),
                         MONEY_CONTEXT.create_decimal(repr(ex.cash)))
            engine.restored_risk = (peak, day, start, last.equity)


def _resume(engine: Any, store: Any, run_id: int) -> None:
    run = store.get_run(run_id)
    if run is None:
        raise RecoveryError(f"unknown run id {run_id}")
    if run.account != engine.account:
        raise RecoveryError(f"run {run_id} belongs to account {run.account!r}, not {engine.account!r}")
    state = store.account_state(engine.account)
    engine.run_id = run_id
    engine.resumed_from = run.last_bar_time
    fills: dict[str, list[Fill]] = defaultdict(list)
    own = store.fills(engine.account, run_id)
    for f in own:
        fills[f.client_order_id].append(Fill(f.fill_id, f.client_order_id, f.symbol, f.side, f.quantity,
                                             f.price, f.fees, f.at))
    open_orders = state.open_orders
    pf = engine.portfolio
    if engine.config.shared_account:
        # The account holds every engine's trades; this engine's book is its own fills
        # replayed onto its starting cash, and its open orders are the ones it placed.
        for f in own:  # in execution order
            pf.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)
        open_orders = tuple(o for o in open_orders if o.run_id == run_id)
    else:
        pf.restore(state.account.cash, [{"symbol": p.symbol, "quantity": p.quantity,
                                         "avg_price": p.avg_price, "realized_pnl": p.realized_pnl}
                                        for p in state.positions])
    positions = {sym: pos.quantity for sym, pos in pf.positions.items()}
    orders = [_order(rec, run, fills.get(rec.client_order_id, [])) for rec in open_orders]
    engine.orders.restore(orders)
    broker = engine.broker
    accepted = [o for o in orders if o.state is not OrderState.NEW]
    if isinstance(broker, PaperBroker):
        broker.load_state(pf.cash, positions, accepted)
    else:
        known = set(broker.open_orders())
        for o in accepted:
            if o.client_order_id not in known:
                log.warning("order_unknown_at_broker", client_order_id=o.client_order_id)
    engine.orders.resubmit_pending()  # committed but maybe never sent: same id, broker dedupes
    if engine.resumed_from is not None and hasattr(engine.feed, "start_after"):
        import pandas as pd

        engine.feed.start_after = pd.Timestamp(engine.resumed_from)
    log.info("run_resumed", run_id=run_id, last_bar_time=str(run.last_bar_time),
             cash=str(pf.cash), open_orders=len(orders))


def _order(rec: Any, run: Any, fills: list[Fill]) -> Order:
    sized_at_fill = rec.reason == SIZED_AT_FILL and not rec.filled_quantity
    order = Order(rec.client_order_id, rec.account, run.strategy, rec.symbol, rec.side,
                  None if sized_at_fill else rec.quantity, rec.created_at, rec.type,
                  rec.limit_price, rec.stop_price, rec.time_in_force, estimate=rec.quantity,
                  run_id=str(run.id), state=OrderState(rec.status),
                  filled_quantity=rec.filled_quantity, avg_fill_price=rec.avg_fill_price or ZERO,
                  reason=rec.reason or "", broker_order_id=rec.broker_order_id or "",
                  updated_at=rec.updated_at, fills=list(fills))
    return order


def finish(engine: Any, status: str) -> None:
    """Close the run record with a summary (status finished, stopped or failed)."""
    pf = engine.portfolio
    summary = {"bars": engine.bars, "equity": str(pf.equity), "cash": str(pf.cash),
               "fills": len(engine.fills), "risk_alerts": len(engine.alerts)}
    reason = getattr(engine, "_stop_reason", None)
    if reason is not None:  # why it stopped: a signal, an operator, a data-quality halt...
        summary["stop_reason"] = reason
    with engine.store.transaction() as tx:
        tx.finish_run(engine.run_id, status, summary, finished_at=engine.wall_clock.now())
