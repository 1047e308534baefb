"""The composition root: the only place that picks concrete classes.

``build(settings)`` wires the cache tiers, data sources, market-data service,
strategy registry and execution convention from configuration. Notebooks, the
CLI, jobs and the API all start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from tradelab.config import Settings, load_config
from tradelab.execution import Execution
from tradelab.strategy.base import Strategy
from tradelab.strategy.registry import StrategyRegistry


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

    _store: Any = field(default=None, repr=False)

    @property
    def store(self) -> Any:
        """The paper/live database (``[store] url``), migrated to the latest schema on first use."""
        if self._store is None:
            self._store = build_store(self.settings)
        return self._store

    def notifier(self, store: Any = None) -> Any:
        """Notification channels from ``[notify]`` (apprise), delivering off the trading path."""
        from tradelab.notify import build_notifier

        return build_notifier(self.settings, self.store if store is None else store)

    def engine(self, strategy: str | Strategy, symbol: str | None = None, *,
               source: str | None = None, params: dict[str, Any] | None = None,
               start: Any = None, end: Any = None, speed: str | float = "max",
               feed: Any = None, resume: int | None = None, execution: Execution | None = None,
               store: Any = None, broker: Any = None, **engine_overrides: Any) -> Any:
        """A paper engine for one strategy on one symbol, wired from configuration.

        By default the feed replays the symbol's bars from ``source`` (through the
        cache); pass ``feed`` for a live feed. Orders, fills, positions and equity go
        to :attr:`store` (or ``store``); risk limits come from ``[risk]`` and the
        loop's behaviour from ``[engine]`` (keyword arguments override its fields).
        """
        from tradelab.data.quality import gate_feed, new_gate
        from tradelab.engine.loop import Engine, EngineConfig
        from tradelab.feeds.replay import ReplayFeed

        strat = self.strategy(strategy, **(params or {})) if isinstance(strategy, str) else strategy
        symbol = symbol or self.settings.data.default_symbol
        source = source or self.settings.data.default_source
        engine_fields = {f.name for f in fields(EngineConfig)}
        config = EngineConfig(**{**self.settings.engine.model_dump(include=engine_fields),
                                 **engine_overrides})
        run_store = self.store if store is None else store
        # [data.quality]: the bars a run starts from are gated (DataQualityError on a
        # breach), a live feed is watched during the run (halt after the current bar).
        gate = new_gate(self.settings, run_store, config.account, config.flush_seconds)
        mode = "paper"  # a paper broker on a live feed
        if feed is None:
            mode = "replay"  # history played as if live
            bars = self.bars(symbol, source=source, start=start, end=end)
            gate.check_start(self.data.last_report)
            feed = ReplayFeed(bars, symbol, speed=speed)
        else:
            feed = gate_feed(feed, gate, self.data)
        limits, per_strategy = risk_limits(self.settings)
        engine = Engine([(strat, symbol)], feed, execution or self.execution,
                        store=run_store, broker=broker, config=config,
                        limits=limits, per_strategy=per_strategy, resume=resume,
                        run_info={"strategy": strat.name, "symbol": symbol, "source": source,
                                  "mode": mode, "params": strat.params})
        gate.bind(engine)
        engine.quality = gate
        return engine


def build_cache(settings: Settings) -> Any:
    from tradelab.cache.disk import DiskCache
    from tradelab.cache.memory import MemoryCache
    from tradelab.cache.tiered import TieredCache

    c = settings.cache
    if not c.enabled:
        return TieredCache([])
    levels: list[Any] = [
        MemoryCache(max_items=c.memory_max_items, ttl=c.memory_ttl),
        DiskCache(settings.path(c.dir), ttl=c.disk_ttl, size_limit=c.disk_size_limit),
    ]
    if c.redis_url:
        from tradelab.cache.redis_cache import RedisCache

        levels.append(RedisCache(c.redis_url, ttl=c.redis_ttl, prefix=c.redis_prefix))
    return TieredCache(levels)


def build_sources(settings: Settings) -> dict[str, Any]:
    from tradelab.data.ccxt_source import CcxtSource
    from tradelab.data.files import FileSource
    from tradelab.data.sample import SampleSource
    from tradelab.data.yahoo import YFinanceSource

    d = settings.data
    return {
        "sample": SampleSource(),
        "file": FileSource(settings.path(d.file.root), adjust=d.file.adjust),
        "yfinance": YFinanceSource(adjust=d.yfinance.adjust, timeout=d.yfinance.timeout),
        "ccxt": CcxtSource(exchange=d.ccxt.exchange, api_key=d.ccxt.api_key,
                           secret=d.ccxt.secret, timeout_ms=d.ccxt.timeout_ms,
                           page_limit=d.ccxt.page_limit),
    }


def build_registry(settings: Settings) -> StrategyRegistry:
    paths = [settings.path(p) for p in settings.strategies.paths]
    return StrategyRegistry.discover([p for p in paths if p.exists()],
                                     entry_points=settings.strategies.entry_points)


def build_store(settings: Settings) -> Any:
    """The store at ``[store] url`` (relative SQLite paths under ``home``), migrated to head."""
    from tradelab.store import Store, resolve_url

    url = resolve_url(settings.store.url, settings.home)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    store = Store(url)
    store.upgrade()
    return store


def risk_limits(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """``[risk]`` as :class:`tradelab.risk.rules.RiskLimits`: account-wide and per strategy."""
    from tradelab.risk.rules import RiskLimits

    names = [f.name for f in fields(RiskLimits)]
    account = RiskLimits(**{n: getattr(settings.risk, n) for n in names})
    per = {name: RiskLimits(**{n: getattr(lim, n) for n in names})
           for name, lim in settings.risk.per_strategy.items()}
    return account, per


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
