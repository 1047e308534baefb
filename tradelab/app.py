"""The composition root: the only place that picks concrete classes.

``build(settings)`` wires the cache tiers, data sources, market-data service,
strategy registry and execution convention from configuration. Notebooks, the
CLI, jobs and the API all start here.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def build_cache(settings: Settings) -> Any:
    from tradelab.cache.disk import DiskCache
    from tradelab.cache.memory import MemoryCache
    from tradelab.cache.tiered import TieredCache

    c = settings.cache
    if not c.enabled:
        return TieredCache([])
    return TieredCache([
        MemoryCache(max_items=c.memory_max_items, ttl=c.memory_ttl),
        DiskCache(settings.path(c.dir), ttl=c.disk_ttl, size_limit=c.disk_size_limit),
    ])


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


def build(settings: Settings | None = None, **sources: Any) -> App:
    """Wire an :class:`App` from settings (default: :func:`tradelab.config.load_config`).

    Extra keyword arguments add or replace data sources by name (for example a
    ``FileSource`` over a notebook's own folder, or a fake in unit tests).
    """
    from tradelab.data.service import MarketData

    settings = settings or load_config()
    cache = build_cache(settings)
    all_sources = {**build_sources(settings), **sources}
    data = MarketData(all_sources, cache, settings.data)
    return App(settings=settings, cache=cache, data=data,
               strategies=build_registry(settings),
               execution=Execution.from_settings(settings.research))
