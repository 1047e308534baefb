"""Assembling an engine: every concrete part of a run is chosen here.

:func:`assemble_engine` is what :meth:`tradelab.app.App.engine` calls once it
has resolved settings into arguments; tests and benchmarks call it directly
with explicit parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tradelab.bus import EventBus
from tradelab.clock import LiveClock, SimClock
from tradelab.engine.loop import Engine, EngineConfig, EngineParts
from tradelab.execution import Execution
from tradelab.interfaces import Broker
from tradelab.money import MONEY_CONTEXT
from tradelab.orders.manager import OrderManager
from tradelab.portfolio import Portfolio
from tradelab.risk.manager import KillSwitch, RiskManager
from tradelab.risk.rules import RiskLimits, with_short_default
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:
    from tradelab.interfaces import LiveFeed
    from tradelab.store import Store


def assemble_engine(strategies: Sequence[tuple[Strategy, str]], feed: LiveFeed,
                    execution: Execution | None = None, *, broker: Broker | None = None,
                    broker_name: str = "paper", store: Store | None = None,
                    config: EngineConfig | None = None,
                    limits: RiskLimits | None = None, per_strategy: dict[str, RiskLimits] | None = None,
                    clock: Any = None, bus: EventBus | None = None, resume: int | None = None,
                    wall_clock: Any = None, run_info: dict | None = None,
                    factory: Callable[..., Engine] | None = None) -> Engine:
    """A ready :class:`Engine`: broker, orders, portfolio, risk, kill switch and, with a
    ``store``, the run record (new or resumed, under a lease) and its recorder.

    Parameters
    ----------
    strategies, feed, execution
        What to trade, on which bars, under which convention.
    broker
        An explicit broker; default: ``broker_name`` from the registry
        (:mod:`tradelab.app.brokers`).
    store
        A :class:`tradelab.store.Store` (persistence, recovery, kill switch) or ``None``.
    resume
        A run id to resume.
    factory
        Builds the engine from the same arguments as :class:`Engine` (default: ``Engine``);
        :meth:`tradelab.app.App.portfolio_engine` passes a portfolio engine.
    """
    from tradelab.app.brokers import make_broker

    if store is not None and resume is not None:  # before its lease: a refused resume changes nothing
        from tradelab.app.recovery import with_stored_execution, with_stored_trade

        stored = store.get_run(resume)
        # A resumed run trades as it was started (a conflicting option is refused): the
        # same convention (fees, size, borrow fee...) and the same side and exits.
        execution = with_stored_execution(execution, stored.execution if stored else None, resume)
        config = with_stored_trade(config or EngineConfig(),
                                   stored.trade() if stored is not None else None, resume)
    execution = execution or Execution()
    config = config or EngineConfig()
    bus = bus or EventBus()
    clock = clock or SimClock()
    wall = wall_clock or LiveClock()
    account = config.account
    symbols = {sym for _, sym in strategies}
    broker = broker if broker is not None else make_broker(broker_name, execution, symbols, config)
    # [risk] allow_short unset: shorts allowed at a simulated venue, denied at a real one.
    limits = with_short_default(limits or RiskLimits(), bool(getattr(broker, "simulated", False)))
    orders = OrderManager(broker, bus, clock, config.retry_attempts, config.retry_max_wait)
    portfolio = Portfolio(execution.cash, account)
    recorder: Any = None
    run = opened = None
    read: Callable[[], Any] | None = None
    write: Callable[[bool, str, str], None] | None = None
    disabled: Callable[[], frozenset[str]] | None = None
    if store is not None:
        from tradelab.app.recovery import open_run, trade_of
        from tradelab.store.auth_repo import disabled_strategies
        from tradelab.store.recorder import Recorder, failure
        from tradelab.store.sideconn import SideConnection

        names = ",".join(s.name for s, _ in strategies)
        opened = open_run(store, account=account, cash=MONEY_CONTEXT.create_decimal(repr(execution.cash)),
                          portfolio=portfolio, orders=orders, broker=broker, feed=feed,
                          shared=config.shared_account, resume=resume, info=run_info or {},
                          names=names, symbols=",".join(dict.fromkeys(s for _, s in strategies)),
                          wall=wall, lease_seconds=config.lease_seconds,
                          trade=trade_of(strategies, config) if resume is None else None,
                          execution=execution if resume is None else None)
        run = opened.state
        assert isinstance(run.run_id, int)
        recorder = Recorder(store, account, run.run_id, bus, config.flush_every,
                            account_id=opened.account_id, flush_seconds=config.flush_seconds,
                            replayable_fills=bool(getattr(broker, "simulated", False)),
                            equity_events=False,  # the engine calls Recorder.snapshot
                            owner=opened.owner, lease_seconds=config.lease_seconds, wall=wall.now)
        # The kill-switch read and the write-ahead commit sit on the bar → order path:
        # one held DBAPI connection for both (see tradelab.store.sideconn).
        side = SideConnection(store, opened.account_id, run.run_id, opened.owner)
        recorder.side = side
        if side.sqlite:  # WAL checkpoints from the side connection, in routine flushes only
            recorder.checkpoint = side.checkpoint
        read = side.kill_switch
        rec = recorder

        def write(engaged: bool, reason: str, by: str) -> None:
            rec.write_kill_switch(engaged, reason, by, clock.now())

        def disabled() -> frozenset[str]:
            try:
                return disabled_strategies(store, account)
            except Exception as exc:
                raise failure("reading the strategy switches failed", exc) from exc

    kill_switch = KillSwitch(account, bus, clock, read, write)
    shared = None
    if config.shared_account:
        if recorder is None or store is None:
            raise ValueError("engine.shared_account needs a store: the account's risk view lives there")
        from tradelab.risk.shared import StoreRiskView

        recorder.shared, recorder.replayable_fills = True, False  # others must see fills at once
        assert recorder.account_id is not None
        shared = StoreRiskView(store, recorder.account_id, limits or RiskLimits(), recorder.write_ahead_in)
    # A real venue's lot, tick and minimum rules are checked before an order leaves.
    venue_rules = None if getattr(broker, "simulated", False) else broker.rules
    risk = RiskManager(account, portfolio, bus, clock, kill_switch, orders.reject, limits, per_strategy,
                       shared=shared, venue_rules=venue_rules)
    reconciler = None
    if not getattr(broker, "simulated", False):
        # A real venue is the truth: the engine reconciles with it at start and every
        # [live] reconcile_seconds; each outcome is stored with the run.
        from tradelab.reconcile import Reconciler, store_writer

        record = store_writer(store, account, int(run.run_id)) if store is not None and run else None
        reconciler = Reconciler(broker, orders, portfolio, bus, clock, account=account,
                                record=record, symbols=symbols)
    parts = EngineParts(broker, orders, portfolio, risk, kill_switch, recorder, shared, disabled, run,
                        reconciler)
    args = (strategies, feed, execution, parts)
    options: dict[str, Any] = {"config": config, "bus": bus, "clock": clock, "wall_clock": wall}
    engine = Engine(*args, **options) if factory is None else factory(*args, **options)
    if opened is not None and opened.restored_risk is not None:
        # Drawdown and daily loss continue from the run's stored curve.
        if recorder is not None:
            recorder.peak = opened.restored_risk[0]
        risk.restore(*opened.restored_risk)
    kill_switch.refresh()
    return engine
