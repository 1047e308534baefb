"""The composition root: the only place that picks concrete classes.

``build(settings)`` wires the cache tiers, data sources, market-data service,
strategy registry and execution convention from configuration. Notebooks, the
CLI, jobs and the API all start here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from tradelab.app.parts import build_cache, build_registry, build_sources, build_store, risk_limits
from tradelab.config import Settings, load_config
from tradelab.execution import Execution
from tradelab.strategy.base import Strategy
from tradelab.strategy.registry import StrategyRegistry

if TYPE_CHECKING:
    from tradelab.engine.loop import Engine
    from tradelab.interfaces import Broker, LiveFeed
    from tradelab.store import Store
    from tradelab.strategy.exits import Stops


@dataclass
class Session:
    """An engine with its observers attached (see :meth:`App.session`)."""

    engine: Engine
    monitoring: Any
    notifier: Any

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the monitoring server and deliver (or record as dropped) queued notifications."""
        try:
            self.monitoring.close()
        finally:
            self.notifier.close()


@dataclass
class App:
    """Wired components for one configuration."""

    settings: Settings
    cache: Any           # tradelab.cache.tiered.TieredCache
    data: Any            # tradelab.data.service.MarketData
    strategies: StrategyRegistry
    execution: Execution

    def bars(self, symbol: str | None = None, *, source: str | None = None,
             start: Any = None, end: Any = None, interval: str = "1d",
             adjust: str | None = None) -> pd.DataFrame:
        """Validated bars through the cache (defaults from ``[data]``)."""
        return self.data.load(symbol or self.settings.data.default_symbol, source=source,
                              start=start, end=end, interval=interval, adjust=adjust)

    def strategy(self, name: str, **params: Any) -> Strategy:
        """A strategy instance by registry name with validated parameters."""
        return self.strategies.create(name, **params)

    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Any:
        """The paper/live database (``[store] url``), migrated to the latest schema on first use."""
        if self._store is None:
            self._store = build_store(self.settings)
        return self._store

    def open_store(self, db: str | None = None) -> Any:
        """:attr:`store`, or the store at ``db`` (a ``--db`` / job override), migrated to head."""
        return self.store if db is None else build_store(self.settings, db)

    def notifier(self, store: Store | None = None) -> Any:
        """Notification channels from ``[notify]`` (apprise), delivering off the trading path."""
        from tradelab.app.services import build_notifier

        return build_notifier(self.settings, self.store if store is None else store)

    def engine(self, strategy: str | Strategy, symbol: str | None = None, *,
               source: str | None = None, params: dict[str, Any] | None = None,
               start: Any = None, end: Any = None, speed: str | float = "max",
               feed: LiveFeed | None = None, resume: int | None = None, execution: Execution | None = None,
               store: Store | None = None, broker: Broker | str | None = None, db: str | None = None,
               bars: pd.DataFrame | None = None, direction: str | None = None,
               stops: Stops | None = None, **engine_overrides: Any) -> Engine:
        """A paper (or live) engine for one strategy on one symbol, wired from configuration.

        By default the feed replays the symbol's bars from ``source`` (through the
        cache); pass ``feed`` for a live feed. The broker is ``[engine] broker`` (by
        name), orders, fills, positions and equity go to :attr:`store` (or ``store``,
        or the store at ``db``); risk limits come from ``[risk]``, the data-quality
        gate from ``[data.quality]`` and the loop's behaviour from ``[engine]``
        (keyword arguments override its fields). ``broker`` may name a registered
        broker or be one; ``bars`` replays exactly these bars (a job's window).
        ``direction`` (long, short, both) and ``stops`` (declared exits) replace the
        strategy's own, with the meaning they have in a backtest (see
        :mod:`tradelab.strategy.exits`). A new run stores its ``execution`` (default
        :attr:`execution`), direction and stops; ``resume`` (a run id) continues a run with
        the ones stored with it (``execution`` may be left out; another one is refused
        with :class:`~tradelab.app.recovery.RecoveryError`).
        """
        from tradelab.app.recovery import resumed_execution
        from tradelab.app.services import build_gate
        from tradelab.app.wiring import assemble_engine
        from tradelab.data.quality import gate_feed
        from tradelab.engine.loop import EngineConfig
        from tradelab.feeds.replay import ReplayFeed

        strat = self.strategy(strategy, **(params or {})) if isinstance(strategy, str) else strategy
        symbol = symbol or self.settings.data.default_symbol
        source = source or self.settings.data.default_source
        engine_fields = {f.name for f in fields(EngineConfig)}
        config = EngineConfig(**{**self.settings.engine.model_dump(include=engine_fields),
                                 "reconcile_seconds": self.settings.live.reconcile_seconds,
                                 "direction": direction, "stops": stops, **engine_overrides})
        run_store = store if store is not None else self.open_store(db)
        if resume is not None:  # the run's own convention (another one given is refused)
            execution = resumed_execution(run_store, resume, execution)
        broker_name = broker if isinstance(broker, str) else self.settings.engine.broker
        broker_obj = broker if broker is not None and not isinstance(broker, str) else \
            self.broker(broker_name, execution or self.execution, {symbol}, config)
        # [data.quality]: the bars a run starts from are gated (DataQualityError on a
        # breach), a live feed is watched during the run (halt after the current bar).
        gate = build_gate(self.settings, run_store, config.account, config.flush_seconds)
        mode = "paper" if broker_obj.simulated else "live"  # a paper broker on a live feed, or a venue
        if feed is None:
            mode = "replay"  # history played as if live
            if bars is None:
                bars = self.bars(symbol, source=source, start=start, end=end)
            gate.check_start(self.data.last_report)
            feed = ReplayFeed(bars, symbol, speed=speed)
        else:
            feed = gate_feed(feed, gate, self.data)
        limits, per_strategy = risk_limits(self.settings)
        engine = assemble_engine([(strat, symbol)], feed, execution or self.execution,
                                 store=run_store, broker=broker_obj, broker_name=broker_name,
                                 config=config,
                                 limits=limits, per_strategy=per_strategy, resume=resume,
                                 run_info={"strategy": strat.name, "symbol": symbol, "source": source,
                                           "mode": mode, "params": strat.params})
        engine.store = run_store
        gate.bind(engine)
        engine.quality = gate
        return engine

    def portfolio_strategy(self, strategy: Any, params: dict[str, Any] | None = None) -> Any:
        """A :class:`~tradelab.strategy.portfolio.PortfolioStrategy` from an instance, a
        class or a name (looked up under ``[strategies] paths``), with ``params``."""
        from tradelab.research.portfolio import portfolio_strategy

        paths = [p for p in (self.settings.path(q) for q in self.settings.strategies.paths) if p.exists()]
        return portfolio_strategy(strategy, params, paths)

    def portfolio_engine(self, strategy: Any, *, universe: Any = None, params: dict[str, Any] | None = None,
                         source: str | None = None, start: Any = None, end: Any = None,
                         bars: dict[str, pd.DataFrame] | None = None, speed: str | float = "max",
                         execution: Execution | None = None, store: Store | None = None,
                         db: str | None = None, rebalance: Any = None, lots: Any = None,
                         threshold: float = 0.0, persist: bool = True, history: int | str | None = None,
                         resume: int | None = None, feed: LiveFeed | None = None,
                         cutoff: float | None = None, close_only: bool | None = None,
                         broker: Broker | str | None = None, **engine_overrides: Any) -> Engine:
        """A paper (or live) engine for a :class:`~tradelab.strategy.portfolio.PortfolioStrategy`
        (an instance, class or name) replaying a universe's bars, or on a live feed.

        ``universe`` (a name such as ``"sp20"``, ``"KO,PEP"`` or a list; default the
        strategy's) is loaded from ``source`` through the cache, or ``bars`` (symbol →
        contract bars) are replayed as given; ``rebalance``, ``lots`` and ``threshold``
        mean what they mean in :func:`tradelab.backtest_portfolio`. The engine acts once
        per time stamp (:mod:`tradelab.engine.portfolio_loop`); the broker is the paper
        broker unless ``broker`` names or is another: at a real venue (live, on a ``feed``)
        a decision is sized at its time stamp's closes, its sells sent first and its buys
        once the sells are final, on the venue's lot grid (``lots`` default: the venue's
        rules; :mod:`tradelab.engine.live_rebalance`); persistence, risk and ``[engine]``
        settings as in :meth:`engine` (``persist=False``: in memory, as ``tradelab parity``
        compares). ``history``: bars of the panel handed to the strategy (default: its
        declared ``decision_window``, every bar when it declares none; ``"all"``: every
        bar; see :mod:`tradelab.engine.rebalancer`). ``resume``: a run id to continue
        (same bars; at a real venue reconciled first, the decision in progress
        finished: :mod:`tradelab.engine.live_resume`), with the execution stored with it,
        as in :meth:`engine`.

        ``feed``: a live feed of the universe's bars (:meth:`feed` with the symbols) instead
        of a replay; its bars are batched per time stamp by
        :class:`~tradelab.feeds.stamps.LiveStamps` (complete when every symbol delivered,
        or ``cutoff`` seconds after the first bar arrived, default ``[feeds]
        stamp_cutoff``), watched by the ``[data.quality]`` gate, which records every bar
        not applied (``dropped``/``late_bar``). ``close_only``: the bars hold closes only
        (default: inferred from ``bars``; False on a live feed).
        """
        from tradelab.app.wiring import assemble_engine
        from tradelab.data.sample import is_close_only
        from tradelab.data.universe import load_universe, universe_symbols
        from tradelab.engine.live_rebalance import venue_lots
        from tradelab.engine.loop import EngineConfig
        from tradelab.engine.portfolio_loop import PortfolioEngine, TimestampBatches
        from tradelab.engine.rebalancer import Rebalancer
        from tradelab.feeds.replay import ReplayFeed
        from tradelab.strategy.portfolio import require_symbols

        strat = self.portfolio_strategy(strategy, params)
        source = source or "sample"
        if feed is not None:
            if bars is not None:
                raise ValueError("bars and feed: a portfolio run replays bars or reads a live "
                                 "feed, not both")
            symbols = tuple(universe_symbols(universe if universe is not None else strat.universe))
        else:
            if bars is None:
                symbols = universe_symbols(universe if universe is not None else strat.universe)
                bars = load_universe(symbols, source, start, end, market=self.data)
            symbols = tuple(bars)
            if close_only is None:
                close_only = all(is_close_only(b) for b in bars.values())
        require_symbols(strat, symbols)
        run_store = None if not persist else store if store is not None else self.open_store(db)
        if resume is not None and run_store is not None:  # as in engine(): the run's convention
            from tradelab.app.recovery import resumed_execution

            execution = resumed_execution(run_store, resume, execution)
        ex = execution or self.execution
        engine_fields = {f.name for f in fields(EngineConfig)}
        config = EngineConfig(**{**self.settings.engine.model_dump(include=engine_fields),
                                 "reconcile_seconds": self.settings.live.reconcile_seconds,
                                 **engine_overrides})
        broker_name = broker if isinstance(broker, str) else "paper" if broker is None else \
            str(getattr(broker, "name", "broker"))
        broker_obj = broker if broker is not None and not isinstance(broker, str) else \
            self.broker(broker_name, ex, set(symbols), config)
        if not broker_obj.simulated and lots is None:
            lots = venue_lots(broker_obj, symbols)
        desk = Rebalancer(strat, symbols, ex, schedule=rebalance, lots=lots, threshold=threshold,
                          close_only=bool(close_only), history=cast(Any, history))
        limits, per_strategy = risk_limits(self.settings)

        def make(*args: Any, **kwargs: Any) -> Engine:
            stored = None
            if resume is not None and run_store is not None and not broker_obj.simulated:
                # A live portfolio resume (engine.live_resume): the run's bars and orders
                # as committed, read once its lease is taken (open_run ran before this).
                from tradelab.engine.live_resume import StoredRun
                from tradelab.store.run_bars_repo import run_bars

                stored = StoredRun(run_bars(run_store, resume),
                                   run_store.orders(kwargs["config"].account, resume))
            return PortfolioEngine(desk, *args[1:], stored=stored, **kwargs)

        gate = stamps = None
        if feed is None:
            stamps = TimestampBatches(ReplayFeed(cast(Any, bars), speed=speed))
        else:
            stamps, gate = self._live_stamps(feed, symbols, cutoff, run_store, config)
        engine = assemble_engine([(cast(Any, strat), s) for s in symbols], stamps, ex,
                                 store=run_store, broker=broker_obj, broker_name=broker_name,
                                 config=config, limits=limits, per_strategy=per_strategy,
                                 resume=resume,
                                 run_info={"strategy": strat.name, "symbol": ",".join(symbols),
                                           "source": source,
                                           "mode": "replay" if feed is None else
                                           "paper" if broker_obj.simulated else "live",
                                           "params": strat.params},
                                 factory=make)
        engine.store = run_store
        if gate is not None:
            gate.bind(engine)
            engine.quality = gate
        return engine

    def _live_stamps(self, feed: Any, symbols: tuple[str, ...], cutoff: float | None,
                     store: Any, config: Any) -> tuple[Any, Any]:
        """A live feed as time stamps (feeds.stamps), behind the data-quality gate."""
        from tradelab.app.services import build_gate
        from tradelab.data.quality import gate_feed
        from tradelab.feeds.stamps import Arrivals, LiveStamps

        gate = build_gate(self.settings, store, config.account, config.flush_seconds)

        def not_applied(bar: Any, why: str) -> None:
            gate.record(bar[0], "dropped", "late_bar" if why == "late" else why,
                        detail=f"{bar[0]} {bar[1].isoformat()}: its time stamp was complete")

        gated = gate_feed(Arrivals(feed), gate, self.data)
        cut = self.settings.feeds.stamp_cutoff if cutoff is None else cutoff
        return LiveStamps(gated, symbols, cut, on_late=not_applied), gate

    def broker(self, name: str | None = None, execution: Execution | None = None,
               symbols: set[str] | None = None, config: Any = None) -> Broker:
        """The broker registered as ``name`` (default ``[engine] broker``), built from
        configuration (``[live]`` for a real venue; credentials from the environment)."""
        from tradelab.app.brokers import make_broker

        return make_broker(name or self.settings.engine.broker, execution or self.execution,
                           symbols or set(), config if config is not None else self.settings.engine,
                           self.settings)

    def session(self, engine: Engine, *, store: Store | None = None) -> Session:
        """Observers for a run: metrics, health endpoints (``[monitor] port``), event logs
        and notifications (``[notify]``), attached to ``engine``'s bus.

        Use as a context manager around ``engine.run()``; leaving it delivers what is
        queued (bounded) and closes the monitoring server.
        """
        from tradelab.app.services import build_metrics
        from tradelab.monitor import monitor_engine

        run_store = store if store is not None else getattr(engine, "store", None)
        notifier = self.notifier(run_store)
        monitoring = monitor_engine(engine, self.settings, build_metrics(), notifier, cache=self.cache,
                                    store=run_store)
        return Session(engine, monitoring, notifier)

    def feed(self, spec: str | None, symbol: str | Sequence[str], *, source: str | None = None,
             start: Any = None, end: Any = None, **overrides: Any) -> Any:
        """The live feed ``spec`` names (``ws://...``, ``ccxt``, ``poll``); ``None`` for replay.

        ``symbol``: one symbol, or a universe (for :meth:`portfolio_engine`'s ``feed``).

        ``overrides`` replace ``[feeds]`` values for this feed (``backoff_base``, ...).
        """
        from tradelab.app.feeds import build_feed

        return build_feed(self, spec, symbol, source=source, start=start, end=end, **overrides)

    def jobs(self, db: str | None = None, jobs_file: Any = None, env: dict[str, str] | None = None) -> Any:
        """The job tools (runner, scheduler specs, notifier, metrics) on this configuration."""
        from tradelab.app.services import build_jobs

        return build_jobs(self.settings, db, jobs_file, env)

    def api(self, *, store: Store | None = None, jobs: Any = None, dev: bool = False, **options: Any) -> Any:
        """The REST API (FastAPI app) on :attr:`store` (or ``store``); its
        ``GET /runs/{id}/drift`` runs :func:`tradelab.drift_run.run_drift` with this app."""
        from tradelab.app.services import build_api

        run_store = store if store is not None else self.store
        options.setdefault("drift", drift_reports(self.settings, run_store, app=self))
        return build_api(self.settings, run_store, self.strategies, jobs=jobs, dev=dev, **options)

    def dashboard_services(self, *, store: Store | None = None, jobs: Any = None, dev: bool = False,
                           secret: str | None = None) -> Any:
        """The dashboard's services on :attr:`store` (or ``store``)."""
        from tradelab.app.services import build_dashboard_services

        return build_dashboard_services(self.settings, store if store is not None else self.store,
                                        self.strategies, jobs=jobs, dev=dev, secret=secret)

    def runner_jobs(self, store: Store | None = None) -> Any:
        """Job triggers for the API and dashboard, or ``None`` (job history only)."""
        from tradelab.app.services import runner_jobs

        return runner_jobs(self.settings, store if store is not None else self.store)


def drift_reports(settings: Settings, store: Store, app: App | None = None
                  ) -> Callable[[int], dict[str, Any]]:
    """A run id → :func:`tradelab.drift_run.run_drift`'s report as a dict, on ``store``.

    The :class:`~tradelab.app.root.App` it needs (bars, strategies, convention) is
    ``app``, or one built on the first report, not at start-up: the API starts without
    loading research.
    """
    built: list[Any] = [] if app is None else [app]
    lock = threading.Lock()

    def drift(run_id: int) -> dict[str, Any]:
        from tradelab.drift_run import run_drift

        with lock:
            if not built:
                built.append(build(settings))
        return run_drift(built[0], run_id, store=store).to_dict()

    return drift


def build(settings: Settings | None = None, **sources: Any) -> App:
    """Wire an :class:`App` from settings (default: :func:`tradelab.config.load_config`).

    Extra keyword arguments add or replace data sources by name (for example a
    ``FileSource`` over a notebook's own folder, or a fake in unit tests).
    """
    import structlog

    from tradelab.data.service import MarketData
    from tradelab.monitor.logging import configure_logging

    settings = settings or load_config()
    from tradelab.monitor.redact import register_settings

    register_settings(settings)  # masked in every log line and archived output from now on
    if not structlog.is_configured():  # a notebook gets the configured level, not debug spam
        configure_logging(settings.logging.level, json_logs=settings.logging.json_logs)
    cache = build_cache(settings)
    all_sources = {**build_sources(settings), **sources}
    data = MarketData(all_sources, cache, settings.data)
    return App(settings=settings, cache=cache, data=data,
               strategies=build_registry(settings),
               execution=Execution.from_settings(settings.research))
