"""Start or resume a run in the store, under a lease, and restore what it had.

Resuming a run (``App.engine(..., resume=run_id)``):

1. take the run's lease (refused while another engine holds it; a stale lease of a
   dead engine is taken over), which also sets it back to ``running``;
2. read the account state (cash, positions, open orders, kill switch) and the
   run's last processed bar from the store, in one consistent read;
3. restore the portfolio and the order book; each open order gets back its
   fills so fill ids continue where they stopped;
4. reconcile the broker *before any bar is processed*: a simulated venue
   (``broker.simulated``) is rebuilt from the store (cash, positions, the orders it
   had accepted); for a real venue, orders the store believes open but the venue
   does not know are reported. Orders still ``new`` (committed but maybe never
   sent) are re-sent by the engine once every part is attached, with the same
   client id, which the broker dedupes;
5. skip the feed to the bar after ``last_bar_time``; the engine primes the
   strategies' windows from history.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import structlog

from tradelab.engine.loop import EngineConfig, RunState
from tradelab.errors import TradelabError
from tradelab.execution import Execution
from tradelab.interfaces import SimulatedVenue
from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.orders.model import Fill, Order, OrderState
from tradelab.store.recorder import SIZED_AT_FILL, peak_from_curve
from tradelab.strategy.exits import Stops

if TYPE_CHECKING:
    from tradelab.interfaces import Broker, LiveFeed
    from tradelab.store import Store

log = structlog.get_logger("tradelab.app.recovery")


class RecoveryError(TradelabError):
    """The store does not hold what a resume needs (unknown run, other account, owned run)."""


@dataclass
class OpenedRun:
    """A run the store has given this process: its state and lease."""

    state: RunState
    account_id: int
    owner: str
    #: (peak, day, day-start equity, last equity) for the risk rules of a resumed run.
    restored_risk: tuple[Decimal, Any, Decimal, Decimal] | None = None


def trade_of(strategies: Sequence[tuple[Any, str]], config: EngineConfig) -> dict[str, Any] | None:
    """The trade options a new run stores: ``config``'s direction and stops, else its
    strategies' own; ``None`` when they cannot be told (strategies that disagree, or
    portfolio strategies, which declare no side or exits)."""
    directions = {config.direction or getattr(s, "direction", None) for s, _ in strategies}
    stops = {config.stops or getattr(s, "stops", None) for s, _ in strategies}
    if len(directions) != 1 or len(stops) != 1:
        return None
    direction, declared = directions.pop(), stops.pop()
    if direction is None or not isinstance(declared, Stops):
        return None
    return {"direction": direction, "sl": declared.sl, "tp": declared.tp, "trail": declared.trail,
            "time_stop": declared.time_bars}


def with_stored_trade(config: EngineConfig, stored: dict[str, Any] | None,
                      run_id: object) -> EngineConfig:
    """``config`` trading with a resumed run's stored options (unchanged for an old run
    that has none); RecoveryError names an option given that differs from the stored one."""
    if stored is None:
        return config
    stops = Stops(stored["sl"], stored["tp"], stored["trail"], stored["time_stop"])
    if config.direction is not None and config.direction != stored["direction"]:
        raise RecoveryError(f"direction = {config.direction!r}: run {run_id} trades "
                            f"{stored['direction']!r} (stored with the run)")
    if config.stops is not None and config.stops != stops:
        given = config.stops
        for name, field in (("sl", "sl"), ("tp", "tp"), ("trail", "trail"),
                            ("time_stop", "time_bars")):
            if getattr(given, field) != getattr(stops, field):
                raise RecoveryError(f"{name} = {getattr(given, field)!r}: run {run_id} was "
                                    f"started with {name} = {getattr(stops, field)!r} "
                                    "(stored with the run)")
    return replace(config, direction=stored["direction"], stops=stops)


def with_stored_execution(given: Execution | None, stored: dict[str, Any] | None,
                          run_id: object) -> Execution | None:
    """The execution a resumed run continues with: its stored one (``given`` is ``None``,
    or equal to it), or ``given`` for an old run that has none stored (``None`` then:
    the caller's default applies). RecoveryError names the first option ``given`` sets
    to another value than the run was started with."""
    if stored is None:
        return given
    kept = Execution(**stored)
    if given is not None and given != kept:
        name, value, was = next((f.name, getattr(given, f.name), getattr(kept, f.name))
                                for f in fields(Execution)
                                if getattr(given, f.name) != getattr(kept, f.name))
        raise RecoveryError(f"{name} = {value!r}: run {run_id} was started with {name} = "
                            f"{was!r} (stored with the run)")
    return kept


def resumed_execution(store: Store, run_id: int, given: Execution | None = None) -> Execution | None:
    """:func:`with_stored_execution` for run ``run_id`` of ``store`` (an unknown run: ``given``)."""
    run = store.get_run(run_id)
    return with_stored_execution(given, run.execution if run is not None else None, run_id)


def new_owner() -> str:
    """A lease holder id: host, pid and the process's start time, plus a random part.

    The start time tells a dead owner from a new process that reuses its pid.
    """
    import psutil

    started = int(psutil.Process().create_time() * 1000)
    return f"{socket.gethostname()}:{os.getpid()}:{started}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` was a process on this host that no longer runs.

    Only a same-host owner can be checked; any other is presumed alive until its
    lease expires (it may be a live engine on another machine).
    """
    import psutil

    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return False
    try:
        pid, started = int(parts[1]), int(parts[2])
    except ValueError:
        return False
    try:
        return int(psutil.Process(pid).create_time() * 1000) != started
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:
        return False


def open_run(store: Store, *, account: str, cash: Decimal, portfolio: Any, orders: Any, broker: Broker,
             feed: LiveFeed, shared: bool, resume: int | None, info: dict[str, Any], names: str,
             symbols: str, wall: Any, lease_seconds: float,
             trade: dict[str, Any] | None = None,
             execution: Execution | None = None) -> OpenedRun:
    """Start a new run (or resume ``resume``) for ``account`` and take its lease.

    ``trade``: the options a new run stores (see :func:`trade_of`); ``execution``: the
    convention it stores. A resumed run's are applied by :func:`with_stored_trade` and
    :func:`with_stored_execution` before this is called.
    """
    from tradelab.store.errors import LeaseHeldError

    owner = new_owner()
    with store.transaction() as tx:
        account_id = tx.ensure_account(account, cash)
    now = wall.now()
    until = now + timedelta(seconds=lease_seconds)
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
                tx.set_cash(account, portfolio.cash)
            run_id = tx.start_run(account, info.get("strategy", names),
                                  symbol=info.get("symbol", symbols),
                                  source=info.get("source", "replay"), mode=info.get("mode", "paper"),
                                  started_at=now, params=info.get("params", {}), trade=trade,
                                  execution=None if execution is None else asdict(execution))
            tx.acquire_lease(run_id, owner, now, until)
        return OpenedRun(RunState(run_id), account_id, owner)
    run = store.get_run(resume)
    if run is None:
        raise RecoveryError(f"unknown run id {resume}")
    if run.account != account:
        raise RecoveryError(f"run {resume} belongs to account {run.account!r}, not {account!r}")
    try:
        with store.transaction() as tx:
            tx.acquire_lease(resume, owner, now, until)
    except LeaseHeldError as exc:
        if not owner_is_dead(exc.owner):
            raise RecoveryError(str(exc)) from exc
        # Its engine died on this machine (a crash, SIGKILL): no need to wait out the lease.
        log.warning("run_lease_taken_over", run_id=resume, dead_owner=exc.owner)
        with store.transaction() as tx:
            tx.acquire_lease(resume, owner, now, until, dead_owner=exc.owner)
    resumed = _resume(store, run, account=account, portfolio=portfolio, orders=orders, broker=broker,
                      feed=feed, shared=shared)
    opened = OpenedRun(resumed, account_id, owner)
    # Drawdown is measured from the run's peak and the day's loss from the previous
    # close, not from where the restart found them.
    curve = store.equity_curve(account, resume)
    resumed.bars = len(curve)
    peak = peak_from_curve(curve)
    if peak is not None:
        last = curve[-1]
        day = last.at.date()
        start = next((p.equity for p in reversed(curve) if p.at.date() < day), cash)
        opened.restored_risk = (peak, day, start, last.equity)
    return opened


def _resume(store: Store, run: Any, *, account: str, portfolio: Any, orders: Any, broker: Broker,
            feed: LiveFeed, shared: bool) -> RunState:
    run_id = run.id
    state = store.account_state(account)
    fills: dict[str, list[Fill]] = defaultdict(list)
    own = store.fills(account, run_id)
    restored: list[Fill] = []
    for f in own:
        fill = Fill(f.fill_id, f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fees, f.at)
        fills[f.client_order_id].append(fill)
        restored.append(fill)
    open_orders = state.open_orders
    pf = portfolio
    if shared:
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
    book = [_order(rec, run, fills.get(rec.client_order_id, [])) for rec in open_orders]
    orders.restore(book)
    accepted = [o for o in book if o.state is not OrderState.NEW]
    if getattr(broker, "simulated", False):
        cast(SimulatedVenue, broker).restore(pf.cash, positions, accepted)
        # The paper broker's borrow fee: an open short's accrual, from the run's fills and bars.
        rebuild = getattr(broker, "rebuild_borrow", None)
        borrow = getattr(getattr(broker, "execution", None), "borrow_fee", 0.0)
        if rebuild is not None and borrow and run.last_bar_time is not None:
            for sym in dict.fromkeys(f.symbol for f in restored):
                bars = feed.history(sym, run.last_bar_time, 1_000_000)
                rebuild(sym, restored, zip(bars.index, bars["close"], strict=True))
    else:
        known = {r.client_order_id for r in broker.open_orders()}
        for o in accepted:
            if o.client_order_id not in known:
                log.warning("order_unknown_at_broker", client_order_id=o.client_order_id)
    if run.last_bar_time is not None and hasattr(feed, "start_after"):
        import pandas as pd

        feed.start_after = pd.Timestamp(run.last_bar_time)
    log.info("run_resumed", run_id=run_id, last_bar_time=str(run.last_bar_time),
             cash=str(pf.cash), open_orders=len(book))
    earlier_alerts = int((run.summary or {}).get("risk_alerts", 0))
    return RunState(run_id, run.last_bar_time, restored, 0, earlier_alerts)


def _order(rec: Any, run: Any, fills: list[Fill]) -> Order:
    sized_at_fill = rec.reason == SIZED_AT_FILL and not rec.filled_quantity
    return Order(rec.client_order_id, rec.account, run.strategy, rec.symbol, rec.side,
                 None if sized_at_fill else rec.quantity, rec.created_at, rec.type,
                 rec.limit_price, rec.stop_price, rec.time_in_force, estimate=rec.quantity,
                 run_id=str(run.id), state=OrderState(rec.status),
                 filled_quantity=rec.filled_quantity, avg_fill_price=rec.avg_fill_price or ZERO,
                 reason=rec.reason or "", broker_order_id=rec.broker_order_id or "",
                 updated_at=rec.updated_at, fills=list(fills))


__all__ = ["MONEY_CONTEXT", "OpenedRun", "RecoveryError", "new_owner", "open_run", "resumed_execution",
           "trade_of", "with_stored_execution", "with_stored_trade"]
